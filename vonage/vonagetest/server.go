package vonagetest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/fakeserver"
)

// Op names an endpoint of the fake, for [Server.Calls] and
// [Server.FailNext].
type Op string

// Endpoints.
const (
	V2Start        Op = "v2 start"         // POST /v2/verify
	V2Check        Op = "v2 check"         // POST /v2/verify/{id}
	V2Cancel       Op = "v2 cancel"        // DELETE /v2/verify/{id}
	V2NextWorkflow Op = "v2 next_workflow" // POST /v2/verify/{id}/next_workflow
	LegacyRequest  Op = "legacy request"   // /verify/json
	LegacyCheck    Op = "legacy check"     // /verify/check/json
	LegacyControl  Op = "legacy control"   // /verify/control/json
	LegacySearch   Op = "legacy search"    // /verify/search/json
	unknownRoute   Op = "unknown"
)

// Config configures a fake [Server]. Every zero field takes the default
// documented on it.
type Config struct {
	// APIKey and APISecret are the credentials the fake accepts: HTTP
	// Basic on both APIs, and api_key/api_secret parameters (form body or
	// query) on the legacy API. Defaults "test-key" and "test-secret".
	APIKey, APISecret string
	// ApplicationID and PublicKey, when both set, make v2 accept an
	// RS256 JWT whose application_id matches. Tokens need iat; exp at most
	// 24h after it (15 minutes when absent), as Vonage documents.
	ApplicationID string
	PublicKey     *rsa.PublicKey
	// Clock drives expiry, channel timeouts and cancel timing. Default
	// otp.SystemClock; give an otptest.Clock to expire codes without
	// sleeping.
	Clock otp.Clock
	// Code, if set, is the code every verification gets, whatever length
	// was requested. Default: random digits of the requested length.
	Code string
	// MaxWrongCodes is the wrong code that ends a verification: it is
	// answered 410 (v2) or status 17 (legacy) instead of 400 or 16. No
	// source says whether Vonage ends on the third or the fourth; default 3.
	MaxWrongCodes int
	// ConflictStatus answers a v2 start to a destination that has a
	// verification in progress: 409 as in Vonage's spec, or 422 as in its
	// SDKs' fixtures. Default 409.
	ConflictStatus int
	// CancelAfter is how long after the start a cancel is refused (v2:
	// 409, legacy: status 19). Default 30s; negative: never refused.
	CancelAfter time.Duration
	// ConflictAfterCancel keeps refusing starts to a destination this long
	// after its verification was cancelled, as users observed (~10s).
	// Default 0.
	ConflictAfterCancel time.Duration
	// RefuseCustomCodes makes a v2 start with a code of the caller's
	// ("code") answer 403, as for an account without Vonage's custom-code
	// pricing. Default false: custom codes are accepted.
	RefuseCustomCodes bool
}

// Fault is a scripted failure for [Server.FailNext]. The request is counted
// before the fault applies.
type Fault struct {
	// Status, if not 0, is answered instead of the real handling, with
	// Body (default: a problem JSON for v2, nothing for legacy).
	Status int
	Body   string
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Drop closes the connection without an answer, after the request was
	// read: the client cannot know whether it was acted on.
	Drop bool
	// Delay holds the answer back this long, or until the client gives up
	// or the server is closed: a Delay longer than the client's timeout is
	// a hang. With Status 0 the request is then handled normally.
	Delay time.Duration
}

// Send is one code delivery by the fake: a start, the next channel of a
// workflow (timed by the Clock or asked for), or a legacy event.
type Send struct {
	API       string // "v2" or "legacy"
	RequestID string
	To        string // as Vonage got it: digits without "+", or an email
	Channel   string // "sms", "voice", "email", "whatsapp", "tts", ...
	Code      string
	At        time.Time
	// EntityID, ContentID and AppHash are what a v2 SMS step carried
	// (India's DLT registration, the Android app hash); empty otherwise.
	EntityID, ContentID, AppHash string
}

// Server is an httptest-based fake of Vonage Verify v2 and the legacy
// Verify API. It keeps verifications in memory, sends nothing, and lets a
// test read the code it "sent". Safe for concurrent use.
type Server struct {
	// URL is the fake's base URL, for V2Config.BaseURL and
	// LegacyConfig.BaseURL.
	URL string

	cfg Config
	srv *fakeserver.Server

	mu        sync.Mutex
	reqs      map[string]*verification
	active    map[string]string    // destination -> request ID in progress
	cancelled map[string]time.Time // destination -> last cancel
	sends     []Send
	calls     map[Op]int
	faults    map[Op][]Fault
	tokens    map[string]bool // jti of the JWTs seen
	verified  map[string]verifiedToken
}

// verifiedToken caches a JWT whose signature checked out, so that the fake
// spends no RSA time on a token it has seen (benchmarks measure the client).
type verifiedToken struct {
	jti string
	end time.Time
}

type verification struct {
	api      string
	id       string
	to       string
	channels []string
	step     int
	wait     time.Duration // between channels / events
	code     string
	created  time.Time
	stepAt   time.Time
	expires  time.Time // legacy pin expiry; zero for v2 (ends after the last channel's wait)
	wrong    int
	state    string // "pending", "verified", "cancelled", "failed", "expired"
	// entityID, contentID and appHash are what the v2 SMS step carried.
	entityID, contentID, appHash string
}

// NewServer starts a fake server on 127.0.0.1. Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.APIKey == "" {
		cfg.APIKey = "test-key"
	}
	if cfg.APISecret == "" {
		cfg.APISecret = "test-secret"
	}
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.MaxWrongCodes == 0 {
		cfg.MaxWrongCodes = 3
	}
	if cfg.ConflictStatus == 0 {
		cfg.ConflictStatus = http.StatusConflict
	}
	if cfg.CancelAfter == 0 {
		cfg.CancelAfter = 30 * time.Second
	}
	s := &Server{cfg: cfg, reqs: map[string]*verification{}, active: map[string]string{},
		cancelled: map[string]time.Time{}, calls: map[Op]int{}, faults: map[Op][]Fault{}, tokens: map[string]bool{}, verified: map[string]verifiedToken{}}
	s.srv = fakeserver.Start(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, releasing delayed requests.
func (s *Server) Close() { s.srv.Close() }

// Client returns an http.Client for the server (plain HTTP, keep-alive).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Calls returns how many requests reached endpoint op (V2Start, ...),
// including those a Fault answered.
func (s *Server) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Connections returns how many TCP connections the server accepted.
func (s *Server) Connections() int { return s.srv.Connections() }

// TokensSeen returns how many distinct JWTs (by jti) v2 accepted.
func (s *Server) TokensSeen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

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
	s.advanceAll()
	return append([]Send(nil), s.sends...)
}

// LastCode returns the code of the latest verification sent to to, which
// may be written with or without its "+".
func (s *Server) LastCode(to string) (string, bool) {
	to = strings.TrimPrefix(to, "+")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sends) - 1; i >= 0; i-- {
		if s.sends[i].To == to {
			return s.sends[i].Code, true
		}
	}
	return "", false
}

// Code returns the code of verification id.
func (s *Server) Code(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reqs[id]
	if !ok {
		return "", false
	}
	return v.code, true
}

// State returns the state of verification id: "pending", "verified",
// "cancelled", "failed" or "expired".
func (s *Server) State(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reqs[id]
	if !ok {
		return "", false
	}
	s.live(v, s.cfg.Clock.Now())
	return v.state, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	endpoint, id := route(r)
	s.mu.Lock()
	s.calls[endpoint]++
	var f *Fault
	if q := s.faults[endpoint]; len(q) > 0 {
		f, s.faults[endpoint] = &q[0], q[1:]
	}
	s.mu.Unlock()
	if f != nil && s.fault(w, r, endpoint, *f) {
		return
	}
	switch endpoint {
	case V2Start, V2Check, V2Cancel, V2NextWorkflow:
		if !s.v2Auth(w, r) {
			return
		}
	}
	switch endpoint {
	case V2Start:
		s.v2Start(w, r)
	case V2Check:
		s.v2Check(w, r, id)
	case V2Cancel:
		s.v2Cancel(w, id)
	case V2NextWorkflow:
		s.v2Next(w, id)
	case LegacyRequest, LegacyCheck, LegacyControl, LegacySearch:
		s.legacy(w, r, endpoint)
	default:
		problemJSON(w, http.StatusNotFound, "not-found", "Not Found", "The requested resource does not exist.", nil)
	}
}

// route names the endpoint of r and the request ID in its path.
func route(r *http.Request) (endpoint Op, id string) {
	p := r.URL.EscapedPath()
	switch {
	case p == "/v2/verify" && r.Method == http.MethodPost:
		return V2Start, ""
	case strings.HasPrefix(p, "/v2/verify/"):
		rest := strings.TrimPrefix(p, "/v2/verify/")
		seg, suffix, _ := strings.Cut(rest, "/")
		id, err := url.PathUnescape(seg)
		if err != nil || id == "" {
			return unknownRoute, ""
		}
		switch {
		case suffix == "" && r.Method == http.MethodPost:
			return V2Check, id
		case suffix == "" && r.Method == http.MethodDelete:
			return V2Cancel, id
		case suffix == "next_workflow" && r.Method == http.MethodPost:
			return V2NextWorkflow, id
		}
	case r.Method == http.MethodGet || r.Method == http.MethodPost:
		switch p {
		case "/verify/json":
			return LegacyRequest, ""
		case "/verify/check/json":
			return LegacyCheck, ""
		case "/verify/control/json":
			return LegacyControl, ""
		case "/verify/search/json":
			return LegacySearch, ""
		}
	}
	return unknownRoute, ""
}

// fault applies f and reports whether the request is answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, endpoint Op, f Fault) bool {
	// Read the request first: it has then surely reached the fake, and the
	// server notices a client that gives up during a Delay.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if s.srv.Hold(w, r, f.Delay, f.Drop) {
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	answer := f.Body
	if answer == "" && strings.HasPrefix(string(endpoint), "v2") {
		answer = fmt.Sprintf(`{"type":"https://developer.vonage.com/api-errors#%d","title":%q,"detail":"Scripted failure."}`, f.Status, http.StatusText(f.Status))
		w.Header().Set("Content-Type", "application/problem+json")
	}
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, answer)
	return true
}

// live advances v to now (timed channel moves, expiry) and reports whether
// it is still pending. The caller holds s.mu.
func (s *Server) live(v *verification, now time.Time) bool {
	if v.state != "pending" {
		return false
	}
	for v.step < len(v.channels)-1 && !now.Before(v.stepAt.Add(v.wait)) {
		v.step++
		v.stepAt = v.stepAt.Add(v.wait)
		s.record(v, v.stepAt)
	}
	ended := !v.expires.IsZero() && !now.Before(v.expires) ||
		v.expires.IsZero() && v.step == len(v.channels)-1 && !now.Before(v.stepAt.Add(v.wait))
	if ended {
		s.finish(v, "expired")
		return false
	}
	return true
}

func (s *Server) advanceAll() {
	now := s.cfg.Clock.Now()
	for _, v := range s.reqs {
		s.live(v, now)
	}
}

func (s *Server) finish(v *verification, state string) {
	v.state = state
	if s.active[v.to] == v.id {
		delete(s.active, v.to)
	}
}

func (s *Server) record(v *verification, at time.Time) {
	snd := Send{API: v.api, RequestID: v.id, To: v.to, Channel: v.channels[v.step], Code: v.code, At: at}
	if snd.Channel == "sms" {
		snd.EntityID, snd.ContentID, snd.AppHash = v.entityID, v.contentID, v.appHash
	}
	s.sends = append(s.sends, snd)
}

// inFlight returns the ID of the verification in progress to to, or ""
// when a start may go ahead. The caller holds s.mu.
func (s *Server) inFlight(to string, now time.Time) (string, bool) {
	if id, ok := s.active[to]; ok && s.live(s.reqs[id], now) {
		return id, true
	}
	if at, ok := s.cancelled[to]; ok && now.Before(at.Add(s.cfg.ConflictAfterCancel)) {
		return "", true
	}
	return "", false
}

func (s *Server) newVerification(api, to string, channels []string, wait time.Duration, codeLen int, now time.Time) *verification {
	id := uuid()
	if api == "legacy" {
		id = strings.ReplaceAll(id, "-", "")
	}
	v := &verification{api: api, id: id, to: to, channels: channels, wait: wait, code: s.code(codeLen),
		created: now, stepAt: now, state: "pending"}
	s.reqs[id] = v
	s.active[to] = id
	s.record(v, now)
	return v
}

func (s *Server) code(n int) string {
	if s.cfg.Code != "" {
		return s.cfg.Code
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// checkCode applies a code to v and returns "right", "wrong" or "burned".
func (s *Server) checkCode(v *verification, code string) string {
	if code == v.code {
		s.finish(v, "verified")
		return "right"
	}
	v.wrong++
	if v.wrong >= s.cfg.MaxWrongCodes {
		s.finish(v, "failed")
		return "burned"
	}
	return "wrong"
}

// cancelRefusal says why v may not be cancelled now, or "".
func (s *Server) cancelRefusal(v *verification, now time.Time) string {
	switch {
	case s.cfg.CancelAfter > 0 && now.Sub(v.created) < s.cfg.CancelAfter:
		return fmt.Sprintf("Verification request ['%s'] can't be cancelled within the first %d seconds.", v.id, int(s.cfg.CancelAfter/time.Second))
	case v.step > 0:
		return fmt.Sprintf("Verification request  ['%s'] can't be cancelled now. Too many attempts to re-deliver have already been made.", v.id)
	}
	return ""
}

func (s *Server) cancel(v *verification, now time.Time) {
	s.finish(v, "cancelled")
	s.cancelled[v.to] = now
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func problemJSON(w http.ResponseWriter, status int, typ, title, detail string, extra map[string]any) {
	body := map[string]any{"type": "https://developer.vonage.com/api-errors#" + typ, "title": title, "detail": detail,
		"instance": uuid()}
	if typ == "concurrent" {
		body["type"] = "https://developer.vonage.com/api-errors/verify-v2#concurrent"
	}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// SignCallback returns the Authorization header value Vonage would put on
// a signed webhook with body: a JWT signed HS256 with the signature secret,
// carrying iat, jti, iss and payload_hash (the body's SHA-256). Use it to
// test a vonage.NewWebhookHandler wiring.
func SignCallback(secret string, body []byte, now time.Time) string {
	sum := sha256.Sum256(body)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iat": now.Unix(), "jti": uuid(), "iss": "Vonage", "payload_hash": hex.EncodeToString(sum[:]),
	}).SignedString([]byte(secret))
	if err != nil {
		panic("vonagetest: " + err.Error()) // HS256 with a []byte key does not fail
	}
	return "Bearer " + tok
}

func basicOK(r *http.Request, key, secret string) bool {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(raw)
	return err == nil && string(dec) == key+":"+secret
}

var errBadToken = errors.New("bad token")

// checkJWT verifies a v2 bearer token; expired reports an expired one.
func (s *Server) checkJWT(raw string) (jti string, end time.Time, expired bool, err error) {
	if s.cfg.PublicKey == nil || s.cfg.ApplicationID == "" {
		return "", time.Time{}, false, errBadToken
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.cfg.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return "", time.Time{}, false, errBadToken
	}
	if claims["application_id"] != s.cfg.ApplicationID {
		return "", time.Time{}, false, errBadToken
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return "", time.Time{}, false, errBadToken
	}
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return "", time.Time{}, false, errBadToken
	}
	end = iat.Add(15 * time.Minute)
	if exp != nil {
		if exp.Sub(iat.Time) > 24*time.Hour {
			return "", time.Time{}, false, errBadToken
		}
		end = exp.Time
	}
	now := s.cfg.Clock.Now()
	if !now.Before(end) {
		return "", time.Time{}, true, errBadToken
	}
	if now.Add(time.Minute).Before(iat.Time) {
		return "", time.Time{}, false, errBadToken
	}
	jti, _ = claims["jti"].(string)
	return jti, end, false, nil
}

func (s *Server) v2Auth(w http.ResponseWriter, r *http.Request) bool {
	if basicOK(r, s.cfg.APIKey, s.cfg.APISecret) {
		return true
	}
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		s.mu.Lock()
		vt, seen := s.verified[raw]
		s.mu.Unlock()
		if seen && s.cfg.Clock.Now().Before(vt.end) {
			return true
		}
		jti, end, expired, err := s.checkJWT(raw)
		if err == nil {
			s.mu.Lock()
			s.tokens[jti] = true
			s.verified[raw] = verifiedToken{jti: jti, end: end}
			s.mu.Unlock()
			return true
		}
		if expired {
			problemJSON(w, http.StatusUnauthorized, "jwt-expired", "Unauthorized", "The JWT provided has expired.", nil)
			return false
		}
	}
	problemJSON(w, http.StatusUnauthorized, "unauthorized", "Unauthorized", "You did not provide correct credentials.", nil)
	return false
}
