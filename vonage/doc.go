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
//	429, 5xx, 409 "try again later"           1, 5            otp.ErrProviderUnavailable (Temporary)
//	401, 402 (credentials, balance)           4, 8, 9, 29     otp.ErrProviderUnavailable (Temporary, NotSent)
//	anything else (403, 412, ...)             2, 18, 19, 20, unknown  otp.ErrProviderRejected
//
// Refusals of the account (bad credentials, no credit, a barred or demo
// account) are Temporary: they end when the account is fixed, not when the
// person does something else, and [otp.Failover] moves past them to a
// provider that can still send.
//
// A 2xx whose body is not what the operation returns (no request_id, not
// JSON, too large) is never a success: it is ErrProviderUnavailable with
// [ErrOutcomeUnknown], as are answers lost after the request was written.
// [MaybeSent] tells a caller (or a failover) whether a failed send may
// still have delivered a code.
//
// # Retries
//
// Requests go through github.com/hashicorp/go-retryablehttp with its logger
// off. A start is retried only when Vonage surely did not act on it: the
// try got no connection (refused, DNS failure, dial timeout), or Vonage
// answered 429 or 503 with a Retry-After no longer than
// RetryPolicy.MaxRetryAfter. Checks, cancels and resends are also retried
// after timeouts, dropped connections, 429 and 5xx answers (and the legacy
// API's status 1). A check whose earlier try was lost and whose retry is a
// 404 reports ErrOutcomeUnknown, because Vonage answers 404 to a second
// check of a verified request. RetryPolicy.Timeout bounds each call;
// bodies are read through a 64 KiB cap; request IDs are escaped in paths.
//
// # Vonage behaviours to know
//
//   - One verification per destination at a time: starting another gives
//     ErrConcurrent until the first is verified, failed, expired or
//     cancelled (and, as users observed, a few seconds after a cancel).
//   - Cancel works only from 30 s after the start until the second channel
//     or event; otherwise it is ErrProviderRejected.
//   - Resend moves to the next channel of the workflow: configure
//     V2Config.Fallback (or a legacy WorkflowID with several events),
//     otherwise it is ErrProviderRejected.
//   - The legacy API sends 4 or 6 digit codes only; set otp.Config.CodeLength
//     to match.
package vonage
