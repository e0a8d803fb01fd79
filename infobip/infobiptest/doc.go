// Package infobiptest is a fake Infobip 2FA API for tests: an httptest
// server that speaks the same JSON as api.infobip.com, keeps the rules of
// a 2FA application, and lets a test read the PIN it "sent".
//
//	clock := otptest.NewClock(time.Time{})
//	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k", Clock: clock})
//	defer srv.Close()
//	appID := srv.AddApplication("test", infobiptest.AppConfig{PinAttempts: 3})
//	msgID := srv.AddMessage(appID, infobiptest.Message{Text: "Code {{pin}}", PinLength: 6})
//	c, _ := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: "k", ApplicationID: appID, SMSMessageID: msgID})
//	// ... start a verification through your handler ...
//	pin, _ := srv.LastCode("+447911123456")
//	clock.Advance(15 * time.Minute) // the PIN's TTL has passed: TTL_EXPIRED
//
// What it implements, following Infobip's OpenAPI specification:
//
//   - applications: list, create (201), read, update; configuration with
//     Infobip's defaults (10 attempts, "15m", "1/3s", "10000/1d", "3/1d")
//     and validation of the "{n}/{length}{unit}" strings;
//   - message templates: list, create, read, update, email templates;
//   - send PIN by SMS (ncNeeded: omitted means Number Lookup runs, as at
//     Infobip), voice and email; resend the same PIN; verify;
//   - PIN rules: wrong PINs answer HTTP 200 WRONG_PIN with
//     attemptsRemaining; after pinAttempts wrong PINs even the right one
//     gets NO_MORE_PIN_ATTEMPTS; past pinTimeToLive (by Config.Clock)
//     TTL_EXPIRED; a success answers attemptsRemaining 0, as Infobip's
//     examples do;
//   - limits by the clock: sendPinPerPhoneNumberLimit and
//     sendPinPerApplicationLimit (sends and resends), verifyPinLimit per
//     destination;
//   - errors in the legacy requestError envelope or, with Config.Envelope
//     Modern, the newer errorCode one; 401 for a wrong "App" key.
//
// Behaviour Infobip does not document, and the fake's choice: exceeded
// send and verify limits answer 429 TOO_MANY_REQUESTS; an unknown
// application or template on send answers 404; a disabled application
// answers 400; the attempt that uses up pinAttempts answers WRONG_PIN
// with attemptsRemaining 0; verifying a verified PIN again when
// allowMultiplePinVerifications is false answers 404; a resend neither
// extends the TTL nor checks it. Sends and resends take placeholders
// (keys with braces, or "pin", answer 400) and templates regional.indiaDlt;
// [Send] records both. Not implemented: the verification status
// endpoint, endpoint throttling, trackDelivery.
//
// [Server.FailNext] scripts failures per endpoint group [Op] (any status
// with either envelope, a raw body, Retry-After, a delay: one longer than
// the client's timeout is a hang, released by Close; a dropped
// connection), and [Server.Calls] and [Server.Connections] count what
// reached the server, so tests can assert what was retried and that
// connections are reused. The vocabulary is otptest.Provider's, shared by
// every fake of this module.
package infobiptest
