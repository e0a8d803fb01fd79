package vonage_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

func TestLegacySendCheck(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.legacy(t, nil)
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Provider != "vonage-legacy" || len(ref.ID) != 32 {
		t.Fatalf("ref %+v", ref)
	}
	code, _ := f.srv.LastCode(testPhone)
	if len(code) != 6 {
		t.Fatalf("code %q", code)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	err = p.Check(ctx, ref, wrong)
	mustIs(t, err, otp.ErrWrongCode)
	if pe := providerError(t, err); pe.VendorStatus != "16" || pe.HTTPStatus != 200 {
		t.Fatalf("%+v", pe)
	}
	if err := p.Check(ctx, ref, code); err != nil {
		t.Fatal(err)
	}
	err = p.Check(ctx, ref, code) // already verified: status 6
	mustIs(t, err, otp.ErrNotFound)
	if providerError(t, err).VendorStatus != "6" {
		t.Fatal(err)
	}
}

func TestLegacyForm(t *testing.T) {
	c, srv := newCapture(t, 200, `{"request_id":"abc","status":"0"}`)
	p, err := vonage.NewLegacy(vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL,
		SenderID: "ACME", WorkflowID: 4, PinExpiry: 240 * time.Second, NextEventWait: 120 * time.Second, Locale: "de-de"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), otp.SendRequest{To: testPhone, Channel: otp.Voice, CodeLength: 4}); err != nil {
		t.Fatal(err)
	}
	got, _ := url.ParseQuery(string(c.body))
	want := url.Values{"api_key": {testKey}, "api_secret": {testSecret}, "brand": {"Acme"}, "number": {"447700900001"},
		"sender_id": {"ACME"}, "code_length": {"4"}, "lg": {"de-de"}, "pin_expiry": {"240"}, "next_event_wait": {"120"},
		"workflow_id": {"7"}}
	if got.Encode() != want.Encode() || c.path != "/verify/json" || c.method != "POST" || c.header.Get("Authorization") != "" {
		t.Fatalf("%s %s\n got %v\nwant %v", c.method, c.path, got, want)
	}
	// Check: the ID travels in the form, never in the path.
	_ = p.Check(context.Background(), otp.Ref{ID: "../x?y"}, "1234")
	got, _ = url.ParseQuery(string(c.body))
	if c.path != "/verify/check/json" || got.Get("request_id") != "../x?y" || got.Get("code") != "1234" {
		t.Fatalf("check %s %v", c.path, got)
	}
}

func TestLegacyBadInputSendsNothing(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.legacy(t, nil)
	ctx := context.Background()
	_, err := p.Send(ctx, sms("0044770090000"))
	mustIs(t, err, otp.ErrInvalidPhone)
	_, err = p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 5})
	mustIs(t, err, otp.ErrProviderRejected)
	_, err = p.Send(ctx, otp.SendRequest{To: "a@b.c", Channel: otp.Email})
	mustIs(t, err, otp.ErrUnsupportedChannel)
	mustIs(t, p.Check(ctx, otp.Ref{ID: strings.Repeat("a", 33)}, "1234"), otp.ErrNotFound)
	mustIs(t, p.Check(ctx, otp.Ref{ID: "a"}, "12"), otp.ErrInvalidCode)
	mustIs(t, p.Cancel(ctx, otp.Ref{}), otp.ErrNotFound)
	for _, ep := range []vonagetest.Op{vonagetest.LegacyRequest, vonagetest.LegacyCheck, vonagetest.LegacyControl} {
		if n := f.srv.Calls(ep); n != 0 {
			t.Errorf("%s got %d requests", ep, n)
		}
	}
}

func TestLegacyConcurrentTooManyCancelResend(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "1234"})
	p := f.legacy(t, nil) // workflow 1: sms, tts, tts
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(ctx, sms(testPhone))
	var ce *vonage.ConcurrentError
	if !errors.As(err, &ce) || ce.RequestID != ref.ID || providerError(t, err).VendorStatus != "10" {
		t.Fatalf("concurrent: %v", err)
	}
	err = p.Cancel(ctx, ref) // within 30 s: status 19, try again later
	mustIs(t, err, otp.ErrProviderUnavailable)
	if pe := providerError(t, err); pe.VendorStatus != "19" || pe.RetryAfter != 30*time.Second || !pe.NotSent {
		t.Fatal(err)
	}
	if err := p.Resend(ctx, ref); err != nil { // trigger_next_event
		t.Fatal(err)
	}
	if s := f.srv.Sends(); len(s) != 2 || s[1].Channel != "tts" {
		t.Fatalf("sends %+v", s)
	}
	f.clock.Advance(31 * time.Second)
	err = p.Cancel(ctx, ref) // past the second event: status 19, final
	mustIs(t, err, otp.ErrProviderRejected)
	if providerError(t, err).VendorStatus != "19" {
		t.Fatal(err)
	}
	mustIs(t, p.Check(ctx, ref, "0000"), otp.ErrWrongCode)
	mustIs(t, p.Check(ctx, ref, "0000"), otp.ErrWrongCode)
	err = p.Check(ctx, ref, "0000")
	mustIs(t, err, otp.ErrTooManyAttempts)
	if providerError(t, err).VendorStatus != "17" {
		t.Fatal(err)
	}
	// Free again; cancel after 30 s works; expiry by clock.
	ref, err = p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	ref, err = p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(301 * time.Second) // default pin_expiry 300 s
	mustIs(t, p.Check(ctx, ref, "1234"), otp.ErrNotFound)
}

func TestLegacyConfigValidation(t *testing.T) {
	ok := vonage.LegacyConfig{APIKey: "k", APISecret: "s", Brand: "Acme"}
	for name, mutate := range map[string]func(*vonage.LegacyConfig){
		"no secret":  func(c *vonage.LegacyConfig) { c.APISecret = "" },
		"no brand":   func(c *vonage.LegacyConfig) { c.Brand = "" },
		"sender":     func(c *vonage.LegacyConfig) { c.SenderID = "123456789012" },
		"workflow 3": func(c *vonage.LegacyConfig) { c.WorkflowID = 3 },
		"workflow 8": func(c *vonage.LegacyConfig) { c.WorkflowID = 8 },
		"voice wf":   func(c *vonage.LegacyConfig) { c.VoiceWorkflowID = 1 },
		"pin expiry": func(c *vonage.LegacyConfig) { c.PinExpiry = 30 * time.Second },
		"wait":       func(c *vonage.LegacyConfig) { c.NextEventWait = 901 * time.Second },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := vonage.NewLegacy(cfg); err == nil || !strings.HasPrefix(err.Error(), "vonage: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
