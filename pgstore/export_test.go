package pgstore

import (
	"time"

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
