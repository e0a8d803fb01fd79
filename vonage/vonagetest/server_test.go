package vonagetest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/vonage/vonagetest"
)

func do(t *testing.T, method, u, ctype, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

const basic = "Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=" // test-key:test-secret

func TestV2Validation(t *testing.T) {
	s := vonagetest.NewServer(vonagetest.Config{})
	defer s.Close()
	for body, param := range map[string]string{
		`{"workflow":[{"channel":"sms","to":"447400123456"}]}`:                                                           "brand",
		`{"brand":"a/b","workflow":[{"channel":"sms","to":"447400123456"}]}`:                                             "brand",
		`{"brand":"A","workflow":[]}`:                                                                                    "workflow",
		`{"brand":"A","workflow":[{"channel":"sms","to":"+447400123456"}]}`:                                              "workflow[0].to",
		`{"brand":"A","workflow":[{"channel":"whatsapp","to":"447400123456"}]}`:                                          "workflow[0].from",
		`{"brand":"A","code_length":3,"workflow":[{"channel":"sms","to":"447400123456"}]}`:                               "code_length",
		`{"brand":"A","channel_timeout":10,"workflow":[{"channel":"sms","to":"447400123456"}]}`:                          "channel_timeout",
		`{"brand":"A","workflow":[{"channel":"sms","to":"447400123456"},{"channel":"silent_auth","to":"447400123456"}]}`: "workflow[1].channel",
	} {
		code, m := do(t, "POST", s.URL+"/v2/verify", "application/json", basic, body)
		params, _ := m["invalid_parameters"].([]any)
		if code != 422 || len(params) != 1 || params[0].(map[string]any)["name"] != param {
			t.Errorf("%s: %d %v, want 422 naming %s", body, code, m, param)
		}
	}
	if code, _ := do(t, "POST", s.URL+"/v2/verify", "application/json", "Basic eDp5", `{}`); code != 401 {
		t.Fatal(code)
	}
	if n := s.Calls(vonagetest.V2Start); n != 9 {
		t.Fatalf("count %d", n)
	}
}

func TestJWTRules(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	clock := otptest.NewClock(time.Time{})
	s := vonagetest.NewServer(vonagetest.Config{ApplicationID: "app", PublicKey: &key.PublicKey, Clock: clock})
	defer s.Close()
	now := clock.Now()
	tok := func(c jwt.MapClaims) string {
		str, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
		return "Bearer " + str
	}
	for name, tc := range map[string]struct {
		claims jwt.MapClaims
		want   int
	}{
		"valid":          {jwt.MapClaims{"application_id": "app", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "1"}, 404},
		"no exp: 15 min": {jwt.MapClaims{"application_id": "app", "iat": now.Add(-10 * time.Minute).Unix(), "jti": "2"}, 404},
		"no exp, old":    {jwt.MapClaims{"application_id": "app", "iat": now.Add(-16 * time.Minute).Unix()}, 401},
		"no iat":         {jwt.MapClaims{"application_id": "app", "exp": now.Add(time.Hour).Unix()}, 401},
		"over 24h":       {jwt.MapClaims{"application_id": "app", "iat": now.Unix(), "exp": now.Add(25 * time.Hour).Unix()}, 401},
		"expired":        {jwt.MapClaims{"application_id": "app", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}, 401},
		"other app":      {jwt.MapClaims{"application_id": "x", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, 401},
	} {
		if code, m := do(t, "DELETE", s.URL+"/v2/verify/nope", "", tok(tc.claims), ""); code != tc.want {
			t.Errorf("%s: %d %v", name, code, m)
		}
	}
	if s.TokensSeen() != 2 {
		t.Fatal(s.TokensSeen())
	}
}

func TestLegacyCredentialsAndFormats(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	s := vonagetest.NewServer(vonagetest.Config{Clock: clock, ConflictAfterCancel: 10 * time.Second})
	defer s.Close()
	// Query credentials on a GET, Basic with a form, JSON body.
	code, m := do(t, "GET", s.URL+"/verify/json?api_key=test-key&api_secret=test-secret&number=447400123456&brand=A", "", "", "")
	if code != 200 || m["status"] != "0" {
		t.Fatalf("%d %v", code, m)
	}
	id := m["request_id"].(string)
	_, m = do(t, "POST", s.URL+"/verify/json", "application/x-www-form-urlencoded", basic, url.Values{"number": {"447400123456"}, "brand": {"A"}}.Encode())
	if m["status"] != "10" || m["request_id"] != id {
		t.Fatalf("concurrent: %v", m)
	}
	_, m = do(t, "POST", s.URL+"/verify/search/json", "application/json", "", `{"api_key":"test-key","api_secret":"test-secret","request_id":"`+id+`"}`)
	if m["status"] != "IN PROGRESS" {
		t.Fatalf("search %v", m)
	}
	for _, tc := range []struct{ q, status string }{
		{"number=447400123456&brand=A", "2"},                     // no api_key
		{"api_key=test-key&api_secret=x&number=1&brand=A", "4"},  // bad credentials
		{"api_key=test-key&api_secret=test-secret&brand=A", "2"}, // missing number
		{"api_key=test-key&api_secret=test-secret&number=44740012345x&brand=A", "3"},
		{"api_key=test-key&api_secret=test-secret&number=447400123457&brand=A&code_length=5", "3"},
		{"api_key=test-key&api_secret=test-secret&number=447400123457&brand=A&pin_code=1234", "20"},
	} {
		if _, m := do(t, "GET", s.URL+"/verify/json?"+tc.q, "", "", ""); m["status"] != tc.status {
			t.Errorf("%s: %v, want %s", tc.q, m, tc.status)
		}
	}
	// Cancel after 30 s, then the number stays busy for ConflictAfterCancel.
	clock.Advance(31 * time.Second)
	creds := "api_key=test-key&api_secret=test-secret"
	if _, m := do(t, "GET", s.URL+"/verify/control/json?"+creds+"&cmd=cancel&request_id="+id, "", "", ""); m["status"] != "0" {
		t.Fatal(m)
	}
	if _, m := do(t, "GET", s.URL+"/verify/json?"+creds+"&number=447400123456&brand=A", "", "", ""); m["status"] != "10" {
		t.Fatalf("right after cancel: %v", m)
	}
	clock.Advance(11 * time.Second)
	if _, m := do(t, "GET", s.URL+"/verify/json?"+creds+"&number=447400123456&brand=A", "", "", ""); m["status"] != "0" {
		t.Fatalf("after the delay: %v", m)
	}
	if _, m := do(t, "GET", s.URL+"/verify/search/json?"+creds+"&request_id=nope", "", "", ""); m["status"] != "101" {
		t.Fatal(m)
	}
}

func TestTimedEventsAndExpiry(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	s := vonagetest.NewServer(vonagetest.Config{Clock: clock})
	defer s.Close()
	creds := "api_key=test-key&api_secret=test-secret"
	// workflow 2: sms, sms, tts; wait 60 s; pin_expiry 180 s.
	_, m := do(t, "GET", s.URL+"/verify/json?"+creds+"&number=447400123456&brand=A&workflow_id=2&next_event_wait=60&pin_expiry=180", "", "", "")
	id := m["request_id"].(string)
	clock.Advance(125 * time.Second)
	sends := s.Sends()
	if len(sends) != 3 || sends[1].Channel != "sms" || sends[2].Channel != "tts" || sends[2].At.Sub(sends[0].At) != 120*time.Second {
		t.Fatalf("sends %+v", sends)
	}
	if st, _ := s.State(id); st != "pending" {
		t.Fatal(st)
	}
	clock.Advance(60 * time.Second)
	if st, _ := s.State(id); st != "expired" {
		t.Fatal(st)
	}
}

func TestFaults(t *testing.T) {
	s := vonagetest.NewServer(vonagetest.Config{})
	defer s.Close()
	s.FailNext(vonagetest.V2Check, vonagetest.Fault{Status: 503, RetryAfter: "7"})
	req, _ := http.NewRequest("POST", s.URL+"/v2/verify/x", strings.NewReader(`{"code":"1234"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" {
		t.Fatal(resp.Status)
	}
	s.FailNext(vonagetest.V2Check, vonagetest.Fault{Drop: true})
	if _, err := http.DefaultClient.Post(s.URL+"/v2/verify/x", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("dropped connection answered")
	}
	if s.Calls(vonagetest.V2Check) != 2 {
		t.Fatal(s.Calls(vonagetest.V2Check))
	}
}

// TestFailNextReplaces: FailNext replaces the script of its endpoint, and
// FailNext(op) clears it, as otptest.Provider's does.
func TestFailNextReplaces(t *testing.T) {
	s := vonagetest.NewServer(vonagetest.Config{})
	defer s.Close()
	status := func() int {
		code, _ := do(t, "DELETE", s.URL+"/v2/verify/x", "", basic, "")
		return code
	}
	s.FailNext(vonagetest.V2Cancel, vonagetest.Fault{Status: 500}, vonagetest.Fault{Status: 500})
	s.FailNext(vonagetest.V2Cancel, vonagetest.Fault{Status: 503})
	if got := []int{status(), status()}; got[0] != 503 || got[1] != 404 {
		t.Fatalf("statuses %v, want the replacing 503 then the real 404", got)
	}
	s.FailNext(vonagetest.V2Cancel, vonagetest.Fault{Status: 500})
	s.FailNext(vonagetest.V2Cancel)
	if got := status(); got != 404 || s.Calls(vonagetest.V2Cancel) != 3 {
		t.Fatalf("cleared script: %d after %d calls", got, s.Calls(vonagetest.V2Cancel))
	}
}

// TestCloseReleasesDelays: a Delay longer than any client's patience is a
// hang, and Close ends it.
func TestCloseReleasesDelays(t *testing.T) {
	s := vonagetest.NewServer(vonagetest.Config{})
	s.FailNext(vonagetest.V2Check, vonagetest.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := http.Post(s.URL+"/v2/verify/x", "application/json", strings.NewReader(`{"code":"1234"}`))
		errc <- err
	}()
	for s.Calls(vonagetest.V2Check) == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the delayed request")
	}
	if err := <-errc; err == nil {
		t.Fatal("the hung request got an answer")
	}
}
