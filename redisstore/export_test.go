package redisstore

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
)

// Scripts are the package's scripts by name, for tests that load them or
// recognise them on the wire.
var Scripts = map[string]*redis.Script{
	"get":             getScript,
	"put":             putScript,
	"putRecord":       putRecordScript,
	"record":          recordScript,
	"recordMark":      recordMarkScript,
	"recordMarked":    recordMarkedScript,
	"addAttempt":      addAttemptScript,
	"markSent":        markSentScript,
	"delete":          deleteScript,
	"deleteRecord":    deleteRecordScript,
	"allow":           allowScript,
	"allowAddAttempt": allowAddAttemptScript,
	"claim":           claimScript,
	"getAllow":        getAllowScript,
	"release":         releaseScript,
	"setOverride":     setOverrideScript,
	"overrides":       overridesScript,
}

// VerificationKey returns the name of the Redis key holding the
// verification under key.
func (s *Store) VerificationKey(key string) string { return s.vkey(key) }

// BucketKey returns the name of the Redis key holding a limit bucket.
func (s *Store) BucketKey(scope otp.Scope, key string) string {
	return s.bucket(scope, key)
}

// ClaimKey returns the name of the Redis key holding the claim on key.
func (s *Store) ClaimKey(key string) string { return s.vnames(key).c }

// BreakerKey returns the name of the Redis key holding a breaker.
func (s *Store) BreakerKey(key string, window time.Duration) string {
	return s.breaker(key, window.Microseconds())
}

// MarkKey returns the name of the Redis key marking the send of the
// verification under key with Ref.ID id (on Cluster).
func (s *Store) MarkKey(key, id string) string { return s.mark(key, id) }

// OverridesKey returns the name of the Redis key holding the overrides.
func (s *Store) OverridesKey() string { return s.overrides }
