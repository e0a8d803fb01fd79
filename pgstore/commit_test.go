package pgstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
)

// TestSynchronousCommit: the Store's writes commit with synchronous_commit
// off unless Config.SynchronousCommit says otherwise, and SetOverride,
// AllowAddAttempt, Delete and DeleteRecord always with the server's
// setting. A deferred constraint trigger on the tables logs the setting in
// force when each write's transaction commits.
func TestSynchronousCommit(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		sync bool
		put  string // the setting a Put commits with
	}{
		{"default", false, "off"},
		{"SynchronousCommit", true, "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t)
			cfg := freshTables(t, pool)
			cfg.SynchronousCommit = tc.sync
			s := newStore(t, pool, cfg)
			var server string
			require.NoError(t, pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&server))
			require.Equal(t, "on", server, "the test database's own synchronous_commit")

			log, fn := s.Table("commit_log"), s.Table("log_commit")
			for _, q := range []string{
				"CREATE TABLE " + log + " (tbl text, setting text)",
				"CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
					"INSERT INTO " + log + " VALUES (TG_TABLE_NAME, current_setting('synchronous_commit')); " +
					"RETURN NULL; END $$",
				"CREATE CONSTRAINT TRIGGER log_commit AFTER INSERT OR UPDATE OR DELETE ON " + s.Table("verifications") +
					" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
				"CREATE CONSTRAINT TRIGGER log_commit AFTER INSERT OR UPDATE ON " + s.Table("overrides") +
					" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
			} {
				_, err := pool.Exec(ctx, q)
				require.NoError(t, err, q)
			}
			logged := func() (settings []string) {
				rows, err := pool.Query(ctx, "DELETE FROM "+log+" RETURNING tbl || ': ' || setting")
				require.NoError(t, err)
				for rows.Next() {
					var s string
					require.NoError(t, rows.Scan(&s))
					settings = append(settings, s)
				}
				require.NoError(t, rows.Err())
				return settings
			}

			require.NoError(t, s.Put(ctx, sample("k", time.Now(), time.Minute)))
			want := cfg.Prefix + "verifications: " + tc.put
			assert.Equal(t, []string{want}, logged(), "a Put")

			require.NoError(t, s.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("JM"), Action: otp.OverrideBlock}))
			want = cfg.Prefix + "overrides: on"
			assert.Equal(t, []string{want}, logged(), "a SetOverride, either way")

			// A counted attempt and a consumed verification wait for their
			// flush either way: a crash must not give them back.
			want = cfg.Prefix + "verifications: on"
			_, err := s.AllowAddAttempt(ctx, "k", 5, nil)
			require.NoError(t, err)
			assert.Equal(t, []string{want}, logged(), "an AllowAddAttempt")
			require.NoError(t, s.DeleteRecord(ctx, "k", "id-k", otp.OutcomeVerified, nil))
			assert.Equal(t, []string{want}, logged(), "a DeleteRecord")
			require.NoError(t, s.Put(ctx, sample("k2", time.Now(), time.Minute)))
			logged()
			require.NoError(t, s.Delete(ctx, "k2", "id-k2"))
			assert.Equal(t, []string{want}, logged(), "a Delete")
		})
	}
}
