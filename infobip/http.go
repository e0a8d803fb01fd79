package infobip

import (
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
	"github.com/otpkit/otp/internal/vendorhttp"
)

// Operations, as found in otp.ProviderError.Op.
const (
	opSend          = otp.OpStart
	opResend        = otp.OpResend
	opCheck         = otp.OpCheck
	opCreate otp.Op = "create" // setup: a POST that creates an application or template
	opRead   otp.Op = "read"   // setup: a GET
	opUpdate otp.Op = "update" // setup: a PUT
)

// once reports whether op must not run twice: Infobip has no idempotency
// key, so a repeated send is a second SMS and a repeated create a
// duplicate.
func once(op otp.Op) bool { return op == opSend || op == opResend || op == opCreate }

// response is a complete answer from Infobip.
type response struct {
	status int
	body   []byte
}

// callState follows one call of a once-only operation across its attempts.
type callState struct {
	// wrote is set when request headers were written on a connection and
	// cleared when that attempt got an answer proving nothing was done.
	wrote atomic.Bool
}

type stateKey struct{}

// call sends one request under the retry policy for op and returns the
// 2xx response. Every other outcome is an error: a *otp.ProviderError, or
// otp.ErrNotFound for an unknown pin.
func (c *Client) call(ctx context.Context, op otp.Op, method, path string, payload any) (response, error) {
	if err := ctx.Err(); err != nil {
		return response{}, &otp.ProviderError{Provider: c.Name(), Op: op, Kind: otp.ProviderUnavailable, NotSent: true, Err: err}
	}
	var body any
	if payload != nil {
		body = marshal(payload)
	}
	rc, st := c.retried, (*callState)(nil)
	if once(op) {
		rc, st = c.once, new(callState)
		ctx = context.WithValue(ctx, stateKey{}, st)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { st.wrote.Store(true) }})
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return response{}, &otp.ProviderError{Provider: c.Name(), Op: op, Err: fmt.Errorf("infobip: %w", err)}
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rc.Do(req)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return response{}, c.transportError(op, err, vendorhttp.DialError(err) || (st != nil && !st.wrote.Load()))
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if rerr == nil && int64(len(b)) > c.cfg.MaxResponseBytes {
		rerr = fmt.Errorf("response body longer than %d bytes", c.cfg.MaxResponseBytes)
	}
	res := response{status: resp.StatusCode, body: b}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, c.statusError(op, res, resp.Header)
	}
	if rerr != nil {
		return res, failure(op, res.status, malformed(rerr))
	}
	return res, nil
}

// transportError reports a call that got no HTTP answer. It is NotSent
// when no byte of the request was written (notSent), so the vendor surely
// did not act.
func (c *Client) transportError(op otp.Op, err error, notSent bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message holds the URL, and with it the pin ID
	}
	if !notSent && once(op) {
		err = fmt.Errorf("%w: %w", errOutcomeUnknown, err)
	}
	return &otp.ProviderError{Provider: c.Name(), Op: op, Kind: otp.ProviderUnavailable, NotSent: notSent, Err: err}
}

// statusError maps a non-2xx answer by its HTTP status first, with the
// vendor status from either error envelope as detail. Infobip refused a
// 4xx request, and a 503 with Retry-After, without acting on it: those are
// NotSent. Any other 5xx may come after Infobip acted.
func (c *Client) statusError(op otp.Op, res response, h http.Header) error {
	ae := decodeError(res.body)
	pe := &otp.ProviderError{Provider: c.Name(), Op: op, HTTPStatus: res.status, VendorStatus: ae.status,
		NotSent: res.status < 500}
	pe.RetryAfter, _ = vendorhttp.RetryAfter(h, c.cfg.Clock.Now())
	switch s := res.status; {
	case s == http.StatusNotFound && (op == opCheck || op == opResend):
		return fmt.Errorf("infobip: %s: %w (http 404, status %q)", op, otp.ErrNotFound, ae.status)
	case s == http.StatusNotFound && op == opSend:
		pe.Err = errors.New("infobip: application or message template not found")
	case s == http.StatusNotFound:
		pe.Err = otp.ErrNotFound
	case s == http.StatusBadRequest && op == opSend && ae.field("to"):
		pe.Err = fmt.Errorf("%w: infobip rejected the destination", otp.ErrInvalidPhone)
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		// The account, not the person: Temporary (it ends when the key is
		// fixed), so that otp.Failover moves to a provider that can send.
		pe.Kind = otp.ProviderUnavailable
		pe.Err = errors.New("infobip: check the API key, its scopes and the base URL")
	case s == http.StatusTooManyRequests:
		pe.Kind = otp.ProviderUnavailable
	case s >= 500:
		pe.Kind = otp.ProviderUnavailable
		_, retryAfter := vendorhttp.RetryAfter(h, time.Time{})
		pe.NotSent = s == http.StatusServiceUnavailable && retryAfter
		if once(op) && !pe.NotSent {
			pe.Err = errOutcomeUnknown
		}
	case len(ae.fields) > 0:
		pe.Err = fmt.Errorf("infobip: invalid fields %v", ae.fields)
	}
	return pe
}

// failure turns a decoder's vendorFailure into a *otp.ProviderError and
// passes any other error (a user outcome such as a wrong PIN) through.
func failure(op otp.Op, status int, err error) error {
	var vf *vendorFailure
	if !errors.As(err, &vf) {
		return err
	}
	// A well-formed refusal (MESSAGE_NOT_SENT, ...) delivered nothing; a
	// malformed 2xx leaves the outcome unknown.
	pe := &otp.ProviderError{Provider: "infobip", Op: op, HTTPStatus: status, VendorStatus: vf.status,
		NotSent: !vf.malformed && (op == opSend || op == opResend), Err: vf.err}
	if vf.malformed {
		pe.Kind = otp.ProviderUnavailable
		if once(op) {
			pe.Err = fmt.Errorf("%w: %w", errOutcomeUnknown, vf.err)
		}
	}
	return pe
}

// policy is DESIGN.md's retry policy for go-retryablehttp.
type policy struct {
	clock   otp.Clock
	waitMax time.Duration
}

// checkOnce retries a send or create only when Infobip surely did not act
// on it: the connection could not be made (dial or DNS failure, so no
// byte was written), or a 429 or 503 came with a Retry-After within the
// cap.
func (p policy) checkOnce(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	retry := false
	if err != nil {
		retry = vendorhttp.DialError(err)
	} else if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		d, ok := vendorhttp.RetryAfter(resp.Header, p.clock.Now())
		retry = ok && p.canWait(ctx, d)
	}
	if retry {
		if st, ok := ctx.Value(stateKey{}).(*callState); ok {
			st.wrote.Store(false) // this attempt is known to have done nothing
		}
	}
	return retry, nil
}

// checkRetried retries idempotent calls (verify, reads, updates) on any
// transient failure: a transport error other than a certificate problem,
// 429, 500, 502, 503, 504. A Retry-After beyond the cap or past the
// context's deadline stops the retries.
func (p policy) checkRetried(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil {
		return !vendorhttp.CertError(err), nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if d, ok := vendorhttp.RetryAfter(resp.Header, p.clock.Now()); ok {
			return p.canWait(ctx, d), nil
		}
		return true, nil
	}
	return false, nil
}

// canWait reports whether a wait of d is within the cap and ends before
// the context's deadline.
func (p policy) canWait(ctx context.Context, d time.Duration) bool {
	if d > p.waitMax {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// backoff waits what Retry-After asks (checked against the cap by the
// CheckRetry functions) or doubles from lo up to hi.
func (p policy) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	return vendorhttp.Backoff(lo, hi, attempt, resp, p.clock.Now())
}
