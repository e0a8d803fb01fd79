package infobip

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// Operations, as found in otp.ProviderError.Op.
const (
	opSend          = otp.OpStart
	opResend        = otp.OpResend
	opCheck         = otp.OpCheck
	opCreate otp.Op = "create" // setup: a POST that creates an application or template; never run twice
	opRead   otp.Op = "read"   // setup: a GET
	opUpdate otp.Op = "update" // setup: a PUT
)

// statusError maps a non-2xx answer by its HTTP status first, with the
// vendor status from either error envelope as detail. The shared HTTP
// layer has set NotSent: Infobip refused a 4xx, and a 503 with
// Retry-After, without acting on it; any other 5xx may come after it
// acted.
func (c *Client) statusError(op otp.Op, r vendorhttp.Reply) error {
	ae := decodeError(r.Body)
	pe := c.http.Failure(op, r)
	pe.VendorStatus = ae.status
	if r.Status == http.StatusNotFound && vendorhttp.LostCheck(pe) {
		return pe // a verified PIN is not found again
	}
	switch s := r.Status; {
	case s == http.StatusNotFound && (op == opCheck || op == opResend):
		return fmt.Errorf("infobip: %s: %w (http 404, status %q)", op, otp.ErrNotFound, ae.status)
	case s == http.StatusNotFound && op == opSend:
		pe.Err = errors.New("infobip: application or message template not found")
	case s == http.StatusNotFound:
		pe.Err = otp.ErrNotFound
	case s == http.StatusBadRequest && op == opSend && ae.field("to"):
		pe.Err = fmt.Errorf("%w: infobip rejected the destination", otp.ErrInvalidPhone)
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		// The account, not the person: it ends when the key is fixed, and
		// otp.Failover moves to a provider that can send.
		pe.Kind = otp.ProviderAccount
		pe.Err = errors.New("infobip: check the API key, its scopes and the base URL")
	case s == http.StatusTooManyRequests || s >= 500:
		pe.Kind = otp.ProviderUnavailable
	case len(ae.fields) > 0:
		pe.Err = fmt.Errorf("infobip: invalid fields %v", ae.fields)
	}
	return pe
}

// failure turns a decoder's vendorFailure into a *otp.ProviderError and
// passes any other error (a person's outcome such as a wrong PIN) through.
// A well-formed refusal (MESSAGE_NOT_SENT, ...) did nothing; a malformed
// 2xx leaves the outcome unknown.
func (c *Client) failure(op otp.Op, r vendorhttp.Reply, err error) error {
	var vf *vendorFailure
	if !errors.As(err, &vf) {
		return err
	}
	var pe *otp.ProviderError
	if vf.malformed {
		pe = c.http.Unknown(op, r, vf.err)
	} else {
		pe = c.http.Failure(op, r)
		pe.Err = vf.err
	}
	pe.VendorStatus = vf.status
	return pe
}
