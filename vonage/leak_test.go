package vonage_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// TestNoGoroutineOutlivesClose: after Close, no connection goroutine of
// the providers' own default clients is left (the fake is still up).
func TestNoGoroutineOutlivesClose(t *testing.T) {
	srv := vonagetest.NewServer(vonagetest.Config{APIKey: testKey, APISecret: testSecret, Code: "1234"})
	defer srv.Close()
	before := goleak.IgnoreCurrent() // the fake's own goroutines
	v2, err := vonage.NewV2(vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := vonage.NewLegacy(vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := v2.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if err := v2.Check(ctx, ref, "1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Send(ctx, sms("+447700900002")); err != nil {
		t.Fatal(err)
	}
	v2.Close()
	legacy.Close()
	goleak.VerifyNone(t, before)
}
