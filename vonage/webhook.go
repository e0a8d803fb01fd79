package vonage

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// WebhookConfig configures the handler of Verify v2 status webhooks. Every
// zero field takes the default documented on it. Printing a WebhookConfig
// with any fmt verb never shows the secret.
type WebhookConfig struct {
	// SignatureSecret is the account's signature secret (dashboard,
	// Settings), which signs the JWT in each callback's Authorization
	// header with HS256. Required.
	SignatureSecret string
	// OnEvent, if set, receives each callback as an [otp.Event], the type
	// otp.Config.OnEvent takes (see [NewWebhookHandler] for the mapping).
	OnEvent func(otp.Event)
	// OnCallback, if set, receives each decoded callback. An error answers
	// 500, so that Vonage delivers the callback again. At least one of
	// OnEvent and OnCallback is required.
	OnCallback func(context.Context, Callback) error
	// AllowMissingPayloadHash accepts tokens without a payload_hash claim,
	// whose body is then bound to nothing: anyone holding such a token
	// can post any body with it until it is too old. Default false: the
	// token must carry the body's SHA-256, as Vonage signs it. A
	// payload_hash that is present is always checked.
	AllowMissingPayloadHash bool
	// MaxBody caps the request body; a longer one is answered 413.
	// Default 64 KiB.
	MaxBody int64
	// MaxAge is how long after its iat a token is accepted, whatever its
	// exp says. Default 5 minutes.
	MaxAge time.Duration
	// Leeway tolerates clock skew on iat and exp. Default 1 minute.
	Leeway time.Duration
	// MaxTokens is how many accepted tokens the handler remembers, by
	// their jti, to refuse a replayed callback: each is forgotten once it
	// is too old to be accepted anyway (MaxAge and Leeway after its iat,
	// or Leeway after its exp). When that many are remembered, a new
	// callback is refused with 503 and a Retry-After until the oldest is
	// forgotten, so that Vonage delivers it again later: the handler fails
	// closed rather than forget a token that could still be replayed.
	// Default 100,000 (at most some 20 MB). The memory is per handler:
	// instances behind a load balancer do not share it.
	MaxTokens int
	// Clock tells the time for token expiry. Default otp.SystemClock.
	Clock otp.Clock
}

// Format prints the configuration without its secret, whatever the verb.
func (c WebhookConfig) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "vonage.WebhookConfig{SignatureSecret:%s MaxBody:%d}", redacted(c.SignatureSecret != ""), c.MaxBody)
}

// Callback is a Verify v2 status callback, of Type "event" (one channel's
// outcome) or "summary" (the verification's outcome).
type Callback struct {
	Type           string         `json:"type"`
	RequestID      string         `json:"request_id"`
	Status         string         `json:"status"`
	Channel        string         `json:"channel,omitempty"`
	ClientRef      string         `json:"client_ref,omitempty"`
	TriggeredAt    time.Time      `json:"triggered_at,omitzero"`
	SubmittedAt    time.Time      `json:"submitted_at,omitzero"`
	FinalizedAt    time.Time      `json:"finalized_at,omitzero"`
	ChannelTimeout int            `json:"channel_timeout,omitempty"`
	Workflow       []CallbackStep `json:"workflow,omitempty"`
}

// CallbackStep is one channel of a summary callback's workflow.
type CallbackStep struct {
	Channel     string    `json:"channel"`
	InitiatedAt time.Time `json:"initiated_at,omitzero"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
}

// WebhookHandler is the http.Handler returned by [NewWebhookHandler].
type WebhookHandler struct {
	cfg    WebhookConfig
	secret []byte
	parser *jwt.Parser
	seen   *seenTokens
}

// NewWebhookHandler returns an http.Handler for Verify v2 status webhooks.
// It accepts only POSTs whose Authorization header carries a JWT signed
// HS256 with cfg.SignatureSecret, with an iat at most MaxAge old and an
// exp, if any, not passed; a jti not accepted before; and a payload_hash
// claim that is the SHA-256 of the body (see AllowMissingPayloadHash). It
// answers 401 to unsigned, forged, expired or replayed requests, 413 to
// bodies over MaxBody, 400 to bodies that are not a callback and 503 when
// it remembers MaxTokens tokens, all without calling any hook; 204 once
// the hooks ran.
//
// OnEvent gets one [otp.Event] per callback, with Provider "vonage" and the
// callback's channel. Event callbacks have Op [otp.OpStart] (a channel's
// delivery leg), summaries [otp.OpCheck] (the verification's end):
// status "completed" is [otp.EventChecked]; "failed", "rejected",
// "user_rejected" and "blocked" are [otp.EventFailed] with a rejected
// *[otp.ProviderError] whose VendorStatus is the status; "expired" is
// EventFailed with [otp.ErrExpired]; "action_pending" (silent auth) is
// [otp.EventSent]. Other statuses reach only OnCallback. Duration is
// finalized_at minus triggered_at (events) or submitted_at (summaries).
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if cfg.SignatureSecret == "" {
		return nil, errors.New("vonage: WebhookConfig needs SignatureSecret")
	}
	if cfg.OnEvent == nil && cfg.OnCallback == nil {
		return nil, errors.New("vonage: WebhookConfig needs OnEvent or OnCallback")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = time.Minute
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 100_000
	}
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.MaxBody < 0 || cfg.MaxAge < 0 || cfg.Leeway < 0 || cfg.MaxTokens < 0 {
		return nil, errors.New("vonage: WebhookConfig limits must not be negative")
	}
	h := &WebhookHandler{cfg: cfg, secret: []byte(cfg.SignatureSecret), seen: newSeenTokens(cfg.MaxTokens)}
	h.parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(cfg.Clock.Now),
		jwt.WithLeeway(cfg.Leeway), jwt.WithIssuedAt())
	return h, nil
}

// Format prints the handler without its secret, whatever the verb.
func (h *WebhookHandler) Format(f fmt.State, verb rune) { h.cfg.Format(f, verb) }

// ServeHTTP handles one callback.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	claims, end, err := h.verifyToken(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, ok := vendorhttp.ReadWebhookBody(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if !h.bodyMatches(claims, body) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	cb, err := decodeCallback(body)
	if err != nil {
		http.Error(w, "not a verify callback", http.StatusBadRequest)
		return
	}
	jti, _ := claims["jti"].(string)
	switch wait := h.seen.add(jti, end, h.cfg.Clock.Now()); {
	case wait < 0:
		http.Error(w, "unauthorized", http.StatusUnauthorized) // a replay
		return
	case wait > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "too many callbacks", http.StatusServiceUnavailable)
		return
	}
	if h.cfg.OnCallback != nil {
		if err := h.cfg.OnCallback(r.Context(), cb); err != nil {
			h.seen.remove(jti) // Vonage delivers it again, maybe with this token
			http.Error(w, "callback failed", http.StatusInternalServerError)
			return
		}
	}
	if h.cfg.OnEvent != nil {
		if ev, ok := callbackEvent(cb); ok {
			h.cfg.OnEvent(ev)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// verifyToken checks the bearer JWT's signature, times and jti, and
// returns its claims and when it stops being acceptable.
func (h *WebhookHandler) verifyToken(header string) (jwt.MapClaims, time.Time, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(header, "bearer ")
	}
	if !ok || raw == "" || len(raw) > 8<<10 {
		return nil, time.Time{}, errors.New("vonage: no bearer token")
	}
	claims := jwt.MapClaims{}
	if _, err := h.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return h.secret, nil }); err != nil {
		return nil, time.Time{}, err
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, time.Time{}, errors.New("vonage: token without iat")
	}
	end := iat.Add(h.cfg.MaxAge + h.cfg.Leeway)
	if exp, _ := claims.GetExpirationTime(); exp != nil && exp.Add(h.cfg.Leeway).Before(end) {
		end = exp.Add(h.cfg.Leeway)
	}
	if !h.cfg.Clock.Now().Before(end) {
		return nil, time.Time{}, errors.New("vonage: token too old")
	}
	if jti, _ := claims["jti"].(string); !vendorhttp.ValidID(jti) {
		return nil, time.Time{}, errors.New("vonage: token without a jti, so a replay could not be told")
	}
	return claims, end, nil
}

// bodyMatches checks the payload_hash claim against body.
func (h *WebhookHandler) bodyMatches(claims jwt.MapClaims, body []byte) bool {
	v, present := claims["payload_hash"]
	if !present {
		return h.cfg.AllowMissingPayloadHash
	}
	want, ok := v.(string)
	if !ok {
		return false
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
}

// seenTokens remembers accepted tokens by jti until they could no longer
// be accepted, in at most max entries. Safe for concurrent use.
type seenTokens struct {
	mu    sync.Mutex
	max   int
	until map[string]time.Time // jti -> when its token stops being acceptable
	queue tokenHeap            // the same, soonest end first; may hold removed ones
}

type seenToken struct {
	jti string
	end time.Time
}

func newSeenTokens(max int) *seenTokens {
	return &seenTokens{max: max, until: make(map[string]time.Time)}
}

// add records jti until end. It returns 0 when recorded, a negative
// duration for a jti already recorded (a replay), and the wait until an
// entry is forgotten when max entries leave no room.
func (s *seenTokens) add(jti string, end, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && !now.Before(s.queue[0].end) {
		old := heap.Pop(&s.queue).(seenToken)
		if s.until[old.jti].Equal(old.end) {
			delete(s.until, old.jti)
		}
	}
	if _, ok := s.until[jti]; ok {
		return -1
	}
	if len(s.queue) >= s.max {
		return max(s.queue[0].end.Sub(now), time.Second)
	}
	s.until[jti] = end
	heap.Push(&s.queue, seenToken{jti: jti, end: end})
	return 0
}

// remove forgets jti; its queue entry goes when it ends.
func (s *seenTokens) remove(jti string) {
	s.mu.Lock()
	delete(s.until, jti)
	s.mu.Unlock()
}

// tokenHeap is a container/heap of tokens by end.
type tokenHeap []seenToken

func (q tokenHeap) Len() int           { return len(q) }
func (q tokenHeap) Less(i, j int) bool { return q[i].end.Before(q[j].end) }
func (q tokenHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *tokenHeap) Push(x any)        { *q = append(*q, x.(seenToken)) }
func (q *tokenHeap) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// decodeCallback reads a callback body: a JSON object with a known type,
// a request ID and a status. Timestamps that do not parse are left zero
// rather than failing the callback, which Vonage would then redeliver.
func decodeCallback(body []byte) (Callback, error) {
	type step struct {
		Channel     string `json:"channel"`
		InitiatedAt string `json:"initiated_at"`
		Status      string `json:"status"`
		Reason      string `json:"reason"`
	}
	var raw struct {
		Type           string `json:"type"`
		RequestID      string `json:"request_id"`
		Status         string `json:"status"`
		Channel        string `json:"channel"`
		ClientRef      string `json:"client_ref"`
		TriggeredAt    string `json:"triggered_at"`
		SubmittedAt    string `json:"submitted_at"`
		FinalizedAt    string `json:"finalized_at"`
		ChannelTimeout int    `json:"channel_timeout"`
		Workflow       []step `json:"workflow"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Callback{}, errors.New("vonage: malformed callback")
	}
	if (raw.Type != "event" && raw.Type != "summary") || raw.RequestID == "" || raw.Status == "" {
		return Callback{}, errors.New("vonage: callback without type, request_id or status")
	}
	cb := Callback{Type: raw.Type, RequestID: raw.RequestID, Status: raw.Status, Channel: raw.Channel,
		ClientRef: raw.ClientRef, TriggeredAt: parseTime(raw.TriggeredAt), SubmittedAt: parseTime(raw.SubmittedAt),
		FinalizedAt: parseTime(raw.FinalizedAt), ChannelTimeout: raw.ChannelTimeout}
	for _, st := range raw.Workflow {
		cb.Workflow = append(cb.Workflow, CallbackStep{Channel: st.Channel, InitiatedAt: parseTime(st.InitiatedAt), Status: st.Status, Reason: st.Reason})
	}
	return cb, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// callbackEvent turns a callback into the core's event; see
// NewWebhookHandler for the mapping.
func callbackEvent(cb Callback) (otp.Event, bool) {
	ev := otp.Event{Op: otp.OpStart, Provider: "vonage", Channel: otp.Channel(cb.Channel)}
	start, peOp := cb.TriggeredAt, otp.OpStart // ProviderError.Op names the provider call
	if cb.Type == "summary" {
		ev.Op, start, peOp = otp.OpCheck, cb.SubmittedAt, otp.OpCheck
		ev.Channel = summaryChannel(cb)
	}
	if !start.IsZero() && cb.FinalizedAt.After(start) {
		ev.Duration = cb.FinalizedAt.Sub(start)
	}
	switch cb.Status {
	case "completed":
		ev.Kind = otp.EventChecked
	case "action_pending":
		ev.Kind = otp.EventSent
	case "expired":
		ev.Kind = otp.EventFailed
		ev.Err = &otp.ProviderError{Provider: "vonage", Op: peOp, VendorStatus: cb.Status, Err: otp.ErrExpired}
	case "failed", "rejected", "user_rejected", "blocked":
		ev.Kind = otp.EventFailed
		ev.Err = &otp.ProviderError{Provider: "vonage", Op: peOp, VendorStatus: cb.Status}
	default:
		return otp.Event{}, false
	}
	ev.Class = otp.ErrorClass(ev.Err)
	return ev, true
}

// summaryChannel is the channel that completed, or else the last one tried.
func summaryChannel(cb Callback) otp.Channel {
	var last string
	for _, st := range cb.Workflow {
		if st.Status == "completed" {
			return otp.Channel(st.Channel)
		}
		if st.Status != "unused" {
			last = st.Channel
		}
	}
	return otp.Channel(last)
}
