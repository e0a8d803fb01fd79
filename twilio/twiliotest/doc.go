// Package twiliotest is an httptest-based fake of Twilio Verify v2, for
// tests of the twilio adapter and of code wired to it. It sends nothing: a
// test reads the code it "sent" with [Server.LastCode] or [Server.Code].
//
// The fake follows Twilio's documented behaviour, with the default
// lifecycle of a Verify Service:
//
//   - start (201), check (200), fetch (200) and update (cancel or approve,
//     200) of verifications, with Twilio's error body
//     {"code","message","more_info","status"};
//   - HTTP Basic with the Account SID and Auth Token or with an API key
//     SID and secret ([Send.Identity] says which), else 401/20003; an
//     unknown Service is 404/20404;
//   - a start to a destination that has a pending verification sends its
//     code again and answers its SID; the sixth send of a verification is
//     429/60203; a check past the fifth is 429/60202 and every later one
//     404, and so is a check of an approved, cancelled or expired
//     verification (codes live 10 minutes by Config.Clock);
//   - a wrong code is 200 with status "pending" and valid false;
//   - per-start parameters are checked as Twilio does: a disabled channel
//     is 400/60223, CustomCode or CustomFriendlyName on a Service without
//     them 403/60204, AppHash or TemplateSid off SMS 400/60602 and
//     400/60408, a malformed To, RateLimits, DeviceIp or RiskCheck
//     400/60200; Config.Refuse answers chosen destinations with a code
//     (Fraud Guard 60410, Geo Permissions 60605, landline 60205, ...),
//     which RiskCheck=disable lets past for the two fraud blocks.
//
// Where Twilio's behaviour is unverified the fake is configurable:
// Config.MaxChecksStatus (429 then 404, or 404 at once, after the last
// check), Config.NewSIDOnChannelChange (a start on another channel to a
// pending destination keeps the SID, or makes a new verification), and
// the limits and lifetime themselves.
//
// [Server.FailNext] scripts failures per endpoint [Op] (a status with a
// Twilio code, a raw body, a Retry-After, a dropped connection, a delay:
// one longer than the client's timeout is a hang, released by Close), and
// [Server.Calls] and [Server.Connections] count what reached the fake, to
// test retry policies and connection reuse. The vocabulary is
// otptest.Provider's, shared by every fake of this module. [Sign],
// [SignJSON] and [Server.Event] make signed Verify events for tests of
// twilio.NewWebhookHandler.
//
//	fake := twiliotest.NewServer(twiliotest.Config{})
//	defer fake.Close()
//	p, _ := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID,
//		AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, BaseURL: fake.URL})
//	ref, _ := p.Send(ctx, otp.SendRequest{To: "+14155550100", Channel: otp.SMS})
//	code, _ := fake.LastCode("+14155550100")
//	err := p.Check(ctx, ref, code) // nil
package twiliotest
