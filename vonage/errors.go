package vonage

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// ErrOutcomeUnknown is wrapped by a *[otp.ProviderError] (always with
// Temporary set) when Vonage may have acted on a request whose answer was
// lost: a timeout after the request was written, a dropped connection, a
// 5xx, or a success whose body could not be read. For a send it means a code
// may be on its way; the adapter never re-sends such a request. Use
// [MaybeSent] to test for it.
var ErrOutcomeUnknown = errors.New("vonage: outcome unknown, the vendor may have acted")

// MaybeSent reports whether err leaves open that Vonage acted on the
// request that returned it. For an error from Send, false means surely
// nothing was sent, so another provider may be tried at once; true means a
// code may have been delivered.
func MaybeSent(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }

// errAccount marks a refusal of the account rather than of the request:
// bad credentials, no credit, a barred or demo account. Such an error is
// Temporary (it ends when the account is fixed, not when the person tries
// something else), so that otp.Failover moves to another provider.
var errAccount = errors.New("vonage: the account was refused (credentials, balance or status)")

// markNotSent sets NotSent on a send's *otp.ProviderError when Vonage surely
// did not act, so that otp.Failover may try another provider.
func markNotSent(err error) error {
	var pe *otp.ProviderError
	if errors.As(err, &pe) && !MaybeSent(err) {
		pe.NotSent = true
	}
	return err
}

type outcomeError struct{ err error }

func (e *outcomeError) Error() string   { return ErrOutcomeUnknown.Error() + ": " + e.err.Error() }
func (e *outcomeError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }

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

// problem is Verify v2's RFC 7807 error body.
type problem struct {
	Type              string `json:"type"`
	Title             string `json:"title"`
	Detail            string `json:"detail"`
	RequestID         string `json:"request_id"`
	InvalidParameters []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"invalid_parameters"`
}

// decodeProblem reads a v2 error body; ok is false when it is not one.
func decodeProblem(body []byte) (p problem, ok bool) {
	if err := json.Unmarshal(body, &p); err != nil {
		return problem{}, false
	}
	return p, true
}

// typeSuffix is the fragment of a problem type URL ("concurrent").
func (p problem) typeSuffix() string {
	if i := strings.LastIndexByte(p.Type, '#'); i >= 0 {
		return p.Type[i+1:]
	}
	return ""
}

func (p problem) isConflict() bool {
	s := p.typeSuffix()
	return strings.EqualFold(p.Title, "Conflict") || s == "concurrent" || s == "conflict" ||
		strings.Contains(strings.ToLower(p.Detail), "concurrent")
}

func (p problem) invalidTo() bool {
	for _, ip := range p.InvalidParameters {
		if ip.Name == "to" || strings.HasSuffix(ip.Name, ".to") || strings.HasSuffix(ip.Name, "].to") {
			return true
		}
	}
	return strings.Contains(p.Detail, "'to'")
}

// v2Error maps a non-success v2 answer to the core's errors (see the table
// in the package doc). The answer's status and title are kept on the
// *otp.ProviderError.
func (p *V2) v2Error(op otp.Op, r reply) error {
	pb, ok := decodeProblem(r.body)
	pe := &otp.ProviderError{Provider: p.Name(), Op: op, HTTPStatus: r.status, VendorStatus: clip(pb.Title)}
	pe.RetryAfter, _ = vendorhttp.RetryAfter(r.header, p.cfg.Clock.Now())
	detail := func(sentinel error) error {
		switch {
		case !ok:
			return withText(sentinel, "malformed error body")
		case pb.Detail != "":
			return withText(sentinel, pb.Detail)
		}
		return withText(sentinel, pb.Title)
	}
	switch s := r.status; {
	case s == http.StatusBadRequest && op == "check":
		pe.Err = detail(otp.ErrWrongCode)
	case s == http.StatusNotFound && op != otp.OpStart:
		pe.Err = detail(otp.ErrNotFound)
		if r.acted {
			// An earlier try may have verified the code; Vonage answers a
			// second check of a verified request with 404.
			pe.Kind, pe.Err = otp.ProviderUnavailable, &outcomeError{err: pe.Err}
		}
	case s == http.StatusConflict && op == otp.OpStart,
		s == http.StatusUnprocessableEntity && op == otp.OpStart && pb.isConflict():
		pe.Err = &ConcurrentError{RequestID: clip(pb.RequestID)}
	case s == http.StatusConflict && strings.Contains(strings.ToLower(pb.Detail), "try again later"):
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
	case s == http.StatusGone:
		if d := strings.ToLower(pb.Detail + pb.Title); strings.Contains(d, "too many") || strings.Contains(d, "incorrect") || !ok {
			pe.Err = detail(otp.ErrTooManyAttempts)
		} else {
			pe.Err = detail(otp.ErrExpired)
		}
	case s == http.StatusUnprocessableEntity && op == otp.OpStart && pb.invalidTo():
		pe.Err = detail(otp.ErrInvalidPhone)
	case s == http.StatusUnauthorized, s == http.StatusPaymentRequired:
		// The account, not the person: credentials or balance. Vonage
		// sent nothing, and another provider would serve; see accountRefusal.
		pe.Kind, pe.NotSent, pe.Err = otp.ProviderAccount, true, detail(errAccount)
	case s == http.StatusTooManyRequests:
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
	case s == http.StatusServiceUnavailable && !r.acted && hasRetryAfter(r):
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
	case s >= 500:
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
		if op == otp.OpStart || r.acted {
			pe.Err = &outcomeError{err: pe.Err}
		}
	case s < 400:
		pe.Err = errors.New("vonage: unexpected http status")
	default:
		pe.Err = detail(nil)
	}
	return pe
}

func hasRetryAfter(r reply) bool { return r.header.Get("Retry-After") != "" }

// legacyStatus is a legacy API status, a string in the JSON ("0", "16");
// a number is accepted too.
type legacyStatus string

func (s *legacyStatus) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = legacyStatus(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = legacyStatus(n.String())
	return nil
}

// legacyReply is every legacy answer's common part.
type legacyReply struct {
	Status    *legacyStatus `json:"status"`
	ErrorText string        `json:"error_text"`
	RequestID string        `json:"request_id"`
	Command   string        `json:"command"`
}

// decodeLegacy reads a legacy body; ok is false when it is not one (no
// JSON object, or no status).
func decodeLegacy(body []byte) (lr legacyReply, ok bool) {
	if err := json.Unmarshal(body, &lr); err != nil || lr.Status == nil || *lr.Status == "" {
		return legacyReply{}, false
	}
	return lr, true
}

// legacyError maps a legacy answer that is not status "0" (see the table in
// the package doc). The legacy API answers HTTP 200 for its own failures,
// so both the HTTP status and the body's status are looked at.
func (l *Legacy) legacyError(op otp.Op, r reply) error {
	pe := &otp.ProviderError{Provider: l.Name(), Op: op, HTTPStatus: r.status}
	if r.status/100 != 2 {
		pe.RetryAfter, _ = vendorhttp.RetryAfter(r.header, l.cfg.Clock.Now())
		pe.Err = errors.New("vonage: unexpected http status")
		switch {
		case r.status == http.StatusTooManyRequests, r.status == http.StatusServiceUnavailable && !r.acted && hasRetryAfter(r):
			pe.Kind = otp.ProviderUnavailable
		case r.status >= 500:
			pe.Kind = otp.ProviderUnavailable
			if op == otp.OpStart || r.acted {
				pe.Err = &outcomeError{err: pe.Err}
			}
		}
		return pe
	}
	lr, ok := decodeLegacy(r.body)
	if !ok {
		// Vonage answered 2xx but not with a status we can read: for a send
		// or a check it may have acted.
		pe.Kind, pe.Err = otp.ProviderUnavailable, &outcomeError{err: errors.New("vonage: malformed response body")}
		return pe
	}
	status := string(*lr.Status)
	pe.VendorStatus = clip(status)
	text := strings.ToLower(lr.ErrorText)
	var sentinel error
	switch status {
	case "1": // throttled
		pe.Kind = otp.ProviderUnavailable
	case "3":
		switch {
		case op == otp.OpStart && strings.Contains(text, "number"):
			sentinel = otp.ErrInvalidPhone
		case op != otp.OpStart && strings.Contains(text, "request_id"):
			sentinel = otp.ErrNotFound
		}
	case "5": // internal error
		pe.Kind = otp.ProviderUnavailable
		if op == otp.OpStart || op == otp.OpCheck || r.acted {
			pe.Err = &outcomeError{err: withText(nil, lr.ErrorText)}
			return pe
		}
	case "6":
		if op != otp.OpStart {
			sentinel = otp.ErrNotFound
		}
	case "7", "15": // blocked number, unsupported network
		sentinel = otp.ErrInvalidPhone
	case "10":
		pe.Err = &ConcurrentError{RequestID: clip(lr.RequestID)}
		return pe
	case "16":
		sentinel = otp.ErrWrongCode
	case "17":
		sentinel = otp.ErrTooManyAttempts
	case "101":
		sentinel = otp.ErrNotFound
	case "4", "8", "9", "29":
		// the account: credentials, barred, no credit, demo mode
		pe.Kind, pe.NotSent, pe.Err = otp.ProviderAccount, true, withText(errAccount, lr.ErrorText)
		return pe
	case "2", "18", "19", "20":
		// refusals: missing parameter, too many ids, cancel/trigger not
		// possible now, pin_code
	default:
		pe.Err = withText(nil, "unknown status")
		return pe
	}
	if sentinel == otp.ErrNotFound && r.acted && op == otp.OpCheck {
		pe.Kind = otp.ProviderUnavailable
		pe.Err = &outcomeError{err: withText(sentinel, lr.ErrorText)}
		return pe
	}
	pe.Err = withText(sentinel, lr.ErrorText)
	return pe
}

// withText wraps sentinel (which may be nil) with the vendor's text,
// clipped and with long digit runs masked in case it echoes a number.
func withText(sentinel error, text string) error {
	text = clip(maskDigits(text))
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

// clip keeps vendor strings in errors short and printable.
func clip(s string) string {
	const max = 160
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// maskDigits masks runs of seven or more digits as otp.MaskPhone does, so
// that a vendor text echoing a phone number does not leak it.
func maskDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j-i >= 7 {
			b.WriteString(otp.MaskPhone(s[i:j]))
			i = j
			continue
		}
		if j > i {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}
