package otphttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otphttp"
	"github.com/otpkit/otp/otptest"
)

const phone = "+447400123456"

// env is the handlers over a Verifier with a fake provider and clock,
// keyed by the "Key" header of each request.
type env struct {
	t       *testing.T
	clock   *otptest.Clock
	prov    *otptest.Provider
	v       *otp.Verifier
	h       *otphttp.Handler
	started map[string]string // key → number, from OnStart
}

func newEnv(t *testing.T, cfg otphttp.Config) *env {
	t.Helper()
	e := &env{t: t, clock: otptest.NewClock(time.Time{}), started: map[string]string{}}
	e.prov = otptest.NewProvider(otptest.ProviderConfig{Clock: e.clock})
	ms := memstore.New(memstore.Config{Clock: e.clock})
	t.Cleanup(func() { _ = ms.Close() })
	var err error
	e.v, err = otp.NewVerifier(e.prov, ms, otp.Config{Clock: e.clock})
	require.NoError(t, err)
	if cfg.Key == nil {
		cfg.Key = func(r *http.Request) (string, error) { return r.Header.Get("Key"), nil }
	}
	if cfg.OnStart == nil {
		cfg.OnStart = func(_ http.ResponseWriter, _ *http.Request, key string, st otp.Status) error {
			e.started[key] = st.To
			return nil
		}
	}
	e.h, err = otphttp.New(e.v, cfg)
	require.NoError(t, err)
	return e
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(method, path, contentType, body string, hdr ...string) answer {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	a := answer{status: rec.Code, header: rec.Header()}
	if method != http.MethodHead {
		require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &a.body), rec.Body.String())
	}
	return a
}

func (e *env) post(path, body string, hdr ...string) answer {
	e.t.Helper()
	return e.do(http.MethodPost, path, "application/json", body, hdr...)
}

func TestHandlerFlow(t *testing.T) {
	e := newEnv(t, otphttp.Config{})
	a := e.post("/api/verify/start", `{"phone":"+44 7400 123456"}`, "Key", "k1")
	require.Equal(t, 200, a.status, a.body)
	assert.Equal(t, "pending", a.body["state"])
	assert.Equal(t, phone, a.body["to"])
	assert.Equal(t, "+44 7400 123456", a.body["display"], "formatted for people")
	assert.EqualValues(t, 5, a.body["attempts_left"])
	assert.Equal(t, map[string]string{"k1": phone}, e.started)
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))

	assert.Equal(t, "pending", e.do(http.MethodGet, "/status", "", "", "Key", "k1").body["state"])
	code, _ := e.prov.LastCode(phone)
	a = e.post("/check", `{"code":"`+code+`"}`, "Key", "k1")
	require.Equal(t, 200, a.status, a.body)
	assert.Equal(t, map[string]any{"state": "verified", "verified": true, "to": phone, "display": "+44 7400 123456"}, a.body)
	assert.Equal(t, "none", e.do(http.MethodGet, "/status", "", "", "Key", "k1").body["state"])
}

func TestHandlerWithoutKey(t *testing.T) {
	e := newEnv(t, otphttp.Config{})
	assert.Equal(t, 404, e.post("/check", `{"code":"123456"}`).status)
	assert.Equal(t, 404, e.post("/resend", ``).status)
	assert.Equal(t, map[string]any{"state": "none", "verified": false}, e.post("/cancel", ``).body)
	assert.Equal(t, "none", e.do(http.MethodGet, "/status", "", "").body["state"])
	assert.Equal(t, [4]int{}, [4]int{e.prov.Calls(otp.OpStart), e.prov.Calls(otp.OpCheck), e.prov.Calls(otp.OpResend), e.prov.Calls(otp.OpCancel)})

	// Start makes a key and hands it to OnStart.
	require.Equal(t, 200, e.post("/start", `{"phone":"`+phone+`"}`).status)
	require.Len(t, e.started, 1)
	for k := range e.started {
		assert.Len(t, k, 26, "128 random bits")
	}

	unauth := newEnv(t, otphttp.Config{Key: func(*http.Request) (string, error) { return "", otphttp.ErrUnauthorized }})
	a := unauth.post("/start", `{"phone":"`+phone+`"}`)
	assert.Equal(t, 401, a.status)
	assert.Equal(t, "unauthorized", a.body["error"])
	assert.Zero(t, unauth.prov.Calls(otp.OpStart))
}

func TestHandlerStates(t *testing.T) {
	e := newEnv(t, otphttp.Config{})
	e.post("/start", `{"phone":"`+phone+`"}`, "Key", "k")
	a := e.post("/resend", ``, "Key", "k")
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "resend_too_soon", a.body["error"])
	assert.Equal(t, "30", a.header.Get("Retry-After"))
	e.clock.Advance(31 * time.Second)
	a = e.post("/resend", ``, "Key", "k")
	assert.Equal(t, 200, a.status)
	assert.Equal(t, "pending", a.body["state"])

	e.clock.Advance(6 * time.Minute)
	assert.Equal(t, map[string]any{"state": "expired", "verified": false}, e.do(http.MethodGet, "/status", "", "", "Key", "k").body)
	a = e.post("/cancel", ``, "Key", "k")
	assert.Equal(t, 200, a.status, "cancelling an expired verification is fine")

	var canceled int
	e2 := newEnv(t, otphttp.Config{OnCancel: func(http.ResponseWriter, *http.Request) error { canceled++; return nil }})
	e2.post("/start", `{"phone":"`+phone+`"}`, "Key", "k")
	assert.Equal(t, 200, e2.post("/cancel", ``, "Key", "k").status)
	assert.Equal(t, 1, e2.prov.Calls(otp.OpCancel))
	assert.Equal(t, 200, e2.post("/cancel", ``, "Key", "k").status)
	assert.Equal(t, 2, canceled)
}

func TestHandlerHooksFailures(t *testing.T) {
	e := newEnv(t, otphttp.Config{
		OnStart:    func(http.ResponseWriter, *http.Request, string, otp.Status) error { return otp.ErrStoreUnavailable },
		OnVerified: func(http.ResponseWriter, *http.Request, otp.Status) error { return otp.ErrStoreUnavailable },
	})
	assert.Equal(t, 503, e.post("/start", `{"phone":"`+phone+`"}`, "Key", "k").status)
	code, _ := e.prov.LastCode(phone)
	assert.Equal(t, 503, e.post("/check", `{"code":"`+code+`"}`, "Key", "k").status)
}

// TestHandlerRequests sends malformed requests: each gets its status and
// class, and none reaches the Verifier.
func TestHandlerRequests(t *testing.T) {
	e := newEnv(t, otphttp.Config{MaxBodyBytes: 64})
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		class, allow                 string
	}{
		{"GET a POST route", "GET", "/start", "", "", 405, "method_not_allowed", "POST"},
		{"PUT check", "PUT", "/check", "application/json", `{"code":"123456"}`, 405, "method_not_allowed", "POST"},
		{"GET resend", "GET", "/resend", "", "", 405, "method_not_allowed", "POST"},
		{"DELETE cancel", "DELETE", "/cancel", "", "", 405, "method_not_allowed", "POST"},
		{"POST status", "POST", "/status", "", "", 405, "method_not_allowed", "GET, HEAD"},
		{"no content type", "POST", "/start", "", `{"phone":"+447400123456"}`, 415, "unsupported_media_type", ""},
		{"a form", "POST", "/start", "application/x-www-form-urlencoded", "phone=%2B447400123456", 415, "unsupported_media_type", ""},
		{"text", "POST", "/check", "text/plain", `{"code":"123456"}`, 415, "unsupported_media_type", ""},
		{"too large", "POST", "/start", "application/json", `{"phone":"` + strings.Repeat("1", 100) + `"}`, 413, "too_large", ""},
		{"bad JSON", "POST", "/check", "application/json", `{"code":`, 400, "bad_request", ""},
		{"array", "POST", "/check", "application/json", `["123456"]`, 400, "bad_request", ""},
		{"wrong type", "POST", "/check", "application/json", `{"code":123456}`, 400, "bad_request", ""},
		{"unknown field", "POST", "/start", "application/json", `{"phone":"+447400123456","x":1}`, 400, "bad_request", ""},
		{"a bare challenge flag", "POST", "/start", "application/json", `{"phone":"+447400123456","challenge_passed":true}`, 400, "bad_request", ""},
		{"two values", "POST", "/start", "application/json", `{"phone":"1"}{"phone":"2"}`, 400, "bad_request", ""},
		{"unknown route", "POST", "/delete", "application/json", `{}`, 404, "not_found", ""},
	}
	for _, c := range cases {
		a := e.do(c.method, c.path, c.ct, c.body, "Key", "k")
		assert.Equal(t, c.status, a.status, c.name)
		assert.Equal(t, c.class, a.body["error"], c.name)
		assert.NotEmpty(t, a.body["message"], c.name)
		assert.Equal(t, c.allow, a.header.Get("Allow"), c.name)
	}
	assert.Equal(t, 200, e.post("/start", `{"phone":"+447400123456"}`, "Key", "k").status, "content type with parameters")
	assert.Equal(t, 200, e.do(http.MethodHead, "/status", "", "", "Key", "k").status)
	assert.Equal(t, 1, e.prov.Calls(otp.OpStart))
	assert.Zero(t, e.prov.Calls(otp.OpCheck))

	a := e.do(http.MethodPost, "/check", "application/json; charset=utf-8", `{"code":"12"}`, "Key", "k")
	assert.Equal(t, 400, a.status)
	assert.Equal(t, "invalid_input", a.body["error"])
}

// A big body is cut at the cap, even on routes that read none.
func TestHandlerCapsBodies(t *testing.T) {
	e := newEnv(t, otphttp.Config{MaxBodyBytes: 16})
	r := httptest.NewRequest(http.MethodPost, "/resend", strings.NewReader(strings.Repeat("x", 1<<20)))
	r.Header.Set("Key", "k")
	var read int64
	e2 := newEnv(t, otphttp.Config{MaxBodyBytes: 16, Key: func(r *http.Request) (string, error) {
		read, _ = io.Copy(io.Discard, r.Body)
		return "k", nil
	}})
	e2.h.ServeHTTP(httptest.NewRecorder(), r)
	assert.LessOrEqual(t, read, int64(16))
	_, err := otphttp.New(e.v, otphttp.Config{Key: func(*http.Request) (string, error) { return "", nil }, MaxBodyBytes: -1})
	assert.Error(t, err)
	_, err = otphttp.New(e.v, otphttp.Config{})
	assert.ErrorContains(t, err, "Key")
	_, err = otphttp.New(nil, otphttp.Config{Key: func(*http.Request) (string, error) { return "", nil }})
	assert.ErrorContains(t, err, "Verifier")
}

func TestHandlerChargesTheClientID(t *testing.T) {
	proxies, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: []string{"192.0.2.0/24"}})
	require.NoError(t, err)
	clock := otptest.NewClock(time.Time{})
	ms := memstore.New(memstore.Config{Clock: clock})
	defer ms.Close()
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{Clock: clock}), ms,
		otp.Config{Clock: clock, Limits: otp.Limits{PerClient: otp.Limit{N: 1, Per: time.Hour}}})
	require.NoError(t, err)
	h, err := otphttp.New(v, otphttp.Config{Key: func(r *http.Request) (string, error) { return r.Header.Get("Key"), nil },
		ClientID: proxies.ClientID})
	require.NoError(t, err)
	start := func(key, remote, xff, to string) int {
		r := httptest.NewRequest(http.MethodPost, "/start", strings.NewReader(`{"phone":"`+to+`"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Key", key)
		r.Header.Set("X-Forwarded-For", xff)
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	assert.Equal(t, 200, start("a", "192.0.2.1:1", "198.51.100.1", "+447400123456"))
	assert.Equal(t, 429, start("b", "192.0.2.2:1", "198.51.100.1", "+447400123457"), "same client behind another proxy")
	assert.Equal(t, 200, start("c", "192.0.2.2:1", "198.51.100.2", "+447400123458"), "another client")
	assert.Equal(t, 200, start("d", "[2001:db8:1:1::1]:1", "", "+447833123456"))
	assert.Equal(t, 429, start("e", "[2001:db8:1:1::2]:1", "", "+447888123456"), "one /64 is one client")
}

// TestChallenge: a Start the abuse defence challenges answers
// challenge_required; only the configured hook can pass it.
func TestChallenge(t *testing.T) {
	var tokens []string
	e := newEnv(t, otphttp.Config{ChallengePassed: func(_ *http.Request, token string) bool {
		tokens = append(tokens, token)
		return token == "good-token"
	}})
	require.NoError(t, e.v.SetOverride(context.Background(), otp.Override{Target: otp.RegionTarget("GB"), Action: otp.OverrideChallenge}))
	a := e.post("/start", `{"phone":"`+phone+`"}`, "Key", "k")
	assert.Equal(t, 403, a.status)
	assert.Equal(t, "challenge_required", a.body["error"])
	assert.Equal(t, true, a.body["challenge"])
	a = e.post("/start", `{"phone":"`+phone+`","challenge_token":"forged"}`, "Key", "k")
	assert.Equal(t, 403, a.status, "a token the hook refuses")
	assert.Zero(t, e.prov.Calls(otp.OpStart))
	a = e.post("/start", `{"phone":"`+phone+`","challenge_token":"good-token"}`, "Key", "k")
	assert.Equal(t, 200, a.status, a.body)
	assert.Equal(t, []string{"", "forged", "good-token"}, tokens)

	// Without a hook, no token passes.
	e2 := newEnv(t, otphttp.Config{})
	require.NoError(t, e2.v.SetOverride(context.Background(), otp.Override{Target: otp.RegionTarget("GB"), Action: otp.OverrideChallenge}))
	assert.Equal(t, 403, e2.post("/start", `{"phone":"`+phone+`","challenge_token":"good-token"}`, "Key", "k").status)
}
