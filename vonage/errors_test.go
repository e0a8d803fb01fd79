package vonage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
	"github.com/otpkit/otp/vonage"
)

// scripted answers every request with the current status, headers and body.
type scripted struct {
	mu     sync.Mutex
	status int
	header map[string]string
	body   string
	n      int
}

func (s *scripted) set(status int, body string, header map[string]string) {
	s.mu.Lock()
	s.status, s.body, s.header, s.n = status, body, header, 0
	s.mu.Unlock()
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func newScripted(t *testing.T) (*scripted, *httptest.Server) {
	s := &scripted{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.n++
		status, body, header := s.status, s.body, s.header
		s.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

// prob builds a v2 problem body.
func prob(typ, title, detail string, extra ...string) string {
	return `{"type":"https://developer.vonage.com/api-errors` + typ + `","title":"` + title + `","detail":"` + detail + `"` +
		strings.Join(extra, "") + `}`
}

type mapRow struct {
	name      string
	op        otp.Op // OpStart, OpCheck, OpCancel, OpResend
	status    int
	body      string
	header    map[string]string
	want      []error // sentinels the error must match; nil: success
	temporary bool
	notSent   bool          // ProviderError.NotSent: Vonage surely did not act
	vendor    string        // VendorStatus, checked when not empty
	wait      time.Duration // RetryAfter, checked when not zero
}

func runMapRows(t *testing.T, p otp.Provider, s *scripted, rows []mapRow) {
	ctx := context.Background()
	ref := otp.Ref{ID: "abc123"}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s.set(row.status, row.body, row.header)
			var err error
			switch row.op {
			case otp.OpStart:
				_, err = p.Send(ctx, sms(testPhone))
			case otp.OpCheck:
				err = p.Check(ctx, ref, "1234")
			case otp.OpCancel:
				err = p.(otp.Canceler).Cancel(ctx, ref)
			case otp.OpResend:
				err = p.(otp.Resender).Resend(ctx, ref)
			}
			if s.count() != 1 {
				t.Fatalf("vendor got %d requests, want 1", s.count())
			}
			if row.want == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			mustIs(t, err, row.want...)
			pe := providerError(t, err)
			if (pe.Kind != otp.ProviderRejected) != row.temporary || pe.NotSent != row.notSent || pe.Op != row.op {
				t.Fatalf("kind=%v notSent=%v op=%q, want temporary %v, notSent %v, %q: %v", pe.Kind, pe.NotSent, pe.Op,
					row.temporary, row.notSent, row.op, err)
			}
			if row.temporary && errors.Is(err, otp.ErrProviderRejected) || !row.temporary && errors.Is(err, otp.ErrProviderUnavailable) {
				t.Fatalf("class wrong: %v", err)
			}
			if pe.HTTPStatus != row.status || row.vendor != "" && pe.VendorStatus != row.vendor {
				t.Fatalf("http %d vendor %q, want %d %q", pe.HTTPStatus, pe.VendorStatus, row.status, row.vendor)
			}
			if row.wait != 0 && pe.RetryAfter != row.wait {
				t.Fatalf("RetryAfter %v, want %v", pe.RetryAfter, row.wait)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatal("secret in error")
			}
		})
	}
}

var (
	rej          = otp.ErrProviderRejected
	unav         = otp.ErrProviderUnavailable
	unauthorized = prob("#unauthorized", "Unauthorized", "You did not provide correct credentials.")
	lowBalance   = prob("#low-balance", "Low balance", "This request could not be performed due to your account balance being low.")
	notFoundBody = prob("#not-found", "Not Found", "Request abc123 was not found or it has been verified already.")
	internal     = prob("#internal-error", "Internal error", "There was an error processing your request in the Platform.")
	rateLimit    = prob("#rate-limit", "Rate Limit Hit", "Please wait, then retry your request")
)

// TestV2ErrorMapping has one row per status of the fact sheet's v2 table
// (per operation where the meaning differs), plus unknown statuses and
// malformed bodies.
func TestV2ErrorMapping(t *testing.T) {
	s, srv := newScripted(t)
	p, err := vonage.NewV2(vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL,
		Retry: otp.RetryPolicy{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	runMapRows(t, p, s, []mapRow{
		{name: "202 start", op: otp.OpStart, status: 202, body: `{"request_id":"cef1c266-d144-485e-8915-bd2d51b06776"}`},
		{name: "200 check completed", op: otp.OpCheck, status: 200, body: `{"request_id":"abc123","status":"completed"}`},
		{name: "200 check complete", op: otp.OpCheck, status: 200, body: `{"request_id":"abc123","status":"complete"}`},
		{name: "204 cancel", op: otp.OpCancel, status: 204},
		{name: "200 next_workflow", op: otp.OpResend, status: 200},
		{name: "400 check wrong code", op: otp.OpCheck, status: 400, body: prob("#invalid-code", "Invalid Code", "The code you provided does not match the expected value."), want: []error{otp.ErrWrongCode, rej}, vendor: "Invalid Code", notSent: true},
		{name: "401 send", op: otp.OpStart, status: 401, body: unauthorized, want: []error{otp.ErrProviderAccount}, temporary: true, vendor: "Unauthorized", notSent: true},
		{name: "401 jwt expired", op: otp.OpCheck, status: 401, body: prob("#jwt-expired", "Unauthorized", "The JWT provided has expired."), want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "402 send", op: otp.OpStart, status: 402, body: lowBalance, want: []error{otp.ErrProviderAccount}, temporary: true, vendor: "Low balance", notSent: true},
		{name: "402 check", op: otp.OpCheck, status: 402, body: lowBalance, want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "403 send", op: otp.OpStart, status: 403, body: prob("#forbidden", "Forbidden", "Templates management is not enabled for your account"), want: []error{rej}, notSent: true},
		{name: "404 check", op: otp.OpCheck, status: 404, body: notFoundBody, want: []error{otp.ErrNotFound, rej}, vendor: "Not Found", notSent: true},
		{name: "404 cancel", op: otp.OpCancel, status: 404, body: notFoundBody, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "404 next_workflow", op: otp.OpResend, status: 404, body: notFoundBody, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "404 send (wrong base url)", op: otp.OpStart, status: 404, body: notFoundBody, want: []error{rej}, notSent: true},
		{name: "409 start concurrent", op: otp.OpStart, status: 409, body: prob("/verify-v2#concurrent", "Conflict", "Concurrent verifications to the same number are not allowed.", `,"request_id":"c1"`), want: []error{vonage.ErrConcurrent, rej}, notSent: true},
		{name: "409 check no code", op: otp.OpCheck, status: 409, body: prob("#no-code", "Conflict", "The current Verify workflow step does not support a code."), want: []error{rej}, notSent: true},
		{name: "409 next_workflow none left", op: otp.OpResend, status: 409, body: prob("#conflict", "Conflict", "There are no more events left to trigger."), want: []error{rej}, notSent: true},
		{name: "409 next_workflow try later", op: otp.OpResend, status: 409, body: prob("#conflict", "Conflict", "The operation cannot be performed at this time. Please try again later."), want: []error{unav}, temporary: true, notSent: true},
		{name: "410 check too many", op: otp.OpCheck, status: 410, body: prob("#gone", "Invalid Code", "An incorrect code has been provided too many times. Workflow terminated."), want: []error{otp.ErrTooManyAttempts, rej}, notSent: true},
		{name: "410 expired", op: otp.OpCheck, status: 410, body: prob("#gone", "Gone", "The request has expired."), want: []error{otp.ErrExpired, rej}, notSent: true},
		{name: "412 silent auth", op: otp.OpStart, status: 412, body: prob("#precondition", "Network not supported", "Device number does not resolve to a supported Mobile Network Operator."), want: []error{rej}, notSent: true},
		{name: "422 invalid to", op: otp.OpStart, status: 422, body: prob("#invalid-params", "Invalid params", "'to' phone number is invalid"), want: []error{otp.ErrInvalidPhone, rej}, vendor: "Invalid params", notSent: true},
		{name: "422 invalid to param", op: otp.OpStart, status: 422, body: prob("#invalid-params", "Invalid params", "The value of one or more parameters is invalid.", `,"invalid_parameters":[{"name":"workflow[0].to","reason":"bad"}]`), want: []error{otp.ErrInvalidPhone}, notSent: true},
		{name: "422 bad brand", op: otp.OpStart, status: 422, body: prob("#invalid-params", "Invalid params", "The value of one or more parameters is invalid.", `,"invalid_parameters":[{"name":"brand","reason":"Brand is required"}]`), want: []error{rej}, notSent: true},
		{name: "422 conflict (SDK fixtures)", op: otp.OpStart, status: 422, body: prob("#conflict", "Conflict", "Concurrent verifications to the same number are not allowed."), want: []error{vonage.ErrConcurrent}, notSent: true},
		{name: "429 send", op: otp.OpStart, status: 429, body: rateLimit, want: []error{unav}, temporary: true, notSent: true},
		{name: "429 check", op: otp.OpCheck, status: 429, body: rateLimit, want: []error{unav}, temporary: true, notSent: true},
		{name: "500 send", op: otp.OpStart, status: 500, body: internal, want: []error{unav}, temporary: true},
		{name: "500 check", op: otp.OpCheck, status: 500, body: internal, want: []error{unav}, temporary: true},
		{name: "500 cancel", op: otp.OpCancel, status: 500, body: internal, want: []error{unav}, temporary: true},
		{name: "500 next_workflow", op: otp.OpResend, status: 500, body: internal, want: []error{unav}, temporary: true},
		{name: "502 send", op: otp.OpStart, status: 502, body: "<html>bad gateway</html>", want: []error{unav}, temporary: true},
		{name: "503 send no retry-after", op: otp.OpStart, status: 503, want: []error{unav}, temporary: true},
		{name: "503 send retry-after", op: otp.OpStart, status: 503, header: map[string]string{"Retry-After": "120"}, want: []error{unav}, temporary: true, notSent: true},
		{name: "418 unknown", op: otp.OpCheck, status: 418, body: "I'm a teapot", want: []error{rej}, notSent: true},
		{name: "302 unknown", op: otp.OpCheck, status: 302, want: []error{rej}, notSent: true},
		{name: "400 non-json", op: otp.OpCheck, status: 400, body: "<html>", want: []error{otp.ErrWrongCode}, notSent: true},
		{name: "202 no id", op: otp.OpStart, status: 202, body: `{}`, want: []error{unav}, temporary: true},
		{name: "202 garbage", op: otp.OpStart, status: 202, body: `<html>ok</html>`, want: []error{unav}, temporary: true},
		{name: "200 check garbage", op: otp.OpCheck, status: 200, body: `OK`, want: []error{unav}, temporary: true},
		{name: "200 check null", op: otp.OpCheck, status: 200, body: `null`, want: []error{unav}, temporary: true},
		{name: "200 check too large", op: otp.OpCheck, status: 200, body: `{"a":"` + strings.Repeat("x", vendorhttp.MaxBody) + `"}`, want: []error{unav}, temporary: true},
	})
}

func legacyBody(status, text string, extra ...string) string {
	return `{"status":"` + status + `","error_text":"` + text + `"` + strings.Join(extra, "") + `}`
}

// TestLegacyErrorMapping has one row per legacy status code (0-101) and the
// HTTP-level failures; the legacy API answers 200 for its own failures.
func TestLegacyErrorMapping(t *testing.T) {
	s, srv := newScripted(t)
	p, err := vonage.NewLegacy(vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL,
		Retry: otp.RetryPolicy{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	runMapRows(t, p, s, []mapRow{
		{name: "0 request", op: otp.OpStart, status: 200, body: `{"request_id":"abcdef0123456789abcdef0123456789","status":"0"}`},
		{name: "0 check", op: otp.OpCheck, status: 200, body: `{"request_id":"abc123","event_id":"e","status":"0","price":"0.10000000","currency":"EUR"}`},
		{name: "0 cancel", op: otp.OpCancel, status: 200, body: `{"status":"0","command":"cancel"}`},
		{name: "0 trigger", op: otp.OpResend, status: 200, body: `{"status":"0","command":"trigger_next_event"}`},
		{name: "0 numeric status", op: otp.OpCheck, status: 200, body: `{"status":0}`},
		{name: "1 throttled send", op: otp.OpStart, status: 200, body: legacyBody("1", "Throttled"), want: []error{unav}, temporary: true, vendor: "1", notSent: true},
		{name: "1 throttled check", op: otp.OpCheck, status: 200, body: legacyBody("1", "Throttled"), want: []error{unav}, temporary: true, notSent: true},
		{name: "2 missing", op: otp.OpStart, status: 200, body: legacyBody("2", "Missing brand"), want: []error{rej}, vendor: "2", notSent: true},
		{name: "3 invalid number", op: otp.OpStart, status: 200, body: legacyBody("3", "Invalid value for number"), want: []error{otp.ErrInvalidPhone, rej}, notSent: true},
		{name: "3 invalid request_id", op: otp.OpCheck, status: 200, body: legacyBody("3", "Invalid value for param: request_id"), want: []error{otp.ErrNotFound}, notSent: true},
		{name: "3 facility not allowed", op: otp.OpStart, status: 200, body: legacyBody("3", "Facility not allowed"), want: []error{rej}, notSent: true},
		{name: "4 credentials", op: otp.OpStart, status: 200, body: legacyBody("4", "Invalid credentials were provided"), want: []error{otp.ErrProviderAccount}, temporary: true, vendor: "4", notSent: true},
		{name: "5 internal send", op: otp.OpStart, status: 200, body: legacyBody("5", "Internal Error"), want: []error{unav}, temporary: true},
		{name: "5 internal cancel", op: otp.OpCancel, status: 200, body: legacyBody("5", "Internal Error"), want: []error{unav}, temporary: true},
		{name: "6 not routed", op: otp.OpStart, status: 200, body: legacyBody("6", "The request could not be routed."), want: []error{rej}, notSent: true},
		{name: "6 check not found", op: otp.OpCheck, status: 200, body: legacyBody("6", "Request 'abc123' was not found or it has been verified already."), want: []error{otp.ErrNotFound}, notSent: true},
		{name: "6 control not found", op: otp.OpCancel, status: 200, body: legacyBody("6", "The requestId 'abc123' does not exist or its no longer active."), want: []error{otp.ErrNotFound}, notSent: true},
		{name: "7 blacklisted", op: otp.OpStart, status: 200, body: legacyBody("7", "The number you are trying to verify is blacklisted for verification.", `,"network":"23415"`), want: []error{otp.ErrInvalidPhone, rej}, notSent: true},
		{name: "8 barred", op: otp.OpStart, status: 200, body: legacyBody("8", "The api_key you supplied is for an account that has been barred from submitting messages."), want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "9 quota", op: otp.OpStart, status: 200, body: legacyBody("9", "Partner quota exceeded"), want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "10 concurrent", op: otp.OpStart, status: 200, body: legacyBody("10", "Concurrent verifications to the same number are not allowed", `,"request_id":"inflight"`), want: []error{vonage.ErrConcurrent, rej}, vendor: "10", notSent: true},
		{name: "15 unsupported network", op: otp.OpStart, status: 200, body: legacyBody("15", "The destination number is not in a supported network"), want: []error{otp.ErrInvalidPhone}, notSent: true},
		{name: "16 wrong code", op: otp.OpCheck, status: 200, body: legacyBody("16", "The code inserted does not match the expected value"), want: []error{otp.ErrWrongCode, rej}, vendor: "16", notSent: true},
		{name: "17 too many", op: otp.OpCheck, status: 200, body: legacyBody("17", "The wrong code was provided too many times. Request terminated"), want: []error{otp.ErrTooManyAttempts}, vendor: "17", notSent: true},
		{name: "18 too many ids", op: otp.OpCheck, status: 200, body: legacyBody("18", "Too many request_ids provided"), want: []error{rej}, notSent: true},
		{name: "19 cancel too soon", op: otp.OpCancel, status: 200, body: legacyBody("19", "Verification request ['abc123'] can't be cancelled within the first 30 seconds."), want: []error{unav}, temporary: true, vendor: "19", notSent: true, wait: 30 * time.Second},
		{name: "19 cancel too late", op: otp.OpCancel, status: 200, body: legacyBody("19", "Verification request  ['abc123'] can't be cancelled now. Too many attempts to re-deliver have already been made."), want: []error{rej}, vendor: "19", notSent: true},
		{name: "19 no more events", op: otp.OpResend, status: 200, body: legacyBody("19", "No more events are left to execute for the request ['abc123']"), want: []error{rej}, notSent: true},
		{name: "20 pin_code", op: otp.OpStart, status: 200, body: legacyBody("20", "This account does not support the parameter: pin_code."), want: []error{rej}, notSent: true},
		{name: "29 demo mode", op: otp.OpStart, status: 200, body: legacyBody("29", "Non-Permitted Destination"), want: []error{otp.ErrProviderAccount}, temporary: true, vendor: "29", notSent: true},
		{name: "101 not found", op: otp.OpCheck, status: 200, body: legacyBody("101", "No response found"), want: []error{otp.ErrNotFound}, vendor: "101", notSent: true},
		{name: "unknown status", op: otp.OpCheck, status: 200, body: legacyBody("42", "new"), want: []error{rej}, vendor: "42", notSent: true},
		{name: "no status", op: otp.OpCheck, status: 200, body: `{"request_id":"x"}`, want: []error{unav}, temporary: true},
		{name: "not json", op: otp.OpStart, status: 200, body: `<html>`, want: []error{unav}, temporary: true},
		{name: "status 0 without id", op: otp.OpStart, status: 200, body: `{"status":"0"}`, want: []error{unav}, temporary: true},
		{name: "http 401", op: otp.OpStart, status: 401, body: `{}`, want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "http 401 check", op: otp.OpCheck, status: 401, want: []error{otp.ErrProviderAccount}, temporary: true, notSent: true},
		{name: "http 429", op: otp.OpCheck, status: 429, want: []error{unav}, temporary: true, notSent: true},
		{name: "http 500 send", op: otp.OpStart, status: 500, want: []error{unav}, temporary: true},
		{name: "http 502 cancel", op: otp.OpCancel, status: 502, want: []error{unav}, temporary: true},
	})
}

func TestErrorsHideNumbers(t *testing.T) {
	s, srv := newScripted(t)
	p, _ := vonage.NewLegacy(vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL})
	s.set(200, legacyBody("3", "Invalid value for number 447700900001"), nil)
	_, err := p.Send(context.Background(), sms(testPhone))
	mustIs(t, err, otp.ErrInvalidPhone)
	if strings.Contains(err.Error(), "447700900001") || !strings.Contains(err.Error(), "447*******01") {
		t.Fatalf("error %q", err)
	}
}
