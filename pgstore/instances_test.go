package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// flow is two Verifiers, as in two processes, each with its own pool and
// Store, sharing the tables, the KeySecret and one (fake) vendor.
type flow struct {
	p    *otptest.Provider
	a, b *otp.Verifier
	sa   *pgstore.Store
	sb   *pgstore.Store
}

func newFlow(t *testing.T, cfg otp.Config, scfg pgstore.Config) flow {
	t.Helper()
	if scfg.KeySecret == nil {
		scfg.KeySecret = secret()
	}
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, Clock: cfg.Clock})
	f := flow{p: p}
	f.sa = newStore(t, newPool(t), scfg)
	f.sb = newStore(t, newPool(t), scfg)
	var err error
	f.a, err = otp.NewVerifier(p, f.sa, cfg)
	require.NoError(t, err)
	f.b, err = otp.NewVerifier(p, f.sb, cfg)
	require.NoError(t, err)
	return f
}

// race runs f(i) for i in [0, n) concurrently, released together.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestInstances runs otptest's multi-instance suite: two stores on pools
// of their own, as two processes.
func TestInstances(t *testing.T) {
	cfg := pgstore.Config{KeySecret: secret()} // one secret: the instances' keys must agree
	otptest.TestInstances(t, func() otp.Store { return newStore(t, newPool(t), cfg) })
}

func TestTwoInstancesCooldownAndLimits(t *testing.T) {
	clock := otptest.NewClock(time.Now())
	// The range's unverified budget (2 a day) would ask the third send
	// for a challenge first: this test is about the number's limit.
	f := newFlow(t, otp.Config{
		Clock:  clock,
		Limits: otp.Limits{PerNumber: otp.Limit{N: 3, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit},
	}, pgstore.Config{Clock: clock})
	ctx := t.Context()

	first, err := f.a.Start(ctx, "session", ukMobile)
	require.NoError(t, err)
	clock.Advance(10 * time.Second)
	_, err = f.b.Resend(ctx, "session")
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl, "Resend on b inside a's cooldown")
	assert.ErrorIs(t, err, otp.ErrResendTooSoon)
	assert.Equal(t, 20*time.Second, rl.RetryAfter)
	again, err := f.b.Start(ctx, "session", ukMobile)
	require.NoError(t, err, "Start on b inside a's cooldown")
	assert.True(t, first.SentAt.Equal(again.SentAt), "b returned a's pending verification")
	assert.Equal(t, first.AttemptsLeft, again.AttemptsLeft)
	assert.Equal(t, 1, f.p.Calls(otp.OpStart), "b sent nothing")

	clock.Advance(21 * time.Second)
	_, err = f.b.Resend(ctx, "session")
	require.NoError(t, err, "Resend on b after a's cooldown")
	assert.Equal(t, 2, f.p.Calls(otp.OpStart)+f.p.Calls(otp.OpResend))

	// The third send to the number, from either instance, is the last.
	_, err = f.a.Start(ctx, "other", ukMobile)
	require.NoError(t, err)
	_, err = f.b.Start(ctx, "third", ukMobile)
	require.ErrorAs(t, err, &rl, "b's Start after three sends to the number")
	assert.Equal(t, otp.ScopeNumber, rl.Scope)
	assert.Equal(t, 20*time.Minute-31*time.Second, rl.RetryAfter)
	_, err = f.a.Start(ctx, "third", ukMobile)
	require.ErrorIs(t, err, otp.ErrRateLimited, "a's Start after three sends to the number")
}

// TestTwoInstancesOverride: an override set through one instance is in
// force on the other at once, and so is its removal; a challenge override
// passes a Start made WithChallengePassed.
func TestTwoInstancesOverride(t *testing.T) {
	var rangeID atomic.Value
	f := newFlow(t, otp.Config{OnEvent: func(e otp.Event) {
		if e.Range != "" {
			rangeID.Store(e.Range)
		}
	}}, pgstore.Config{})
	ctx := t.Context()
	_, err := f.a.Start(ctx, "first", ukMobile)
	require.NoError(t, err)
	target := otp.RangeTarget(rangeID.Load().(string))
	require.NoError(t, f.a.SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideBlock,
		Until: time.Now().Add(time.Hour)}))
	t.Cleanup(func() { _ = f.a.SetOverride(context.Background(), otp.Override{Target: target}) })

	_, err = f.b.Start(ctx, "session", ukMobile)
	var be *otp.BlockedError
	require.ErrorAs(t, err, &be, "b's Start to a range a blocked")
	assert.Equal(t, target, be.Target)
	assert.Equal(t, 1, f.p.Calls(otp.OpStart), "nothing more was sent")
	list, err := f.b.Overrides(ctx)
	require.NoError(t, err)
	i := indexOf(list, target)
	require.GreaterOrEqual(t, i, 0, "b lists a's override")
	assert.Equal(t, otp.OverrideBlock, list[i].Action)

	require.NoError(t, f.a.SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideChallenge}))
	_, err = f.b.Start(ctx, "session", ukMobile)
	var ce *otp.ChallengeError
	require.ErrorAs(t, err, &ce, "b's Start to a range a put under challenge")
	assert.Equal(t, otp.ScopeOverride, ce.Scope)
	_, err = f.b.Start(ctx, "session", ukMobile, otp.WithChallengePassed())
	require.NoError(t, err, "b's Start that passed the challenge a asked for")
	assert.Equal(t, 2, f.p.Calls(otp.OpStart))

	require.NoError(t, f.a.SetOverride(ctx, otp.Override{Target: target}))
	_, err = f.b.Start(ctx, "other", ukMobile)
	require.NoError(t, err, "b's Start once a removed the override")
	assert.Equal(t, 3, f.p.Calls(otp.OpStart))
}

func indexOf(list []otp.Override, t otp.Target) int {
	for i, o := range list {
		if o.Target == t {
			return i
		}
	}
	return -1
}

// TestErrorsAreTyped: what a store call cannot do is a *pgstore.Error
// matching otp.ErrStoreUnavailable, and a cancelled context comes through.
func TestErrorsAreTyped(t *testing.T) {
	s := newStore(t, newPool(t), pgstore.Config{})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(cancelled, "a key")
	var pe *pgstore.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "get", pe.Op)
	assert.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotContains(t, err.Error(), "a key", "errors do not name the key")
	assert.False(t, errors.Is(err, otp.ErrNotFound))
}
