package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// The fact sheet's test vectors (twilio-go request_validator_test.go).
const (
	vecToken = "12345"
	vecURL   = "https://mycompany.com/myapp.php?foo=1&bar=2"
	vecSig   = "vOEb5UThFn24KEfnOFLQY2AE5FY="
	vecJSON  = `{"property": "value", "boolean": true}`
	vecHash  = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	vecBody  = "a9nBmqA0ju/hNViExpshrM61xv4="
	vecForm  = "NBdBDr/T/lgjI+tlgpXjKZQZs/k="
)

func vecParams() url.Values {
	return url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
}

func TestSignatureVectors(t *testing.T) {
	if !twilio.ValidateSignature(vecToken, vecURL, vecParams(), vecSig) {
		t.Fatal("form vector")
	}
	if !twilio.ValidateBody(vecToken, vecURL+"&bodySHA256="+vecHash, []byte(vecJSON), vecBody) {
		t.Fatal("JSON vector")
	}
	if !twilio.ValidateBody(vecToken, vecURL+"&bodySHA256="+strings.ToUpper(vecHash), []byte(vecJSON), twiliotest.Sign(vecToken, vecURL+"&bodySHA256="+strings.ToUpper(vecHash), nil)) {
		t.Fatal("an upper-case hash")
	}
	form, _ := url.ParseQuery("property=value&boolean=true")
	if !twilio.ValidateSignature(vecToken, vecURL, form, vecForm) {
		t.Fatal("form body vector")
	}
	// The default port, added or removed, still matches.
	if !twilio.ValidateSignature(vecToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", vecParams(), vecSig) {
		t.Fatal("with :443")
	}
	signed := twiliotest.Sign(vecToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", vecParams())
	if !twilio.ValidateSignature(vecToken, vecURL, vecParams(), signed) {
		t.Fatal("signed with :443, checked without")
	}
	// Anything changed fails.
	p := vecParams()
	p.Set("Digits", "1235")
	two := vecParams()
	two.Add("Digits", "9")
	for name, okay := range map[string]bool{
		"param":          twilio.ValidateSignature(vecToken, vecURL, p, vecSig),
		"extra value":    twilio.ValidateSignature(vecToken, vecURL, two, vecSig),
		"token":          twilio.ValidateSignature("12346", vecURL, vecParams(), vecSig),
		"url":            twilio.ValidateSignature(vecToken, vecURL+"&x=1", vecParams(), vecSig),
		"http":           twilio.ValidateSignature(vecToken, strings.Replace(vecURL, "https", "http", 1), vecParams(), vecSig),
		"other port":     twilio.ValidateSignature(vecToken, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", vecParams(), vecSig),
		"empty token":    twilio.ValidateSignature("", vecURL, vecParams(), vecSig),
		"not base64":     twilio.ValidateSignature(vecToken, vecURL, vecParams(), "!!"),
		"short":          twilio.ValidateSignature(vecToken, vecURL, vecParams(), "AAAA"),
		"body":           twilio.ValidateBody(vecToken, vecURL+"&bodySHA256="+vecHash, []byte(vecJSON+" "), vecBody),
		"hash":           twilio.ValidateBody(vecToken, vecURL+"&bodySHA256="+vecHash[:63]+"1", []byte(vecJSON), vecBody),
		"body, no hash":  twilio.ValidateBody(vecToken, vecURL, []byte(vecJSON), vecBody),
		"garbage url":    twilio.ValidateBody(vecToken, "%zz", []byte(vecJSON), vecBody),
		"signature case": twilio.ValidateSignature(vecToken, vecURL, vecParams(), strings.ToLower(vecSig)),
	} {
		if okay {
			t.Errorf("%s: accepted", name)
		}
	}
}

type hookRig struct {
	h      http.Handler
	events []otp.Event
	calls  []twilio.VerifyEvent
	fail   bool
}

const hookToken = "hook-token"

func newHookRig(t *testing.T, mutate func(*twilio.WebhookConfig)) *hookRig {
	r := &hookRig{}
	cfg := twilio.WebhookConfig{AuthToken: hookToken, PublicURL: "https://hooks.example.com/",
		OnEvent: func(ev otp.Event) { r.events = append(r.events, ev) },
		OnCallback: func(_ context.Context, ev twilio.VerifyEvent) error {
			r.calls = append(r.calls, ev)
			if r.fail {
				return errors.New("db down")
			}
			return nil
		}}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := twilio.NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

// post sends body to target (path and query) with the signature and
// content type given.
func (r *hookRig) post(method, target, ctype, sig, body string) int {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if sig != "" {
		req.Header.Set(twilio.SignatureHeader, sig)
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w.Code
}

// approvedEvent is the fact sheet's approved example, trimmed.
const approvedEvent = `[{"specversion":"1.0","type":"com.twilio.accountsecurity.verify.verification.approved","source":"/v2/Services/VA0123456789abcdef0123456789abcdef/Verifications/VE0123456789abcdef0123456789abcdef","id":"EZ01","dataschema":"https://events-schemas.twilio.com/AccountSecurity.VerifyEventStreamEvent/2","datacontenttype":"application/json","data":{"account_sid":"AC0123456789abcdef0123456789abcdef","service_sid":"VA0123456789abcdef0123456789abcdef","verification_sid":"VE0123456789abcdef0123456789abcdef","to":"+14155550100","verification_status":"APPROVED","country":"US","created_at":"2024-01-01T10:00:00Z","verified_at":"2024-01-01T10:00:42Z","send_code_attempts":{"count":1,"attempts":[{"time":"2024-01-01T10:00:00Z","channel":"SMS","attempt_sid":"VL01","delivery_status":"DELIVERED"}]},"check_attempts":{"count":1,"attempts":[{"time":"2024-01-01T10:00:42Z","status":"SUCCESS"}]}}}]`

func TestWebhookAcceptsSignedEvents(t *testing.T) {
	r := newHookRig(t, nil)
	const target = "/twilio/events"
	u := "https://hooks.example.com" + target
	signedURL, sig := twiliotest.SignJSON(hookToken, u, []byte(approvedEvent))
	if code := r.post("POST", strings.TrimPrefix(signedURL, "https://hooks.example.com"), "application/json", sig, approvedEvent); code != 204 {
		t.Fatalf("bodySHA256 form: %d", code)
	}
	if code := r.post("POST", target, "application/json", twiliotest.SignBody(hookToken, u, []byte(approvedEvent)), approvedEvent); code != 204 {
		t.Fatalf("URL+body form: %d", code)
	}
	if len(r.calls) != 2 || r.calls[0].VerificationSID != sid || r.calls[0].Status != "approved" || r.calls[0].To != testPhone ||
		r.calls[0].Channel != otp.SMS || r.calls[0].ID != "EZ01" || r.calls[0].SendAttempts != 1 || r.calls[0].CheckAttempts != 1 {
		t.Fatalf("callbacks %+v", r.calls)
	}
	ev := r.events[0]
	if len(r.events) != 2 || ev.Kind != otp.EventChecked || ev.Op != otp.OpCheck || ev.Provider != "twilio" || ev.Channel != otp.SMS ||
		ev.Region != "US" || ev.To != otp.MaskPhone(testPhone) || ev.Duration != 42*time.Second || ev.Err != nil {
		t.Fatalf("event %+v", ev)
	}
}

func TestWebhookEventKinds(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.Voice})
	r := newHookRig(t, func(c *twilio.WebhookConfig) { c.OnCallback = nil })
	for _, tc := range []struct {
		status string
		kind   otp.EventKind
		op     otp.Op
		want   error
		class  string
	}{
		{"pending", otp.EventSent, otp.OpStart, nil, ""},
		{"approved", otp.EventChecked, otp.OpCheck, nil, ""},
		{"canceled", otp.EventCanceled, otp.OpCancel, nil, ""},
		{"expired", otp.EventFailed, otp.OpCheck, otp.ErrExpired, "expired"},
		{"max_attempts_reached", otp.EventFailed, otp.OpCheck, otp.ErrTooManyAttempts, "too_many_attempts"},
	} {
		body, _ := f.srv.Event(ref.ID, tc.status)
		u := "https://hooks.example.com/events?x=1"
		if code := r.post("POST", "/events?x=1", "application/json", twiliotest.SignBody(hookToken, u, body), string(body)); code != 204 {
			t.Fatalf("%s: %d", tc.status, code)
		}
		ev := r.events[len(r.events)-1]
		if ev.Kind != tc.kind || ev.Op != tc.op || ev.Channel != otp.Voice || ev.Class != tc.class ||
			tc.want != nil && !errors.Is(ev.Err, tc.want) || tc.want == nil && ev.Err != nil {
			t.Errorf("%s: %+v", tc.status, ev)
		}
	}
	// Events of other kinds reach only OnCallback; other products are skipped.
	other := `[{"type":"com.twilio.accountsecurity.verify.attempt-dlr.delivered","id":"EZ9","data":{"verification_sid":"` + sid + `","verification_status":"pending"}},` +
		`{"type":"com.twilio.messaging.message.delivered","id":"EZ10","data":{}}]`
	n := len(r.events)
	if code := r.post("POST", "/events", "application/json", twiliotest.SignBody(hookToken, "https://hooks.example.com/events", []byte(other)), other); code != 204 || len(r.events) != n+1 {
		t.Fatalf("%d, %d events", code, len(r.events)-n)
	}
}

func TestWebhookRejectsWithoutSideEffects(t *testing.T) {
	r := newHookRig(t, func(c *twilio.WebhookConfig) { c.MaxBody = 4096 })
	u := "https://hooks.example.com/events"
	good := twiliotest.SignBody(hookToken, u, []byte(approvedEvent))
	big := `[{"type":"x","id":"1","pad":"` + strings.Repeat("x", 5000) + `"}]`
	for _, tc := range []struct {
		name, method, target, ctype, sig, body string
		want                                   int
	}{
		{"unsigned", "POST", "/events", "application/json", "", approvedEvent, 401},
		{"forged", "POST", "/events", "application/json", twiliotest.SignBody("other", u, []byte(approvedEvent)), approvedEvent, 401},
		{"body changed", "POST", "/events", "application/json", good, strings.Replace(approvedEvent, "approved", "canceled", 1), 401},
		{"path changed", "POST", "/events2", "application/json", good, approvedEvent, 401},
		{"query added", "POST", "/events?a=1", "application/json", good, approvedEvent, 401},
		{"as a form", "POST", "/events", "application/x-www-form-urlencoded", good, approvedEvent, 401},
		{"GET", "GET", "/events", "", good, "", 405},
		{"too large", "POST", "/events", "application/json", twiliotest.SignBody(hookToken, u, []byte(big)), big, 413},
		{"not json", "POST", "/events", "text/plain", twiliotest.SignBody(hookToken, u, []byte("hello")), "hello", 400},
		{"null", "POST", "/events", "application/json", twiliotest.SignBody(hookToken, u, []byte("null")), "null", 400},
		{"no id", "POST", "/events", "application/json", twiliotest.SignBody(hookToken, u, []byte(`[{"type":"x"}]`)), `[{"type":"x"}]`, 400},
		{"truncated", "POST", "/events", "application/json", twiliotest.SignBody(hookToken, u, []byte(approvedEvent[:80])), approvedEvent[:80], 400},
	} {
		if code := r.post(tc.method, tc.target, tc.ctype, tc.sig, tc.body); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if len(r.events)+len(r.calls) != 0 {
		t.Fatalf("hooks ran for rejected requests: %v %v", r.events, r.calls)
	}
	// A signed form body is checked by its sorted parameters.
	form := url.Values{"a": {"1"}}
	if code := r.post("POST", "/events", "application/x-www-form-urlencoded", twiliotest.Sign(hookToken, u, form), form.Encode()); code != 400 {
		t.Fatalf("signed form, not events: %d, want 400 (signature passed)", code)
	}
	// A failing OnCallback answers 500 so that Twilio delivers again.
	r.fail = true
	if code := r.post("POST", "/events", "application/json", good, approvedEvent); code != 500 || len(r.events) != 0 {
		t.Fatalf("failed callback: %d, %d events", code, len(r.events))
	}
}

// TestWebhookBehindStripPrefix: PublicURL carries the prefix a mux strips.
func TestWebhookBehindStripPrefix(t *testing.T) {
	r := newHookRig(t, func(c *twilio.WebhookConfig) { c.PublicURL = "https://hooks.example.com" })
	mux := http.NewServeMux()
	mux.Handle("/hooks/", http.StripPrefix("/hooks", r.h))
	req := httptest.NewRequest("POST", "/hooks/twilio", strings.NewReader(approvedEvent))
	req.Header.Set(twilio.SignatureHeader, twiliotest.SignBody(hookToken, "https://hooks.example.com/hooks/twilio", []byte(approvedEvent)))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code != 204 {
		t.Fatal(w.Code)
	}
}

func TestWebhookConfigValidation(t *testing.T) {
	for name, cfg := range map[string]twilio.WebhookConfig{
		"no token":     {PublicURL: "https://h", OnEvent: func(otp.Event) {}},
		"no url":       {AuthToken: "t", OnEvent: func(otp.Event) {}},
		"url query":    {AuthToken: "t", PublicURL: "https://h/?a=1", OnEvent: func(otp.Event) {}},
		"no hook":      {AuthToken: "t", PublicURL: "https://h"},
		"negative max": {AuthToken: "t", PublicURL: "https://h", OnEvent: func(otp.Event) {}, MaxBody: -1},
	} {
		if _, err := twilio.NewWebhookHandler(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
