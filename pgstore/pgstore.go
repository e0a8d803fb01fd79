package pgstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpkit/otp"
)

// Config holds a Store's tunables, and names the tables for [Migrate].
// Every zero field takes its default.
type Config struct {
	// Schema holds the tables and functions. It must be a lower-case SQL
	// identifier (letters, digits and underscores, not starting with a
	// digit). Migrate creates it if it is missing. Default "public".
	Schema string
	// Prefix starts the name of every table, type and function, so that
	// several applications, or several sets of limits, can share a
	// schema. The same characters as Schema; at most 24 bytes. Default
	// "otp_".
	Prefix string
	// Retention is how long an expired verification still answers
	// [otp.ErrExpired] before it answers [otp.ErrNotFound]: from its
	// ExpiresAt plus Retention on, no read sees it, and the cleaner
	// deletes it. Default 5 minutes; values under a second, the least the
	// otp.Store contract allows, are raised to a second.
	Retention time.Duration
	// Clock, if set, tells the time for expiry, claims and limits instead
	// of the PostgreSQL server's clock, for tests that move time by hand
	// (otptest.Clock). Every process sharing the tables must then read the
	// same clock. Default: nil, the server's clock_timestamp(), one clock
	// for every instance.
	Clock otp.Clock
	// KeySecret keys the HMAC-SHA256 that stands, in the tables' primary
	// keys, for the caller's key of each verification and for the number,
	// client ID, region or range of each limit bucket, so that no key
	// column holds a raw number, IP address or user ID. Every instance
	// sharing the tables must use the same secret: changing it strands the
	// pending verifications and the limits' state under ids no instance
	// looks up again, until the cleaner deletes them. Use 32 random bytes
	// from your secret store; shorter than 16 bytes is refused.
	//
	// Default: a key built into this package. It keeps the ids unreadable
	// at a glance, but not to someone who has the code and the table:
	// phone numbers are few enough to hash every candidate and compare.
	// Set a secret of your own.
	KeySecret []byte
	// CleanInterval is how often the Store's cleaner deletes the rows no
	// read can see any more: verifications past ExpiresAt plus Retention,
	// claims past their Until, buckets that are full again, breakers idle
	// for two windows, overrides past their Until. Each round deletes in
	// batches of CleanBatch rows per table, until a batch comes back
	// short. Every instance may run one: they skip the rows another holds.
	// Negative turns the cleaner off, for a deployment that calls
	// [Store.Clean] itself (from one instance, or a cron job). Default 1
	// minute.
	CleanInterval time.Duration
	// CleanBatch is the most rows of one table one cleaning statement
	// deletes, so that no statement holds many locks or runs long.
	// Default 1000.
	CleanBatch int
	// Logger receives the cleaner's failures, at level Warn. They never
	// hold a database URL, a number or a key. Default: none.
	Logger *slog.Logger
	// SynchronousCommit makes each write wait, before it answers, until
	// PostgreSQL has flushed it to disk (and to synchronous standbys), as
	// the server's synchronous_commit setting says. By default the Store
	// turns synchronous_commit off for its own transactions: a write then
	// answers before its flush, and a crash of the server can lose the
	// writes of its last moments (up to three times wal_writer_delay,
	// 0.6 s by default), never leave them half done. What such a crash
	// loses is short-lived: pending verifications (their people ask for a
	// new code), claims, and the limits' counts of that moment. A counted
	// attempt, a consumed verification and SetOverride always wait for
	// their flush (see the package doc).
	SynchronousCommit bool
}

const (
	defaultSchema        = "public"
	defaultPrefix        = "otp_"
	maxPrefixLen         = 24 // leaves room for the longest suffix in 63 bytes
	defaultRetention     = 5 * time.Minute
	minRetention         = time.Second
	defaultCleanInterval = time.Minute
	defaultCleanBatch    = 1000
	minKeySecret         = 16
	digestLen            = 16 // bytes of HMAC-SHA256 kept in an id

	// maxTries bounds the runs of one call that fail with a serialization
	// failure, a deadlock or a connection that never sent it.
	maxTries = 20
)

// defaultKeySecret keys the ids when Config.KeySecret is unset. It is
// public: it hides the raw values from a glance, not from a search.
var defaultKeySecret = []byte("github.com/otpkit/otp/pgstore: default KeySecret")

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Errors of this package. Failures to reach PostgreSQL, or to make sense
// of its answer, are *[Error] values, which match [otp.ErrStoreUnavailable].
var (
	// ErrNotMigrated means the tables or functions a call needs are
	// missing, or older than this package: run [Migrate]. It comes
	// wrapped in an *Error, so it also matches otp.ErrStoreUnavailable.
	ErrNotMigrated = errors.New("pgstore: schema missing or out of date (run pgstore.Migrate)")
	// ErrSchemaNewer means the schema was migrated by a newer version of
	// this package than the one running: Migrate changes nothing.
	ErrSchemaNewer = errors.New("pgstore: schema is newer than this version of pgstore")
	// ErrBadRequest means a call was given a limit it cannot apply: a
	// bucket without a positive N and Per, or a breaker whose Window is
	// under a microsecond. Nothing was sent to PostgreSQL.
	ErrBadRequest = errors.New("pgstore: invalid limit request")
)

// Error is a failure to reach PostgreSQL, or to make sense of its answer,
// during the operation Op. It matches [otp.ErrStoreUnavailable] and
// whatever Err wraps (a context error, a *pgconn.PgError, [ErrNotMigrated]).
// It does not say whether the statement ran: a Delete whose reply was lost
// may have consumed the verification. Its message never holds the
// database URL, a key or a number.
type Error struct {
	Op  string // the Store method's operation: "get", "put", "get and allow", ...
	Err error
}

// Error names the operation and the cause.
func (e *Error) Error() string {
	return "pgstore: " + e.Op + ": " + otp.ErrStoreUnavailable.Error() + ": " + e.Err.Error()
}

// Unwrap returns otp.ErrStoreUnavailable and Err.
func (e *Error) Unwrap() []error { return []error{otp.ErrStoreUnavailable, e.Err} }

// Store is an [otp.Store], an [otp.Limiter] and an [otp.LimitingStore] on
// PostgreSQL, shared by every process using the same tables and KeySecret.
// Create it with [New] on tables made by [Migrate]; it is safe for
// concurrent use. Close it to stop its cleaner; close the pool yourself.
type Store struct {
	pool      *pgxpool.Pool
	names     names
	sql       statements
	retention int64 // ns
	clock     otp.Clock
	macs      sync.Pool // of *mac, keyed with Config.KeySecret
	retries   atomic.Int64
	cleaner   *cleaner
	closeOnce sync.Once
	cleanup   runtime.Cleanup
}

var (
	_ otp.Store         = (*Store)(nil)
	_ otp.Limiter       = (*Store)(nil)
	_ otp.LimitingStore = (*Store)(nil)
)

// names are the identifiers a Config gives the tables.
type names struct {
	schema string // the schema, quoted
	T      string // the qualified prefix: "schema".prefix
	P      string // the bare prefix
	LockV  int32  // advisory lock class of verification keys
	LockB  int32  // advisory lock class of limit buckets
	LockK  int32  // advisory lock class of breakers
	LockM  int32  // advisory lock class of Migrate
}

func namesOf(cfg Config) (names, error) {
	if cfg.Schema == "" {
		cfg.Schema = defaultSchema
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if !identifier.MatchString(cfg.Schema) || len(cfg.Schema) > 63 {
		return names{}, errors.New("pgstore: Schema must be a lower-case SQL identifier of at most 63 bytes")
	}
	if !identifier.MatchString(cfg.Prefix) || len(cfg.Prefix) > maxPrefixLen {
		return names{}, fmt.Errorf("pgstore: Prefix must be a lower-case SQL identifier of at most %d bytes", maxPrefixLen)
	}
	q := pgx.Identifier{cfg.Schema}.Sanitize()
	class := func(kind string) int32 {
		h := fnv.New32a()
		h.Write([]byte("pgstore\x00" + kind + "\x00" + cfg.Schema + "\x00" + cfg.Prefix))
		return int32(h.Sum32())
	}
	return names{schema: q, T: q + "." + cfg.Prefix, P: cfg.Prefix,
		LockV: class("v"), LockB: class("b"), LockK: class("k"), LockM: class("m")}, nil
}

// statements are the SQL of each call, on the Config's tables.
type statements struct {
	get, put, release, markSent, delete, allow, record, getAllow,
	allowAddAttempt, putRecord, deleteRecord, setOverride, overrides, clean, version string
}

// asyncCommit, joined to a call's function, turns synchronous_commit off
// for the transaction of that one statement.
const asyncCommit = " CROSS JOIN set_config('synchronous_commit', 'off', true)"

// replyColumns are the columns of the reply type, as each call scans them.
const replyColumns = "st, idx, wait, provider, ref_id, dest, region, channel, challenged, sends, attempts, " +
	"created_s, created_n, sent_s, sent_n, expires_s, expires_n"

func statementsOf(n names, async bool) statements {
	// call calls fn with args parameters; with now, the first two of
	// those, the time, are given to now() first (for fn that takes the
	// time itself). An async call's transaction commits without waiting
	// for its flush: set_config's is_local lasts until the commit that
	// ends the statement. Writes that must survive a crash are durable.
	const now, durable, read = true, true, true
	call := func(fn string, args int, atNow, mustLast bool) string {
		s, first := "SELECT "+replyColumns+" FROM "+n.T+fn+"(", 1
		if atNow {
			s, first = s+n.T+"now($1, $2)", 3
		}
		for i := first; i <= args; i++ {
			if i > 1 {
				s += ", "
			}
			s += "$" + strconv.Itoa(i)
		}
		s += ")"
		if async && !mustLast {
			s += asyncCommit
		}
		return s
	}
	return statements{
		get:      call("get", 3, !now, read), // writes nothing: no commit to hurry
		put:      call("put", 18, !now, !durable),
		release:  call("release", 4, !now, !durable),
		markSent: call("mark_sent", 6, !now, !durable),
		// A consumed verification and a counted attempt must not come
		// back after a crash: a code would work twice, or a guess more
		// than MaxAttempts times.
		delete:          call("delete", 4, !now, durable),
		allow:           call("decide", 16, now, !durable),
		record:          call("record", 11, now, !durable),
		getAllow:        call("get_allow", 24, !now, !durable),
		allowAddAttempt: call("allow_add_attempt", 18, !now, durable),
		putRecord:       call("put_record", 27, !now, !durable),
		deleteRecord:    call("delete_record", 13, !now, durable),
		// An operator's block is worth its flush.
		setOverride: call("set_override", 6, !now, durable),
		overrides:   "SELECT target, action, until_s, until_n FROM " + n.T + "overrides_in_force($1, $2)",
		// The cleaner's deletes keep the server's setting: they are
		// background work, whose flush nobody waits for.
		clean:   "SELECT verifications, buckets, breakers, overrides FROM " + n.T + "clean($1, $2, $3)",
		version: "SELECT coalesce(max(version), 0) FROM " + n.T + "schema_version",
	}
}

// New returns a Store on pool configured by cfg, and starts its cleaner
// unless cfg.CleanInterval is negative. It does not reach the database:
// run [Migrate] first, and [Store.CheckSchema] to find out at start that
// the tables are there.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New needs a pool")
	}
	n, err := namesOf(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Retention < 0 {
		return nil, errors.New("pgstore: Retention must not be negative")
	}
	if cfg.Retention == 0 {
		cfg.Retention = defaultRetention
	}
	cfg.Retention = max(cfg.Retention, minRetention)
	secret := defaultKeySecret
	if cfg.KeySecret != nil {
		if len(cfg.KeySecret) < minKeySecret {
			return nil, fmt.Errorf("pgstore: KeySecret must be at least %d bytes", minKeySecret)
		}
		secret = slices.Clone(cfg.KeySecret)
	}
	if cfg.CleanBatch < 0 {
		return nil, errors.New("pgstore: CleanBatch must not be negative")
	}
	if cfg.CleanBatch == 0 {
		cfg.CleanBatch = defaultCleanBatch
	}
	if cfg.CleanInterval == 0 {
		cfg.CleanInterval = defaultCleanInterval
	}
	s := &Store{
		pool:      pool,
		names:     n,
		sql:       statementsOf(n, !cfg.SynchronousCommit),
		retention: cfg.Retention.Nanoseconds(),
		clock:     cfg.Clock,
	}
	s.macs.New = func() any { return &mac{h: hmac.New(sha256.New, secret)} }
	s.cleaner = &cleaner{pool: pool, sql: s.sql.clean, clock: cfg.Clock, batch: cfg.CleanBatch,
		interval: cfg.CleanInterval, log: cfg.Logger}
	if cfg.CleanInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.cleaner.stop, s.cleaner.done = cancel, make(chan struct{})
		go s.cleaner.run(ctx)
		// The cleaner references only the cleaner, so a Store dropped
		// without Close becomes unreachable; stop the cleaner then rather
		// than leak it.
		s.cleanup = runtime.AddCleanup(s, func(stop context.CancelFunc) { stop() }, cancel)
	}
	return s, nil
}

// Close stops the cleaner and waits for it to return. It always returns
// nil, and calling it again does nothing. The Store keeps working after
// Close; it does not close the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.cleaner.stop != nil {
			s.cleanup.Stop()
			s.cleaner.stop()
			<-s.cleaner.done
		}
	})
	return nil
}

// CheckSchema reports whether the tables and functions this package needs
// are in place, at the version it migrates to: nil, an *Error wrapping
// [ErrNotMigrated] or [ErrSchemaNewer], or an *Error for a database it
// cannot reach. One round trip.
func (s *Store) CheckSchema(ctx context.Context) error {
	var v int
	err := s.pool.QueryRow(ctx, s.sql.version).Scan(&v)
	switch {
	case err != nil:
		return fail("check schema", err)
	case v < len(migrations):
		return &Error{Op: "check schema", Err: ErrNotMigrated}
	case v > len(migrations):
		return &Error{Op: "check schema", Err: ErrSchemaNewer}
	}
	return nil
}

// mac computes the digests that stand for keys.
type mac struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// Kinds of value a digest stands for, so that equal strings of different
// kinds get different ids.
const (
	kindVerification = 'v'
	kindBucket       = 'l'
	kindBreaker      = 'b'
)

// digest returns the id of the value key of the kind and scope given: the
// first digestLen bytes of HMAC-SHA256 under the KeySecret.
func (s *Store) digest(kind byte, scope, key string) []byte {
	m := s.macs.Get().(*mac)
	defer s.macs.Put(m)
	// NUL ends the scope; the key, last, may hold anything.
	m.buf = append(append(append(append(m.buf[:0], kind, 0), scope...), 0), key...)
	m.h.Reset()
	m.h.Write(m.buf)
	return slices.Clone(m.h.Sum(m.sum[:0])[:digestLen])
}

func (s *Store) vid(key string) []byte { return s.digest(kindVerification, "", key) }

// now returns the two time arguments of every call: the Clock's time as
// Unix seconds and nanoseconds, or two NULLs for the server's clock.
func (s *Store) now() (sec, ns any) { return clockArgs(s.clock) }

func clockArgs(c otp.Clock) (sec, ns any) {
	if c == nil {
		return nil, nil
	}
	return split(c.Now())
}

// split returns t as the tables keep it, whatever its year: Unix seconds
// and nanoseconds (0 to 999,999,999).
func split(t time.Time) (sec int64, ns int32) { return t.Unix(), int32(t.Nanosecond()) }

// join is the inverse of split: the time of Unix seconds sec and
// nanoseconds ns, in UTC.
func join(sec int64, ns int32) time.Time { return time.Unix(sec, int64(ns)).UTC() }

// reply is what every function returns (the reply type of the schema).
type reply struct {
	st, idx                                int32
	wait                                   int64
	provider, refID, dest, region, channel string
	challenged                             bool
	sends, attempts                        int32
	createdS, sentS, expiresS              int64 // Unix seconds
	createdN, sentN, expiresN              int32 // and nanoseconds
}

// Statuses of a reply.
const (
	stNone      = 0
	stOK        = 1
	stExpired   = 2
	stTooMany   = 3
	stInFlight  = 4
	stLimited   = 10
	stChallenge = 11
	stOverride  = 12
	stBreaker   = 13
	stBlocked   = 14
)

// call runs one statement that returns a reply, and runs it again when
// that is safe and may succeed, after a short jittered wait, while ctx
// lasts, up to maxTries runs:
//   - a serialization failure or a deadlock (SQLSTATE 40001, 40P01),
//     which PostgreSQL rolled back whole;
//   - a server's FATAL shutdown message (SQLSTATE 57P01, 57P02, 57P03)
//     before the reply's row: the statement was cut short and rolled back,
//     or never ran, as on a pooled connection to a server that has
//     restarted since (every function returns its row before it commits);
//   - a failure before anything was sent (pgconn.SafeToRetry).
//
// Any other failure is an *Error.
func (s *Store) call(ctx context.Context, op, sql string, args ...any) (reply, error) {
	var r reply
	err := s.retry(ctx, func() (bool, error) {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return false, err
			}
			return false, errors.New("no reply")
		}
		err = rows.Scan(&r.st, &r.idx, &r.wait, &r.provider, &r.refID, &r.dest,
			&r.region, &r.channel, &r.challenged, &r.sends, &r.attempts, &r.createdS, &r.createdN,
			&r.sentS, &r.sentN, &r.expiresS, &r.expiresN)
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		return true, err
	})
	if err != nil {
		return reply{}, fail(op, err)
	}
	return r, nil
}

// retry runs f, and again as call says; f reports whether the reply's row
// came.
func (s *Store) retry(ctx context.Context, f func() (row bool, err error)) error {
	for try := 1; ; try++ {
		row, err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || try >= maxTries || !retryable(err, row) {
			return err
		}
		s.retries.Add(1)
		if err := sleep(ctx, try); err != nil {
			return err
		}
	}
}

// retryable reports whether err, after row or before it, leaves the
// statement safe to run again.
func retryable(err error, row bool) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01":
			return true
		case "57P01", "57P02", "57P03":
			return !row
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

// sleep waits before the next try: up to 1 ms, doubling each try, at most
// 100 ms, jittered.
func sleep(ctx context.Context, try int) error {
	d := min(time.Millisecond<<min(try-1, 7), 100*time.Millisecond)
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fail wraps err, the failure of op, in an *Error; missing tables or
// functions also wrap ErrNotMigrated.
func fail(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", "42883", "42704", "3F000": // undefined table, function, object, schema
			err = fmt.Errorf("%w: %w", ErrNotMigrated, err)
		}
	}
	return &Error{Op: op, Err: err}
}
