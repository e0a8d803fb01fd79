package otp

import "time"

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
