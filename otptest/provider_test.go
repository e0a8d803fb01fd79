package otptest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

var ctx = context.Background()

const to = "+447400123456"

func send(t *testing.T, p *otptest.Provider, to string) otp.Ref {
	t.Helper()
	ref, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS, CodeLength: 6})
	require.NoError(t, err)
	return ref
}

func TestProviderRecordsSendsAndConsumesTheRightCode(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	var seen []otptest.Send
	p := otptest.NewProvider(otptest.ProviderConfig{Name: "fake", Clock: clock, OnSend: func(s otptest.Send) { seen = append(seen, s) }})
	ref := send(t, p, to)
	assert.Equal(t, "fake", ref.Provider)
	assert.NotEmpty(t, ref.ID)

	sends := p.Sends()
	require.Len(t, sends, 1)
	assert.Equal(t, otptest.Send{Ref: ref, To: to, Channel: otp.SMS, Code: sends[0].Code, At: clock.Now()}, sends[0])
	assert.Regexp(t, `^[0-9]{6}$`, sends[0].Code)
	assert.Equal(t, sends, seen)
	code, ok := p.LastCode(to)
	require.True(t, ok)
	assert.Equal(t, sends[0].Code, code)
	_, ok = p.LastCode("+447400123457")
	assert.False(t, ok)

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	assert.ErrorIs(t, p.Check(ctx, ref, wrong), otp.ErrWrongCode)
	assert.NoError(t, p.Check(ctx, ref, code))
	assert.ErrorIs(t, p.Check(ctx, ref, code), otp.ErrNotFound, "a verified code is gone, as at a vendor")
	assert.Equal(t, 3, p.Calls(otp.OpCheck))
	assert.Equal(t, 1, p.Calls(otp.OpStart))
	assert.Zero(t, p.Pending())
}

func TestProviderRandomCodesDiffer(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{})
	codes := map[string]bool{}
	for range 50 {
		ref, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS, CodeLength: 8})
		require.NoError(t, err)
		code, _ := p.LastCode(to)
		assert.Len(t, code, 8)
		codes[code] = true
		require.NoError(t, p.Check(ctx, ref, code))
	}
	assert.Greater(t, len(codes), 45, "random codes")
}

func TestProviderTTLAndBurn(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	p := otptest.NewProvider(otptest.ProviderConfig{Code: "123456", TTL: time.Minute, BurnAfter: 2, Clock: clock})
	ref := send(t, p, to)
	clock.Advance(time.Minute)
	assert.ErrorIs(t, p.Check(ctx, ref, "123456"), otp.ErrExpired)
	assert.ErrorIs(t, p.Check(ctx, ref, "123456"), otp.ErrNotFound)

	ref = send(t, p, to)
	assert.ErrorIs(t, p.Check(ctx, ref, "000000"), otp.ErrWrongCode)
	assert.ErrorIs(t, p.Check(ctx, ref, "000000"), otp.ErrTooManyAttempts)
	assert.ErrorIs(t, p.Check(ctx, ref, "123456"), otp.ErrNotFound, "burned")
}

func TestProviderResendAndCancel(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{})
	ref, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.Voice, CodeLength: 6})
	require.NoError(t, err)
	require.NoError(t, p.Resend(ctx, ref))
	sends := p.Sends()
	require.Len(t, sends, 2)
	assert.True(t, sends[1].Resend)
	assert.Equal(t, sends[0].Code, sends[1].Code, "the same code again")
	assert.Equal(t, otp.Voice, sends[1].Channel)
	require.NoError(t, p.Cancel(ctx, ref))
	assert.ErrorIs(t, p.Cancel(ctx, ref), otp.ErrNotFound)
	assert.ErrorIs(t, p.Resend(ctx, ref), otp.ErrNotFound)
	assert.ErrorIs(t, p.Check(ctx, ref, sends[0].Code), otp.ErrNotFound)
	assert.Equal(t, 2, p.Calls(otp.OpResend))
	assert.Equal(t, 2, p.Calls(otp.OpCancel))
}

func TestProviderScriptedFaults(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{Code: "123456"})
	boom := errors.New("boom")
	p.FailNext(otp.OpStart, otptest.Fault{Err: boom}, otptest.Fault{Err: boom})
	for range 2 {
		_, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS})
		assert.ErrorIs(t, err, boom)
	}
	ref := send(t, p, to)
	assert.Equal(t, 3, p.Calls(otp.OpStart), "failed calls count too")
	assert.Len(t, p.Sends(), 1, "failed sends deliver nothing")

	p.FailNext(otp.OpCheck, otptest.Fault{})
	err := p.Check(ctx, ref, "123456")
	var pe *otp.ProviderError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, otp.ProviderUnavailable, pe.Kind)
	assert.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.NoError(t, p.Check(ctx, ref, "123456"), "the fault is spent and the code intact")

	p.FailNext(otp.OpCancel, otptest.Fault{Err: otp.ErrNotFound})
	assert.ErrorIs(t, p.Cancel(ctx, send(t, p, to)), otp.ErrNotFound)

	p.FailNext(otp.OpStart, otptest.Fault{Err: boom}, otptest.Fault{Err: boom})
	p.FailNext(otp.OpStart) // clears the script
	send(t, p, to)

	p.FailNext(otp.OpStart, otptest.Fault{Delay: time.Hour})
	c, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = p.Send(c, otp.SendRequest{To: to, Channel: otp.SMS})
	assert.ErrorIs(t, err, otp.ErrProviderUnavailable, "a delayed fault ends with its context")
}

func TestProviderDelayHonoursContext(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{})
	p.SetDelay(20 * time.Millisecond)
	start := time.Now()
	send(t, p, to)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)

	p.SetDelay(time.Hour)
	c, cancel := context.WithCancel(ctx)
	cancel()
	_, err := p.Send(c, otp.SendRequest{To: to, Channel: otp.SMS})
	assert.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestProviderChannels(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{Channels: []otp.Channel{otp.SMS}})
	assert.True(t, p.Supports(otp.SMS))
	assert.False(t, p.Supports(otp.Voice))
	_, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.Voice})
	assert.ErrorIs(t, err, otp.ErrUnsupportedChannel)
}

func TestProviderHistoryIsBounded(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{History: 3})
	var refs []otp.Ref
	for _, n := range []string{"+447400000001", "+447400000002", "+447400000003", "+447400000004", "+447400000005"} {
		refs = append(refs, send(t, p, n))
	}
	sends := p.Sends()
	require.Len(t, sends, 3)
	for i, s := range sends {
		assert.Equal(t, refs[i+2], s.Ref, "oldest first")
	}
	_, ok := p.LastCode("+447400000001")
	assert.False(t, ok, "forgotten")
	code, ok := p.LastCode("+447400000005")
	assert.True(t, ok)
	assert.NoError(t, p.Check(ctx, refs[4], code))
	assert.Equal(t, 4, p.Pending(), "history is bounded, pending codes are not dropped")
}

func TestProviderConcurrentUse(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{Code: "123456", History: 10})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				ref, err := p.Send(ctx, otp.SendRequest{To: to, Channel: otp.SMS})
				if assert.NoError(t, err) {
					assert.NoError(t, p.Check(ctx, ref, "123456"))
				}
				p.LastCode(to)
				p.Sends()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 800, p.Calls(otp.OpStart))
	assert.Equal(t, 800, p.Calls(otp.OpCheck))
	assert.Zero(t, p.Pending())
	assert.Len(t, p.Sends(), 10)
}

func TestClock(t *testing.T) {
	c := otptest.NewClock(time.Time{})
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), c.Now())
	c.Advance(time.Hour)
	assert.Equal(t, time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC), c.Now())
	at := time.Date(2030, 5, 6, 7, 8, 9, 10, time.UTC)
	c.Set(at)
	assert.Equal(t, at, c.Now())
	assert.Equal(t, at, otptest.NewClock(at).Now())
}
