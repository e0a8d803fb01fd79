package twilio

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// Details of a *otp.ProviderError, matched with errors.Is.
var (
	// ErrMaxSendAttempts means Twilio refused a start or resend because
	// the verification to the destination has had its sends (five; 60203,
	// or 60202 on a start as some users saw). It clears when the
	// verification is approved, cancelled or expires. The error's Kind is
	// otp.ProviderRejected: another vendor would only send the person yet
	// another code.
	ErrMaxSendAttempts = errors.New("twilio: max send attempts reached")
	// ErrConcurrentRequests means Twilio refused a start because of too
	// many requests for the destination at once (60212). Kind
	// otp.ProviderRejected, as for ErrMaxSendAttempts.
	ErrConcurrentRequests = errors.New("twilio: too many concurrent requests for the destination")
	// ErrBlocked means Twilio refused the destination: Fraud Guard
	// (60410), Fraudulent Signup Prevention (60412), Device Intelligence
	// (60413), Verify Geo Permissions (60605) or a region the account has
	// not enabled (21408). It always comes with otp.ErrRegionNotAllowed,
	// so that otp.ErrorClass says "refused_destination" as for the
	// Guard's own refusals; ProviderError.VendorStatus holds the code.
	ErrBlocked = errors.New("twilio: destination blocked by Fraud Guard or Geo Permissions")
)

// errAccount is the detail of an otp.ProviderAccount error.
var errAccount = errors.New("twilio: the account was refused (credentials, status, Service or its features)")

// opFetch is the read that starts a Resend: a GET, retried as reads are.
// Its errors name otp.OpResend.
const opFetch otp.Op = "fetch"

// apiError is Twilio's error body: {"code","message","more_info","status"}.
type apiError struct {
	code    int
	message string
}

// statusError maps a non-2xx answer to the core's errors: by Twilio's code
// when the body has one, by HTTP status otherwise (see the table in the
// package doc). phase is the request that got the answer (opFetch or
// otp.OpStart within a Resend); op names the operation in the error. The
// shared HTTP layer has set NotSent.
func (p *Provider) statusError(phase, op otp.Op, r vendorhttp.Reply) error {
	ae := decodeError(r.Body)
	pe := p.http.Failure(op, r)
	if ae.code != 0 {
		pe.VendorStatus = strconv.Itoa(ae.code)
	}
	kind, sentinels := classify(phase, r.Status, ae)
	pe.Kind = kind
	if len(sentinels) == 1 && sentinels[0] == otp.ErrNotFound && vendorhttp.LostCheck(pe) {
		return pe // Twilio answers a check of an approved verification with 404
	}
	pe.Err = withText(ae.message, sentinels...)
	return pe
}

// classify is the outcome table: the kind of failure and the sentinels the
// error wraps.
func classify(phase otp.Op, status int, ae apiError) (otp.ProviderKind, []error) {
	rejected := func(errs ...error) (otp.ProviderKind, []error) { return otp.ProviderRejected, errs }
	notFound := func() (otp.ProviderKind, []error) {
		if phase == otp.OpStart {
			// The Service does not exist for these credentials.
			return otp.ProviderAccount, []error{errAccount}
		}
		return rejected(otp.ErrNotFound)
	}
	if status >= 500 {
		return otp.ProviderUnavailable, nil
	}
	switch ae.code {
	case 20003, 20403, 21608, 60204, 60217, 60223, 68008:
		// Credentials, a suspended or trial account, a Service without
		// the feature or channel asked for.
		return otp.ProviderAccount, []error{errAccount}
	case 20404, 60431:
		return notFound()
	case 20429, 60245:
		return otp.ProviderUnavailable, nil
	case 60200:
		switch param := invalidParam(ae.message); {
		case phase == otp.OpStart && param == "to":
			return rejected(otp.ErrInvalidPhone)
		case phase == otp.OpCheck && param == "code":
			return rejected(otp.ErrInvalidCode)
		}
		return rejected()
	case 60202:
		if phase == otp.OpCheck {
			return rejected(otp.ErrTooManyAttempts)
		}
		return rejected(ErrMaxSendAttempts)
	case 60203:
		return rejected(ErrMaxSendAttempts)
	case 60212:
		return rejected(ErrConcurrentRequests)
	case 60205, 21211, 21612, 21614:
		return rejected(otp.ErrInvalidPhone)
	case 60410, 60412, 60413, 60605, 21408:
		return rejected(ErrBlocked, otp.ErrRegionNotAllowed)
	}
	switch status {
	case http.StatusUnauthorized:
		return otp.ProviderAccount, []error{errAccount}
	case http.StatusNotFound:
		return notFound()
	case http.StatusTooManyRequests:
		return otp.ProviderUnavailable, nil
	}
	return rejected()
}

// invalidParam returns, in lower case, the parameter a 60200 message
// names: "Invalid parameter: To", "Invalid parameter `Code`: 12".
func invalidParam(msg string) string {
	_, rest, ok := strings.Cut(strings.ToLower(msg), "parameter")
	if !ok {
		return ""
	}
	rest = strings.TrimLeft(rest, " :`'\"")
	end := strings.IndexFunc(rest, func(r rune) bool { return !('a' <= r && r <= 'z') })
	if end < 0 {
		end = len(rest)
	}
	return rest[:end]
}

// final reports an answer that no retry can change: a 429 that is not
// throttling but a limit of the verification or the destination.
func final(status int, body []byte) bool {
	if status != http.StatusTooManyRequests {
		return false
	}
	switch decodeError(body).code {
	case 60202, 60203, 60212:
		return true
	}
	return false
}

// local is the error for a call refused before it was sent.
func local(op otp.Op, err error) error {
	return &otp.ProviderError{Provider: "twilio", Op: op, NotSent: true, Err: err}
}

// asOp renames the operation of a transport error.
func asOp(err error, op otp.Op) error {
	var pe *otp.ProviderError
	if errors.As(err, &pe) {
		pe.Op = op
	}
	return err
}

// withText wraps sentinels (maybe none) with Twilio's message, made safe
// by vendorhttp.Text.
func withText(text string, sentinels ...error) error {
	text = vendorhttp.Text(text)
	switch {
	case len(sentinels) == 0 && text == "":
		return errors.New("twilio: refused")
	case len(sentinels) == 0:
		return errors.New("twilio: " + text)
	case len(sentinels) == 1 && text == "":
		return sentinels[0]
	}
	return &textError{sentinels: sentinels, text: text}
}

type textError struct {
	sentinels []error
	text      string
}

func (e *textError) Error() string {
	msg := e.sentinels[0].Error()
	for _, s := range e.sentinels[1:] {
		msg += ": " + strings.TrimPrefix(s.Error(), "otp: ")
	}
	if e.text != "" {
		msg += ": " + e.text
	}
	return msg
}

func (e *textError) Unwrap() []error { return e.sentinels }
