package pgstore_test

import (
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// TestMigrateFromVersion1: tables that version 1 made and wrote, through
// its own functions, are brought up to date by Migrate, and the Store
// reads what they held, to the nanosecond: the verifications (version 1's
// Unix nanoseconds, the zero time as -2^63, a time before 1970 as a
// negative count), the claim, the bucket, the breaker and the override.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(time.Unix(1_800_000_000, 123_456_789).UTC())
	pool := newPool(t)
	cfg := pgstore.Config{Schema: testSchema(t), Prefix: freshPrefix(), Clock: clock, CleanInterval: -1,
		KeySecret: secret(), Retention: time.Minute}
	require.NoError(t, pgstore.MigrateTo(ctx, pool, cfg, 1))
	s := newStore(t, pool, cfg)
	v1 := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, "SELECT * FROM "+s.Table(sql), args...)
		require.NoError(t, err, sql)
	}
	now := clock.Now().UnixNano()

	// What version 1 wrote: two verifications, a claim, a bucket of 1 per
	// hour with its token taken, a breaker with 4 sends none verified, an
	// override.
	put := func(v otp.Verification, created int64) {
		t.Helper()
		v1("put($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", s.VerificationID(v.Key), now,
			int64(time.Minute), v.Ref.Provider, v.Ref.ID, v.To, v.Region, string(v.Channel), v.Challenged,
			int32(v.Sends), int32(v.Attempts), created, v.SentAt.UnixNano(), v.ExpiresAt.UnixNano())
	}
	v := sample("k", clock.Now(), time.Minute)
	put(v, v.CreatedAt.UnixNano())
	old := sample("old", clock.Now(), 2*time.Minute)
	old.CreatedAt = time.Time{}         // version 1 kept -2^63
	old.SentAt = time.Unix(0, -1).UTC() // a negative count of nanoseconds
	put(old, math.MinInt64)
	claimUntil := clock.Now().Add(time.Minute)
	v1("get_allow($1, $2, 'a', $3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
		s.VerificationID("claimed"), now, claimUntil.UnixNano())
	bucket := otp.LimitRequest{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1, Per: time.Hour}}
	v1("decide($1, $2, ARRAY['number'], ARRAY[$3::bigint], ARRAY[0::bigint], ARRAY[false], NULL, NULL, NULL, NULL, NULL, NULL)",
		now, [][]byte{s.BucketID(bucket.Scope, bucket.Key)}, int64(time.Hour))
	breaker := otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
		Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}}
	for range 4 {
		v1("record($1, 1, NULL, NULL, $2, ARRAY['GB'], ARRAY[$3::bigint])", now,
			[][]byte{s.BreakerID(breaker.Key, time.Hour)}, time.Hour.Microseconds())
	}
	jm := otp.RegionTarget("JM")
	until := clock.Now().Add(time.Hour)
	v1("set_override($1, $2, 'block', $3)", now, jm.Key(), until.UnixNano())

	require.ErrorIs(t, s.CheckSchema(ctx), pgstore.ErrNotMigrated, "at version 1")
	require.NoError(t, pgstore.Migrate(ctx, pool, cfg))
	require.NoError(t, s.CheckSchema(ctx))
	require.NoError(t, pgstore.Migrate(ctx, pool, cfg), "Migrate again")

	clock.Advance(time.Second)
	for _, want := range []otp.Verification{v, old} {
		got, err := s.Get(ctx, want.Key)
		require.NoError(t, err, want.Key)
		assert.Equal(t, want, got, "the verification %s", want.Key)
	}
	_, err := s.Claim(ctx, "claimed", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.ErrorIs(t, err, otp.ErrSendInFlight, "the claim")
	var rl *otp.RateLimitError
	require.ErrorAs(t, s.Allow(ctx, []otp.LimitRequest{bucket}), &rl, "the bucket")
	assert.Equal(t, time.Hour-time.Second, rl.RetryAfter)
	var ce *otp.ChallengeError
	require.ErrorAs(t, s.Allow(ctx, []otp.LimitRequest{breaker}), &ce, "the breaker")
	assert.Equal(t, otp.ScopeConversion, ce.Scope)
	// Version 1 had no grace: the breaker upgrades with no sends in their
	// grace, so that its sends count at once.
	var young [3]int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT young_win, young_cur, young_prev FROM "+s.Table("breakers")).
		Scan(&young[0], &young[1], &young[2]))
	assert.Zero(t, young, "no young sends")
	// Version 1's functions are gone.
	_, err = pool.Exec(ctx, "SELECT * FROM "+s.Table("record($1, 1, NULL, NULL, $2, ARRAY['GB'], ARRAY[$3::bigint])"),
		now, [][]byte{s.BreakerID(breaker.Key, time.Hour)}, time.Hour.Microseconds())
	var pe *pgconn.PgError
	require.ErrorAs(t, err, &pe, "version 1's record")
	assert.Equal(t, "42883", pe.Code, "version 1's record is gone: an undefined function")
	require.ErrorIs(t, s.Allow(ctx, []otp.LimitRequest{{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: jm.Key()}}),
		otp.ErrDestinationBlocked, "the override")
	list, err := s.Overrides(ctx)
	require.NoError(t, err)
	assert.Equal(t, []otp.Override{{Target: jm, Action: otp.OverrideBlock, Until: until}}, list)

	// Each row ends when version 1 said, to the nanosecond (to the
	// microsecond for the breaker, whose windows count in them).
	at := func(when time.Time, key string, want error) {
		t.Helper()
		clock.Set(when)
		_, err := s.Get(ctx, key)
		require.ErrorIs(t, err, want, "%s at %v", key, when)
	}
	at(v.ExpiresAt.Add(-time.Nanosecond), "k", nil)
	at(v.ExpiresAt, "k", otp.ErrExpired)
	at(v.ExpiresAt.Add(time.Minute-time.Nanosecond), "k", otp.ErrExpired)
	at(v.ExpiresAt.Add(time.Minute), "k", otp.ErrNotFound)
	clock.Set(claimUntil.Add(-time.Nanosecond))
	_, err = s.Claim(ctx, "claimed", otp.Claim{Token: "b", Until: clock.Now().Add(time.Minute)})
	require.ErrorIs(t, err, otp.ErrSendInFlight, "a nanosecond before the claim's Until")
	clock.Set(claimUntil)
	_, err = s.Claim(ctx, "claimed", otp.Claim{Token: "b", Until: clock.Now()})
	require.NoError(t, err, "at the claim's Until")
	clock.Set(until.Add(-time.Nanosecond))
	list, err = s.Overrides(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1, "a nanosecond before the override's Until")
	clock.Set(until)
	list, err = s.Overrides(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "at the override's Until")
	// The breaker's sends fell in the hour from now on: it is idle from
	// the end of the hour after next.
	idle := time.Unix(0, now).Truncate(time.Hour).Add(2 * time.Hour)
	clock.Set(idle.Add(-time.Microsecond))
	cleaned, err := s.Clean(ctx)
	require.NoError(t, err)
	assert.Zero(t, cleaned.Breakers, "a microsecond before the breaker is idle")
	clock.Set(idle)
	cleaned, err = s.Clean(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, cleaned.Breakers, "once the breaker is idle")
}
