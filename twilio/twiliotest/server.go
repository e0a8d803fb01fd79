package twiliotest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/fakeserver"
)

// The fake's default identities, which its Config falls back to.
const (
	ServiceSID   = "VA0123456789abcdef0123456789abcdef"
	AccountSID   = "AC0123456789abcdef0123456789abcdef"
	AuthToken    = "test-auth-token"
	APIKeySID    = "SK0123456789abcdef0123456789abcdef"
	APIKeySecret = "test-api-key-secret"
)

// Op names an endpoint of the fake, for [Server.Calls] and
// [Server.FailNext].
type Op string

// Endpoints.
const (
	OpStart  Op = "start"  // POST /v2/Services/{ServiceSid}/Verifications
	OpCheck  Op = "check"  // POST /v2/Services/{ServiceSid}/VerificationCheck
	OpFetch  Op = "fetch"  // GET /v2/Services/{ServiceSid}/Verifications/{Sid}
	OpUpdate Op = "update" // POST /v2/Services/{ServiceSid}/Verifications/{Sid}: cancel or approve
	opOther  Op = "other"
)

// Config configures a fake [Server]. Every zero field takes the default
// documented on it.
type Config struct {
	// ServiceSID is the one Service the fake has. Default ServiceSID.
	ServiceSID string
	// AccountSID and AuthToken are one identity the fake accepts (HTTP
	// Basic); APIKeySID and APIKeySecret the other. Defaults AccountSID,
	// AuthToken, APIKeySID and APIKeySecret.
	AccountSID, AuthToken, APIKeySID, APIKeySecret string
	// Clock drives expiry. Default otp.SystemClock; give an otptest.Clock
	// to expire codes without sleeping.
	Clock otp.Clock
	// Code, if set, is the code of every verification. Default: random
	// digits of CodeLength.
	Code string
	// CodeLength is the Service's code length. Default 6.
	CodeLength int
	// TTL is how long a verification lives. Default 10 minutes, as at
	// Twilio.
	TTL time.Duration
	// MaxChecks is how many checks a verification takes. Default 5.
	MaxChecks int
	// MaxSends is how many sends a verification takes (the first and the
	// resends). Default 5.
	MaxSends int
	// MaxChecksStatus is the answer to the check after the last: 429
	// (60202) once and 404 after, as Twilio's error page says, or 404 at
	// once, as its check page says. Default 429.
	MaxChecksStatus int
	// Channels are the channels the Service has enabled (Twilio's names:
	// sms, call, whatsapp, email); a start on another is 400/60223.
	// Default all four.
	Channels []string
	// CustomCodes and CustomFriendlyName enable those features of the
	// Service; a start using one that is off is 403/60204. Default off.
	CustomCodes, CustomFriendlyName bool
	// Refuse maps destinations to the Twilio code a start to them
	// answers: 60410 (Fraud Guard), 60605 (Geo Permissions), 60205
	// (landline), 21211 (invalid), ... with the code's HTTP status (403 for
	// 60205, 60410, 60605, 60204; 429 for 602xx; else 400). RiskCheck=disable
	// on an SMS lets 60410 and 60605 past. Default none.
	Refuse map[string]int
	// NewSIDOnChannelChange makes a start on another channel to a pending
	// destination cancel the pending verification and make a new one.
	// Unverified at Twilio; default false: the SID stays and the channel
	// changes.
	NewSIDOnChannelChange bool
}

// Fault is a scripted failure for [Server.FailNext]. The request is
// counted before the fault applies.
type Fault struct {
	// Status, if not 0, is answered instead of the real handling, with
	// Twilio's error body carrying Code (or Body).
	Status int
	// Code is the Twilio error code of the body. Default: 20003 for 401,
	// 20403 for 403, 20404 for 404, 20429 for 429, 20500 for 5xx; none
	// otherwise.
	Code int
	// Body, if set, replaces the body verbatim (HTML, truncated JSON, ...);
	// a 2xx Status with a Body answers a broken success.
	Body string
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Delay holds the answer back this long, or until the client gives up
	// or the server is closed. With Status 0 the request is then handled
	// normally.
	Delay time.Duration
	// Drop closes the connection without answering, after reading the
	// request (and after Delay).
	Drop bool
}

// Send records one delivery: a start, or a resend (a start to a pending
// verification).
type Send struct {
	SID     string     // the verification's SID
	To      string     // as Twilio got it: E.164 with "+", or an email address
	Channel string     // Twilio's name: sms, call, whatsapp or email
	Code    string     // the code delivered
	Resend  bool       // the start joined a pending verification
	Params  url.Values // the start's form parameters
	// Identity is the credential the start came with: "account" (Account
	// SID and Auth Token) or "api key".
	Identity string
	At       time.Time // by Config.Clock
}

// Server is an httptest-based fake of Twilio Verify v2. Safe for
// concurrent use.
type Server struct {
	// URL is the fake's base URL, for twilio.Config.BaseURL.
	URL string

	cfg Config
	srv *fakeserver.Server

	mu      sync.Mutex
	vs      map[string]*verification // by SID
	pending map[string]string        // destination -> SID of its pending verification
	sends   []Send
	calls   map[Op]int
	faults  map[Op][]Fault
}

// NewServer starts a fake server on 127.0.0.1. Close it when done.
func NewServer(cfg Config) *Server {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&cfg.ServiceSID, ServiceSID)
	def(&cfg.AccountSID, AccountSID)
	def(&cfg.AuthToken, AuthToken)
	def(&cfg.APIKeySID, APIKeySID)
	def(&cfg.APIKeySecret, APIKeySecret)
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.MaxChecks == 0 {
		cfg.MaxChecks = 5
	}
	if cfg.MaxSends == 0 {
		cfg.MaxSends = 5
	}
	if cfg.MaxChecksStatus == 0 {
		cfg.MaxChecksStatus = http.StatusTooManyRequests
	}
	if cfg.Channels == nil {
		cfg.Channels = []string{"sms", "call", "whatsapp", "email"}
	}
	s := &Server{cfg: cfg, vs: map[string]*verification{}, pending: map[string]string{},
		calls: map[Op]int{}, faults: map[Op][]Fault{}}
	s.srv = fakeserver.Start(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, releasing delayed requests.
func (s *Server) Close() { s.srv.Close() }

// Client returns an http.Client for the server (plain HTTP, keep-alive).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Calls returns how many requests reached endpoint op, including those a
// Fault answered.
func (s *Server) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Connections returns how many TCP connections the server accepted.
func (s *Server) Connections() int { return s.srv.Connections() }

// FailNext scripts the next len(faults) requests to endpoint op to fail
// as listed, in order, replacing what was scripted for op before;
// FailNext(op) clears it.
func (s *Server) FailNext(op Op, faults ...Fault) {
	s.mu.Lock()
	s.faults[op] = slices.Clone(faults)
	s.mu.Unlock()
}

// Sends returns every delivery so far, oldest first.
func (s *Server) Sends() []Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sends)
}

// LastCode returns the code of the latest delivery to to (an E.164 number
// with its "+", or an email address), as the person would read it.
func (s *Server) LastCode(to string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sends) - 1; i >= 0; i-- {
		if s.sends[i].To == to {
			return s.sends[i].Code, true
		}
	}
	return "", false
}

// Code returns the code of verification sid.
func (s *Server) Code(sid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vs[sid]
	if !ok {
		return "", false
	}
	return v.code, true
}

// State returns the status of verification sid: "pending", "approved",
// "canceled", "expired" or "max_attempts_reached".
func (s *Server) State(sid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vs[sid]
	if !ok {
		return "", false
	}
	s.live(v, s.cfg.Clock.Now())
	return v.status, true
}

// Pending returns how many verifications are pending.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	n := 0
	for _, v := range s.vs {
		if s.live(v, now) {
			n++
		}
	}
	return n
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return
	}
	op, sid, svcOK := s.route(r)
	s.mu.Lock()
	s.calls[op]++
	var f *Fault
	if q := s.faults[op]; len(q) > 0 {
		f, s.faults[op] = &q[0], q[1:]
	}
	s.mu.Unlock()
	if f != nil && s.fault(w, r, *f) {
		return
	}
	identity, ok := s.auth(r)
	if !ok {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if op == opOther || !svcOK {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	form := url.Values{}
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: Content-Type")
			return
		}
		if form, err = url.ParseQuery(string(body)); err != nil {
			twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: body")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case OpStart:
		s.start(w, form, identity)
	case OpCheck:
		s.check(w, form)
	case OpFetch:
		s.fetch(w, sid)
	case OpUpdate:
		s.update(w, sid, form)
	}
}

// route names the endpoint of r, the verification SID in its path, and
// whether the path names the fake's Service.
func (s *Server) route(r *http.Request) (Op, string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v2/Services/")
	if !ok {
		return opOther, "", false
	}
	svc, rest, _ := strings.Cut(rest, "/")
	svcOK := svc == s.cfg.ServiceSID
	switch {
	case rest == "Verifications" && r.Method == http.MethodPost:
		return OpStart, "", svcOK
	case rest == "VerificationCheck" && r.Method == http.MethodPost:
		return OpCheck, "", svcOK
	case strings.HasPrefix(rest, "Verifications/"):
		sid, err := url.PathUnescape(strings.TrimPrefix(rest, "Verifications/"))
		if err != nil || sid == "" || strings.Contains(sid, "/") {
			return opOther, "", false
		}
		switch r.Method {
		case http.MethodGet:
			return OpFetch, sid, svcOK
		case http.MethodPost:
			return OpUpdate, sid, svcOK
		}
	}
	return opOther, "", false
}

// auth reports which identity r carries.
func (s *Server) auth(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	switch {
	case !ok:
		return "", false
	case user == s.cfg.AccountSID && pass == s.cfg.AuthToken:
		return "account", true
	case user == s.cfg.APIKeySID && pass == s.cfg.APIKeySecret:
		return "api key", true
	}
	return "", false
}

// fault applies f and reports whether the request is answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if s.srv.Hold(w, r, f.Delay, f.Drop) {
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return true
	}
	code := f.Code
	if code == 0 {
		code = map[int]int{401: 20003, 403: 20403, 404: 20404, 429: 20429}[f.Status]
		if f.Status >= 500 {
			code = 20500
		}
	}
	twilioError(w, f.Status, code, "Scripted failure")
	return true
}

// twilioError writes Twilio's error body; code 0 leaves it out.
func twilioError(w http.ResponseWriter, status, code int, message string) {
	body := map[string]any{"message": message, "status": status}
	if code != 0 {
		body["code"] = code
		body["more_info"] = fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newSID returns a SID: prefix and 32 hex digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Sign returns the X-Twilio-Signature Twilio puts on a request to rawURL
// with form parameters params: base64(HMAC-SHA1(authToken, URL and the
// parameters' names and values, sorted)). Use it to test a
// twilio.NewWebhookHandler wiring.
func Sign(authToken, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range params {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range slices.Sorted(slices.Values(params[k])) {
			b.WriteString(k + v)
		}
	}
	return mac(authToken, b.String())
}

// SignJSON signs a request with a JSON body as Twilio signs JSON
// webhooks: it returns rawURL with a bodySHA256 parameter (the body's
// SHA-256 in hex) and the signature of that URL alone.
func SignJSON(authToken, rawURL string, body []byte) (signedURL, signature string) {
	sum := sha256.Sum256(body)
	sep := "?"
	if strings.Contains(rawURL, "?") {
		sep = "&"
	}
	signedURL = rawURL + sep + "bodySHA256=" + hex.EncodeToString(sum[:])
	return signedURL, mac(authToken, signedURL)
}

// SignBody returns the signature of rawURL followed by body, as Event
// Streams webhook sinks are signed.
func SignBody(authToken, rawURL string, body []byte) string {
	return mac(authToken, rawURL+string(body))
}

func mac(key, data string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Event returns the body an Event Streams webhook sink gets when
// verification sid reaches status ("pending", "approved", "canceled",
// "expired", "max_attempts_reached"): a JSON array of one CloudEvent
// shaped as Twilio documents it. ok is false for an unknown sid.
func (s *Server) Event(sid, status string) (body []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vs[sid]
	if !ok {
		return nil, false
	}
	now := s.cfg.Clock.Now().UTC()
	attempts := make([]map[string]any, 0, len(v.sends))
	for _, at := range v.sends {
		attempts = append(attempts, map[string]any{"time": at.Format(time.RFC3339), "channel": strings.ToUpper(v.channel),
			"attempt_sid": newSID("VL"), "delivery_status": "DELIVERED"})
	}
	data := map[string]any{"account_sid": s.cfg.AccountSID, "service_sid": s.cfg.ServiceSID, "verification_sid": v.sid,
		"to": v.to, "verification_status": strings.ToUpper(status), "country": "US", "code_length": len(v.code),
		"created_at": v.created.UTC().Format(time.RFC3339), "send_code_attempts": map[string]any{"count": len(attempts), "attempts": attempts},
		"check_attempts": map[string]any{"count": v.checks, "attempts": []any{}}}
	if status == "approved" {
		data["verified_at"] = now.Format(time.RFC3339)
	}
	ev := map[string]any{"specversion": "1.0", "type": "com.twilio.accountsecurity.verify.verification." + status,
		"source": "/v2/Services/" + s.cfg.ServiceSID + "/Verifications/" + v.sid, "id": newSID("EZ"),
		"dataschema":      "https://events-schemas.twilio.com/AccountSecurity.VerifyEventStreamEvent/3",
		"datacontenttype": "application/json", "time": now.Format(time.RFC3339), "data": data}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode([]any{ev})
	return b.Bytes(), true
}
