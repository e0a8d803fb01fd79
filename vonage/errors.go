package vonage

import (
	"errors"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// ErrConcurrent means Vonage refused a start because a verification to the
// same destination is still in progress (v2 409, or 422 with title
// "Conflict"; legacy status 10). It is wrapped by a *[ConcurrentError]
// inside the *[otp.ProviderError].
var ErrConcurrent = errors.New("vonage: concurrent verification to the same destination")

// ConcurrentError carries the ID of the verification already in progress,
// when Vonage returned it, so that the caller can cancel or check it.
type ConcurrentError struct {
	RequestID string // the in-flight verification; empty if not given
}

// Error says what happened; the request ID is not a secret.
func (e *ConcurrentError) Error() string {
	if e.RequestID == "" {
		return ErrConcurrent.Error()
	}
	return ErrConcurrent.Error() + " (request " + e.RequestID + ")"
}

// Unwrap returns [ErrConcurrent].
func (e *ConcurrentError) Unwrap() error { return ErrConcurrent }

// errAccount is the detail of an otp.ProviderAccount error: Vonage refused
// the account rather than the request (bad credentials, no credit, a
// barred or demo account).
var errAccount = errors.New("vonage: the account was refused (credentials, balance or status)")

// local is the error for a call refused before it was sent: nothing
// reached Vonage.
func local(provider string, op otp.Op, err error) error {
	return &otp.ProviderError{Provider: provider, Op: op, NotSent: true, Err: err}
}

// withText wraps sentinel (which may be nil) with the vendor's text, made
// safe by vendorhttp.Text.
func withText(sentinel error, text string) error {
	text = vendorhttp.Text(text)
	switch {
	case sentinel == nil && text == "":
		return errors.New("vonage: refused")
	case sentinel == nil:
		return errors.New("vonage: " + text)
	case text == "":
		return sentinel
	}
	return &textError{sentinel: sentinel, text: text}
}

type textError struct {
	sentinel error
	text     string
}

func (e *textError) Error() string { return e.sentinel.Error() + ": " + e.text }
func (e *textError) Unwrap() error { return e.sentinel }
