// Package vendorhttp is the one HTTP layer of the vendor adapters: a
// [Client] per provider sends each call under the provider's
// otp.RetryPolicy on go-retryablehttp, reads answers through one size cap,
// and answers "may the vendor have acted?" once, as
// otp.ProviderError.NotSent, and [LostCheck] is the one rule built on it
// that every vendor needs. An adapter keeps only its requests, its auth
// and its status mapping; [Text], [ValidID] and [Path] are how it quotes
// vendor text, accepts vendor IDs and puts IDs in URLs, [BaseURL] how it
// checks its configured host, and [ReadWebhookBody] how its webhook
// handler reads a delivery.
package vendorhttp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// maxIdlePerHost is how many idle connections to a vendor the default
// client keeps. net/http's default of 2 makes a server with more calls in
// flight dial a new connection (and leave a socket in TIME_WAIT) for nearly
// every call: under load, dialling cost more CPU than the calls.
const maxIdlePerHost = 64

// NewHTTPClient returns the adapters' default HTTP client: a pool of its
// own and a 10 s timeout per try.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// maxRetryAfter bounds a Retry-After in seconds; a longer one is read as
// this long.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads h's Retry-After, in seconds (at most a day) or as an
// HTTP date relative to now. ok is false when there is none, or it does not
// parse.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(s) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, at.Sub(now)), true
}

// Backoff is the wait before retry number attempt: what the answer's
// Retry-After asks (the retry policy has checked it against its cap), or
// lo doubled per attempt up to hi.
func Backoff(lo, hi time.Duration, attempt int, resp *http.Response, now time.Time) time.Duration {
	if resp != nil {
		if d, ok := RetryAfter(resp.Header, now); ok {
			return d
		}
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// CertError reports a TLS verification failure, which no retry fixes.
func CertError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn)
}
