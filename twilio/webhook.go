package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// SignatureHeader is the header that carries Twilio's request signature.
const SignatureHeader = "X-Twilio-Signature"

// ValidateSignature reports whether signature (an X-Twilio-Signature
// value) is Twilio's for a request to rawURL with form parameters params,
// signed with authToken: base64(HMAC-SHA1(authToken, URL followed by each
// parameter's name and value, by name; a name with several values once per
// value, values sorted)). The URL is tried as given and with its default
// port (:443, :80) added or removed, as Twilio's own validators do. The
// comparison takes constant time.
func ValidateSignature(authToken, rawURL string, params url.Values, signature string) bool {
	var b strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range params {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range slices.Sorted(slices.Values(params[k])) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return validate(authToken, rawURL, b.String(), signature)
}

// ValidateBody reports whether signature is Twilio's for a request to
// rawURL with a JSON (or any non-form) body. When rawURL has a bodySHA256
// query parameter, as Twilio adds for JSON webhooks, the signature covers
// the URL alone and the parameter must be the body's SHA-256 in hex; when
// it has none, the signature covers the URL followed by the body, as Event
// Streams sinks are signed. Default ports are tried as for
// ValidateSignature. The comparisons take constant time.
func ValidateBody(authToken, rawURL string, body []byte, signature string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	if want == "" {
		return validate(authToken, rawURL, string(body), signature)
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	hashOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
	return validate(authToken, rawURL, "", signature) && hashOK
}

// validate checks signature against rawURL+rest, with the URL's port
// variants.
func validate(authToken, rawURL, rest, signature string) bool {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != sha1.Size || authToken == "" {
		return false
	}
	ok := false
	for _, u := range portVariants(rawURL) {
		mac := hmac.New(sha1.New, []byte(authToken))
		mac.Write([]byte(u))
		mac.Write([]byte(rest))
		// Every variant is computed, so the time does not say which matched.
		ok = hmac.Equal(mac.Sum(nil), sig) || ok
	}
	return ok
}

// portVariants returns rawURL and, for http and https, the same URL with
// its default port added or removed (an empty port, "host:", counts as
// none), so that each of them has the others among its variants.
func portVariants(rawURL string) []string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	def := map[string]string{"https": "443", "http": "80"}[strings.ToLower(scheme)]
	if !ok || def == "" {
		return []string{rawURL}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	hostport, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
		userinfo, hostport = hostport[:at+1], hostport[at+1:]
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		i := strings.IndexByte(hostport, ']')
		if i < 0 {
			return []string{rawURL} // not a host: no variant
		}
		host, port = hostport[:i+1], strings.TrimPrefix(hostport[i+1:], ":")
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port != "" && port != def || host == "" || strings.ContainsRune(host, ':') && !strings.HasPrefix(host, "[") {
		return []string{rawURL} // another port, or no host: no variant
	}
	out := []string{rawURL}
	for _, hp := range []string{host, host + ":", host + ":" + def} {
		if v := scheme + "://" + userinfo + hp + tail; v != rawURL {
			out = append(out, v)
		}
	}
	return out
}

// WebhookConfig configures the handler of Verify events. Every zero field
// takes the default documented on it. Printing a WebhookConfig with any
// fmt verb never shows the Auth Token.
type WebhookConfig struct {
	// AuthToken is the Auth Token of the account the events come from:
	// Twilio signs every request with it, also when the REST calls use an
	// API key. Required.
	AuthToken string
	// PublicURL is the scheme and host Twilio calls ("https://hooks.example.com"),
	// with any path prefix removed before the request reaches this
	// handler: the signed URL is PublicURL followed by the request target
	// as received. Required: behind a proxy or a TLS terminator the
	// request does not say how Twilio reached it.
	PublicURL string
	// OnEvent, if set, receives each Verify event as an [otp.Event], the
	// type otp.Config.OnEvent takes (see [NewWebhookHandler]).
	OnEvent func(otp.Event)
	// OnCallback, if set, receives each decoded event. An error answers
	// 500, so that Twilio delivers the request again. At least one of
	// OnEvent and OnCallback is required.
	OnCallback func(context.Context, VerifyEvent) error
	// MaxBody caps the request body; a longer one is answered 413.
	// Default 64 KiB.
	MaxBody int64
}

// Format prints the configuration without its Auth Token.
func (c WebhookConfig) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "twilio.WebhookConfig{AuthToken:%s PublicURL:%q MaxBody:%d}", redacted(c.AuthToken != ""), c.PublicURL, c.MaxBody)
}

// VerifyEvent is one Verify event of Event Streams (a CloudEvent of type
// com.twilio.accountsecurity.verify.*).
type VerifyEvent struct {
	// ID is the event's id, the same on every delivery of the event: keep
	// it to drop repeats, which the signature cannot tell.
	ID string
	// Type is the CloudEvent type,
	// "com.twilio.accountsecurity.verify.verification.approved".
	Type string
	// Status is the verification's status in lower case: pending,
	// approved, canceled, expired or max_attempts_reached.
	Status string
	// VerificationSID, ServiceSID and AccountSID say whose verification
	// it is.
	VerificationSID, ServiceSID, AccountSID string
	// To is the destination, unmasked: personal data, not for logs.
	To string
	// Channel is the channel of the last send attempt, "" when none.
	Channel otp.Channel
	// Country is the destination's ISO 3166 region, as Twilio gives it.
	Country string
	// SendAttempts and CheckAttempts count the sends and the checks.
	SendAttempts, CheckAttempts int
	// CreatedAt, VerifiedAt and ExpiredAt are zero when absent or not
	// parsable.
	CreatedAt, VerifiedAt, ExpiredAt time.Time
}

// WebhookHandler is the http.Handler returned by [NewWebhookHandler].
type WebhookHandler struct {
	cfg WebhookConfig
}

// NewWebhookHandler returns an http.Handler for Verify events delivered
// by an Event Streams webhook sink (a JSON array of CloudEvents, or one).
// It accepts only POSTs whose X-Twilio-Signature is Twilio's signature of
// the request with cfg.AuthToken: for a form body, of the URL and the
// sorted parameters; for a JSON body, of the URL with a bodySHA256 that
// matches the body, or of the URL followed by the body (see
// [ValidateBody]). It answers 405 to other methods, 413 to bodies over
// MaxBody, 401 to unsigned or forged requests and 400 to bodies that are
// not events, all without calling any hook; 204 once the hooks ran.
// Twilio's signature has no time and no nonce, so a captured request can
// be replayed: keep VerifyEvent.ID where a repeat would matter.
//
// OnEvent gets one [otp.Event] per verification event, with Provider
// "twilio", the last send's channel, the destination masked and Region
// from the event's country: "pending" is [otp.EventSent] (Op
// [otp.OpStart]), "approved" is [otp.EventChecked] (Op [otp.OpCheck],
// Duration from creation to approval), "canceled" is [otp.EventCanceled],
// "expired" and "max_attempts_reached" are [otp.EventFailed] (Op
// [otp.OpCheck]) with a rejected *[otp.ProviderError] matching
// [otp.ErrExpired] or [otp.ErrTooManyAttempts]. Other events reach only
// OnCallback.
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if cfg.AuthToken == "" {
		return nil, errors.New("twilio: WebhookConfig needs AuthToken")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("twilio: WebhookConfig.PublicURL must be an http(s) URL with a host and no query, such as https://hooks.example.com")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.OnEvent == nil && cfg.OnCallback == nil {
		return nil, errors.New("twilio: WebhookConfig needs OnEvent or OnCallback")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.MaxBody < 0 {
		return nil, errors.New("twilio: WebhookConfig.MaxBody must not be negative")
	}
	return &WebhookHandler{cfg: cfg}, nil
}

// Format prints the handler without its Auth Token.
func (h *WebhookHandler) Format(f fmt.State, verb rune) { h.cfg.Format(f, verb) }

// ServeHTTP handles one delivery.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, ok := vendorhttp.ReadWebhookBody(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if !h.signed(r, body) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	events, err := decodeEvents(body)
	if err != nil {
		http.Error(w, "not verify events", http.StatusBadRequest)
		return
	}
	if h.cfg.OnCallback != nil {
		for _, ev := range events {
			if err := h.cfg.OnCallback(r.Context(), ev); err != nil {
				http.Error(w, "callback failed", http.StatusInternalServerError)
				return
			}
		}
	}
	if h.cfg.OnEvent != nil {
		for _, ev := range events {
			if e, ok := verifyEvent(ev); ok {
				h.cfg.OnEvent(e)
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// signed checks the request's signature against the URL Twilio called.
func (h *WebhookHandler) signed(r *http.Request, body []byte) bool {
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return false
	}
	target := r.RequestURI
	if target == "" || !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI()
	}
	u := h.cfg.PublicURL + target
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		params, err := url.ParseQuery(string(body))
		return err == nil && ValidateSignature(h.cfg.AuthToken, u, params, sig)
	}
	return ValidateBody(h.cfg.AuthToken, u, body, sig)
}

// verifyTypes is the prefix of every Verify event type, and of those of
// verifications.
const (
	verifyTypes       = "com.twilio.accountsecurity.verify."
	verificationTypes = verifyTypes + "verification."
)

type cloudEvent struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

type eventData struct {
	VerificationSID  string `json:"verification_sid"`
	ServiceSID       string `json:"service_sid"`
	AccountSID       string `json:"account_sid"`
	To               string `json:"to"`
	Status           string `json:"verification_status"`
	Country          string `json:"country"`
	CreatedAt        string `json:"created_at"`
	VerifiedAt       string `json:"verified_at"`
	ExpiredAt        string `json:"expired_at"`
	SendCodeAttempts struct {
		Count    int `json:"count"`
		Attempts []struct {
			Channel string `json:"channel"`
		} `json:"attempts"`
	} `json:"send_code_attempts"`
	CheckAttempts struct {
		Count int `json:"count"`
	} `json:"check_attempts"`
}

// decodeEvents reads a delivery: a JSON array of CloudEvents, or one. Each
// must be an object with a type and an id; events of other products are
// skipped, Verify events need a verification SID and a status. Timestamps
// that do not parse are left zero rather than failing the delivery.
func decodeEvents(body []byte) ([]VerifyEvent, error) {
	b := strings.TrimSpace(string(body))
	var raw []json.RawMessage
	switch {
	case strings.HasPrefix(b, "["):
		if err := json.Unmarshal([]byte(b), &raw); err != nil {
			return nil, errors.New("twilio: malformed events")
		}
	case strings.HasPrefix(b, "{"):
		raw = []json.RawMessage{json.RawMessage(b)}
	default:
		return nil, errors.New("twilio: not a JSON array or object")
	}
	var out []VerifyEvent
	for _, r := range raw {
		var ce cloudEvent
		if err := unmarshalObject(r, &ce); err != nil || ce.Type == "" || ce.ID == "" {
			return nil, errors.New("twilio: an event without a type or an id")
		}
		if !strings.HasPrefix(ce.Type, verifyTypes) {
			continue
		}
		var d eventData
		if err := unmarshalObject(ce.Data, &d); err != nil {
			return nil, errors.New("twilio: a Verify event without data")
		}
		status := strings.ToLower(d.Status)
		if s, ok := strings.CutPrefix(ce.Type, verificationTypes); ok {
			status = s
		}
		if d.VerificationSID == "" || status == "" {
			return nil, errors.New("twilio: a Verify event without a verification SID or a status")
		}
		ev := VerifyEvent{ID: ce.ID, Type: ce.Type, Status: status, VerificationSID: d.VerificationSID,
			ServiceSID: d.ServiceSID, AccountSID: d.AccountSID, To: d.To, Country: d.Country,
			SendAttempts: d.SendCodeAttempts.Count, CheckAttempts: d.CheckAttempts.Count,
			CreatedAt: parseTime(d.CreatedAt), VerifiedAt: parseTime(d.VerifiedAt), ExpiredAt: parseTime(d.ExpiredAt)}
		if n := len(d.SendCodeAttempts.Attempts); n > 0 {
			ev.Channel, _ = channelOf(d.SendCodeAttempts.Attempts[n-1].Channel)
		}
		out = append(out, ev)
	}
	return out, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// verifyEvent turns a Verify event into the core's event; see
// NewWebhookHandler for the mapping.
func verifyEvent(ve VerifyEvent) (otp.Event, bool) {
	ev := otp.Event{Provider: "twilio", Channel: ve.Channel, To: otp.MaskPhone(ve.To)}
	if len(ve.Country) == 2 && ve.Country == strings.ToUpper(ve.Country) && letters(ve.Country) {
		ev.Region = ve.Country
	}
	failed := func(sentinel error) {
		ev.Kind, ev.Op = otp.EventFailed, otp.OpCheck
		ev.Err = &otp.ProviderError{Provider: "twilio", Op: otp.OpCheck, VendorStatus: ve.Status, Err: sentinel}
		ev.Class = otp.ErrorClass(ev.Err)
	}
	switch ve.Status {
	case "pending":
		ev.Kind, ev.Op = otp.EventSent, otp.OpStart
	case "approved":
		ev.Kind, ev.Op = otp.EventChecked, otp.OpCheck
		if !ve.CreatedAt.IsZero() && ve.VerifiedAt.After(ve.CreatedAt) {
			ev.Duration = ve.VerifiedAt.Sub(ve.CreatedAt)
		}
	case "canceled":
		ev.Kind, ev.Op = otp.EventCanceled, otp.OpCancel
	case "expired":
		failed(otp.ErrExpired)
	case "max_attempts_reached":
		failed(otp.ErrTooManyAttempts)
	default:
		return otp.Event{}, false
	}
	return ev, true
}
