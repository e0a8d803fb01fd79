package twilio_test

import (
	"errors"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// TestResendKeepsTheVerification: Resend is a start to the same To on the
// same channel; Twilio sends the same code under the same SID, and no
// second verification exists.
func TestResendKeepsTheVerification(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.Voice})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resend(ctx, ref); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	if len(sends) != 2 || !sends[1].Resend || sends[1].SID != ref.ID || sends[1].Channel != "call" || sends[1].Code != sends[0].Code {
		t.Fatalf("sends %+v", sends)
	}
	if f.srv.Pending() != 1 || f.srv.Calls(twiliotest.OpFetch) != 1 {
		t.Fatalf("%d pending, %d fetches", f.srv.Pending(), f.srv.Calls(twiliotest.OpFetch))
	}
	if err := p.Check(ctx, ref, sends[0].Code); err != nil {
		t.Fatal(err)
	}
	// After approval there is nothing to resend, and nothing is sent.
	mustIs(t, p.Resend(ctx, ref), otp.ErrNotFound)
	if len(f.srv.Sends()) != 2 {
		t.Fatal("a resend of an approved verification sent a code")
	}
}

// TestResendLimit: Twilio's five sends per verification; the sixth is
// ErrMaxSendAttempts, a rejection that does not fall over.
func TestResendLimit(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	for range 4 {
		if err := p.Resend(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Resend(ctx, ref)
	mustIs(t, err, twilio.ErrMaxSendAttempts, otp.ErrProviderRejected)
	if pe := providerError(t, err); !pe.NotSent || pe.Op != otp.OpResend || pe.VendorStatus != "60203" {
		t.Fatalf("%+v", pe)
	}
}

// TestResendOfAnEndedVerification: the read says it ended: the matching
// error, and no start.
func TestResendOfAnEndedVerification(t *testing.T) {
	for status, want := range map[string]error{"expired": otp.ErrExpired, "max_attempts_reached": otp.ErrTooManyAttempts,
		"canceled": otp.ErrNotFound, "approved": otp.ErrNotFound} {
		f := newFixture(t, twiliotest.Config{})
		p := f.provider(t, nil)
		ref, _ := p.Send(ctx, sms(testPhone))
		f.srv.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 200, Body: verif(ref.ID, status, false)})
		err := p.Resend(ctx, ref)
		mustIs(t, err, want)
		if pe := providerError(t, err); !pe.NotSent || pe.VendorStatus != status || f.srv.Calls(twiliotest.OpStart) != 1 {
			t.Fatalf("%s: %+v, %d starts", status, pe, f.srv.Calls(twiliotest.OpStart))
		}
	}
	// Gone at Twilio (404), or a read that is not a verification.
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	f.clock.Advance(10 * time.Minute)
	err := p.Resend(ctx, ref)
	mustIs(t, err, otp.ErrNotFound)
	if pe := providerError(t, err); pe.Op != otp.OpResend || !pe.NotSent {
		t.Fatalf("%+v", pe)
	}
	f.srv.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 200, Body: "<html>"})
	mustIs(t, p.Resend(ctx, ref), otp.ErrProviderUnavailable)
	f.srv.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 200, Body: verif("VEffffffffffffffffffffffffffffffff", "pending", false)})
	mustIs(t, p.Resend(ctx, ref), otp.ErrProviderUnavailable)
	if f.srv.Calls(twiliotest.OpStart) != 1 {
		t.Fatal("a resend started after a failed read")
	}
}

// TestResendNeverLeavesASecondVerification: when the verification ends
// between the read and the start, the start makes a new one; Resend
// cancels it and fails with ErrNotFound, NotSent false.
func TestResendNeverLeavesASecondVerification(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	// Twilio forgets it; the read still says pending (it raced).
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	f.srv.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 200, Body: `{"sid":"` + ref.ID + `","status":"pending","to":"` + testPhone + `","channel":"sms"}`})
	err := p.Resend(ctx, ref)
	mustIs(t, err, otp.ErrNotFound, otp.ErrProviderRejected)
	if pe := providerError(t, err); pe.NotSent {
		t.Fatal("a code went out: NotSent must be false")
	}
	if f.srv.Pending() != 0 || f.srv.Calls(twiliotest.OpStart) != 2 {
		t.Fatalf("%d pending after %d starts", f.srv.Pending(), f.srv.Calls(twiliotest.OpStart))
	}
}

// TestVerifierResend: through otp.Verifier, Resend after the cooldown
// keeps the stored verification.
func TestVerifierResend(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	v := newVerifier(t, f, p)
	if _, err := v.Start(ctx, "session-1", testPhone); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := v.Resend(ctx, "session-1"); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	if len(sends) != 2 || sends[1].SID != sends[0].SID || f.srv.Pending() != 1 {
		t.Fatalf("%+v", sends)
	}
	if _, err := v.Check(ctx, "session-1", sends[1].Code); err != nil {
		t.Fatal(err)
	}
}

// TestTwoKeysShareANumber is the documented behaviour when a start goes to
// a number that has a verification pending under another key: Twilio
// joins it (same SID, same code, sent again), and the keys share it. The
// code works once, for the first key that checks it; the other key then
// gets ErrNotFound.
func TestTwoKeysShareANumber(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	v := newVerifier(t, f, p)
	if _, err := v.Start(ctx, "key-a", testPhone); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Start(ctx, "key-b", testPhone); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	if len(sends) != 2 || sends[0].SID != sends[1].SID || !sends[1].Resend || f.srv.Pending() != 1 {
		t.Fatalf("want one verification sent twice: %+v", sends)
	}
	if _, err := v.Check(ctx, "key-b", sends[1].Code); err != nil {
		t.Fatal(err)
	}
	_, err := v.Check(ctx, "key-a", sends[0].Code)
	if !errors.Is(err, otp.ErrNotFound) {
		t.Fatalf("the other key: %v, want ErrNotFound", err)
	}
}

// TestRestartSameKeyCancelsFirst: the Verifier cancels the old
// verification before it starts again for the same key and number after
// the cooldown, so Twilio makes a new one with a new code.
func TestRestartSameKeyCancelsFirst(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	v := newVerifier(t, f, p)
	_, _ = v.Start(ctx, "key-a", testPhone)
	f.clock.Advance(31 * time.Second)
	if _, err := v.Start(ctx, "key-a", testPhone); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	if len(sends) != 2 || sends[0].SID == sends[1].SID || sends[1].Resend || f.srv.Pending() != 1 {
		t.Fatalf("%+v", sends)
	}
	if st, _ := f.srv.State(sends[0].SID); st != "canceled" {
		t.Fatal(st)
	}
}

// TestResendRunsPerSend: PerSend runs for the start of a Resend, with the
// destination's region, and a custom code is not sent again.
func TestResendRunsPerSend(t *testing.T) {
	f := newFixture(t, twiliotest.Config{CustomCodes: true})
	var regions []string
	p := f.provider(t, func(c *twilio.Config) {
		c.PerSend = func(req otp.SendRequest, o *twilio.SendOptions) {
			regions = append(regions, req.Region)
			o.CustomCode = "135791"
			if req.Region == "US" {
				o.TemplateSID = "HJ0123456789abcdef0123456789abcdef"
			}
		}
	})
	req := sms(testPhone)
	req.Region = "US"
	ref, err := p.Send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resend(ctx, ref); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	if len(regions) != 2 || regions[1] != "US" || sends[1].Params.Get("TemplateSid") == "" || sends[1].Params.Has("CustomCode") ||
		sends[0].Params.Get("CustomCode") != "135791" || sends[1].Code != "135791" {
		t.Fatalf("regions %v, sends %+v", regions, sends)
	}
}
