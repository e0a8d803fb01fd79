package pgstore_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
)

// TestSynchronousCommit: each write commits with synchronous_commit off
// unless Config.SynchronousCommit says otherwise, but for those whose loss
// would weaken a guarantee (a counted attempt, a consumed verification, an
// operator's override), which always keep the server's setting. A
// deferred constraint trigger on every table logs the setting in force
// when each write's transaction commits.
func TestSynchronousCommit(t *testing.T) {
	ctx := t.Context()
	// The server's own setting is "on" for these connections, whatever the
	// test database's default.
	pool := newPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["synchronous_commit"] = "on" })
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "SynchronousCommit"}[sync], func(t *testing.T) {
			cfg := freshTables(t, pool)
			cfg.SynchronousCommit = sync
			s := newStore(t, pool, cfg)
			log, fn := s.Table("commit_log"), s.Table("log_commit")
			queries := []string{
				"CREATE TABLE " + log + " (tbl text, setting text)",
				"CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
					"INSERT INTO " + log + " VALUES (TG_TABLE_NAME, current_setting('synchronous_commit')); " +
					"RETURN NULL; END $$",
			}
			for _, tbl := range []string{"verifications", "buckets", "breakers", "overrides"} {
				queries = append(queries, "CREATE CONSTRAINT TRIGGER log_commit AFTER INSERT OR UPDATE OR DELETE ON "+
					s.Table(tbl)+" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "+fn+"()")
			}
			for _, q := range queries {
				_, err := pool.Exec(ctx, q)
				require.NoError(t, err, q)
			}
			// commits runs write and returns the tables it wrote and the
			// settings their transactions committed with.
			commits := func(write func() error) (tables, settings []string) {
				t.Helper()
				require.NoError(t, write())
				rows, err := pool.Query(ctx, "DELETE FROM "+log+" RETURNING tbl, setting")
				require.NoError(t, err)
				for rows.Next() {
					var tbl, setting string
					require.NoError(t, rows.Scan(&tbl, &setting))
					tables = append(tables, strings.TrimPrefix(tbl, cfg.Prefix))
					if !slices.Contains(settings, setting) {
						settings = append(settings, setting)
					}
				}
				require.NoError(t, rows.Err())
				return tables, settings
			}
			now := time.Now()
			bucket := otp.LimitRequest{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 5, Per: time.Hour}, Refund: true}
			breaker := otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
				Breaker: otp.Conversion{Window: time.Hour, MinSends: 20, MinShare: 0.4}}
			limits := []otp.LimitRequest{bucket, breaker}
			async := map[bool]string{false: "off", true: "on"}[sync]
			for _, w := range []struct {
				name    string
				durable bool
				write   func() error
			}{
				{"Put", false, func() error { return s.Put(ctx, sample("k", now, time.Minute)) }},
				{"MarkSent", false, func() error { return s.MarkSent(ctx, "k", "id-k", now) }},
				{"Allow", false, func() error { return s.Allow(ctx, limits) }},
				{"Record", false, func() error { return s.Record(ctx, otp.OutcomeSent, limits) }},
				{"GetAllow", false, func() error {
					_, err := s.GetAllow(ctx, "k2", otp.Spare{To: ukMobile, Now: now}, otp.Claim{Token: "t", Until: now.Add(time.Minute)}, limits)
					return err
				}},
				{"Release", false, func() error { return s.Release(ctx, "k2", "t") }},
				{"PutRecord", false, func() error {
					return s.PutRecord(ctx, sample("k3", now, time.Minute), otp.OutcomeSent, limits)
				}},
				{"AllowAddAttempt", true, func() error { _, err := s.AllowAddAttempt(ctx, "k", 5, nil); return err }},
				{"DeleteRecord", true, func() error { return s.DeleteRecord(ctx, "k3", "id-k3", otp.OutcomeVerified, limits) }},
				{"Delete", true, func() error { return s.Delete(ctx, "k", "id-k") }},
				{"SetOverride", true, func() error {
					return s.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("JM"), Action: otp.OverrideBlock})
				}},
			} {
				want := async
				if w.durable {
					want = "on"
				}
				tables, settings := commits(w.write)
				assert.NotEmpty(t, tables, "%s wrote nothing", w.name)
				assert.Equal(t, []string{want}, settings, "%s (wrote %v)", w.name, tables)
			}
		})
	}
}
