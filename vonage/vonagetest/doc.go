// Package vonagetest is an httptest-based fake of Vonage Verify v2 and the
// legacy Verify API, for tests of the vonage adapters and of code wired to
// them. It sends nothing: a test reads the code it "sent" with
// [Server.LastCode] or [Server.Code].
//
// The fake follows Vonage's documented behaviour: v2 answers 202/200/204
// and RFC 7807 problem bodies (400 wrong code, 404 unknown or already
// verified, 409 or 422 concurrent start with the in-flight request_id, 410
// after Config.MaxWrongCodes wrong codes, 422 invalid params, 401 bad
// credentials or expired JWT); the legacy API answers HTTP 200 with string
// status codes (0, 2, 3, 4, 6, 10, 16, 17, 19, 20, 101) and accepts its
// credentials as Basic, form, query or JSON. One verification per
// destination at a time; cancel only from Config.CancelAfter (30 s) after
// the start until the second channel; channels move on and codes expire by
// Config.Clock, so a test drives time with an otptest.Clock instead of
// sleeping:
//
//	clock := otptest.NewClock(time.Time{})
//	fake := vonagetest.NewServer(vonagetest.Config{Clock: clock})
//	defer fake.Close()
//	p, _ := vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "test-secret",
//		Brand: "Acme", BaseURL: fake.URL, Clock: clock})
//	ref, _ := p.Send(ctx, otp.SendRequest{To: "+447400123456", Channel: otp.SMS})
//	code, _ := fake.LastCode("+447400123456")
//	clock.Advance(4 * time.Minute) // past the 180 s channel timeout
//	err := p.Check(ctx, ref, code) // otp.ErrNotFound: expired at Vonage
//
// [Server.FailNext] scripts failures per endpoint [Op] (a status with
// optional Retry-After, a dropped connection, a delay: one longer than the
// client's timeout is a hang, released by Close), and [Server.Calls] and
// [Server.Connections] count what reached the fake, to test retry policies
// and connection reuse. The vocabulary is otptest.Provider's, shared by
// every fake of this module. [SignCallback] signs a status webhook body the way
// Vonage does, for tests of vonage.NewWebhookHandler.
package vonagetest
