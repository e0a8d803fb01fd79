package otp

import (
	"context"
	"time"
)

// Verification is a pending verification as the Store keeps it.
type Verification struct {
	Key        string    // the caller's key; at most MaxKeyLen bytes
	Ref        Ref       // where the verification lives at the vendor
	To         string    // E.164 number or email address
	Region     string    // ISO 3166 region of To, "" for email
	Channel    Channel   // channel of the last send
	Challenged bool      // the Start passed a challenge (WithChallengePassed)
	Sends      int       // codes sent to To under this key in a row; the resend cooldown grows with it
	Attempts   int       // checks reserved so far
	CreatedAt  time.Time // when this verification's first code was sent
	SentAt     time.Time // when a code was last sent; the resend cooldown runs from here
	ExpiresAt  time.Time // from this instant on, Check fails with ErrExpired
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
// A key may also hold a claim: the mark of a send in flight, so that
// concurrent Starts on several instances send once. A claim is dropped by
// the Put that follows the send, by Release, or at its Until.
//
// Implementations must be safe for concurrent use and wrap transport
// failures with ErrStoreUnavailable. The conformance suite in
// otptest.TestStore checks every rule here.
type Store interface {
	// Get returns the verification under key: ErrNotFound if there is none,
	// ErrExpired if it has expired.
	Get(ctx context.Context, key string) (Verification, error)

	// Claim returns the live verification under key, or a zero
	// Verification if there is none or it has expired, and claims the key
	// for c: unless another caller's claim holds it until after now, in
	// which case it returns ErrSendInFlight and claims nothing. Of any
	// number of concurrent Claims of a free key exactly one succeeds.
	Claim(ctx context.Context, key string, c Claim) (Verification, error)

	// Release drops the claim on key if token holds it; otherwise it does
	// nothing. It returns nil either way, unless the store is unavailable.
	Release(ctx context.Context, key, token string) error

	// Put stores v under v.Key, replacing whatever was there (attempts and
	// any claim included), until v.ExpiresAt plus the store's retention.
	Put(ctx context.Context, v Verification) error

	// AddAttempt atomically reserves one attempt on the live verification
	// under key, if it has used fewer than max, and returns it with Attempts
	// counting the new one. With max already used it returns
	// ErrTooManyAttempts and changes nothing; ErrNotFound and ErrExpired are
	// as for Get. Of any number of concurrent calls exactly max minus the
	// attempts already used succeed.
	AddAttempt(ctx context.Context, key string, max int) (Verification, error)

	// MarkSent records a resend on the live verification under key with
	// Ref.ID id: it sets SentAt to at and adds one to Sends, leaving
	// everything else alone. ErrNotFound and ErrExpired are as for Get.
	MarkSent(ctx context.Context, key, id string, at time.Time) error

	// Delete removes the verification under key with Ref.ID id. Of any
	// number of concurrent calls exactly one returns nil; the others get
	// ErrNotFound. An expired verification can still be deleted.
	Delete(ctx context.Context, key, id string) error
}

// Claim marks a send in flight under a key (see Store.Claim).
type Claim struct {
	Token string    // the claimant's random token
	Until time.Time // the claim ends by itself then
}

// LimitingStore is an optional capability of a Store that also keeps the
// limits (redisstore and pgstore do): it reads a verification, claims it
// and takes limit tokens in one atomic step, and writes or consumes it
// while feeding the outcome to the breakers in another, so that a shared
// store costs two round trips for a Start and two for a Check. A Verifier
// uses it when Config.Limiter is nil. It wraps any other Store and
// Limiter in the same interface, so that it has one path.
type LimitingStore interface {
	Store
	Limiter

	// GetAllow returns the live verification under key, or a zero
	// Verification (empty Ref.ID) if there is none or it has expired. If it
	// is the repeat spare describes, that is all. Otherwise, in the same
	// step, it decides reqs as Limiter.Allow does and, when they pass,
	// claims the key for c as Claim does: ErrSendInFlight if another claim
	// holds it (then no token is taken).
	GetAllow(ctx context.Context, key string, spare Spare, c Claim, reqs []LimitRequest) (Verification, error)

	// PutRecord is Put followed by Record(o, reqs), as one step.
	PutRecord(ctx context.Context, v Verification, o Outcome, reqs []LimitRequest) error

	// AllowAddAttempt takes tokens for reqs as Limiter.Allow does and, if
	// they were granted, reserves an attempt as AddAttempt does. A denial
	// reserves nothing.
	AllowAddAttempt(ctx context.Context, key string, max int, reqs []LimitRequest) (Verification, error)

	// DeleteRecord is Delete followed by Record(o, reqs), as one step: the
	// outcome is recorded once per send, when the Delete removed the
	// verification, and never for an ID that was never stored (a store may
	// also record it for a verification replaced after its code was
	// accepted: redisstore on Cluster does).
	DeleteRecord(ctx context.Context, key, id string, o Outcome, reqs []LimitRequest) error
}

// Spare describes the repeat Start that sends nothing: the same number
// again while the resend cooldown of the pending verification runs.
type Spare struct {
	To        string          // the number the new Start asks for
	Now       time.Time       // the time of the Start
	Cooldowns []time.Duration // Config.ResendCooldowns
}

// Matches reports whether v is the repeat s describes: a verification to
// s.To whose cooldown, Cooldown(s.Cooldowns, v.Sends) from v.SentAt, runs
// past s.Now.
func (s Spare) Matches(v Verification) bool {
	return v.Ref.ID != "" && v.To == s.To && s.Now.Before(v.SentAt.Add(Cooldown(s.Cooldowns, v.Sends)))
}

// Cooldown is the resend cooldown after the sends-th code: the sends-th
// entry of cooldowns, the last one beyond its end (and the first for a
// verification of no recorded sends).
func Cooldown(cooldowns []time.Duration, sends int) time.Duration {
	if len(cooldowns) == 0 {
		return 0
	}
	return cooldowns[min(max(sends, 1), len(cooldowns))-1]
}
