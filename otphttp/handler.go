package otphttp

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpkit/otp"
)

// Config holds the handlers' tunables. Every zero field takes the default
// documented on it.
type Config struct {
	// Key returns the Verifier key of the request: a session ID, a signed-in
	// user's ID. It may return "" when the request has none yet (a new
	// session): Check and Resend then answer not_found, Status and Cancel
	// the state "none", and Start uses a new random key, handed to OnStart
	// to keep. Return ErrUnauthorized to answer 401. Required.
	Key func(r *http.Request) (string, error)
	// ClientID returns the ID that per-client limits charge ([otp.WithClient]).
	// Default [ClientID]: the connection's address, IPv6 by /64. Behind a
	// proxy use [Proxies.ClientID].
	ClientID func(r *http.Request) string
	// ChallengePassed tells Start whether the person has passed a challenge
	// (a CAPTCHA) after a challenge_required answer: verify token, the
	// start body's "challenge_token", with your CAPTCHA's service, once.
	// It is called for every Start, token "" when there is none. Only a
	// true answer passes [otp.WithChallengePassed]; a client can never
	// claim to have passed. Default nil: no Start passes a challenge.
	ChallengePassed func(r *http.Request, token string) bool
	// StartOptions returns more options for a Start ([otp.WithChannel],
	// [otp.WithLocale]). Default: none.
	StartOptions func(r *http.Request) []otp.StartOption
	// OnStart is called after a successful Start with the key it used,
	// before the answer is written: keep a new key in the session here. An
	// error answers as [WriteError] does. Default: none.
	OnStart func(w http.ResponseWriter, r *http.Request, key string, st otp.Status) error
	// OnVerified is called after a successful Check, before the answer:
	// record that the session or user holds st.To, and renew the session's
	// token (its privilege changed). An error answers as WriteError does.
	// Default: none.
	OnVerified func(w http.ResponseWriter, r *http.Request, st otp.Status) error
	// OnCancel is called after Cancel, whether or not anything was
	// pending: forget the key here. Default: none.
	OnCancel func(w http.ResponseWriter, r *http.Request) error
	// MaxBodyBytes caps request bodies; a larger one answers 413. Default
	// 4 KiB, many times a number or a code.
	MaxBodyBytes int64
	// Catalog holds the messages for people. Default [DefaultCatalog].
	Catalog *Catalog
	// Logger receives a line for every answer of status 500 or more, with
	// the path and the class (never a number, code or key). Default:
	// discard.
	Logger *slog.Logger
}

// DefaultMaxBodyBytes is Config.MaxBodyBytes's default.
const DefaultMaxBodyBytes = 4 << 10

// Handler serves the JSON API of one [otp.Verifier]: Start, Check,
// Resend, Cancel and Status, each a method usable as an
// [http.HandlerFunc], and all of them through ServeHTTP. Create it with
// [New]. It is safe for concurrent use.
type Handler struct {
	v   *otp.Verifier
	cfg Config
	log *slog.Logger
}

// New returns the handlers driving v, configured by cfg.
func New(v *otp.Verifier, cfg Config) (*Handler, error) {
	switch {
	case v == nil:
		return nil, errors.New("otphttp: New needs a Verifier")
	case cfg.Key == nil:
		return nil, errors.New("otphttp: Config.Key is required")
	case cfg.MaxBodyBytes < 0:
		return nil, errors.New("otphttp: Config.MaxBodyBytes must not be negative")
	}
	if cfg.ClientID == nil {
		cfg.ClientID = ClientID
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Catalog == nil {
		cfg.Catalog = DefaultCatalog()
	}
	h := &Handler{v: v, cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// ServeHTTP routes by the path's last element, so mount the handler under
// a prefix with [http.StripPrefix]:
//
//	POST .../start   {"phone":"+447400123456"} (and "challenge_token" after a challenge)
//	POST .../check   {"code":"123456"}
//	POST .../resend
//	POST .../cancel
//	GET  .../status
//
// Each answers a [State] with 200, or an [ErrorBody] (see [Describe]).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch p[strings.LastIndexByte(p, '/')+1:] {
	case "start":
		h.Start(w, r)
	case "check":
		h.Check(w, r)
	case "resend":
		h.Resend(w, r)
	case "cancel":
		h.Cancel(w, r)
	case "status":
		h.Status(w, r)
	default:
		h.WriteError(w, r, fail(http.StatusNotFound, otp.ErrorClass(otp.ErrNotFound), MsgBadRequest, otp.ErrNotFound))
	}
}

// WriteError answers err as [WriteError] does, with the handler's
// catalogue, and logs it when its status is 500 or more.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	f := Describe(err)
	if f.Status >= 500 {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "otphttp: request failed",
			slog.String("path", r.URL.Path), slog.Int("status", f.Status), slog.String("class", f.Class))
	}
	WriteError(w, r, h.cfg.Catalog, err)
}

// The states of a [State].
const (
	StateNone     = "none"     // nothing started, or cancelled
	StatePending  = "pending"  // a code was sent and can be checked
	StateExpired  = "expired"  // the code sent has expired
	StateVerified = "verified" // the code was right
)

// State is the JSON answer of every successful call. It never holds the
// provider's ID or name.
type State struct {
	State    string `json:"state"` // StateNone, StatePending, StateExpired or StateVerified
	Verified bool   `json:"verified"`
	To       string `json:"to,omitempty"` // E.164 number (or email address)
	// Display is To for people: "+44 7400 123456".
	Display      string    `json:"display,omitempty"`
	Channel      string    `json:"channel,omitempty"`
	AttemptsLeft int       `json:"attempts_left,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	ResendAt     time.Time `json:"resend_at,omitzero"`
}

// Pending is the state of st, a pending verification.
func Pending(st otp.Status) State {
	return State{State: StatePending, To: st.To, Display: FormatNumber(st.To), Channel: string(st.Channel),
		AttemptsLeft: st.AttemptsLeft, ExpiresAt: st.ExpiresAt.UTC(), ResendAt: st.ResendAt.UTC()}
}

// Verified is the state after a right code for to.
func Verified(to string) State {
	return State{State: StateVerified, Verified: true, To: to, Display: FormatNumber(to)}
}

// FormatNumber formats an E.164 number for people, in the international
// format ("+44 7400 123456"); anything else (an email address) comes back
// as it is.
func FormatNumber(e164 string) string {
	if !strings.HasPrefix(e164, "+") {
		return e164
	}
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}

// Start answers POST {"phone":"…"}: it sends a code and answers the
// pending State. With "challenge_token" and a Config.ChallengePassed that
// accepts it, the Start passes the step-up challenge.
func (h *Handler) Start(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Phone          string `json:"phone"`
		ChallengeToken string `json:"challenge_token"`
	}
	if err := h.decode(w, r, &in); err != nil {
		h.WriteError(w, r, err)
		return
	}
	st, err := h.DoStart(w, r, in.Phone, in.ChallengeToken)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Pending(st))
}

// DoStart runs a Start for r as Start does, with phone and challengeToken
// read by the caller: the key, client ID, options, challenge hook and
// OnStart of the Config. It is for handlers that read and answer requests
// their own way, such as a page's form posts.
func (h *Handler) DoStart(w http.ResponseWriter, r *http.Request, phone, challengeToken string) (otp.Status, error) {
	key, err := h.cfg.Key(r)
	if err != nil {
		return otp.Status{}, err
	}
	if key == "" {
		key = rand.Text()
	}
	opts := []otp.StartOption{otp.WithClient(h.cfg.ClientID(r))}
	if h.cfg.StartOptions != nil {
		opts = append(opts, h.cfg.StartOptions(r)...)
	}
	if h.cfg.ChallengePassed != nil && h.cfg.ChallengePassed(r, challengeToken) {
		opts = append(opts, otp.WithChallengePassed())
	}
	st, err := h.v.Start(r.Context(), key, phone, opts...)
	if err == nil && h.cfg.OnStart != nil {
		err = h.cfg.OnStart(w, r, key, st)
	}
	return st, err
}

// Check answers POST {"code":"…"}: the verified State, or wrong_code with
// attempts_left.
func (h *Handler) Check(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	if err := h.decode(w, r, &in); err != nil {
		h.WriteError(w, r, err)
		return
	}
	st, err := h.DoCheck(w, r, in.Code)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Verified(st.To))
}

// DoCheck runs a Check of code for r as Check does, then OnVerified.
func (h *Handler) DoCheck(w http.ResponseWriter, r *http.Request, code string) (otp.Status, error) {
	key, err := h.pendingKey(r)
	if err != nil {
		return otp.Status{}, err
	}
	st, err := h.v.Check(r.Context(), key, code, otp.WithClient(h.cfg.ClientID(r)))
	if err == nil && h.cfg.OnVerified != nil {
		err = h.cfg.OnVerified(w, r, st)
	}
	return st, err
}

// pendingKey returns r's key for a call that needs a verification:
// ErrNotFound when r has no key.
func (h *Handler) pendingKey(r *http.Request) (string, error) {
	key, err := h.cfg.Key(r)
	if err == nil && key == "" {
		err = otp.ErrNotFound
	}
	return key, err
}

// Resend answers POST: the code again, or resend_too_soon with
// retry_after.
func (h *Handler) Resend(w http.ResponseWriter, r *http.Request) {
	if err := h.post(w, r); err != nil {
		h.WriteError(w, r, err)
		return
	}
	st, err := h.DoResend(w, r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Pending(st))
}

// DoResend runs a Resend for r as Resend does.
func (h *Handler) DoResend(_ http.ResponseWriter, r *http.Request) (otp.Status, error) {
	key, err := h.pendingKey(r)
	if err != nil {
		return otp.Status{}, err
	}
	return h.v.Resend(r.Context(), key, otp.WithClient(h.cfg.ClientID(r)))
}

// Cancel answers POST: the state "none", whether or not anything was
// pending.
func (h *Handler) Cancel(w http.ResponseWriter, r *http.Request) {
	if err := h.post(w, r); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if err := h.DoCancel(w, r); err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, State{State: StateNone})
}

// DoCancel runs a Cancel for r as Cancel does, then OnCancel. Nothing
// pending is no error.
func (h *Handler) DoCancel(w http.ResponseWriter, r *http.Request) error {
	key, err := h.cfg.Key(r)
	if err == nil && key != "" {
		err = h.v.Cancel(r.Context(), key)
		if errors.Is(err, otp.ErrNotFound) || errors.Is(err, otp.ErrExpired) {
			err = nil
		}
	}
	if err == nil && h.cfg.OnCancel != nil {
		err = h.cfg.OnCancel(w, r)
	}
	return err
}

// Status answers GET (or HEAD): the pending, expired or "none" State.
func (h *Handler) Status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.WriteError(w, r, methodNotAllowed(w, "GET, HEAD"))
		return
	}
	key, err := h.cfg.Key(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	s, err := h.State(r, key)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// State returns the state of the verification under key: pending,
// expired or none ("" is none). Errors are the Store's.
func (h *Handler) State(r *http.Request, key string) (State, error) {
	if key == "" {
		return State{State: StateNone}, nil
	}
	st, err := h.v.Status(r.Context(), key)
	switch {
	case err == nil:
		return Pending(st), nil
	case errors.Is(err, otp.ErrExpired):
		return State{State: StateExpired}, nil
	case errors.Is(err, otp.ErrNotFound):
		return State{State: StateNone}, nil
	}
	return State{}, err
}

func fail(status int, class string, msg MessageID, err error) error {
	return &requestFailure{f: Failure{Status: status, Class: class, Message: msg}, err: err}
}

var errMethod = errors.New("method not allowed")

// methodNotAllowed sets the Allow header and returns the failure.
func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return fail(http.StatusMethodNotAllowed, ClassMethodNotAllowed, MsgMethodNotAllowed, errMethod)
}

// post checks that r is a POST and caps its body.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST")
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	return nil
}

// decode reads exactly one JSON object of at most MaxBodyBytes, with no
// unknown fields, into dst, from a POST.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := h.post(w, r); err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return fail(http.StatusUnsupportedMediaType, ClassUnsupportedMedia, MsgUnsupportedMedia,
				fmt.Errorf("content type %q", ct))
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("more than one JSON value")
		}
	}
	return BodyError(err)
}

// BodyError returns what a failure to read a request body means: nil for
// nil, too_large (413) for an [http.MaxBytesError], bad_request (400) for
// anything else. Use it with [WriteError] for bodies your own handlers
// read.
func BodyError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, ClassTooLarge, MsgTooLarge, err)
	}
	return fail(http.StatusBadRequest, ClassBadRequest, MsgBadRequest, err)
}
