package vonage

import (
	"bytes"
	"context"
	"errors"
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

// maxBody caps every response body the adapters read. Vonage's answers
// are a few hundred bytes; anything longer is not one of them.
const maxBody = 64 << 10

// RetryPolicy bounds how an adapter retries one call. Every zero field
// takes the default shown. Whatever the policy, a start (send) is retried
// only when Vonage surely did not act on it: the connection was refused or
// the name did not resolve before any byte was written, or Vonage answered
// 429 or 503 with a Retry-After. Checks, cancels and resends are also
// retried after timeouts, dropped connections and 5xx answers.
type RetryPolicy struct {
	// MaxRetries is how many times one call may be retried after its first
	// try. Default 2; a negative value disables retries.
	MaxRetries int
	// MinWait and MaxWait bound the exponential backoff between tries when
	// Vonage gave no Retry-After. Defaults 100ms and 2s.
	MinWait, MaxWait time.Duration
	// MaxRetryAfter is the longest Retry-After the adapter waits for; a
	// longer one ends the call at once with ErrProviderUnavailable.
	// Default 5s.
	MaxRetryAfter time.Duration
	// Timeout bounds one whole call, tries and waits included, on top of
	// the caller's context and the HTTP client's own timeout. Default 15s.
	Timeout time.Duration
}

func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	if p.MaxRetries == 0 {
		p.MaxRetries = 2
	} else if p.MaxRetries < 0 {
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
		return p, errors.New("vonage: RetryPolicy.MaxRetries above 10")
	case p.MinWait < 0 || p.MaxWait < p.MinWait || p.MaxRetryAfter < 0 || p.Timeout < 0:
		return p, errors.New("vonage: RetryPolicy waits must be positive and MinWait <= MaxWait")
	}
	return p, nil
}

// transport sends one vendor call with the retry policy and reads the
// answer through a size cap. It never logs: retryablehttp's logger is off
// because it would print URLs.
type transport struct {
	hc     *http.Client
	name   string // provider name, for errors
	policy RetryPolicy
	clock  otp.Clock
	safe   *retryablehttp.Client // for sends: retries only tries Vonage surely ignored
	idem   *retryablehttp.Client // for checks, cancels, resends
	// throttled reports whether a 2xx body is a throttling refusal (the
	// legacy API answers 200 with status "1"); nil for v2.
	throttled func(body []byte) bool
}

func newTransport(name string, hc *http.Client, policy RetryPolicy, clock otp.Clock, throttled func([]byte) bool) (*transport, error) {
	policy, err := policy.withDefaults()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = vendorhttp.NewHTTPClient()
	}
	t := &transport{hc: hc, name: name, policy: policy, clock: clock, throttled: throttled}
	mk := func(op opKind) *retryablehttp.Client {
		return &retryablehttp.Client{
			HTTPClient:   hc,
			Logger:       nil,
			RetryWaitMin: policy.MinWait,
			RetryWaitMax: policy.MaxWait,
			RetryMax:     policy.MaxRetries,
			CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
				return t.checkRetry(ctx, op, resp, err)
			},
			Backoff:      t.backoff,
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		}
	}
	t.safe, t.idem = mk(opSend), mk(opIdempotent)
	return t, nil
}

type opKind int

const (
	opSend       opKind = iota // may deliver a code: never re-sent if Vonage may have acted
	opIdempotent               // check, cancel, resend: retried on transient failures
)

// request is one vendor call.
type request struct {
	op          otp.Op // otp op name: otp.OpStart, otp.OpCheck, otp.OpResend, "cancel"
	method      string
	url         string
	contentType string
	auth        string // Authorization header value, empty for none
	body        []byte
}

// reply is Vonage's last answer to a call.
type reply struct {
	status int
	header http.Header
	body   []byte
	// acted is true when some try of the call may have reached Vonage and
	// been acted on without its answer reaching us.
	acted bool
}

// callState follows one call across its tries. CheckRetry sees each
// answer first: it reads the body (capped) so that the legacy API's
// "throttled" 200 can be told apart, and records whether any try may have
// reached the vendor.
type callState struct {
	last    reply
	gotResp bool
	readErr error
	// gotConn is set when the current try obtained a connection: before
	// that, no byte of it can have been written.
	gotConn atomic.Bool
}

type stateKey struct{}

// do runs r under the retry policy. A transport failure or an unreadable
// answer comes back as a *otp.ProviderError; any HTTP answer comes back as
// a reply for the caller to map.
func (t *transport) do(ctx context.Context, r request) (reply, error) {
	st := &callState{}
	ctx = httptrace.WithClientTrace(context.WithValue(ctx, stateKey{}, st), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.gotConn.Store(true) },
	})
	ctx, cancel := context.WithTimeout(ctx, t.policy.Timeout)
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, r.url, r.body)
	if err != nil {
		return reply{}, &otp.ProviderError{Provider: t.name, Op: r.op, Err: errors.New("vonage: cannot build request")}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	client := t.idem
	if r.op == otp.OpStart {
		client = t.safe
	}
	resp, err := client.Do(req)
	if resp != nil {
		// checkRetry has already read and replaced the body.
		resp.Body.Close()
	}
	switch {
	case err == nil && resp != nil && st.gotResp && st.readErr == nil:
		return st.last, nil
	case err == nil && st.readErr != nil:
		err = st.readErr
	case err == nil:
		err = errors.New("vonage: no answer")
	}
	pe := t.transportError(r.op, st.last.acted, err)
	if st.readErr != nil {
		pe.HTTPStatus = st.last.status
	}
	return reply{}, pe
}

// transportError describes a call that got no usable answer.
func (t *transport) transportError(op otp.Op, acted bool, err error) *otp.ProviderError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL adds nothing and may hold a request ID
	}
	if acted {
		err = &outcomeError{err: err}
	}
	return &otp.ProviderError{Provider: t.name, Op: op, Kind: otp.ProviderUnavailable, Err: err}
}

// checkRetry is the retry policy; see RetryPolicy.
func (t *transport) checkRetry(ctx context.Context, op opKind, resp *http.Response, err error) (bool, error) {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		st = &callState{}
	}
	st.gotResp, st.readErr = false, nil
	gotConn := st.gotConn.Swap(false)
	if err != nil {
		reached := gotConn
		st.last.acted = st.last.acted || reached
		if ctx.Err() != nil || vendorhttp.CertError(err) {
			return false, nil
		}
		return op == opIdempotent || !reached, nil
	}
	body, rerr := readCapped(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// The answer broke off: Vonage saw the request.
		st.readErr = rerr
		st.last.acted, st.last.status = true, resp.StatusCode
		return op == opIdempotent && ctx.Err() == nil && !errors.Is(rerr, errTooLarge), nil
	}
	acted := st.last.acted
	st.last = reply{status: resp.StatusCode, header: resp.Header, body: body}
	st.gotResp = true
	wait, hasWait := vendorhttp.RetryAfter(resp.Header, t.clock.Now())
	refused := resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusServiceUnavailable && hasWait ||
		resp.StatusCode/100 == 2 && t.throttled != nil && t.throttled(body)
	vendorFault := resp.StatusCode >= 500 && !refused
	st.last.acted = acted || vendorFault
	if ctx.Err() != nil || hasWait && wait > t.policy.MaxRetryAfter {
		return false, nil
	}
	switch {
	case refused:
		// Vonage refused the try without acting on it. A send waits only
		// as long as Vonage asked, so it needs the header.
		return op == opIdempotent || hasWait, nil
	case vendorFault:
		return op == opIdempotent && resp.StatusCode != http.StatusNotImplemented, nil
	}
	return false, nil
}

// backoff honours Retry-After (already checked against the cap) and is
// exponential otherwise.
func (t *transport) backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	return vendorhttp.Backoff(min, max, attempt, resp, t.clock.Now())
}

var errTooLarge = errors.New("vonage: response body too large")

// readCapped reads at most maxBody bytes of body.
func readCapped(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errTooLarge
	}
	return b, nil
}

// escapeID puts a vendor ID in a URL path as one opaque segment.
func escapeID(id string) string { return url.PathEscape(id) }
