package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/otpkit/otp"
)

// failure is an error as the browser sees it.
type failure struct {
	status       int
	class        string // otp.ErrorClass, or a class of the demo's own
	message      string // for people: shown on the page and in the JSON
	attemptsLeft int
	retryAfter   time.Duration
}

// describe turns a Verifier error into what the browser is told. Checks go
// from the most specific sentinel to the least: a provider that judged a
// number invalid answers as an invalid number, not as a provider failure.
func describe(err error) failure {
	f := failure{class: otp.ErrorClass(err)}
	var wrong *otp.WrongCodeError
	switch {
	case errors.Is(err, otp.ErrInvalidPhone):
		f.status, f.message = http.StatusBadRequest, "That is not a mobile number we can send a code to. Include the country code, for example +44 7911 123456."
	case errors.Is(err, otp.ErrRegionNotAllowed):
		f.status, f.message = http.StatusBadRequest, "We cannot send codes to numbers in that country."
	case errors.Is(err, otp.ErrInvalidCode):
		f.status, f.message = http.StatusBadRequest, "Enter the code from the message: digits only."
	case errors.Is(err, otp.ErrInvalidKey), errors.Is(err, otp.ErrUnsupportedChannel):
		f.status, f.message = http.StatusBadRequest, "That request is not valid."
	case errors.As(err, &wrong):
		f.status, f.attemptsLeft = http.StatusUnprocessableEntity, wrong.AttemptsLeft
		f.message = "That code is not right. " + plural(wrong.AttemptsLeft, "attempt") + " left."
	case errors.Is(err, otp.ErrTooManyAttempts):
		f.status, f.message = http.StatusGone, "Too many wrong codes: that code can no longer be used. Send a new one."
	case errors.Is(err, otp.ErrExpired):
		f.status, f.message = http.StatusGone, "That code has expired. Send a new one."
	case errors.Is(err, otp.ErrNotFound):
		f.status, f.message = http.StatusNotFound, "There is no code waiting to be checked. Enter your number to get one."
	case errors.Is(err, otp.ErrResendTooSoon):
		f.status, f.retryAfter = http.StatusTooManyRequests, retryAfter(err)
		f.message = "A code was sent moments ago. You can ask for another " + inDuration(f.retryAfter) + "."
	case errors.Is(err, otp.ErrRateLimited):
		f.status, f.retryAfter = http.StatusTooManyRequests, retryAfter(err)
		f.message = "Too many requests. Try again " + inDuration(f.retryAfter) + "."
	case errors.Is(err, otp.ErrProviderUnavailable), errors.Is(err, otp.ErrStoreUnavailable):
		f.status, f.message = http.StatusServiceUnavailable, "The verification service is not answering. Try again in a minute."
	case errors.Is(err, otp.ErrProviderRejected):
		f.status, f.message = http.StatusBadGateway, "The verification service refused the request."
	default:
		f.status, f.message = http.StatusInternalServerError, "Something went wrong. Try again."
	}
	return f
}

func retryAfter(err error) time.Duration {
	d, _ := otp.RetryAfter(err)
	return d
}

// seconds rounds d up to whole seconds, at least one.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// inDuration says when, in words: "in 25 seconds", "in 12 minutes".
func inDuration(d time.Duration) string {
	switch s := seconds(d); {
	case d <= 0:
		return "later"
	case s < 120:
		return "in " + plural(s, "second")
	case s < 2*3600:
		return "in " + plural((s+59)/60, "minute")
	default:
		return "in " + plural((s+3599)/3600, "hour")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// errorBody is the JSON error answer.
type errorBody struct {
	Error        string `json:"error"`
	Message      string `json:"message"`
	AttemptsLeft int    `json:"attempts_left,omitempty"`
	RetryAfter   int    `json:"retry_after,omitempty"`
}

// fail answers f: JSON for the API and the tools' routes, a short HTML page
// for the page's routes.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f failure) {
	if f.status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "demo: request failed",
			slog.String("path", r.URL.Path), slog.Int("status", f.status), slog.String("class", f.class))
	}
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(seconds(f.retryAfter)))
	}
	if !wantsJSON(r) {
		s.renderError(w, f)
		return
	}
	body := errorBody{Error: f.class, Message: f.message, AttemptsLeft: f.attemptsLeft}
	if f.retryAfter > 0 {
		body.RetryAfter = seconds(f.retryAfter)
	}
	writeJSON(w, f.status, body)
}

func wantsJSON(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/dev/") || p == "/health"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Failures of the request itself, before the Verifier is asked.
var (
	errTooLarge  = failure{status: http.StatusRequestEntityTooLarge, class: "too_large", message: "The request is too large."}
	errMediaType = failure{status: http.StatusUnsupportedMediaType, class: "unsupported_media_type", message: "Send JSON with Content-Type: application/json."}
)

func badRequest(format string, args ...any) failure {
	return failure{status: http.StatusBadRequest, class: "bad_request", message: fmt.Sprintf(format, args...)}
}

// decodeJSON reads exactly one JSON object of at most maxBody bytes, with no
// unknown fields, into dst.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) (failure, bool) {
	// The exact type, the common case, needs no parsing.
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errMediaType, false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return bodyFailure(err, "The body is not the JSON object expected."), false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bodyFailure(err, "The body holds more than one JSON value."), false
	}
	return failure{}, true
}

// parseForm reads an urlencoded form of at most maxBody bytes.
func parseForm(w http.ResponseWriter, r *http.Request) (failure, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return bodyFailure(err, "The form could not be read."), false
	}
	return failure{}, true
}

func bodyFailure(err error, msg string) failure {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return badRequest("%s", msg)
}
