package otp_test

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

// reviewer is a fictional number: 555-01xx is reserved for fiction.
const reviewer = "+1 202 555 0100"

// testNumberFixture makes reviewer a test number whose rule ends after
// lasts, or never if lasts is 0.
func testNumberFixture(t *testing.T, lasts time.Duration) (*fixture, *bytes.Buffer) {
	var logs bytes.Buffer
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	var expires time.Time
	if lasts > 0 {
		expires = f.clock.Now().Add(lasts)
	}
	f.v = f.verifier(t, f.p, f.store, otp.Config{
		TestNumbers: []otp.TestNumber{{Number: reviewer, Code: "246810", Expires: expires}},
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	return f, &logs
}

func TestTestNumbersNeverReachTheProvider(t *testing.T) {
	f, logs := testNumberFixture(t, 0)
	assert.Contains(t, logs.String(), "test numbers are on")
	assert.NotContains(t, logs.String(), "246810", "the code is never logged")
	assert.NotContains(t, logs.String(), "2025550100", "the number is masked")

	st, err := f.v.Start(ctx, sessionKey, reviewer)
	require.NoError(t, err)
	assert.Equal(t, "+12025550100", st.To)
	assert.Equal(t, "otp-test-number", st.Provider)
	_, err = f.v.Check(ctx, sessionKey, "135791")
	var wrong *otp.WrongCodeError
	require.ErrorAs(t, err, &wrong)
	assert.Equal(t, 4, wrong.AttemptsLeft)
	_, err = f.v.Check(ctx, sessionKey, "246810")
	require.NoError(t, err)
	assert.Equal(t, 0, f.p.Calls(otp.OpStart)+f.p.Calls(otp.OpCheck))
	sent := 0
	for _, e := range f.events.all() {
		if e.Kind == otp.EventSent {
			sent++
			assert.Equal(t, "otp-test-number", e.Provider)
		}
	}
	assert.Equal(t, 1, sent, "events as for any send")
}

func TestTestNumbersBehaveLikeRealOnes(t *testing.T) {
	f, _ := testNumberFixture(t, 0)
	_, err := f.v.Start(ctx, sessionKey, reviewer)
	require.NoError(t, err)

	_, err = f.v.Resend(ctx, sessionKey)
	require.ErrorIs(t, err, otp.ErrResendTooSoon, "cooldown")
	f.clock.Advance(time.Minute)
	_, err = f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)

	for range 4 {
		_, err = f.v.Check(ctx, sessionKey, "000000")
		require.ErrorIs(t, err, otp.ErrWrongCode)
	}
	_, err = f.v.Check(ctx, sessionKey, "000000")
	require.ErrorIs(t, err, otp.ErrTooManyAttempts, "attempts")
	_, err = f.v.Check(ctx, sessionKey, "246810")
	require.ErrorIs(t, err, otp.ErrNotFound)

	_, err = f.v.Start(ctx, sessionKey, reviewer)
	require.NoError(t, err)
	f.clock.Advance(5 * time.Minute)
	_, err = f.v.Check(ctx, sessionKey, "246810")
	require.ErrorIs(t, err, otp.ErrExpired, "TTL")
	assert.Equal(t, 0, f.p.Calls(otp.OpStart)+f.p.Calls(otp.OpCheck)+f.p.Calls(otp.OpResend)+f.p.Calls(otp.OpCancel))
}

func TestTestNumberRuleExpires(t *testing.T) {
	f, _ := testNumberFixture(t, time.Hour)
	_, err := f.v.Start(ctx, "before", reviewer)
	require.NoError(t, err)
	f.clock.Advance(time.Hour)
	assert.Equal(t, 0, f.p.Calls(otp.OpStart))
	_, err = f.v.Start(ctx, "after", reviewer)
	require.NoError(t, err)
	assert.Equal(t, 1, f.p.Calls(otp.OpStart), "an ordinary number again: it reaches the provider")
}

// A verification started while the rule held does not accept the fixed
// code once the rule has ended.
func TestTestNumberExpiryEndsPendingVerifications(t *testing.T) {
	f, _ := testNumberFixture(t, time.Minute)
	_, err := f.v.Start(ctx, sessionKey, reviewer)
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	_, err = f.v.Check(ctx, sessionKey, "246810")
	require.ErrorIs(t, err, otp.ErrExpired)
	_, err = f.v.Status(ctx, sessionKey)
	assert.Error(t, err, "the verification is gone")
	assert.Zero(t, f.p.Calls(otp.OpCheck), "the provider never sees a test number's code")
}

// Resend of a test number's verification after the rule has ended starts
// a real one.
func TestTestNumberResendAfterExpirySends(t *testing.T) {
	f, _ := testNumberFixture(t, time.Minute)
	_, err := f.v.Start(ctx, sessionKey, reviewer)
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	st, err := f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, "otptest", st.Provider)
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))
	assert.Zero(t, f.p.Calls(otp.OpCancel), "a test verification is not cancelled at the provider")
}
