package infobiptest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/fakeserver"
)

// Envelope selects the shape of error bodies.
type Envelope int

const (
	// Legacy is the envelope every 2FA operation documents:
	// {"requestError":{"serviceException":{"messageId","text","validationErrors"}}}.
	Legacy Envelope = iota
	// Modern is the envelope of Infobip's newer APIs:
	// {"errorCode":"E400","description","action","violations","resources"}.
	Modern
)

// Config configures a Server. Every zero field takes the default shown.
type Config struct {
	// APIKey is the key the server accepts as "Authorization: App <key>".
	// Default "test-api-key".
	APIKey string
	// Clock drives PIN expiry and the rate limits. Default otp.SystemClock.
	Clock otp.Clock
	// Envelope is the shape of every error body. Default Legacy.
	Envelope Envelope
	// Unreachable lists destinations (digits without "+") that Number
	// Lookup finds unreachable: an SMS send with lookup on answers 200 with
	// NC_DESTINATION_NOT_REACHABLE and MESSAGE_NOT_SENT.
	Unreachable []string
	// Undeliverable lists destinations whose SMS answers MESSAGE_NOT_SENT,
	// whose call answers REJECTED_DESTINATION and whose email answers
	// REJECTED_DESTINATION, whatever the lookup says.
	Undeliverable []string
}

// Op names a group of endpoints, for [Server.Calls] and
// [Server.FailNext].
type Op string

// Endpoint groups.
const (
	OpSend   Op = "send"   // POST /2fa/2/pin, /pin/voice, /pin/email
	OpResend Op = "resend" // POST /2fa/2/pin/{pinId}/resend[/voice|/email]
	OpVerify Op = "verify" // POST /2fa/2/pin/{pinId}/verify
	OpSetup  Op = "setup"  // applications and message templates
)

// Fault is a scripted failure for [Server.FailNext]. The request is
// counted before the fault applies.
type Fault struct {
	// Status, if not 0, is the HTTP status to answer instead of the real
	// handling, with an error body in the server's envelope (or Body).
	Status int
	// Envelope, when set to Modern, overrides Config.Envelope for this
	// fault. Legacy (zero) keeps the server's.
	Envelope Envelope
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Body, if set, replaces the error body verbatim (HTML, truncated
	// JSON, ...); a 2xx Status with a Body answers a broken success.
	Body string
	// Delay holds the answer back this long, or until the client gives up
	// or the server is closed: a Delay longer than the client's timeout is
	// a hang, a timeout after the request was written. With Status 0 the
	// request is then handled normally.
	Delay time.Duration
	// Drop closes the connection without answering, after reading the
	// request (and after Delay).
	Drop bool
}

// Send records one PIN delivery (or attempt) the server handled.
type Send struct {
	PinID   string
	To      string      // digits without "+", or an email address
	Channel otp.Channel // SMS, Voice or Email
	Code    string      // the PIN; empty when nothing was delivered
	// NCNeeded is the raw ncNeeded query parameter of an SMS send, "" when
	// omitted (Infobip then runs Number Lookup).
	NCNeeded string
	Resend   bool
	At       time.Time
	// MessageID and From are what a send named (not a resend).
	MessageID, From string
	// Placeholders are what the send or resend carried.
	Placeholders map[string]string
	// IndiaDLT is the template's DLT registration, if it has one (sends).
	IndiaDLT *IndiaDLT
}

// Server is a fake Infobip 2FA API on an httptest server. Safe for
// concurrent use.
type Server struct {
	// URL is the base URL to put in infobip.Config.BaseURL.
	URL string

	cfg Config
	srv *fakeserver.Server

	mu       sync.Mutex // guards everything below
	apps     map[string]*app
	appOrder []string
	pins     map[string]*pin
	sends    []Send
	calls    map[Op]int
	faults   map[Op][]Fault
	windows  map[string][]time.Time // rate-limit events by limit key
	rates    map[string]rate        // parsed rate limits by their text
}

// NewServer starts a fake Infobip server. Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.APIKey == "" {
		cfg.APIKey = "test-api-key"
	}
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	s := &Server{
		cfg:  cfg,
		apps: map[string]*app{}, pins: map[string]*pin{}, calls: map[Op]int{},
		faults: map[Op][]Fault{}, windows: map[string][]time.Time{}, rates: map[string]rate{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2fa/2/applications", s.route(OpSetup, s.listApps))
	mux.HandleFunc("POST /2fa/2/applications", s.route(OpSetup, s.createApp))
	mux.HandleFunc("GET /2fa/2/applications/{app}", s.route(OpSetup, s.getApp))
	mux.HandleFunc("PUT /2fa/2/applications/{app}", s.route(OpSetup, s.updateApp))
	mux.HandleFunc("GET /2fa/2/applications/{app}/messages", s.route(OpSetup, s.listMessages))
	mux.HandleFunc("POST /2fa/2/applications/{app}/messages", s.route(OpSetup, s.saveMessage(false)))
	mux.HandleFunc("POST /2fa/2/applications/{app}/email/messages", s.route(OpSetup, s.saveMessage(true)))
	mux.HandleFunc("GET /2fa/2/applications/{app}/messages/{msg}", s.route(OpSetup, s.getMessage))
	mux.HandleFunc("PUT /2fa/2/applications/{app}/messages/{msg}", s.route(OpSetup, s.saveMessage(false)))
	mux.HandleFunc("PUT /2fa/2/applications/{app}/email/messages/{msg}", s.route(OpSetup, s.saveMessage(true)))
	mux.HandleFunc("POST /2fa/2/pin", s.route(OpSend, s.send(otp.SMS)))
	mux.HandleFunc("POST /2fa/2/pin/voice", s.route(OpSend, s.send(otp.Voice)))
	mux.HandleFunc("POST /2fa/2/pin/email", s.route(OpSend, s.send(otp.Email)))
	mux.HandleFunc("POST /2fa/2/pin/{pin}/resend", s.route(OpResend, s.resend(otp.SMS)))
	mux.HandleFunc("POST /2fa/2/pin/{pin}/resend/voice", s.route(OpResend, s.resend(otp.Voice)))
	mux.HandleFunc("POST /2fa/2/pin/{pin}/resend/email", s.route(OpResend, s.resend(otp.Email)))
	mux.HandleFunc("POST /2fa/2/pin/{pin}/verify", s.route(OpVerify, s.verify))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, s.cfg.Envelope, http.StatusNotFound, nil)
	})
	s.srv = fakeserver.Start(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, releasing hung requests.
func (s *Server) Close() { s.srv.Close() }

// Connections returns how many TCP connections the server has accepted.
func (s *Server) Connections() int { return s.srv.Connections() }

// Calls returns how many requests of op reached the server, failed and
// faulted ones included.
func (s *Server) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// FailNext scripts the next len(faults) requests of op to fail as listed,
// in order, replacing what was scripted for op before; FailNext(op) clears
// it. The requests still count in Calls.
func (s *Server) FailNext(op Op, faults ...Fault) {
	s.mu.Lock()
	s.faults[op] = slices.Clone(faults)
	s.mu.Unlock()
}

// Sends returns every send and resend the server handled, oldest first.
func (s *Server) Sends() []Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sends)
}

// LastCode returns the PIN most recently delivered to to (digits, with or
// without "+", or an email address), as the person would read it.
func (s *Server) LastCode(to string) (string, bool) {
	to = strings.TrimPrefix(to, "+")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sends) - 1; i >= 0; i-- {
		if s.sends[i].To == to && s.sends[i].Code != "" {
			return s.sends[i].Code, true
		}
	}
	return "", false
}

// newID returns n random bytes as upper-case hex, like Infobip's IDs.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// handler handles one request with s.mu held.
type handler func(w http.ResponseWriter, r *http.Request, body []byte) (status int, v any)

// route counts the request, checks the API key, applies a scripted fault
// and runs h under the lock.
func (s *Server) route(op Op, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.calls[op]++
		var f *Fault
		if q := s.faults[op]; len(q) > 0 {
			f, s.faults[op] = &q[0], q[1:]
		}
		s.mu.Unlock()
		if f != nil && s.fault(w, r, f) {
			return
		}
		if r.Header.Get("Authorization") != "App "+s.cfg.APIKey {
			s.fail(w, s.cfg.Envelope, http.StatusUnauthorized, nil)
			return
		}
		s.mu.Lock()
		status, v := h(w, r, body)
		s.mu.Unlock()
		if e, ok := v.(apiError); ok {
			s.fail(w, s.cfg.Envelope, status, e.fields)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// fault applies f and reports whether the request is answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
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
	env := s.cfg.Envelope
	if f.Envelope != Legacy {
		env = f.Envelope
	}
	s.fail(w, env, f.Status, nil)
	return true
}

// apiError is a handler's error answer; fields are validation errors.
type apiError struct{ fields map[string]string }

func errAnswer(status int, fields map[string]string) (int, any) {
	return status, apiError{fields: fields}
}

var texts = map[int][2]string{
	400: {"BAD_REQUEST", "Bad request"},
	401: {"UNAUTHORIZED", "Unauthorized"},
	403: {"FORBIDDEN", "Forbidden"},
	404: {"NOT_FOUND", "Not found"},
	429: {"TOO_MANY_REQUESTS", "Too many requests"},
	500: {"GENERAL_ERROR", "Something went wrong. Please contact support."},
}

// fail writes an error body in envelope env.
func (s *Server) fail(w http.ResponseWriter, env Envelope, status int, fields map[string]string) {
	t, ok := texts[status]
	if !ok {
		t = [2]string{strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")), http.StatusText(status)}
	}
	var body any
	if env == Modern {
		type violation struct {
			Property  string `json:"property"`
			Violation string `json:"violation"`
		}
		vs := []violation{}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			vs = append(vs, violation{k, fields[k]})
		}
		body = map[string]any{"errorCode": "E" + strconv.Itoa(status), "description": t[1],
			"action": "Check the request.", "violations": vs, "resources": []any{}}
	} else {
		se := map[string]any{"messageId": t[0], "text": t[1]}
		if len(fields) > 0 {
			ve := map[string][]string{}
			for k, v := range fields {
				ve[k] = []string{v}
			}
			se["validationErrors"] = ve
		}
		body = map[string]any{"requestError": map[string]any{"serviceException": se}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// String describes the server without its API key.
func (s *Server) String() string { return fmt.Sprintf("infobiptest.Server{URL:%s}", s.URL) }
