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

// Clock tells the time. Verifier, memstore and the otptest fakes accept one
// so that tests control expiry without sleeping; the zero default is the
// system clock. Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
}

type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}
