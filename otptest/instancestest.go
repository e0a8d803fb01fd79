package otptest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// TestInstances runs the multi-instance suite: the guarantees of DESIGN's
// "several processes sharing one store behave as one Verifier", through
// two Verifiers, each on a store value of its own that newInstance makes,
// as two processes with their own connections would have.
//
//	func TestInstances(t *testing.T) {
//		otptest.TestInstances(t, func() otp.Store {
//			return newStoreOnItsOwnClient(t)
//		})
//	}
//
// newInstance is called twice per rule, never concurrently; the two stores
// it returns must share their state (the same Redis, the same database)
// and, when they keep the limits, their limits. A store of one process
// (memstore) may return itself twice; the two Verifiers then share one
// MemoryLimiter. The suite checks that of
// 100 concurrent right codes through both instances exactly one succeeds
// with a vendor that accepts the code every time; that 100 concurrent wrong
// guesses reach the vendor at most MaxAttempts times; that a cooldown and
// a per-number limit set through one hold on the other; that 100
// concurrent Starts of one key and number send one code; and that an
// override set through one is in force on the other.
//
// It uses the wall clock and numbers drawn at random, so that runs may
// share a backend.
func TestInstances(t *testing.T, newInstance func() otp.Store) {
	rules := []struct {
		name string
		test func(t *testing.T, a, b otp.Store)
	}{
		{"OneSuccess", testInstancesOneSuccess},
		{"WrongGuesses", testInstancesWrongGuesses},
		{"CooldownAndLimits", testInstancesCooldownAndLimits},
		{"StartOnce", testInstancesStartOnce},
		{"Override", testInstancesOverride},
	}
	for _, r := range rules {
		a, b := newInstance(), newInstance()
		t.Run(r.name, func(t *testing.T) { r.test(t, a, b) })
	}
}

// pair returns a Verifier on each instance, both on provider p and cfg.
// Stores that keep no limits get one MemoryLimiter for both, as two
// Verifiers of one process would share one.
func pair(t *testing.T, p otp.Provider, a, b otp.Store, cfg otp.Config) [2]*otp.Verifier {
	t.Helper()
	if _, ok := a.(otp.Limiter); !ok {
		cfg.Limiter = otp.NewMemoryLimiter(otp.MemoryLimiterConfig{})
	}
	var vs [2]*otp.Verifier
	for i, s := range []otp.Store{a, b} {
		v, err := otp.NewVerifier(p, s, cfg)
		noError(t, err, "NewVerifier")
		vs[i] = v
	}
	return vs
}

// mobile returns a GB mobile number in a range of its own, so that runs on
// a shared backend meet no limit of another.
func mobile() string { return fmt.Sprintf("+4474%08d", rand.IntN(100_000_000)) }

// session returns a key unique to the run.
func session() string { return fmt.Sprintf("otptest-instances-%d", rand.Int64()) }

func testInstancesOneSuccess(t *testing.T, a, b otp.Store) {
	p := NewProvider(ProviderConfig{Code: "123456", Reusable: true})
	p.SetDelay(time.Millisecond) // the checks overlap at the vendor
	vs := pair(t, p, a, b, otp.Config{MaxAttempts: 1000, Limits: otp.NoLimits})
	key := session()
	_, err := vs[0].Start(t.Context(), key, mobile())
	noError(t, err, "Start")
	errs := race(100, func(i int) error {
		_, err := vs[i%2].Check(t.Context(), key, "123456")
		return err
	})
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		errorIs(t, err, otp.ErrNotFound, "a losing check")
	}
	equal(t, 1, wins, "right codes that succeeded across two instances")
	isTrue(t, p.Calls(otp.OpCheck) > 1, "the race reached the vendor")
	for i, v := range vs {
		_, err := v.Status(t.Context(), key)
		errorIs(t, err, otp.ErrNotFound, "the verification consumed, on instance %d", i)
	}
}

func testInstancesWrongGuesses(t *testing.T, a, b otp.Store) {
	p := NewProvider(ProviderConfig{Code: "123456"})
	p.SetDelay(2 * time.Millisecond) // the guesses overlap at the vendor
	vs := pair(t, p, a, b, otp.Config{MaxAttempts: 5, Limits: otp.NoLimits})
	key := session()
	_, err := vs[0].Start(t.Context(), key, mobile())
	noError(t, err, "Start")
	errs := race(100, func(i int) error {
		_, err := vs[i%2].Check(t.Context(), key, "654321")
		return err
	})
	for _, err := range errs {
		isTrue(t, err != nil, "a wrong guess succeeded")
	}
	checks := p.Calls(otp.OpCheck)
	isTrue(t, checks > 0 && checks <= 5, "%d guesses reached the vendor; at most MaxAttempts (5) may", checks)
}

func testInstancesCooldownAndLimits(t *testing.T, a, b otp.Store) {
	p := NewProvider(ProviderConfig{Code: "123456"})
	// Long enough that a loaded machine runs the calls inside it.
	cooldown := 1500 * time.Millisecond
	vs := pair(t, p, a, b, otp.Config{ResendCooldowns: []time.Duration{cooldown},
		Limits: otp.Limits{PerNumber: otp.Limit{N: 2, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit}})
	ctx, key, to := t.Context(), session(), mobile()
	first, err := vs[0].Start(ctx, key, to)
	noError(t, err, "Start on the first")
	_, err = vs[1].Resend(ctx, key)
	errorIs(t, err, otp.ErrResendTooSoon, "Resend on the second inside the first's cooldown")
	again, err := vs[1].Start(ctx, key, to)
	noError(t, err, "Start on the second inside the first's cooldown")
	isTrue(t, first.SentAt.Equal(again.SentAt), "the second answered with the first's verification")
	equal(t, 1, p.Calls(otp.OpStart), "the second sent nothing")

	time.Sleep(cooldown)
	_, err = vs[1].Resend(ctx, key)
	noError(t, err, "Resend on the second after the cooldown")
	_, err = vs[0].Start(ctx, session(), to)
	var rl *otp.RateLimitError
	isTrue(t, errors.As(err, &rl) && rl.Scope == otp.ScopeNumber, "a third send to the number, by either instance: %v", err)
}

func testInstancesStartOnce(t *testing.T, a, b otp.Store) {
	p := NewProvider(ProviderConfig{})
	p.SetDelay(20 * time.Millisecond) // the sends overlap
	vs := pair(t, p, a, b, otp.Config{Limits: otp.NoLimits})
	key, to := session(), mobile()
	sts := make([]otp.Status, 100)
	errs := race(100, func(i int) error {
		var err error
		sts[i], err = vs[i%2].Start(t.Context(), key, to)
		return err
	})
	for i, err := range errs {
		noError(t, err, "Start #%d", i)
		isTrue(t, sts[0].SentAt.Equal(sts[i].SentAt), "Start #%d answers with the one verification: %v, not %v", i, sts[i], sts[0])
	}
	equal(t, 1, p.Calls(otp.OpStart), "codes sent by 100 concurrent Starts of one key and number on two instances")
}

func testInstancesOverride(t *testing.T, a, b otp.Store) {
	p := NewProvider(ProviderConfig{})
	vs := pair(t, p, a, b, otp.Config{Limits: otp.NoLimits})
	ctx, to := t.Context(), mobile()
	target := otp.RangeTarget(to[:len(to)-4])
	noError(t, vs[0].SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideBlock}), "SetOverride on the first")
	defer vs[0].SetOverride(context.Background(), otp.Override{Target: target})
	_, err := vs[1].Start(ctx, session(), to)
	errorIs(t, err, otp.ErrDestinationBlocked, "a block set on the first, on the second")
	var be *otp.BlockedError
	isTrue(t, errors.As(err, &be) && be.Target == target, "the block names its target: %v", err)
	equal(t, 0, p.Calls(otp.OpStart), "nothing sent to a blocked range")
	list, err := vs[1].Overrides(ctx)
	noError(t, err, "Overrides on the second")
	isTrue(t, slices.Contains(list, otp.Override{Target: target, Action: otp.OverrideBlock}),
		"the second lists the first's block: %v", list)
	noError(t, vs[0].SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideChallenge}), "SetOverride(challenge)")
	key := session()
	_, err = vs[1].Start(ctx, key, to)
	errorIs(t, err, otp.ErrChallengeRequired, "a challenge set on the first, on the second")
	_, err = vs[1].Start(ctx, key, to, otp.WithChallengePassed())
	noError(t, err, "a Start that passed the challenge")
	noError(t, vs[1].SetOverride(ctx, otp.Override{Target: target}), "SetOverride(none) on the second")
	_, err = vs[0].Start(ctx, session(), to)
	noError(t, err, "removed on the second, gone on the first")
}
