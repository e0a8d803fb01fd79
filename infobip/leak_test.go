package infobip_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// TestNoGoroutineOutlivesClose: after Close, no connection goroutine of
// the Client's own default HTTP client is left (the fake is still up).
func TestNoGoroutineOutlivesClose(t *testing.T) {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: apiKey})
	defer srv.Close()
	app := srv.AddApplication("leak", defaultApp)
	msg := srv.AddMessage(app, infobiptest.Message{Text: "{{pin}}", PinLength: 6})
	before := goleak.IgnoreCurrent() // the fake's own goroutines
	c, err := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: apiKey, ApplicationID: app, SMSMessageID: msg})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := c.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := srv.LastCode(phone)
	if err := c.Check(ctx, ref, pin); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
