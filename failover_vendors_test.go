package otp_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// threeVendors is otp.Failover over the three real adapters, Twilio
// first, then Vonage, then Infobip, each against its fake.
type threeVendors struct {
	tw  *twiliotest.Server
	vg  *vonagetest.Server
	ib  *infobiptest.Server
	ibc infobip.Config
}

func newThreeVendors(t *testing.T) *threeVendors {
	tv := &threeVendors{tw: twiliotest.NewServer(twiliotest.Config{}), vg: vonagetest.NewServer(vonagetest.Config{}),
		ib: infobiptest.NewServer(infobiptest.Config{})}
	t.Cleanup(tv.tw.Close)
	t.Cleanup(tv.vg.Close)
	t.Cleanup(tv.ib.Close)
	app := tv.ib.AddApplication("app", infobiptest.AppConfig{})
	tv.ibc = infobip.Config{BaseURL: tv.ib.URL, APIKey: "test-api-key", ApplicationID: app,
		SMSMessageID: tv.ib.AddMessage(app, infobiptest.Message{Text: "Code {{pin}}", PinLength: 6})}
	return tv
}

var shortClient = &http.Client{Timeout: 300 * time.Millisecond}

func (tv *threeVendors) twilio(t *testing.T, mutate func(*twilio.Config)) *twilio.Provider {
	cfg := twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken,
		BaseURL: tv.tw.URL, HTTPClient: shortClient}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := twilio.New(cfg)
	require.NoError(t, err)
	return p
}

func (tv *threeVendors) vonage(t *testing.T, secret string) *vonage.V2 {
	p, err := vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: secret, Brand: "Acme", BaseURL: tv.vg.URL, HTTPClient: shortClient})
	require.NoError(t, err)
	return p
}

func (tv *threeVendors) infobip(t *testing.T) *infobip.Client {
	c, err := infobip.New(tv.ibc)
	require.NoError(t, err)
	return c
}

// verifier is a Verifier over a Failover of providers.
func (tv *threeVendors) verifier(t *testing.T, providers ...otp.Provider) *otp.Verifier {
	fo, err := otp.NewFailover(otp.FailoverConfig{}, providers...)
	require.NoError(t, err)
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { store.Close() })
	v, err := otp.NewVerifier(fo, store, otp.Config{})
	require.NoError(t, err)
	return v
}

// code is the code the serving fake sent to to.
func (tv *threeVendors) code(t *testing.T, provider, to string) string {
	last := map[string]func(string) (string, bool){"twilio": tv.tw.LastCode, "vonage": tv.vg.LastCode, "infobip": tv.ib.LastCode}[provider]
	require.NotNil(t, last, provider)
	code, ok := last(to)
	require.True(t, ok, "%s sent nothing to %s", provider, to)
	return code
}

// TestFailoverThreeVendors: Twilio first falls over to Vonage when it
// refuses the connection, throttles or refuses the account, and to
// Infobip when Vonage refuses too; the check goes to whoever sent.
func TestFailoverThreeVendors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, tv *threeVendors) []otp.Provider
		served string
	}{
		{"healthy", func(t *testing.T, tv *threeVendors) []otp.Provider {
			return []otp.Provider{tv.twilio(t, nil), tv.vonage(t, "test-secret"), tv.infobip(t)}
		}, "twilio"},
		{"twilio refuses the connection", func(t *testing.T, tv *threeVendors) []otp.Provider {
			tw := tv.twilio(t, func(c *twilio.Config) { c.BaseURL = "http://" + closedAddr(t) })
			return []otp.Provider{tw, tv.vonage(t, "test-secret"), tv.infobip(t)}
		}, "vonage"},
		{"twilio throttles", func(t *testing.T, tv *threeVendors) []otp.Provider {
			tv.tw.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: http.StatusTooManyRequests, Code: 20429})
			return []otp.Provider{tv.twilio(t, nil), tv.vonage(t, "test-secret"), tv.infobip(t)}
		}, "vonage"},
		{"twilio refuses the account", func(t *testing.T, tv *threeVendors) []otp.Provider {
			tw := tv.twilio(t, func(c *twilio.Config) { c.AuthToken = "revoked" })
			return []otp.Provider{tw, tv.vonage(t, "test-secret"), tv.infobip(t)}
		}, "vonage"},
		{"twilio and vonage refuse the account", func(t *testing.T, tv *threeVendors) []otp.Provider {
			tw := tv.twilio(t, func(c *twilio.Config) { c.AuthToken = "revoked" })
			return []otp.Provider{tw, tv.vonage(t, "revoked"), tv.infobip(t)}
		}, "infobip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tv := newThreeVendors(t)
			v := tv.verifier(t, tc.setup(t, tv)...)
			st, err := v.Start(ctx, sessionKey, usMobile)
			require.NoError(t, err)
			assert.Equal(t, tc.served, st.Provider)
			sent := map[string]int{"twilio": len(tv.tw.Sends()), "vonage": len(tv.vg.Sends()), "infobip": len(tv.ib.Sends())}
			assert.Equal(t, map[string]int{"twilio": 0, "vonage": 0, "infobip": 0, tc.served: 1}, sent, "one code, from one vendor")
			_, err = v.Check(ctx, sessionKey, tv.code(t, tc.served, usMobile))
			require.NoError(t, err, "the check goes to %s", tc.served)
		})
	}
}

// TestFailoverThreeVendorsUnknownOutcome: when Twilio may have sent (a
// 500, a timeout after the request was written), nothing falls over: the
// person never gets two codes.
func TestFailoverThreeVendorsUnknownOutcome(t *testing.T) {
	for name, fault := range map[string]twiliotest.Fault{
		"500":       {Status: http.StatusInternalServerError},
		"timed out": {Delay: time.Second},
		"dropped":   {Drop: true},
	} {
		t.Run(name, func(t *testing.T) {
			tv := newThreeVendors(t)
			tv.tw.FailNext(twiliotest.OpStart, fault)
			v := tv.verifier(t, tv.twilio(t, nil), tv.vonage(t, "test-secret"), tv.infobip(t))
			_, err := v.Start(ctx, sessionKey, usMobile)
			require.ErrorIs(t, err, otp.ErrProviderUnavailable)
			assert.Equal(t, 1, tv.tw.Calls(twiliotest.OpStart), "one start, never repeated")
			assert.Empty(t, tv.vg.Sends(), "no second code from Vonage")
			assert.Empty(t, tv.ib.Sends(), "no second code from Infobip")
		})
	}
}

// TestFailoverThreeVendorsPersonErrors: a refusal of the destination
// (Fraud Guard, max sends) does not fall over either.
func TestFailoverThreeVendorsPersonErrors(t *testing.T) {
	for name, code := range map[string]int{"fraud guard": 60410, "max sends": 60203, "landline": 60205} {
		t.Run(name, func(t *testing.T) {
			tv := newThreeVendors(t)
			tv.tw.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: map[int]int{60410: 403, 60203: 429, 60205: 403}[code], Code: code})
			v := tv.verifier(t, tv.twilio(t, nil), tv.vonage(t, "test-secret"), tv.infobip(t))
			_, err := v.Start(ctx, sessionKey, usMobile)
			require.ErrorIs(t, err, otp.ErrProviderRejected)
			assert.Empty(t, tv.vg.Sends())
			assert.Empty(t, tv.ib.Sends())
		})
	}
}
