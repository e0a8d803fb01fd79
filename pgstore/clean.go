package pgstore

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpkit/otp"
)

// Cleaned counts the rows one [Store.Clean] deleted, by table.
type Cleaned struct {
	Verifications int // verifications past ExpiresAt plus Retention, and claims past their Until
	Buckets       int // limit buckets full again
	Breakers      int // breakers idle for two windows
	Overrides     int // overrides past their Until
}

// cleaner is what the cleaner goroutine needs, kept apart from Store so
// that a Store nobody closed can still be garbage collected.
type cleaner struct {
	pool     *pgxpool.Pool
	sql      string
	clock    otp.Clock
	batch    int
	interval time.Duration
	log      *slog.Logger
	stop     context.CancelFunc // nil without a goroutine
	done     chan struct{}
}

// Clean deletes the rows that no read can see any more (see
// Config.CleanInterval), in statements of at most Config.CleanBatch rows
// per table, until a statement finds fewer than that in every table. Rows
// another call holds are skipped, so several instances may clean at once.
// It returns what it deleted, also when ctx ends it early.
func (s *Store) Clean(ctx context.Context) (Cleaned, error) {
	return s.cleaner.clean(ctx)
}

func (c *cleaner) clean(ctx context.Context) (Cleaned, error) {
	var all Cleaned
	for {
		sec, ns := clockArgs(c.clock)
		var n [4]int32
		err := c.pool.QueryRow(ctx, c.sql, sec, ns, int32(c.batch)).Scan(&n[0], &n[1], &n[2], &n[3])
		if err != nil {
			return all, fail("clean", err)
		}
		all.Verifications += int(n[0])
		all.Buckets += int(n[1])
		all.Breakers += int(n[2])
		all.Overrides += int(n[3])
		if max(n[0], n[1], n[2], n[3]) < int32(c.batch) {
			return all, nil
		}
	}
}

// run cleans every interval, starting at a random point of the first, so
// that instances started together do not clean together, until ctx ends.
func (c *cleaner) run(ctx context.Context) {
	defer close(c.done)
	wait := c.interval/2 + rand.N(c.interval/2+1)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = c.interval
		// A round that hangs (a server that stopped answering) gives up
		// before the next is due, or after 30 seconds.
		round, cancel := context.WithTimeout(ctx, max(c.interval, 30*time.Second))
		_, err := c.clean(round)
		cancel()
		if err != nil && ctx.Err() == nil && c.log != nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "pgstore: cleaning failed", slog.String("error", err.Error()))
		}
	}
}
