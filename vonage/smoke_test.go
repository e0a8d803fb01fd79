package vonage_test

import (
	"context"
	"os"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
)

// TestSmokeRealVonage sends one real code through Verify v2 and cancels it
// (best effort). It runs only with VONAGE_API_KEY, VONAGE_API_SECRET and
// VONAGE_TEST_NUMBER (E.164) set, and costs one verification.
func TestSmokeRealVonage(t *testing.T) {
	key, secret, number := os.Getenv("VONAGE_API_KEY"), os.Getenv("VONAGE_API_SECRET"), os.Getenv("VONAGE_TEST_NUMBER")
	if key == "" || secret == "" || number == "" {
		t.Skip("set VONAGE_API_KEY, VONAGE_API_SECRET and VONAGE_TEST_NUMBER to run against Vonage")
	}
	p, err := vonage.NewV2(vonage.V2Config{APIKey: key, APISecret: secret, Brand: "otp smoke"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: number, Channel: otp.SMS, CodeLength: 6})
	if err != nil {
		t.Fatal(err)
	}
	// A code that is surely wrong: Vonage must say so, not succeed.
	mustIs(t, p.Check(ctx, ref, "000000x"), otp.ErrWrongCode)
	if err := p.Cancel(ctx, ref); err != nil {
		t.Logf("cancel (refused within 30 s by Vonage): %v", err)
	}
}
