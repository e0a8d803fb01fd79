package otp

import (
	"context"
	"time"
)

// Verification is a pending verification as the Store keeps it.
type Verification struct {
	Key       string    // the caller's key; at most MaxKeyLen bytes
	Ref       Ref       // where the verification lives at the vendor
	To        string    // E.164 number or email address
	Channel   Channel   // channel of the last send
	Attempts  int       // checks reserved so far
	CreatedAt time.Time // when this verification's first code was sent
	SentAt    time.Time // when a code was last sent; the resend cooldown runs from here
	ExpiresAt time.Time // from this instant on, Check fails with ErrExpired
}

// Store keeps pending verifications. It owns the only state that several
// Verifier instances must agree on, so every method is atomic with respect
// to every other on the same key, across all processes sharing the Store.
//
// Keys are any string of 1 to MaxKeyLen bytes (NUL, braces and newlines
// included). Times round-trip to the nanosecond (compare with Equal).
//
// Expiry: a verification is live while the store's clock reads before its
// ExpiresAt; from ExpiresAt on (equality included) the methods that read it
// return ErrExpired for a while (a store-defined retention of at least a
// second) and then ErrNotFound. A store never returns an expired
// verification as live.
//
// Methods taking an id act only when the stored verification's Ref.ID is
// id, so that an operation on a replaced verification cannot touch the new
// one; a mismatch is ErrNotFound.
//
// Implementations must be safe for concurrent use and wrap transport
// failures with ErrStoreUnavailable. The conformance suite in
// otptest.TestStore checks every rule here.
type Store interface {
	// Get returns the verification under key: ErrNotFound if there is none,
	// ErrExpired if it has expired.
	Get(ctx context.Context, key string) (Verification, error)

	// Put stores v under v.Key, replacing whatever was there (attempts
	// included), until v.ExpiresAt plus the store's retention.
	Put(ctx context.Context, v Verification) error

	// AddAttempt atomically reserves one attempt on the live verification
	// under key, if it has used fewer than max, and returns it with Attempts
	// counting the new one. With max already used it returns
	// ErrTooManyAttempts and changes nothing; ErrNotFound and ErrExpired are
	// as for Get. Of any number of concurrent calls exactly max minus the
	// attempts already used succeed.
	AddAttempt(ctx context.Context, key string, max int) (Verification, error)

	// MarkSent sets SentAt on the live verification under key with Ref.ID
	// id, leaving everything else alone. ErrNotFound and ErrExpired are as
	// for Get.
	MarkSent(ctx context.Context, key, id string, at time.Time) error

	// Delete removes the verification under key with Ref.ID id. Of any
	// number of concurrent calls exactly one returns nil; the others get
	// ErrNotFound. An expired verification can still be deleted.
	Delete(ctx context.Context, key, id string) error
}

// LimitingStore is an optional capability of a Store that also keeps the
// limits (redisstore does): it reads a verification and takes limit tokens
// in one atomic step, so that a shared store costs one round trip where a
// separate Store and Limiter would cost two. A Verifier uses it when the
// store is also its Limiter: Config.Limiter is nil or the store itself.
type LimitingStore interface {
	Store
	Limiter

	// GetAllow returns the live verification under key, or a zero
	// Verification (empty Ref.ID) if there is none or it has expired, and
	// in the same step takes tokens for reqs as Limiter.Allow does: all or
	// none, a *RateLimitError when denied. No tokens are taken when the
	// verification returned is a repeat that sends nothing: one to
	// spare.To sent after spare.SentAfter.
	GetAllow(ctx context.Context, key string, spare Spare, reqs []LimitRequest) (Verification, error)

	// AllowAddAttempt takes tokens for reqs as Limiter.Allow does and, if
	// they were granted, reserves an attempt as AddAttempt does. A denial
	// reserves nothing.
	AllowAddAttempt(ctx context.Context, key string, max int, reqs []LimitRequest) (Verification, error)
}

// Spare describes the repeat Start that sends nothing: the same number
// again inside the resend cooldown.
type Spare struct {
	To        string    // the number the new Start asks for
	SentAfter time.Time // the cooldown covers sends strictly after this
}

// Matches reports whether v is the repeat s describes.
func (s Spare) Matches(v Verification) bool {
	return v.Ref.ID != "" && v.To == s.To && v.SentAt.After(s.SentAfter)
}
