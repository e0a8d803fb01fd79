package vonage

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
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
	// RequirePayloadHash rejects tokens without a payload_hash claim.
	// Default false: the claim is checked when present.
	RequirePayloadHash bool
	// MaxBody caps the request body; a longer one is answered 413.
	// Default 64 KiB.
	MaxBody int64
	// MaxAge is how long after its iat a token without exp is accepted.
	// Default 5 minutes.
	MaxAge time.Duration
	// Leeway tolerates clock skew on iat and exp. Default 1 minute.
	Leeway time.Duration
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
}

// NewWebhookHandler returns an http.Handler for Verify v2 status webhooks.
// It accepts only POSTs whose Authorization header carries a JWT signed
// HS256 with cfg.SignatureSecret, unexpired (exp, or iat plus MaxAge), and
// whose payload_hash claim, when present, is the SHA-256 of the body. It
// answers 401 to unsigned, forged or expired requests and 413 to bodies over
// MaxBody, without calling any hook; 400 to bodies that are not a callback;
// 204 once the hooks ran.
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
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.MaxBody < 0 || cfg.MaxAge < 0 || cfg.Leeway < 0 {
		return nil, errors.New("vonage: WebhookConfig limits must not be negative")
	}
	h := &WebhookHandler{cfg: cfg, secret: []byte(cfg.SignatureSecret)}
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
	claims, err := h.verifyToken(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	switch {
	case int64(len(body)) > h.cfg.MaxBody:
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "cannot read body", http.StatusBadRequest)
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
	if h.cfg.OnCallback != nil {
		if err := h.cfg.OnCallback(r.Context(), cb); err != nil {
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

// verifyToken checks the bearer JWT's signature and times.
func (h *WebhookHandler) verifyToken(header string) (jwt.MapClaims, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(header, "bearer ")
	}
	if !ok || raw == "" || len(raw) > 8<<10 {
		return nil, errors.New("vonage: no bearer token")
	}
	claims := jwt.MapClaims{}
	if _, err := h.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return h.secret, nil }); err != nil {
		return nil, err
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, errors.New("vonage: token without iat")
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil && h.cfg.Clock.Now().After(iat.Add(h.cfg.MaxAge+h.cfg.Leeway)) {
		return nil, errors.New("vonage: token too old")
	}
	return claims, nil
}

// bodyMatches checks the payload_hash claim against body.
func (h *WebhookHandler) bodyMatches(claims jwt.MapClaims, body []byte) bool {
	v, present := claims["payload_hash"]
	if !present {
		return !h.cfg.RequirePayloadHash
	}
	want, ok := v.(string)
	if !ok {
		return false
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
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
