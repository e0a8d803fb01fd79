package infobip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// DefaultBaseURL is Infobip's shared API host. Prefer the personal base URL
// the Infobip portal shows for your account.
const DefaultBaseURL = "https://api.infobip.com"

// Config configures a [Client]. Only APIKey is required; a Client without
// an ApplicationID and templates can still run the setup calls
// ([Client.EnsureSetup]) that create them.
type Config struct {
	// BaseURL is the account's personal API base URL shown in the Infobip
	// portal ("https://xxxxx.api.infobip.com"). "https://" is added when
	// the scheme is missing and a trailing "/" is dropped; plain http is
	// accepted only for loopback hosts (fake servers in tests).
	// Default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: App <APIKey>". Required. It is
	// never printed: Config and Client format themselves without it.
	APIKey string

	// ApplicationID is the 2FA application the PINs belong to. Required
	// when any message ID is set.
	ApplicationID string
	// SMSMessageID, VoiceMessageID and EmailMessageID are the message
	// templates for each channel. The Client supports exactly the channels
	// that have one. Default: none.
	SMSMessageID   string
	VoiceMessageID string
	EmailMessageID string
	// From overrides the template's sender for SMS and voice (a sender
	// name or number); EmailFrom does so for email. Default: the
	// template's sender.
	From      string
	EmailFrom string
	// NumberLookup runs Infobip's Number Lookup before each SMS: a number
	// the lookup finds unreachable fails with otp.ErrInvalidPhone and no
	// SMS goes out. Infobip's own default, when the option is omitted, is
	// to run it; this Client always states it, so the zero value false
	// means no lookup.
	NumberLookup bool
	// Placeholders fill the template's own placeholders on every send and
	// resend: key "name" for "{{name}}" in the text, without braces, and
	// never "pin". Default none.
	Placeholders map[string]string
	// PerSend, if set, adjusts one send: it gets the send request (with
	// its Region) and a copy of the send's template, sender and
	// placeholders to change, for instance the template registered for
	// India's DLT (see Message.IndiaDLT) and its sender for Indian
	// numbers. Infobip carries DLT on the template, not per send. A
	// resend keeps the PIN's template and sends Placeholders. It must be
	// safe for concurrent use. Default none.
	PerSend func(req otp.SendRequest, o *SendOptions)

	// HTTPClient sends the requests. Default: a client with a 10 s
	// timeout per try and its own keep-alive transport.
	HTTPClient *http.Client
	// Clock reads Retry-After dates. Default otp.SystemClock.
	Clock otp.Clock
	// Retry bounds retries; see otp.RetryPolicy for its defaults. Sends,
	// resends and creates are retried only when Infobip surely did not
	// act on them: it has no idempotency key.
	Retry otp.RetryPolicy
}

// SendOptions are what Config.PerSend may change for one send.
type SendOptions struct {
	// MessageID is the template: the channel's from Config by default.
	MessageID string
	// From is the sender: Config.From (Config.EmailFrom for email) by
	// default.
	From string
	// Placeholders are Config.Placeholders by default.
	Placeholders map[string]string
}

// checkPlaceholders applies Config.Placeholders' rules.
func checkPlaceholders(m map[string]string) error {
	for k := range m {
		if k == "" || k == "pin" || strings.ContainsAny(k, "{} ") || len(k) > 64 {
			return fmt.Errorf("infobip: placeholder %q: keys are names without braces or spaces, and never \"pin\"", k)
		}
	}
	return nil
}

// Format prints the configuration without the API key, for every verb.
func (c Config) Format(f fmt.State, verb rune) {
	key := "<empty>"
	if c.APIKey != "" {
		key = "<redacted>"
	}
	fmt.Fprintf(f, "infobip.Config{BaseURL:%q APIKey:%s ApplicationID:%q SMSMessageID:%q VoiceMessageID:%q EmailMessageID:%q From:%q EmailFrom:%q NumberLookup:%t}",
		c.BaseURL, key, c.ApplicationID, c.SMSMessageID, c.VoiceMessageID, c.EmailMessageID, c.From, c.EmailFrom, c.NumberLookup)
}

// Client is an [otp.Provider] and [otp.Resender] for Infobip's 2FA API; it
// also creates and updates 2FA applications and message templates. It
// does not implement [otp.Canceler]: Infobip offers no way to cancel a
// PIN, which simply expires after its time to live. A Client is safe for
// concurrent use and reuses connections; Close releases the idle ones.
type Client struct {
	cfg  Config // normalised copy; cfg.APIKey is never printed
	base string // BaseURL without a trailing slash
	auth string // "App " + APIKey
	http *vendorhttp.Client
}

var (
	_ otp.Provider = (*Client)(nil)
	_ otp.Resender = (*Client)(nil)
)

// New returns a Client configured by a copy of cfg, or an error saying
// which field is wrong. It makes no request.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("infobip: Config.APIKey is required")
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, errors.New("infobip: Config.APIKey holds a line break")
	}
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.ApplicationID == "" && (cfg.SMSMessageID != "" || cfg.VoiceMessageID != "" || cfg.EmailMessageID != "") {
		return nil, errors.New("infobip: Config.ApplicationID is required with a message ID")
	}
	if err := checkPlaceholders(cfg.Placeholders); err != nil {
		return nil, fmt.Errorf("%w (Config.Placeholders)", err)
	}
	cfg.BaseURL, cfg.Placeholders = base, maps.Clone(cfg.Placeholders)
	c := &Client{cfg: cfg, base: base, auth: "App " + cfg.APIKey}
	if c.http, err = vendorhttp.New(c.Name(), cfg.HTTPClient, cfg.Retry, cfg.Clock); err != nil {
		return nil, fmt.Errorf("infobip: Config.%w", err)
	}
	return c, nil
}

// Close closes the HTTP client's idle connections, so that no connection
// goroutine outlives the Client. Calls in flight are not affected.
func (c *Client) Close() error { return c.http.Close() }

// call sends one request and returns the 2xx answer. Every other outcome
// is an error: a *otp.ProviderError, or otp.ErrNotFound for an unknown
// pin.
func (c *Client) call(ctx context.Context, op otp.Op, method, path string, payload any) (vendorhttp.Reply, error) {
	req := vendorhttp.Request{Op: op, Once: op == opCreate, Method: method, URL: c.base + path, Auth: c.auth}
	if payload != nil {
		req.Body, req.ContentType = marshal(payload), "application/json"
	}
	r, err := c.http.Do(ctx, req)
	if err != nil {
		return r, err
	}
	if r.Status/100 != 2 {
		return r, c.statusError(op, r)
	}
	return r, nil
}

// normalizeBaseURL applies Config.BaseURL's rules.
func normalizeBaseURL(raw string) (string, error) {
	if r := strings.TrimSpace(raw); r != "" && !strings.Contains(r, "://") {
		raw = "https://" + r // Infobip's shorthand: a bare host
	}
	return vendorhttp.BaseURL("infobip", raw, DefaultBaseURL)
}

// Format prints the client's configuration without the API key.
func (c *Client) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "infobip.Client{%v}", c.cfg)
}

// Name implements otp.Provider; it returns "infobip".
func (c *Client) Name() string { return "infobip" }

// Supports implements otp.Provider: a channel is supported when Config
// names a message template for it.
func (c *Client) Supports(ch otp.Channel) bool { return c.messageID(ch) != "" }

func (c *Client) messageID(ch otp.Channel) string {
	switch ch {
	case otp.SMS:
		return c.cfg.SMSMessageID
	case otp.Voice:
		return c.cfg.VoiceMessageID
	case otp.Email:
		return c.cfg.EmailMessageID
	}
	return ""
}

// Ref.ID holds the channel as well as the pin ID, because Infobip resends
// on a per-channel path and otp.Resender is given only the Ref.
const (
	prefixSMS   = "sms:"
	prefixVoice = "voice:"
	prefixEmail = "email:"
)

func encodeRef(ch otp.Channel, pinID string) string {
	switch ch {
	case otp.Voice:
		return prefixVoice + pinID
	case otp.Email:
		return prefixEmail + pinID
	}
	return prefixSMS + pinID
}

// decodeRef splits a Ref.ID made by encodeRef. An ID without a known
// prefix is taken as an SMS pin ID.
func decodeRef(id string) (otp.Channel, string) {
	switch {
	case strings.HasPrefix(id, prefixSMS):
		return otp.SMS, id[len(prefixSMS):]
	case strings.HasPrefix(id, prefixVoice):
		return otp.Voice, id[len(prefixVoice):]
	case strings.HasPrefix(id, prefixEmail):
		return otp.Email, id[len(prefixEmail):]
	}
	return otp.SMS, id
}

type sendBody struct {
	ApplicationID string            `json:"applicationId"`
	MessageID     string            `json:"messageId"`
	To            string            `json:"to"`
	From          string            `json:"from,omitempty"`
	Placeholders  map[string]string `json:"placeholders,omitempty"`
}

type resendBody struct {
	Placeholders map[string]string `json:"placeholders,omitempty"`
}

// Send implements otp.Provider: it asks Infobip to generate a PIN and
// deliver it by SMS, voice call or email, and returns the pin ID. The
// template fixes the PIN's length and language: req.CodeLength and
// req.Locale are not sent, so the template's pinLength must equal
// otp.Config.CodeLength.
func (c *Client) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	msgID := c.messageID(req.Channel)
	if msgID == "" {
		return otp.Ref{}, &otp.ProviderError{Provider: c.Name(), Op: otp.OpStart, NotSent: true, Err: otp.ErrUnsupportedChannel}
	}
	to, err := vendorDestination(req.Channel, req.To)
	if err != nil {
		return otp.Ref{}, err
	}
	o := SendOptions{MessageID: msgID, From: c.cfg.From, Placeholders: c.cfg.Placeholders}
	if req.Channel == otp.Email {
		o.From = c.cfg.EmailFrom
	}
	if c.cfg.PerSend != nil {
		o.Placeholders = maps.Clone(o.Placeholders)
		c.cfg.PerSend(req, &o)
		if err := checkPlaceholders(o.Placeholders); err != nil || o.MessageID == "" {
			if err == nil {
				err = errors.New("infobip: PerSend left no MessageID")
			}
			return otp.Ref{}, &otp.ProviderError{Provider: c.Name(), Op: otp.OpStart, NotSent: true, Err: err}
		}
	}
	body := sendBody{ApplicationID: c.cfg.ApplicationID, MessageID: o.MessageID, To: to, From: o.From, Placeholders: o.Placeholders}
	path := "/2fa/2/pin"
	switch req.Channel {
	case otp.SMS:
		path += "?ncNeeded=false"
		if c.cfg.NumberLookup {
			path = "/2fa/2/pin?ncNeeded=true"
		}
	case otp.Voice:
		path += "/voice"
	case otp.Email:
		path += "/email"
	}
	r, err := c.call(ctx, opSend, http.MethodPost, path, body)
	if err != nil {
		return otp.Ref{}, err
	}
	pinID, err := decodeSend(r.Body)
	if err != nil {
		return otp.Ref{}, c.failure(opSend, r, err)
	}
	return otp.Ref{Provider: c.Name(), ID: encodeRef(req.Channel, pinID)}, nil
}

// vendorDestination turns the core's E.164 number into Infobip's digits
// without "+", and checks an email address is plausible.
func vendorDestination(ch otp.Channel, to string) (string, error) {
	if ch == otp.Email {
		if !vendorhttp.Email(to) {
			return "", fmt.Errorf("infobip: send: %w: not an email address", otp.ErrInvalidPhone)
		}
		return to, nil
	}
	digits, ok := vendorhttp.E164Digits(to)
	if !ok {
		return "", fmt.Errorf("infobip: send: %w: want E.164 (+ and 7 to 15 digits)", otp.ErrInvalidPhone)
	}
	return digits, nil
}

type verifyBody struct {
	PIN string `json:"pin"`
}

// Check implements otp.Provider: it verifies code against the PIN.
// Infobip answers a wrong PIN with HTTP 200: WRONG_PIN with attempts left
// is a *otp.WrongCodeError carrying Infobip's count, WRONG_PIN with none
// left and NO_MORE_PIN_ATTEMPTS are otp.ErrTooManyAttempts, TTL_EXPIRED is
// otp.ErrExpired, and an unknown pin ID (HTTP 404) is otp.ErrNotFound.
func (c *Client) Check(ctx context.Context, ref otp.Ref, code string) error {
	_, pinID := decodeRef(ref.ID)
	if pinID == "" {
		return fmt.Errorf("infobip: check: %w: empty pin ID", otp.ErrNotFound)
	}
	if code == "" || len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("infobip: check: %w", otp.ErrInvalidCode)
	}
	r, err := c.call(ctx, opCheck, http.MethodPost, vendorhttp.Path("/2fa/2/pin/%s/verify", pinID), verifyBody{PIN: code})
	if err != nil {
		return err
	}
	if err := decodeVerify(pinID, r.Body); err != nil {
		return c.failure(opCheck, r, err)
	}
	return nil
}

// Resend implements otp.Resender: Infobip delivers the same PIN again on
// the channel it was sent on. An unknown pin ID is otp.ErrNotFound.
func (c *Client) Resend(ctx context.Context, ref otp.Ref) error {
	ch, pinID := decodeRef(ref.ID)
	if pinID == "" {
		return fmt.Errorf("infobip: resend: %w: empty pin ID", otp.ErrNotFound)
	}
	path := vendorhttp.Path("/2fa/2/pin/%s/resend", pinID)
	switch ch {
	case otp.Voice:
		path += "/voice"
	case otp.Email:
		path += "/email"
	}
	r, err := c.call(ctx, opResend, http.MethodPost, path, resendBody{Placeholders: c.cfg.Placeholders})
	if err != nil {
		return err
	}
	if _, err := decodeSend(r.Body); err != nil {
		return c.failure(opResend, r, err)
	}
	return nil
}

// marshal is json.Marshal for the request bodies, which cannot fail.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("infobip: " + err.Error()) // only plain structs are marshalled
	}
	return b
}
