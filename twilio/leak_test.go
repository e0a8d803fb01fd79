package twilio_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// TestNoGoroutineOutlivesClose: after Close, no connection goroutine of
// the provider's own default client is left (the fake is still up).
func TestNoGoroutineOutlivesClose(t *testing.T) {
	srv := twiliotest.NewServer(twiliotest.Config{Code: "123456"})
	defer srv.Close()
	before := goleak.IgnoreCurrent() // the fake's own goroutines
	p, err := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID,
		AuthToken: twiliotest.AuthToken, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resend(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx, ref, "123456"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	goleak.VerifyNone(t, before)
}
