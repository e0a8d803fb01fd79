package vonage

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// DefaultBaseURL is where both Vonage APIs live.
const DefaultBaseURL = "https://api.nexmo.com"

// V2Config configures a [V2] provider. Every zero field takes the default
// documented on it. Printing a V2Config with any fmt verb never shows the
// secret or the private key.
type V2Config struct {
	// APIKey and APISecret authenticate with HTTP Basic when no
	// ApplicationID and PrivateKey are given.
	APIKey, APISecret string
	// ApplicationID and PrivateKey (the application's RSA key, PEM)
	// authenticate with a JWT signed RS256, which is then preferred over
	// Basic. The token is signed once and renewed before it expires.
	ApplicationID string
	PrivateKey    []byte
	// TokenTTL is the JWT's lifetime (its exp minus its iat). Default 15
	// minutes, as every Vonage SDK; at most 24 hours.
	TokenTTL time.Duration

	// Brand names the sender in messages ("Acme"). Required: 1 to 18
	// characters, none of / { } : $.
	Brand string
	// Fallback lists the channels tried after the requested one when the
	// person does not enter the code in time, and that Resend moves to
	// (SMS, Voice, or WhatsApp with WhatsAppFrom; at most two; the
	// requested channel is skipped). Not used for the email channel.
	// Default none: Resend then fails with ErrProviderRejected.
	Fallback []otp.Channel
	// ChannelTimeout is how long Vonage waits before the next channel, in
	// whole seconds from 15s to 900s. Default Vonage's (180s).
	ChannelTimeout time.Duration
	// Locale is used when the send request has none ("en-gb"). Default
	// Vonage's (en-us). Locales not shaped like "xx" or "xx-yy" are not
	// sent.
	Locale string
	// ClientRef is echoed in status webhooks: up to 40 letters and digits.
	// Default none.
	ClientRef string
	// TemplateID picks a custom SMS template. Default Vonage's template.
	TemplateID string
	// SMSFrom is the SMS sender (up to 11 letters/digits, or a number).
	// Default: Vonage uses Brand.
	SMSFrom string
	// WhatsAppFrom is the WhatsApp Business number codes come from.
	// Vonage requires it; without it the WhatsApp channel is unsupported.
	WhatsAppFrom string
	// EmailFrom is the sender address for the email channel. Default
	// Vonage's.
	EmailFrom string
	// EntityID and ContentID are an Indian sender's DLT registration:
	// the principal entity ID and the content template ID (1 to 20
	// characters each) under TRAI's Telecom Commercial Communications
	// Customer Preference Regulations, 2018, without which Indian
	// operators drop the SMS. Sent as entity_id and content_id on SMS
	// steps. Default none.
	EntityID, ContentID string
	// AppHash is the Android SMS Retriever hash (11 characters) that lets
	// an app read the code from the SMS itself; sent as app_hash on SMS
	// steps. Default none.
	AppHash string
	// PerSend, if set, adjusts the options of one start: it gets the send
	// request (with its Region) and a copy of EntityID, ContentID and
	// AppHash to change, and may set a custom Code. It must be safe for
	// concurrent use. Default none.
	PerSend func(req otp.SendRequest, o *SendOptions)

	// BaseURL is the API host: https, or plain http only to a loopback
	// host (a fake server in tests). Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of its own with a
	// 10s timeout per try and a keep-alive connection pool.
	HTTPClient *http.Client
	// Retry bounds retries; see otp.RetryPolicy for its defaults. Starts
	// and next_workflow (Resend) are retried only when Vonage surely did
	// not act on them.
	Retry otp.RetryPolicy
	// Clock stamps the JWT and reads Retry-After dates. Default
	// otp.SystemClock.
	Clock otp.Clock
}

// SendOptions are the parameters of a V2 start that may change from one
// send to the next: V2Config sets the first three for every send, and
// V2Config.PerSend may change them, and set a Code, for one.
type SendOptions struct {
	// EntityID and ContentID are India's DLT registration; see V2Config.
	EntityID, ContentID string
	// AppHash is the Android SMS Retriever hash; see V2Config.
	AppHash string
	// Code is a code of the caller's for Vonage to send and check instead
	// of its own: 4 to 10 letters or digits, as many as the Verifier's
	// CodeLength. Only accounts on Vonage's "Verify Conversion" pricing may
	// send one; others are refused. No effect on silent auth. Default none.
	Code string
}

func (o SendOptions) validate() error {
	for name, v := range map[string]string{"EntityID": o.EntityID, "ContentID": o.ContentID} {
		if len(v) > 20 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("vonage: %s must be up to 20 printable characters", name)
		}
	}
	switch {
	case o.AppHash != "" && (len(o.AppHash) != 11 || strings.ContainsFunc(o.AppHash, func(r rune) bool { return r <= ' ' || r >= 0x7f })):
		return errors.New("vonage: AppHash must be 11 printable characters")
	case o.Code != "" && !vendorhttp.Code(o.Code):
		return errors.New("vonage: Code must be 4 to 10 letters or digits")
	}
	return nil
}

// Format prints the configuration without its secrets, whatever the verb.
func (c V2Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "vonage.V2Config{APIKey:%q APISecret:%s ApplicationID:%q PrivateKey:%s Brand:%q BaseURL:%q}",
		c.APIKey, redacted(c.APISecret != ""), c.ApplicationID, redacted(len(c.PrivateKey) > 0), c.Brand, c.BaseURL)
}

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return `""`
}

// V2 is an [otp.Provider] for Vonage Verify v2, also an [otp.Resender]
// (next_workflow) and an [otp.Canceler]. Its Name is "vonage". One V2 is
// safe for concurrent use and reuses its connections.
type V2 struct {
	cfg     V2Config
	base    string // BaseURL + "/v2/verify"
	basic   string // Basic header, when no JWT
	tokens  *tokenSource
	http    *vendorhttp.Client
	locale  string
	timeout int // channel_timeout in seconds, 0 for Vonage's default
}

var (
	_ otp.Provider = (*V2)(nil)
	_ otp.Resender = (*V2)(nil)
	_ otp.Canceler = (*V2)(nil)
)

// NewV2 returns a Verify v2 provider configured by cfg.
func NewV2(cfg V2Config) (*V2, error) {
	cfg.Fallback = append([]otp.Channel(nil), cfg.Fallback...)
	cfg.PrivateKey = append([]byte(nil), cfg.PrivateKey...)
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 15 * time.Minute
	}
	base, err := vendorhttp.BaseURL("vonage", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	p := &V2{cfg: cfg, base: base + "/v2/verify", locale: normLocale(cfg.Locale)}
	switch {
	case cfg.ApplicationID != "" || len(cfg.PrivateKey) > 0:
		key, err := parseKey(cfg.ApplicationID, cfg.PrivateKey)
		if err != nil {
			return nil, err
		}
		if cfg.TokenTTL < time.Minute || cfg.TokenTTL > 24*time.Hour {
			return nil, errors.New("vonage: TokenTTL must be between 1 minute and 24 hours")
		}
		p.tokens = &tokenSource{appID: cfg.ApplicationID, key: key, ttl: cfg.TokenTTL, clock: cfg.Clock}
	case cfg.APIKey != "" && cfg.APISecret != "":
		p.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.APIKey+":"+cfg.APISecret))
	default:
		return nil, errors.New("vonage: V2Config needs APIKey and APISecret, or ApplicationID and PrivateKey")
	}
	if err := checkBrand(cfg.Brand); err != nil {
		return nil, err
	}
	if t := cfg.ChannelTimeout; t != 0 {
		if t < 15*time.Second || t > 900*time.Second || t%time.Second != 0 {
			return nil, errors.New("vonage: ChannelTimeout must be whole seconds from 15s to 900s")
		}
		p.timeout = int(t / time.Second)
	}
	if len(cfg.ClientRef) > 40 || !vendorhttp.Alnum(cfg.ClientRef) {
		return nil, errors.New("vonage: ClientRef must be up to 40 letters and digits")
	}
	if len(cfg.SMSFrom) > 15 {
		return nil, errors.New("vonage: SMSFrom is longer than 15 characters")
	}
	if len(cfg.Fallback) > 2 {
		return nil, errors.New("vonage: at most two Fallback channels")
	}
	for _, c := range cfg.Fallback {
		if c != otp.SMS && c != otp.Voice && c != otp.WhatsApp || c == otp.WhatsApp && cfg.WhatsAppFrom == "" {
			return nil, fmt.Errorf("vonage: Fallback channel %q is not sms, voice or whatsapp with WhatsAppFrom", c)
		}
	}
	if err := (SendOptions{EntityID: cfg.EntityID, ContentID: cfg.ContentID, AppHash: cfg.AppHash}).validate(); err != nil {
		return nil, err
	}
	if p.http, err = vendorhttp.New(p.Name(), cfg.HTTPClient, cfg.Retry, cfg.Clock); err != nil {
		return nil, fmt.Errorf("vonage: %w", err)
	}
	return p, nil
}

// Format prints the provider without its secrets, whatever the verb.
func (p *V2) Format(f fmt.State, verb rune) { p.cfg.Format(f, verb) }

// Close closes the HTTP client's idle connections, so that no connection
// goroutine outlives the provider. Calls in flight are not affected.
func (p *V2) Close() error { return p.http.Close() }

// Name returns "vonage".
func (p *V2) Name() string { return "vonage" }

// Supports reports SMS, Voice and Email, and WhatsApp when WhatsAppFrom is
// set.
func (p *V2) Supports(c otp.Channel) bool {
	switch c {
	case otp.SMS, otp.Voice, otp.Email:
		return true
	case otp.WhatsApp:
		return p.cfg.WhatsAppFrom != ""
	}
	return false
}

type v2Step struct {
	Channel   string `json:"channel"`
	To        string `json:"to"`
	From      string `json:"from,omitempty"`
	EntityID  string `json:"entity_id,omitempty"`
	ContentID string `json:"content_id,omitempty"`
	AppHash   string `json:"app_hash,omitempty"`
}

type v2Start struct {
	Brand          string   `json:"brand"`
	Workflow       []v2Step `json:"workflow"`
	Locale         string   `json:"locale,omitempty"`
	ChannelTimeout int      `json:"channel_timeout,omitempty"`
	ClientRef      string   `json:"client_ref,omitempty"`
	CodeLength     int      `json:"code_length,omitempty"`
	Code           string   `json:"code,omitempty"`
	TemplateID     string   `json:"template_id,omitempty"`
}

// Send starts a verification: POST /v2/verify. A destination that is not an
// E.164 number (or, for email, an address) fails with ErrInvalidPhone and
// nothing is sent. On failure the *otp.ProviderError's NotSent says
// whether a code may have been delivered.
func (p *V2) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	body, err := p.startBody(req)
	if err != nil {
		return otp.Ref{}, local(p.Name(), otp.OpStart, err)
	}
	r, err := p.call(ctx, otp.OpStart, http.MethodPost, p.base, body)
	if err != nil {
		return otp.Ref{}, err
	}
	id, err := p.outcome(otp.OpStart, r)
	if err != nil {
		return otp.Ref{}, err
	}
	return otp.Ref{Provider: p.Name(), ID: id}, nil
}

// outcome reads a v2 answer: nil (and for a send the request ID) only for
// a 2xx whose body is what the operation returns, else the mapped error.
func (p *V2) outcome(op otp.Op, r vendorhttp.Reply) (string, error) {
	if r.Status/100 != 2 {
		return "", p.v2Error(op, r)
	}
	switch op {
	case otp.OpStart:
		id, err := decodeStart(r.Body)
		if err != nil {
			// Vonage accepted something; without an ID it cannot be checked.
			return "", p.http.Unknown(op, r, err)
		}
		return id, nil
	case otp.OpCheck:
		// Vonage says "completed", one SDK fixture "complete": any JSON
		// object is a success, anything else is not.
		var v map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &v); err != nil || v == nil {
			return "", p.http.Unknown(op, r, errors.New("vonage: malformed check response"))
		}
	}
	return "", nil
}

// decodeStart reads a start answer's request_id.
func decodeStart(body []byte) (string, error) {
	var v struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", errors.New("vonage: malformed start response")
	}
	if !vendorhttp.ValidID(v.RequestID) {
		return "", errors.New("vonage: start response without a usable request id")
	}
	return v.RequestID, nil
}

func (p *V2) startBody(req otp.SendRequest) ([]byte, error) {
	if !p.Supports(req.Channel) {
		return nil, fmt.Errorf("vonage: %w: %q", otp.ErrUnsupportedChannel, req.Channel)
	}
	if req.CodeLength != 0 && (req.CodeLength < 4 || req.CodeLength > 10) {
		return nil, fmt.Errorf("vonage: code length %d is outside 4..10", req.CodeLength)
	}
	o := SendOptions{EntityID: p.cfg.EntityID, ContentID: p.cfg.ContentID, AppHash: p.cfg.AppHash}
	if p.cfg.PerSend != nil {
		p.cfg.PerSend(req, &o)
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("%w (from PerSend)", err)
		}
	}
	if o.Code != "" && req.CodeLength != 0 && len(o.Code) != req.CodeLength {
		return nil, fmt.Errorf("vonage: Code has %d characters, the Verifier wants %d", len(o.Code), req.CodeLength)
	}
	s := v2Start{Brand: p.cfg.Brand, ChannelTimeout: p.timeout, ClientRef: p.cfg.ClientRef, CodeLength: req.CodeLength,
		Code: o.Code, TemplateID: p.cfg.TemplateID}
	if s.Locale = normLocale(req.Locale); s.Locale == "" {
		s.Locale = p.locale
	}
	if req.Channel == otp.Email {
		if !vendorhttp.Email(req.To) {
			return nil, fmt.Errorf("vonage: %w: not an email address", otp.ErrInvalidPhone)
		}
		s.Workflow = []v2Step{{Channel: "email", To: req.To, From: p.cfg.EmailFrom}}
		return json.Marshal(s)
	}
	to, ok := vendorhttp.E164Digits(req.To)
	if !ok {
		return nil, fmt.Errorf("vonage: %w: want E.164 (+ and 7 to 15 digits)", otp.ErrInvalidPhone)
	}
	s.Workflow = append(make([]v2Step, 0, 3), p.step(req.Channel, to, o))
	for _, c := range p.cfg.Fallback {
		if c != req.Channel {
			s.Workflow = append(s.Workflow, p.step(c, to, o))
		}
	}
	return json.Marshal(s)
}

func (p *V2) step(c otp.Channel, to string, o SendOptions) v2Step {
	st := v2Step{Channel: string(c), To: to}
	switch c {
	case otp.SMS:
		st.From = p.cfg.SMSFrom
		st.EntityID, st.ContentID, st.AppHash = o.EntityID, o.ContentID, o.AppHash
	case otp.WhatsApp:
		st.From = p.cfg.WhatsAppFrom
	}
	return st
}

// Check asks Vonage whether code is right: POST /v2/verify/{id}. Vonage
// answers a second check of a verified request with 404, which is
// ErrNotFound.
func (p *V2) Check(ctx context.Context, ref otp.Ref, code string) error {
	if ref.ID == "" {
		return local(p.Name(), otp.OpCheck, fmt.Errorf("vonage: %w: empty request id", otp.ErrNotFound))
	}
	if !vendorhttp.Code(code) {
		return local(p.Name(), otp.OpCheck, fmt.Errorf("vonage: %w: want 4 to 10 letters or digits", otp.ErrInvalidCode))
	}
	body, _ := json.Marshal(struct {
		Code string `json:"code"`
	}{code})
	r, err := p.call(ctx, otp.OpCheck, http.MethodPost, p.base+vendorhttp.Path("/%s", ref.ID), body)
	if err != nil {
		return err
	}
	_, err = p.outcome(otp.OpCheck, r)
	return err
}

// Resend moves the verification to its next channel: POST
// /v2/verify/{id}/next_workflow. Without one left Vonage answers 409,
// which is ErrProviderRejected. Like a send it is never repeated once
// Vonage may have acted on it, which would skip a channel.
func (p *V2) Resend(ctx context.Context, ref otp.Ref) error {
	return p.simple(ctx, otp.OpResend, http.MethodPost, ref, "/%s/next_workflow")
}

// Cancel stops the verification: DELETE /v2/verify/{id}. Vonage allows it
// only from 30s after the start until the second channel is tried.
func (p *V2) Cancel(ctx context.Context, ref otp.Ref) error {
	return p.simple(ctx, otp.OpCancel, http.MethodDelete, ref, "/%s")
}

func (p *V2) simple(ctx context.Context, op otp.Op, method string, ref otp.Ref, path string) error {
	if ref.ID == "" {
		return local(p.Name(), op, fmt.Errorf("vonage: %w: empty request id", otp.ErrNotFound))
	}
	r, err := p.call(ctx, op, method, p.base+vendorhttp.Path(path, ref.ID), nil)
	if err != nil {
		return err
	}
	_, err = p.outcome(op, r)
	return err
}

func (p *V2) call(ctx context.Context, op otp.Op, method, u string, body []byte) (vendorhttp.Reply, error) {
	auth := p.basic
	if p.tokens != nil {
		var err error
		if auth, err = p.tokens.header(); err != nil {
			return vendorhttp.Reply{}, local(p.Name(), op, err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	r, err := p.http.Do(ctx, vendorhttp.Request{Op: op, Method: method, URL: u, ContentType: ct, Auth: auth, Body: body})
	if err == nil && r.Status == http.StatusUnauthorized && p.tokens != nil {
		p.tokens.invalidate(auth) // the next call signs afresh
	}
	return r, err
}

// parseKey reads the application's private key.
func parseKey(appID string, pem []byte) (*rsa.PrivateKey, error) {
	if appID == "" || len(pem) == 0 {
		return nil, errors.New("vonage: JWT auth needs both ApplicationID and PrivateKey")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pem)
	if err != nil {
		return nil, errors.New("vonage: PrivateKey is not an RSA private key in PEM") // the cause might quote the key
	}
	return key, nil
}

func checkBrand(b string) error {
	if b == "" || len([]rune(b)) > 18 || strings.ContainsAny(b, "/{}:$") {
		return errors.New("vonage: Brand must be 1 to 18 characters, none of / { } : $")
	}
	return nil
}

// normLocale returns l as Vonage writes locales ("en-gb"), or "" when l is
// not shaped like one.
func normLocale(l string) string {
	l = strings.ToLower(strings.ReplaceAll(l, "_", "-"))
	lang, region, _ := strings.Cut(l, "-")
	if len(lang) < 2 || len(lang) > 3 || !vendorhttp.Alnum(lang) || len(region) > 4 || !vendorhttp.Alnum(region) || strings.Count(l, "-") > 1 {
		return ""
	}
	if region == "" {
		return lang
	}
	return lang + "-" + region
}

// problem is Verify v2's RFC 7807 error body.
type problem struct {
	Type              string `json:"type"`
	Title             string `json:"title"`
	Detail            string `json:"detail"`
	RequestID         string `json:"request_id"`
	InvalidParameters []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"invalid_parameters"`
}

// decodeProblem reads a v2 error body; ok is false when it is not one.
func decodeProblem(body []byte) (p problem, ok bool) {
	if err := json.Unmarshal(body, &p); err != nil {
		return problem{}, false
	}
	return p, true
}

// typeSuffix is the fragment of a problem type URL ("concurrent").
func (p problem) typeSuffix() string {
	if i := strings.LastIndexByte(p.Type, '#'); i >= 0 {
		return p.Type[i+1:]
	}
	return ""
}

func (p problem) isConflict() bool {
	s := p.typeSuffix()
	return strings.EqualFold(p.Title, "Conflict") || s == "concurrent" || s == "conflict" ||
		strings.Contains(strings.ToLower(p.Detail), "concurrent")
}

func (p problem) invalidTo() bool {
	for _, ip := range p.InvalidParameters {
		if ip.Name == "to" || strings.HasSuffix(ip.Name, ".to") || strings.HasSuffix(ip.Name, "].to") {
			return true
		}
	}
	return strings.Contains(p.Detail, "'to'")
}

// v2Error maps a non-success v2 answer to the core's errors (see the table
// in the package doc). The answer's status and title are kept on the
// *otp.ProviderError, whose NotSent the shared HTTP layer has set.
func (p *V2) v2Error(op otp.Op, r vendorhttp.Reply) error {
	pb, ok := decodeProblem(r.Body)
	pe := p.http.Failure(op, r)
	pe.VendorStatus = vendorhttp.Text(pb.Title)
	detail := func(sentinel error) error {
		switch {
		case !ok:
			return withText(sentinel, "malformed error body")
		case pb.Detail != "":
			return withText(sentinel, pb.Detail)
		}
		return withText(sentinel, pb.Title)
	}
	if r.Status == http.StatusNotFound && vendorhttp.LostCheck(pe) {
		return pe // Vonage answers a second check of a verified request with 404
	}
	switch s := r.Status; {
	case s == http.StatusBadRequest && op == otp.OpCheck:
		pe.Err = detail(otp.ErrWrongCode)
	case s == http.StatusNotFound && op != otp.OpStart:
		pe.Err = detail(otp.ErrNotFound)
	case s == http.StatusConflict && op == otp.OpStart,
		s == http.StatusUnprocessableEntity && op == otp.OpStart && pb.isConflict():
		ce := &ConcurrentError{}
		if vendorhttp.ValidID(pb.RequestID) {
			ce.RequestID = pb.RequestID
		}
		pe.Err = ce
	case s == http.StatusConflict && strings.Contains(strings.ToLower(pb.Detail), "try again later"):
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
	case s == http.StatusGone:
		if d := strings.ToLower(pb.Detail + pb.Title); strings.Contains(d, "too many") || strings.Contains(d, "incorrect") || !ok {
			pe.Err = detail(otp.ErrTooManyAttempts)
		} else {
			pe.Err = detail(otp.ErrExpired)
		}
	case s == http.StatusUnprocessableEntity && op == otp.OpStart && pb.invalidTo():
		pe.Err = detail(otp.ErrInvalidPhone)
	case s == http.StatusUnauthorized, s == http.StatusPaymentRequired:
		// The account, not the person: credentials or balance.
		pe.Kind, pe.Err = otp.ProviderAccount, detail(errAccount)
	case s == http.StatusTooManyRequests, s >= 500:
		pe.Kind, pe.Err = otp.ProviderUnavailable, detail(nil)
	case s < 400:
		pe.Err = errors.New("vonage: unexpected http status")
	default:
		pe.Err = detail(nil)
	}
	return pe
}
