package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

func TestNewValidatesConfig(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	defer pool.Close()
	for name, cfg := range map[string]pgstore.Config{
		"upper-case schema":  {Schema: "Public"},
		"quoted schema":      {Schema: `a"b`},
		"prefix with a dot":  {Prefix: "otp."},
		"long prefix":        {Prefix: strings.Repeat("p", 25)},
		"negative retention": {Retention: -time.Second},
		"negative batch":     {CleanBatch: -1},
		"short key secret":   {KeySecret: []byte("fifteen bytes!!")},
		"empty key secret":   {KeySecret: []byte{}},
	} {
		_, err := pgstore.New(pool, cfg)
		assert.Error(t, err, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "fifteen", "%s: the error holds no secret", name)
		}
		if cfg.KeySecret == nil && cfg.Retention >= 0 && cfg.CleanBatch >= 0 {
			// Refused before any connection: the pool reaches no server.
			err := pgstore.Migrate(context.Background(), pool, cfg)
			assert.Error(t, err, "Migrate, %s", name)
			assert.NotErrorIs(t, err, otp.ErrStoreUnavailable, "Migrate, %s: refused, not unreachable", name)
		}
	}
	_, err = pgstore.New(nil, pgstore.Config{})
	assert.Error(t, err, "nil pool")
	assert.Error(t, pgstore.Migrate(context.Background(), nil, pgstore.Config{}), "Migrate on a nil pool")
	s, err := pgstore.New(pool, pgstore.Config{Schema: "app", Prefix: "otp_v2_", Retention: time.Millisecond, CleanInterval: -1})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestErrorsHoldNoSecret: a database that cannot be reached is
// ErrStoreUnavailable, and the error holds neither the password of the
// URL nor the key or number of the call.
func TestErrorsHoldNoSecret(t *testing.T) {
	const password = "s3cr3t-pa55w0rd"
	cfg, err := pgxpool.ParseConfig("postgres://app:" + password + "@127.0.0.1:1/otp?connect_timeout=1")
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	s, err := pgstore.New(pool, pgstore.Config{CleanInterval: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.Get(ctx, "the-key")
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	for _, err := range []error{err, s.Put(ctx, sample("the-key", time.Now(), time.Minute)), s.CheckSchema(ctx),
		pgstore.Migrate(ctx, pool, pgstore.Config{})} {
		require.Error(t, err)
		assert.ErrorIs(t, err, otp.ErrStoreUnavailable)
		for _, secret := range []string{password, "the-key", ukMobile} {
			assert.NotContains(t, err.Error(), secret)
		}
	}
}

// TestNotMigrated: on tables that were never made, every call says to run
// Migrate, and CheckSchema tells at start.
func TestNotMigrated(t *testing.T) {
	pool := newPool(t)
	s := newStore(t, pool, pgstore.Config{Schema: testSchema(t), Prefix: "never_migrated_"})
	ctx := t.Context()
	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	require.ErrorIs(t, s.Allow(ctx, []otp.LimitRequest{{Scope: otp.ScopeTotal, Limit: otp.Limit{N: 1, Per: time.Hour}}}),
		pgstore.ErrNotMigrated)
	require.ErrorIs(t, s.CheckSchema(ctx), pgstore.ErrNotMigrated)
	require.NoError(t, newStore(t, pool, pgstore.Config{}).CheckSchema(ctx), "CheckSchema on the migrated tables")
}

// TestMigrate: Migrate makes the schema and tables, runs from several
// processes at once without harm, changes nothing when run again, and
// leaves a newer schema alone.
func TestMigrate(t *testing.T) {
	ctx := t.Context()
	testSchema(t) // dropped at the end of the run, with the other
	cfg := pgstore.Config{Schema: freshSchema()}
	t.Cleanup(func() { _ = dropSchema(testenv.Postgres(t), cfg.Schema) })
	pools := []*pgxpool.Pool{newPool(t), newPool(t), newPool(t), newPool(t)}
	errs := race(len(pools), func(i int) error { return pgstore.Migrate(ctx, pools[i], cfg) })
	for i, err := range errs {
		require.NoError(t, err, "concurrent Migrate #%d", i)
	}
	require.NoError(t, pgstore.Migrate(ctx, pools[0], cfg), "Migrate again")
	var versions int
	require.NoError(t, pools[0].QueryRow(ctx, "SELECT count(*) FROM "+cfg.Schema+".otp_schema_version").Scan(&versions))
	assert.Equal(t, pgstore.SchemaVersion, versions, "versions applied")

	cfg.KeySecret = secret()
	s := newStore(t, pools[1], cfg)
	require.NoError(t, s.CheckSchema(ctx))
	require.NoError(t, s.Put(ctx, sample("k", time.Now(), time.Minute)))
	_, err := s.Get(ctx, "k")
	require.NoError(t, err)

	// Another prefix in the same schema: tables of its own.
	other := cfg
	other.Prefix = "other_"
	require.NoError(t, pgstore.Migrate(ctx, pools[0], other))
	_, err = newStore(t, pools[2], other).Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrNotFound, "another prefix shares nothing")

	_, err = pools[0].Exec(ctx, "INSERT INTO "+cfg.Schema+".otp_schema_version (version) VALUES (99)")
	require.NoError(t, err)
	require.ErrorIs(t, pgstore.Migrate(ctx, pools[0], cfg), pgstore.ErrSchemaNewer)
	require.ErrorIs(t, s.CheckSchema(ctx), pgstore.ErrSchemaNewer)
}

// TestKeysAreDigests: no primary key holds the caller's key, a number or
// a client ID; the number the code went to is kept as data, as the
// Verifier gave it.
func TestKeysAreDigests(t *testing.T) {
	pool, s := isolatedStore(t, pgstore.Config{CleanInterval: -1})
	ctx := t.Context()
	v := sample("user-42@example.com", time.Now(), time.Minute)
	v.Ref.ID = "vendor-ref"
	require.NoError(t, s.Put(ctx, v))
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{
		{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 5, Per: time.Hour}},
		{Scope: otp.ScopeClient, Key: "203.0.113.9", Limit: otp.Limit{N: 5, Per: time.Hour}},
	}))
	var dump string
	require.NoError(t, pool.QueryRow(ctx, "SELECT (SELECT string_agg(v::text, ' ') FROM "+s.Table("verifications")+
		" v) || (SELECT string_agg(b::text, ' ') FROM "+s.Table("buckets")+" b)").Scan(&dump))
	// Neither as text nor inside a bytea, shown in hex.
	for _, raw := range []string{"user-42", "203.0.113.9"} {
		assert.NotContains(t, dump, raw)
		assert.NotContains(t, dump, fmt.Sprintf("%x", raw))
	}
	assert.NotContains(t, dump, fmt.Sprintf("%x", ukMobile))
	assert.Equal(t, 1, strings.Count(dump, ukMobile), "the number is the verification's data, and no bucket's id: %s", dump)
	var scopes string
	require.NoError(t, pool.QueryRow(ctx, "SELECT string_agg(scope, ',' ORDER BY scope) FROM "+s.Table("buckets")).Scan(&scopes))
	assert.Equal(t, "client,number", scopes, "the scopes stay readable")
}

// TestClock: with Config.Clock the store reads a fake clock, for expiry,
// claims and limits; a bucket's wait is exact to the nanosecond.
func TestClock(t *testing.T) {
	clock := otptest.NewClock(time.Now())
	s := newStore(t, newPool(t), pgstore.Config{Clock: clock})
	ctx := t.Context()
	r := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 2, Per: time.Hour}}}
	require.NoError(t, s.Allow(ctx, r))
	require.NoError(t, s.Allow(ctx, r))
	var rl *otp.RateLimitError
	require.ErrorAs(t, s.Allow(ctx, r), &rl)
	assert.Equal(t, 30*time.Minute, rl.RetryAfter)
	clock.Advance(30*time.Minute - time.Nanosecond)
	require.ErrorAs(t, s.Allow(ctx, r), &rl)
	assert.Equal(t, time.Nanosecond, rl.RetryAfter)
	clock.Advance(time.Nanosecond)
	require.NoError(t, s.Allow(ctx, r), "a token is back after Per/N")

	_, err := s.Claim(ctx, "k", otp.Claim{Token: "a", Until: clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	clock.Advance(time.Minute - time.Nanosecond)
	_, err = s.Claim(ctx, "k", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.ErrorIs(t, err, otp.ErrSendInFlight, "a nanosecond before the claim's Until")
	clock.Advance(time.Nanosecond)
	_, err = s.Claim(ctx, "k", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.NoError(t, err, "at the claim's Until")
}

// TestBadRequestChargesNothing: a limit that cannot be applied fails the
// call before it reaches PostgreSQL.
func TestBadRequestChargesNothing(t *testing.T) {
	s := newStore(t, newPool(t), pgstore.Config{})
	ctx := t.Context()
	good := otp.LimitRequest{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1, Per: time.Hour}}
	bads := []otp.LimitRequest{
		{Scope: otp.ScopeClient, Key: "c", Limit: otp.Limit{N: 0, Per: time.Hour}},
		{Scope: otp.ScopeClient, Key: "c", Limit: otp.Limit{N: 1}},
		{Scope: otp.ScopeClient, Key: "c", Limit: otp.Limit{N: 1, Per: -time.Second}},
		{Kind: otp.LimitBreaker, Key: "GB", Breaker: otp.Conversion{MinSends: 4}},
	}
	for _, bad := range bads {
		err := s.Allow(ctx, []otp.LimitRequest{good, bad})
		require.ErrorIs(t, err, pgstore.ErrBadRequest, "%+v", bad)
		assert.NotErrorIs(t, err, otp.ErrRateLimited)
		_, err = s.GetAllow(ctx, "k", otp.Spare{}, otp.Claim{Token: "t"}, []otp.LimitRequest{good, bad})
		require.ErrorIs(t, err, pgstore.ErrBadRequest, "%+v", bad)
		_, err = s.AllowAddAttempt(ctx, "k", 5, []otp.LimitRequest{good, bad})
		require.ErrorIs(t, err, pgstore.ErrBadRequest, "%+v", bad)
	}
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{good}), "nothing was charged")
}

// TestSameAnswersAsMemoryLimiter runs one long random sequence of Allow,
// Record and SetOverride calls on pgstore and on otp.MemoryLimiter, with
// one fake clock moving by odd steps, and requires the same answer from
// both every time: the same error type, scope and target, and a
// RetryAfter within a microsecond (x/time/rate computes in floating
// point, GCRA in integer nanoseconds). Breakers come alone or followed by
// a Fallback group breaker, as the Verifier asks for them, with a Grace of
// their own (none for some, and graces that are no divisor of the window)
// and override requests with or without Challenge. Two more limiters, fed
// the same calls without Fallback or without Grace, show that the run
// meets calls whose answer Fallback changes, and calls whose answer the
// sends still in their grace change.
func TestSameAnswersAsMemoryLimiter(t *testing.T) {
	clock := otptest.NewClock(time.Unix(1_800_000_000, 123_456_789))
	_, s := isolatedStore(t, pgstore.Config{Clock: clock}) // overrides of its own
	mem := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock})
	plain := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock})     // without Fallback
	graceless := otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: clock}) // without Grace
	withoutFallback := func(reqs []otp.LimitRequest) []otp.LimitRequest {
		out := slices.Clone(reqs)
		for i := range out {
			out[i].Fallback = false
		}
		return out
	}
	withoutGrace := func(reqs []otp.LimitRequest) []otp.LimitRequest {
		out := slices.Clone(reqs)
		for i := range out {
			out[i].Breaker.Grace = 0
		}
		return out
	}
	ctx := t.Context()
	rnd := rand.New(rand.NewPCG(15, 15))

	conv := otp.Conversion{Window: time.Hour, MinSends: 6, MinShare: 0.5}
	// Each breaker has one Grace, as a Verifier's Conversion gives it. In a
	// LimitRequest 0 is none, and so, as MemoryLimiter reads it, is a
	// negative Grace.
	graces := map[string]time.Duration{"b0": 0, "b1": 45 * time.Second, "b2": 12*time.Minute + 345_678_901,
		"g0": 25*time.Minute + 7*time.Microsecond + 999, "g1": -time.Second}
	targets := []otp.Target{otp.RegionTarget("GB"), otp.RegionTarget("JM"), otp.CallingCodeTarget(44)}
	bucket := func() otp.LimitRequest {
		// Range twice: its challenges show only when no other bucket refuses.
		scopes := []otp.Scope{otp.ScopeNumber, otp.ScopeClient, otp.ScopeRange, otp.ScopeRange}
		r := otp.LimitRequest{Scope: scopes[rnd.IntN(len(scopes))], Key: fmt.Sprint("k", rnd.IntN(4))}
		// One scope, one limit: MemoryLimiter keys buckets by limit too.
		r.Limit = otp.Limit{N: 1 + len(r.Key+string(r.Scope))%4, Per: time.Duration(len(r.Scope)) * 7 * time.Minute}
		r.Challenge = r.Scope == otp.ScopeRange
		r.Refund = r.Scope == otp.ScopeRange
		return r
	}
	breaker := func(key string, fallback bool) otp.LimitRequest {
		c := conv
		c.RecordOnly = rnd.IntN(4) == 0
		c.Grace = graces[key]
		return otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: key, Breaker: c, Fallback: fallback}
	}
	override := func() otp.LimitRequest {
		return otp.LimitRequest{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: targets[rnd.IntN(len(targets))].Key(),
			Challenge: rnd.IntN(4) != 0}
	}
	answers, ties, changed, graced := map[string]int{}, 0, 0, 0
	for step := range 3000 {
		clock.Advance(time.Duration(rnd.IntN(90_000)) * time.Millisecond / 7)
		// A call names a bucket or breaker once, as the Verifier's do: a
		// region's breaker (of three), mostly followed by its group's (of
		// two) as a Fallback, and now and then a Fallback breaker alone.
		var reqs []otp.LimitRequest
		named := map[string]bool{}
		add := func(r otp.LimitRequest) {
			if name := string(r.Scope) + "/" + r.Key; !named[name] {
				named[name] = true
				reqs = append(reqs, r)
			}
		}
		for range rnd.IntN(5) {
			switch n := rnd.IntN(10); {
			case n < 7:
				add(bucket())
			case n < 8:
				add(breaker(fmt.Sprint("b", rnd.IntN(3)), false))
				if rnd.IntN(4) != 0 {
					add(breaker(fmt.Sprint("g", rnd.IntN(2)), true))
				}
			default:
				add(breaker(fmt.Sprint("g", rnd.IntN(2)), true))
			}
		}
		if rnd.IntN(3) == 0 {
			reqs = append(reqs, override())
		}
		switch n := rnd.IntN(20); {
		case n == 0:
			actions := []otp.Action{otp.OverrideNone, otp.OverrideBlock, otp.OverrideChallenge, otp.OverrideAllow}
			o := otp.Override{Target: targets[rnd.IntN(len(targets))], Action: actions[rnd.IntN(len(actions))]}
			if rnd.IntN(2) == 0 {
				o.Until = clock.Now().Add(time.Duration(rnd.IntN(600)) * time.Second)
			}
			require.NoError(t, s.SetOverride(ctx, o))
			require.NoError(t, mem.SetOverride(ctx, o))
			require.NoError(t, plain.SetOverride(ctx, o))
			require.NoError(t, graceless.SetOverride(ctx, o))
		case n < 9:
			o := []otp.Outcome{otp.OutcomeSent, otp.OutcomeSentChallenged, otp.OutcomeVerified}[rnd.IntN(3)]
			require.NoError(t, s.Record(ctx, o, reqs))
			require.NoError(t, mem.Record(ctx, o, reqs))
			require.NoError(t, plain.Record(ctx, o, withoutFallback(reqs)))
			require.NoError(t, graceless.Record(ctx, o, withoutGrace(reqs)))
		default:
			want := mem.Allow(ctx, reqs)
			got := s.Allow(ctx, reqs)
			requireSameAnswer(t, &ties, want, got, "step %d: Allow(%+v)", step, reqs)
			if other := plain.Allow(ctx, withoutFallback(reqs)); answer(other) != answer(want) {
				changed++
			}
			if other := graceless.Allow(ctx, withoutGrace(reqs)); answer(other) != answer(want) {
				graced++
			}
			answers[answer(want)]++
		}
	}
	t.Logf("answers compared: %v, of which ties: %d; answers Fallback changed: %d, Grace changed: %d",
		answers, ties, changed, graced)
	for _, kind := range []string{"<nil>", "*otp.RateLimitError", "*otp.ChallengeError range",
		"*otp.ChallengeError conversion", "*otp.ChallengeError override", "*otp.BlockedError"} {
		assert.GreaterOrEqual(t, answers[kind], 10, "the run compared few answers of %s", kind)
	}
	assert.GreaterOrEqual(t, changed, 10, "the run compared few answers that Fallback changes")
	assert.GreaterOrEqual(t, graced, 10, "the run compared few answers that Grace changes")
}

// answer names the kind of an Allow's answer: its type, and a challenge's
// scope.
func answer(err error) string {
	kind := fmt.Sprintf("%T", err)
	if ce := (*otp.ChallengeError)(nil); errors.As(err, &ce) {
		kind += " " + string(ce.Scope)
	}
	return kind
}

// requireSameAnswer fails the test unless got is the answer want is,
// counting in ties the denials by buckets whose waits tie.
func requireSameAnswer(t *testing.T, ties *int, want, got error, msgAndArgs ...any) {
	t.Helper()
	var wr, gr *otp.RateLimitError
	var wc, gc *otp.ChallengeError
	var wb, gb *otp.BlockedError
	switch {
	case want == nil:
		require.NoError(t, got, msgAndArgs...)
	case errors.As(want, &wr):
		require.ErrorAs(t, got, &gr, msgAndArgs...)
		// Two buckets last taken together tie; x/time/rate's rounding
		// may break the tie the other way.
		require.InDelta(t, wr.RetryAfter, gr.RetryAfter, float64(time.Microsecond), msgAndArgs...)
		if wr.Scope != gr.Scope {
			*ties++
			return
		}
	case errors.As(want, &wc):
		require.ErrorAs(t, got, &gc, msgAndArgs...)
		require.InDelta(t, wc.RetryAfter, gc.RetryAfter, float64(time.Microsecond), msgAndArgs...)
		if wc.Scope != gc.Scope && wc.RetryAfter > 0 {
			*ties++
			return
		}
		require.Equal(t, wc.Scope, gc.Scope, msgAndArgs...)
	case errors.As(want, &wb):
		require.ErrorAs(t, got, &gb, msgAndArgs...)
		require.Equal(t, wb.Target, gb.Target, msgAndArgs...)
	default:
		t.Fatalf("unexpected answer %v", want)
	}
}

// TestOverrideEnds: an override stops at its Until, on every call and in
// the list, although its row is still there.
func TestOverrideEnds(t *testing.T) {
	clock := otptest.NewClock(time.Now())
	pool, s := isolatedStore(t, pgstore.Config{Clock: clock, CleanInterval: -1})
	ctx := t.Context()
	tg := otp.RegionTarget("JM")
	require.NoError(t, s.SetOverride(ctx, otp.Override{Target: tg, Action: otp.OverrideBlock, Until: clock.Now().Add(time.Minute)}))
	req := []otp.LimitRequest{{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: tg.Key()}}
	require.ErrorIs(t, s.Allow(ctx, req), otp.ErrDestinationBlocked)
	list, err := s.Overrides(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.True(t, list[0].Until.Equal(clock.Now().Add(time.Minute)), "Until round-trips")
	clock.Advance(time.Minute - time.Nanosecond)
	require.ErrorIs(t, s.Allow(ctx, req), otp.ErrDestinationBlocked, "a nanosecond before Until")
	clock.Advance(time.Nanosecond)
	require.NoError(t, s.Allow(ctx, req), "at Until")
	list, err = s.Overrides(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "an ended override is not listed")
	assert.Equal(t, 1, count(t, pool, s, "overrides"), "its row is there until the cleaner comes")
}

// TestDeleteKeepsClaim: consuming a verification while a Start's send is
// in flight for its key leaves the claim: a third Start still waits.
func TestDeleteKeepsClaim(t *testing.T) {
	s := newStore(t, newPool(t), pgstore.Config{})
	ctx := t.Context()
	v := sample("k", time.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))
	_, err := s.Claim(ctx, "k", otp.Claim{Token: "a", Until: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	require.NoError(t, s.DeleteRecord(ctx, "k", v.Ref.ID, otp.OutcomeVerified, nil))
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrNotFound, "the verification is gone")
	_, err = s.Claim(ctx, "k", otp.Claim{Token: "b", Until: time.Now().Add(time.Minute)})
	require.ErrorIs(t, err, otp.ErrSendInFlight, "the claim is not")
	require.ErrorIs(t, s.Delete(ctx, "k", v.Ref.ID), otp.ErrNotFound, "deleted once")
	require.NoError(t, s.Release(ctx, "k", "a"))
	_, err = s.Claim(ctx, "k", otp.Claim{Token: "b", Until: time.Now().Add(time.Minute)})
	require.NoError(t, err, "released")
}

// TestUnknownLimitKind: a request of a kind the Store does not know is
// refused, not skipped.
func TestUnknownLimitKind(t *testing.T) {
	// Refused before any I/O: a pool that reaches no server will do.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, err := pgstore.New(pool, pgstore.Config{KeySecret: secret(), CleanInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	err = s.Allow(t.Context(), []otp.LimitRequest{{Kind: otp.LimitKind(99), Scope: otp.ScopeNumber, Key: "k"}})
	require.ErrorIs(t, err, pgstore.ErrBadRequest)
}
