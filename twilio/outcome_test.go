package twilio_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
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

func newScripted(t *testing.T) (*scripted, *twilio.Provider) {
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
	p, err := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID, AuthToken: "secret-token",
		BaseURL: srv.URL, Channels: []otp.Channel{otp.SMS, otp.Email}, Retry: otp.RetryPolicy{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return s, p
}

const sid = "VE0123456789abcdef0123456789abcdef"

// twErr is Twilio's error body.
func twErr(code, status int, message string) string {
	return fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, message, code, status)
}

// verif is a verification resource with status and valid.
func verif(id, status string, valid bool) string {
	return fmt.Sprintf(`{"sid":%q,"service_sid":%q,"account_sid":%q,"to":"+15017122661","channel":"sms","status":%q,"valid":%t,`+
		`"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z","lookup":{},"amount":null,"payee":null,`+
		`"send_code_attempts":[{"time":"2015-07-30T20:00:00Z","channel":"SMS","attempt_sid":"VLaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}],"sna":null}`,
		id, twiliotest.ServiceSID, twiliotest.AccountSID, status, valid)
}

type kind int

const (
	ok          kind = iota // success
	rejected                // otp.ProviderRejected
	unavailable             // otp.ProviderUnavailable
	account                 // otp.ProviderAccount
)

type row struct {
	name    string
	op      otp.Op // OpStart, OpCheck or OpCancel
	status  int
	body    string
	header  map[string]string
	kind    kind
	want    []error // sentinels the error matches besides its kind's
	notSent bool
	vendor  string        // VendorStatus, checked when set
	wait    time.Duration // RetryAfter, checked when set
}

func (r row) run(t *testing.T, s *scripted, p *twilio.Provider) {
	s.set(r.status, r.body, r.header)
	var err error
	switch r.op {
	case otp.OpStart:
		var ref otp.Ref
		ref, err = p.Send(ctx, sms(testPhone))
		if err == nil && (ref.ID == "" || ref.Provider != "twilio") {
			t.Fatalf("success without a Ref: %+v", ref)
		}
	case otp.OpCheck:
		err = p.Check(ctx, otp.Ref{Provider: "twilio", ID: sid}, "123456")
	case otp.OpCancel:
		err = p.Cancel(ctx, otp.Ref{Provider: "twilio", ID: sid})
	}
	if s.count() != 1 {
		t.Fatalf("Twilio got %d requests, want 1", s.count())
	}
	if r.kind == ok {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	sentinel := map[kind]error{rejected: otp.ErrProviderRejected, unavailable: otp.ErrProviderUnavailable, account: otp.ErrProviderAccount}[r.kind]
	mustIs(t, err, append([]error{sentinel}, r.want...)...)
	pe := providerError(t, err)
	wantKind := map[kind]otp.ProviderKind{rejected: otp.ProviderRejected, unavailable: otp.ProviderUnavailable, account: otp.ProviderAccount}[r.kind]
	if pe.Kind != wantKind || pe.NotSent != r.notSent || pe.Op != r.op || pe.Provider != "twilio" {
		t.Fatalf("kind %v notSent %v op %q, want %v %v %q: %v", pe.Kind, pe.NotSent, pe.Op, wantKind, r.notSent, r.op, err)
	}
	if pe.HTTPStatus != r.status || r.vendor != "" && pe.VendorStatus != r.vendor {
		t.Fatalf("http %d vendor %q, want %d %q", pe.HTTPStatus, pe.VendorStatus, r.status, r.vendor)
	}
	if r.wait != 0 && pe.RetryAfter != r.wait {
		t.Fatalf("RetryAfter %v, want %v", pe.RetryAfter, r.wait)
	}
	if msg := err.Error(); strings.Contains(msg, "secret-token") || strings.Contains(msg, "5017122661") || !strings.HasPrefix(msg, "otp: provider twilio") {
		t.Fatalf("error text %q", msg)
	}
}

// codeRows has one row per code of the fact sheet's table (§4.2), with
// the HTTP status the sheet gives, 400 where it gives none.
func codeRows() []row {
	var rows []row
	add := func(op otp.Op, status int, k kind, want []error, codes ...int) {
		for _, c := range codes {
			rows = append(rows, row{name: fmt.Sprintf("%s %d/%d", op, status, c), op: op, status: status,
				body: twErr(c, status, "Some message"), kind: k, want: want, notSent: true, vendor: fmt.Sprint(c)})
		}
	}
	rng := func(lo, hi int) []int {
		var out []int
		for c := lo; c <= hi; c++ {
			out = append(out, c)
		}
		return out
	}
	start, check, cancel := otp.OpStart, otp.OpCheck, otp.OpCancel
	acct := []error{}
	for _, op := range []otp.Op{start, check, cancel} {
		add(op, 401, account, acct, 20003)
		add(op, 403, account, acct, 20403)
		add(op, 429, unavailable, nil, 20429)
	}
	add(start, 404, account, acct, 20404) // the Service is unknown
	add(check, 404, rejected, []error{otp.ErrNotFound}, 20404)
	add(cancel, 404, rejected, []error{otp.ErrNotFound}, 20404)
	add(start, 400, rejected, nil, 60201, 60206)
	add(check, 400, rejected, nil, 60206)
	add(check, 429, rejected, []error{otp.ErrTooManyAttempts}, 60202)
	add(start, 429, rejected, []error{twilio.ErrMaxSendAttempts}, 60202, 60203)
	add(start, 403, account, acct, 60204)
	add(start, 403, rejected, []error{otp.ErrInvalidPhone}, 60205)
	add(start, 400, rejected, nil, rng(60207, 60211)...)
	add(start, 429, rejected, []error{twilio.ErrConcurrentRequests}, 60212)
	add(start, 400, rejected, nil, 60213, 60214, 60215, 60216, 60218, 60219, 60222)
	add(start, 400, account, acct, 60217)
	add(start, 400, rejected, nil, 60220, 60226)
	add(check, 400, rejected, nil, 60221)
	add(start, 400, account, acct, 60223)
	add(start, 400, rejected, nil, append(append([]int{60224}, rng(60227, 60230)...), rng(60239, 60242)...)...)
	add(start, 400, rejected, nil, rng(60231, 60237)...)
	add(start, 400, rejected, nil, 60238, 60243)
	add(start, 400, unavailable, nil, 60245)
	add(start, 400, rejected, nil, 60246, 60247, 60248, 60250)
	add(start, 403, rejected, []error{twilio.ErrBlocked, otp.ErrRegionNotAllowed}, 60410, 60412, 60413, 60605)
	add(start, 400, rejected, nil, 60411, 60408, 60409, 60602, 60600, 60610)
	add(start, 400, rejected, nil, rng(60606, 60625)...)
	add(check, 404, rejected, []error{otp.ErrNotFound}, 60431)
	add(check, 400, rejected, nil, 60441)
	add(start, 400, rejected, nil, append([]int{60500, 60519, 60520, 60550}, rng(60531, 60540)...)...)
	add(start, 400, rejected, nil, 60300)
	add(start, 400, account, acct, 68008)
	add(start, 400, rejected, []error{otp.ErrInvalidPhone}, 21211, 21612, 21614)
	add(start, 400, rejected, []error{twilio.ErrBlocked, otp.ErrRegionNotAllowed}, 21408)
	add(start, 400, account, acct, 21608)
	return rows
}

func TestOutcomeTable(t *testing.T) {
	s, p := newScripted(t)
	rows := codeRows()
	rows = append(rows, []row{
		// Successes.
		{name: "start 201", op: otp.OpStart, status: 201, body: verif(sid, "pending", false)},
		{name: "start 200", op: otp.OpStart, status: 200, body: verif(sid, "pending", false)},
		{name: "check approved", op: otp.OpCheck, status: 200, body: verif(sid, "approved", true)},
		{name: "check approved, no valid", op: otp.OpCheck, status: 200, body: `{"sid":"` + sid + `","status":"approved"}`},
		{name: "cancel", op: otp.OpCancel, status: 200, body: verif(sid, "canceled", false)},
		// 200 answers of a check that are not a success.
		{name: "wrong code", op: otp.OpCheck, status: 200, body: verif(sid, "pending", false), kind: rejected, want: []error{otp.ErrWrongCode}, notSent: true, vendor: "pending"},
		{name: "check expired", op: otp.OpCheck, status: 200, body: verif(sid, "expired", false), kind: rejected, want: []error{otp.ErrExpired}, notSent: true, vendor: "expired"},
		{name: "check max attempts", op: otp.OpCheck, status: 200, body: verif(sid, "max_attempts_reached", false), kind: rejected, want: []error{otp.ErrTooManyAttempts}, notSent: true},
		{name: "check canceled", op: otp.OpCheck, status: 200, body: verif(sid, "canceled", false), kind: rejected, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "check deleted", op: otp.OpCheck, status: 200, body: verif(sid, "deleted", false), kind: rejected, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "check failed", op: otp.OpCheck, status: 200, body: verif(sid, "failed", false), kind: rejected, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "check unknown status", op: otp.OpCheck, status: 200, body: verif(sid, "APPROVED", true), kind: unavailable},
		{name: "check approved, valid false", op: otp.OpCheck, status: 200, body: verif(sid, "approved", false), kind: unavailable},
		{name: "check pending, valid true", op: otp.OpCheck, status: 200, body: verif(sid, "pending", true), kind: unavailable},
		{name: "check of another sid", op: otp.OpCheck, status: 200, body: verif("VEffffffffffffffffffffffffffffffff", "approved", true), kind: unavailable},
		{name: "start not pending", op: otp.OpStart, status: 201, body: verif(sid, "approved", true), kind: unavailable},
		{name: "cancel not canceled", op: otp.OpCancel, status: 200, body: verif(sid, "pending", false), kind: unavailable},
		// 60200 names the parameter.
		{name: "60200 To", op: otp.OpStart, status: 400, body: twErr(60200, 400, "Invalid parameter `To`: +15017122661"), kind: rejected, want: []error{otp.ErrInvalidPhone}, notSent: true},
		{name: "60200 To, colon", op: otp.OpStart, status: 400, body: twErr(60200, 400, "Invalid parameter: To"), kind: rejected, want: []error{otp.ErrInvalidPhone}, notSent: true},
		{name: "60200 Locale", op: otp.OpStart, status: 400, body: twErr(60200, 400, "Invalid parameter: Locale"), kind: rejected, notSent: true, vendor: "60200"},
		{name: "60200 Code", op: otp.OpCheck, status: 400, body: twErr(60200, 400, "Invalid parameter: Code"), kind: rejected, want: []error{otp.ErrInvalidCode}, notSent: true},
		// Twilio's own faults and throttling.
		{name: "500", op: otp.OpStart, status: 500, body: twErr(20500, 500, "Internal Server Error"), kind: unavailable},
		{name: "503 no Retry-After", op: otp.OpStart, status: 503, kind: unavailable},
		{name: "503 Retry-After", op: otp.OpStart, status: 503, header: map[string]string{"Retry-After": "7"}, kind: unavailable, notSent: true, wait: 7 * time.Second},
		{name: "429 Retry-After", op: otp.OpStart, status: 429, body: twErr(20429, 429, "Too many requests"), header: map[string]string{"Retry-After": "30"}, kind: unavailable, notSent: true, wait: 30 * time.Second},
		{name: "500 on check", op: otp.OpCheck, status: 500, kind: unavailable},
		// No code: the HTTP status decides.
		{name: "401 html", op: otp.OpStart, status: 401, body: "<html>Unauthorized</html>", kind: account, notSent: true},
		{name: "404 empty on start", op: otp.OpStart, status: 404, kind: account, notSent: true},
		{name: "404 empty on check", op: otp.OpCheck, status: 404, kind: rejected, want: []error{otp.ErrNotFound}, notSent: true},
		{name: "429 empty", op: otp.OpCheck, status: 429, kind: unavailable, notSent: true},
		{name: "403 unknown code", op: otp.OpStart, status: 403, body: twErr(69999, 403, "Forbidden"), kind: rejected, notSent: true, vendor: "69999"},
		{name: "400 empty", op: otp.OpStart, status: 400, kind: rejected, notSent: true},
		{name: "302", op: otp.OpStart, status: 302, kind: rejected, notSent: true},
		{name: "code as a string", op: otp.OpStart, status: 429, body: `{"code":"60203","message":"Max send attempts reached"}`, kind: rejected, want: []error{twilio.ErrMaxSendAttempts}, notSent: true, vendor: "60203"},
		{name: "code garbage", op: otp.OpStart, status: 400, body: `{"code":[1],"message":"x"}`, kind: rejected, notSent: true, vendor: ""},
	}...)
	// Hostile 2xx bodies: never a success, and Twilio may have acted.
	for name, body := range map[string]string{
		"empty": "", "html": "<html><body>OK</body></html>", "truncated": verif(sid, "pending", false)[:60], "null": "null",
		"array": "[" + verif(sid, "pending", false) + "]", "string": `"pending"`, "no sid": `{"status":"pending"}`,
		"bad sid": `{"sid":"VE../../x","status":"pending"}`, "no status": `{"sid":"` + sid + `"}`, "number sid": `{"sid":5,"status":"pending"}`,
	} {
		for _, op := range []otp.Op{otp.OpStart, otp.OpCheck, otp.OpCancel} {
			rows = append(rows, row{name: "hostile " + name + " " + string(op), op: op, status: 200, body: body, kind: unavailable})
		}
	}
	rows = append(rows, row{name: "oversized", op: otp.OpStart, status: 201, body: `{"sid":"` + sid + `","status":"pending","x":"` + strings.Repeat("x", vendorhttp.MaxBody) + `"}`, kind: unavailable})
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) { r.run(t, s, p) })
	}
}
