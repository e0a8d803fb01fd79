package pgstore_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// sample returns a verification under key, sent at now, expiring after ttl.
func sample(key string, now time.Time, ttl time.Duration) otp.Verification {
	return otp.Verification{Key: key, Ref: otp.Ref{Provider: "p", ID: "id-" + key}, To: ukMobile, Region: "GB",
		Channel: otp.SMS, Sends: 1, CreatedAt: now, SentAt: now, ExpiresAt: now.Add(ttl)}
}

// TestRetention: a verification answers ErrExpired from its ExpiresAt on
// and ErrNotFound from ExpiresAt plus Retention on, at once, whether or
// not its row has been deleted yet; a call that locks the row anyway
// deletes it, and a claim replaces it.
func TestRetention(t *testing.T) {
	pool := newPool(t)
	clock := otptest.NewClock(time.Now())
	s := newStore(t, pool, pgstore.Config{Clock: clock, Retention: 10 * time.Second, CleanInterval: -1})
	ctx := t.Context()
	v := sample("k", clock.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))
	clock.Advance(time.Minute - time.Nanosecond)
	_, err := s.Get(ctx, "k")
	require.NoError(t, err, "a nanosecond before ExpiresAt")
	clock.Advance(time.Nanosecond)
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrExpired, "at ExpiresAt")
	clock.Advance(10*time.Second - time.Nanosecond)
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrExpired, "a nanosecond before the retention ends")
	clock.Advance(time.Nanosecond)

	id := s.VerificationID("k")
	var n int
	rows := func() int {
		t.Helper()
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+s.Table("verifications")+" WHERE id = $1", id).Scan(&n))
		return n
	}
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, otp.ErrNotFound, "once the retention ends")
	require.NotErrorIs(t, err, otp.ErrExpired)
	require.ErrorIs(t, s.MarkSent(ctx, "k", v.Ref.ID, clock.Now()), otp.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, "k", v.Ref.ID), otp.ErrNotFound)
	got, err := s.Claim(ctx, "k", otp.Claim{Token: "t", Until: clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, otp.Verification{}, got, "Claim sees nothing")
	var dest *string
	require.NoError(t, pool.QueryRow(ctx, "SELECT dest FROM "+s.Table("verifications")+" WHERE id = $1", id).Scan(&dest))
	assert.Nil(t, dest, "the claim kept nothing of the verification gone: not its number")
	require.NoError(t, s.Release(ctx, "k", "t"))
	assert.Zero(t, rows(), "Release of the claim deleted the row it left with nothing")

	require.NoError(t, s.Put(ctx, sample("k", clock.Now(), time.Minute)))
	clock.Advance(time.Minute + 10*time.Second)
	assert.Equal(t, 1, rows(), "the row is still there")
	_, err = s.AddAttempt(ctx, "k", 5)
	require.ErrorIs(t, err, otp.ErrNotFound)
	assert.Zero(t, rows(), "AddAttempt, which locks the row, deleted it")

	// A Put of what is already gone keeps nothing.
	require.NoError(t, s.Put(ctx, sample("k", clock.Now().Add(-2*time.Minute), time.Minute)))
	assert.Zero(t, rows(), "Put of a verification past its retention")
}

// TestCleanDeletesWhatNoReadSees: with a flood of Starts that never
// finished (claims), of buckets, of breakers and of overrides, every row
// goes once no read can see it, and not before.
func TestCleanDeletesWhatNoReadSees(t *testing.T) {
	// Ten minutes into an hour: the breakers' one-hour windows then end
	// 50 minutes in, and they are idle two windows later.
	clock := otptest.NewClock(time.Now().Truncate(time.Hour).Add(10 * time.Minute))
	start := clock.Now()
	pool, s := isolatedStore(t, pgstore.Config{Clock: clock, Retention: time.Second, CleanInterval: -1, CleanBatch: 7})
	ctx := t.Context()
	const n = 50
	breaker := otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}
	for i := range n {
		key := "k" + strconv.Itoa(i)
		number := "+4474001" + strconv.Itoa(10000+i)
		reqs := []otp.LimitRequest{
			{Scope: otp.ScopeNumber, Key: number, Limit: otp.Limit{N: 5, Per: time.Hour}},
			{Scope: otp.ScopeClient, Key: "203.0.113." + strconv.Itoa(i), Limit: otp.Limit{N: 10, Per: time.Hour}},
		}
		// A Start whose send never ended: a claim for a minute.
		_, err := s.GetAllow(ctx, key, otp.Spare{To: number, Now: clock.Now()},
			otp.Claim{Token: "t", Until: clock.Now().Add(time.Minute)}, reqs)
		require.NoError(t, err)
		// A verification that expires in two minutes.
		require.NoError(t, s.Put(ctx, sample("put-"+key, clock.Now(), 2*time.Minute)))
		require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{
			{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "region-" + strconv.Itoa(i), Breaker: breaker}}))
		tg, err := otp.ParseTarget("range:+99" + strconv.Itoa(1000+i))
		require.NoError(t, err)
		require.NoError(t, s.SetOverride(ctx, otp.Override{Target: tg, Action: otp.OverrideBlock,
			Until: clock.Now().Add(time.Minute)}))
	}
	tables := []string{"verifications", "buckets", "breakers", "overrides"}
	want := map[string]int{"verifications": 2 * n, "buckets": 2 * n, "breakers": n, "overrides": n}
	for _, table := range tables {
		assert.Equal(t, want[table], count(t, pool, s, table), table)
	}
	cleaned, err := s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{}, cleaned, "nothing to clean yet")

	// After a minute the claims, the overrides and one token of each
	// number's bucket (12 minutes a token) have gone.
	clock.Advance(time.Minute)
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{Verifications: n, Overrides: n}, cleaned)
	// After 2 minutes and a second, the verifications; after an hour, the
	// buckets (full again); at the end of the window after next, the
	// breakers, and not a nanosecond before.
	clock.Advance(time.Minute + time.Second)
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{Verifications: n}, cleaned)
	clock.Advance(time.Hour)
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{Buckets: 2 * n}, cleaned)
	clock.Set(start.Add(time.Hour + 50*time.Minute - time.Nanosecond))
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{}, cleaned, "a breaker with counts in the window before")
	clock.Advance(time.Nanosecond)
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, pgstore.Cleaned{Breakers: n}, cleaned)
	for _, table := range tables {
		assert.Zero(t, count(t, pool, s, table), table)
	}
}

// TestDenialsWriteNothing: a flood of calls that are denied, each with a
// fresh number, client and key, leaves no row, claim or bucket behind;
// an open breaker counts its refusals in its one row.
func TestDenialsWriteNothing(t *testing.T) {
	pool, s := isolatedStore(t, pgstore.Config{CleanInterval: -1})
	ctx := t.Context()
	total := otp.LimitRequest{Scope: otp.ScopeTotal, Limit: otp.Limit{N: 1, Per: time.Hour}}
	breaker := otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
		Breaker: otp.Conversion{Window: time.Hour, MinSends: 2, MinShare: 0.5}}
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{total}))
	require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{breaker, breaker}))
	for i := range 100 {
		number := "+4474001" + strconv.Itoa(10000+i)
		fresh := otp.LimitRequest{Scope: otp.ScopeNumber, Key: number, Limit: otp.Limit{N: 5, Per: time.Hour}}
		client := otp.LimitRequest{Scope: otp.ScopeChecks, Key: "198.51.100." + strconv.Itoa(i), Limit: otp.Limit{N: 5, Per: time.Hour}}
		_, err := s.GetAllow(ctx, "k"+strconv.Itoa(i), otp.Spare{To: number},
			otp.Claim{Token: "t", Until: time.Now().Add(time.Hour)}, []otp.LimitRequest{fresh, total})
		require.ErrorIs(t, err, otp.ErrRateLimited)
		_, err = s.AllowAddAttempt(ctx, "k"+strconv.Itoa(i), 5, []otp.LimitRequest{client, total})
		require.ErrorIs(t, err, otp.ErrRateLimited)
		require.ErrorIs(t, s.Allow(ctx, []otp.LimitRequest{fresh, breaker}), otp.ErrChallengeRequired)
	}
	assert.Zero(t, count(t, pool, s, "verifications"), "claims of denied Starts")
	assert.Equal(t, 1, count(t, pool, s, "buckets"), "buckets: the Total one only")
	assert.Equal(t, 1, count(t, pool, s, "breakers"))
	var refused int
	require.NoError(t, pool.QueryRow(ctx, "SELECT refused FROM "+s.Table("breakers")).Scan(&refused))
	assert.Equal(t, 100, refused, "the breaker counted its refusals")
}

// TestCleaner: the cleaner goroutine deletes what has gone, and Close
// stops it: no goroutine outlives Close.
func TestCleaner(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfgPool, err := pgxpool.ParseConfig(testenv.Postgres(t))
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(t.Context(), cfgPool)
	require.NoError(t, err)
	defer pool.Close()
	cfg := freshTables(t, pool)
	cfg.Retention, cfg.CleanInterval, cfg.KeySecret = time.Second, 20*time.Millisecond, secret()
	s, err := pgstore.New(pool, cfg)
	require.NoError(t, err)
	ctx := t.Context()
	for i := range 5 {
		require.NoError(t, s.Put(ctx, sample("k"+strconv.Itoa(i), time.Now(), 10*time.Millisecond)))
	}
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile,
		Limit: otp.Limit{N: 10, Per: time.Second}}}))
	assert.Equal(t, 5, count(t, pool, s, "verifications"))
	assert.Equal(t, 1, count(t, pool, s, "buckets"))
	deadline := time.Now().Add(10 * time.Second)
	for count(t, pool, s, "verifications")+count(t, pool, s, "buckets") > 0 {
		require.True(t, time.Now().Before(deadline), "the cleaner never cleaned")
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close again")
	_, err = s.Get(context.Background(), "k0")
	require.ErrorIs(t, err, otp.ErrNotFound, "the Store works after Close")
	pool.Close()
}

// TestCleanerOfADroppedStore: a Store nobody closed stops its cleaner
// once it is garbage collected.
func TestCleanerOfADroppedStore(t *testing.T) {
	cfgPool, err := pgxpool.ParseConfig(testenv.Postgres(t))
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(t.Context(), cfgPool)
	require.NoError(t, err)
	defer pool.Close()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	func() {
		s, err := pgstore.New(pool, pgstore.Config{Schema: testSchema(t), CleanInterval: time.Hour})
		require.NoError(t, err)
		_ = s
	}()
	for i := 0; goleak.Find(opts...) != nil; i++ {
		require.Less(t, i, 100, "the cleaner of a dropped Store still runs: %v", goleak.Find(opts...))
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
