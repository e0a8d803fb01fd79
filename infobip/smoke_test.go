package infobip_test

import (
	"os"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
)

// TestSmoke talks to the real Infobip API when INFOBIP_BASE_URL and
// INFOBIP_API_KEY are set, and skips otherwise. It lists the account's 2FA
// applications (read-only). With INFOBIP_APPLICATION_ID,
// INFOBIP_SMS_MESSAGE_ID and INFOBIP_TEST_TO (an E.164 number you own) it
// also sends one SMS and checks that a wrong PIN is refused.
func TestSmoke(t *testing.T) {
	base, key := os.Getenv("INFOBIP_BASE_URL"), os.Getenv("INFOBIP_API_KEY")
	if base == "" || key == "" {
		t.Skip("INFOBIP_BASE_URL and INFOBIP_API_KEY not set")
	}
	c, err := infobip.New(infobip.Config{
		BaseURL: base, APIKey: key,
		ApplicationID: os.Getenv("INFOBIP_APPLICATION_ID"), SMSMessageID: os.Getenv("INFOBIP_SMS_MESSAGE_ID"),
	})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.Applications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d 2FA applications", len(apps))
	to := os.Getenv("INFOBIP_TEST_TO")
	if to == "" || !c.Supports(otp.SMS) {
		return
	}
	ref, err := c.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, ref, "00000000"); err == nil {
		t.Fatal("a made-up PIN was accepted")
	} else {
		t.Logf("made-up PIN: %v", err)
	}
}
