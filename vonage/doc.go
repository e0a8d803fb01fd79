// Package vonage provides [otp.Provider] adapters for Vonage Verify: [V2]
// for Verify v2 (Name "vonage") and [Legacy] for the deprecated legacy
// Verify API (Name "vonage-legacy"), both also [otp.Resender] and
// [otp.Canceler]; and [NewWebhookHandler] for Verify v2's signed status
// webhooks. Package vonagetest is a fake of both APIs for tests.
//
// # Authentication
//
// V2 signs an RS256 JWT with the application's private key (claims
// application_id, iat, jti, exp) when V2Config.ApplicationID and PrivateKey
// are set, and otherwise uses HTTP Basic with the API key and secret. The
// JWT is signed once and renewed when a fifth of its lifetime is left, never
// per request. Legacy sends the key and secret in the form body, which every
// generation of that API accepts. Configs, providers and the webhook handler
// print without their secrets with any fmt verb.
//
// # Errors
//
// Every failure is a *[otp.ProviderError] carrying the HTTP status and
// Vonage's status (the problem title for v2, the status code for legacy),
// matched with [errors.Is]:
//
//	v2 answer                                 legacy status   error
//	400 on check                              16              otp.ErrWrongCode
//	410 (too many wrong codes)                17              otp.ErrTooManyAttempts
//	410 (other)                               -               otp.ErrExpired
//	404 on check/cancel/next_workflow         6, 101, 3 (id)  otp.ErrNotFound (also: already verified)
//	422 naming 'to'                           3 (number), 7, 15  otp.ErrInvalidPhone
//	409, or 422 titled Conflict, on start     10              ErrConcurrent (*ConcurrentError with the in-flight ID)
//	429, 5xx, 409 "try again later"           1, 5, 19 (cancel in the first 30 s)  otp.ErrProviderUnavailable
//	401, 402 (credentials, balance)           4, 8, 9, 29, http 401  otp.ErrProviderAccount
//	anything else (403, 412, ...)             2, 18, 19 (other), 20, unknown  otp.ErrProviderRejected
//
// A refusal of the account (bad credentials, no credit, a barred or demo
// account) has Kind otp.ProviderAccount: it ends when the account is
// fixed, not when the person does something else, and [otp.Failover]
// moves past it to a provider that can still send.
//
// ProviderError.NotSent is true when Vonage surely did not act on the
// call: no try reached it, or every answer refused it (a 4xx, a 429 or 503
// with Retry-After, a legacy status other than 0 and 5). It is false when
// Vonage may have acted: a timeout or a dropped connection after the
// request was written, a 5xx, the legacy status 5, or a 2xx whose body is
// not what the operation returns (no request_id, not JSON, too large),
// which is never a success. For a send, false means a code may be on its
// way; for a check, that the code may have been verified: a check whose
// earlier try was lost and whose retry is a 404 (or legacy status 6) is
// otp.ErrProviderUnavailable, not otp.ErrNotFound, because Vonage answers
// 404 to a second check of a verified request.
//
// # Retries
//
// Requests go through the shared HTTP layer on
// github.com/hashicorp/go-retryablehttp, its logger off, under
// V2Config.Retry or LegacyConfig.Retry (an [otp.RetryPolicy]). A start
// and a Resend (next_workflow, trigger_next_event) are retried only when
// Vonage surely did not act on them: the try got no connection (refused,
// DNS failure, dial timeout), or Vonage answered 429 or 503 with a
// Retry-After no longer than RetryPolicy.MaxRetryAfter; repeating a
// Resend Vonage acted on would skip a channel. Checks and cancels are also
// retried after timeouts, dropped connections, 429 and 500/502/503/504
// answers (and the legacy API's status 1). RetryPolicy.Timeout bounds each
// call; answers are read through one size cap; request IDs are escaped in
// paths, dot segments included.
//
// # Vonage behaviours to know
//
//   - One verification per destination at a time: starting another gives
//     ErrConcurrent until the first is verified, failed, expired or
//     cancelled (and, as users observed, a few seconds after a cancel).
//   - Cancel works only from 30 s after the start until the second channel
//     or event. A legacy cancel in the first 30 s is ErrProviderUnavailable
//     with a RetryAfter (at most 30 s); a v2 one, and one after the second
//     event, is ErrProviderRejected.
//   - Resend moves to the next channel of the workflow: configure
//     V2Config.Fallback (or a legacy WorkflowID with several events),
//     otherwise it is ErrProviderRejected.
//   - The legacy API sends 4 or 6 digit codes only; set otp.Config.CodeLength
//     to match.
package vonage
