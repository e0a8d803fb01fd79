package otp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

// acceptedThenTimeout is a vendor that accepts the send (the code goes
// out) but whose answer never arrives: the ambiguous failure.
type acceptedThenTimeout struct{ *otptest.Provider }

func (p acceptedThenTimeout) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	if _, err := p.Provider.Send(ctx, req); err != nil {
		return otp.Ref{}, err
	}
	return otp.Ref{}, &otp.ProviderError{Provider: p.Name(), Op: otp.OpStart, Kind: otp.ProviderUnavailable, Err: context.DeadlineExceeded}
}

// refusing is a vendor whose address refuses connections: it dials a
// loopback port nobody listens on and, as the HTTP adapters do, reports
// that nothing was sent.
type refusing struct {
	*otptest.Provider
	addr string
}

func (p refusing) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
	if err == nil {
		conn.Close()
		return otp.Ref{}, errors.New("something listens on the closed port")
	}
	return otp.Ref{}, &otp.ProviderError{Provider: p.Name(), Op: otp.OpStart, Kind: otp.ProviderUnavailable, NotSent: true, Err: err}
}

// closedAddr returns a loopback address that refuses connections.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func fakes(clock *otptest.Clock, names ...string) []*otptest.Provider {
	ps := make([]*otptest.Provider, len(names))
	for i, n := range names {
		ps[i] = otptest.NewProvider(otptest.ProviderConfig{Name: n, Code: fixedCode, Clock: clock,
			Channels: []otp.Channel{otp.SMS, otp.Voice}})
	}
	return ps
}

func failoverFixture(t *testing.T, providers ...otp.Provider) (*fixture, *otp.Failover) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	fo, err := otp.NewFailover(otp.FailoverConfig{Clock: f.clock}, providers...)
	require.NoError(t, err)
	f.v = f.verifier(t, fo, f.store, otp.Config{})
	return f, fo
}

func TestFailoverFallsOverWhenThePrimarySentNothing(t *testing.T) {
	for name, err := range map[string]error{
		"throttled": &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 429, Kind: otp.ProviderUnavailable, NotSent: true},
		"dns":       &otp.ProviderError{Provider: "a", Op: otp.OpStart, Kind: otp.ProviderUnavailable, NotSent: true, Err: &net.DNSError{Err: "no such host", Name: "api.example"}},
		"account":   &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 401, Kind: otp.ProviderAccount, NotSent: true},
		// A provider of another library that returns the dial error itself.
		"bare dial error": fmt.Errorf("sending: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}),
	} {
		t.Run(name, func(t *testing.T) {
			clock := otptest.NewClock(time.Time{})
			ps := fakes(clock, "a", "b")
			ps[0].FailNext(otp.OpStart, otptest.Fault{Err: err})
			f, _ := failoverFixture(t, ps[0], ps[1])
			f.start(t)
			assert.Equal(t, 0, ps[0].Pending())
			assert.Equal(t, 1, ps[1].Pending(), "b sent the code")
			assert.Equal(t, "b", f.events.last().Provider, "events name the provider that served")
			st, err := f.v.Status(ctx, sessionKey)
			require.NoError(t, err)
			assert.Equal(t, "b", st.Provider)
		})
	}
}

func TestFailoverFallsOverWhenThePrimaryRefusesTheConnection(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a", "b")
	f, _ := failoverFixture(t, refusing{ps[0], closedAddr(t)}, ps[1])
	f.start(t)
	assert.Equal(t, 1, ps[1].Pending())
}

func TestFailoverNeverFallsOverWhenThePrimaryMayHaveSent(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a", "b")
	f, _ := failoverFixture(t, acceptedThenTimeout{ps[0]}, ps[1])
	_, err := f.v.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.Len(t, ps[0].Sends(), 1, "the primary sent a code")
	assert.Equal(t, 0, ps[1].Calls(otp.OpStart), "no second SMS")
}

func TestFailoverNeverFallsOverOnBadInputOrAmbiguousErrors(t *testing.T) {
	for name, err := range map[string]error{
		"invalid number":      &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 400, Err: otp.ErrInvalidPhone, NotSent: true},
		"rejected":            &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 403, NotSent: true},
		"500 maybe sent":      &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 500, Kind: otp.ProviderUnavailable},
		"plain error":         errors.New("something odd"),
		"deadline, ambiguous": context.DeadlineExceeded,
		// NotSent is the one answer: Failover does not guess from the cause.
		"dial error without NotSent": &otp.ProviderError{Provider: "a", Op: otp.OpStart, Kind: otp.ProviderUnavailable,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}},
		"account without NotSent": &otp.ProviderError{Provider: "a", Op: otp.OpStart, HTTPStatus: 401, Kind: otp.ProviderAccount},
	} {
		t.Run(name, func(t *testing.T) {
			clock := otptest.NewClock(time.Time{})
			ps := fakes(clock, "a", "b")
			ps[0].FailNext(otp.OpStart, otptest.Fault{Err: err})
			f, _ := failoverFixture(t, ps[0], ps[1])
			_, got := f.v.Start(ctx, sessionKey, ukMobile)
			require.ErrorIs(t, got, err)
			assert.Equal(t, 0, ps[1].Calls(otp.OpStart))
		})
	}
}

func TestFailoverRoutesEveryOperationToTheIssuingProvider(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a", "b")
	ps[0].FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "a", Kind: otp.ProviderUnavailable, NotSent: true}})
	f, _ := failoverFixture(t, ps[0], ps[1])
	f.start(t)

	_, err := f.v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrWrongCode)
	f.clock.Advance(time.Minute)
	_, err = f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err)
	assert.Equal(t, 0, ps[0].Calls(otp.OpCheck)+ps[0].Calls(otp.OpResend))
	assert.Equal(t, 2, ps[1].Calls(otp.OpCheck))
	assert.Equal(t, 1, ps[1].Calls(otp.OpResend))

	f.start(t) // on a now: the primary is healthy again
	require.NoError(t, f.v.Cancel(ctx, sessionKey))
	assert.Equal(t, 1, ps[0].Calls(otp.OpCancel))
	assert.Equal(t, 0, ps[1].Calls(otp.OpCancel))
}

func TestFailoverCheckOfAnUnknownProviderIsNotFound(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a")
	fo, err := otp.NewFailover(otp.FailoverConfig{}, ps[0])
	require.NoError(t, err)
	err = fo.Check(ctx, otp.Ref{Provider: "gone", ID: "1"}, fixedCode)
	assert.ErrorIs(t, err, otp.ErrNotFound)
}

func TestFailoverResendWithoutResenderStartsAnew(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a")
	f, _ := failoverFixture(t, plainProvider{ps[0]})
	f.start(t)
	f.clock.Advance(time.Minute)
	_, err := f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 2, ps[0].Calls(otp.OpStart), "a new verification")
	assert.Equal(t, 0, ps[0].Calls(otp.OpResend))
}

func TestFailoverCircuitBreaker(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a", "b")
	down := &otp.ProviderError{Provider: "a", Op: otp.OpStart, Kind: otp.ProviderUnavailable, NotSent: true}
	var logs bytes.Buffer
	fo, err := otp.NewFailover(otp.FailoverConfig{Failures: 2, Cooldown: time.Minute, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, ps[0], ps[1])
	require.NoError(t, err)
	send := func() string {
		ref, err := fo.Send(ctx, otp.SendRequest{To: ukMobile, Channel: otp.SMS, CodeLength: 6})
		require.NoError(t, err)
		return ref.Provider
	}

	ps[0].FailNext(otp.OpStart, slices.Repeat([]otptest.Fault{{Err: down}}, 100)...)
	assert.Equal(t, "b", send())
	assert.Equal(t, "b", send()) // the second failure opens a's breaker
	assert.Contains(t, logs.String(), "circuit breaker opened")
	assert.Equal(t, "b", send())
	assert.Equal(t, 2, ps[0].Calls(otp.OpStart), "an open breaker skips the provider")

	clock.Advance(time.Minute)
	assert.Equal(t, "b", send(), "the probe fails and opens it again")
	assert.Equal(t, 3, ps[0].Calls(otp.OpStart))
	assert.Equal(t, "b", send())
	assert.Equal(t, 3, ps[0].Calls(otp.OpStart))

	ps[0].FailNext(otp.OpStart)
	clock.Advance(time.Minute)
	assert.Equal(t, "a", send(), "a successful probe closes it")
	assert.Equal(t, "a", send())
	assert.NotContains(t, logs.String(), ukMobile, "numbers are never logged whole")
}

func TestFailoverWithEveryBreakerOpenFailsFast(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a")
	fo, err := otp.NewFailover(otp.FailoverConfig{Failures: 1, Clock: clock}, ps[0])
	require.NoError(t, err)
	ps[0].FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "a", Kind: otp.ProviderUnavailable, NotSent: true}})
	req := otp.SendRequest{To: ukMobile, Channel: otp.SMS, CodeLength: 6}
	_, err = fo.Send(ctx, req)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	_, err = fo.Send(ctx, req)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.Equal(t, 1, ps[0].Calls(otp.OpStart))
}

func TestFailoverSkipsProvidersWithoutTheChannel(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	smsOnly := otptest.NewProvider(otptest.ProviderConfig{Name: "a", Clock: clock, Channels: []otp.Channel{otp.SMS}})
	ps := fakes(clock, "b")
	fo, err := otp.NewFailover(otp.FailoverConfig{}, smsOnly, ps[0])
	require.NoError(t, err)
	assert.True(t, fo.Supports(otp.Voice))
	assert.False(t, fo.Supports(otp.Email))
	ref, err := fo.Send(ctx, otp.SendRequest{To: ukMobile, Channel: otp.Voice, CodeLength: 6})
	require.NoError(t, err)
	assert.Equal(t, "b", ref.Provider)
	assert.Equal(t, 0, smsOnly.Calls(otp.OpStart))
}

func TestFailoverValidatesItsProviders(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	ps := fakes(clock, "a", "a")
	_, err := otp.NewFailover(otp.FailoverConfig{})
	assert.Error(t, err)
	_, err = otp.NewFailover(otp.FailoverConfig{}, ps[0], ps[1])
	assert.ErrorContains(t, err, "two providers")
	_, err = otp.NewFailover(otp.FailoverConfig{}, ps[0], nil)
	assert.Error(t, err)
	inner, err := otp.NewFailover(otp.FailoverConfig{}, ps[0])
	require.NoError(t, err)
	_, err = otp.NewFailover(otp.FailoverConfig{}, inner)
	assert.Error(t, err)
}
