package infobip_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// TestPlaceholdersAndIndiaDLT: Config.Placeholders go with every send and
// resend; PerSend picks, for Indian numbers, the template registered under
// India's DLT rules and its sender, and adds a placeholder.
func TestPlaceholdersAndIndiaDLT(t *testing.T) {
	var dltID string
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	dltID = e.srv.AddMessage(e.ids.ApplicationID, infobiptest.Message{Text: "{{pin}} is your Acme code", PinLength: 6,
		IndiaDLT: &infobiptest.IndiaDLT{PrincipalEntityID: "1101440230000012345", ContentTemplateID: "1107160000000054321"}})
	c, err := infobip.New(infobip.Config{BaseURL: e.srv.URL, APIKey: apiKey, ApplicationID: e.ids.ApplicationID,
		SMSMessageID: e.ids.SMSMessageID, Placeholders: map[string]string{"brand": "Acme"},
		PerSend: func(req otp.SendRequest, o *infobip.SendOptions) {
			if req.Region == "IN" {
				o.MessageID, o.From = dltID, "ACMEIN"
				o.Placeholders["country"] = "India"
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, err := c.Send(ctx, otp.SendRequest{To: "+919876543210", Channel: otp.SMS, CodeLength: 6, Region: "IN"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS, CodeLength: 6, Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Resend(ctx, in); err != nil {
		t.Fatal(err)
	}
	sends := e.srv.Sends()
	indian, british, resent := sends[0], sends[1], sends[2]
	if indian.MessageID != dltID || indian.From != "ACMEIN" || indian.IndiaDLT == nil || indian.IndiaDLT.PrincipalEntityID != "1101440230000012345" ||
		!maps.Equal(indian.Placeholders, map[string]string{"brand": "Acme", "country": "India"}) {
		t.Fatalf("India: %+v", indian)
	}
	if british.MessageID != e.ids.SMSMessageID || british.IndiaDLT != nil || !maps.Equal(british.Placeholders, map[string]string{"brand": "Acme"}) {
		t.Fatalf("UK: %+v", british)
	}
	if !resent.Resend || !maps.Equal(resent.Placeholders, map[string]string{"brand": "Acme"}) {
		t.Fatalf("resend: %+v", resent)
	}
}

func TestPlaceholdersValidated(t *testing.T) {
	for _, bad := range []map[string]string{{"pin": "1"}, {"{{name}}": "x"}, {"": "x"}, {"a b": "x"}} {
		if _, err := infobip.New(infobip.Config{APIKey: apiKey, Placeholders: bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	e := newEnv(t, defaultApp, infobiptest.Config{}, func(c *infobip.Config) {
		c.PerSend = func(req otp.SendRequest, o *infobip.SendOptions) { o.Placeholders = map[string]string{"pin": "0000"} }
	})
	_, err := e.client.Send(context.Background(), otp.SendRequest{To: phone, Channel: otp.SMS})
	var pe *otp.ProviderError
	if !errors.As(err, &pe) || !pe.NotSent || e.srv.Calls(infobiptest.OpSend) != 0 {
		t.Fatalf("%v", err)
	}
}

// TestTemplateIndiaDLT: a template's DLT registration round-trips through
// create and read, EnsureSetup updates a template that lacks it, and an
// incomplete one is refused before any call.
func TestTemplateIndiaDLT(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	ctx := context.Background()
	dlt := infobip.IndiaDLT{PrincipalEntityID: "1101440230000012345", ContentTemplateID: "1107160000000054321", TeleMarketerID: "1702000000000000001"}
	m, err := e.client.CreateMessage(ctx, e.ids.ApplicationID, infobip.Message{Text: "{{pin}} is your code", PinLength: 6, IndiaDLT: dlt})
	if err != nil || m.IndiaDLT != dlt {
		t.Fatalf("%+v %v", m, err)
	}
	got, err := e.client.Message(ctx, e.ids.ApplicationID, m.ID)
	if err != nil || got.IndiaDLT != dlt {
		t.Fatalf("read back %+v %v", got, err)
	}
	setup := infobip.Setup{Application: infobip.Application{Name: "otp-test", Config: infobip.AppConfig{PinAttempts: 3, VerifyPinLimit: "1000/1s"}},
		SMS: &infobip.Message{Text: "Your code is {{pin}}", PinLength: 6, IndiaDLT: dlt}}
	ids, err := e.client.EnsureSetup(ctx, setup)
	if err != nil || ids.SMSMessageID != e.ids.SMSMessageID {
		t.Fatalf("%+v %v", ids, err)
	}
	if got, _ := e.client.Message(ctx, e.ids.ApplicationID, ids.SMSMessageID); got.IndiaDLT != dlt {
		t.Fatalf("EnsureSetup did not add the registration: %+v", got)
	}
	for name, bad := range map[string]infobip.Message{
		"no entity":     {Text: "{{pin}}", IndiaDLT: infobip.IndiaDLT{ContentTemplateID: "1"}},
		"too long":      {Text: "{{pin}}", IndiaDLT: infobip.IndiaDLT{PrincipalEntityID: strings.Repeat("1", 31)}},
		"email with it": {EmailTemplateID: 7, IndiaDLT: infobip.IndiaDLT{PrincipalEntityID: "1"}},
	} {
		if _, err := e.client.CreateMessage(ctx, e.ids.ApplicationID, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
