package otp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

func TestSendLimits(t *testing.T) {
	hour := time.Hour
	cases := []struct {
		name   string
		limits otp.Limits
		// calls are Starts of (key, number, client); the last one is denied.
		calls [][3]string
		scope otp.Scope
		wait  time.Duration
	}{
		{"per number", otp.Limits{PerNumber: otp.Limit{N: 2, Per: hour}, UnverifiedPerRange: otp.NoLimit},
			[][3]string{{"a", ukMobile, "x"}, {"b", ukMobile, "y"}, {"c", ukMobile, "z"}}, otp.ScopeNumber, 30 * time.Minute},
		{"per client", otp.Limits{PerClient: otp.Limit{N: 2, Per: hour}, UnverifiedPerRange: otp.NoLimit},
			[][3]string{{"a", ukMobile, "x"}, {"b", ukMobile2, "x"}, {"c", "+447400123458", "x"}}, otp.ScopeClient, 30 * time.Minute},
		{"per region", otp.Limits{PerRegion: otp.Limit{N: 1, Per: 10 * time.Minute}, UnverifiedPerRange: otp.NoLimit},
			[][3]string{{"a", ukMobile, "x"}, {"b", ukMobile2, "y"}}, otp.ScopeRegion, 10 * time.Minute},
		{"total", otp.Limits{Total: otp.Limit{N: 3, Per: 3 * time.Minute}, UnverifiedPerRange: otp.NoLimit},
			[][3]string{{"a", ukMobile, "x"}, {"b", ukMobile2, "y"}, {"c", "+447400123458", "z"}, {"d", "+12015550123", "w"}}, otp.ScopeTotal, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, otp.Config{Limits: tc.limits}, otptest.ProviderConfig{})
			for i, c := range tc.calls {
				_, err := f.v.Start(ctx, c[0], c[1], otp.WithClient(c[2]))
				if i < len(tc.calls)-1 {
					require.NoError(t, err, "call %d", i)
					continue
				}
				var rl *otp.RateLimitError
				require.ErrorAs(t, err, &rl)
				assert.ErrorIs(t, err, otp.ErrRateLimited)
				assert.Equal(t, tc.scope, rl.Scope)
				assert.Equal(t, tc.wait, rl.RetryAfter)
				ev := f.events.last()
				assert.Equal(t, otp.EventLimited, ev.Kind)
				assert.Equal(t, tc.scope, ev.Scope)
				assert.Equal(t, len(tc.calls)-1, f.p.Calls(otp.OpStart), "the denied call sent nothing")

				// The bucket refills after RetryAfter.
				f.clock.Advance(rl.RetryAfter)
				_, err = f.v.Start(ctx, c[0], c[1], otp.WithClient(c[2]))
				assert.NoError(t, err)
			}
		})
	}
}

// A call denied by one limit is charged to none.
func TestDeniedCallChargesNoLimit(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{
		PerClient: otp.Limit{N: 1, Per: time.Hour},
		Total:     otp.Limit{N: 2, Per: time.Hour},
	}}, otptest.ProviderConfig{})
	_, err := f.v.Start(ctx, "a", ukMobile, otp.WithClient("x"))
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "b", ukMobile2, otp.WithClient("x"))
	require.ErrorIs(t, err, otp.ErrRateLimited)
	_, err = f.v.Start(ctx, "c", "+447400123458", otp.WithClient("y"))
	require.NoError(t, err, "the denied call took no token from the total budget")
}

func TestResendCountsAgainstSendLimits(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 2, Per: time.Hour}}}, otptest.ProviderConfig{})
	f.start(t)
	f.clock.Advance(30 * time.Second)
	_, err := f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	f.clock.Advance(time.Minute) // the second code's cooldown
	_, err = f.v.Resend(ctx, sessionKey)
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, otp.ScopeNumber, rl.Scope)
	assert.Equal(t, 1, f.p.Calls(otp.OpResend))
}

func TestChecksPerClient(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 10, Limits: otp.Limits{ChecksPerClient: otp.Limit{N: 3, Per: time.Minute},
		UnverifiedPerRange: otp.NoLimit}}, otptest.ProviderConfig{})
	for i := range 3 {
		_, err := f.v.Start(ctx, fmt.Sprint("k", i), fmt.Sprint("+44740012345", i))
		require.NoError(t, err)
	}
	// One client guessing across keys.
	for i := range 3 {
		_, err := f.v.Check(ctx, fmt.Sprint("k", i), wrongCode, otp.WithClient("10.0.0.1"))
		require.ErrorIs(t, err, otp.ErrWrongCode)
	}
	_, err := f.v.Check(ctx, "k0", fixedCode, otp.WithClient("10.0.0.1"))
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, otp.ScopeChecks, rl.Scope)
	assert.Equal(t, 20*time.Second, rl.RetryAfter)
	assert.Equal(t, 3, f.p.Calls(otp.OpCheck))
	st, err := f.v.Status(ctx, "k0")
	require.NoError(t, err)
	assert.Equal(t, 9, st.AttemptsLeft, "a limited check uses no attempt")
	// Another client, or none, is not limited.
	_, err = f.v.Check(ctx, "k0", fixedCode, otp.WithClient("10.0.0.2"))
	assert.NoError(t, err)
}

func TestNoLimitTurnsALimitOff(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.NoLimits, Guard: otp.Guard{Conversion: otp.Conversion{MinSends: -1}}},
		otptest.ProviderConfig{})
	for i := range 50 {
		_, err := f.v.Start(ctx, fmt.Sprint("k", i), ukMobile)
		require.NoError(t, err)
	}
}

func TestDefaultLimits(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	for i := range 5 {
		_, err := f.v.Start(ctx, fmt.Sprint("k", i), ukMobile)
		require.NoError(t, err)
		_, err = f.v.Check(ctx, fmt.Sprint("k", i), fixedCode) // verified: the range keeps its budget
		require.NoError(t, err)
	}
	_, err := f.v.Start(ctx, "k5", ukMobile)
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, otp.ScopeNumber, rl.Scope, "default: 5 sends per number per hour")
	assert.Equal(t, 12*time.Minute, rl.RetryAfter)
}
