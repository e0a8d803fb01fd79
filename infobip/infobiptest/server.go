package infobiptest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpkit/otp"
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

// Op names a group of endpoints, for Requests and Fail.
type Op string

// Endpoint groups.
const (
	OpSend   Op = "send"   // POST /2fa/2/pin, /pin/voice, /pin/email
	OpResend Op = "resend" // POST /2fa/2/pin/{pinId}/resend[/voice|/email]
	OpVerify Op = "verify" // POST /2fa/2/pin/{pinId}/verify
	OpSetup  Op = "setup"  // applications and message templates
)

// Fault is a scripted failure for the next requests of an Op.
type Fault struct {
	// Status is the HTTP status to answer, with an error body in the
	// server's envelope (or Body). Ignored when Hang or Drop is set.
	Status int
	// Envelope, when set to Modern, overrides Config.Envelope for this
	// fault. Legacy (zero) keeps the server's.
	Envelope Envelope
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Body, if set, replaces the error body verbatim (HTML, truncated
	// JSON, ...); a 2xx Status with a Body answers a broken success.
	Body string
	// Hang holds the request without answering until the client gives up
	// or the server closes: a timeout after the request was written.
	Hang bool
	// Drop closes the connection without answering, after reading the
	// request.
	Drop bool
}

// Send records one PIN delivery (or attempt) the server handled.
type Send struct {
	PinID   string
	To      string      // digits without "+", or an email address
	Channel otp.Channel // SMS, Voice or Email
	PIN     string      // empty when nothing was delivered
	// NCNeeded is the raw ncNeeded query parameter of an SMS send, "" when
	// omitted (Infobip then runs Number Lookup).
	NCNeeded string
	Resend   bool
	At       time.Time
}

// Server is a fake Infobip 2FA API on an httptest server. Safe for
// concurrent use.
type Server struct {
	// URL is the base URL to put in infobip.Config.BaseURL.
	URL string

	cfg   Config
	srv   *httptest.Server
	conns atomic.Int64
	done  chan struct{}

	mu       sync.Mutex // guards everything below
	apps     map[string]*app
	appOrder []string
	pins     map[string]*pin
	sends    []Send
	requests map[Op]int
	faults   map[Op][]Fault
	windows  map[string][]time.Time // rate-limit events by limit key
	rates    map[string]rate        // parsed rate limits by their text
}

// rate is a parsed "{count}/{length}{unit}" limit.
type rate struct {
	n      int
	window time.Duration
	ok     bool // false for text that is not a limit: no limit applies
}

type app struct {
	id       string
	name     string
	enabled  bool
	cfg      appConfig
	messages map[string]*message
	order    []string
}

type appConfig struct {
	PinAttempts                   int    `json:"pinAttempts"`
	AllowMultiplePinVerifications bool   `json:"allowMultiplePinVerifications"`
	PinTimeToLive                 string `json:"pinTimeToLive"`
	VerifyPinLimit                string `json:"verifyPinLimit"`
	SendPinPerApplicationLimit    string `json:"sendPinPerApplicationLimit"`
	SendPinPerPhoneNumberLimit    string `json:"sendPinPerPhoneNumberLimit"`
}

var defaultAppConfig = appConfig{
	PinAttempts: 10, AllowMultiplePinVerifications: true, PinTimeToLive: "15m",
	VerifyPinLimit: "1/3s", SendPinPerApplicationLimit: "10000/1d", SendPinPerPhoneNumberLimit: "3/1d",
}

type message struct {
	MessageID       string  `json:"messageId"`
	ApplicationID   string  `json:"applicationId"`
	PinPlaceholder  string  `json:"pinPlaceholder,omitempty"`
	MessageText     string  `json:"messageText,omitempty"`
	PinLength       int     `json:"pinLength,omitempty"`
	PinType         string  `json:"pinType,omitempty"`
	Language        string  `json:"language,omitempty"`
	VoiceName       string  `json:"voiceName,omitempty"`
	SenderID        string  `json:"senderId,omitempty"`
	RepeatDTMF      string  `json:"repeatDTMF,omitempty"`
	SpeechRate      float64 `json:"speechRate,omitempty"`
	EmailTemplateID int64   `json:"emailTemplateId,omitempty"`
	From            string  `json:"from,omitempty"`
	LandingPageID   string  `json:"landingPageId,omitempty"`
}

type pin struct {
	id, appID, to, code string
	channel             otp.Channel
	expires             time.Time
	attemptsLeft        int
	verified            bool
}

// AppConfig configures an application made with AddApplication. Zero
// fields take Infobip's defaults, except AllowMultiplePinVerifications,
// whose zero value false differs from Infobip's default (true).
type AppConfig struct {
	PinAttempts                   int    // default 10
	AllowMultiplePinVerifications bool   // Infobip's default is true
	PinTimeToLive                 string // default "15m"
	VerifyPinLimit                string // default "1/3s"
	SendPinPerApplicationLimit    string // default "10000/1d"
	SendPinPerPhoneNumberLimit    string // default "3/1d"
}

// Message configures a template made with AddMessage.
type Message struct {
	Text      string // must contain "{{pin}}" unless Email
	PinLength int    // default 4
	PinType   string // NUMERIC (default), ALPHA, HEX or ALPHANUMERIC
	SenderID  string
	// Email makes an email template (for /2fa/2/pin/email).
	Email bool
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
		cfg: cfg, done: make(chan struct{}),
		apps: map[string]*app{}, pins: map[string]*pin{}, requests: map[Op]int{},
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
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, releasing hung requests.
func (s *Server) Close() {
	close(s.done)
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Conns returns how many TCP connections the server has accepted.
func (s *Server) Conns() int { return int(s.conns.Load()) }

// Requests returns how many requests of op reached the server, failed and
// faulted ones included.
func (s *Server) Requests(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// Fail makes the next n requests of op answer with f instead of being
// handled. They still count in Requests.
func (s *Server) Fail(op Op, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], f)
	}
}

// Sends returns every send and resend the server handled, oldest first.
func (s *Server) Sends() []Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sends)
}

// LastPIN returns the PIN most recently delivered to to (digits, with or
// without "+", or an email address), as the person would read it.
func (s *Server) LastPIN(to string) (string, bool) {
	to = strings.TrimPrefix(to, "+")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sends) - 1; i >= 0; i-- {
		if s.sends[i].To == to && s.sends[i].PIN != "" {
			return s.sends[i].PIN, true
		}
	}
	return "", false
}

// AddApplication creates an enabled application directly, as the portal
// would, and returns its ID.
func (s *Server) AddApplication(name string, c AppConfig) string {
	cfg := defaultAppConfig
	cfg.AllowMultiplePinVerifications = c.AllowMultiplePinVerifications
	if c.PinAttempts > 0 {
		cfg.PinAttempts = c.PinAttempts
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&cfg.PinTimeToLive, c.PinTimeToLive}, {&cfg.VerifyPinLimit, c.VerifyPinLimit},
		{&cfg.SendPinPerApplicationLimit, c.SendPinPerApplicationLimit},
		{&cfg.SendPinPerPhoneNumberLimit, c.SendPinPerPhoneNumberLimit},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newApp(name, true, cfg).id
}

// AddMessage creates a template in application appID directly and returns
// its ID. It panics if appID is unknown: a test's setup is wrong.
func (s *Server) AddMessage(appID string, m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		panic("infobiptest: AddMessage: unknown application " + appID)
	}
	msg := &message{MessageText: m.Text, PinLength: m.PinLength, PinType: m.PinType, SenderID: m.SenderID}
	if m.Email {
		msg.EmailTemplateID = 1
	}
	return s.addMessage(a, msg).MessageID
}

func (s *Server) newApp(name string, enabled bool, cfg appConfig) *app {
	a := &app{id: newID(16), name: name, enabled: enabled, cfg: cfg, messages: map[string]*message{}}
	s.apps[a.id] = a
	s.appOrder = append(s.appOrder, a.id)
	return a
}

func (s *Server) addMessage(a *app, m *message) *message {
	m.MessageID, m.ApplicationID = newID(16), a.id
	if m.PinType == "" {
		m.PinType = "NUMERIC"
	}
	if m.PinLength == 0 {
		m.PinLength = 4
	}
	if m.EmailTemplateID == 0 {
		m.PinPlaceholder = "{{pin}}"
		if m.Language == "" {
			m.Language = "en"
		}
	}
	a.messages[m.MessageID] = m
	a.order = append(a.order, m.MessageID)
	return m
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
		s.requests[op]++
		var f *Fault
		if q := s.faults[op]; len(q) > 0 {
			f, s.faults[op] = &q[0], q[1:]
		}
		s.mu.Unlock()
		if f != nil {
			s.fault(w, r, f)
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

func (s *Server) fault(w http.ResponseWriter, r *http.Request, f *Fault) {
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	case f.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
			}
		}
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	env := s.cfg.Envelope
	if f.Envelope != Legacy {
		env = f.Envelope
	}
	s.fail(w, env, f.Status, nil)
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

// Applications.

type appJSON struct {
	ApplicationID string    `json:"applicationId"`
	Name          string    `json:"name"`
	Enabled       bool      `json:"enabled"`
	Configuration appConfig `json:"configuration"`
}

func (a *app) json() appJSON {
	return appJSON{ApplicationID: a.id, Name: a.name, Enabled: a.enabled, Configuration: a.cfg}
}

func (s *Server) listApps(http.ResponseWriter, *http.Request, []byte) (int, any) {
	out := []appJSON{}
	for _, id := range s.appOrder {
		out = append(out, s.apps[id].json())
	}
	return http.StatusOK, out
}

func (s *Server) getApp(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	return http.StatusOK, a.json()
}

var (
	durationRE = regexp.MustCompile(`^([0-9]*)(ms|s|m|h|d)$`)
	rateRE     = regexp.MustCompile(`^([0-9]+)/([0-9]*(?:ms|s|m|h|d))$`)
)

// decodeApp reads an application request over the defaults, or says which
// field is wrong.
func decodeApp(body []byte) (string, bool, appConfig, map[string]string) {
	var req struct {
		Name          string `json:"name"`
		Enabled       *bool  `json:"enabled"`
		Configuration *struct {
			PinAttempts                   *int   `json:"pinAttempts"`
			AllowMultiplePinVerifications *bool  `json:"allowMultiplePinVerifications"`
			PinTimeToLive                 string `json:"pinTimeToLive"`
			VerifyPinLimit                string `json:"verifyPinLimit"`
			SendPinPerApplicationLimit    string `json:"sendPinPerApplicationLimit"`
			SendPinPerPhoneNumberLimit    string `json:"sendPinPerPhoneNumberLimit"`
		} `json:"configuration"`
	}
	cfg := defaultAppConfig
	if err := json.Unmarshal(body, &req); err != nil {
		return "", false, cfg, map[string]string{"body": "malformed JSON"}
	}
	bad := map[string]string{}
	if strings.TrimSpace(req.Name) == "" {
		bad["name"] = "may not be null"
	}
	if c := req.Configuration; c != nil {
		if c.PinAttempts != nil {
			if *c.PinAttempts < 1 {
				bad["configuration.pinAttempts"] = "must be greater than 0"
			}
			cfg.PinAttempts = *c.PinAttempts
		}
		if c.AllowMultiplePinVerifications != nil {
			cfg.AllowMultiplePinVerifications = *c.AllowMultiplePinVerifications
		}
		for _, f := range []struct {
			name string
			dst  *string
			v    string
			re   *regexp.Regexp
		}{
			{"pinTimeToLive", &cfg.PinTimeToLive, c.PinTimeToLive, durationRE},
			{"verifyPinLimit", &cfg.VerifyPinLimit, c.VerifyPinLimit, rateRE},
			{"sendPinPerApplicationLimit", &cfg.SendPinPerApplicationLimit, c.SendPinPerApplicationLimit, rateRE},
			{"sendPinPerPhoneNumberLimit", &cfg.SendPinPerPhoneNumberLimit, c.SendPinPerPhoneNumberLimit, rateRE},
		} {
			if f.v == "" {
				continue
			}
			if !f.re.MatchString(f.v) {
				bad["configuration."+f.name] = "invalid format"
			}
			*f.dst = f.v
		}
	}
	return req.Name, req.Enabled == nil || *req.Enabled, cfg, bad
}

func (s *Server) createApp(_ http.ResponseWriter, _ *http.Request, body []byte) (int, any) {
	name, enabled, cfg, bad := decodeApp(body)
	if len(bad) > 0 {
		return errAnswer(http.StatusBadRequest, bad)
	}
	return http.StatusCreated, s.newApp(name, enabled, cfg).json()
}

func (s *Server) updateApp(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	name, enabled, cfg, bad := decodeApp(body)
	if len(bad) > 0 {
		return errAnswer(http.StatusBadRequest, bad)
	}
	a.name, a.enabled, a.cfg = name, enabled, cfg
	return http.StatusOK, a.json()
}

// Message templates.

func (s *Server) listMessages(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	out := []*message{}
	for _, id := range a.order {
		out = append(out, a.messages[id])
	}
	return http.StatusOK, out
}

func (s *Server) getMessage(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	m, ok := a.messages[r.PathValue("msg")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	return http.StatusOK, m
}

var pinTypes = []string{"NUMERIC", "ALPHA", "HEX", "ALPHANUMERIC"}

// saveMessage creates (POST) or replaces (PUT) a template.
func (s *Server) saveMessage(email bool) handler {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
		a, ok := s.apps[r.PathValue("app")]
		if !ok {
			return errAnswer(http.StatusNotFound, nil)
		}
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			return errAnswer(http.StatusBadRequest, map[string]string{"body": "malformed JSON"})
		}
		bad := map[string]string{}
		if email && m.EmailTemplateID == 0 {
			bad["emailTemplateId"] = "may not be null"
		}
		if !email {
			m.EmailTemplateID = 0
			if !strings.Contains(m.MessageText, "{{pin}}") {
				bad["messageText"] = "must contain {{pin}}"
			}
			if m.PinType == "" {
				bad["pinType"] = "may not be null"
			}
		}
		if m.PinType != "" && !slices.Contains(pinTypes, m.PinType) {
			bad["pinType"] = "invalid value"
		}
		if m.PinLength < 0 || m.PinLength > 16 {
			bad["pinLength"] = "invalid value"
		}
		if len(bad) > 0 {
			return errAnswer(http.StatusBadRequest, bad)
		}
		if id := r.PathValue("msg"); id != "" {
			old, ok := a.messages[id]
			if !ok {
				return errAnswer(http.StatusNotFound, nil)
			}
			m.MessageID, m.ApplicationID, m.PinPlaceholder = old.MessageID, a.id, old.PinPlaceholder
			if m.PinLength == 0 {
				m.PinLength = old.PinLength
			}
			*old = m
			return http.StatusOK, old
		}
		return http.StatusOK, s.addMessage(a, &m)
	}
}

// PINs.

type sendRequest struct {
	ApplicationID string `json:"applicationId"`
	MessageID     string `json:"messageId"`
	To            string `json:"to"`
	From          string `json:"from"`
}

var digitsRE = regexp.MustCompile(`^[0-9]{6,15}$`)

func (s *Server) send(ch otp.Channel) handler {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
		var req sendRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return errAnswer(http.StatusBadRequest, map[string]string{"body": "malformed JSON"})
		}
		bad := map[string]string{}
		if req.ApplicationID == "" {
			bad["applicationId"] = "may not be null"
		}
		if req.MessageID == "" {
			bad["messageId"] = "may not be null"
		}
		if ch == otp.Email && !strings.Contains(req.To, "@") || ch != otp.Email && !digitsRE.MatchString(req.To) {
			bad["to"] = "invalid destination"
		}
		if len(bad) > 0 {
			return errAnswer(http.StatusBadRequest, bad)
		}
		a, ok := s.apps[req.ApplicationID]
		var m *message
		if ok {
			m, ok = a.messages[req.MessageID]
		}
		if !ok {
			// V1 documents this text; its status is the fake's choice.
			return errAnswer(http.StatusNotFound, nil)
		}
		if !a.enabled || (m.EmailTemplateID != 0) != (ch == otp.Email) {
			return errAnswer(http.StatusBadRequest, map[string]string{"applicationId": "application disabled or template of another channel"})
		}
		now := s.cfg.Clock.Now()
		if !s.allow("app:"+a.id, a.cfg.SendPinPerApplicationLimit, now) ||
			!s.allow("to:"+a.id+":"+req.To, a.cfg.SendPinPerPhoneNumberLimit, now) {
			return errAnswer(http.StatusTooManyRequests, nil)
		}
		p := &pin{id: newID(16), appID: a.id, to: req.To, channel: ch, code: newPIN(m.PinType, m.PinLength),
			attemptsLeft: a.cfg.PinAttempts, expires: now.Add(parseDuration(a.cfg.PinTimeToLive))}
		s.pins[p.id] = p
		nc := ""
		if ch == otp.SMS {
			nc = r.URL.Query().Get("ncNeeded")
		}
		return http.StatusOK, s.deliver(p, nc, nc != "false" && ch == otp.SMS, false, now)
	}
}

// deliver records a delivery of p and builds the send/resend answer.
func (s *Server) deliver(p *pin, ncNeeded string, lookup, resend bool, now time.Time) map[string]any {
	out := map[string]any{"pinId": p.id, "to": p.to}
	sent := !slices.Contains(s.cfg.Undeliverable, p.to)
	if lookup {
		if slices.Contains(s.cfg.Unreachable, p.to) {
			out["ncStatus"], sent = "NC_DESTINATION_NOT_REACHABLE", false
		} else {
			out["ncStatus"] = "NC_DESTINATION_REACHABLE"
		}
	}
	switch p.channel {
	case otp.SMS:
		out["smsStatus"] = "MESSAGE_SENT"
		if !sent {
			out["smsStatus"] = "MESSAGE_NOT_SENT"
		}
	case otp.Voice:
		out["callStatus"] = "PENDING_ACCEPTED"
		if !sent {
			out["callStatus"] = "REJECTED_DESTINATION"
		}
	case otp.Email:
		out["emailStatus"] = map[string]string{"name": "PENDING_ACCEPTED", "description": "Message accepted, pending for delivery."}
		if !sent {
			out["emailStatus"] = map[string]string{"name": "REJECTED_DESTINATION", "description": "Message rejected."}
		}
	}
	rec := Send{PinID: p.id, To: p.to, Channel: p.channel, NCNeeded: ncNeeded, Resend: resend, At: now}
	if sent {
		rec.PIN = p.code
	}
	s.sends = append(s.sends, rec)
	return out
}

func (s *Server) resend(ch otp.Channel) handler {
	return func(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
		p, ok := s.pins[r.PathValue("pin")]
		if !ok || p.channel != ch {
			return errAnswer(http.StatusNotFound, nil)
		}
		a := s.apps[p.appID]
		now := s.cfg.Clock.Now()
		if !s.allow("app:"+a.id, a.cfg.SendPinPerApplicationLimit, now) ||
			!s.allow("to:"+a.id+":"+p.to, a.cfg.SendPinPerPhoneNumberLimit, now) {
			return errAnswer(http.StatusTooManyRequests, nil)
		}
		return http.StatusOK, s.deliver(p, "", false, true, now)
	}
}

func (s *Server) verify(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
	p, ok := s.pins[r.PathValue("pin")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	var req struct {
		PIN *string `json:"pin"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.PIN == nil {
		return errAnswer(http.StatusBadRequest, map[string]string{"pin": "may not be null"})
	}
	a := s.apps[p.appID]
	now := s.cfg.Clock.Now()
	if !s.allow("verify:"+a.id+":"+p.to, a.cfg.VerifyPinLimit, now) {
		return errAnswer(http.StatusTooManyRequests, nil)
	}
	if p.verified && !a.cfg.AllowMultiplePinVerifications {
		return errAnswer(http.StatusNotFound, nil)
	}
	out := map[string]any{"pinId": p.id, "msisdn": p.to, "verified": false}
	switch {
	case !now.Before(p.expires):
		out["pinError"] = "TTL_EXPIRED"
	case p.attemptsLeft <= 0:
		out["pinError"] = "NO_MORE_PIN_ATTEMPTS"
	case *req.PIN == p.code:
		p.verified = true
		out["verified"] = true
		out["attemptsRemaining"] = 0 // as in every example of a success
		return http.StatusOK, out
	default:
		p.attemptsLeft--
		out["pinError"] = "WRONG_PIN"
	}
	out["attemptsRemaining"] = p.attemptsLeft
	return http.StatusOK, out
}

// allow takes one event from the "{n}/{duration}" limit under key, or
// reports that the window is full.
func (s *Server) allow(key, limit string, now time.Time) bool {
	// Limits are parsed once: a load test sends thousands a second.
	r, seen := s.rates[limit]
	if !seen {
		r = parseRate(limit)
		s.rates[limit] = r
	}
	if !r.ok {
		return true
	}
	n := r.n
	since := now.Add(-r.window)
	// Events are in clock order: drop the ones before the window.
	events := s.windows[key]
	i, _ := slices.BinarySearchFunc(events, since, func(t, since time.Time) int {
		if t.After(since) {
			return 1
		}
		return -1
	})
	events = events[i:]
	if len(events) >= n {
		s.windows[key] = events
		return false
	}
	s.windows[key] = append(events, now)
	return true
}

// parseRate reads Infobip's "{count}/{length}{unit}".
func parseRate(limit string) rate {
	m := rateRE.FindStringSubmatch(limit)
	if m == nil {
		return rate{}
	}
	n, _ := strconv.Atoi(m[1])
	return rate{n: n, window: parseDuration(m[2]), ok: true}
}

// parseDuration reads Infobip's "{length}{unit}"; length defaults to 1.
func parseDuration(v string) time.Duration {
	m := durationRE.FindStringSubmatch(v)
	if m == nil {
		return 0
	}
	n := 1
	if m[1] != "" {
		n, _ = strconv.Atoi(m[1])
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit
}

// newPIN makes a PIN of the template's type and length.
func newPIN(pinType string, n int) string {
	alphabet := map[string]string{
		"NUMERIC": "0123456789", "ALPHA": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"HEX": "0123456789ABCDEF", "ALPHANUMERIC": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	}[pinType]
	if alphabet == "" {
		alphabet = "0123456789"
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// String describes the server without its API key.
func (s *Server) String() string { return fmt.Sprintf("infobiptest.Server{URL:%s}", s.URL) }
