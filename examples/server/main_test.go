package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// envOf is a getenv reading from m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var quiet = slog.New(slog.DiscardHandler)

func TestDefaultsNeedNoSetup(t *testing.T) {
	cfg, err := readConfig(envOf(nil))
	require.NoError(t, err)
	assert.Equal(t, ":8080", cfg.addr)
	assert.Equal(t, "dev", cfg.provider)
	assert.False(t, cfg.devCodes)
	assert.False(t, cfg.limitsOff)

	a, err := newApp(cfg, envOf(nil), quiet)
	require.NoError(t, err)
	defer a.Close()
	assert.NotNil(t, a.dev, "the dev provider")
	assert.Equal(t, "memory", a.storeName)
}

func TestConfigErrorsSayWhatIsWrong(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"OTP_PROVIDER": "sns"}, []string{`OTP_PROVIDER="sns" is unknown`, "dev, vonage, vonage-legacy, infobip or twilio"}},
		{map[string]string{"OTP_DEV_CODES": "yes please"}, []string{"OTP_DEV_CODES"}},
		{map[string]string{"OTP_DEV_CODES": "1"}, []string{"needs ADDR on loopback", `":8080"`}},
		{map[string]string{"OTP_DEV_CODES": "1", "ADDR": "0.0.0.0:8080"}, []string{"needs ADDR on loopback"}},
		{map[string]string{"OTP_DEV_CODES": "1", "ADDR": "127.0.0.1:8080", "OTP_PROVIDER": "infobip"}, []string{"only with OTP_PROVIDER=dev"}},
		{map[string]string{"OTP_LIMITS": "off", "OTP_PROVIDER": "vonage"}, []string{"OTP_LIMITS=off works only with OTP_PROVIDER=dev"}},
		// OTP_ROUTES replaces OTP_PROVIDER, so dev's default is no excuse.
		{map[string]string{"OTP_LIMITS": "off", "OTP_ROUTES": "*=vonage"}, []string{"OTP_LIMITS=off works only with OTP_PROVIDER=dev and no OTP_ROUTES"}},
		{map[string]string{"OTP_DEV_CODES": "1", "ADDR": "127.0.0.1:8080", "OTP_ROUTES": "*=vonage"}, []string{"no OTP_ROUTES"}},
		{map[string]string{"OTP_LIMITS": "maybe"}, []string{`OTP_LIMITS="maybe"`}},
		{map[string]string{"TLS_CERT_FILE": "cert.pem"}, []string{"TLS_CERT_FILE and TLS_KEY_FILE"}},
		{map[string]string{"OTP_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, []string{"OTP_TRUSTED_PROXIES", `"proxy.internal"`}},
		{map[string]string{"OTP_PROXY_HEADER": "X-Real-IP"}, []string{"OTP_PROXY_HEADER", `"X-Real-IP"`}},
		// Two problems are reported together.
		{map[string]string{"OTP_PROVIDER": "x", "OTP_LIMITS": "maybe"}, []string{"OTP_PROVIDER", "OTP_LIMITS"}},
	}
	for _, c := range cases {
		_, err := readConfig(envOf(c.env))
		require.Error(t, err, c.env)
		for _, w := range c.want {
			assert.Contains(t, err.Error(), w, c.env)
		}
	}

	for _, env := range []map[string]string{
		{"OTP_DEV_CODES": "1", "ADDR": "127.0.0.1:0", "OTP_LIMITS": "off"},
		{"OTP_DEV_CODES": "true", "ADDR": "localhost:8080"},
		{"OTP_DEV_CODES": "1", "ADDR": "[::1]:8080"},
		{"OTP_ALLOWED_ORIGINS": " https://a.example.com, https://b.example.com:8443 ,"},
	} {
		cfg, err := readConfig(envOf(env))
		require.NoError(t, err, env)
		a, err := newApp(cfg, envOf(env), quiet)
		require.NoError(t, err, env)
		a.Close()
	}
	cfg, _ := readConfig(envOf(map[string]string{"OTP_ALLOWED_ORIGINS": " https://a.example.com, https://b.example.com:8443 ,"}))
	assert.Equal(t, []string{"https://a.example.com", "https://b.example.com:8443"}, cfg.allowedOrigins)

	cfg, err := readConfig(envOf(map[string]string{"OTP_ALLOWED_ORIGINS": "https://a.example.com/path"}))
	require.NoError(t, err)
	_, err = newApp(cfg, envOf(nil), quiet)
	assert.ErrorContains(t, err, "allowed origin", "a bad origin fails at start")
}

// TestProviderSelection covers each OTP_PROVIDER's configuration errors:
// what is missing or wrong is named, and secrets never appear.
func TestProviderSelection(t *testing.T) {
	const secret = "s3cr3t-value"
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTP_PROVIDER": "vonage"}, "OTP_PROVIDER=vonage needs VONAGE_BRAND"},
		{map[string]string{"OTP_PROVIDER": "vonage", "VONAGE_BRAND": "Acme"},
			"needs VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY_PATH (or VONAGE_API_KEY and VONAGE_API_SECRET)"},
		{map[string]string{"OTP_PROVIDER": "vonage", "VONAGE_BRAND": "Acme", "VONAGE_APPLICATION_ID": "app"},
			"needs VONAGE_PRIVATE_KEY_PATH (or VONAGE_API_KEY and VONAGE_API_SECRET)"},
		{map[string]string{"OTP_PROVIDER": "vonage", "VONAGE_BRAND": "Acme", "VONAGE_APPLICATION_ID": "app", "VONAGE_PRIVATE_KEY_PATH": "/nonexistent/k.pem"},
			"OTP_PROVIDER=vonage: cannot read VONAGE_PRIVATE_KEY_PATH"},
		{map[string]string{"OTP_PROVIDER": "vonage", "VONAGE_BRAND": "Bad/Brand", "VONAGE_API_KEY": "k", "VONAGE_API_SECRET": secret},
			"OTP_PROVIDER=vonage: vonage:"},
		{map[string]string{"OTP_PROVIDER": "vonage-legacy", "VONAGE_API_KEY": "k"}, "OTP_PROVIDER=vonage-legacy needs VONAGE_API_SECRET and VONAGE_BRAND"},
		{map[string]string{"OTP_PROVIDER": "vonage-legacy", "VONAGE_API_KEY": "k", "VONAGE_API_SECRET": secret, "VONAGE_BRAND": "Acme",
			"VONAGE_BASE_URL": "ftp://example.com"}, "OTP_PROVIDER=vonage-legacy: vonage:"},
		{map[string]string{"OTP_PROVIDER": "infobip", "INFOBIP_API_KEY": secret},
			"OTP_PROVIDER=infobip needs INFOBIP_BASE_URL and INFOBIP_APPLICATION_ID and INFOBIP_SMS_MESSAGE_ID"},
		{map[string]string{"OTP_PROVIDER": "infobip", "INFOBIP_BASE_URL": "http://x.api.infobip.com", "INFOBIP_API_KEY": secret,
			"INFOBIP_APPLICATION_ID": "A", "INFOBIP_SMS_MESSAGE_ID": "M"}, "OTP_PROVIDER=infobip: infobip:"},
		{map[string]string{"OTP_REDIS_URL": "redis://:" + secret + "@127.0.0.1:1/0"}, "OTP_REDIS_URL: Redis at 127.0.0.1:1 does not answer"},
		{map[string]string{"OTP_REDIS_URL": "http://:" + secret + "@127.0.0.1:1/0"}, "OTP_REDIS_URL is not a redis:// or rediss:// URL"},
	}
	for _, c := range cases {
		cfg, err := readConfig(envOf(c.env))
		require.NoError(t, err, c.env)
		_, err = newApp(cfg, envOf(c.env), quiet)
		require.Error(t, err, c.env)
		assert.Contains(t, err.Error(), c.want, c.env)
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestDevProviderLogsTheCode(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	cfg, err := readConfig(envOf(nil))
	require.NoError(t, err)
	p, err := buildProvider(cfg, envOf(nil), log)
	require.NoError(t, err)
	dev := p.(*otptest.Provider)
	_, err = dev.Send(context.Background(), otp.SendRequest{To: "+447400123456", Channel: otp.SMS, CodeLength: 6})
	require.NoError(t, err)
	code, ok := dev.LastCode("+447400123456")
	require.True(t, ok)
	assert.Contains(t, buf.String(), "code="+code)
	assert.Contains(t, buf.String(), "to=+44********56", "the number is masked")
}

// TestServeShutsDownGracefully starts serve on loopback, holds a request
// in flight, cancels, and checks the request completes and serve returns.
func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, h, config{}, quiet) }()

	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("serve returned with a request in flight: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	assert.Equal(t, "done", <-got, "the request in flight completes")
	require.NoError(t, <-served)
	_, err = net.Dial("tcp", ln.Addr().String())
	assert.Error(t, err, "the listener is closed")
}

func TestRunFailsFastOnBadConfig(t *testing.T) {
	err := run(context.Background(), envOf(map[string]string{"OTP_PROVIDER": "nope"}), quiet)
	assert.ErrorContains(t, err, "OTP_PROVIDER")
	err = run(context.Background(), envOf(map[string]string{"ADDR": "not an address"}), quiet)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
}

// TestRedisStore runs a verification through the demo with OTP_REDIS_URL
// set: Redis from testenv (the variable, or a throwaway redis-server).
func TestRedisStore(t *testing.T) {
	url := testenv.Redis(t)
	// Limits off: a shared Redis of a development machine keeps them for
	// an hour, across runs of this test.
	env := envOf(map[string]string{"OTP_REDIS_URL": url, "OTP_LIMITS": "off"})
	cfg, err := readConfig(env)
	require.NoError(t, err)
	a, err := newApp(cfg, env, quiet)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, "redis", a.storeName)

	verifyThrough(t, a.handler, randomMobile(), a.dev.LastCode)
}

func TestPostgresStore(t *testing.T) {
	url := testenv.Postgres(t)
	env := envOf(map[string]string{"OTP_POSTGRES_URL": url, "OTP_LIMITS": "off"})
	cfg, err := readConfig(env)
	require.NoError(t, err)
	a, err := newApp(cfg, env, quiet)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, "postgres", a.storeName)

	verifyThrough(t, a.handler, randomMobile(), a.dev.LastCode)

	_, err = readConfig(envOf(map[string]string{"OTP_POSTGRES_URL": url, "OTP_REDIS_URL": "redis://127.0.0.1:6379/0"}))
	assert.ErrorContains(t, err, "not both")
}

// randomMobile returns a GB mobile number in a range of its own, so that
// runs on a shared Redis meet no limit of an earlier run.
func randomMobile() string {
	return fmt.Sprintf("+4474%08d", rand.IntN(100_000_000))
}

// TestTwoInstances runs two demo instances on one Redis and one vendor,
// as behind a load balancer, and walks one browser's flow across both:
// started on the first, seen, guessed and verified on the second, and
// the session's verified state back on the first.
func TestTwoInstances(t *testing.T) {
	url := testenv.Redis(t)
	von := vonagetest.NewServer(vonagetest.Config{})
	defer von.Close()
	env := envOf(map[string]string{"OTP_REDIS_URL": url, "OTP_PROVIDER": "vonage", "VONAGE_API_KEY": "test-key",
		"VONAGE_API_SECRET": "test-secret", "VONAGE_BRAND": "Acme", "VONAGE_BASE_URL": von.URL,
		"OTP_TRUSTED_PROXIES": "127.0.0.1/32"})
	var servers [2]*httptest.Server
	for i := range servers {
		cfg, err := readConfig(env)
		require.NoError(t, err)
		a, err := newApp(cfg, env, quiet)
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		servers[i] = httptest.NewServer(a.handler)
		t.Cleanup(servers[i].Close)
	}
	// Cookies are per host, not per port: one jar is one browser for both.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	// A client of its own per run, through the "proxy", so that the
	// per-client limit of an earlier run on a shared Redis never applies.
	client := fmt.Sprintf("2001:db8:%x:%x::1", rand.IntN(1<<16), rand.IntN(1<<16))
	call := func(i int, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, servers[i].URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		return res.StatusCode, m
	}

	phone := randomMobile()
	status, m := call(0, "POST", "/api/verify/start", `{"phone":"`+phone+`"}`)
	require.Equal(t, http.StatusOK, status, m)
	status, m = call(1, "GET", "/api/verify/status", "")
	require.Equal(t, http.StatusOK, status, m)
	assert.Equal(t, "pending", m["state"], "the second instance sees the session and the verification")
	assert.Equal(t, phone, m["to"])

	code, ok := von.LastCode(phone)
	require.True(t, ok)
	wrong := strings.Repeat("0", len(code))
	if code == wrong {
		wrong = strings.Repeat("1", len(code))
	}
	status, m = call(1, "POST", "/api/verify/check", `{"code":"`+wrong+`"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status, m)
	_, m = call(0, "GET", "/api/verify/status", "")
	assert.EqualValues(t, 4, m["attempts_left"], "the attempt counts on both")

	status, m = call(1, "POST", "/api/verify/check", `{"code":"`+code+`"}`)
	require.Equal(t, http.StatusOK, status, m)
	assert.Equal(t, true, m["verified"])
	_, m = call(0, "GET", "/api/verify/status", "")
	assert.Equal(t, "verified", m["state"], "the renewed session reached the first instance")
	status, _ = call(0, "POST", "/api/verify/check", `{"code":"`+code+`"}`)
	assert.Equal(t, http.StatusNotFound, status, "a code works once, on any instance")
}

// TestRealProvidersAgainstFakes runs a verification through the demo for
// each real OTP_PROVIDER, pointed at its fake vendor server by the
// base-URL variables.
func TestRealProvidersAgainstFakes(t *testing.T) {
	von := vonagetest.NewServer(vonagetest.Config{})
	defer von.Close()
	ib := infobiptest.NewServer(infobiptest.Config{})
	defer ib.Close()
	app := ib.AddApplication("demo", infobiptest.AppConfig{})
	msg := ib.AddMessage(app, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})
	vonageEnv := map[string]string{"VONAGE_API_KEY": "test-key", "VONAGE_API_SECRET": "test-secret",
		"VONAGE_BRAND": "Acme", "VONAGE_BASE_URL": von.URL}
	for name, c := range map[string]struct {
		env  map[string]string
		code func(string) (string, bool)
	}{
		"vonage":        {vonageEnv, von.LastCode},
		"vonage-legacy": {vonageEnv, von.LastCode},
		"infobip": {map[string]string{"INFOBIP_BASE_URL": ib.URL, "INFOBIP_API_KEY": "test-api-key",
			"INFOBIP_APPLICATION_ID": app, "INFOBIP_SMS_MESSAGE_ID": msg}, ib.LastCode},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"OTP_PROVIDER": name}
			for k, v := range c.env {
				env[k] = v
			}
			cfg, err := readConfig(envOf(env))
			require.NoError(t, err)
			a, err := newApp(cfg, envOf(env), quiet)
			require.NoError(t, err)
			defer a.Close()
			verifyThrough(t, a.handler, randomMobile(), c.code)
		})
	}
}

// verifyThrough starts and checks a verification of phone through the
// demo's JSON API, reading the code with code.
func verifyThrough(t *testing.T, h http.Handler, phone string, code func(string) (string, bool)) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	post := func(path, body string) (int, string) {
		res, err := c.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := post("/api/verify/start", `{"phone":"`+phone+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	got, ok := code(phone)
	require.True(t, ok, "the vendor sent a code")
	status, body = post("/api/verify/check", `{"code":"`+got+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"verified":true`)
}
