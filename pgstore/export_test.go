package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpkit/otp"
)

// Retries returns how many times the Store has run a statement again.
func (s *Store) Retries() int64 { return s.retries.Load() }

// VerificationID returns the id of the row holding the verification under
// key.
func (s *Store) VerificationID(key string) []byte { return s.vid(key) }

// BucketID returns the id of the row holding a limit bucket.
func (s *Store) BucketID(scope otp.Scope, key string) []byte {
	return s.digest(kindBucket, string(scope), key)
}

// Table returns the qualified name of one of the Store's tables
// ("verifications", "buckets", ...).
func (s *Store) Table(name string) string { return s.names.T + name }

// BreakerID returns the id of the row holding a breaker.
func (s *Store) BreakerID(key string, window time.Duration) []byte {
	return s.breakerID(key, window.Microseconds())
}

// SchemaVersion is the version Migrate brings the schema to.
var SchemaVersion = len(migrations)

// MigrateTo is Migrate up to version to, for tests of the upgrades.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, cfg Config, to int) error {
	return migrate(ctx, pool, cfg, to)
}
