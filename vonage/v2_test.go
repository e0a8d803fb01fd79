package vonage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

func TestV2SendCheck(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, nil)
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Provider != "vonage" || ref.ID == "" {
		t.Fatalf("ref = %+v", ref)
	}
	code, ok := f.srv.LastCode(testPhone)
	if !ok || len(code) != 6 {
		t.Fatalf("fake sent code %q, %v", code, ok)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	err = p.Check(ctx, ref, wrong)
	mustIs(t, err, otp.ErrWrongCode, otp.ErrProviderRejected)
	if pe := providerError(t, err); pe.HTTPStatus != 400 || pe.VendorStatus != "Invalid Code" || pe.Kind == otp.ProviderUnavailable {
		t.Fatalf("wrong code error = %+v", pe)
	}
	if err := p.Check(ctx, ref, code); err != nil {
		t.Fatalf("right code: %v", err)
	}
	// Vonage answers a second check of a verified request with 404.
	mustIs(t, p.Check(ctx, ref, code), otp.ErrNotFound)
}

func TestV2JWTIsCachedAndRenewed(t *testing.T) {
	key, pemKey := testRSA(t)
	f := newFixture(t, vonagetest.Config{ApplicationID: testAppID, PublicKey: &key.PublicKey})
	p := f.v2(t, func(c *vonage.V2Config) {
		c.APIKey, c.APISecret = "", ""
		c.ApplicationID, c.PrivateKey = testAppID, pemKey
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := "+44770090002" + strconv.Itoa(i)
			if _, err := p.Send(ctx, sms(to)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.srv.TokensSeen(); n != 1 {
		t.Fatalf("8 calls used %d tokens, want 1 (cached)", n)
	}
	// Still in the first 4/5 of its 15 minutes: same token.
	f.clock.Advance(11 * time.Minute)
	if _, err := p.Send(ctx, sms("+447700900101")); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.TokensSeen(); n != 1 {
		t.Fatalf("tokens = %d after 11 min, want 1", n)
	}
	// Inside the last fifth: renewed before it expires, and accepted.
	f.clock.Advance(2 * time.Minute)
	if _, err := p.Send(ctx, sms("+447700900102")); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.TokensSeen(); n != 2 {
		t.Fatalf("tokens = %d after 13 min, want 2 (renewed)", n)
	}
}

func TestV2JWTRefusedWhenExpiredAtVendor(t *testing.T) {
	// A token the fake deems expired (its clock ran ahead) is a 401,
	// mapped to a rejection, and the next call signs a fresh one.
	key, pemKey := testRSA(t)
	f := newFixture(t, vonagetest.Config{ApplicationID: testAppID, PublicKey: &key.PublicKey})
	clientClock := &fixedClock{t: f.clock.Now()}
	p := f.v2(t, func(c *vonage.V2Config) {
		c.APIKey, c.APISecret = "", ""
		c.ApplicationID, c.PrivateKey, c.Clock = testAppID, pemKey, clientClock
	})
	f.clock.Advance(20 * time.Minute)
	err := p.Cancel(context.Background(), otp.Ref{ID: "x"})
	mustIs(t, err, otp.ErrProviderAccount)
	if pe := providerError(t, err); pe.HTTPStatus != 401 {
		t.Fatalf("err = %+v", pe)
	}
	clientClock.t = f.clock.Now()
	mustIs(t, p.Cancel(context.Background(), otp.Ref{ID: "x"}), otp.ErrNotFound)
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// capture is an httptest server that records the last request and answers
// with a fixed status and body.
type capture struct {
	mu     sync.Mutex
	method string
	path   string // escaped
	header http.Header
	body   []byte
	n      int
}

func newCapture(t *testing.T, status int, body string) (*capture, *httptest.Server) {
	c := &capture{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.method, c.path, c.header, c.body = r.Method, r.URL.EscapedPath(), r.Header.Clone(), b
		c.n++
		c.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

func TestV2StartBody(t *testing.T) {
	c, srv := newCapture(t, 202, `{"request_id":"r1"}`)
	p, err := vonage.NewV2(vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL,
		Fallback: []otp.Channel{otp.WhatsApp, otp.Voice}, ChannelTimeout: 60 * time.Second, ClientRef: "order42",
		Locale: "es-es", WhatsAppFrom: "447700900999", SMSFrom: "ACME", TemplateID: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := p.Send(context.Background(), otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 6, Locale: "en_GB"})
	if err != nil || ref.ID != "r1" {
		t.Fatalf("ref %v err %v", ref, err)
	}
	var got map[string]any
	if err := json.Unmarshal(c.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"brand": "Acme", "locale": "en-gb", "channel_timeout": 60.0, "client_ref": "order42", "code_length": 6.0, "template_id": "tpl",
		"workflow": []any{
			map[string]any{"channel": "sms", "to": "447700900001", "from": "ACME"},
			map[string]any{"channel": "whatsapp", "to": "447700900001", "from": "447700900999"},
			map[string]any{"channel": "voice", "to": "447700900001"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body\n got %v\nwant %v", got, want)
	}
	if c.method != "POST" || c.path != "/v2/verify" || !strings.HasPrefix(c.header.Get("Authorization"), "Basic ") ||
		c.header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %s %v", c.method, c.path, c.header)
	}

	// Email: one step, no fallback, the address as is; the config locale.
	if _, err := p.Send(context.Background(), otp.SendRequest{To: "a@example.com", Channel: otp.Email}); err != nil {
		t.Fatal(err)
	}
	got = nil
	_ = json.Unmarshal(c.body, &got)
	if wf := got["workflow"].([]any); len(wf) != 1 || wf[0].(map[string]any)["to"] != "a@example.com" || got["locale"] != "es-es" {
		t.Fatalf("email body %s", c.body)
	}
}

func TestV2BadInputSendsNothing(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, nil) // no WhatsAppFrom
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  otp.SendRequest
		want error
	}{
		{"no plus", sms("447700900001"), otp.ErrInvalidPhone},
		{"letters", sms("+44770090000x"), otp.ErrInvalidPhone},
		{"too short", sms("+4477"), otp.ErrInvalidPhone},
		{"too long", sms("+4477009000011234"), otp.ErrInvalidPhone},
		{"bad email", otp.SendRequest{To: "not-an-email", Channel: otp.Email}, otp.ErrInvalidPhone},
		{"whatsapp without from", otp.SendRequest{To: testPhone, Channel: otp.WhatsApp}, otp.ErrUnsupportedChannel},
		{"code length", otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 11}, otp.ErrProviderRejected},
	} {
		_, err := p.Send(ctx, tc.req)
		mustIs(t, err, tc.want)
		providerError(t, err)
	}
	mustIs(t, p.Check(ctx, otp.Ref{ID: "x"}, "12"), otp.ErrInvalidCode)
	mustIs(t, p.Check(ctx, otp.Ref{ID: "x"}, "12 45"), otp.ErrInvalidCode)
	mustIs(t, p.Check(ctx, otp.Ref{}, "1234"), otp.ErrNotFound)
	mustIs(t, p.Cancel(ctx, otp.Ref{}), otp.ErrNotFound)
	mustIs(t, p.Resend(ctx, otp.Ref{}), otp.ErrNotFound)
	for _, ep := range []vonagetest.Op{vonagetest.V2Start, vonagetest.V2Check, vonagetest.V2Cancel, vonagetest.V2NextWorkflow} {
		if n := f.srv.Calls(ep); n != 0 {
			t.Errorf("%s received %d requests for bad input", ep, n)
		}
	}
}

func TestV2EscapesIDs(t *testing.T) {
	c, srv := newCapture(t, 404, `{"title":"Not Found"}`)
	p, err := vonage.NewV2(vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := "../../x?admin=1#f"
	mustIs(t, p.Check(ctx, otp.Ref{ID: id}, "1234"), otp.ErrNotFound)
	if c.path != "/v2/verify/..%2F..%2Fx%3Fadmin=1%23f" {
		t.Fatalf("check path %q", c.path)
	}
	mustIs(t, p.Resend(ctx, otp.Ref{ID: id}), otp.ErrNotFound)
	if c.path != "/v2/verify/..%2F..%2Fx%3Fadmin=1%23f/next_workflow" {
		t.Fatalf("resend path %q", c.path)
	}
	mustIs(t, p.Cancel(ctx, otp.Ref{ID: id}), otp.ErrNotFound)
	if c.method != "DELETE" || c.path != "/v2/verify/..%2F..%2Fx%3Fadmin=1%23f" {
		t.Fatalf("cancel %s %q", c.method, c.path)
	}
	// Dot segments: url.PathEscape leaves them, and "/v2/verify/.." is /v2.
	for id, seg := range map[string]string{"..": "%2E%2E", ".": "%2E"} {
		mustIs(t, p.Check(ctx, otp.Ref{ID: id}, "1234"), otp.ErrNotFound)
		if c.path != "/v2/verify/"+seg {
			t.Fatalf("check of %q: path %q", id, c.path)
		}
		mustIs(t, p.Resend(ctx, otp.Ref{ID: id}), otp.ErrNotFound)
		if c.path != "/v2/verify/"+seg+"/next_workflow" {
			t.Fatalf("resend of %q: path %q", id, c.path)
		}
		mustIs(t, p.Cancel(ctx, otp.Ref{ID: id}), otp.ErrNotFound)
		if c.path != "/v2/verify/"+seg {
			t.Fatalf("cancel of %q: path %q", id, c.path)
		}
	}
	// At the fake, ".." reaches the check route as one unknown request.
	f := newFixture(t, vonagetest.Config{})
	mustIs(t, f.v2(t, nil).Check(ctx, otp.Ref{ID: ".."}, "1234"), otp.ErrNotFound)
	if f.srv.Calls(vonagetest.V2Check) != 1 {
		t.Fatalf("check route got %d requests", f.srv.Calls(vonagetest.V2Check))
	}
}

func TestV2Concurrent(t *testing.T) {
	for _, status := range []int{409, 422} { // spec and SDK fixtures disagree
		f := newFixture(t, vonagetest.Config{ConflictStatus: status})
		p := f.v2(t, nil)
		first, err := p.Send(context.Background(), sms(testPhone))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Send(context.Background(), sms(testPhone))
		mustIs(t, err, vonage.ErrConcurrent, otp.ErrProviderRejected)
		var ce *vonage.ConcurrentError
		if !errors.As(err, &ce) || ce.RequestID != first.ID {
			t.Fatalf("%d: %v, want the in-flight id %s", status, err, first.ID)
		}
		if pe := providerError(t, err); pe.HTTPStatus != status || !pe.NotSent {
			t.Fatalf("%d: %v", status, err)
		}
	}
}

func TestV2TooManyWrongCodes(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "123456"})
	p := f.v2(t, nil)
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	mustIs(t, p.Check(ctx, ref, "000000"), otp.ErrWrongCode)
	mustIs(t, p.Check(ctx, ref, "000000"), otp.ErrWrongCode)
	err = p.Check(ctx, ref, "000000")
	mustIs(t, err, otp.ErrTooManyAttempts)
	if providerError(t, err).HTTPStatus != 410 {
		t.Fatal(err)
	}
	mustIs(t, p.Check(ctx, ref, "123456"), otp.ErrNotFound)
	// The destination is free again.
	if _, err := p.Send(ctx, sms(testPhone)); err != nil {
		t.Fatal(err)
	}
}

func TestV2ExpiryByClock(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "1234"})
	p := f.v2(t, func(c *vonage.V2Config) {
		c.ChannelTimeout = 60 * time.Second
		c.Fallback = []otp.Channel{otp.Voice}
	})
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(61 * time.Second) // voice leg starts by itself
	if s := f.srv.Sends(); len(s) != 2 || s[1].Channel != "voice" {
		t.Fatalf("sends %+v", s)
	}
	f.clock.Advance(60 * time.Second) // the last leg timed out
	mustIs(t, p.Check(ctx, ref, "1234"), otp.ErrNotFound)
}

func TestV2CancelTiming(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, func(c *vonage.V2Config) { c.Fallback = []otp.Channel{otp.Voice} })
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Cancel(ctx, ref) // within 30 s
	mustIs(t, err, otp.ErrProviderRejected)
	if pe := providerError(t, err); pe.HTTPStatus != 409 || pe.Kind == otp.ProviderUnavailable {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	mustIs(t, p.Cancel(ctx, ref), otp.ErrNotFound)
	ref, err = p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatalf("start after cancel: %v", err)
	}
	// After the second channel, cancel is refused again.
	f.clock.Advance(31 * time.Second)
	if err := p.Resend(ctx, ref); err != nil {
		t.Fatal(err)
	}
	mustIs(t, p.Cancel(ctx, ref), otp.ErrProviderRejected)
}

func TestV2Resend(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, func(c *vonage.V2Config) { c.Fallback = []otp.Channel{otp.Voice} })
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resend(ctx, ref); err != nil {
		t.Fatal(err)
	}
	s := f.srv.Sends()
	if len(s) != 2 || s[1].Channel != "voice" || s[1].Code != s[0].Code {
		t.Fatalf("sends %+v", s)
	}
	err = p.Resend(ctx, ref) // no channel left
	mustIs(t, err, otp.ErrProviderRejected)
	if pe := providerError(t, err); pe.HTTPStatus != 409 || pe.Kind == otp.ProviderUnavailable {
		t.Fatal(err)
	}
	if err := p.Check(ctx, ref, s[0].Code); err != nil {
		t.Fatal(err)
	}
}

func TestV2ConfigValidation(t *testing.T) {
	_, pemKey := testRSA(t)
	ok := vonage.V2Config{APIKey: "k", APISecret: "s", Brand: "Acme"}
	for name, mutate := range map[string]func(*vonage.V2Config){
		"no credentials":  func(c *vonage.V2Config) { c.APIKey, c.APISecret = "", "" },
		"app without key": func(c *vonage.V2Config) { c.ApplicationID = testAppID },
		"bad key":         func(c *vonage.V2Config) { c.ApplicationID, c.PrivateKey = testAppID, []byte("nope") },
		"ttl":             func(c *vonage.V2Config) { c.ApplicationID, c.PrivateKey, c.TokenTTL = testAppID, pemKey, 25*time.Hour },
		"no brand":        func(c *vonage.V2Config) { c.Brand = "" },
		"long brand":      func(c *vonage.V2Config) { c.Brand = strings.Repeat("b", 19) },
		"brand chars":     func(c *vonage.V2Config) { c.Brand = "a/b" },
		"timeout":         func(c *vonage.V2Config) { c.ChannelTimeout = 10 * time.Second },
		"client ref":      func(c *vonage.V2Config) { c.ClientRef = "a-b" },
		"fallback email":  func(c *vonage.V2Config) { c.Fallback = []otp.Channel{otp.Email} },
		"fallback wa":     func(c *vonage.V2Config) { c.Fallback = []otp.Channel{otp.WhatsApp} },
		"three fallbacks": func(c *vonage.V2Config) { c.Fallback = []otp.Channel{otp.SMS, otp.Voice, otp.SMS} },
		"base url":        func(c *vonage.V2Config) { c.BaseURL = "ftp://x" },
		"base url creds":  func(c *vonage.V2Config) { c.BaseURL = "https://u:p@x" },
		"plain http":      func(c *vonage.V2Config) { c.BaseURL = "http://api.nexmo.com" },
		"retries":         func(c *vonage.V2Config) { c.Retry.MaxRetries = 11 },
		"waits":           func(c *vonage.V2Config) { c.Retry.MinWait, c.Retry.MaxWait = time.Second, time.Millisecond },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := vonage.NewV2(cfg); err == nil || !strings.HasPrefix(err.Error(), "vonage: ") {
			t.Errorf("%s: err = %v", name, err)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "nope") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	if _, err := vonage.NewV2(ok); err != nil {
		t.Fatal(err)
	}
}
