package twilio_test

import (
	"errors"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

const (
	testPhone = "+14155550100"
	// testDigits is testPhone without "+", to look for in error texts.
	testDigits = "14155550100"
)

// fastRetry keeps retry waits in tests to a millisecond.
var fastRetry = otp.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}

type fixture struct {
	clock *otptest.Clock
	srv   *twiliotest.Server
}

func newFixture(t testing.TB, cfg twiliotest.Config) *fixture {
	t.Helper()
	clock := otptest.NewClock(time.Time{})
	cfg.Clock = clock
	srv := twiliotest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return &fixture{clock: clock, srv: srv}
}

// config is a Config for the fake, with the account identity.
func (f *fixture) config() twilio.Config {
	return twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken,
		BaseURL: f.srv.URL, HTTPClient: f.srv.Client(), Clock: f.clock, Retry: fastRetry}
}

func (f *fixture) provider(t testing.TB, mutate func(*twilio.Config)) *twilio.Provider {
	t.Helper()
	cfg := f.config()
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func sms(to string) otp.SendRequest {
	return otp.SendRequest{To: to, Channel: otp.SMS, CodeLength: 6}
}

// mustIs fails unless errors.Is(err, target) for every target.
func mustIs(t testing.TB, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %q does not match %v", err, target)
		}
	}
}

// providerError returns err as a *otp.ProviderError or fails.
func providerError(t testing.TB, err error) *otp.ProviderError {
	t.Helper()
	var pe *otp.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *otp.ProviderError", err, err)
	}
	return pe
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// newVerifier is a Verifier on p with a memstore, both on f's clock, and
// Twilio's ten-minute lifetime.
func newVerifier(t testing.TB, f *fixture, p otp.Provider) *otp.Verifier {
	t.Helper()
	store := memstore.New(memstore.Config{Clock: f.clock})
	t.Cleanup(func() { store.Close() })
	v, err := otp.NewVerifier(p, store, otp.Config{Clock: f.clock, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
