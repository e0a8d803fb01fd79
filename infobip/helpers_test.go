package infobip_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/otptest"
)

const (
	apiKey  = "test-api-key-0123456789"
	phone   = "+447911123456"
	digits  = "447911123456"
	address = "jane@example.com"
)

// env is a Client wired to a fake server with one application and a
// template per channel.
type env struct {
	srv    *infobiptest.Server
	clock  *otptest.Clock
	client *infobip.Client
	ids    infobip.SetupIDs
}

// newEnv starts a fake server whose application allows 3 PIN attempts, a
// 15 minute TTL, 3 sends per number a day and many verifies, and a client
// with millisecond retry waits. mod may change the client's Config.
func newEnv(t testing.TB, app infobiptest.AppConfig, fake infobiptest.Config, mod func(*infobip.Config)) *env {
	t.Helper()
	e := &env{clock: otptest.NewClock(time.Time{})}
	fake.APIKey, fake.Clock = apiKey, e.clock
	e.srv = infobiptest.NewServer(fake)
	t.Cleanup(e.srv.Close)
	e.ids.ApplicationID = e.srv.AddApplication("otp-test", app)
	e.ids.SMSMessageID = e.srv.AddMessage(e.ids.ApplicationID, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})
	e.ids.VoiceMessageID = e.srv.AddMessage(e.ids.ApplicationID, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})
	e.ids.EmailMessageID = e.srv.AddMessage(e.ids.ApplicationID, infobiptest.Message{PinLength: 6, Email: true})
	cfg := infobip.Config{
		BaseURL: e.srv.URL, APIKey: apiKey, ApplicationID: e.ids.ApplicationID,
		SMSMessageID: e.ids.SMSMessageID, VoiceMessageID: e.ids.VoiceMessageID, EmailMessageID: e.ids.EmailMessageID,
		Clock: e.clock, Retry: otp.RetryPolicy{MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := infobip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	return e
}

// defaultApp is the application most tests use.
var defaultApp = infobiptest.AppConfig{PinAttempts: 3, VerifyPinLimit: "1000/1s"}

// canned serves fixed answers and records what it received.
type canned struct {
	mu       sync.Mutex
	status   int
	header   http.Header
	body     string
	requests int
	paths    []string // escaped path and query of each request
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	p := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	c.paths = append(c.paths, p)
	status, body := c.status, c.body
	for k, v := range c.header {
		w.Header()[k] = v
	}
	c.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (c *canned) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// cannedClient starts an httptest server with h and a Client for it that
// never retries unless mod says so.
func cannedClient(t *testing.T, h http.Handler, mod func(*infobip.Config)) *infobip.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := infobip.Config{
		BaseURL: srv.URL, APIKey: apiKey, ApplicationID: "APP", SMSMessageID: "SMS", VoiceMessageID: "VOICE",
		EmailMessageID: "EMAIL", Retry: otp.RetryPolicy{MaxRetries: -1, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := infobip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// providerError returns err's *otp.ProviderError or fails the test.
func providerError(t *testing.T, err error) *otp.ProviderError {
	t.Helper()
	var pe *otp.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *otp.ProviderError", err, err)
	}
	return pe
}
