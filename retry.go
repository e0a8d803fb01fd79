package otp

import "time"

// RetryPolicy bounds how a vendor adapter (package vonage, infobip) retries
// one call; every adapter's Config holds one as its Retry field. Every zero
// field takes the default shown.
//
// Whatever the policy, a call that may deliver a code or move a
// verification on (a send, a resend, creating a resource) is retried only
// when the vendor surely did not act on the earlier try: the try failed
// before a connection was made (refused, DNS, TLS), or the vendor answered
// 429 or 503 with a Retry-After no longer than MaxRetryAfter. Checks,
// cancels and reads are also retried after timeouts, dropped connections,
// 429 and 500, 502, 503 or 504 answers. A Retry-After is always honoured:
// a longer one than MaxRetryAfter, or one that would outlast the call's
// deadline, ends the call at once with the vendor's answer, and its wait
// is on [ProviderError.RetryAfter].
type RetryPolicy struct {
	// MaxRetries is how many times one call may be retried after its first
	// try. Default 2; a negative value disables retries; at most 10.
	MaxRetries int
	// MinWait and MaxWait bound the exponential backoff between tries when
	// the vendor gave no Retry-After. Defaults 100ms and 2s.
	MinWait, MaxWait time.Duration
	// MaxRetryAfter is the longest Retry-After the adapter waits for before
	// retrying. Default 5s.
	MaxRetryAfter time.Duration
	// Timeout bounds one whole call, tries and waits included, on top of
	// the caller's context and the HTTP client's own timeout per try.
	// Default 15s.
	Timeout time.Duration
}
