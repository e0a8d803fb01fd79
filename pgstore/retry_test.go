package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/pgstore"
)

// waitForLock waits until a backend running a statement that holds fn is
// waiting for a lock.
func waitForLock(t *testing.T, c *pgx.Conn, fn string) {
	t.Helper()
	for i := 0; ; i++ {
		var n int
		require.NoError(t, c.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '(%' AND pid <> pg_backend_pid()`, fn).Scan(&n))
		if n > 0 {
			return
		}
		require.Less(t, i, 1000, "the store's statement never waited for the lock")
		time.Sleep(2 * time.Millisecond)
	}
}

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), testenv.Postgres(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// TestSerializationFailureRetried: under REPEATABLE READ (a server or role
// default some deployments set), a bucket written by another transaction
// after the statement's snapshot fails it with SQLSTATE 40001; the Store
// runs it again, and the answer is right: one token taken, no error.
func TestSerializationFailureRetried(t *testing.T) {
	pool := newPool(t, func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	})
	s := newStore(t, pool, pgstore.Config{})
	ctx := t.Context()
	r := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 3, Per: time.Hour}}}
	require.NoError(t, s.Allow(ctx, r), "the bucket's first token")

	// Another transaction writes the bucket's row and holds it.
	other := connect(t)
	tx, err := other.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	_, err = tx.Exec(ctx, "UPDATE "+s.Table("buckets")+" SET tat_s = tat_s WHERE id = $1", s.BucketID(otp.ScopeNumber, ukMobile))
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- s.Allow(ctx, r) }()
	waitForLock(t, connect(t), "decide")
	require.NoError(t, tx.Commit(ctx))

	require.NoError(t, <-done, "Allow after a serialization failure")
	assert.Equal(t, int64(1), s.Retries(), "the statement ran twice")
	require.NoError(t, s.Allow(ctx, r), "the third token: the retried Allow took one")
	require.ErrorIs(t, s.Allow(ctx, r), otp.ErrRateLimited, "and only one")
}

// TestDeadlockRetried: a transaction that locks a bucket row and then the
// verification row a check holds closes a cycle; PostgreSQL aborts the
// check's statement (SQLSTATE 40P01), the Store runs it again, and the
// answer is right: one attempt reserved, one token taken.
func TestDeadlockRetried(t *testing.T) {
	// The store's backend runs the deadlock check soon; the other one
	// never does first. Setting deadlock_timeout needs a superuser.
	pool := newPool(t, func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["deadlock_timeout"] = "300ms"
	})
	if err := pool.Ping(t.Context()); err != nil && strings.Contains(err.Error(), "permission denied") {
		t.Skip("setting deadlock_timeout needs a superuser at " + urlVar)
	}
	s := newStore(t, pool, pgstore.Config{})
	ctx := t.Context()
	now := time.Now()
	v := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Region: "GB",
		Channel: otp.SMS, Sends: 1, CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, s.Put(ctx, v))
	r := []otp.LimitRequest{{Scope: otp.ScopeChecks, Key: "203.0.113.9", Limit: otp.Limit{N: 3, Per: time.Hour}}}
	require.NoError(t, s.Allow(ctx, r), "the bucket's first token")

	other := connect(t)
	tx, err := other.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	_, err = tx.Exec(ctx, "SET LOCAL deadlock_timeout = '1min'")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1 FROM "+s.Table("buckets")+" WHERE id = $1 FOR UPDATE", s.BucketID(otp.ScopeChecks, "203.0.113.9"))
	require.NoError(t, err)

	type result struct {
		v   otp.Verification
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := s.AllowAddAttempt(ctx, "k", 5, r)
		done <- result{got, err}
	}()
	// The check holds the verification's row and waits for the bucket's;
	// now the other transaction asks for the verification's.
	waitForLock(t, connect(t), "allow_add_attempt")
	_, err = tx.Exec(ctx, "SELECT 1 FROM "+s.Table("verifications")+" WHERE id = $1 FOR UPDATE", s.VerificationID("k"))
	require.NoError(t, err, "the other transaction got the verification's row: the check's statement was the victim")
	require.NoError(t, tx.Commit(ctx))

	res := <-done
	require.NoError(t, res.err, "AllowAddAttempt after a deadlock")
	assert.Equal(t, 1, res.v.Attempts)
	assert.Equal(t, int64(1), s.Retries(), "the statement ran twice")
	got, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, 1, got.Attempts, "one attempt reserved")
	require.NoError(t, s.Allow(ctx, r), "the third token: the retried call took one")
	require.ErrorIs(t, s.Allow(ctx, r), otp.ErrRateLimited, "and only one")
}
