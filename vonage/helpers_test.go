package vonage_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

const (
	testKey    = "test-key"
	testSecret = "s3cr3t-api-secret"
	testAppID  = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	testPhone  = "+447700900001"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaPEM  []byte
)

// testRSA returns one RSA key per test binary (generating one is slow).
func testRSA(tb testing.TB) (*rsa.PrivateKey, []byte) {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
		rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	})
	return rsaKey, rsaPEM
}

// fastRetry keeps retry waits in tests to a millisecond.
var fastRetry = otp.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}

type fixture struct {
	clock *otptest.Clock
	srv   *vonagetest.Server
}

func newFixture(t *testing.T, cfg vonagetest.Config) *fixture {
	t.Helper()
	clock := otptest.NewClock(time.Time{})
	cfg.Clock = clock
	if cfg.APISecret == "" {
		cfg.APIKey, cfg.APISecret = testKey, testSecret
	}
	srv := vonagetest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return &fixture{clock: clock, srv: srv}
}

func (f *fixture) v2(t *testing.T, mutate func(*vonage.V2Config)) *vonage.V2 {
	t.Helper()
	cfg := vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: f.srv.URL,
		HTTPClient: f.srv.Client(), Clock: f.clock, Retry: fastRetry}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := vonage.NewV2(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) legacy(t *testing.T, mutate func(*vonage.LegacyConfig)) *vonage.Legacy {
	t.Helper()
	cfg := vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: f.srv.URL,
		HTTPClient: f.srv.Client(), Clock: f.clock, Retry: fastRetry}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := vonage.NewLegacy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sms(to string) otp.SendRequest {
	return otp.SendRequest{To: to, Channel: otp.SMS, CodeLength: 6}
}

// mustIs fails unless errors.Is(err, target) for every target.
func mustIs(t *testing.T, err error, targets ...error) {
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
func providerError(t *testing.T, err error) *otp.ProviderError {
	t.Helper()
	var pe *otp.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *otp.ProviderError", err, err)
	}
	return pe
}
