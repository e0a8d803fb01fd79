package infobip_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/internal/vendorhttp"
	"github.com/otpkit/otp/internal/vendorhttp/reusetest"
	"github.com/otpkit/otp/memstore"
)

var ctx = context.Background()

func TestSendAndCheckSMS(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	ref, err := e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS, CodeLength: 6})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Provider != "infobip" || !strings.HasPrefix(ref.ID, "sms:") {
		t.Fatalf("ref = %+v", ref)
	}
	sends := e.srv.Sends()
	if len(sends) != 1 || sends[0].To != digits || sends[0].Channel != otp.SMS {
		t.Fatalf("sends = %+v, want one SMS to %s (no +)", sends, digits)
	}
	if sends[0].NCNeeded != "false" {
		t.Errorf("ncNeeded = %q, want an explicit false when NumberLookup is off", sends[0].NCNeeded)
	}
	pin, ok := e.srv.LastCode(phone)
	if !ok || len(pin) != 6 {
		t.Fatalf("LastCode = %q, %t", pin, ok)
	}
	var wc *otp.WrongCodeError
	if err := e.client.Check(ctx, ref, wrong(pin)); !errors.As(err, &wc) || wc.AttemptsLeft != 2 {
		t.Fatalf("wrong PIN: err = %v, want WrongCodeError with 2 left", err)
	}
	if err := e.client.Check(ctx, ref, pin); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
}

// wrong returns a PIN of the same length that is not pin.
func wrong(pin string) string {
	if pin[0] == '0' {
		return "1" + pin[1:]
	}
	return "0" + pin[1:]
}

func TestNumberLookup(t *testing.T) {
	unreachable := "+447700900123"
	e := newEnv(t, defaultApp, infobiptest.Config{Unreachable: []string{"447700900123"}},
		func(c *infobip.Config) { c.NumberLookup = true })
	if _, err := e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS}); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Sends()[0].NCNeeded; got != "true" {
		t.Errorf("ncNeeded = %q, want true", got)
	}
	_, err := e.client.Send(ctx, otp.SendRequest{To: unreachable, Channel: otp.SMS})
	if !errors.Is(err, otp.ErrInvalidPhone) {
		t.Fatalf("unreachable number: err = %v, want ErrInvalidPhone", err)
	}
	if pe := providerError(t, err); pe.VendorStatus != "NC_DESTINATION_NOT_REACHABLE" || pe.Kind == otp.ProviderUnavailable || !pe.NotSent {
		t.Errorf("ProviderError = %+v", pe)
	}
	if _, ok := e.srv.LastCode(unreachable); ok {
		t.Error("the fake delivered a PIN to an unreachable number")
	}
}

func TestVoiceAndEmailWithResend(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	for _, tc := range []struct {
		ch otp.Channel
		to string
	}{{otp.Voice, phone}, {otp.Email, address}} {
		t.Run(string(tc.ch), func(t *testing.T) {
			ref, err := e.client.Send(ctx, otp.SendRequest{To: tc.to, Channel: tc.ch})
			if err != nil {
				t.Fatal(err)
			}
			first, _ := e.srv.LastCode(tc.to)
			if err := e.client.Resend(ctx, ref); err != nil {
				t.Fatal(err)
			}
			sends := e.srv.Sends()
			last := sends[len(sends)-1]
			if !last.Resend || last.Channel != tc.ch || last.Code != first {
				t.Fatalf("resend = %+v, want the same PIN %q on %s", last, first, tc.ch)
			}
			if err := e.client.Check(ctx, ref, first); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := e.client.Resend(ctx, otp.Ref{ID: "sms:0000"}); !errors.Is(err, otp.ErrNotFound) {
		t.Errorf("resend of an unknown pin: %v, want ErrNotFound", err)
	}
}

func TestPinRulesAtTheFake(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	send := func() (otp.Ref, string) {
		t.Helper()
		ref, err := e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS})
		if err != nil {
			t.Fatal(err)
		}
		pin, _ := e.srv.LastCode(phone)
		return ref, pin
	}

	// Attempts: the third wrong PIN burns it, and then even the right one fails.
	ref, pin := send()
	for left := 2; left >= 1; left-- {
		var wc *otp.WrongCodeError
		if err := e.client.Check(ctx, ref, wrong(pin)); !errors.As(err, &wc) || wc.AttemptsLeft != left {
			t.Fatalf("err = %v, want %d left", err, left)
		}
	}
	if err := e.client.Check(ctx, ref, wrong(pin)); !errors.Is(err, otp.ErrTooManyAttempts) {
		t.Fatalf("last wrong PIN: %v, want ErrTooManyAttempts", err)
	}
	if err := e.client.Check(ctx, ref, pin); !errors.Is(err, otp.ErrTooManyAttempts) {
		t.Fatalf("right PIN after the last attempt: %v, want ErrTooManyAttempts", err)
	}

	// TTL by the clock.
	ref, pin = send()
	e.clock.Advance(15 * time.Minute)
	if err := e.client.Check(ctx, ref, pin); !errors.Is(err, otp.ErrExpired) {
		t.Fatalf("after the TTL: %v, want ErrExpired", err)
	}

	// Send limit per number: 3 a day; the fourth is throttled before anything is sent.
	ref, _ = send()
	err := e.client.Resend(ctx, ref) // the 4th send to this number today
	if pe := providerError(t, err); pe.Kind != otp.ProviderUnavailable || !pe.NotSent || pe.HTTPStatus != http.StatusTooManyRequests {
		t.Fatalf("4th send: %+v, want a throttled, not-sent error", pe)
	}
	e.clock.Advance(24 * time.Hour)
	send()
}

func TestVerifyLimitAndSingleVerification(t *testing.T) {
	e := newEnv(t, infobiptest.AppConfig{VerifyPinLimit: "1/3s"}, infobiptest.Config{}, nil)
	ref, err := e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := e.srv.LastCode(phone)
	if err := e.client.Check(ctx, ref, wrong(pin)); !errors.Is(err, otp.ErrWrongCode) {
		t.Fatal(err)
	}
	before := e.srv.Calls(infobiptest.OpVerify)
	err = e.client.Check(ctx, ref, pin)
	if !errors.Is(err, otp.ErrProviderUnavailable) || providerError(t, err).HTTPStatus != 429 {
		t.Fatalf("second verify inside 3s: %v, want a 429", err)
	}
	if n := e.srv.Calls(infobiptest.OpVerify) - before; n != 3 {
		t.Errorf("a throttled verify reached the server %d times, want 3 (retried twice)", n)
	}
	e.clock.Advance(3 * time.Second)
	if err := e.client.Check(ctx, ref, pin); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Second)
	// AllowMultiplePinVerifications false: a verified PIN is gone.
	if err := e.client.Check(ctx, ref, pin); !errors.Is(err, otp.ErrNotFound) {
		t.Fatalf("second verification: %v, want ErrNotFound", err)
	}
}

func TestThroughVerifier(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	store := memstore.New(memstore.Config{Clock: e.clock})
	defer store.Close()
	v, err := otp.NewVerifier(e.client, store, otp.Config{CodeLength: 6, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Start(ctx, "session-1", phone); err != nil {
		t.Fatal(err)
	}
	pin, _ := e.srv.LastCode(phone)
	st, err := v.Check(ctx, "session-1", pin)
	if err != nil || st.To != phone {
		t.Fatalf("Check = %+v, %v", st, err)
	}
}

func TestNoCancel(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	if _, ok := any(e.client).(otp.Canceler); ok {
		t.Fatal("Client implements otp.Canceler, but Infobip cannot cancel a PIN")
	}
	if _, ok := any(e.client).(otp.Resender); !ok {
		t.Fatal("Client does not implement otp.Resender")
	}
}

func TestSupports(t *testing.T) {
	c, err := infobip.New(infobip.Config{APIKey: apiKey, ApplicationID: "A", VoiceMessageID: "V"})
	if err != nil {
		t.Fatal(err)
	}
	for ch, want := range map[otp.Channel]bool{otp.SMS: false, otp.Voice: true, otp.Email: false, otp.WhatsApp: false} {
		if c.Supports(ch) != want {
			t.Errorf("Supports(%s) = %t, want %t", ch, !want, want)
		}
	}
	if c.Name() != "infobip" {
		t.Errorf("Name = %q", c.Name())
	}
}

// Bad input fails with its sentinel and sends nothing.
func TestBadInputSendsNothing(t *testing.T) {
	h := &canned{status: 200}
	c := cannedClient(t, h, func(cfg *infobip.Config) { cfg.VoiceMessageID = "" })
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no plus", send(c, "447911123456", otp.SMS), otp.ErrInvalidPhone},
		{"letters", send(c, "+44791112345x", otp.SMS), otp.ErrInvalidPhone},
		{"too long", send(c, "+4479111234567890", otp.SMS), otp.ErrInvalidPhone},
		{"bad email", send(c, "jane@", otp.Email), otp.ErrInvalidPhone},
		{"email with newline", send(c, "ja\nne@example.com", otp.Email), otp.ErrInvalidPhone},
		{"email with a display name", send(c, "Jane <jane@example.com>", otp.Email), otp.ErrInvalidPhone},
		{"a list of addresses", send(c, "jane@example.com,joe@example.com", otp.Email), otp.ErrInvalidPhone},
		{"too short", send(c, "+683701", otp.SMS), otp.ErrInvalidPhone},
		{"voice without template", send(c, phone, otp.Voice), otp.ErrUnsupportedChannel},
		{"whatsapp", send(c, phone, otp.WhatsApp), otp.ErrUnsupportedChannel},
		{"empty code", c.Check(ctx, otp.Ref{ID: "sms:" + pinID}, ""), otp.ErrInvalidCode},
		{"code with space", c.Check(ctx, otp.Ref{ID: "sms:" + pinID}, "12 34"), otp.ErrInvalidCode},
		{"empty ref", c.Check(ctx, otp.Ref{}, "1234"), otp.ErrNotFound},
		{"empty ref resend", c.Resend(ctx, otp.Ref{ID: "voice:"}), otp.ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if h.count() != 0 {
		t.Errorf("bad input reached the server %d times", h.count())
	}
}

func send(c *infobip.Client, to string, ch otp.Channel) error {
	_, err := c.Send(ctx, otp.SendRequest{To: to, Channel: ch})
	return err
}

// IDs are escaped in URL paths: "../", "?" and the dot segments stay
// inside their segment.
func TestPinIDEscaped(t *testing.T) {
	h := &canned{status: 404}
	c := cannedClient(t, h, nil)
	evil := "../x?y=1#z"
	_ = c.Check(ctx, otp.Ref{ID: "sms:" + evil}, "1234")
	_ = c.Resend(ctx, otp.Ref{ID: "voice:" + evil})
	// Dot segments, which url.PathEscape leaves and a server resolves.
	_ = c.Check(ctx, otp.Ref{ID: "sms:.."}, "1234")
	_ = c.Resend(ctx, otp.Ref{ID: "sms:."})
	_, _ = c.Application(ctx, "..")
	_, _ = c.UpdateApplication(ctx, infobip.Application{ID: "..", Name: "a"})
	_, _ = c.Messages(ctx, "..")
	_, _ = c.Message(ctx, "..", ".")
	_, _ = c.CreateMessage(ctx, ".", infobip.Message{EmailTemplateID: 1})
	_, _ = c.UpdateMessage(ctx, "..", infobip.Message{ID: "..", Text: "{{pin}}"})
	want := []string{"/2fa/2/pin/..%2Fx%3Fy=1%23z/verify", "/2fa/2/pin/..%2Fx%3Fy=1%23z/resend/voice",
		"/2fa/2/pin/%2E%2E/verify", "/2fa/2/pin/%2E/resend",
		"/2fa/2/applications/%2E%2E", "/2fa/2/applications/%2E%2E", "/2fa/2/applications/%2E%2E/messages",
		"/2fa/2/applications/%2E%2E/messages/%2E", "/2fa/2/applications/%2E/email/messages",
		"/2fa/2/applications/%2E%2E/messages/%2E%2E"}
	if fmt.Sprint(h.paths) != fmt.Sprint(want) {
		t.Fatalf("paths = %q\nwant %q", h.paths, want)
	}

	// At the fake, the escaped ID reaches the verify route as one unknown pin.
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	for _, id := range []string{evil, ".."} {
		if err := e.client.Check(ctx, otp.Ref{ID: "sms:" + id}, "1234"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("%q: err = %v, want ErrNotFound", id, err)
		}
	}
	if n := e.srv.Calls(infobiptest.OpVerify); n != 2 {
		t.Fatalf("verify route got %d requests, want 2", n)
	}
}

func TestResponseSizeCap(t *testing.T) {
	body := `{"pinId":"` + pinID + `","smsStatus":"MESSAGE_SENT"}`
	h := &canned{status: 200, body: body + strings.Repeat(" ", vendorhttp.MaxBody-len(body)+1)}
	c := cannedClient(t, h, nil)
	err := send(c, phone, otp.SMS)
	if pe := providerError(t, err); pe.Kind != otp.ProviderUnavailable || pe.NotSent || pe.HTTPStatus != 200 {
		t.Fatalf("err = %v, want a too-long body to fail, maybe sent", err)
	}
	h.body = body + strings.Repeat(" ", vendorhttp.MaxBody-len(body))
	if err := send(c, phone, otp.SMS); err != nil {
		t.Fatalf("a body of exactly the cap: %v", err)
	}
}

// TestConnectionReuse: sequential calls, error answers among them, leave
// their connection reusable: every answer read to EOF and closed, the pool
// never closed, also when an answer exhausts the retries. (Not a count of
// TCP connections: see package reusetest for why that is flaky.)
func TestConnectionReuse(t *testing.T) {
	hc := vendorhttp.NewHTTPClient()
	watch := reusetest.Wrap(hc)
	app := defaultApp
	app.SendPinPerPhoneNumberLimit = "1000/1d"
	e := newEnv(t, app, infobiptest.Config{}, func(c *infobip.Config) { c.HTTPClient = hc })
	var ref otp.Ref
	for i := range 20 {
		var err error
		if ref, err = e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS}); err != nil {
			t.Fatal(i, err)
		}
		pin, _ := e.srv.LastCode(phone)
		if err := e.client.Check(ctx, ref, pin); err != nil {
			t.Fatal(i, err)
		}
		// An error answer must not cost the connection either.
		if err := e.client.Check(ctx, otp.Ref{ID: "sms:unknown"}, pin); !errors.Is(err, otp.ErrNotFound) {
			t.Fatal(i, err)
		}
	}
	e.srv.FailNext(infobiptest.OpVerify, slices.Repeat([]infobiptest.Fault{{Status: 429}}, 3)...)
	if err := e.client.Check(ctx, ref, "123456"); !errors.Is(err, otp.ErrProviderUnavailable) {
		t.Fatal(err)
	}
	watch.Check(t, 63)
}

func TestConcurrentUse(t *testing.T) {
	app := defaultApp
	app.SendPinPerPhoneNumberLimit = "1000/1d"
	e := newEnv(t, app, infobiptest.Config{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			to := fmt.Sprintf("+4479111234%02d", i)
			ref, err := e.client.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS})
			if err != nil {
				errs <- err
				return
			}
			pin, _ := e.srv.LastCode(to)
			errs <- e.client.Check(ctx, ref, pin)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  infobip.Config
	}{
		{"no key", infobip.Config{}},
		{"key with newline", infobip.Config{APIKey: "a\nb"}},
		{"plain http", infobip.Config{APIKey: "k", BaseURL: "http://xyz.api.infobip.com"}},
		{"ftp", infobip.Config{APIKey: "k", BaseURL: "ftp://xyz.api.infobip.com"}},
		{"user info", infobip.Config{APIKey: "k", BaseURL: "https://u:p@xyz.api.infobip.com"}},
		{"query", infobip.Config{APIKey: "k", BaseURL: "https://xyz.api.infobip.com?a=b"}},
		{"template without app", infobip.Config{APIKey: "k", SMSMessageID: "M"}},
		{"waits reversed", infobip.Config{APIKey: "k", Retry: otp.RetryPolicy{MinWait: time.Second, MaxWait: time.Millisecond}}},
		{"retries", infobip.Config{APIKey: "k", Retry: otp.RetryPolicy{MaxRetries: 11}}},
	} {
		if _, err := infobip.New(tc.cfg); err == nil || !strings.HasPrefix(err.Error(), "infobip: ") {
			t.Errorf("%s: err = %v, want an infobip: error", tc.name, err)
		}
	}
	for raw, want := range map[string]string{
		"":                              "https://api.infobip.com",
		"xyz.api.infobip.com":           "https://xyz.api.infobip.com",
		"https://xyz.api.infobip.com/":  "https://xyz.api.infobip.com",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://localhost:1/":           "http://localhost:1",
		" https://xyz.api.infobip.com ": "https://xyz.api.infobip.com",
	} {
		c, err := infobip.New(infobip.Config{APIKey: "k", BaseURL: raw})
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if s := fmt.Sprint(c); !strings.Contains(s, `BaseURL:"`+want+`"`) {
			t.Errorf("%q: client %s, want BaseURL %s", raw, s, want)
		}
	}
}

// The API key never appears when a Config or Client is printed, nor in errors.
func TestSecretsNotPrinted(t *testing.T) {
	cfg := infobip.Config{APIKey: apiKey, ApplicationID: "APP", SMSMessageID: "M"}
	c, err := infobip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{cfg, &cfg, c, []any{cfg}} {
			s := fmt.Sprintf(verb, v)
			if strings.Contains(s, apiKey) || strings.Contains(s, fmt.Sprintf("%x", apiKey)) {
				t.Errorf("%s of %T prints the key: %s", verb, v, s)
			}
		}
	}
	if s := fmt.Sprint(cfg); !strings.Contains(s, "<redacted>") || !strings.Contains(s, "APP") {
		t.Errorf("Config prints as %s", s)
	}
}
