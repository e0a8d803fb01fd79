package twilio_test

import (
	"context"
	"os"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
)

// TestSmokeRealTwilio sends one real code through Verify and cancels it.
// It runs only with TWILIO_SERVICE_SID, TWILIO_TEST_NUMBER (E.164) and
// either TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET or
// TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN set, and costs one
// verification.
func TestSmokeRealTwilio(t *testing.T) {
	service, number := os.Getenv("TWILIO_SERVICE_SID"), os.Getenv("TWILIO_TEST_NUMBER")
	cfg := twilio.Config{ServiceSID: service, APIKeySID: os.Getenv("TWILIO_API_KEY_SID"), APIKeySecret: os.Getenv("TWILIO_API_KEY_SECRET")}
	if cfg.APIKeySID == "" {
		cfg.AccountSID, cfg.AuthToken = os.Getenv("TWILIO_ACCOUNT_SID"), os.Getenv("TWILIO_AUTH_TOKEN")
	}
	if service == "" || number == "" || cfg.APIKeySID == "" && cfg.AccountSID == "" {
		t.Skip("set TWILIO_SERVICE_SID, TWILIO_TEST_NUMBER and an API key or the account's SID and token to run against Twilio")
	}
	p, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: number, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	// A code that is surely wrong: Twilio must say so, not succeed.
	mustIs(t, p.Check(ctx, ref, "0000000000"), otp.ErrWrongCode)
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	mustIs(t, p.Check(ctx, ref, "0000000000"), otp.ErrNotFound)
}
