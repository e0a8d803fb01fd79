package otp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

const (
	inMobile      = "+919876543210"
	usMobile      = "+12015550123"
	caMobile      = "+16135550123"
	jamaicaMobile = "+18762101234"
)

func fake(name string, channels ...otp.Channel) *otptest.Provider {
	return otptest.NewProvider(otptest.ProviderConfig{Name: name, Code: fixedCode, Channels: channels})
}

func TestRouterValidation(t *testing.T) {
	a, b := fake("a"), fake("b")
	otherA := fake("a")
	fo, err := otp.NewFailover(otp.FailoverConfig{}, a, b)
	require.NoError(t, err)
	inner, err := otp.NewRouter(a)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		def    otp.Provider
		routes []otp.Route
		want   string
	}{
		{"no default", nil, nil, "default provider"},
		{"nil route provider", a, []otp.Route{{Regions: []string{"US"}}}, "route 0 has no provider"},
		{"nothing named", a, []otp.Route{{Provider: b}}, "route 0 names no region and no calling code"},
		{"unknown region", a, []otp.Route{{Regions: []string{"XX"}, Provider: b}}, `region "XX" is unknown`},
		{"lower case region", a, []otp.Route{{Regions: []string{"us"}, Provider: b}}, `region "us" is unknown`},
		{"unknown calling code", a, []otp.Route{{CallingCodes: []string{"999"}, Provider: b}}, `calling code "999" is unknown`},
		{"calling code with +", a, []otp.Route{{CallingCodes: []string{"+44"}, Provider: b}}, `calling code "+44" is unknown`},
		{"calling code 0", a, []otp.Route{{CallingCodes: []string{"044"}, Provider: b}}, `calling code "044" is unknown`},
		{"region twice", a, []otp.Route{{Regions: []string{"US"}, Provider: b}, {Regions: []string{"CA", "US"}, Provider: b}}, `region "US" is in two routes`},
		{"code twice", a, []otp.Route{{CallingCodes: []string{"1"}, Provider: b}, {CallingCodes: []string{"1"}, Provider: a}}, `calling code "1" is in two routes`},
		{"two providers named a", a, []otp.Route{{Regions: []string{"US"}, Provider: otherA}}, `two providers are named "a"`},
		{"a failover's provider named as another", otherA, []otp.Route{{Regions: []string{"US"}, Provider: fo}}, `two providers are named "a"`},
		{"nested router", a, []otp.Route{{Regions: []string{"US"}, Provider: inner}}, "routers do not nest"},
		{"router as default", inner, nil, "routers do not nest"},
	} {
		_, err := otp.NewRouter(tc.def, tc.routes...)
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.want, tc.name)
			assert.True(t, strings.HasPrefix(err.Error(), "otp: "), tc.name)
		}
	}
	// One provider in several routes, also inside a Failover, is fine.
	_, err = otp.NewRouter(fo, otp.Route{Regions: []string{"IN"}, Provider: b}, otp.Route{CallingCodes: []string{"1", "882"}, Provider: a})
	require.NoError(t, err)
	_, err = otp.NewFailover(otp.FailoverConfig{}, a, inner)
	require.ErrorContains(t, err, "Router")
}

// TestRouterRoutes: region first, then calling code, then the default;
// email takes the default; with or without the Verifier's Region.
func TestRouterRoutes(t *testing.T) {
	in, us, nanp, def := fake("in"), fake("us"), fake("nanp"), fake("def")
	r, err := otp.NewRouter(def,
		otp.Route{Regions: []string{"IN"}, Provider: in},
		otp.Route{Regions: []string{"US", "CA"}, Provider: us},
		otp.Route{CallingCodes: []string{"1"}, Provider: nanp})
	require.NoError(t, err)
	assert.Equal(t, "router", r.Name())
	for _, tc := range []struct {
		to, region, want string
		channel          otp.Channel
	}{
		{inMobile, "IN", "in", otp.SMS},
		{usMobile, "US", "us", otp.SMS},
		{caMobile, "CA", "us", otp.Voice},
		{jamaicaMobile, "JM", "nanp", otp.SMS},
		{ukMobile, "GB", "def", otp.SMS},
		{"jane@example.com", "", "def", otp.Email},
	} {
		for _, region := range []string{tc.region, ""} {
			ref, err := r.Send(ctx, otp.SendRequest{To: tc.to, Channel: tc.channel, CodeLength: 6, Region: region})
			require.NoError(t, err, tc.to)
			assert.Equal(t, tc.want, ref.Provider, "%s (region %q)", tc.to, region)
			require.NoError(t, r.Check(ctx, ref, fixedCode), tc.to)
		}
	}
	_, err = r.Send(ctx, otp.SendRequest{To: "447400123456", Channel: otp.SMS})
	require.ErrorIs(t, err, otp.ErrInvalidPhone)
	require.ErrorIs(t, r.Check(ctx, otp.Ref{Provider: "nobody", ID: "x"}, fixedCode), otp.ErrNotFound)
	assert.Equal(t, []int{4, 4}, []int{def.Calls(otp.OpStart), def.Calls(otp.OpCheck)}, "UK and email, each with and without a Region")
}

// TestRouterThroughTheVerifier: checks, resends and cancels go back to the
// provider that sent, and every event names it.
func TestRouterThroughTheVerifier(t *testing.T) {
	in, def := fake("in", otp.SMS), fake("def")
	r, err := otp.NewRouter(def, otp.Route{Regions: []string{"IN"}, Provider: in})
	require.NoError(t, err)
	clock := otptest.NewClock(time.Time{})
	store := memstore.New(memstore.Config{Clock: clock})
	t.Cleanup(func() { store.Close() })
	var events []otp.Event
	v, err := otp.NewVerifier(r, store, otp.Config{Clock: clock, Limits: otp.Limits{UnverifiedPerRange: otp.NoLimit}, OnEvent: func(ev otp.Event) { events = append(events, ev) }})
	require.NoError(t, err)
	st, err := v.Start(ctx, sessionKey, inMobile)
	require.NoError(t, err)
	assert.Equal(t, "in", st.Provider)
	clock.Advance(time.Minute)
	_, err = v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	_, err = v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrWrongCode)
	_, err = v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err)
	_, err = v.Start(ctx, "other", inMobile)
	require.NoError(t, err)
	require.NoError(t, v.Cancel(ctx, "other"))
	assert.Equal(t, []int{2, 1, 2, 1}, []int{in.Calls(otp.OpStart), in.Calls(otp.OpResend), in.Calls(otp.OpCheck), in.Calls(otp.OpCancel)})
	assert.Zero(t, def.Calls(otp.OpStart)+def.Calls(otp.OpCheck)+def.Calls(otp.OpResend)+def.Calls(otp.OpCancel))
	for _, ev := range events {
		if ev.Kind != otp.EventStarted { // Start is reported before a provider is picked
			assert.Equal(t, "in", ev.Provider, "%s %s", ev.Op, ev.Kind)
		}
	}
	// A channel the destination's route lacks: refused, nothing sent.
	_, err = v.Start(ctx, "whatsapp", inMobile, otp.WithChannel(otp.WhatsApp))
	require.ErrorIs(t, err, otp.ErrUnsupportedChannel)
	assert.Equal(t, 2, in.Calls(otp.OpStart))
}

// A channel the destination's route lacks is refused before the Verifier
// takes any token, so a misconfigured route table costs people nothing:
// not their per-number sends, not their range's unverified budget.
func TestRouterRefusesAChannelItsRouteLacksBeforeAnyLimit(t *testing.T) {
	in, def := fake("in", otp.SMS), fake("def", otp.SMS, otp.Voice)
	r, err := otp.NewRouter(def, otp.Route{Regions: []string{"IN"}, Provider: in})
	require.NoError(t, err)
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { store.Close() })
	const reviewer = "+919876500000"
	v, err := otp.NewVerifier(r, store, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour},
		UnverifiedPerRange: otp.Limit{N: 1, Per: time.Hour}}, TestNumbers: []otp.TestNumber{{Number: reviewer, Code: fixedCode}}})
	require.NoError(t, err)
	for range 3 {
		_, err = v.Start(ctx, sessionKey, inMobile, otp.WithChannel(otp.Voice))
		require.ErrorIs(t, err, otp.ErrUnsupportedChannel)
		assert.Equal(t, "invalid_input", otp.ErrorClass(err))
	}
	_, err = v.Start(ctx, sessionKey, inMobile)
	require.NoError(t, err, "the refused Starts took no token")
	_, err = v.Start(ctx, "us", usMobile, otp.WithChannel(otp.Voice))
	require.NoError(t, err, "the default route has voice")
	_, err = v.Start(ctx, "reviewer", reviewer, otp.WithChannel(otp.Voice))
	require.NoError(t, err, "a test number is never sent: its route's channels do not matter")
	assert.Equal(t, []int{1, 1}, []int{in.Calls(otp.OpStart), def.Calls(otp.OpStart)})
}

// TestRouterWithFailovers: a route's Failover falls over as usual, the
// check goes to the inner provider that sent, and the Failover's breaker
// hears of checks answered through the Router.
func TestRouterWithFailovers(t *testing.T) {
	a, b, def := fake("a"), fake("b"), fake("def")
	fo, err := otp.NewFailover(otp.FailoverConfig{Failures: 2, Cooldown: time.Hour}, a, b)
	require.NoError(t, err)
	r, err := otp.NewRouter(def, otp.Route{Regions: []string{"US"}, Provider: fo})
	require.NoError(t, err)
	a.FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "a", Kind: otp.ProviderUnavailable, NotSent: true}})
	ref, err := r.Send(ctx, otp.SendRequest{To: usMobile, Channel: otp.SMS, CodeLength: 6})
	require.NoError(t, err)
	assert.Equal(t, "b", ref.Provider)
	require.NoError(t, r.Check(ctx, ref, fixedCode))
	assert.Equal(t, 1, b.Calls(otp.OpCheck))

	// Two unavailable answers to checks at a open a's breaker: the next
	// send skips it.
	ref, err = r.Send(ctx, otp.SendRequest{To: usMobile, Channel: otp.SMS, CodeLength: 6})
	require.NoError(t, err)
	require.Equal(t, "a", ref.Provider)
	a.FailNext(otp.OpCheck, otptest.Fault{}, otptest.Fault{})
	for range 2 {
		require.ErrorIs(t, r.Check(ctx, ref, fixedCode), otp.ErrProviderUnavailable)
	}
	ref, err = r.Send(ctx, otp.SendRequest{To: usMobile, Channel: otp.SMS, CodeLength: 6})
	require.NoError(t, err)
	assert.Equal(t, "b", ref.Provider, "a's breaker is open")
	assert.Equal(t, 2, a.Calls(otp.OpStart))
}

// TestRouterResendWithoutResender: a provider that cannot resend makes the
// Verifier start anew, through the same route.
func TestRouterResendWithoutResender(t *testing.T) {
	plain := plainProvider{fake("plain")}
	r, err := otp.NewRouter(fake("def"), otp.Route{Regions: []string{"US"}, Provider: plain})
	require.NoError(t, err)
	ref, err := r.Send(ctx, otp.SendRequest{To: usMobile, Channel: otp.SMS})
	require.NoError(t, err)
	require.ErrorIs(t, r.Resend(ctx, ref), errors.ErrUnsupported)
	require.ErrorIs(t, r.Cancel(ctx, ref), errors.ErrUnsupported)
}
