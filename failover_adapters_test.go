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
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// vendors are the real adapters, each against its fake vendor server:
// Vonage Verify v2 first, Infobip second.
type vendors struct {
	vonage     *vonage.V2
	vonageSrv  *vonagetest.Server
	infobip    *infobip.Client
	infoSrv    *infobiptest.Server
	infoConfig infobip.Config
}

func newVendors(t *testing.T, vonageURL string) *vendors {
	t.Helper()
	vs := &vendors{vonageSrv: vonagetest.NewServer(vonagetest.Config{Code: fixedCode}), infoSrv: infobiptest.NewServer(infobiptest.Config{})}
	t.Cleanup(vs.vonageSrv.Close)
	t.Cleanup(vs.infoSrv.Close)
	if vonageURL == "" {
		vonageURL = vs.vonageSrv.URL
	}
	client := &http.Client{Timeout: 300 * time.Millisecond}
	var err error
	vs.vonage, err = vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "test-secret", Brand: "Acme",
		BaseURL: vonageURL, HTTPClient: client})
	require.NoError(t, err)
	app := vs.infoSrv.AddApplication("app", infobiptest.AppConfig{})
	msg := vs.infoSrv.AddMessage(app, infobiptest.Message{Text: "Code {{pin}}", PinLength: 6})
	vs.infoConfig = infobip.Config{BaseURL: vs.infoSrv.URL, APIKey: "test-api-key",
		ApplicationID: app, SMSMessageID: msg, HTTPClient: client}
	vs.infobip, err = infobip.New(vs.infoConfig)
	require.NoError(t, err)
	return vs
}

// verifier sends through a Failover over providers, by default Vonage
// then Infobip.
func (vs *vendors) verifier(t *testing.T, providers ...otp.Provider) *otp.Verifier {
	if providers == nil {
		providers = []otp.Provider{vs.vonage, vs.infobip}
	}
	fo, err := otp.NewFailover(otp.FailoverConfig{}, providers...)
	require.NoError(t, err)
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { store.Close() })
	v, err := otp.NewVerifier(fo, store, otp.Config{})
	require.NoError(t, err)
	return v
}

func TestFailoverAdaptersPrimaryRefusesTheConnection(t *testing.T) {
	vs := newVendors(t, "http://"+closedAddr(t))
	v := vs.verifier(t)
	st, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	assert.Equal(t, "infobip", st.Provider)
	pin, ok := vs.infoSrv.LastCode(ukMobile)
	require.True(t, ok)
	_, err = v.Check(ctx, sessionKey, pin)
	require.NoError(t, err, "the check goes to Infobip")
}

func TestFailoverAdaptersPrimaryThrottles(t *testing.T) {
	vs := newVendors(t, "")
	vs.vonageSrv.FailNext(vonagetest.V2Start,
		vonagetest.Fault{Status: http.StatusTooManyRequests}, vonagetest.Fault{Status: http.StatusTooManyRequests},
		vonagetest.Fault{Status: http.StatusTooManyRequests}, vonagetest.Fault{Status: http.StatusTooManyRequests})
	v := vs.verifier(t)
	st, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	assert.Equal(t, "infobip", st.Provider)
	assert.Empty(t, vs.vonageSrv.Sends(), "Vonage sent nothing")
	assert.Len(t, vs.infoSrv.Sends(), 1)
}

func TestFailoverAdaptersPrimaryTimesOutAfterAccepting(t *testing.T) {
	vs := newVendors(t, "")
	// Vonage handles the start (the code goes out) but answers too late.
	vs.vonageSrv.FailNext(vonagetest.V2Start, vonagetest.Fault{Delay: time.Second})
	v := vs.verifier(t)
	_, err := v.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.Equal(t, 1, vs.vonageSrv.Calls(vonagetest.V2Start), "one start, never repeated")
	assert.Empty(t, vs.infoSrv.Sends(), "no second SMS from Infobip")
}

func TestFailoverAdaptersPrimaryHealthy(t *testing.T) {
	vs := newVendors(t, "")
	v := vs.verifier(t)
	st, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	assert.Equal(t, "vonage", st.Provider)
	_, err = v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err)
	assert.Empty(t, vs.infoSrv.Sends())
}

func TestFailoverAdaptersPrimaryRefusesTheAccount(t *testing.T) {
	vs := newVendors(t, "")
	var err error
	vs.vonage, err = vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "revoked", Brand: "Acme", BaseURL: vs.vonageSrv.URL})
	require.NoError(t, err)
	v := vs.verifier(t)
	st, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err, "bad credentials at Vonage: Infobip serves")
	assert.Equal(t, "infobip", st.Provider)
	assert.Empty(t, vs.vonageSrv.Sends())
}

func TestFailoverAdaptersInfobipRefusesTheAccount(t *testing.T) {
	vs := newVendors(t, "")
	cfg := vs.infoConfig
	cfg.APIKey = "revoked"
	revoked, err := infobip.New(cfg)
	require.NoError(t, err)
	v := vs.verifier(t, revoked, vs.vonage)
	st, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err, "a refused key at Infobip: Vonage serves")
	assert.Equal(t, "vonage", st.Provider)
	assert.Empty(t, vs.infoSrv.Sends())
	assert.Len(t, vs.vonageSrv.Sends(), 1)
}
