package vonage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

const sigSecret = "signature-secret-0123456789abcdef"

const eventBody = `{"request_id":"c11236f4-00bf-4b89-84ba-88b25df97315","triggered_at":"2020-01-01T14:00:00.000Z","type":"event","channel":"voice","status":"completed","finalized_at":"2020-01-01T14:00:05.000Z","client_ref":"my-personal-reference"}`

const summaryBody = `{"request_id":"c11236f4-00bf-4b89-84ba-88b25df97315","submitted_at":"2020-01-01T14:00:00.000Z","status":"expired","type":"summary","channel_timeout":300,"workflow":[{"channel":"sms","initiated_at":"2020-01-01T14:00:00.000Z","status":"expired"},{"channel":"voice","status":"unused"}]}`

type webhookRig struct {
	h       *vonage.WebhookHandler
	clock   *otptest.Clock
	events  []otp.Event
	calls   []vonage.Callback
	failCBs bool
}

func newWebhookRig(t *testing.T, mutate func(*vonage.WebhookConfig)) *webhookRig {
	r := &webhookRig{clock: otptest.NewClock(time.Time{})}
	cfg := vonage.WebhookConfig{SignatureSecret: sigSecret, Clock: r.clock,
		OnEvent: func(ev otp.Event) { r.events = append(r.events, ev) },
		OnCallback: func(_ context.Context, cb vonage.Callback) error {
			r.calls = append(r.calls, cb)
			if r.failCBs {
				return errors.New("db down")
			}
			return nil
		}}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := vonage.NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

func (r *webhookRig) post(auth, body string) int {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/verify", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w.Code
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

func hash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

func TestWebhookAcceptsSignedCallbacks(t *testing.T) {
	r := newWebhookRig(t, nil)
	if code := r.post(vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()), eventBody); code != 204 {
		t.Fatalf("status %d", code)
	}
	if len(r.calls) != 1 || r.calls[0].RequestID != "c11236f4-00bf-4b89-84ba-88b25df97315" || r.calls[0].ClientRef != "my-personal-reference" {
		t.Fatalf("callbacks %+v", r.calls)
	}
	ev := r.events[0]
	if len(r.events) != 1 || ev.Kind != otp.EventChecked || ev.Op != otp.OpStart || ev.Channel != otp.Voice ||
		ev.Provider != "vonage" || ev.Duration != 5*time.Second || ev.Err != nil {
		t.Fatalf("event %+v", ev)
	}
	// With exp: accepted.
	auth := sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": r.clock.Now().Unix(),
		"exp": r.clock.Now().Add(time.Hour).Unix(), "jti": "j-summary", "payload_hash": hash(summaryBody)})
	if code := r.post(auth, summaryBody); code != 204 {
		t.Fatalf("status %d", code)
	}
	ev = r.events[1]
	if ev.Kind != otp.EventFailed || ev.Op != otp.OpCheck || ev.Channel != otp.SMS || !errors.Is(ev.Err, otp.ErrExpired) || ev.Class != "expired" {
		t.Fatalf("summary event %+v", ev)
	}
}

func TestWebhookRejectsWithoutSideEffects(t *testing.T) {
	key, _ := testRSA(t)
	r := newWebhookRig(t, func(c *vonage.WebhookConfig) { c.MaxBody = 1024 })
	now := r.clock.Now()
	good := func(body string) string { return vonagetest.SignCallback(sigSecret, []byte(body), now) }
	big := `{"type":"event","request_id":"x","status":"completed","pad":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name, auth, body string
		want             int
	}{
		{"unsigned", "", eventBody, 401},
		{"not bearer", "Basic dGVzdDp0ZXN0", eventBody, 401},
		{"garbage token", "Bearer abc.def.ghi", eventBody, 401},
		{"forged: other secret", vonagetest.SignCallback("other-secret", []byte(eventBody), now), eventBody, 401},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"iat": now.Unix()}), eventBody, 401},
		{"rs256", sign(t, jwt.SigningMethodRS256, key, jwt.MapClaims{"iat": now.Unix()}), eventBody, 401},
		{"expired exp", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), eventBody, 401},
		{"old iat, no exp", vonagetest.SignCallback(sigSecret, []byte(eventBody), now.Add(-10*time.Minute)), eventBody, 401},
		{"iat in future", vonagetest.SignCallback(sigSecret, []byte(eventBody), now.Add(10*time.Minute)), eventBody, 401},
		{"no iat", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"payload_hash": hash(eventBody)}), eventBody, 401},
		{"body swapped", good(eventBody), summaryBody, 401},
		{"hash not a string", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": now.Unix(), "payload_hash": 5}), eventBody, 401},
		{"no payload_hash", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": now.Unix(), "jti": "j1"}), eventBody, 401},
		{"old iat, far exp", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": now.AddDate(-1, 0, 0).Unix(),
			"exp": now.AddDate(10, 0, 0).Unix(), "jti": "j2", "payload_hash": hash(eventBody)}), eventBody, 401},
		{"no jti", sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": now.Unix(), "payload_hash": hash(eventBody)}), eventBody, 401},
		{"oversized", good(big), big, 413},
		{"not json", good("hello"), "hello", 400},
		{"not a callback", good(`{"type":"other"}`), `{"type":"other"}`, 400},
	} {
		if code := r.post(tc.auth, tc.body); code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.want)
		}
	}
	if len(r.calls) != 0 || len(r.events) != 0 {
		t.Fatalf("hooks ran for rejected requests: %v %v", r.calls, r.events)
	}
	// A declared Content-Length over the cap is refused before reading.
	req := httptest.NewRequest(http.MethodPost, "/", mustNotRead{t})
	req.ContentLength = 1 << 30
	req.Header.Set("Authorization", good(big))
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatal(w.Code)
	}
	// An undeclared length is capped while reading.
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(big))
	req.ContentLength = -1
	req.Header.Set("Authorization", good(big))
	w = httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != 413 || len(r.calls) != 0 {
		t.Fatal(w.Code)
	}
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	w = httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != 405 {
		t.Fatal(w.Code)
	}
}

type mustNotRead struct{ t *testing.T }

func (m mustNotRead) Read([]byte) (int, error) {
	m.t.Error("body read despite its declared length")
	return 0, io.EOF
}

func TestWebhookAllowMissingPayloadHash(t *testing.T) {
	r := newWebhookRig(t, func(c *vonage.WebhookConfig) { c.AllowMissingPayloadHash = true })
	auth := sign(t, jwt.SigningMethodHS256, []byte(sigSecret), jwt.MapClaims{"iat": r.clock.Now().Unix(), "jti": "j1"})
	if code := r.post(auth, eventBody); code != 204 {
		t.Fatalf("status %d", code)
	}
	// A payload_hash that is present is still checked.
	if code := r.post(vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()), summaryBody); code != 401 || len(r.calls) != 1 {
		t.Fatalf("status %d, %d callbacks", code, len(r.calls))
	}
}

// TestWebhookRefusesReplays: a token is accepted once within its
// lifetime; a redelivery after a failed hook is accepted again.
func TestWebhookRefusesReplays(t *testing.T) {
	r := newWebhookRig(t, nil)
	auth := vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now())
	if code := r.post(auth, eventBody); code != 204 {
		t.Fatalf("status %d", code)
	}
	r.clock.Advance(4 * time.Minute)
	if code := r.post(auth, eventBody); code != 401 || len(r.calls) != 1 || len(r.events) != 1 {
		t.Fatalf("replay: status %d, %d callbacks", code, len(r.calls))
	}
	r.failCBs = true
	auth = vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now())
	if code := r.post(auth, eventBody); code != 500 {
		t.Fatalf("failing hook: status %d", code)
	}
	r.failCBs = false
	if code := r.post(auth, eventBody); code != 204 || len(r.events) != 2 {
		t.Fatalf("redelivery after a failed hook: status %d", code)
	}
}

// TestWebhookReplayMemoryIsBounded: with MaxTokens live tokens remembered
// the handler refuses (503, Retry-After) until the oldest could no longer
// be accepted, then forgets it.
func TestWebhookReplayMemoryIsBounded(t *testing.T) {
	r := newWebhookRig(t, func(c *vonage.WebhookConfig) { c.MaxTokens = 2 })
	for range 2 {
		if code := r.post(vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()), eventBody); code != 204 {
			t.Fatalf("status %d", code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(eventBody))
	req.Header.Set("Authorization", vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()))
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") != "360" || len(r.calls) != 2 {
		t.Fatalf("full: status %d, Retry-After %q, %d callbacks", w.Code, w.Header().Get("Retry-After"), len(r.calls))
	}
	r.clock.Advance(6 * time.Minute) // MaxAge and Leeway: both are forgotten
	for range 2 {
		if code := r.post(vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()), eventBody); code != 204 {
			t.Fatalf("after expiry: status %d", code)
		}
	}
}

func TestWebhookHookErrorAsksForRedelivery(t *testing.T) {
	r := newWebhookRig(t, nil)
	r.failCBs = true
	if code := r.post(vonagetest.SignCallback(sigSecret, []byte(eventBody), r.clock.Now()), eventBody); code != 500 {
		t.Fatalf("status %d", code)
	}
	if len(r.events) != 0 {
		t.Fatal("event emitted for a callback the caller failed to take")
	}
}

func TestWebhookEventMapping(t *testing.T) {
	for _, tc := range []struct {
		typ, status string
		kind        otp.EventKind // "" for none
		class       string
	}{
		{"event", "completed", otp.EventChecked, ""},
		{"event", "failed", otp.EventFailed, "provider_rejected"},
		{"event", "rejected", otp.EventFailed, "provider_rejected"},
		{"event", "user_rejected", otp.EventFailed, "provider_rejected"},
		{"event", "action_pending", otp.EventSent, ""},
		{"event", "expired", otp.EventFailed, "expired"},
		{"summary", "completed", otp.EventChecked, ""},
		{"summary", "failed", otp.EventFailed, "provider_rejected"},
		{"summary", "expired", otp.EventFailed, "expired"},
		{"summary", "blocked", otp.EventFailed, "provider_rejected"},
		{"summary", "something_new", "", ""},
	} {
		r := newWebhookRig(t, nil)
		body := fmt.Sprintf(`{"type":%q,"request_id":"r","status":%q,"channel":"sms","workflow":[{"channel":"sms","status":%q}]}`, tc.typ, tc.status, tc.status)
		if code := r.post(vonagetest.SignCallback(sigSecret, []byte(body), r.clock.Now()), body); code != 204 {
			t.Fatalf("%s/%s: status %d", tc.typ, tc.status, code)
		}
		if len(r.calls) != 1 {
			t.Fatalf("%s/%s: OnCallback not called", tc.typ, tc.status)
		}
		if tc.kind == "" {
			if len(r.events) != 0 {
				t.Fatalf("%s/%s: unexpected event %+v", tc.typ, tc.status, r.events)
			}
			continue
		}
		if len(r.events) != 1 || r.events[0].Kind != tc.kind || r.events[0].Class != tc.class || r.events[0].Channel != otp.SMS {
			t.Fatalf("%s/%s: events %+v", tc.typ, tc.status, r.events)
		}
		var pe *otp.ProviderError
		if tc.class == "provider_rejected" && (!errors.As(r.events[0].Err, &pe) || pe.VendorStatus != tc.status) {
			t.Fatalf("%s/%s: err %v", tc.typ, tc.status, r.events[0].Err)
		}
	}
}

func TestWebhookConfigValidation(t *testing.T) {
	if _, err := vonage.NewWebhookHandler(vonage.WebhookConfig{OnEvent: func(otp.Event) {}}); err == nil {
		t.Fatal("no secret accepted")
	}
	if _, err := vonage.NewWebhookHandler(vonage.WebhookConfig{SignatureSecret: "s"}); err == nil {
		t.Fatal("no hook accepted")
	}
}
