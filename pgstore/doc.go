// Package pgstore keeps pending verifications and abuse limits in
// PostgreSQL, so that several processes behind a load balancer behave as
// one [otp.Verifier]: one success of any number of concurrent correct
// checks, never more wrong guesses than MaxAttempts, one send of any
// number of concurrent Starts of a key and number, and a resend cooldown,
// send limits, conversion breakers and operators' overrides that hold
// across instances.
//
// It works on github.com/jackc/pgx/v5 and takes a *pgxpool.Pool, which
// the caller configures and closes:
//
//	pool, err := pgxpool.New(ctx, os.Getenv("OTP_POSTGRES_URL"))
//	if err != nil {
//		return err
//	}
//	defer pool.Close()
//	cfg := pgstore.Config{KeySecret: secret} // the same in every instance
//	if err := pgstore.Migrate(ctx, pool, cfg); err != nil {
//		return err
//	}
//	store, err := pgstore.New(pool, cfg)
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	v, err := otp.NewVerifier(provider, store, otp.Config{})
//
// A [Store] is an [otp.Store], an [otp.Limiter] and an
// [otp.LimitingStore]: left with a nil Config.Limiter, the Verifier keeps
// its limits in PostgreSQL too, and asks for a verification and the limit
// tokens in one call.
//
// # Round trips
//
// Every Store method is one statement, SELECT of one PL/pgSQL function of
// the schema, run in its own implicit transaction: no client-side
// read-modify-write and no transaction held open across round trips. A
// Verifier's Start costs two round trips (GetAllow, which reads the
// pending verification, decides the limits and claims the key; then
// PutRecord, which stores the verification and feeds the send to the
// breakers), one for a repeat inside the cooldown, and a Check two
// (AllowAddAttempt, then DeleteRecord for a right code; one for a wrong
// one). With pgx's default statement cache, a connection also prepares
// each statement once, the first time it runs it; any other
// DefaultQueryExecMode works too (QueryExecModeExec or
// QueryExecModeSimpleProtocol prepare nothing, for a connection pooler in
// transaction mode). pgxpool pings a connection that was idle for over a
// second before it hands it out (pgxpool.Config.ShouldPing), a round trip
// of its own.
//
// # Commits and pool size
//
// A Store's writes commit with synchronous_commit off for their own
// transactions: they answer before PostgreSQL flushes them, and a crash
// of the server can lose its last moments of pending verifications,
// claims and limit counts, never leave one half written. The writes whose
// loss would weaken a guarantee keep the server's setting: a counted
// attempt and a consumed verification (AllowAddAttempt, Delete,
// DeleteRecord), so that no crash lets a code work twice or a guess more
// than MaxAttempts times, and SetOverride; so do the cleaner's deletes.
// Config.SynchronousCommit keeps the server's setting for every write.
//
// Every Start takes the same few rows (the total budget, the region's
// bucket and breaker), each under a lock held until its statement
// commits, so the Store wants a small pool: pgxpool's default (4
// connections, or one a CPU) served 1.6-1.9x the flows of a pool of 64
// on two cores, where 64 PostgreSQL processes queued for those rows (see
// BENCHMARKS.md).
//
// # Schema
//
// [Migrate] applies the schema this package embeds, versioned, in one
// transaction under an advisory lock: it is idempotent, and safe from
// several processes at once. Run it at start or from a deploy step;
// [Store.CheckSchema] tells at start whether it has run. Config.Schema
// (default "public") holds the tables, and Config.Prefix (default "otp_")
// starts their names, so that applications or environments can share a
// database:
//
//	otp_verifications   a pending verification or a claim per key
//	otp_buckets         a limit bucket: a GCRA timestamp
//	otp_breakers        a conversion breaker's counts, per region or calling-code group
//	otp_overrides       the operators' overrides
//	otp_schema_version  the versions applied
//
// and the functions otp_get, otp_get_allow, otp_put_record, ... that the
// Store calls. The Store's role needs to execute those functions and to
// read and write the tables; only Migrate's creates them.
//
// # Personal data, and for how long
//
// No primary key holds a raw value: a verification's row is keyed by the
// first 16 bytes of HMAC-SHA256, under Config.KeySecret, of the caller's
// key (a session or user ID, or the number itself), and a bucket's by that
// of its scope and key (a number, a client ID or IP address, a region, a
// range). But numbers are stored as data, as the Verifier gives them:
//
//   - otp_verifications holds, per pending verification, the E.164 number
//     or email address the code went to, its region, the vendor and the
//     vendor's reference, the channel, the sends, the attempts and the
//     times, until its ExpiresAt plus Config.Retention (5 minutes by
//     default): from then on no read sees it, and the cleaner deletes the
//     row within Config.CleanInterval (a minute by default). Consuming or
//     cancelling it deletes it at once. A Start's claim on the key (a
//     random token and a time, a minute at most) keeps none of it: the
//     claim of a key whose verification is gone replaces the row, and
//     consuming a verification under a claim leaves only the claim. Only a
//     verification whose retention ends while a Start's claim holds
//     its key stays, unread, until that claim's Until. A claim alone goes
//     likewise at its Until.
//   - otp_buckets holds a scope ("number", "client", ...) and a timestamp
//     per bucket, until the bucket is full again: at most the limit's Per.
//   - otp_breakers holds a region or calling-code group and its counts
//     (sends, verified, refused and passed, for its window and the one
//     before; the sends still in their grace, for two windows of its
//     Grace), until two of its windows (an hour each by default), and two
//     of its Grace's, pass without a send.
//   - otp_overrides holds regions, calling codes and number ranges (a
//     range is a number's first digits, like "+44740012", as an operator
//     sets it), until their Until or until an operator removes them.
//
// Deleted rows stay on disk until VACUUM reclaims their space, and in the
// write-ahead log, backups and replicas as long as those are kept. Secure,
// back up and erase this database as you would a list of your users'
// phone numbers.
//
// Without Config.KeySecret the digests are keyed with a secret built into
// this package: the ids are unreadable at a glance, but anyone with the
// code and the table can test guesses, and phone numbers are few enough to
// try them all. Set a secret of your own, the same in every instance.
//
// # Limits
//
// Allow decides as otp.MemoryLimiter does, with the same answers, and
// atomically across every instance: each bucket of N per Per is GCRA (the
// generic cell rate algorithm), one row holding a timestamp exact to the
// nanosecond, allowing a burst of N and one more every Per/N; a breaker
// keeps the counts of its current fixed window and the one before, counts
// each send also as young in two windows of its Grace (a Grace of 0 is
// none), and judges them with the arithmetic of [otp.LimitBreaker] in
// double precision, as MemoryLimiter does: the sends still in their grace
// are left out of its demand, but for a surge beyond what it has seen. A breaker is its key and Window, as in
// MemoryLimiter, and its young counts are kept in the windows of the Grace
// each call gives: give a breaker one Grace. A call denied takes no token
// and writes no row, but for an open breaker's count of refusals, so that
// a flood of refused calls, with fresh numbers or client IDs each, leaves
// nothing behind. Buckets are their scope and key, whatever the Limit:
// Verifiers whose Limits differ share them, and a changed Limit applies to
// the buckets as they are.
//
// # Concurrency
//
// Each function takes its locks in one order, so that no two calls wait
// for each other in a circle: the advisory lock of the verification key
// (where the call may create the row), the verification's row, the
// advisory locks of the buckets (in ascending order of a 32-bit key drawn
// from their ids; advisory, because a bucket nobody has written yet has
// no row to lock, and a denial must write none), then the breakers' rows
// in ascending id; a call that records an outcome first takes the
// advisory locks of its breakers, in ascending order too, as it may
// create their rows. The locks last until the statement ends. The cleaner
// skips rows that others hold, and waits for none.
//
// A serialization failure or a deadlock (SQLSTATE 40001 or 40P01), which
// PostgreSQL rolls back whole, is run again inside the Store, after a
// short jittered wait, up to 20 runs while the context lasts; it never
// surfaces as a wrong answer. So is a statement that met a server's
// shutdown message (57P01, 57P02, 57P03) before its reply's row, which
// means it was cut short or never ran: the first statement on a pooled
// connection to a server that has restarted since. At the default READ
// COMMITTED isolation they do not arise between the Store's own calls;
// under a server's or role's
// default_transaction_isolation of REPEATABLE READ or SERIALIZABLE, a row
// written by a concurrent call after the statement's snapshot raises
// 40001, and the retry answers from the new state.
//
// # Time and expiry
//
// Expiry, claims and limits read the PostgreSQL server's clock
// (clock_timestamp()), one clock for every instance; Config.Clock
// replaces it in tests. Each time is kept as Unix seconds and nanoseconds,
// in two columns, so a verification's times round-trip exactly whatever
// their year, and a clock of any year tells expiry, claims and limits. A
// verification is live strictly before its ExpiresAt, then answers
// otp.ErrExpired until ExpiresAt plus Config.Retention, and from then on
// otp.ErrNotFound.
//
// # Cleaning
//
// Rows no read can see any more are deleted by the statements themselves
// where that is cheap (a Put over them, a call that locks the row anyway, a
// refund that fills a bucket, a Release that leaves a row empty) and by
// the cleaner: a goroutine each Store runs every Config.CleanInterval,
// which deletes in statements of at most Config.CleanBatch rows per table
// until a batch comes back short. Close stops it. Turn it off with a
// negative CleanInterval to call [Store.Clean] yourself.
//
// # Failures
//
// Every failure to reach PostgreSQL, or to make sense of its answer,
// including a context's deadline, is an *[Error], which matches
// otp.ErrStoreUnavailable and wraps its cause. It does not say whether the
// statement ran: a DeleteRecord whose reply was lost may have consumed the
// verification. A call on tables that are missing also matches
// [ErrNotMigrated]. Errors never hold the database URL, a key or a number.
package pgstore
