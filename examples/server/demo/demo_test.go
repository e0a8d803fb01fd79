package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/examples/server/demo"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

const phone = "+447400123456"

// env is a demo server on loopback with a fake provider, a fake clock and
// a browser-like client (cookie jar, no redirects followed).
type env struct {
	t      *testing.T
	clock  *otptest.Clock
	prov   *otptest.Provider
	store  otp.Store
	v      *otp.Verifier
	server *demo.Server
	ts     *httptest.Server
	client *http.Client
}

type option func(*otp.Config, *demo.Config)

func withLimits(l otp.Limits) option {
	return func(c *otp.Config, _ *demo.Config) { c.Limits = l }
}

func withDemo(f func(*demo.Config)) option {
	return func(_ *otp.Config, d *demo.Config) { f(d) }
}

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	e := &env{t: t, clock: otptest.NewClock(time.Time{})}
	e.prov = otptest.NewProvider(otptest.ProviderConfig{Clock: e.clock})
	ms := memstore.New(memstore.Config{Clock: e.clock})
	t.Cleanup(func() { _ = ms.Close() })
	e.store = ms
	vcfg, dcfg := otp.Config{Clock: e.clock}, demo.Config{}
	for _, o := range opts {
		o(&vcfg, &dcfg)
	}
	v, err := otp.NewVerifier(e.prov, e.store, vcfg)
	require.NoError(t, err)
	e.v = v
	e.server, err = demo.New(v, dcfg)
	require.NoError(t, err)
	e.ts = httptest.NewServer(e.server)
	t.Cleanup(e.ts.Close)
	e.client = e.newClient()
	return e
}

func (e *env) newClient() *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &m), a.body)
	return m
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	res, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) req(method, path, contentType, body string, hdr ...string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func (e *env) post(path, body string, hdr ...string) answer {
	e.t.Helper()
	return e.do(e.req(http.MethodPost, path, "application/json", body, hdr...))
}

func (e *env) form(path string, vals url.Values, hdr ...string) answer {
	e.t.Helper()
	return e.do(e.req(http.MethodPost, path, "application/x-www-form-urlencoded", vals.Encode(), hdr...))
}

func (e *env) get(path string) answer {
	e.t.Helper()
	return e.do(e.req(http.MethodGet, path, "", ""))
}

func (e *env) code(to string) string {
	e.t.Helper()
	c, ok := e.prov.LastCode(to)
	require.True(e.t, ok, "no code sent to %s", to)
	return c
}

// wrong returns a well-formed code that is not the right one.
func wrong(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

func (e *env) calls() [4]int {
	return [4]int{e.prov.Calls(otp.OpStart), e.prov.Calls(otp.OpCheck), e.prov.Calls(otp.OpResend), e.prov.Calls(otp.OpCancel)}
}

func sessionCookie(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "otp_session" {
			return c
		}
	}
	return nil
}

func TestAPIFlow(t *testing.T) {
	e := newEnv(t)
	a := e.post("/api/verify/start", `{"phone":"+44 7400 123456"}`)
	require.Equal(t, http.StatusOK, a.status, a.body)
	m := a.json(t)
	assert.Equal(t, "pending", m["state"])
	assert.Equal(t, false, m["verified"])
	assert.Equal(t, phone, m["to"])
	assert.EqualValues(t, 5, m["attempts_left"])
	assert.NotEmpty(t, m["expires_at"])
	sends := e.prov.Sends()
	require.Len(t, sends, 1)
	assert.NotContains(t, a.body, sends[0].Ref.ID, "the vendor's ID stays on the server")
	assert.NotContains(t, a.body, "otptest", "nor the provider's name")
	assert.NotContains(t, a.body, sends[0].Code)

	c := sessionCookie(t, a.header)
	require.NotNil(t, c, "start sets the session cookie")
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.False(t, c.Secure, "plain HTTP: not Secure")

	a = e.get("/api/verify/status")
	assert.Equal(t, "pending", a.json(t)["state"])

	a = e.post("/api/verify/check", `{"code":"`+wrong(sends[0].Code)+`"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, a.status)
	assert.Equal(t, "wrong_code", a.json(t)["error"])
	assert.EqualValues(t, 4, a.json(t)["attempts_left"])
	assert.Contains(t, a.json(t)["message"], "4 attempts left")

	a = e.post("/api/verify/check", `{"code":"`+sends[0].Code+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Equal(t, map[string]any{"state": "verified", "verified": true, "to": phone, "display": "+44 7400 123456"}, a.json(t))
	renewed := sessionCookie(t, a.header)
	require.NotNil(t, renewed, "a verified session gets a new token")
	assert.NotEqual(t, c.Value, renewed.Value)

	assert.Equal(t, "verified", e.get("/api/verify/status").json(t)["state"])
	a = e.post("/api/verify/check", `{"code":"`+sends[0].Code+`"}`)
	assert.Equal(t, http.StatusNotFound, a.status, "a code works once")

	a = e.post("/api/verify/cancel", "")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "none", e.get("/api/verify/status").json(t)["state"])
}

func TestAPIFailures(t *testing.T) {
	t.Run("invalid number", func(t *testing.T) {
		e := newEnv(t)
		for _, p := range []string{"", "12", "not a number", "+441632960000", strings.Repeat("9", 300)} {
			a := e.post("/api/verify/start", `{"phone":"`+p+`"}`)
			assert.Equal(t, http.StatusBadRequest, a.status, p)
			assert.Equal(t, "invalid_input", a.json(t)["error"], p)
			assert.Nil(t, sessionCookie(t, a.header), "a failed start sets no cookie")
		}
		assert.Zero(t, e.prov.Calls(otp.OpStart))
	})
	t.Run("malformed code uses no attempt", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		for _, c := range []string{"abc", "12345", "1234567", "", "12 456"} {
			a := e.post("/api/verify/check", `{"code":"`+c+`"}`)
			assert.Equal(t, http.StatusBadRequest, a.status, c)
			assert.Equal(t, "invalid_input", a.json(t)["error"])
		}
		assert.Zero(t, e.prov.Calls(otp.OpCheck))
		assert.EqualValues(t, 5, e.get("/api/verify/status").json(t)["attempts_left"])
	})
	t.Run("nothing started", func(t *testing.T) {
		e := newEnv(t)
		for _, p := range []string{"/api/verify/check", "/api/verify/resend"} {
			body := ""
			if strings.HasSuffix(p, "check") {
				body = `{"code":"123456"}`
			}
			a := e.post(p, body)
			assert.Equal(t, http.StatusNotFound, a.status, p)
			assert.Equal(t, "not_found", a.json(t)["error"])
		}
		assert.Equal(t, [4]int{}, e.calls())
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		code := e.code(phone)
		e.clock.Advance(6 * time.Minute)
		assert.Equal(t, map[string]any{"state": "expired", "verified": false, "to": phone, "display": "+44 7400 123456"},
			e.get("/api/verify/status").json(t))
		a := e.post("/api/verify/check", `{"code":"`+code+`"}`)
		assert.Equal(t, http.StatusGone, a.status)
		assert.Equal(t, "expired", a.json(t)["error"])
	})
	t.Run("too many attempts", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		code := e.code(phone)
		for i := 4; i >= 1; i-- {
			a := e.post("/api/verify/check", `{"code":"`+wrong(code)+`"}`)
			require.Equal(t, http.StatusUnprocessableEntity, a.status)
			assert.EqualValues(t, i, a.json(t)["attempts_left"])
		}
		a := e.post("/api/verify/check", `{"code":"`+wrong(code)+`"}`)
		assert.Equal(t, http.StatusGone, a.status)
		assert.Equal(t, "too_many_attempts", a.json(t)["error"])
		a = e.post("/api/verify/check", `{"code":"`+code+`"}`)
		assert.Equal(t, http.StatusNotFound, a.status, "burned: even the right code fails")
	})
	t.Run("resend", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		a := e.post("/api/verify/resend", "")
		assert.Equal(t, http.StatusTooManyRequests, a.status)
		assert.Equal(t, "resend_too_soon", a.json(t)["error"])
		assert.Equal(t, "30", a.header.Get("Retry-After"))
		assert.EqualValues(t, 30, a.json(t)["retry_after"])
		assert.Zero(t, e.prov.Calls(otp.OpResend))
		e.clock.Advance(31 * time.Second)
		a = e.post("/api/verify/resend", "")
		assert.Equal(t, http.StatusOK, a.status, a.body)
		assert.Equal(t, "pending", a.json(t)["state"])
		assert.Equal(t, 1, e.prov.Calls(otp.OpResend))
	})
	t.Run("per-client limit", func(t *testing.T) {
		e := newEnv(t, withLimits(otp.Limits{PerClient: otp.Limit{N: 1, Per: time.Hour}}))
		assert.Equal(t, http.StatusOK, e.post("/api/verify/start", `{"phone":"`+phone+`"}`).status)
		other := e.newClient() // another browser, same IP
		req := e.req(http.MethodPost, "/api/verify/start", "application/json", `{"phone":"+447400123457"}`)
		res, err := other.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		assert.Contains(t, string(body), `"error":"rate_limited"`)
		assert.Equal(t, "3600", res.Header.Get("Retry-After"))
		assert.Equal(t, 1, e.prov.Calls(otp.OpStart))
	})
	t.Run("provider down", func(t *testing.T) {
		e := newEnv(t)
		e.prov.FailNext(otp.OpStart, otptest.Fault{})
		a := e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		assert.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Equal(t, "provider_unavailable", a.json(t)["error"])
		assert.NotContains(t, a.body, "injected", "internal detail stays in the log")
	})
	t.Run("cancel", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
		code := e.code(phone)
		a := e.post("/api/verify/cancel", "")
		assert.Equal(t, map[string]any{"state": "none", "verified": false}, a.json(t))
		assert.Equal(t, 1, e.prov.Calls(otp.OpCancel))
		assert.Equal(t, http.StatusNotFound, e.post("/api/verify/check", `{"code":"`+code+`"}`).status)
		assert.Equal(t, http.StatusOK, e.post("/api/verify/cancel", "").status, "cancelling nothing is fine")
	})
}

// TestHostileInput sends garbage alongside a pending verification and
// checks that each gets a clear 4xx and that nothing changed.
func TestHostileInput(t *testing.T) {
	e := newEnv(t, withDemo(func(c *demo.Config) { c.AllowedOrigins = []string{"https://app.example.com"} }))
	require.Equal(t, http.StatusOK, e.post("/api/verify/start", `{"phone":"`+phone+`"}`).status)
	before := e.calls()

	big := `{"phone":"` + strings.Repeat("1", 8<<10) + `"}`
	cases := []struct {
		name   string
		req    *http.Request
		status int
		class  string
	}{
		{"oversized JSON", e.req("POST", "/api/verify/start", "application/json", big), 413, "too_large"},
		{"oversized form", e.req("POST", "/start", "application/x-www-form-urlencoded", "phone="+strings.Repeat("1", 8<<10)), 413, ""},
		{"bad JSON", e.req("POST", "/api/verify/check", "application/json", `{"code":`), 400, "bad_request"},
		{"JSON array", e.req("POST", "/api/verify/check", "application/json", `["123456"]`), 400, "bad_request"},
		{"wrong type", e.req("POST", "/api/verify/check", "application/json", `{"code":123456}`), 400, "bad_request"},
		{"unknown field", e.req("POST", "/api/verify/start", "application/json", `{"phone":"+447400123457","x":1}`), 400, "bad_request"},
		{"two values", e.req("POST", "/api/verify/start", "application/json", `{"phone":"+447400123457"}{"phone":"+447400123458"}`), 400, "bad_request"},
		{"no content type", e.req("POST", "/api/verify/start", "", `{"phone":"+447400123457"}`), 415, "unsupported_media_type"},
		{"form to the API", e.req("POST", "/api/verify/start", "application/x-www-form-urlencoded", "phone=%2B447400123457"), 415, "unsupported_media_type"},
		{"cross-site fetch", e.req("POST", "/api/verify/start", "application/json", `{"phone":"+447400123457"}`,
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), 403, "forbidden"},
		{"cross-origin without fetch metadata", e.req("POST", "/api/verify/cancel", "application/json", ``,
			"Origin", "https://evil.example"), 403, "forbidden"},
		{"cross-site form post", e.req("POST", "/cancel", "application/x-www-form-urlencoded", ``,
			"Sec-Fetch-Site", "cross-site"), 403, ""},
		{"GET a POST route", e.req("GET", "/api/verify/start", "", ""), 405, ""},
		{"unknown route", e.req("POST", "/api/verify/delete", "application/json", "{}"), 404, ""},
	}
	for _, c := range cases {
		a := e.do(c.req)
		assert.Equal(t, c.status, a.status, "%s: %s", c.name, a.body)
		if c.class != "" {
			assert.Equal(t, c.class, a.json(t)["error"], c.name)
		}
		if strings.HasPrefix(c.req.URL.Path, "/start") || strings.HasPrefix(c.req.URL.Path, "/cancel") {
			assert.Contains(t, a.header.Get("Content-Type"), "text/html", c.name)
		}
	}

	// A forged cookie is a stranger's session: nothing to check, nothing asked.
	forged := e.newClient()
	u, _ := url.Parse(e.ts.URL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "otp_session", Value: "forged-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})
	res, err := forged.Do(e.req("POST", "/api/verify/check", "application/json", `{"code":"`+e.code(phone)+`"}`))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, err = forged.Do(e.req("POST", "/api/verify/cancel", "application/json", ``))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)

	assert.Equal(t, before, e.calls(), "no hostile request reached the provider")
	st := e.get("/api/verify/status").json(t)
	assert.Equal(t, "pending", st["state"], "the real session's verification survived")
	assert.EqualValues(t, 5, st["attempts_left"])
	assert.Equal(t, http.StatusOK, e.post("/api/verify/check", `{"code":"`+e.code(phone)+`"}`).status)
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	e := newEnv(t, withDemo(func(c *demo.Config) { c.AllowedOrigins = []string{allowed} }))
	preflight := func(origin string) answer {
		return e.do(e.req(http.MethodOptions, "/api/verify/start", "", "",
			"Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"))
	}
	a := preflight(allowed)
	assert.Equal(t, http.StatusNoContent, a.status)
	assert.Equal(t, allowed, a.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", a.header.Get("Access-Control-Allow-Credentials"))
	assert.Contains(t, a.header.Get("Access-Control-Allow-Methods"), "POST")

	a = preflight("https://evil.example")
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"))

	a = e.post("/api/verify/start", `{"phone":"`+phone+`"}`, "Origin", allowed, "Sec-Fetch-Site", "same-site")
	assert.Equal(t, http.StatusOK, a.status, "a configured origin may call the API: %s", a.body)
	assert.Equal(t, allowed, a.header.Get("Access-Control-Allow-Origin"))

	a = e.do(e.req(http.MethodGet, "/api/verify/status", "", "", "Origin", "https://evil.example"))
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"), "other origins cannot read answers")

	_, err := demo.New(mustVerifier(t), demo.Config{AllowedOrigins: []string{"https://app.example.com/path"}})
	assert.ErrorContains(t, err, "demo: allowed origin")
}

func mustVerifier(t *testing.T) *otp.Verifier {
	t.Helper()
	ms := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = ms.Close() })
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{}), ms, otp.Config{})
	require.NoError(t, err)
	return v
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/api/verify/status", "/static/app.js", "/health", "/nope"} {
		a := e.get(p)
		h := a.header
		assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'", p)
		assert.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
		assert.NotContains(t, h.Get("Content-Security-Policy"), "unsafe-inline", p)
		assert.Equal(t, "DENY", h.Get("X-Frame-Options"), p)
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), p)
		assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"), p)
		assert.Empty(t, h.Get("Strict-Transport-Security"), "no HSTS over plain HTTP")
	}
	assert.Equal(t, "no-store", e.get("/").header.Get("Cache-Control"))
	assert.Contains(t, e.get("/static/app.css").header.Get("Content-Type"), "text/css")
}

func TestSecureCookies(t *testing.T) {
	e := newEnv(t, withDemo(func(c *demo.Config) { c.SecureCookies = true }))
	ts := httptest.NewTLSServer(e.server)
	defer ts.Close()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/verify/start", strings.NewReader(`{"phone":"`+phone+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	c := sessionCookie(t, res.Header)
	require.NotNil(t, c)
	assert.True(t, c.Secure)
	assert.True(t, c.HttpOnly)
	assert.NotEmpty(t, res.Header.Get("Strict-Transport-Security"))
}

// downStore fails every call as an unreachable store would.
type downStore struct{ otp.Store }

func (downStore) Get(context.Context, string) (otp.Verification, error) {
	return otp.Verification{}, otp.ErrStoreUnavailable
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	a := e.get("/health")
	assert.Equal(t, http.StatusOK, a.status)
	assert.JSONEq(t, `{"status":"ok"}`, a.body)

	clock := otptest.NewClock(time.Time{})
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{}), downStore{}, otp.Config{Clock: clock})
	require.NoError(t, err)
	s, err := demo.New(v, demo.Config{})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"status":"store unavailable"}`, rec.Body.String())
}

func TestDevLastCode(t *testing.T) {
	e := newEnv(t)
	assert.Equal(t, http.StatusNotFound, e.get("/dev/last-code?phone=%2B447400123456").status, "off by default")

	var prov *otptest.Provider
	e = newEnv(t, func(_ *otp.Config, d *demo.Config) {
		d.DevCodes = func(p string) (string, bool) { return prov.LastCode(p) }
	})
	prov = e.prov
	e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
	a := e.get("/dev/last-code?phone=" + url.QueryEscape(phone))
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Equal(t, e.code(phone), a.json(t)["code"])
	assert.Equal(t, http.StatusNotFound, e.get("/dev/last-code?phone=%2B447400000000").status)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/dev/last-code?phone="+url.QueryEscape(phone), nil)
	req.RemoteAddr = "203.0.113.7:40000"
	e.server.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code, "never to a non-loopback client")
	assert.NotContains(t, rec.Body.String(), e.code(phone))
}

// step returns which section of the page is visible.
func step(t *testing.T, body string) string {
	t.Helper()
	var shown []string
	for _, s := range []string{"phone", "code", "done"} {
		if strings.Contains(body, `id="step-`+s+`" aria-labelledby="h-`+s+`">`) {
			shown = append(shown, s)
		}
	}
	require.Len(t, shown, 1, "exactly one step is shown")
	return shown[0]
}

// esc is s as html/template writes it in text and attributes.
func esc(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }

func region(body, id string) string {
	m := regexp.MustCompile(`(?s)<p id="` + id + `" class="` + id + `" role="(?:status|alert)" aria-live="(?:polite|assertive)"(?: lang="[a-z-]+")?>(.*?)</p>`).FindStringSubmatch(body)
	if m == nil {
		return "(no live region)"
	}
	return m[1]
}

func notice(body string) string { return region(body, "notice") }
func alert(body string) string  { return region(body, "error") }

// field returns the opening tag of the input with id.
func field(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<input id="` + id + `"[^>]*>`).FindString(body)
	require.NotEmpty(t, m, "no input #%s", id)
	return m
}

// post posts a page form: it always redirects to the page
// (post/redirect/get), which then shows the outcome.
func (e *env) postPage(path string, vals url.Values) answer {
	e.t.Helper()
	a := e.form(path, vals)
	require.Equal(e.t, http.StatusSeeOther, a.status, "%s answers 303: %s", path, a.body)
	require.Equal(e.t, "/", a.header.Get("Location"))
	return e.get("/")
}

func TestPageWithoutJavaScript(t *testing.T) {
	e := newEnv(t, withLimits(otp.Limits{PerNumber: otp.Limit{N: 2, Per: time.Hour}}))
	a := e.get("/")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "phone", step(t, a.body))
	assert.Contains(t, a.body, `<script src="/static/app.js" defer></script>`)
	assert.Equal(t, "", alert(a.body), "the live regions are there, empty")
	assert.Equal(t, "", notice(a.body))
	assert.Contains(t, field(t, a.body, "phone"), "autofocus")
	assert.NotContains(t, field(t, a.body, "phone"), "aria-invalid")

	a = e.postPage("/start", url.Values{"phone": {"<b>not a number</b>"}})
	assert.Equal(t, "phone", step(t, a.body))
	assert.Contains(t, alert(a.body), "not a valid phone number")
	in := field(t, a.body, "phone")
	assert.Contains(t, in, `value="&lt;b&gt;not a number&lt;/b&gt;"`, "the input comes back, escaped")
	assert.Contains(t, in, `aria-invalid="true"`)
	assert.Contains(t, in, `aria-describedby="error phone-hint"`)
	assert.Contains(t, in, "autofocus")
	a = e.get("/")
	assert.Equal(t, "", alert(a.body), "a reload shows the error no more, and posts nothing")
	assert.NotContains(t, field(t, a.body, "phone"), "aria-invalid")

	a = e.postPage("/start", url.Values{"phone": {"+44 20 7946 0000"}})
	assert.Contains(t, alert(a.body), "looks like a landline")

	a = e.postPage("/start", url.Values{"phone": {phone}})
	assert.Equal(t, "code", step(t, a.body))
	assert.Equal(t, "Code sent. It can take a minute to arrive.", notice(a.body))
	assert.Contains(t, a.body, `<strong id="sent-to">&#43;44 7400 123456</strong>`, "the number, formatted")
	assert.Contains(t, a.body, `<span id="attempts-left">5</span> attempts left`)
	assert.Contains(t, field(t, a.body, "code"), "autofocus")
	assert.Empty(t, notice(e.get("/").body), "the notice shows once")

	code := e.code(phone)
	a = e.postPage("/check", url.Values{"code": {wrong(code)}})
	assert.Equal(t, "code", step(t, a.body))
	assert.Equal(t, "That code is not right. 4 attempts left.", alert(a.body))
	assert.Contains(t, field(t, a.body, "code"), `aria-invalid="true"`)
	assert.Contains(t, field(t, a.body, "code"), `aria-describedby="error code-hint"`)

	a = e.postPage("/resend", nil)
	assert.Equal(t, "code", step(t, a.body))
	assert.Contains(t, alert(a.body), "You can ask for another in 30 seconds")
	assert.NotContains(t, field(t, a.body, "code"), "aria-invalid", "a refused resend is not the field's fault")

	a = e.postPage("/check", url.Values{"code": {code}})
	assert.Equal(t, "done", step(t, a.body))
	assert.Contains(t, a.body, `<strong id="verified-to">`+esc("+44 7400 123456")+`</strong> is verified`)
	assert.Contains(t, a.body, `<h2 id="h-done" tabindex="-1" autofocus>`, "focus on the new heading")

	// "Verify another number" and "use another number" both start over.
	a = e.postPage("/cancel", nil)
	assert.Equal(t, "phone", step(t, a.body))
	assert.Contains(t, field(t, a.body, "phone"), `value=""`, "a fresh number field")

	// Expiry: the page says so and keeps the number.
	e.postPage("/start", url.Values{"phone": {phone}})
	e.clock.Advance(6 * time.Minute)
	a = e.get("/")
	assert.Equal(t, "phone", step(t, a.body))
	assert.Equal(t, "That code has expired. Send a new one.", alert(a.body))
	assert.Contains(t, field(t, a.body, "phone"), `value="`+esc(phone)+`"`)

	// The per-number limit (2 per hour) is used up: a clear refusal.
	a = e.postPage("/start", url.Values{"phone": {phone}})
	assert.Contains(t, alert(a.body), "Too many requests. Try again in")
}

func TestPageTooManyAttempts(t *testing.T) {
	e := newEnv(t)
	e.postPage("/start", url.Values{"phone": {phone}})
	code := e.code(phone)
	for range 4 {
		e.postPage("/check", url.Values{"code": {wrong(code)}})
	}
	a := e.postPage("/check", url.Values{"code": {wrong(code)}})
	assert.Equal(t, "phone", step(t, a.body))
	assert.Contains(t, alert(a.body), "Too many wrong codes")
	assert.Contains(t, a.body, `value="`+esc(phone)+`"`, "the number is kept for a new code")

	// Use another number from the code step.
	assert.Equal(t, "code", step(t, e.postPage("/start", url.Values{"phone": {phone}}).body))
	assert.Equal(t, "phone", step(t, e.postPage("/cancel", nil).body))
}

func TestPageInTheVisitorsLanguage(t *testing.T) {
	e := newEnv(t)
	req := e.req(http.MethodPost, "/start", "application/x-www-form-urlencoded", "phone=12", "Accept-Language", "fr-FR,fr;q=0.9")
	require.Equal(t, http.StatusSeeOther, e.do(req).status)
	a := e.get("/")
	assert.Contains(t, a.body, `<p id="error" class="error" role="alert" aria-live="assertive" lang="fr">Ce numéro`)
}

// TestChallenge: when Start asks for a challenge, the page and the API
// say so; only a token this session was given passes it, once.
func TestChallenge(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.v.SetOverride(context.Background(), otp.Override{Target: otp.RegionTarget("GB"), Action: otp.OverrideChallenge}))

	// The API.
	a := e.post("/api/verify/start", `{"phone":"`+phone+`"}`)
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, true, a.json(t)["challenge"])
	a = e.post("/api/verify/start", `{"phone":"`+phone+`","challenge_token":"made-up"}`)
	assert.Equal(t, http.StatusForbidden, a.status, "a token the server never gave")
	token := e.post("/api/challenge", ``).json(t)["token"].(string)
	require.NotEmpty(t, token)
	a = e.post("/api/verify/start", `{"phone":"`+phone+`","challenge_token":"`+token+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.body)
	e.post("/api/verify/cancel", ``)
	assert.Equal(t, http.StatusForbidden, e.post("/api/verify/start", `{"phone":"`+phone+`","challenge_token":"`+token+`"}`).status,
		"a token counts once")

	// The page.
	p := e.postPage("/start", url.Values{"phone": {phone}})
	assert.Contains(t, alert(p.body), "not a robot")
	box := field(t, p.body, "challenge-box")
	assert.NotContains(t, p.body, `<fieldset id="challenge" class="challenge" hidden>`)
	assert.Contains(t, box, "autofocus")
	m := regexp.MustCompile(`value="([A-Z2-7]+)"`).FindStringSubmatch(box)
	require.NotNil(t, m, box)
	p = e.postPage("/start", url.Values{"phone": {phone}}) // the box not ticked
	assert.Contains(t, alert(p.body), "not a robot")
	m = regexp.MustCompile(`value="([A-Z2-7]+)"`).FindStringSubmatch(field(t, p.body, "challenge-box"))
	require.NotNil(t, m)
	p = e.postPage("/start", url.Values{"phone": {phone}, "challenge_token": {m[1]}})
	assert.Equal(t, "code", step(t, p.body), alert(p.body))
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := demo.New(nil, demo.Config{})
	assert.ErrorContains(t, err, "demo: New needs a Verifier")
	_, err = demo.New(mustVerifier(t), demo.Config{CodeLength: 3})
	assert.ErrorContains(t, err, "CodeLength")
}
