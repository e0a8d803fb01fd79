package otphttp

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/otpkit/otp"
)

// ErrUnauthorized is what a [Config].Key function returns when the request
// has no identity to key a verification by (no session, no signed-in
// user). The handlers answer it with 401 and the class "unauthorized".
var ErrUnauthorized = errors.New("otphttp: unauthorized")

// Classes of the failures of a request itself, before the Verifier is
// asked. Every other class is [otp.ErrorClass] of the Verifier's error.
const (
	ClassBadRequest       = "bad_request"            // malformed JSON or form
	ClassTooLarge         = "too_large"              // the body is over Config.MaxBodyBytes
	ClassUnsupportedMedia = "unsupported_media_type" // not application/json
	ClassMethodNotAllowed = "method_not_allowed"     // e.g. GET on a POST route
	ClassUnauthorized     = "unauthorized"           // ErrUnauthorized
)

// Failure is what an error means to an HTTP client: the status, the class
// for programs, the message for people and the detail a client acts on.
// [Describe] makes one from any error the Verifier returns.
type Failure struct {
	Status       int           // HTTP status
	Class        string        // otp.ErrorClass, or one of the Class constants
	Message      MessageID     // the catalogue message that tells a person
	AttemptsLeft int           // for a wrong code: checks still allowed
	RetryAfter   time.Duration // when the call may succeed; 0 if unknown
	// Challenge reports ErrChallengeRequired: show the person a challenge
	// (a CAPTCHA) and start again with its answer.
	Challenge bool
}

// requestFailure is a failure of the request itself.
type requestFailure struct {
	f   Failure
	err error
}

func (e *requestFailure) Error() string { return "otphttp: " + e.f.Class + ": " + e.err.Error() }
func (e *requestFailure) Unwrap() error { return e.err }

// Describe tells what err, an error returned by a Verifier (or by a
// handler's own checks), means over HTTP. It goes from the most specific
// error to the least, so that a provider that judged a number invalid
// answers as an invalid number, not as a provider failure.
//
//	invalid_input          400  a typo, a bad code format, a bad key or channel
//	refused_destination    422  the guard refused the number's type or region, or an operator blocked it
//	challenge_required     403  Challenge set: show a CAPTCHA and start again
//	wrong_code             422  AttemptsLeft set
//	too_many_attempts      410
//	expired                410
//	not_found              404
//	rate_limited           429  Retry-After
//	resend_too_soon        429  Retry-After
//	provider_rejected      502
//	provider_unavailable   503  Retry-After when the vendor sent one
//	provider_account       503  the vendor refused your account: a configuration error
//	store_unavailable      503
//	canceled               503  (504 for a deadline)
//	unauthorized           401  ErrUnauthorized
//	other                  500
func Describe(err error) Failure {
	var rf *requestFailure
	if errors.As(err, &rf) {
		return rf.f
	}
	f := Failure{Class: otp.ErrorClass(err)}
	f.RetryAfter, _ = otp.RetryAfter(err)
	var (
		wrong *otp.WrongCodeError
		typ   *otp.NumberTypeError
	)
	switch {
	case err == nil:
		return Failure{}
	case errors.Is(err, ErrUnauthorized):
		f.Status, f.Class, f.Message = http.StatusUnauthorized, ClassUnauthorized, MsgUnauthorized
	case errors.As(err, &typ):
		f.Status, f.Message = http.StatusUnprocessableEntity, MsgNumberType
		if typ.Type == otp.NumberFixedLine {
			f.Message = MsgLandline
		}
	case errors.Is(err, otp.ErrRegionNotAllowed):
		f.Status, f.Message = http.StatusUnprocessableEntity, MsgRegionNotAllowed
	case errors.Is(err, otp.ErrDestinationBlocked):
		f.Status, f.Message = http.StatusUnprocessableEntity, MsgDestinationBlocked
	case errors.Is(err, otp.ErrChallengeRequired):
		f.Status, f.Message, f.Challenge = http.StatusForbidden, MsgChallengeRequired, true
	case errors.Is(err, otp.ErrInvalidPhone):
		f.Status, f.Message = http.StatusBadRequest, MsgInvalidPhone
	case errors.Is(err, otp.ErrInvalidCode):
		f.Status, f.Message = http.StatusBadRequest, MsgInvalidCode
	case errors.Is(err, otp.ErrInvalidKey), errors.Is(err, otp.ErrUnsupportedChannel):
		f.Status, f.Message = http.StatusBadRequest, MsgBadRequest
	case errors.As(err, &wrong):
		f.Status, f.Message, f.AttemptsLeft = http.StatusUnprocessableEntity, MsgWrongCode, wrong.AttemptsLeft
	case errors.Is(err, otp.ErrWrongCode), errors.Is(err, otp.ErrTooManyAttempts):
		f.Status, f.Message = http.StatusGone, MsgTooManyAttempts
	case errors.Is(err, otp.ErrExpired):
		f.Status, f.Message = http.StatusGone, MsgExpired
	case errors.Is(err, otp.ErrNotFound):
		f.Status, f.Message = http.StatusNotFound, MsgNotFound
	case errors.Is(err, otp.ErrResendTooSoon):
		f.Status, f.Message = http.StatusTooManyRequests, MsgResendTooSoon
	case errors.Is(err, otp.ErrRateLimited):
		f.Status, f.Message = http.StatusTooManyRequests, MsgRateLimited
	case errors.Is(err, otp.ErrProviderUnavailable), errors.Is(err, otp.ErrProviderAccount),
		errors.Is(err, otp.ErrStoreUnavailable):
		f.Status, f.Message = http.StatusServiceUnavailable, MsgUnavailable
	case errors.Is(err, otp.ErrProviderRejected):
		f.Status, f.Message = http.StatusBadGateway, MsgProviderRejected
	case errors.Is(err, context.DeadlineExceeded):
		f.Status, f.Message = http.StatusGatewayTimeout, MsgUnavailable
	case errors.Is(err, context.Canceled):
		f.Status, f.Message = http.StatusServiceUnavailable, MsgUnavailable
	default:
		f.Status, f.Message = http.StatusInternalServerError, MsgInternal
	}
	if f.Status != http.StatusTooManyRequests && f.Status != http.StatusServiceUnavailable && !f.Challenge {
		f.RetryAfter = 0
	}
	return f
}

// Seconds is d for a Retry-After header or a retry_after field: whole
// seconds rounded up, at least 1.
func Seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// SetHeaders sets the headers f calls for: Retry-After, in whole seconds,
// when RetryAfter is set.
func (f Failure) SetHeaders(h http.Header) {
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(Seconds(f.RetryAfter)))
	}
}

// ErrorBody is the JSON answer of a failure:
//
//	{"error":"wrong_code","message":"That code is not right. 4 attempts left.","attempts_left":4}
//	{"error":"rate_limited","message":"Too many requests. Try again in 59 minutes.","retry_after":3540}
//	{"error":"challenge_required","message":"…","challenge":true}
type ErrorBody struct {
	Error        string `json:"error"`                   // the class
	Message      string `json:"message"`                 // for people, in their language
	AttemptsLeft int    `json:"attempts_left,omitempty"` // wrong_code
	RetryAfter   int    `json:"retry_after,omitempty"`   // seconds, as the Retry-After header
	Challenge    bool   `json:"challenge,omitempty"`     // challenge_required
}

// Body returns f's JSON body with message, the text for a person.
func (f Failure) Body(message string) ErrorBody {
	b := ErrorBody{Error: f.Class, Message: message, AttemptsLeft: f.AttemptsLeft, Challenge: f.Challenge}
	if f.RetryAfter > 0 {
		b.RetryAfter = Seconds(f.RetryAfter)
	}
	return b
}

// WriteError answers err as JSON: the status, headers and body of
// [Describe](err), with the message from c in the language of the
// request's Accept-Language (c nil: [DefaultCatalog]). It is what the
// handlers do; use it in handlers of your own.
func WriteError(w http.ResponseWriter, r *http.Request, c *Catalog, err error) {
	if c == nil {
		c = DefaultCatalog()
	}
	f := Describe(err)
	f.SetHeaders(w.Header())
	writeJSON(w, f.Status, f.Body(c.Text(c.Match(r), f)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
