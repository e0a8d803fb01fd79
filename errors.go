package otp

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel errors. Every error returned by this package and its adapters
// wraps one or more of these: match them with [errors.Is], never by message.
// Messages never hold a code, a secret or an unmasked phone number.
var (
	// ErrInvalidKey means the caller's key is empty or longer than MaxKeyLen.
	ErrInvalidKey = errors.New("otp: invalid key")
	// ErrInvalidPhone means the destination is not a valid phone number (or,
	// for the email channel, email address), or cannot receive the channel.
	ErrInvalidPhone = errors.New("otp: invalid phone number")
	// ErrRegionNotAllowed means the number's region or calling code is
	// refused by the Guard's allow or deny lists.
	ErrRegionNotAllowed = errors.New("otp: region not allowed")
	// ErrNumberTypeNotAllowed means the Guard refuses the number's type
	// (premium-rate, VoIP, ...) for the channel. The error is a
	// *NumberTypeError, which also matches ErrInvalidPhone.
	ErrNumberTypeNotAllowed = errors.New("otp: number type not allowed")
	// ErrUnsupportedChannel means the channel is unknown, or the provider
	// cannot deliver on it. Nothing was sent.
	ErrUnsupportedChannel = errors.New("otp: unsupported channel")
	// ErrInvalidCode means the code is malformed (not digits, or not
	// Config.CodeLength long). No attempt was used and no provider was asked.
	ErrInvalidCode = errors.New("otp: invalid code format")
	// ErrWrongCode means the provider rejected the code. The error is a
	// *WrongCodeError that says how many attempts are left.
	ErrWrongCode = errors.New("otp: wrong code")
	// ErrExpired means the verification existed but its code has expired.
	ErrExpired = errors.New("otp: verification expired")
	// ErrNotFound means nothing is pending under the key: never started,
	// already verified, cancelled, or expired long ago.
	ErrNotFound = errors.New("otp: verification not found")
	// ErrTooManyAttempts means every attempt was used; the verification is
	// burned and a new one must be started.
	ErrTooManyAttempts = errors.New("otp: too many attempts")
	// ErrRateLimited means a limit denied the call before any provider was
	// asked. The error is a *RateLimitError with the scope and RetryAfter.
	ErrRateLimited = errors.New("otp: rate limited")
	// ErrChallengeRequired means the abuse defence would refuse this Start
	// on a range or region signal (an unverified budget, a conversion
	// breaker, an override) unless the person passes a challenge: show a
	// CAPTCHA or another check and call Start again
	// [WithChallengePassed]. Nothing was sent. The error is a
	// *ChallengeError with the scope and RetryAfter.
	ErrChallengeRequired = errors.New("otp: challenge required")
	// ErrDestinationBlocked means an operator's [Override] blocks the
	// destination's region, calling code or range. The error is a
	// *BlockedError.
	ErrDestinationBlocked = errors.New("otp: destination blocked")
	// ErrResendTooSoon means Resend was called inside the resend cooldown.
	// The error is a *RateLimitError with Scope ScopeCooldown and RetryAfter.
	ErrResendTooSoon = errors.New("otp: resend too soon")
	// ErrProviderRejected means the vendor refused the request for a reason
	// that retrying will not fix. The error is a *ProviderError.
	ErrProviderRejected = errors.New("otp: provider rejected the request")
	// ErrProviderUnavailable means the vendor could not be reached or failed
	// transiently; a later retry may succeed. The error is a *ProviderError.
	ErrProviderUnavailable = errors.New("otp: provider unavailable")
	// ErrProviderAccount means the vendor refused the account, not the
	// request: a bad key, a missing scope, no credit, a barred account.
	// Nothing was sent and no retry helps until the account is fixed; a
	// [Failover] moves to its next provider. The error is a *ProviderError.
	ErrProviderAccount = errors.New("otp: provider refused the account")
	// ErrStoreUnavailable means the Store could not be reached. Stores wrap
	// their transport errors with it.
	ErrStoreUnavailable = errors.New("otp: store unavailable")
	// ErrSendInFlight means another caller holds the key's claim: a send
	// for it is in flight. Stores return it from Claim and GetAllow; the
	// Verifier waits for the send and answers with its verification.
	ErrSendInFlight = errors.New("otp: a send for this key is in flight")
)

// WrongCodeError is returned by [Verifier.Check] for a wrong code that left
// attempts over. It matches [ErrWrongCode].
type WrongCodeError struct {
	// AttemptsLeft is how many more codes may be tried (at least 1).
	AttemptsLeft int
}

// Error says how many attempts are left; it never holds the code.
func (e *WrongCodeError) Error() string {
	return "otp: wrong code, " + strconv.Itoa(e.AttemptsLeft) + " attempts left"
}

// Unwrap returns [ErrWrongCode].
func (e *WrongCodeError) Unwrap() error { return ErrWrongCode }

// Scope names the limit that denied a call.
type Scope string

// Limit scopes, as found in [RateLimitError], [ChallengeError] and [Event];
// an Event of a refused destination names what refused it: ScopeGuard,
// ScopeOverride or ScopeProvider.
const (
	ScopeNumber     Scope = "number"     // sends per destination
	ScopeClient     Scope = "client"     // sends per client ID
	ScopeRegion     Scope = "region"     // sends per ISO region (Limits.PerRegion, Elsewhere)
	ScopeTotal      Scope = "total"      // sends in total
	ScopeRange      Scope = "range"      // unverified sends per number range
	ScopeChallenged Scope = "challenged" // unverified sends that passed a challenge, per range or region
	ScopeConversion Scope = "conversion" // the conversion breaker of a region or calling code
	ScopeOverride   Scope = "override"   // an operator's Override
	ScopeChecks     Scope = "checks"     // checks per client ID
	ScopeCooldown   Scope = "cooldown"   // the resend cooldown of one verification
	ScopeCapacity   Scope = "capacity"   // the limiter has no room for a new bucket: it fails closed
	ScopeGuard      Scope = "guard"      // the Guard's fixed rules: number types, regions, calling and network codes
	ScopeProvider   Scope = "provider"   // the provider refused the destination (a vendor's fraud or geography block)
)

// RateLimitError is returned when a limit denies a call. It matches
// [ErrRateLimited], or [ErrResendTooSoon] when Scope is [ScopeCooldown].
type RateLimitError struct {
	Scope      Scope         // which limit denied the call
	RetryAfter time.Duration // when the same call may succeed; 0 if unknown
}

// Error names the scope and the wait.
func (e *RateLimitError) Error() string {
	msg := "otp: rate limited (" + string(e.Scope) + ")"
	if e.Scope == ScopeCooldown {
		msg = "otp: resend too soon"
	}
	if e.RetryAfter > 0 {
		msg += ", retry after " + e.RetryAfter.Round(time.Millisecond).String()
	}
	return msg
}

// Unwrap returns [ErrResendTooSoon] for the cooldown scope and
// [ErrRateLimited] for every other.
func (e *RateLimitError) Unwrap() error {
	if e.Scope == ScopeCooldown {
		return ErrResendTooSoon
	}
	return ErrRateLimited
}

// ChallengeError is returned by Start when the abuse defence asks for a
// challenge. It matches [ErrChallengeRequired].
type ChallengeError struct {
	Scope Scope // ScopeRange, ScopeConversion or ScopeOverride
	// RetryAfter is when the same Start may pass without a challenge, 0 if
	// unknown (a breaker closes when its region recovers).
	RetryAfter time.Duration
}

// Error names the scope.
func (e *ChallengeError) Error() string {
	msg := "otp: challenge required (" + string(e.Scope) + ")"
	if e.RetryAfter > 0 {
		msg += ", or retry after " + e.RetryAfter.Round(time.Millisecond).String()
	}
	return msg
}

// Unwrap returns [ErrChallengeRequired].
func (e *ChallengeError) Unwrap() error { return ErrChallengeRequired }

// BlockedError is returned when an [Override] blocks the destination. It
// matches [ErrDestinationBlocked].
type BlockedError struct {
	Target Target // the override's target: a region, calling code or range
}

// Error names the target, which holds no whole number.
func (e *BlockedError) Error() string { return "otp: destination blocked (" + e.Target.Key() + ")" }

// Unwrap returns [ErrDestinationBlocked].
func (e *BlockedError) Unwrap() error { return ErrDestinationBlocked }

// ProviderKind says what kind of failure a *[ProviderError] is.
type ProviderKind int

// Provider failure kinds.
const (
	// ProviderRejected: the vendor refused the request, and the same
	// request will be refused again (an invalid number, a wrong code).
	ProviderRejected ProviderKind = iota
	// ProviderUnavailable: the vendor could not be reached, failed or
	// throttled; a retry later may succeed.
	ProviderUnavailable
	// ProviderAccount: the vendor refused the account (credentials,
	// scopes, balance, a barred account); nothing was sent.
	ProviderAccount
)

// ProviderError carries a vendor's answer that was not a success. By Kind
// it matches [ErrProviderRejected], [ErrProviderUnavailable] or
// [ErrProviderAccount], and also whatever Err wraps (for example
// [ErrInvalidPhone] when the vendor judged the number invalid).
type ProviderError struct {
	Provider     string       // Provider.Name of the adapter
	Op           Op           // the operation: OpStart for a Send, OpCheck, OpResend or OpCancel
	Kind         ProviderKind // rejected, unavailable or account
	VendorStatus string       // the vendor's own status code or title, if any
	HTTPStatus   int          // 0 when no HTTP answer was received
	// NotSent reports that the vendor surely did not act on the request:
	// the connection was refused, or the vendor throttled or refused it
	// before doing anything. It is the one answer to "may a code have gone
	// out?" (for a check: "may it have been verified?"); false means it may
	// have. [Failover] moves to the next provider only when NotSent is set
	// and Kind is ProviderUnavailable or ProviderAccount. An adapter that
	// cannot be sure (a timeout after the request was written, a 5xx, an
	// unreadable success) leaves it false.
	NotSent bool
	// RetryAfter is the wait the vendor asked for (a Retry-After on a 429
	// or 503), 0 when it asked for none. [RetryAfter] reports it.
	RetryAfter time.Duration
	Err        error // the underlying cause, may be nil; never holds a secret
}

// Error names the provider, the operation and the vendor's status; it never
// holds a code or a secret.
func (e *ProviderError) Error() string {
	msg := "otp: provider " + e.Provider
	if e.Op != "" {
		msg += " " + string(e.Op)
	}
	switch e.Kind {
	case ProviderUnavailable:
		msg += " unavailable"
	case ProviderAccount:
		msg += " refused the account"
	default:
		msg += " rejected"
	}
	if e.HTTPStatus != 0 {
		msg += fmt.Sprintf(" (http %d", e.HTTPStatus)
		if e.VendorStatus != "" {
			msg += ", status " + strconv.Quote(e.VendorStatus)
		}
		msg += ")"
	} else if e.VendorStatus != "" {
		msg += " (status " + strconv.Quote(e.VendorStatus) + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the sentinel of Kind and Err.
func (e *ProviderError) Unwrap() []error {
	class := ErrProviderRejected
	switch e.Kind {
	case ProviderUnavailable:
		class = ErrProviderUnavailable
	case ProviderAccount:
		class = ErrProviderAccount
	}
	if e.Err == nil {
		return []error{class}
	}
	return []error{class, e.Err}
}

// RetryAfter reports how long to wait before retrying the call that returned
// err, when err carries that information: a *RateLimitError, a
// *ChallengeError with a RetryAfter, or a *ProviderError whose vendor sent a
// Retry-After.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter, true
	}
	var pe *ProviderError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return pe.RetryAfter, true
	}
	return 0, false
}
