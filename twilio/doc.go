// Package twilio provides an [otp.Provider] for Twilio Verify v2:
// [Provider] (Name "twilio"), also an [otp.Resender] and an
// [otp.Canceler]; and [NewWebhookHandler] for the Verify events Event
// Streams delivers. Package twiliotest is a fake of the API for tests.
//
// # Configuration
//
// A Verify Service holds what Verify needs (its friendly name, code length,
// channels, Fraud Guard); the adapter starts, checks, resends and cancels
// verifications on it:
//
//	p, err := twilio.New(twilio.Config{
//		ServiceSID:   "VA...",
//		APIKeySID:    os.Getenv("TWILIO_API_KEY_SID"), // or AccountSID and AuthToken
//		APIKeySecret: os.Getenv("TWILIO_API_KEY_SECRET"),
//		Channels:     []otp.Channel{otp.SMS, otp.Voice, otp.WhatsApp},
//	})
//	v, err := otp.NewVerifier(p, store, otp.Config{CodeLength: 6, TTL: 10 * time.Minute})
//
// The Service's code length is not sent per request: set
// otp.Config.CodeLength to it. Twilio keeps a code 10 minutes and allows
// 5 checks and 5 sends per verification; keep otp.Config.TTL at most 10
// minutes and MaxAttempts at most 5 (the defaults are 5 minutes and 5).
// Both credential pairs are sent as HTTP Basic; Configs, providers and the
// webhook handler print without their secrets with any fmt verb.
//
// Config.SendOptions set a start's optional parameters for every send
// (Locale, CustomFriendlyName, AppHash, TemplateSID and substitutions,
// RiskCheck) and Config.PerSend may change them for one send, say a
// template for one country or a custom code. Config.ClientRateLimit
// passes the caller's client ID (otp.WithClient) to a Service Rate Limit
// and Config.DeviceIP sends it as DeviceIp when it is an IP address.
// AppHash, TemplateSid, its substitutions and RiskCheck go only with SMS,
// the only channel Twilio takes them on.
//
// # Errors
//
// Every failure is a *[otp.ProviderError] carrying the HTTP status and
// Twilio's code (VendorStatus "60203"; for a 200 check, the status),
// matched with [errors.Is]. Twilio's code decides; without one, the HTTP
// status:
//
//	Twilio's answer                                 error
//	check 200, status approved                      nil
//	check 200, status pending (valid false)         otp.ErrWrongCode (the Verifier counts what is left)
//	check 200, status expired                       otp.ErrExpired
//	check 200 max_attempts_reached; check 429/60202 otp.ErrTooManyAttempts
//	check 200 canceled, deleted, failed             otp.ErrNotFound
//	404/20404, 60431 (check, cancel, resend)        otp.ErrNotFound: also after approval or expiry,
//	                                                never a success (after a lost try: unavailable)
//	60200 naming To; 403/60205 landline; 21211,
//	21612, 21614                                    otp.ErrInvalidPhone
//	60200 naming Code (check)                       otp.ErrInvalidCode
//	429/60203; 60202 on a start                     ErrMaxSendAttempts, rejected
//	429/60212                                       ErrConcurrentRequests, rejected
//	403/60410, 60412, 60413 (Fraud Guard, Signup
//	Prevention, Device Intelligence); 403/60605
//	(Geo Permissions); 21408                        ErrBlocked with otp.ErrRegionNotAllowed, rejected
//	401/20003, 403/20403, 20404 on a start (no such
//	Service), 60204, 60217, 60223, 68008, 21608     otp.ErrProviderAccount
//	429/20429, 60245; a 429 without code; 5xx       otp.ErrProviderUnavailable
//	any other code or status                        otp.ErrProviderRejected
//	a 2xx whose body is not the operation's         otp.ErrProviderUnavailable, NotSent false
//
// Fraud Guard and Geo Permissions blocks match otp.ErrRegionNotAllowed, so
// that otp.ErrorClass names them "refused_destination", as the Guard's own
// refusals, and a person is told the destination cannot be served;
// ErrBlocked and VendorStatus tell them apart from the Guard's. Refusals
// of the account (credentials, a suspended or trial account, a Service
// without the feature or channel asked for) have Kind otp.ProviderAccount:
// they end when the account is fixed, and [otp.Failover] moves past them.
// Max send attempts and concurrent requests are the destination's limits
// at Twilio, not throttling of the account: rejected, so that a Failover
// does not send the person a code from another vendor.
//
// ProviderError.NotSent is true when Twilio surely did not act on the
// call: no try reached it, or every answer refused it (a 4xx, a 429 or 503
// with Retry-After, a wrong code). It is false when Twilio may have acted:
// a timeout or dropped connection after the request was written, a 5xx,
// or a 2xx that is not the operation's answer (empty, HTML, truncated,
// null, an array, over the size cap, a start that is not pending, a check
// of another SID). A check whose earlier try was lost and whose retry is a
// 404 is otp.ErrProviderUnavailable, not otp.ErrNotFound, because Twilio
// answers 404 once a code was approved.
//
// # Resends and pending verifications
//
// Twilio has no resend call: a start to a destination that has a pending
// verification on the Service sends that verification's code again and
// answers its SID (each such start counts toward the five sends). Resend
// does exactly that. It reads the verification first (GET, retried as
// reads are) for its destination and channel, so that one Twilio no
// longer has fails with otp.ErrNotFound (otp.ErrExpired,
// otp.ErrTooManyAttempts) and sends nothing; then it starts again with
// the same To and channel, with Config.SendOptions and PerSend (whose
// request has only To, Channel and Region: the first send's locale and
// client are not known, and its custom code is not sent again). If the
// start answers another SID (the verification ended in
// between), Resend cancels that new verification and fails with
// otp.ErrNotFound, NotSent false: it never leaves a second one pending.
//
// A start (Send) to a number that has a verification pending under
// another key of the caller joins it, deliberately: Twilio keeps one
// pending verification per destination and Service, sends its code again
// and answers its SID, and Send returns that SID. Both keys then hold one
// verification: the code works once, for whichever key checks it first,
// and the other then gets otp.ErrNotFound; Twilio's five checks are
// shared; cancelling it through one key (otp.Verifier.Cancel, a
// replacement, a burn) ends it for both. This is also what repairs a start
// whose answer was lost: the next start finds the verification it made.
// The Verifier itself cancels a key's old verification before it starts
// again for the same key and number, so that one key gets a new code. Use
// the phone number as the key where several sessions may verify one
// number.
//
// # Retries
//
// Requests go through the shared HTTP layer on
// github.com/hashicorp/go-retryablehttp, its logger off, under
// Config.Retry (an [otp.RetryPolicy]). Twilio has no idempotency key, so a
// start (and the start of a Resend) is retried only when Twilio surely
// did not act: the try got no connection (refused, DNS), or Twilio
// answered 429 or 503 with a Retry-After no longer than
// RetryPolicy.MaxRetryAfter, which is waited for. Checks, cancels and the
// read of a Resend are also retried after timeouts, dropped connections,
// 429 and 500/502/503/504 answers; a 429 carrying 60202, 60203 or 60212 is
// a limit of the verification, not throttling, and is never retried.
// RetryPolicy.Timeout bounds each call; answers are read through one size
// cap; SIDs are checked for their shape before they go into a path or a
// form.
//
// # Status events
//
// Verify reports verifications through Event Streams, not per request:
// subscribe a webhook sink to the Verify events and mount
// [NewWebhookHandler] at its URL. The handler checks X-Twilio-Signature
// (HMAC-SHA1 with the account's Auth Token, in constant time: of the URL
// and sorted form parameters, or for JSON of the URL with a matching
// bodySHA256, or of the URL and the body), before any hook runs, and
// turns pending, approved, canceled, expired and max_attempts_reached
// into [otp.Event]s. [ValidateSignature] and [ValidateBody] check
// signatures on their own.
//
// # Twilio behaviours to know
//
//   - Test credentials do not work with Verify; use package twiliotest.
//   - Twilio deletes a verification once it is approved, expired,
//     cancelled or out of checks: every later call is 404/20404, and the
//     adapter cannot tell these apart (neither can Twilio's SDKs).
//   - CustomFriendlyName and custom codes need Twilio to enable them on
//     the Service; without it a start is refused with 60204, which is
//     Kind otp.ProviderAccount.
package twilio
