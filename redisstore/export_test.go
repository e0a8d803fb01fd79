package redisstore

import (
	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
)

// Scripts are the package's scripts by name, for tests that load them or
// recognise them on the wire.
var Scripts = map[string]*redis.Script{
	"get":             getScript,
	"put":             putScript,
	"addAttempt":      addAttemptScript,
	"markSent":        markSentScript,
	"delete":          deleteScript,
	"allow":           allowScript,
	"refund":          refundScript,
	"getAllow":        getAllowScript,
	"allowAddAttempt": allowAddAttemptScript,
}

// VerificationKey returns the name of the Redis key holding the
// verification under key.
func (s *Store) VerificationKey(key string) string { return s.vkey(key) }

// BucketKey returns the name of the Redis key holding a limit bucket.
func (s *Store) BucketKey(scope otp.Scope, key string) string {
	return s.bucket(scope, key)
}
