// Package infobip is an [otp.Provider] for Infobip's 2FA API: Infobip
// generates the PIN, sends it by SMS, voice call or email, and verifies
// it. [Client] also implements [otp.Resender] (Infobip resends the same
// PIN on the channel it was sent on) and sets up 2FA applications and
// message templates ([Client.EnsureSetup]).
//
// Infobip offers no way to cancel a PIN, so Client does not implement
// [otp.Canceler]: the Verifier then cancels locally only, which already
// makes every later Check fail; the PIN itself expires after the
// application's pinTimeToLive.
//
// # Configuration
//
// Run [Client.EnsureSetup] once (examples/infobip-setup does it from
// environment variables) to get the application and template IDs, then:
//
//	c, err := infobip.New(infobip.Config{
//		BaseURL:       "https://xxxxx.api.infobip.com", // your account's base URL
//		APIKey:        os.Getenv("INFOBIP_API_KEY"),
//		ApplicationID: "0933F3BC087D2A617AC6DCB2EF5B8A61",
//		SMSMessageID:  "9C815F8AF3328",
//		NumberLookup:  false, // stated on every SMS send; Infobip's own default is on
//	})
//	v, err := otp.NewVerifier(c, store, otp.Config{CodeLength: 6}) // = the template's pinLength
//
// The template fixes the PIN length, type and language: SendRequest's
// CodeLength and Locale are not sent. Use NUMERIC PINs, as the Verifier
// accepts digits only, and an application with pinAttempts at least
// otp.Config.MaxAttempts and AllowMultiplePinVerifications off (the zero
// value of [AppConfig]).
//
// # Outcomes
//
// Infobip answers a wrong PIN with HTTP 200, so Check reads the body:
//
//	verified:true (same pinId)              nil
//	WRONG_PIN, attemptsRemaining > 0        *otp.WrongCodeError (matches otp.ErrWrongCode)
//	WRONG_PIN with 0 left; NO_MORE_PIN_ATTEMPTS; no pinError with 0 left
//	                                        otp.ErrTooManyAttempts
//	TTL_EXPIRED                             otp.ErrExpired
//	HTTP 404 (unknown pin)                  otp.ErrNotFound (also from Resend), unless an
//	                                        earlier try was lost: otp.ErrProviderUnavailable
//	unknown pinError                        *otp.ProviderError, rejected
//
// A send is a success only when the PIN went out: MESSAGE_NOT_SENT and
// REJECTED_*/UNDELIVERABLE_*/EXPIRED_* statuses are rejected
// *otp.ProviderError values, and a Number Lookup that finds the number
// unreachable also matches otp.ErrInvalidPhone, as does a 400 whose
// validation errors name "to". Other failures are *otp.ProviderError
// values classified by HTTP status first, with the vendor status from
// either error envelope (the legacy requestError.serviceException.messageId
// or the newer errorCode): 400, 404 and other 4xx are rejected; 429 and
// 5xx are temporary (otp.ErrProviderUnavailable); 401 and 403 refuse the
// account (key, scopes), not the person: Kind otp.ProviderAccount,
// matching otp.ErrProviderAccount, and otp.Failover moves past them. An empty, HTML, truncated or oversized body is never a
// success. A vendor's Retry-After is on ProviderError.RetryAfter.
//
// ProviderError.NotSent is true when Infobip surely did not act: no try
// reached it, or every answer refused the request (a 4xx, a 429 or 503
// with Retry-After, a well-formed refusal such as MESSAGE_NOT_SENT). A
// temporary send error with NotSent false (a timeout after the request
// was written, a 500, an unreadable 2xx) means the PIN may have gone out:
// otp.Failover does not move on.
//
// # Retries
//
// Requests go through the shared HTTP layer on
// github.com/hashicorp/go-retryablehttp, its logger off, under
// Config.Retry (an [otp.RetryPolicy]). Infobip has no idempotency key, so
// sends, resends and creates are retried only when Infobip surely did not
// act: the try got no connection (refused, DNS), or Infobip answered 429
// or 503 with a Retry-After no longer than RetryPolicy.MaxRetryAfter.
// Verifies, reads and updates are also retried on other transport errors,
// 429, 500, 502, 503 and 504. Retries stop at RetryPolicy.MaxRetries, at a
// Retry-After beyond the cap, and before the call's deadline; each try is
// bounded by the HTTP client's timeout and each call by
// RetryPolicy.Timeout. Answers are read through one size cap and IDs are
// escaped in URL paths, dot segments included.
//
// # Testing
//
// Package infobiptest is a fake Infobip 2FA server that keeps PIN rules
// (attempts, TTL by a clock, send and verify limits), lets a test read the
// PIN it sent, and fails on demand.
package infobip
