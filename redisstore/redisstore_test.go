package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

func TestConformance(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.client(t)
			t.Run("Store", func(t *testing.T) {
				otptest.TestStore(t, func() otp.Store { return newStore(t, c, redisstore.Config{}) })
			})
			t.Run("Limiter", func(t *testing.T) {
				otptest.TestLimiter(t, func() otp.Limiter { return newStore(t, c, redisstore.Config{}) })
			})
			t.Run("LimitingStore", func(t *testing.T) {
				otptest.TestLimitingStore(t, func() otp.LimitingStore { return newStore(t, c, redisstore.Config{}) })
			})
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for name, cfg := range map[string]redisstore.Config{
		"open brace":         {Prefix: "app{"},
		"close brace":        {Prefix: "}app"},
		"negative retention": {Retention: -time.Second},
		"short key secret":   {KeySecret: []byte("fifteen bytes!!")},
		"empty key secret":   {KeySecret: []byte{}},
	} {
		_, err := redisstore.New(c, cfg)
		assert.Error(t, err, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "fifteen", "%s: the error holds no secret", name)
		}
	}
	_, err := redisstore.New(nil, redisstore.Config{})
	assert.Error(t, err, "nil client")
	_, err = redisstore.New(c, redisstore.Config{Prefix: "app:", Retention: time.Millisecond})
	assert.NoError(t, err)
}

// TestKeySecret: instances with the same KeySecret share verifications and
// limits; an instance with another finds neither.
func TestKeySecret(t *testing.T) {
	c := standalone(t)
	pre := prefix()
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := newStore(t, c, redisstore.Config{Prefix: pre, KeySecret: secret})
	same := newStore(t, c, redisstore.Config{Prefix: pre, KeySecret: slices.Clone(secret)})
	other := newStore(t, c, redisstore.Config{Prefix: pre, KeySecret: []byte("another secret, 32 bytes long!!!")})
	builtin := newStore(t, c, redisstore.Config{Prefix: pre})
	ctx := t.Context()
	now := time.Now()
	v := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Minute)}
	require.NoError(t, a.Put(ctx, v))
	_, err := same.Get(ctx, "k")
	require.NoError(t, err, "the same secret")
	for name, s := range map[string]*redisstore.Store{"another secret": other, "the built-in secret": builtin} {
		_, err = s.Get(ctx, "k")
		assert.ErrorIs(t, err, otp.ErrNotFound, name)
	}

	r := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1, Per: time.Hour}}}
	require.NoError(t, a.Allow(ctx, r))
	require.ErrorIs(t, same.Allow(ctx, r), otp.ErrRateLimited, "the same secret")
	require.NoError(t, other.Allow(ctx, r), "another secret")
}

// flow is two Verifiers, as in two processes, each with its own client,
// sharing one Redis and one (fake) vendor.
type flow struct {
	p    *otptest.Provider
	a, b *otp.Verifier
}

func newFlow(t *testing.T, be backend, cfg otp.Config, scfg redisstore.Config) flow {
	t.Helper()
	if scfg.Prefix == "" {
		scfg.Prefix = prefix()
	}
	f := flow{p: otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, Clock: cfg.Clock})}
	for _, v := range []**otp.Verifier{&f.a, &f.b} {
		var err error
		*v, err = otp.NewVerifier(f.p, newStore(t, be.client(t), scfg), cfg)
		require.NoError(t, err)
	}
	return f
}

// TestInstances runs otptest's multi-instance suite: two stores on
// clients of their own, as two processes, on each backend.
func TestInstances(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			cfg := redisstore.Config{Prefix: prefix()}
			otptest.TestInstances(t, func() otp.Store { return newStore(t, be.client(t), cfg) })
		})
	}
}

func TestTwoInstancesCooldownAndLimits(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			clock := otptest.NewClock(time.Now())
			// The unverified budget of the number's range (2 a day) would
			// ask the third send for a challenge before PerNumber refuses.
			f := newFlow(t, be, otp.Config{
				Clock:  clock,
				Limits: otp.Limits{PerNumber: otp.Limit{N: 3, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit},
			}, redisstore.Config{Clock: clock})
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
			assert.InDelta(t, 20*time.Minute-31*time.Second, rl.RetryAfter, float64(time.Millisecond))
			_, err = f.a.Start(ctx, "third", ukMobile)
			require.ErrorIs(t, err, otp.ErrRateLimited, "a's Start after three sends to the number")
		})
	}
}

// TestTwoInstancesShareBreakersAndOverrides: an override set through one
// instance refuses on the other, and a breaker opened by the sends of one
// asks the other for a challenge; each instance has a client of its own.
func TestTwoInstancesShareBreakersAndOverrides(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := redisstore.Config{Prefix: prefix()}
			a, b := newStore(t, be.client(t), cfg), newStore(t, be.client(t), cfg)

			// Overrides, through the Limiter.
			jm := otp.RegionTarget("JM")
			override := []otp.LimitRequest{{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: jm.Key()}}
			require.NoError(t, a.SetOverride(ctx, otp.Override{Target: jm, Action: otp.OverrideBlock}))
			var blocked *otp.BlockedError
			require.ErrorAs(t, b.Allow(ctx, override), &blocked, "a's block on b")
			assert.Equal(t, jm, blocked.Target)
			list, err := b.Overrides(ctx)
			require.NoError(t, err)
			assert.Equal(t, []otp.Override{{Target: jm, Action: otp.OverrideBlock}}, list, "b lists a's override")
			require.NoError(t, b.SetOverride(ctx, otp.Override{Target: jm}), "b removes it")
			require.NoError(t, a.Allow(ctx, override), "removed on a too")

			// A breaker, through the Limiter: a's sends open it for b, and
			// b's refusals count for a.
			br := []otp.LimitRequest{{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
				Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}}}
			for range 4 {
				require.NoError(t, a.Record(ctx, otp.OutcomeSent, br))
			}
			require.NoError(t, a.Record(ctx, otp.OutcomeVerified, br))
			requireChallenge(t, b.Allow(ctx, br), otp.ScopeConversion)
			// 2 verified of 5 (4 sent, b's refusal): still open on a.
			require.NoError(t, b.Record(ctx, otp.OutcomeVerified, br))
			requireChallenge(t, a.Allow(ctx, br), otp.ScopeConversion)

			// Through two Verifiers: sends made by a, never verified, ask
			// b's Start for a challenge; an override set on b blocks a.
			// Without a Grace, a's sends count at once (otptest's
			// BreakerGrace holds the Store to the grace).
			f := newFlow(t, be, otp.Config{Limits: otp.NoLimits,
				Guard: otp.Guard{Conversion: otp.Conversion{MinSends: 3, MinShare: 0.5, Grace: -1}}}, redisstore.Config{})
			for i := range 3 {
				_, err := f.a.Start(ctx, fmt.Sprint("a-", i), fmt.Sprint("+44740012345", i))
				require.NoError(t, err, "a's Start #%d", i+1)
			}
			_, err = f.b.Start(ctx, "b", "+447400123459")
			var ce *otp.ChallengeError
			require.ErrorAs(t, err, &ce, "b's Start after a's unverified sends")
			assert.Equal(t, otp.ScopeConversion, ce.Scope)
			assert.Equal(t, 3, f.p.Calls(otp.OpStart), "b sent nothing")

			// An override that challenges, set on a, asks b too; a Start
			// that passed a challenge goes through it and the open
			// breaker.
			gb := otp.RangeTarget("+44740012xxxx") // the range of the numbers above
			require.NoError(t, f.a.SetOverride(ctx, otp.Override{Target: gb, Action: otp.OverrideChallenge}))
			_, err = f.b.Start(ctx, "b", "+447400123459")
			require.ErrorAs(t, err, &ce, "b's Start after a's challenge override, the breaker open")
			_, err = f.b.Start(ctx, "b", "+447400123459", otp.WithChallengePassed())
			require.NoError(t, err, "b's Start that passed a challenge, after a's challenge override, the breaker open")
			assert.Equal(t, 4, f.p.Calls(otp.OpStart), "b's challenged Start sent its code")

			require.NoError(t, f.b.SetOverride(ctx, otp.Override{Target: gb, Action: otp.OverrideBlock}))
			_, err = f.a.Start(ctx, "a-blocked", "+447400123450")
			require.ErrorAs(t, err, &blocked, "a's Start after b's block")
			assert.Equal(t, gb, blocked.Target)
			list, err = f.a.Overrides(ctx)
			require.NoError(t, err)
			assert.Equal(t, []otp.Override{{Target: gb, Action: otp.OverrideBlock}}, list, "a lists b's override")
		})
	}
}

// TestDeleteRecordOfAReplacedVerification: on Cluster, where the Record
// goes beside the Delete, a DeleteRecord that fails because the
// verification it checked was replaced meanwhile still counts that
// verification, which the vendor accepted, once; on standalone, one
// script, it counts only what it deleted. Either way the replacement
// counts when it is consumed, and a mark does not outlive its use.
func TestDeleteRecordOfAReplacedVerification(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.client(t)
			_, sharded := c.(*redis.ClusterClient)
			s := newStore(t, c, redisstore.Config{})
			ctx := t.Context()
			b := []otp.LimitRequest{{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
				Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}}}
			verified := func() string {
				t.Helper()
				n, err := c.HGet(ctx, s.BreakerKey("GB", time.Hour), "v").Result()
				require.NoError(t, err)
				return n
			}
			now := time.Now()
			old := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "old"}, To: ukMobile, Channel: otp.SMS,
				CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Minute)}
			next := old
			next.Ref.ID = "new"
			require.NoError(t, s.PutRecord(ctx, old, otp.OutcomeSent, b))
			require.NoError(t, s.PutRecord(ctx, next, otp.OutcomeSent, b))
			for range 2 {
				require.ErrorIs(t, s.DeleteRecord(ctx, "k", "old", otp.OutcomeVerified, b), otp.ErrNotFound)
			}
			assert.Equal(t, either(sharded, "0", "1"), verified(), "verifications counted for the replaced one")
			require.NoError(t, s.DeleteRecord(ctx, "k", "new", otp.OutcomeVerified, b))
			assert.Equal(t, either(sharded, "1", "2"), verified(), "and for its replacement")
			for _, id := range []string{"old", "new"} {
				n, err := c.Exists(ctx, s.MarkKey("k", id)).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "the mark of %s", id)
			}
		})
	}
}

// TestRoundTrips counts what a Verifier asks of Redis, through go-redis
// hooks: "steps" are the round trips one call waits for in turn, "nodes"
// the exchanges with single Redis nodes (on Cluster, those of one step run
// in parallel).
func TestRoundTrips(t *testing.T) {
	type want struct{ steps, nodes int }
	cases := []struct {
		backend                                                           backend
		start, repeat, wrong, wrongNoClient, right, rightNoClient, denied want
	}{
		// Standalone: one round trip per store call. Start: GetAllow and
		// PutRecord; a repeat: GetAllow; a wrong check: AllowAddAttempt; a
		// right one: AllowAddAttempt and DeleteRecord.
		{backends[0], want{2, 2}, want{1, 1}, want{1, 1}, want{1, 1}, want{2, 2}, want{2, 2}, want{1, 1}},
		// Cluster: Start claims, then takes the tokens, then sends the Put
		// and the Record to their two nodes in one pipeline; a repeat ends
		// at the claim; a check WithClient takes the token before it
		// reserves the attempt; a right check then sends the Delete and
		// the Record in one pipeline; a denied Start releases its claim.
		{backends[1], want{3, 4}, want{1, 1}, want{2, 2}, want{1, 1}, want{3, 4}, want{2, 3}, want{3, 3}},
	}
	for _, c := range cases {
		t.Run(c.backend.name, func(t *testing.T) {
			client := c.backend.client(t)
			store := newStore(t, client, redisstore.Config{})
			if cc, ok := client.(*redis.ClusterClient); ok {
				// A prefix that puts the verifications and the limits on
				// different nodes, as for most keys on a cluster of three.
				limits := func() string { return store.BucketKey(otp.ScopeTotal, "") }
				for i := 0; sameNode(t, cc, store.VerificationKey("k"), limits()) ||
					sameNode(t, cc, store.VerificationKey("k2"), limits()); i++ {
					require.Less(t, i, 100)
					store = newStore(t, client, redisstore.Config{})
				}
			}
			p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
			v, err := otp.NewVerifier(p, store, otp.Config{})
			require.NoError(t, err)
			steps, nodes := counted(client)
			ctx := t.Context()
			measure := func(name string, w want, f func() error) {
				t.Helper()
				steps.take()
				nodes.take()
				require.NoError(t, f(), name)
				assert.Equal(t, w, want{steps.take(), nodes.take()}, "%s: round trips (steps, node exchanges)", name)
			}
			ip := otp.WithClient("203.0.113.9")
			// Warm up: the first call of a script on a node whose cache
			// lacks it costs an extra EVAL, and a new connection its
			// handshake.
			loadScripts(t, client)
			for _, key := range []string{"warm-1", "warm-2", "warm-3"} {
				_, err := v.Start(ctx, key, ukMobile, ip)
				require.NoError(t, err)
				_, _ = v.Start(ctx, key, ukMobile, ip)
				_, _ = v.Check(ctx, key, wrongCode, ip)
				_, err = v.Check(ctx, key, fixedCode, ip)
				require.NoError(t, err)
			}

			measure("Start", c.start, func() error { _, err := v.Start(ctx, "k", ukMobile, ip); return err })
			measure("Start again", c.repeat, func() error { _, err := v.Start(ctx, "k", ukMobile, ip); return err })
			measure("Check wrong", c.wrong, func() error {
				_, err := v.Check(ctx, "k", wrongCode, ip)
				if errors.Is(err, otp.ErrWrongCode) {
					return nil
				}
				return err
			})
			measure("Check wrong without client", c.wrongNoClient, func() error {
				_, err := v.Check(ctx, "k", wrongCode)
				if errors.Is(err, otp.ErrWrongCode) {
					return nil
				}
				return err
			})
			measure("Check right", c.right, func() error { _, err := v.Check(ctx, "k", fixedCode, ip); return err })
			_, err = v.Start(ctx, "k2", ukMobile)
			require.NoError(t, err)
			measure("Check right without client", c.rightNoClient, func() error { _, err := v.Check(ctx, "k2", fixedCode); return err })
			require.NoError(t, v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("GB"), Action: otp.OverrideBlock}))
			measure("Start denied", c.denied, func() error {
				_, err := v.Start(ctx, "k3", ukMobile)
				if errors.Is(err, otp.ErrDestinationBlocked) {
					return nil
				}
				return fmt.Errorf("want a block: %w", err)
			})
		})
	}
}

// sameNode reports whether keys a and b are served by the same master.
func sameNode(t *testing.T, c *redis.ClusterClient, a, b string) bool {
	na, err := c.MasterForKey(t.Context(), a)
	require.NoError(t, err)
	nb, err := c.MasterForKey(t.Context(), b)
	require.NoError(t, err)
	return na.Options().Addr == nb.Options().Addr
}

// TestExpiryByTTL: a verification stops being live at ExpiresAt, and Redis
// drops it Retention (one second) later.
func TestExpiryByTTL(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.client(t)
			s := newStore(t, c, redisstore.Config{})
			ctx := t.Context()
			now := time.Now()
			v := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
				CreatedAt: now, SentAt: now, ExpiresAt: now.Add(300 * time.Millisecond)}
			require.NoError(t, s.Put(ctx, v))
			ttl, err := c.PTTL(ctx, s.VerificationKey("k")).Result()
			require.NoError(t, err)
			assert.Greater(t, ttl, time.Second, "the key outlives ExpiresAt by Retention")
			assert.LessOrEqual(t, ttl, 1300*time.Millisecond, "the key outlives ExpiresAt by Retention at most")

			time.Sleep(time.Until(v.ExpiresAt))
			for i := 0; ; i++ {
				_, err := s.Get(ctx, "k")
				if errors.Is(err, otp.ErrExpired) {
					break
				}
				require.NoError(t, err)
				require.Less(t, i, 100, "never expired")
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Until(v.ExpiresAt.Add(time.Second + 20*time.Millisecond)))
			n, err := c.Exists(ctx, s.VerificationKey("k")).Result()
			require.NoError(t, err)
			assert.Zero(t, n, "the key outlived ExpiresAt by more than a second")
			_, err = s.Get(ctx, "k")
			assert.ErrorIs(t, err, otp.ErrNotFound)
		})
	}
}

// TestAnyYear: times round-trip, and expiry and claims work, by a clock of
// any year, on each backend.
func TestAnyYear(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.client(t)
			otptest.TestStoreAnyYear(t, func(clock otp.Clock) otp.Store {
				return newStore(t, c, redisstore.Config{Clock: clock})
			})
		})
	}
}

// TestClock: with Config.Clock the store reads a fake clock, for expiry
// and limits; Redis still drops keys in real time.
func TestClock(t *testing.T) {
	be := backends[0]
	clock := otptest.NewClock(time.Now())
	s := newStore(t, be.client(t), redisstore.Config{Clock: clock})
	ctx := t.Context()
	now := clock.Now()
	v := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, s.Put(ctx, v))
	clock.Advance(time.Hour - time.Nanosecond)
	_, err := s.Get(ctx, "k")
	require.NoError(t, err, "a nanosecond before ExpiresAt")
	clock.Advance(time.Nanosecond)
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrExpired, "at ExpiresAt")

	r := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 2, Per: time.Hour}}}
	require.NoError(t, s.Allow(ctx, r))
	require.NoError(t, s.Allow(ctx, r))
	err = s.Allow(ctx, r)
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 30*time.Minute, rl.RetryAfter)
	clock.Advance(30*time.Minute - time.Microsecond)
	require.ErrorAs(t, s.Allow(ctx, r), &rl)
	assert.Equal(t, time.Microsecond, rl.RetryAfter)
	clock.Advance(time.Microsecond)
	require.NoError(t, s.Allow(ctx, r), "a token is back after Per/N")

	// A claim ends at its Until by the Clock, before Redis drops it.
	_, err = s.Claim(ctx, "c", otp.Claim{Token: "a", Until: clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	clock.Advance(time.Minute - time.Nanosecond)
	_, err = s.Claim(ctx, "c", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.ErrorIs(t, err, otp.ErrSendInFlight, "a nanosecond before the claim's Until")
	clock.Advance(time.Nanosecond)
	_, err = s.Claim(ctx, "c", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.NoError(t, err, "at the claim's Until")
}

func TestBadLimitChargesNothing(t *testing.T) {
	s := newStore(t, standalone(t), redisstore.Config{})
	ctx := t.Context()
	good := otp.LimitRequest{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1, Per: time.Hour}}
	for _, bad := range []otp.Limit{{N: 0, Per: time.Hour}, {N: 1}, {N: 1, Per: -time.Second}} {
		err := s.Allow(ctx, []otp.LimitRequest{good, {Scope: otp.ScopeClient, Key: "c", Limit: bad}})
		require.Error(t, err, "limit %+v", bad)
		assert.NotErrorIs(t, err, otp.ErrRateLimited)
		_, err = s.GetAllow(ctx, "k", otp.Spare{}, otp.Claim{Token: "t", Until: time.Now().Add(time.Hour)},
			[]otp.LimitRequest{good, {Scope: otp.ScopeClient, Limit: bad}})
		require.Error(t, err, "limit %+v", bad)
	}
	for _, bad := range []time.Duration{0, -time.Hour, time.Nanosecond} {
		b := otp.LimitRequest{Kind: otp.LimitBreaker, Key: "GB", Breaker: otp.Conversion{Window: bad}}
		err := s.Allow(ctx, []otp.LimitRequest{good, b})
		require.Error(t, err, "breaker window %v", bad)
		assert.NotErrorIs(t, err, otp.ErrChallengeRequired)
		require.Error(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{b}), "breaker window %v", bad)
	}
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{good}), "nothing was charged")
	_, err := s.Claim(ctx, "k", otp.Claim{Token: "u", Until: time.Now().Add(time.Hour)})
	require.NoError(t, err, "nothing was claimed")
}

// TestRedisErrorsAreUnavailable: whatever Redis answers that is not a
// verification, and a cancelled context, are ErrStoreUnavailable.
func TestRedisErrorsAreUnavailable(t *testing.T) {
	c := standalone(t)
	s := newStore(t, c, redisstore.Config{})
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, s.VerificationKey("k"), "not a hash", time.Minute).Err())
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, otp.ErrStoreUnavailable)
	_, err = s.AddAttempt(ctx, "k", 5)
	assert.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.ErrorIs(t, s.MarkSent(ctx, "k", "id", time.Now()), otp.ErrStoreUnavailable)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Get(cancelled, "other")
	assert.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotContains(t, err.Error(), "other", "errors do not name the key")
}

// TestBucketTTL: Redis drops a limit bucket when it is full again, by the
// server's clock (an absolute expiry) or by Config.Clock (a relative one,
// as the fake time is not Redis's; rounded up to the millisecond); a
// verified outcome gives a token back, and the bucket goes once full; a
// repeat inside the cooldown leaves it where it was.
func TestBucketTTL(t *testing.T) {
	limit := otp.Limit{N: 10, Per: 10 * time.Second} // a token back every second
	onEachClock(t, func(t *testing.T, c redis.UniversalClient, clock otp.Clock, now func() time.Time) {
		s := newStore(t, c, redisstore.Config{Clock: clock})
		ctx := t.Context()
		bucket := s.BucketKey(otp.ScopeRange, ukMobile)
		r := []otp.LimitRequest{{Scope: otp.ScopeRange, Key: ukMobile, Limit: limit, Refund: true}}
		ttl := func() time.Duration { t.Helper(); return pttl(t, c, bucket) }
		for range 3 {
			require.NoError(t, s.Allow(ctx, r))
		}
		d := ttl()
		assert.Greater(t, d, 2800*time.Millisecond, "three tokens taken: full again in three seconds")
		assert.LessOrEqual(t, d, 3*time.Second+time.Millisecond, "three tokens taken: full again in three seconds")

		claim := otp.Claim{Token: "t", Until: now().Add(time.Hour)}
		_, err := s.GetAllow(ctx, "k", otp.Spare{}, claim, r)
		require.NoError(t, err)
		assert.Greater(t, ttl(), 3800*time.Millisecond, "a fourth token taken")
		v := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
			CreatedAt: now(), SentAt: now(), ExpiresAt: now().Add(time.Hour)}
		require.NoError(t, s.Put(ctx, v))
		spare := otp.Spare{To: ukMobile, Now: now(), Cooldowns: []time.Duration{time.Minute}}
		_, err = s.GetAllow(ctx, "k", spare, claim, r)
		require.NoError(t, err)
		d = ttl()
		assert.Greater(t, d, 3700*time.Millisecond, "the repeat took nothing")
		assert.LessOrEqual(t, d, 4*time.Second+time.Millisecond, "the repeat took nothing")

		require.NoError(t, s.Record(ctx, otp.OutcomeVerified, r))
		d = ttl()
		assert.Greater(t, d, 2700*time.Millisecond, "a verified send gives its token back")
		assert.LessOrEqual(t, d, 3*time.Second+time.Millisecond, "a verified send gives its token back")
		for range 3 {
			require.NoError(t, s.Record(ctx, otp.OutcomeVerified, r))
		}
		n, err := c.Exists(ctx, bucket).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "a bucket full again is deleted")
	})
}

// onEachClock runs f on a client of each backend, with the server's clock
// (clock nil) and with a fake one an hour behind; now tells the time of
// the one in use.
func onEachClock(t *testing.T, f func(t *testing.T, c redis.UniversalClient, clock otp.Clock, now func() time.Time)) {
	for _, fake := range []bool{false, true} {
		for _, be := range backends {
			name := "server-clock/" + be.name
			if fake {
				name = "fake-clock/" + be.name
			}
			t.Run(name, func(t *testing.T) {
				if !fake {
					f(t, be.client(t), nil, time.Now)
					return
				}
				clock := otptest.NewClock(time.Now().Add(-time.Hour))
				f(t, be.client(t), clock, clock.Now)
			})
		}
	}
}

// pttl returns the TTL of key.
func pttl(t *testing.T, c redis.UniversalClient, key string) time.Duration {
	t.Helper()
	d, err := c.PTTL(t.Context(), key).Result()
	require.NoError(t, err)
	return d
}

// TestStateTTL: what the scripts keep goes once it can change no answer:
// a claim at its Until (one already over is not kept), a breaker when its
// counts have left the sliding window, at the end of the window after
// its current one, or if later, when its young sends have left theirs, at
// the end of the window of Grace after its current one, a send's mark (on Cluster) five minutes after its
// verification expires, the overrides when the last of them ends (never
// while one has no Until); by the server's clock or by Config.Clock.
func TestStateTTL(t *testing.T) {
	onEachClock(t, func(t *testing.T, c redis.UniversalClient, clock otp.Clock, now func() time.Time) {
		s := newStore(t, c, redisstore.Config{Clock: clock})
		ctx := t.Context()
		ttl := func(key string) time.Duration { t.Helper(); return pttl(t, c, key) }
		// within checks a TTL of about to, rounded up to the
		// millisecond.
		within := func(d, from, to time.Duration, msg string) {
			t.Helper()
			to += time.Millisecond
			assert.True(t, d > from && d <= to, "%s: TTL %v outside (%v, %v]", msg, d, from, to)
		}

		_, err := s.Claim(ctx, "k", otp.Claim{Token: "t", Until: now().Add(time.Minute)})
		require.NoError(t, err)
		within(ttl(s.ClaimKey("k")), 59*time.Second, time.Minute, "a claim")
		_, err = s.Claim(ctx, "over", otp.Claim{Token: "t", Until: now().Add(-time.Second)})
		require.NoError(t, err)
		assert.Equal(t, time.Duration(-2), ttl(s.ClaimKey("over")), "a claim already over is not kept")

		win := time.Minute
		b := []otp.LimitRequest{{Kind: otp.LimitBreaker, Key: "GB", Breaker: otp.Conversion{Window: win, MinSends: 1}}}
		require.NoError(t, s.Record(ctx, otp.OutcomeSent, b))
		end := time.UnixMicro((now().UnixMicro()/win.Microseconds() + 2) * win.Microseconds())
		left := end.Sub(now())
		within(ttl(s.BreakerKey("GB", win)), left-time.Second, left, "a breaker")

		// A Grace of more than half the window may end later. On the fake
		// clock, 55 s into 5 minutes (of 5 windows, and 6 of the Grace) the
		// window ends 65 s on, the young sends' 95 s on.
		grace := 50 * time.Second
		if clock != nil {
			clock.(*otptest.Clock).Advance(5*time.Minute + 55*time.Second - now().Sub(now().Truncate(5*time.Minute)))
		}
		g := []otp.LimitRequest{{Kind: otp.LimitBreaker, Key: "JM", Breaker: otp.Conversion{Window: win, MinSends: 1, Grace: grace}}}
		require.NoError(t, s.Record(ctx, otp.OutcomeSent, g))
		end = time.UnixMicro((now().UnixMicro()/win.Microseconds() + 2) * win.Microseconds())
		young := time.UnixMicro((now().UnixMicro()/grace.Microseconds() + 2) * grace.Microseconds())
		if clock != nil {
			require.True(t, young.After(end), "the young sends' windows end later")
		}
		if young.After(end) {
			end = young
		}
		left = end.Sub(now())
		within(ttl(s.BreakerKey("JM", win)), left-time.Second, left, "a breaker with a Grace")

		v := otp.Verification{Key: "sent", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
			CreatedAt: now(), SentAt: now(), ExpiresAt: now().Add(time.Minute)}
		require.NoError(t, s.PutRecord(ctx, v, otp.OutcomeSent, b))
		if _, sharded := c.(*redis.ClusterClient); sharded {
			// Six minutes from v's making, rounded up to the millisecond
			// twice: by the script and by PTTL.
			within(ttl(s.MarkKey("sent", "id")), 6*time.Minute-time.Second, 6*time.Minute+time.Millisecond, "a send's mark")
		} else {
			assert.Equal(t, time.Duration(-2), ttl(s.MarkKey("sent", "id")), "no mark on standalone")
		}

		set := func(tg otp.Target, a otp.Action, until time.Duration) {
			t.Helper()
			o := otp.Override{Target: tg, Action: a}
			if until > 0 {
				o.Until = now().Add(until)
			}
			require.NoError(t, s.SetOverride(ctx, o))
		}
		jm, gb, us := otp.RegionTarget("JM"), otp.RegionTarget("GB"), otp.RegionTarget("US")
		set(jm, otp.OverrideBlock, time.Minute)
		within(ttl(s.OverridesKey()), 59*time.Second, time.Minute, "one override")
		set(gb, otp.OverrideChallenge, 2*time.Minute)
		within(ttl(s.OverridesKey()), 119*time.Second, 2*time.Minute, "the later of two")
		set(us, otp.OverrideAllow, 0)
		assert.Equal(t, time.Duration(-1), ttl(s.OverridesKey()), "an override without Until")
		set(us, otp.OverrideNone, 0)
		within(ttl(s.OverridesKey()), 119*time.Second, 2*time.Minute, "without it")
		set(gb, otp.OverrideNone, 0)
		set(jm, otp.OverrideNone, 0)
		assert.Equal(t, time.Duration(-2), ttl(s.OverridesKey()), "no override left")

		if clock != nil {
			// An override that has ended goes when the next is set.
			set(jm, otp.OverrideBlock, time.Minute)
			set(us, otp.OverrideAllow, 0)
			clock.(*otptest.Clock).Advance(time.Minute)
			set(gb, otp.OverrideChallenge, time.Hour)
			fields, err := c.HKeys(ctx, s.OverridesKey()).Result()
			require.NoError(t, err)
			assert.ElementsMatch(t, []string{us.Key(), gb.Key()}, fields, "the overrides kept")
		}
	})
}
