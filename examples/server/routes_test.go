package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/twilio/twiliotest"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// fakes are the three vendors' fake servers and the environment that
// points the demo at them.
type fakes struct {
	tw  *twiliotest.Server
	vg  *vonagetest.Server
	ib  *infobiptest.Server
	env map[string]string
}

func newFakes(t *testing.T, routes string) *fakes {
	f := &fakes{tw: twiliotest.NewServer(twiliotest.Config{}), vg: vonagetest.NewServer(vonagetest.Config{}),
		ib: infobiptest.NewServer(infobiptest.Config{APIKey: "ib-key"})}
	t.Cleanup(f.tw.Close)
	t.Cleanup(f.vg.Close)
	t.Cleanup(f.ib.Close)
	app := f.ib.AddApplication("demo", infobiptest.AppConfig{})
	msg := f.ib.AddMessage(app, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})
	f.env = map[string]string{
		"OTP_ROUTES":         routes,
		"TWILIO_SERVICE_SID": twiliotest.ServiceSID, "TWILIO_API_KEY_SID": twiliotest.APIKeySID,
		"TWILIO_API_KEY_SECRET": twiliotest.APIKeySecret, "TWILIO_BASE_URL": f.tw.URL,
		"VONAGE_API_KEY": "test-key", "VONAGE_API_SECRET": "test-secret", "VONAGE_BRAND": "Demo", "VONAGE_BASE_URL": f.vg.URL,
		"INFOBIP_BASE_URL": f.ib.URL, "INFOBIP_API_KEY": "ib-key", "INFOBIP_APPLICATION_ID": app, "INFOBIP_SMS_MESSAGE_ID": msg,
	}
	return f
}

// code is the code the named fake last sent to to.
func (f *fakes) code(t *testing.T, provider, to string) string {
	last := map[string]func(string) (string, bool){"twilio": f.tw.LastCode, "vonage": f.vg.LastCode, "infobip": f.ib.LastCode}[provider]
	require.NotNil(t, last, "no fake for %q", provider)
	code, ok := last(to)
	require.True(t, ok, "%s sent nothing to %s", provider, to)
	return code
}

const demoRoutes = "IN=infobip; US,CA=twilio,vonage; +44=vonage; *=vonage,infobip"

// TestRoutesFlowPerRoute runs a Start and a Check per route of the table
// against the three fakes, and the failover behind the North American
// route.
func TestRoutesFlowPerRoute(t *testing.T) {
	f := newFakes(t, demoRoutes)
	cfg, err := readConfig(envOf(f.env))
	require.NoError(t, err)
	p, err := pickProvider(cfg, envOf(f.env), quiet)
	require.NoError(t, err)
	defer p.(interface{ Close() error }).Close()
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(p, store, otp.Config{})
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct{ to, provider string }{
		{"+919876543210", "infobip"}, // IN
		{"+12015550123", "twilio"},   // US
		{"+16135550123", "twilio"},   // CA
		{"+447400123456", "vonage"},  // +44
		{"+33612345678", "vonage"},   // the default
		{"+18762101234", "vonage"},   // Jamaica: +1, but neither US nor CA
		{"+4915123456789", "vonage"}, // the default again
	} {
		st, err := v.Start(ctx, tc.to, tc.to)
		require.NoError(t, err, tc.to)
		assert.Equal(t, tc.provider, st.Provider, tc.to)
		_, err = v.Check(ctx, tc.to, f.code(t, tc.provider, tc.to))
		require.NoError(t, err, tc.to)
	}
	// Twilio throttles: the US route falls over to Vonage.
	f.tw.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: http.StatusTooManyRequests, Code: 20429})
	st, err := v.Start(ctx, "again", "+12015550124")
	require.NoError(t, err)
	assert.Equal(t, "vonage", st.Provider)
	_, err = v.Check(ctx, "again", f.code(t, "vonage", "+12015550124"))
	require.NoError(t, err)

	// The demo as a whole starts with the table and closes cleanly.
	a, err := newApp(cfg, envOf(f.env), quiet)
	require.NoError(t, err)
	require.NoError(t, a.Close())
}

func TestRoutesErrorsSayWhatIsWrong(t *testing.T) {
	f := newFakes(t, "")
	for routes, want := range map[string][]string{
		"US=twilio":                    {"needs a default route"},
		"*=vonage; *=infobip":          {"more than one default"},
		"US:twilio; *=vonage":          {`"US:twilio"`, "destinations=providers"},
		"US=twillio; *=vonage":         {`provider "twillio" is unknown`},
		"=vonage; *=vonage":            {"names no destination"},
		"US=; *=vonage":                {`"US=" names no provider`},
		"*,US=vonage":                  {"default route * names no destinations"},
		"XX=vonage; *=vonage":          {`region "XX" is unknown`},
		"+999=vonage; *=vonage":        {`calling code "999" is unknown`},
		"US=vonage; us=infobip; *=dev": {`region "US" is in two routes`},
		"US=twilio,twilio; *=vonage":   {`two providers are named "twilio"`},
		"US=twillio; XX:y; *=a; *=b":   {"twillio", "XX:y", "more than one default"},
	} {
		env := map[string]string{}
		for k, v := range f.env {
			env[k] = v
		}
		env["OTP_ROUTES"] = routes
		_, err := pickProvider(config{provider: "dev"}, envOf(env), quiet)
		if assert.Error(t, err, routes) {
			for _, w := range want {
				assert.Contains(t, err.Error(), w, routes)
			}
		}
	}
	// A provider's missing variables are named, never a value shown.
	env := map[string]string{"OTP_ROUTES": "US=twilio; *=dev", "TWILIO_SERVICE_SID": twiliotest.ServiceSID, "TWILIO_AUTH_TOKEN": "tok-secret"}
	_, err := pickProvider(config{provider: "dev"}, envOf(env), quiet)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TWILIO_API_KEY_SID")
	assert.False(t, strings.Contains(err.Error(), "tok-secret"))
	// Without OTP_ROUTES, OTP_PROVIDER decides as before.
	p, err := pickProvider(config{provider: "dev"}, envOf(nil), quiet)
	require.NoError(t, err)
	assert.Equal(t, "dev", p.Name())
}
