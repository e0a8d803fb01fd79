package pgstore_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// TestMigrateFromVersion2: breakers that version 2 made and fed, through
// its own functions, are brought up to date by Migrate with no sends in
// their grace: the sends they counted count at once, while those recorded
// after it wait out their Grace. Version 2's functions are gone, and its
// verifications read as they were.
func TestMigrateFromVersion2(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(time.Unix(1_800_000_000, 123_456_789).UTC())
	pool := newPool(t)
	cfg := pgstore.Config{Schema: testSchema(t), Prefix: freshPrefix(), Clock: clock, CleanInterval: -1,
		KeySecret: secret(), Retention: time.Minute}
	require.NoError(t, pgstore.MigrateTo(ctx, pool, cfg, 2))
	s := newStore(t, pool, cfg)
	sec, ns := clock.Now().Unix(), int32(clock.Now().Nanosecond())
	conv := otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5, Grace: 30 * time.Second}
	breaker := func(key string) otp.LimitRequest {
		return otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: key, Breaker: conv}
	}
	gb, jm := breaker("GB"), breaker("JM")
	// What version 2 wrote: 4 sends none verified to GB, 3 to JM, and a
	// verification.
	v2record := func(r otp.LimitRequest, sends int) error {
		for range sends {
			_, err := pool.Exec(ctx, "SELECT * FROM "+s.Table("record")+"("+s.Table("now")+"($1, $2), 1, NULL, NULL, "+
				"$3, ARRAY[$4], ARRAY[$5::bigint], ARRAY[$6::integer], ARRAY[false])",
				sec, ns, [][]byte{s.BreakerID(r.Key, time.Hour)}, r.Key, time.Hour.Microseconds(), int32(4))
			if err != nil {
				return err
			}
		}
		return nil
	}
	require.NoError(t, v2record(gb, 4))
	require.NoError(t, v2record(jm, 3))
	v := sample("k", clock.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v), "put has the same arguments in versions 2 and 3")

	require.ErrorIs(t, s.CheckSchema(ctx), pgstore.ErrNotMigrated, "at version 2")
	require.NoError(t, pgstore.Migrate(ctx, pool, cfg))
	require.NoError(t, s.CheckSchema(ctx))
	require.NoError(t, pgstore.Migrate(ctx, pool, cfg), "Migrate again")
	var versions int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+s.Table("schema_version")).Scan(&versions))
	assert.Equal(t, pgstore.SchemaVersion, versions, "versions applied")
	var pe *pgconn.PgError
	require.ErrorAs(t, v2record(gb, 1), &pe, "version 2's record")
	assert.Equal(t, "42883", pe.Code, "version 2's record is gone: an undefined function")

	// The rows upgraded with no young sends.
	rows, err := pool.Query(ctx, "SELECT name, sent, young_win, young_cur, young_prev FROM "+s.Table("breakers")+
		" ORDER BY name")
	require.NoError(t, err)
	type row struct {
		Name                                string
		Sent, YoungWin, YoungCur, YoungPrev int64
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	assert.Equal(t, []row{{"GB", 4, 0, 0, 0}, {"JM", 3, 0, 0, 0}}, got)

	clock.Advance(time.Second)
	got1, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, v, got1, "the verification")
	// GB's 4 sends are past their grace: the breaker opens at once.
	var ce *otp.ChallengeError
	require.ErrorAs(t, s.Allow(ctx, []otp.LimitRequest{gb}), &ce, "GB's sends of version 2")
	assert.Equal(t, otp.ScopeConversion, ce.Scope)
	// JM's fourth send, recorded now, is young: 3 sends are too few to
	// judge until it is past its grace.
	require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{jm}))
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{jm}), "JM's fourth send in its grace")
	clock.Advance(conv.Grace)
	// Between Grace and twice Grace old, it counts in part.
	require.NoError(t, s.Allow(ctx, []otp.LimitRequest{jm}), "JM's fourth send, not twice Grace old")
	clock.Advance(conv.Grace)
	require.ErrorAs(t, s.Allow(ctx, []otp.LimitRequest{jm}), &ce, "JM's fourth send past its grace")
	assert.Equal(t, otp.ScopeConversion, ce.Scope)
}

// TestMigrateFromVersion3: version 4 changes no table and no argument, so
// a Store keeps its verifications, claims and breakers across it; it
// makes the functions that were LANGUAGE sql and wrote rows or read the
// clock PL/pgSQL, whose plans a session keeps.
func TestMigrateFromVersion3(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(time.Unix(1_800_000_000, 123_456_789).UTC())
	pool := newPool(t)
	cfg := pgstore.Config{Schema: testSchema(t), Prefix: freshPrefix(), Clock: clock, CleanInterval: -1,
		KeySecret: secret(), Retention: time.Minute}
	require.NoError(t, pgstore.MigrateTo(ctx, pool, cfg, 3))
	s := newStore(t, pool, cfg)
	languages := func() map[string]string {
		rows, err := pool.Query(ctx, "SELECT p.proname, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "+
			"WHERE p.pronamespace = $1::regnamespace AND p.proname = ANY ($2)",
			cfg.Schema, []string{cfg.Prefix + "now", cfg.Prefix + "set_claim", cfg.Prefix + "put_breaker"})
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var name, lang string
			require.NoError(t, rows.Scan(&name, &lang))
			out[strings.TrimPrefix(name, cfg.Prefix)] = lang
		}
		require.NoError(t, rows.Err())
		return out
	}
	assert.Equal(t, map[string]string{"now": "sql", "set_claim": "sql", "put_breaker": "sql"}, languages(), "version 3")

	conv := otp.Conversion{Window: time.Hour, MinSends: 2, MinShare: 0.5, Grace: time.Second}
	gb := otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB", Breaker: conv}
	v := sample("k", clock.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))
	_, err := s.GetAllow(ctx, "claimed", otp.Spare{To: ukMobile, Now: clock.Now()},
		otp.Claim{Token: "t", Until: clock.Now().Add(time.Minute)}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{gb}))

	require.NoError(t, pgstore.Migrate(ctx, pool, cfg))
	require.NoError(t, s.CheckSchema(ctx))
	assert.Equal(t, map[string]string{"now": "plpgsql", "set_claim": "plpgsql", "put_breaker": "plpgsql"},
		languages(), "version 4")

	got, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, v, got, "the verification")
	_, err = s.GetAllow(ctx, "claimed", otp.Spare{To: ukMobile, Now: clock.Now()},
		otp.Claim{Token: "other", Until: clock.Now().Add(time.Minute)}, nil)
	require.ErrorIs(t, err, otp.ErrSendInFlight, "the claim of version 3")
	// The send version 3 recorded and one recorded now, both past their
	// grace and neither verified, open the breaker.
	require.NoError(t, s.Record(ctx, otp.OutcomeSent, []otp.LimitRequest{gb}))
	clock.Advance(2 * conv.Grace)
	var ce *otp.ChallengeError
	require.ErrorAs(t, s.Allow(ctx, []otp.LimitRequest{gb}), &ce, "the breaker's sends of both versions")
	assert.Equal(t, otp.ScopeConversion, ce.Scope)
}
