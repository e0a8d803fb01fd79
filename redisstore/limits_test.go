package redisstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// TestLimiterMatchesMemoryLimiter: a random run of Allow, Record and
// SetOverride calls, on a clock that moves by seconds to hours, across
// the windows of the breakers and of their Graces, gets the same answers
// from the Store as from otp.MemoryLimiter, the reference: the scripts
// apply the same rules with the same arithmetic. The requests come in any
// order, and often with a region's breaker just before a Fallback group
// breaker, as the Verifier sends them; breakers come with a Grace (one of
// them more than half its window) and without, and a third limiter, fed
// the same calls without Graces, shows that the run meets answers the
// Grace changes; overrides come with and without Challenge.
func TestLimiterMatchesMemoryLimiter(t *testing.T) {
	buckets := []otp.LimitRequest{
		{Scope: otp.ScopeNumber, Key: "n", Limit: otp.Limit{N: 3, Per: 3 * time.Minute}},
		{Scope: otp.ScopeClient, Key: "c", Limit: otp.Limit{N: 2, Per: time.Hour}},
		{Scope: otp.ScopeRange, Key: "r", Limit: otp.Limit{N: 3, Per: 24 * time.Hour}, Challenge: true, Refund: true},
		{Scope: otp.ScopeChallenged, Key: "x", Limit: otp.Limit{N: 2, Per: time.Hour}, Challenge: true, Refund: true},
		{Scope: otp.ScopeTotal, Limit: otp.Limit{N: 40, Per: time.Hour}, Refund: true},
	}
	// A breaker is its key and window: each has one Grace, as a Guard
	// sends it (GB none).
	breakers := []otp.LimitRequest{
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
			Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}},
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "+1",
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.4, Grace: 90 * time.Second}},
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "+1",
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.4, Grace: 90 * time.Second,
				RecordOnly: true}},
	}
	// Regions of +1 and their group, which stands in for a quiet one.
	members := []otp.LimitRequest{
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "JM",
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.4, Grace: 30 * time.Second}},
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "CA",
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 5, MinShare: 0.5, Grace: 6 * time.Minute}},
		breakers[0],
	}
	groups := []otp.LimitRequest{
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "+1", Fallback: true,
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.4, Grace: 90 * time.Second}},
		{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "+1", Fallback: true,
			Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.4, Grace: 90 * time.Second,
				RecordOnly: true}},
	}
	targets := []otp.Target{otp.RegionTarget("GB"), otp.CallingCodeTarget(1), otp.RangeTarget("+44740012xxxx")}
	var overrides []otp.LimitRequest
	for _, tg := range targets {
		for _, challenge := range []bool{true, false} {
			overrides = append(overrides, otp.LimitRequest{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: tg.Key(),
				Challenge: challenge})
		}
	}
	all := slices.Concat(buckets, breakers, members, groups, overrides)
	actions := []otp.Action{otp.OverrideNone, otp.OverrideBlock, otp.OverrideChallenge, otp.OverrideAllow}
	outcomes := []otp.Outcome{otp.OutcomeSent, otp.OutcomeSentChallenged, otp.OutcomeVerified}
	steps := []time.Duration{0, time.Microsecond, time.Second, 20 * time.Second, 45 * time.Second, 7 * time.Minute,
		40 * time.Minute, 3 * time.Hour}

	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			clock := otptest.NewClock(time.Date(2026, 3, 1, 12, 34, 56, 789, time.UTC))
			s := newStore(t, be.client(t), redisstore.Config{Clock: clock})
			m := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock})
			graceless := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock})
			rng := rand.New(rand.NewPCG(11, 1))
			// some returns a few of all, in a random order, and half the
			// time a member region's breaker followed by a group's.
			some := func() []otp.LimitRequest {
				var out []otp.LimitRequest
				for _, i := range rng.Perm(len(all)) {
					if rng.IntN(3) == 0 {
						out = append(out, all[i])
					}
				}
				if rng.IntN(2) == 0 {
					out = slices.Insert(out, rng.IntN(len(out)+1),
						members[rng.IntN(len(members))], groups[rng.IntN(len(groups))])
				}
				return out
			}
			decisions, graced := map[string]int{}, 0
			for step := range 3000 {
				switch op := rng.IntN(20); {
				case op < 10:
					reqs := some()
					want, got := m.Allow(ctx, reqs), s.Allow(ctx, reqs)
					requireSameDecision(t, want, got, "step %d: Allow(%v)", step, reqs)
					decisions[kind(want)]++
					if kind(graceless.Allow(ctx, withoutGrace(reqs))) != kind(want) {
						graced++
					}
				case op < 16:
					o, reqs := outcomes[rng.IntN(len(outcomes))], some()
					require.NoError(t, m.Record(ctx, o, reqs))
					require.NoError(t, graceless.Record(ctx, o, withoutGrace(reqs)))
					require.NoError(t, s.Record(ctx, o, reqs), "step %d", step)
				case op < 17:
					o := otp.Override{Target: targets[rng.IntN(len(targets))], Action: actions[rng.IntN(len(actions))]}
					// Redis drops the overrides in real time, by their TTL
					// on the fake clock: no Until is so near that it does
					// while the test runs.
					if d := steps[rng.IntN(len(steps))]; d >= 7*time.Minute {
						o.Until = clock.Now().Add(d)
					}
					require.NoError(t, m.SetOverride(ctx, o))
					require.NoError(t, graceless.SetOverride(ctx, o))
					require.NoError(t, s.SetOverride(ctx, o), "step %d", step)
				default:
					clock.Advance(steps[rng.IntN(len(steps))])
				}
			}
			// The run met every kind of answer, enough times to mean something.
			for _, k := range []string{"ok", "limited", "challenge", "blocked"} {
				assert.Greater(t, decisions[k], 20, "%s answers in %v", k, decisions)
			}
			assert.Greater(t, graced, 20, "answers the Graces changed, of %v", decisions)
			t.Logf("answers: %v; the Graces changed %d", decisions, graced)

			want, err := m.Overrides(ctx)
			require.NoError(t, err)
			live := want[:0]
			for _, o := range want {
				if o.Until.IsZero() || clock.Now().Before(o.Until) {
					live = append(live, o)
				}
			}
			got, err := s.Overrides(ctx)
			require.NoError(t, err)
			assert.Equal(t, live, got, "the overrides in force")
		})
	}
}

// withoutGrace returns reqs with the Grace of every breaker off.
func withoutGrace(reqs []otp.LimitRequest) []otp.LimitRequest {
	out := slices.Clone(reqs)
	for i := range out {
		out[i].Breaker.Grace = 0
	}
	return out
}

func kind(err error) string {
	var (
		rl *otp.RateLimitError
		ce *otp.ChallengeError
		be *otp.BlockedError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &rl):
		return "limited"
	case errors.As(err, &ce):
		return "challenge"
	case errors.As(err, &be):
		return "blocked"
	}
	return "other"
}

// requireSameDecision fails the test unless got is the decision want is:
// the same error type, scope and target, and a RetryAfter within a
// millisecond (x/time/rate computes it in float nanoseconds, the scripts
// in microseconds).
func requireSameDecision(t *testing.T, want, got error, msgAndArgs ...any) {
	t.Helper()
	msg := fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...)
	var (
		wr, gr *otp.RateLimitError
		wc, gc *otp.ChallengeError
		wb, gb *otp.BlockedError
	)
	switch {
	case want == nil:
		require.NoError(t, got, msg)
	case errors.As(want, &wr):
		require.ErrorAs(t, got, &gr, "%s: want %v", msg, want)
		require.Equal(t, wr.Scope, gr.Scope, msg)
		require.InDelta(t, wr.RetryAfter, gr.RetryAfter, float64(time.Millisecond), msg)
	case errors.As(want, &wc):
		require.ErrorAs(t, got, &gc, "%s: want %v", msg, want)
		require.Equal(t, wc.Scope, gc.Scope, msg)
		require.InDelta(t, wc.RetryAfter, gc.RetryAfter, float64(time.Millisecond), msg)
	case errors.As(want, &wb):
		require.ErrorAs(t, got, &gb, "%s: want %v", msg, want)
		require.Equal(t, wb.Target, gb.Target, msg)
	default:
		t.Fatalf("%s: unexpected reference answer %v", msg, want)
	}
}

// TestAllowedCountsNoRefusal: a destination an override allows skips the
// breakers, so an open one counts no refusal for it, as in
// otp.MemoryLimiter: once verifications come, the breaker closes as if
// the allowed calls had never been.
func TestAllowedCountsNoRefusal(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, be.client(t), redisstore.Config{})
			b := otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
				Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}}
			trusted := otp.RangeTarget("+44740012xxxx")
			require.NoError(t, s.SetOverride(ctx, otp.Override{Target: trusted, Action: otp.OverrideAllow}))
			allowed := []otp.LimitRequest{{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: trusted.Key()}, b}
			for range 4 {
				require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{b}))
			}
			require.NoError(t, s.Record(ctx, otp.OutcomeVerified, []otp.LimitRequest{b}))
			for range 5 {
				require.NoError(t, s.Allow(ctx, allowed), "an allowed destination, breaker open")
			}
			require.NoError(t, s.Record(ctx, otp.OutcomeVerified, []otp.LimitRequest{b}))
			require.NoError(t, s.Allow(ctx, []otp.LimitRequest{b}), "2 verified of 4 sends, no refusal")
		})
	}
}

// TestGetAllowSpareCooldowns: GetAllow spares the repeat by the cooldown
// of its Sends, as otp.Spare.Matches does, for every number of sends,
// schedule and moment around the cooldown's end.
func TestGetAllowSpareCooldowns(t *testing.T) {
	schedules := [][]time.Duration{nil, {time.Minute}, {time.Minute, 5 * time.Minute, 30 * time.Minute}}
	offsets := []time.Duration{-time.Nanosecond, 0, 59 * time.Second, time.Minute - time.Nanosecond, time.Minute,
		5*time.Minute - time.Nanosecond, 5 * time.Minute, 30*time.Minute - time.Nanosecond, 30 * time.Minute}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, be.client(t), redisstore.Config{})
			// An empty bucket: GetAllow refuses whatever is not the repeat.
			empty := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: "empty", Limit: otp.Limit{N: 1, Per: time.Hour}}}
			require.NoError(t, s.Allow(ctx, empty))
			now := time.Now()
			spared := 0
			for sends := range 5 {
				v := otp.Verification{Key: fmt.Sprint("k", sends), Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile,
					Channel: otp.SMS, Sends: sends, CreatedAt: now, SentAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
				require.NoError(t, s.Put(ctx, v))
				for _, cd := range schedules {
					for _, off := range offsets {
						spare := otp.Spare{To: ukMobile, Now: v.SentAt.Add(off), Cooldowns: cd}
						got, err := s.GetAllow(ctx, v.Key, spare, otp.Claim{Token: "t", Until: now.Add(time.Hour)}, empty)
						if spare.Matches(v) {
							spared++
							require.NoError(t, err, "sends %d, cooldowns %v, %v after SentAt: the repeat", sends, cd, off)
							assert.Equal(t, v.Ref.ID, got.Ref.ID)
						} else {
							require.ErrorIs(t, err, otp.ErrRateLimited, "sends %d, cooldowns %v, %v after SentAt: not the repeat", sends, cd, off)
						}
					}
				}
			}
			assert.Greater(t, spared, 20, "repeats among the cases")
		})
	}
}

// TestYoungSendsOffsetNoRefusal: the young sends are taken from the sends
// only, never below none, so that they cannot cancel a breaker's
// refusals: sends made at the end of a window still count whole as young
// once the next has begun, where the sliding window weighs them less.
// Step by step on one clock, the Store answers as otp.MemoryLimiter does,
// and the breaker, open on its refusals, stays open.
func TestYoungSendsOffsetNoRefusal(t *testing.T) {
	b := []otp.LimitRequest{{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "JM",
		Breaker: otp.Conversion{Window: 10 * time.Minute, MinSends: 3, MinShare: 0.5, Grace: 6 * time.Minute}}}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			// t0 begins a window of each: 30 minutes are 3 of 10 and 5 of 6.
			t0 := time.Unix(1_800_000_000/1800*1800, 0)
			clock := otptest.NewClock(t0)
			s := newStore(t, be.client(t), redisstore.Config{Clock: clock})
			m := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock})
			at := func(d time.Duration) { clock.Advance(t0.Add(d).Sub(clock.Now())) }
			record := func(n int) {
				t.Helper()
				for range n {
					require.NoError(t, m.Record(ctx, otp.OutcomeSent, b))
					require.NoError(t, s.Record(ctx, otp.OutcomeSent, b))
				}
			}
			allow := func(msg string) error {
				t.Helper()
				want, got := m.Allow(ctx, b), s.Allow(ctx, b)
				requireSameDecision(t, want, got, "%s", msg)
				return want
			}

			record(5)
			at(13 * time.Minute) // 3.5 unverified sends past their grace: open
			for i := range 10 {
				requireChallenge(t, allow(fmt.Sprint("refusal ", i+1)), otp.ScopeConversion)
			}
			at(20*time.Minute - time.Second)
			record(10) // young: no demand
			requireChallenge(t, allow("the refusals, and 10 young sends"), otp.ScopeConversion)
			at(24 * time.Minute)
			// 6 of the 10 sends are left in the sliding window, all 10 still
			// young, and 6.6 of the 11 refusals: demand 0 + 6.6, not
			// -4 + 6.6, which is too little to be judged.
			requireChallenge(t, allow("6 refusals and the young sends"), otp.ScopeConversion)
		})
	}
}
