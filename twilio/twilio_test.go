package twilio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

var ctx = context.Background()

func TestNewValidates(t *testing.T) {
	good := twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID, AuthToken: "tok"}
	for name, tc := range map[string]struct {
		mutate func(*twilio.Config)
		want   string
	}{
		"no service":          {func(c *twilio.Config) { c.ServiceSID = "" }, "ServiceSID"},
		"account as service":  {func(c *twilio.Config) { c.ServiceSID = twiliotest.AccountSID }, "Account SID"},
		"no auth":             {func(c *twilio.Config) { c.AccountSID, c.AuthToken = "", "" }, "needs AccountSID"},
		"both auths":          {func(c *twilio.Config) { c.APIKeySID, c.APIKeySecret = twiliotest.APIKeySID, "s" }, "not both"},
		"bad account":         {func(c *twilio.Config) { c.AccountSID = "ACnope" }, "AccountSID"},
		"token missing":       {func(c *twilio.Config) { c.AuthToken = "" }, "AuthToken"},
		"bad key":             {func(c *twilio.Config) { c.AccountSID, c.AuthToken, c.APIKeySID, c.APIKeySecret = "", "", "SKnope", "s" }, "APIKeySID"},
		"line break":          {func(c *twilio.Config) { c.AuthToken = "a\nb" }, "line break"},
		"channel":             {func(c *twilio.Config) { c.Channels = []otp.Channel{"fax"} }, "Channels"},
		"locale":              {func(c *twilio.Config) { c.Locale = "english please" }, "Locale"},
		"friendly name":       {func(c *twilio.Config) { c.CustomFriendlyName = strings.Repeat("a", 31) }, "CustomFriendlyName"},
		"app hash":            {func(c *twilio.Config) { c.AppHash = "short" }, "AppHash"},
		"template":            {func(c *twilio.Config) { c.TemplateSID = "HJ1" }, "TemplateSID"},
		"risk check":          {func(c *twilio.Config) { c.RiskCheck = "off" }, "RiskCheck"},
		"custom code":         {func(c *twilio.Config) { c.CustomCode = "12" }, "CustomCode"},
		"rate limit name":     {func(c *twilio.Config) { c.ClientRateLimit = "a b" }, "ClientRateLimit"},
		"base url":            {func(c *twilio.Config) { c.BaseURL = "ftp://x" }, "BaseURL"},
		"base url with creds": {func(c *twilio.Config) { c.BaseURL = "https://u:p@x" }, "BaseURL"},
		"plain http":          {func(c *twilio.Config) { c.BaseURL = "http://verify.twilio.com" }, "BaseURL"},
		"retry":               {func(c *twilio.Config) { c.Retry.MaxRetries = 11 }, "MaxRetries"},
	} {
		cfg := good
		tc.mutate(&cfg)
		_, err := twilio.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "twilio: ") {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok") {
			t.Errorf("%s: the error shows the token", name)
		}
	}
	p, err := twilio.New(good)
	if err != nil || p.Name() != "twilio" || !p.Supports(otp.SMS) || !p.Supports(otp.Voice) || p.Supports(otp.WhatsApp) || p.Supports(otp.Email) {
		t.Fatalf("defaults: %v", err)
	}
}

// TestFlowBothIdentities: start and check with either credential pair.
func TestFlowBothIdentities(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	for _, key := range []bool{false, true} {
		p := f.provider(t, func(c *twilio.Config) {
			if key {
				c.AccountSID, c.AuthToken, c.APIKeySID, c.APIKeySecret = "", "", twiliotest.APIKeySID, twiliotest.APIKeySecret
			}
		})
		to := fmt.Sprintf("+1415555010%d", map[bool]int{false: 1, true: 2}[key])
		ref, err := p.Send(ctx, sms(to))
		if err != nil || ref.Provider != "twilio" || !strings.HasPrefix(ref.ID, "VE") {
			t.Fatalf("%+v %v", ref, err)
		}
		code, _ := f.srv.LastCode(to)
		if err := p.Check(ctx, ref, code); err != nil {
			t.Fatal(err)
		}
		sends := f.srv.Sends()
		if want := map[bool]string{false: "account", true: "api key"}[key]; sends[len(sends)-1].Identity != want {
			t.Fatalf("identity %q, want %q", sends[len(sends)-1].Identity, want)
		}
		// A second check of the approved verification is never a success.
		mustIs(t, p.Check(ctx, ref, code), otp.ErrNotFound, otp.ErrProviderRejected)
	}
}

func TestWrongCodeThenLimits(t *testing.T) {
	f := newFixture(t, twiliotest.Config{Code: "123456"})
	p := f.provider(t, nil)
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		err := p.Check(ctx, ref, "000000")
		mustIs(t, err, otp.ErrWrongCode, otp.ErrProviderRejected)
		if pe := providerError(t, err); pe.VendorStatus != "pending" || !pe.NotSent || pe.Op != otp.OpCheck {
			t.Fatalf("%+v", pe)
		}
		var wce *otp.WrongCodeError
		if errorsAs(err, &wce) {
			t.Fatal("the adapter counts no attempts: the Verifier does")
		}
	}
	err = p.Check(ctx, ref, "123456")
	mustIs(t, err, otp.ErrTooManyAttempts)
	if pe := providerError(t, err); pe.VendorStatus != "60202" || pe.HTTPStatus != 429 {
		t.Fatalf("%+v", pe)
	}
	if n := f.srv.Calls(twiliotest.OpCheck); n != 6 {
		t.Fatalf("%d checks: the 429/60202 was retried", n)
	}
	mustIs(t, p.Check(ctx, ref, "123456"), otp.ErrNotFound)
}

func TestExpiredIsNotFound(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	code, _ := f.srv.LastCode(testPhone)
	f.clock.Advance(10 * time.Minute)
	mustIs(t, p.Check(ctx, ref, code), otp.ErrNotFound)
}

func TestCancel(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.srv.State(ref.ID); st != "canceled" {
		t.Fatal(st)
	}
	mustIs(t, p.Cancel(ctx, ref), otp.ErrNotFound)
	code, _ := f.srv.LastCode(testPhone)
	mustIs(t, p.Check(ctx, ref, code), otp.ErrNotFound)
	// A Ref that is no SID reaches nothing.
	for _, id := range []string{"", "..", "VE/../x", "abc"} {
		bad := otp.Ref{Provider: "twilio", ID: id}
		mustIs(t, p.Cancel(ctx, bad), otp.ErrNotFound)
		mustIs(t, p.Check(ctx, bad, "123456"), otp.ErrNotFound)
		mustIs(t, p.Resend(ctx, bad), otp.ErrNotFound)
	}
	if n := f.srv.Calls(twiliotest.OpUpdate) + f.srv.Calls(twiliotest.OpCheck) + f.srv.Calls(twiliotest.OpFetch); n != 3 {
		t.Fatalf("%d calls; malformed IDs must not reach Twilio", n)
	}
}

func TestLocalRefusals(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	for name, req := range map[string]otp.SendRequest{
		"whatsapp off": {To: testPhone, Channel: otp.WhatsApp},
		"not e164":     {To: "4155550100", Channel: otp.SMS},
		"email":        {To: "not-an-address", Channel: otp.Email},
	} {
		_, err := p.Send(ctx, req)
		if pe := providerError(t, err); !pe.NotSent || pe.Op != otp.OpStart {
			t.Errorf("%s: %+v", name, pe)
		}
	}
	_, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.WhatsApp})
	mustIs(t, err, otp.ErrUnsupportedChannel)
	_, err = p.Send(ctx, otp.SendRequest{To: "4155550100", Channel: otp.SMS})
	mustIs(t, err, otp.ErrInvalidPhone)
	mustIs(t, p.Check(ctx, otp.Ref{ID: "VE0123456789abcdef0123456789abcdef"}, "12"), otp.ErrInvalidCode)
	if f.srv.Calls(twiliotest.OpStart)+f.srv.Calls(twiliotest.OpCheck) != 0 {
		t.Fatal("a refused call reached Twilio")
	}
}

// TestChannelsAndOptions: each channel's name at Twilio and which options
// go with it; the send request's locale wins; PerSend changes one send.
func TestChannelsAndOptions(t *testing.T) {
	f := newFixture(t, twiliotest.Config{CustomFriendlyName: true, CustomCodes: true})
	p := f.provider(t, func(c *twilio.Config) {
		c.Channels = []otp.Channel{otp.SMS, otp.Voice, otp.WhatsApp, otp.Email}
		c.Locale = "pt_br"
		c.CustomFriendlyName = "Acme"
		c.AppHash = "FA+9qCX9VSu"
		c.TemplateSID = "HJ0123456789abcdef0123456789abcdef"
		c.TemplateSubstitutions = map[string]string{"app": "Acme"}
		c.RiskCheck = twilio.RiskCheckDisable
		c.PerSend = func(req otp.SendRequest, o *twilio.SendOptions) {
			if strings.HasPrefix(req.To, "+91") {
				o.TemplateSID = "HJffffffffffffffffffffffffffffffff"
				o.TemplateSubstitutions["region"] = "IN"
			}
		}
	})
	for _, tc := range []struct {
		req             otp.SendRequest
		channel, locale string
		smsOnly         bool
	}{
		{otp.SendRequest{To: testPhone, Channel: otp.SMS}, "sms", "pt-BR", true},
		{otp.SendRequest{To: "+14155550101", Channel: otp.Voice, Locale: "en-gb"}, "call", "en-GB", false},
		{otp.SendRequest{To: "+14155550102", Channel: otp.WhatsApp}, "whatsapp", "pt-BR", false},
		{otp.SendRequest{To: "jane@example.com", Channel: otp.Email}, "email", "pt-BR", false},
	} {
		if _, err := p.Send(ctx, tc.req); err != nil {
			t.Fatalf("%s: %v", tc.channel, err)
		}
		got := f.srv.Sends()[len(f.srv.Sends())-1].Params
		if got.Get("Channel") != tc.channel || got.Get("Locale") != tc.locale || got.Get("CustomFriendlyName") != "Acme" ||
			(got.Get("AppHash") != "") != tc.smsOnly || (got.Get("TemplateSid") != "") != tc.smsOnly ||
			(got.Get("RiskCheck") == "disable") != tc.smsOnly || (got.Get("TemplateCustomSubstitutions") == `{"app":"Acme"}`) != tc.smsOnly {
			t.Errorf("%s: %v", tc.channel, got)
		}
		if got.Has("RateLimits") || got.Has("DeviceIp") || got.Has("CustomCode") {
			t.Errorf("%s: sent what was not configured: %v", tc.channel, got)
		}
	}
	if _, err := p.Send(ctx, sms("+919876543210")); err != nil {
		t.Fatal(err)
	}
	got := f.srv.Sends()[len(f.srv.Sends())-1].Params
	if got.Get("TemplateSid") != "HJffffffffffffffffffffffffffffffff" || got.Get("TemplateCustomSubstitutions") != `{"app":"Acme","region":"IN"}` {
		t.Fatalf("PerSend: %v", got)
	}
	// PerSend changed a copy: the next send has the config's options.
	_, _ = p.Send(ctx, sms("+14155550103"))
	if got := f.srv.Sends()[len(f.srv.Sends())-1].Params; got.Get("TemplateCustomSubstitutions") != `{"app":"Acme"}` {
		t.Fatalf("PerSend leaked into the config: %v", got)
	}
}

// TestCustomCode: a per-send custom code reaches Twilio and is the code;
// one of the wrong length is refused before the call.
func TestCustomCode(t *testing.T) {
	f := newFixture(t, twiliotest.Config{CustomCodes: true})
	code := "246810"
	p := f.provider(t, func(c *twilio.Config) {
		c.PerSend = func(req otp.SendRequest, o *twilio.SendOptions) { o.CustomCode = code }
	})
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx, ref, "246810"); err != nil {
		t.Fatal(err)
	}
	code = "1234"
	_, err = p.Send(ctx, sms("+14155550101"))
	if pe := providerError(t, err); !pe.NotSent || f.srv.Calls(twiliotest.OpStart) != 1 {
		t.Fatalf("%v", err)
	}
	code = "12"
	_, err = p.Send(ctx, sms("+14155550101"))
	if err == nil || !strings.Contains(err.Error(), "PerSend") {
		t.Fatalf("an invalid PerSend result: %v", err)
	}
	// Without the feature the Service refuses the account.
	f2 := newFixture(t, twiliotest.Config{})
	p2 := f2.provider(t, func(c *twilio.Config) {
		c.PerSend = func(req otp.SendRequest, o *twilio.SendOptions) { o.CustomCode = "246810" }
	})
	_, err = p2.Send(ctx, sms(testPhone))
	mustIs(t, err, otp.ErrProviderAccount)
}

// TestClientIDForRateLimitsAndDeviceIP: the caller's client ID goes into
// RateLimits under the configured name, and into DeviceIp when it is an IP
// and DeviceIP is set; nothing without configuration or without a client.
func TestClientIDForRateLimitsAndDeviceIP(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	plain := f.provider(t, nil)
	both := f.provider(t, func(c *twilio.Config) { c.ClientRateLimit, c.DeviceIP = "end_user_ip_address", true })
	last := func() map[string]string {
		p := f.srv.Sends()[len(f.srv.Sends())-1].Params
		return map[string]string{"RateLimits": p.Get("RateLimits"), "DeviceIp": p.Get("DeviceIp")}
	}
	for i, tc := range []struct {
		p          *twilio.Provider
		client     string
		rate, ipv4 string
	}{
		{plain, "203.0.113.7", "", ""},
		{both, "", "", ""},
		{both, "203.0.113.7", `{"end_user_ip_address":"203.0.113.7"}`, "203.0.113.7"},
		{both, "2001:db8::1", `{"end_user_ip_address":"2001:db8::1"}`, "2001:db8::1"},
		{both, "account-42", `{"end_user_ip_address":"account-42"}`, ""},
	} {
		req := sms(fmt.Sprintf("+1415555011%d", i))
		req.Client = tc.client
		if _, err := tc.p.Send(ctx, req); err != nil {
			t.Fatal(err)
		}
		if got := last(); got["RateLimits"] != tc.rate || got["DeviceIp"] != tc.ipv4 {
			t.Errorf("%d %q: %v", i, tc.client, got)
		}
	}
	req := sms("+14155550199")
	req.Client = "bad\nid"
	_, err := both.Send(ctx, req)
	if pe := providerError(t, err); !pe.NotSent || strings.Contains(err.Error(), "bad") {
		t.Fatalf("%v", err)
	}
}

// TestVerifierPassesTheClient: through otp.Verifier, WithClient reaches
// RateLimits.
func TestVerifierPassesTheClient(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, func(c *twilio.Config) { c.ClientRateLimit = "end_user_ip_address" })
	v := newVerifier(t, f, p)
	if _, err := v.Start(ctx, "session-1", testPhone, otp.WithClient("198.51.100.4")); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Sends()[0].Params.Get("RateLimits"); got != `{"end_user_ip_address":"198.51.100.4"}` {
		t.Fatal(got)
	}
}

// TestSecretsNeverPrinted prints configs, providers and handlers with
// every common verb, and errors of refused credentials, and looks for the
// secrets and the number.
func TestSecretsNeverPrinted(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	cfg := f.config()
	cfg.AuthToken = "wrong-token-0123456789"
	p, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := f.config()
	kcfg.AccountSID, kcfg.AuthToken, kcfg.APIKeySID, kcfg.APIKeySecret = "", "", twiliotest.APIKeySID, "key-secret-0123456789"
	wcfg := twilio.WebhookConfig{AuthToken: "hook-token-0123456789", PublicURL: "https://hooks.example.com", OnEvent: func(otp.Event) {}}
	wh, err := twilio.NewWebhookHandler(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{cfg, &cfg, p, kcfg, wcfg, wh} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{"wrong-token", "key-secret", "hook-token"} {
				if strings.Contains(out, secret) {
					t.Fatalf("%s of %T shows a secret: %s", verb, v, out)
				}
			}
		}
	}
	if out := fmt.Sprint(cfg); !strings.Contains(out, twiliotest.ServiceSID) || !strings.Contains(out, "[redacted]") {
		t.Fatalf("config print lost its useful part: %s", out)
	}
	_, err = p.Send(ctx, sms(testPhone))
	mustIs(t, err, otp.ErrProviderAccount)
	f.srv.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: 400, Body: `{"code":60200,"message":"Invalid parameter ` + "`To`" + `: +14155550100","status":400}`})
	good := f.provider(t, nil)
	_, err2 := good.Send(ctx, sms(testPhone))
	mustIs(t, err2, otp.ErrInvalidPhone)
	for _, e := range []error{err, err2} {
		if msg := fmt.Sprintf("%v %+v", e, e); strings.Contains(msg, "wrong-token") || strings.Contains(msg, testDigits) {
			t.Fatalf("error leaks: %s", msg)
		}
	}
}
