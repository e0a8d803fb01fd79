package vendorhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/otpkit/otp"
)

// MaxBody caps every answer body read from a vendor. The largest real
// answers are Infobip's lists of applications and templates; a longer body
// is not an answer, and the call fails.
const MaxBody = 1 << 20

// Client sends one provider's calls under its retry policy and reads the
// answers through MaxBody. Safe for concurrent use. It never logs:
// retryablehttp's logger is off because it would print URLs, and URLs hold
// request IDs.
type Client struct {
	name   string // the provider's name, for errors
	hc     *http.Client
	policy otp.RetryPolicy // defaults applied
	clock  otp.Clock
}

// New returns a Client for the provider called name. A nil hc is
// NewHTTPClient(); a nil clock is otp.SystemClock. The policy's zero fields
// take the defaults otp.RetryPolicy documents; an invalid policy is an
// error.
func New(name string, hc *http.Client, policy otp.RetryPolicy, clock otp.Clock) (*Client, error) {
	policy, err := withDefaults(policy)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = NewHTTPClient()
	}
	if clock == nil {
		clock = otp.SystemClock
	}
	return &Client{name: name, hc: hc, policy: policy, clock: clock}, nil
}

func withDefaults(p otp.RetryPolicy) (otp.RetryPolicy, error) {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = 2
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.MinWait == 0 {
		p.MinWait = 100 * time.Millisecond
	}
	if p.MaxWait == 0 {
		p.MaxWait = 2 * time.Second
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = 5 * time.Second
	}
	if p.Timeout == 0 {
		p.Timeout = 15 * time.Second
	}
	switch {
	case p.MaxRetries > 10:
		return p, errors.New("retry policy: MaxRetries above 10")
	case p.MinWait < 0 || p.MaxWait < p.MinWait || p.MaxRetryAfter < 0 || p.Timeout < 0:
		return p, errors.New("retry policy: waits must be positive and MinWait at most MaxWait")
	}
	return p, nil
}

// Close closes the HTTP client's idle connections, so that no connection
// goroutine outlives the adapter. Calls in flight are not affected.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Request is one vendor call.
type Request struct {
	Op otp.Op // the operation, for errors and the retry policy
	// Once marks a call that must not run twice although it is neither a
	// send nor a resend (creating a resource). Sends and resends are always
	// treated so: they are retried only when the vendor surely did not act.
	Once        bool
	Method, URL string // URL with its path built by Path
	ContentType string // of Body; empty for none
	Auth        string // the Authorization header; empty for none
	Body        []byte // sent again on each try; nil for none
	// Refused, if set, reports a 2xx answer that refuses the try without
	// acting on it, which is then retried like a 429 (the legacy Vonage
	// API answers throttling with 200 and status "1").
	Refused func(body []byte) bool
	// Final, if set, reports an answer that no retry can change, which
	// then ends the call at once although the policy would retry it:
	// Twilio's 429 "max check attempts reached" is not throttling.
	Final func(status int, body []byte) bool
}

// once reports whether r may deliver a code or advance a workflow.
func (r Request) once() bool { return r.Once || r.Op == otp.OpStart || r.Op == otp.OpResend }

// Reply is the vendor's last answer to a call, body read in full.
type Reply struct {
	Status int         // HTTP status
	Header http.Header // the answer's headers
	Body   []byte      // at most MaxBody bytes
	// acted is set when some try of the call may have been acted on: it
	// was written and its answer was lost or was a vendor fault (a 5xx
	// that is not a 503 with Retry-After).
	acted bool
}

// call follows one call across its tries. The retryablehttp client is built
// per call around it, so no state travels in a context value.
type call struct {
	Request
	c     *Client
	tries int
	// gotConn is set when the current try obtained a connection. It is the
	// one "may the vendor have acted?" signal of the transport: before a
	// connection no byte of the request can have been written, whatever
	// failed (DNS, dial, TLS, proxy); after it, some may have been. It says
	// more than httptrace's WroteHeaders, which fires before the buffered
	// headers are flushed, and it needs no guess at what a vendor does with
	// a request it got only part of.
	gotConn atomic.Bool
	last    Reply
	replied bool  // last holds the answer of the final try
	readErr error // the final try's answer broke off
}

// Do runs r under the retry policy. Any HTTP answer comes back as a Reply
// for the adapter to map (with Failure or Unknown when it is not a
// success); a call that got no complete answer comes back as a
// *otp.ProviderError of Kind otp.ProviderUnavailable whose NotSent says
// whether any try may have reached the vendor.
func (c *Client) Do(ctx context.Context, r Request) (Reply, error) {
	st := &call{Request: r, c: c}
	ctx, cancel := context.WithTimeout(ctx, c.policy.Timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.gotConn.Store(true) },
	})
	req, err := retryablehttp.NewRequestWithContext(ctx, r.Method, r.URL, r.Body)
	if err != nil {
		return Reply{}, &otp.ProviderError{Provider: c.name, Op: r.Op, NotSent: true, Err: errors.New(c.name + ": cannot build the request")}
	}
	req.Header.Set("Accept", "application/json")
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	}
	rc := &retryablehttp.Client{
		HTTPClient:   c.hc,
		RetryWaitMin: c.policy.MinWait,
		RetryWaitMax: c.policy.MaxWait,
		RetryMax:     c.policy.MaxRetries,
		CheckRetry:   st.checkRetry,
		Backoff: func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
			return Backoff(lo, hi, attempt, resp, c.clock.Now())
		},
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	resp, err := rc.Do(req)
	if resp != nil {
		resp.Body.Close() // checkRetry has read it and put a copy in its place
	}
	switch {
	case err == nil && st.readErr != nil:
		err = st.readErr
	case err == nil && st.replied:
		return st.last, nil
	case err == nil:
		err = errors.New(c.name + ": no answer")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL adds nothing and may hold a request ID
	}
	pe := &otp.ProviderError{Provider: c.name, Op: r.Op, Kind: otp.ProviderUnavailable, NotSent: !st.last.acted, Err: err}
	if st.readErr != nil {
		pe.HTTPStatus = st.last.Status
	}
	return Reply{}, pe
}

var errTooLarge = fmt.Errorf("answer body over %d bytes", MaxBody)

// checkRetry is the retry policy otp.RetryPolicy describes. It sees every
// answer first: it reads the body, so that a 2xx refusal can be told apart
// and the connection goes back to the pool, and it records whether the try
// may have been acted on.
func (st *call) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	st.tries++
	st.replied, st.readErr = false, nil
	reached := st.gotConn.Swap(false)
	if err != nil {
		st.last.acted = st.last.acted || reached
		return st.again(ctx, nil, !CertError(err) && (!st.once() || !reached)), nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr == nil && len(body) > MaxBody {
		rerr = errTooLarge
	}
	if rerr != nil {
		// The answer broke off: the vendor saw the request.
		st.readErr, st.last.acted, st.last.Status = rerr, true, resp.StatusCode
		return st.again(ctx, nil, !st.once() && rerr != errTooLarge), nil
	}
	acted := st.last.acted
	st.last, st.replied = Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}, true
	_, hasWait := RetryAfter(resp.Header, st.c.clock.Now())
	refused := resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusServiceUnavailable && hasWait ||
		resp.StatusCode/100 == 2 && st.Refused != nil && st.Refused(body)
	st.last.acted = acted || resp.StatusCode >= 500 && !refused
	if st.Final != nil && st.Final(resp.StatusCode, body) {
		return false, nil
	}
	switch {
	case refused:
		// A send waits only as long as the vendor asked, so it needs its word.
		return st.again(ctx, resp, !st.once() || hasWait), nil
	case resp.StatusCode == http.StatusInternalServerError, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return st.again(ctx, resp, !st.once()), nil
	}
	return false, nil
}

// again reports whether a try the policy would repeat (retry) may be: the
// call has retries left and time for the wait before the next try, which
// is the vendor's Retry-After, if any, within MaxRetryAfter.
func (st *call) again(ctx context.Context, resp *http.Response, retry bool) bool {
	p := st.c.policy
	if !retry || st.tries > p.MaxRetries || ctx.Err() != nil {
		return false
	}
	now := st.c.clock.Now()
	if resp != nil {
		if d, ok := RetryAfter(resp.Header, now); ok && d > p.MaxRetryAfter {
			return false
		}
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > Backoff(p.MinWait, p.MaxWait, st.tries-1, resp, now)
}

// Failure starts the *otp.ProviderError for an answer the adapter reads as
// a failure: HTTPStatus, the vendor's Retry-After and NotSent are set, the
// adapter sets Kind, VendorStatus and Err. NotSent holds unless some try
// may have been acted on: this answer or an earlier one was a 5xx other
// than a 503 with Retry-After, or an earlier try was lost after it was
// written. A 2xx the adapter reads as a refusal is NotSent too.
func (c *Client) Failure(op otp.Op, r Reply) *otp.ProviderError {
	pe := &otp.ProviderError{Provider: c.name, Op: op, HTTPStatus: r.Status, NotSent: !r.acted}
	pe.RetryAfter, _ = RetryAfter(r.Header, c.clock.Now())
	return pe
}

// LostCheck reports whether pe, a vendor's "not found" (or "no such
// verification") answer, is a Check's after an earlier try that may have
// reached the vendor, and if so makes it an otp.ProviderUnavailable that
// says so, for the caller to return before it maps the answer. Vendors answer "not found" to a check of a code already
// verified, so the lost try may have verified it: the answer says nothing
// of the code, and otp.ErrNotFound would tell the person it was wrong.
func LostCheck(pe *otp.ProviderError) bool {
	if pe.Op != otp.OpCheck || pe.NotSent {
		return false
	}
	pe.Kind, pe.Err = otp.ProviderUnavailable, fmt.Errorf("%s: not found after a lost try, which may have verified the code", pe.Provider)
	return true
}

// Unknown returns the error for a 2xx answer that does not say what the
// vendor did (a body that is not what the operation returns, a vendor's
// internal error): Kind otp.ProviderUnavailable, and NotSent false, since
// the vendor accepted something.
func (c *Client) Unknown(op otp.Op, r Reply, err error) *otp.ProviderError {
	pe := c.Failure(op, r)
	pe.Kind, pe.NotSent, pe.Err = otp.ProviderUnavailable, false, err
	return pe
}
