package pgstore_test

import (
	"sync"
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
}

func newFlow(t *testing.T, cfg otp.Config, scfg pgstore.Config) flow {
	t.Helper()
	if scfg.KeySecret == nil {
		scfg.KeySecret = secret()
	}
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, Clock: cfg.Clock})
	f := flow{p: p}
	var err error
	f.a, err = otp.NewVerifier(p, newStore(t, newPool(t), scfg), cfg)
	require.NoError(t, err)
	f.b, err = otp.NewVerifier(p, newStore(t, newPool(t), scfg), cfg)
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
