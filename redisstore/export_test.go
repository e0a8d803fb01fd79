package redisstore

import "github.com/otpkit/otp"

// VerificationKey returns the name of the Redis key holding the
// verification under key.
func (s *Store) VerificationKey(key string) string { return s.vkey(key) }

// BucketKey returns the name of the Redis key holding a limit bucket.
func (s *Store) BucketKey(scope otp.Scope, key string) string {
	return s.bucket(scope, key)
}
