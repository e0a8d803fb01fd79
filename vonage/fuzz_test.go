package vonage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// Seeds are the fact sheet's bodies plus broken variants.
var v2Seeds = []struct {
	status int
	body   string
}{
	{202, `{"request_id":"cef1c266-d144-485e-8915-bd2d51b06776"}`},
	{202, `{"request_id":"c11236f4","check_url":"https://api-eu-3.vonage.com/v2/verify/c11236f4/silent-auth/redirect"}`},
	{200, `{"request_id":"c11236f4","status":"completed"}`},
	{200, `{"request_id":"c11236f4","status":"complete"}`},
	{400, `{"type":"https://developer.vonage.com/api-errors#invalid-code","title":"Invalid Code","detail":"The code you provided does not match the expected value."}`},
	{404, `{"type":"https://developer.vonage.com/api-errors#not-found","title":"Not Found","detail":"Request c11236f4 was not found or it has been verified already."}`},
	{409, `{"title":"Conflict","detail":"Concurrent verifications to the same number are not allowed.","type":"https://developer.vonage.com/api-errors/verify-v2#concurrent","request_id":"575a2054"}`},
	{410, `{"title":"Invalid Code","detail":"An incorrect code has been provided too many times. Workflow terminated.","type":"https://developer.vonage.com/api-errors#gone"}`},
	{422, `{"title":"Invalid params","detail":"The value of one or more parameters is invalid.","invalid_parameters":[{"name":"brand","reason":"Brand is required"}]}`},
	{429, `{"title":"Rate Limit Hit","detail":"Please wait, then retry your request"}`},
	{500, `{"title":"Internal error"}`},
	{202, `{"request_id":""}`}, {202, `{"request_id":5}`}, {200, `null`}, {200, `[]`}, {200, ``}, {202, `{"request_id":"a"`},
}

// FuzzV2Answer: any v2 answer maps to success only when it is a 2xx with
// the operation's body; everything else is a *otp.ProviderError with a
// class. Never a panic.
func FuzzV2Answer(f *testing.F) {
	for _, s := range v2Seeds {
		f.Add(s.status, []byte(s.body), string(otp.OpStart))
		f.Add(s.status, []byte(s.body), string(otp.OpCheck))
	}
	p, err := NewV2(V2Config{APIKey: "k", APISecret: "s", Brand: "Acme"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, op string) {
		for _, op := range []otp.Op{otp.OpStart, otp.OpCheck, otp.OpCancel, otp.OpResend, otp.Op(op)} {
			id, err := p.outcome(op, vendorhttp.Reply{Status: status, Body: body, Header: http.Header{}})
			if err == nil {
				if status/100 != 2 {
					t.Fatalf("%s: status %d became a success", op, status)
				}
				if op == otp.OpStart && (id == "" || !json.Valid(body)) {
					t.Fatalf("send: garbage %q became request id %q", body, id)
				}
				if op == otp.OpCheck && !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
					t.Fatalf("check: garbage %q became a success", body)
				}
				continue
			}
			var pe *otp.ProviderError
			if !errors.As(err, &pe) || !(errors.Is(err, otp.ErrProviderRejected) || errors.Is(err, otp.ErrProviderUnavailable) || errors.Is(err, otp.ErrProviderAccount)) {
				t.Fatalf("%s: %v is not a classed provider error", op, err)
			}
			_ = err.Error()
		}
	})
}

var legacySeeds = []string{
	`{"request_id":"abcdef0123456789abcdef0123456789","status":"0"}`,
	`{"request_id":"abcdef0123456789abcdef0123456789","event_id":"0A00000012345678","status":"0","price":"0.10000000","currency":"EUR","estimated_price_messages_sent":"0.03330000"}`,
	`{"status":"0","command":"cancel"}`,
	`{"status":"1","error_text":"Throttled"}`,
	`{"status":"3","error_text":"Invalid value for number"}`,
	`{"status":"6","error_text":"The requestId 'abcdef' does not exist or its no longer active."}`,
	`{"status":"7","error_text":"The number you are trying to verify is blacklisted for verification.","network":"23415"}`,
	`{"status":"10","request_id":"abcdef0123456789abcdef0123456789","error_text":"Concurrent verifications to the same number are not allowed"}`,
	`{"status":"16","error_text":"The code inserted does not match the expected value"}`,
	`{"status":"17","error_text":"The wrong code was provided too many times. Request terminated"}`,
	`{"status":"19","error_text":"Verification request ['abcdef'] can't be cancelled within the first 30 seconds."}`,
	`{"status":"101","error_text":"No response found"}`,
	`{"status":0}`, `{"status":"0"`, `{"status":null}`, `{"status":["0"]}`, `{}`, `<html>`, ``,
}

// FuzzLegacyAnswer: only status "0" in a 2xx JSON body is a success.
func FuzzLegacyAnswer(f *testing.F) {
	for _, s := range legacySeeds {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(legacySeeds[0]))
	l, err := NewLegacy(LegacyConfig{APIKey: "k", APISecret: "s", Brand: "Acme"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, op := range []otp.Op{otp.OpStart, otp.OpCheck, otp.OpCancel, otp.OpResend} {
			id, err := l.outcome(op, vendorhttp.Reply{Status: status, Body: body, Header: http.Header{}})
			if err == nil {
				var v struct {
					Status json.RawMessage `json:"status"`
				}
				if status/100 != 2 || json.Unmarshal(body, &v) != nil || (string(v.Status) != `"0"` && string(v.Status) != "0") {
					t.Fatalf("%s: %d %q became a success", op, status, body)
				}
				if op == otp.OpStart && id == "" {
					t.Fatal("send success without an id")
				}
				continue
			}
			if !errors.Is(err, otp.ErrProviderRejected) && !errors.Is(err, otp.ErrProviderUnavailable) && !errors.Is(err, otp.ErrProviderAccount) {
				t.Fatalf("%s: unclassed %v", op, err)
			}
		}
	})
}

// FuzzDecodeCallback: a callback decodes only with a known type, an ID and
// a status, and never panics.
func FuzzDecodeCallback(f *testing.F) {
	f.Add([]byte(`{"request_id":"c11236f4","triggered_at":"2020-01-01T14:00:00.000Z","type":"event","channel":"voice","status":"completed","finalized_at":"2020-01-01T14:00:00.000Z","client_ref":"my-personal-reference"}`))
	f.Add([]byte(`{"request_id":"c11236f4","submitted_at":"2020-01-01T14:00:00.000Z","status":"blocked","type":"summary","channel_timeout":300,"workflow":[{"channel":"sms","initiated_at":"2020-01-01T14:00:00.000Z","status":"blocked","reason":"Fraudulent traffic detected for your account on network [ 23415 ]."}]}`))
	f.Add([]byte(`{"request_id":"x","type":"event","status":"action_pending","action":{"type":"check","check_url":"https://x"}}`))
	f.Add([]byte(`{"type":"event","status":"completed","triggered_at":"yesterday","request_id":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := decodeCallback(body)
		if err != nil {
			return
		}
		if (cb.Type != "event" && cb.Type != "summary") || cb.RequestID == "" || cb.Status == "" {
			t.Fatalf("accepted %q as %+v", body, cb)
		}
		if ev, ok := callbackEvent(cb); ok && ev.Kind == otp.EventChecked && cb.Status != "completed" {
			t.Fatalf("status %q became a checked event", cb.Status)
		}
	})
}

// FuzzWebhook: the handler answers 204 only when the token is a valid HS256
// JWT under the secret, at most MaxAge old, with a jti not accepted before,
// whose payload_hash matches the body, and the body is a callback. Checked
// against an independent verification.
func FuzzWebhook(f *testing.F) {
	const secret = "fuzz-secret"
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := `{"request_id":"c11236f4","type":"event","channel":"sms","status":"completed"}`
	sum := sha256.Sum256([]byte(body))
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"iat": now.Unix(), "jti": "j", "payload_hash": hex.EncodeToString(sum[:])}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte(secret))
	noHash, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": now.Unix(), "jti": "k"}).SignedString([]byte(secret))
	old, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(jwt.MapClaims{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "o"})).SignedString([]byte(secret))
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(jwt.MapClaims{"jti": "p"})).SignedString([]byte("other"))
	for _, tok := range []string{good, noHash, old, other} {
		f.Add("Bearer "+tok, []byte(body))
	}
	f.Add("Bearer "+good, []byte(body+" "))
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJpYXQiOjB9.", []byte(body))
	f.Add("", []byte(body))
	calls := 0
	h, err := NewWebhookHandler(WebhookConfig{SignatureSecret: secret, Clock: fixedNow(now), MaxBody: 4096,
		OnEvent: func(otp.Event) { calls++ }})
	if err != nil {
		f.Fatal(err)
	}
	accepted := map[string]bool{} // jti
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		before := calls
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			if calls != before {
				t.Fatalf("hook ran for a %d", w.Code)
			}
			return
		}
		raw, _ := strings.CutPrefix(auth, "Bearer ")
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(time.Minute))
		if err != nil || !tok.Valid {
			t.Fatalf("accepted a token that does not verify: %q (%v)", auth, err)
		}
		iat, err := claims.GetIssuedAt()
		if err != nil || iat == nil || now.Sub(iat.Time) > 6*time.Minute {
			t.Fatalf("accepted a token issued at %v", iat)
		}
		jti, _ := claims["jti"].(string)
		if jti == "" || accepted[jti] {
			t.Fatalf("accepted jti %q twice or empty", jti)
		}
		accepted[jti] = true
		ph, _ := claims["payload_hash"].(string)
		if s := sha256.Sum256(body); !strings.EqualFold(ph, hex.EncodeToString(s[:])) {
			t.Fatal("accepted a body that does not match payload_hash")
		}
		if _, err := decodeCallback(body); err != nil {
			t.Fatal("accepted a body that is not a callback")
		}
	})
}

type fixedNow time.Time

func (c fixedNow) Now() time.Time { return time.Time(c) }
