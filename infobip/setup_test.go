package infobip_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// setupClient is a Client with only an API key, on an empty fake.
func setupClient(t *testing.T, fake infobiptest.Config) (*infobiptest.Server, *infobip.Client) {
	t.Helper()
	fake.APIKey = apiKey
	srv := infobiptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestApplicationCRUD(t *testing.T) {
	_, c := setupClient(t, infobiptest.Config{})
	created, err := c.CreateApplication(ctx, infobip.Application{Name: "signup",
		Config: infobip.AppConfig{PinAttempts: 5, PinTimeToLive: "10m", SendPinPerPhoneNumberLimit: "5/1h"}})
	if err != nil {
		t.Fatal(err)
	}
	want := infobip.Application{ID: created.ID, Name: "signup", Config: infobip.AppConfig{
		PinAttempts: 5, PinTimeToLive: "10m", VerifyPinLimit: "1/3s",
		SendPinPerApplicationLimit: "10000/1d", SendPinPerPhoneNumberLimit: "5/1h"}}
	if created.ID == "" || created != want {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	got, err := c.Application(ctx, created.ID)
	if err != nil || got != want {
		t.Fatalf("read %+v, %v", got, err)
	}
	want.Disabled, want.Config.AllowMultiplePinVerifications = true, true
	if got, err = c.UpdateApplication(ctx, want); err != nil || got != want {
		t.Fatalf("updated %+v, %v; want %+v", got, err, want)
	}
	apps, err := c.Applications(ctx)
	if err != nil || len(apps) != 1 || apps[0] != want {
		t.Fatalf("list %+v, %v", apps, err)
	}
	_, err = c.Application(ctx, "nope/../x")
	if !errors.Is(err, otp.ErrNotFound) || providerError(t, err).HTTPStatus != http.StatusNotFound {
		t.Fatalf("unknown application: %v", err)
	}
}

func TestMessageCRUD(t *testing.T) {
	srv, c := setupClient(t, infobiptest.Config{})
	appID := srv.AddApplication("a", infobiptest.AppConfig{})
	m, err := c.CreateMessage(ctx, appID, infobip.Message{Text: "Code {{pin}}", PinLength: 6, SenderID: "Acme", Language: "de"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || m.PinType != infobip.Numeric || m.PinLength != 6 || m.SenderID != "Acme" || m.Language != "de" {
		t.Fatalf("created %+v", m)
	}
	m.Text, m.PinLength = "Your code: {{pin}}", 8
	if m, err = c.UpdateMessage(ctx, appID, m); err != nil || m.PinLength != 8 || m.Text != "Your code: {{pin}}" {
		t.Fatalf("updated %+v, %v", m, err)
	}
	if got, err := c.Message(ctx, appID, m.ID); err != nil || got != m {
		t.Fatalf("read %+v, %v; want %+v", got, err, m)
	}
	email, err := c.CreateMessage(ctx, appID, infobip.Message{EmailTemplateID: 42, From: "no-reply@example.com", PinLength: 6})
	if err != nil || email.EmailTemplateID != 42 {
		t.Fatalf("email template %+v, %v", email, err)
	}
	ms, err := c.Messages(ctx, appID)
	if err != nil || len(ms) != 2 || ms[0] != m || ms[1] != email {
		t.Fatalf("list %+v, %v", ms, err)
	}
}

// Bad setup input fails locally, before any request.
func TestSetupValidates(t *testing.T) {
	srv, c := setupClient(t, infobiptest.Config{})
	for _, err := range []error{
		func() error { _, err := c.CreateApplication(ctx, infobip.Application{}); return err }(),
		func() error {
			_, err := c.CreateApplication(ctx, infobip.Application{Name: "a", Config: infobip.AppConfig{PinTimeToLive: "15 minutes"}})
			return err
		}(),
		func() error {
			_, err := c.CreateApplication(ctx, infobip.Application{Name: "a", Config: infobip.AppConfig{VerifyPinLimit: "3s"}})
			return err
		}(),
		func() error { _, err := c.UpdateApplication(ctx, infobip.Application{Name: "a"}); return err }(),
		func() error { _, err := c.CreateMessage(ctx, "A", infobip.Message{Text: "no placeholder"}); return err }(),
		func() error {
			_, err := c.CreateMessage(ctx, "A", infobip.Message{Text: "{{pin}}", PinType: "EMOJI"})
			return err
		}(),
		func() error { _, err := c.UpdateMessage(ctx, "A", infobip.Message{Text: "{{pin}}"}); return err }(),
		func() error { _, err := c.EnsureSetup(ctx, infobip.Setup{}); return err }(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "infobip: ") {
			t.Errorf("err = %v, want an infobip: error", err)
		}
	}
	if n := srv.Calls(infobiptest.OpSetup); n != 0 {
		t.Errorf("invalid setup reached the server %d times", n)
	}
}

// The fake's own validation answers 400 in the envelope chosen.
func TestSetupVendorErrors(t *testing.T) {
	for _, env := range []infobiptest.Envelope{infobiptest.Legacy, infobiptest.Modern} {
		srv, c := setupClient(t, infobiptest.Config{Envelope: env})
		srv.FailNext(infobiptest.OpSetup, infobiptest.Fault{Status: 400})
		_, err := c.CreateApplication(ctx, infobip.Application{Name: "a"})
		pe := providerError(t, err)
		want := map[infobiptest.Envelope]string{infobiptest.Legacy: "BAD_REQUEST", infobiptest.Modern: "E400"}[env]
		if pe.HTTPStatus != 400 || pe.VendorStatus != want || pe.Kind == otp.ProviderUnavailable || pe.Op != "create" {
			t.Errorf("envelope %d: %+v", env, pe)
		}
		// A create is never repeated on a 500: Infobip may have created it.
		srv.FailNext(infobiptest.OpSetup, slices.Repeat([]infobiptest.Fault{{Status: 500}}, 3)...)
		before := srv.Calls(infobiptest.OpSetup)
		if _, err := c.CreateApplication(ctx, infobip.Application{Name: "a"}); !errors.Is(err, otp.ErrProviderUnavailable) {
			t.Errorf("create on 500: %v", err)
		}
		// A read is, and succeeds on its third attempt.
		if _, err := c.Applications(ctx); err != nil {
			t.Errorf("read after two 500s: %v", err)
		}
		if n := srv.Calls(infobiptest.OpSetup) - before; n != 4 {
			t.Errorf("%d setup requests, want 1 create + 3 reads", n)
		}
	}
}

func TestEnsureSetup(t *testing.T) {
	srv, c := setupClient(t, infobiptest.Config{})
	text := &infobip.Message{Text: "Your code is {{pin}}", PinLength: 6, SenderID: "Acme"}
	s := infobip.Setup{
		Application: infobip.Application{Name: "otp", Config: infobip.AppConfig{PinAttempts: 5, PinTimeToLive: "10m"}},
		SMS:         text, Voice: text,
		Email: &infobip.Message{EmailTemplateID: 7, PinLength: 6},
	}
	first, err := c.EnsureSetup(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if first.ApplicationID == "" || first.SMSMessageID == "" || first.SMSMessageID != first.VoiceMessageID || first.EmailMessageID == "" {
		t.Fatalf("ids %+v: want an app, one SMS/voice template, one email template", first)
	}
	// Idempotent: the same IDs, only reads.
	before := srv.Calls(infobiptest.OpSetup)
	again, err := c.EnsureSetup(ctx, s)
	if err != nil || again != first {
		t.Fatalf("second run %+v, %v; want %+v", again, err, first)
	}
	if n := srv.Calls(infobiptest.OpSetup) - before; n != 2 {
		t.Errorf("second run made %d requests, want 2 lists", n)
	}
	// Drift is corrected in place.
	s.Application.Config.PinAttempts = 4
	s.SMS = &infobip.Message{Text: "Your code is {{pin}}", PinLength: 8}
	if _, err := c.EnsureSetup(ctx, s); err == nil || !strings.Contains(err.Error(), "share a text") {
		t.Fatalf("SMS and voice templates that share a text but not settings: %v", err)
	}
	s.Voice = s.SMS
	fixed, err := c.EnsureSetup(ctx, s)
	if err != nil || fixed != first {
		t.Fatalf("after drift %+v, %v", fixed, err)
	}
	app, _ := c.Application(ctx, first.ApplicationID)
	msg, _ := c.Message(ctx, first.ApplicationID, first.SMSMessageID)
	if app.Config.PinAttempts != 4 || app.Config.AllowMultiplePinVerifications || msg.PinLength != 8 {
		t.Fatalf("app %+v, message %+v: drift not corrected", app, msg)
	}
	// Two applications of that name: refuse to guess.
	srv.AddApplication("otp", infobiptest.AppConfig{})
	if _, err := c.EnsureSetup(ctx, s); err == nil || !strings.Contains(err.Error(), "2 applications") {
		t.Fatalf("duplicate names: %v", err)
	}
}
