package vonage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// LegacyConfig configures a [Legacy] provider. Every zero field takes the
// default documented on it. Printing a LegacyConfig with any fmt verb never
// shows the secret.
type LegacyConfig struct {
	// APIKey and APISecret are required. They travel in the form body,
	// which every generation of the legacy API accepts (the Basic header
	// has been refused with "Missing api_key" at times).
	APIKey, APISecret string

	// Brand names the sender in messages. Required, up to 18 characters.
	Brand string
	// SenderID is the SMS sender, up to 11 characters. Default Vonage's
	// ("VERIFY").
	SenderID string
	// WorkflowID is the workflow for SMS sends: 1 (SMS, call, call), 2 (SMS,
	// SMS, call), 4 (SMS, SMS), 5 (SMS, call) or 6 (SMS). Default Vonage's
	// (1).
	WorkflowID int
	// VoiceWorkflowID is the workflow for voice sends: 3 (call, call) or 7
	// (call). Default 7.
	VoiceWorkflowID int
	// PinExpiry is how long the code is valid, whole seconds from 60s to
	// 3600s; Vonage sets it to NextEventWait unless it is a multiple of it.
	// Default Vonage's (300s).
	PinExpiry time.Duration
	// NextEventWait is the wait between events, whole seconds from 60s to
	// 900s. Default Vonage's.
	NextEventWait time.Duration
	// Locale (lg) is used when the send request has none. Default
	// Vonage's (en-us).
	Locale string

	// BaseURL is the API host: https, or plain http only to a loopback
	// host (a fake server in tests). Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of its own with a
	// 10s timeout per try and a keep-alive connection pool.
	HTTPClient *http.Client
	// Retry bounds retries; see otp.RetryPolicy for its defaults. A status
	// "1" (throttled) answer is retried like a 429 without Retry-After:
	// never for sends and trigger_next_event (Resend).
	Retry otp.RetryPolicy
	// Clock reads Retry-After dates. Default otp.SystemClock.
	Clock otp.Clock
}

// Format prints the configuration without its secret, whatever the verb.
func (c LegacyConfig) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "vonage.LegacyConfig{APIKey:%q APISecret:%s Brand:%q BaseURL:%q}",
		c.APIKey, redacted(c.APISecret != ""), c.Brand, c.BaseURL)
}

// Legacy is an [otp.Provider] for the legacy Verify API (v1, deprecated by
// Vonage), also an [otp.Resender] (trigger_next_event) and an
// [otp.Canceler]. Its Name is "vonage-legacy". It supports SMS and Voice.
// One Legacy is safe for concurrent use and reuses its connections.
type Legacy struct {
	cfg  LegacyConfig
	base string
	http *vendorhttp.Client
	// fixed are the form fields every send carries.
	fixed url.Values
}

var (
	_ otp.Provider = (*Legacy)(nil)
	_ otp.Resender = (*Legacy)(nil)
	_ otp.Canceler = (*Legacy)(nil)
)

// NewLegacy returns a legacy Verify provider configured by cfg.
func NewLegacy(cfg LegacyConfig) (*Legacy, error) {
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.VoiceWorkflowID == 0 {
		cfg.VoiceWorkflowID = 7
	}
	base, err := vendorhttp.BaseURL("vonage", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.APIKey == "" || cfg.APISecret == "":
		return nil, errors.New("vonage: LegacyConfig needs APIKey and APISecret")
	case cfg.Brand == "" || len([]rune(cfg.Brand)) > 18:
		return nil, errors.New("vonage: Brand must be 1 to 18 characters")
	case len(cfg.SenderID) > 11:
		return nil, errors.New("vonage: SenderID is longer than 11 characters")
	case cfg.WorkflowID != 0 && (cfg.WorkflowID < 1 || cfg.WorkflowID > 6 || cfg.WorkflowID == 3):
		return nil, errors.New("vonage: WorkflowID must be 1, 2, 4, 5 or 6")
	case cfg.VoiceWorkflowID != 3 && cfg.VoiceWorkflowID != 7:
		return nil, errors.New("vonage: VoiceWorkflowID must be 3 or 7")
	}
	fixed := url.Values{"api_key": {cfg.APIKey}, "api_secret": {cfg.APISecret}, "brand": {cfg.Brand}}
	if cfg.SenderID != "" {
		fixed.Set("sender_id", cfg.SenderID)
	}
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{{"pin_expiry", cfg.PinExpiry, 60 * time.Second, 3600 * time.Second}, {"next_event_wait", cfg.NextEventWait, 60 * time.Second, 900 * time.Second}} {
		if d.v == 0 {
			continue
		}
		if d.v < d.min || d.v > d.max || d.v%time.Second != 0 {
			return nil, fmt.Errorf("vonage: %s must be whole seconds from %v to %v", d.name, d.min, d.max)
		}
		fixed.Set(d.name, strconv.Itoa(int(d.v/time.Second)))
	}
	l := &Legacy{cfg: cfg, base: base + "/verify", fixed: fixed}
	if l.http, err = vendorhttp.New(l.Name(), cfg.HTTPClient, cfg.Retry, cfg.Clock); err != nil {
		return nil, fmt.Errorf("vonage: %w", err)
	}
	return l, nil
}

// legacyThrottled reports the legacy API's 200 "status 1" answer.
func legacyThrottled(body []byte) bool {
	lr, ok := decodeLegacy(body)
	return ok && *lr.Status == "1"
}

// Format prints the provider without its secret, whatever the verb.
func (l *Legacy) Format(f fmt.State, verb rune) { l.cfg.Format(f, verb) }

// Close closes the HTTP client's idle connections, so that no connection
// goroutine outlives the provider. Calls in flight are not affected.
func (l *Legacy) Close() error { return l.http.Close() }

// Name returns "vonage-legacy".
func (l *Legacy) Name() string { return "vonage-legacy" }

// Supports reports SMS and Voice.
func (l *Legacy) Supports(c otp.Channel) bool { return c == otp.SMS || c == otp.Voice }

// Send starts a verification: POST /verify/json. The code length must be 4
// or 6. A number that is not E.164 fails with ErrInvalidPhone and nothing is
// sent. On failure the *otp.ProviderError's NotSent says whether a code may
// have been delivered.
func (l *Legacy) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	form, err := l.sendForm(req)
	if err != nil {
		return otp.Ref{}, local(l.Name(), otp.OpStart, err)
	}
	r, err := l.post(ctx, otp.OpStart, "/json", form)
	if err != nil {
		return otp.Ref{}, err
	}
	id, err := l.outcome(otp.OpStart, r)
	if err != nil {
		return otp.Ref{}, err
	}
	return otp.Ref{Provider: l.Name(), ID: id}, nil
}

// outcome reads a legacy answer: nil (and for a send the request ID) only
// for status "0" in a 2xx JSON body, else the mapped error.
func (l *Legacy) outcome(op otp.Op, r vendorhttp.Reply) (string, error) {
	lr, ok := decodeLegacy(r.Body)
	if r.Status/100 != 2 || !ok || *lr.Status != "0" {
		return "", l.legacyError(op, r)
	}
	if op == otp.OpStart && !vendorhttp.ValidID(lr.RequestID) {
		pe := l.http.Unknown(op, r, errors.New("vonage: start response without a usable request id"))
		pe.VendorStatus = "0"
		return "", pe
	}
	return lr.RequestID, nil
}

func (l *Legacy) sendForm(req otp.SendRequest) (url.Values, error) {
	if !l.Supports(req.Channel) {
		return nil, fmt.Errorf("vonage: %w: %q", otp.ErrUnsupportedChannel, req.Channel)
	}
	number, ok := vendorhttp.E164Digits(req.To)
	if !ok {
		return nil, fmt.Errorf("vonage: %w: want E.164 (+ and 7 to 15 digits)", otp.ErrInvalidPhone)
	}
	form := make(url.Values, len(l.fixed)+4)
	for k, v := range l.fixed {
		form[k] = v
	}
	form.Set("number", number)
	switch req.CodeLength {
	case 0:
	case 4, 6:
		form.Set("code_length", strconv.Itoa(req.CodeLength))
	default:
		return nil, fmt.Errorf("vonage: code length %d: the legacy API sends 4 or 6 digits", req.CodeLength)
	}
	lg := normLocale(req.Locale)
	if lg == "" {
		lg = normLocale(l.cfg.Locale)
	}
	if lg != "" {
		form.Set("lg", lg)
	}
	wf := l.cfg.WorkflowID
	if req.Channel == otp.Voice {
		wf = l.cfg.VoiceWorkflowID
	}
	if wf != 0 {
		form.Set("workflow_id", strconv.Itoa(wf))
	}
	return form, nil
}

// Check asks Vonage whether code is right: POST /verify/check/json. Status
// 16 is ErrWrongCode, 17 ErrTooManyAttempts, 6 (unknown or already
// verified) ErrNotFound.
func (l *Legacy) Check(ctx context.Context, ref otp.Ref, code string) error {
	if err := l.checkID(otp.OpCheck, ref); err != nil {
		return err
	}
	if !vendorhttp.Code(code) {
		return local(l.Name(), otp.OpCheck, fmt.Errorf("vonage: %w: want 4 to 10 letters or digits", otp.ErrInvalidCode))
	}
	return l.expectOK(ctx, otp.OpCheck, "/check/json", url.Values{"request_id": {ref.ID}, "code": {code}})
}

// Resend triggers the workflow's next event: POST /verify/control/json
// cmd=trigger_next_event. Status 19 (none left) is ErrProviderRejected.
// Like a send it is never repeated once Vonage may have acted on it.
func (l *Legacy) Resend(ctx context.Context, ref otp.Ref) error {
	if err := l.checkID(otp.OpResend, ref); err != nil {
		return err
	}
	return l.expectOK(ctx, otp.OpResend, "/control/json", url.Values{"request_id": {ref.ID}, "cmd": {"trigger_next_event"}})
}

// cancelAfter is how long after the start Vonage refuses a cancel.
const cancelAfter = 30 * time.Second

// Cancel stops the verification: POST /verify/control/json cmd=cancel.
// Vonage allows it only from 30s after the start until the second event.
// Status 19 within the first 30 seconds is ErrProviderUnavailable with a
// RetryAfter of 30s (at most that long); after the second event it is
// ErrProviderRejected.
func (l *Legacy) Cancel(ctx context.Context, ref otp.Ref) error {
	if err := l.checkID(otp.OpCancel, ref); err != nil {
		return err
	}
	return l.expectOK(ctx, otp.OpCancel, "/control/json", url.Values{"request_id": {ref.ID}, "cmd": {"cancel"}})
}

func (l *Legacy) checkID(op otp.Op, ref otp.Ref) error {
	if ref.ID == "" || len(ref.ID) > 32 {
		return local(l.Name(), op, fmt.Errorf("vonage: %w: request id must be 1 to 32 characters", otp.ErrNotFound))
	}
	return nil
}

func (l *Legacy) expectOK(ctx context.Context, op otp.Op, path string, form url.Values) error {
	form.Set("api_key", l.cfg.APIKey)
	form.Set("api_secret", l.cfg.APISecret)
	r, err := l.post(ctx, op, path, form)
	if err != nil {
		return err
	}
	_, err = l.outcome(op, r)
	return err
}

func (l *Legacy) post(ctx context.Context, op otp.Op, path string, form url.Values) (vendorhttp.Reply, error) {
	return l.http.Do(ctx, vendorhttp.Request{Op: op, Method: http.MethodPost, URL: l.base + path,
		ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode()), Refused: legacyThrottled})
}

// legacyStatus is a legacy API status, a string in the JSON ("0", "16");
// a number is accepted too.
type legacyStatus string

func (s *legacyStatus) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = legacyStatus(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = legacyStatus(n.String())
	return nil
}

// legacyReply is every legacy answer's common part.
type legacyReply struct {
	Status    *legacyStatus `json:"status"`
	ErrorText string        `json:"error_text"`
	RequestID string        `json:"request_id"`
	Command   string        `json:"command"`
}

// decodeLegacy reads a legacy body; ok is false when it is not one (no
// JSON object, or no status).
func decodeLegacy(body []byte) (lr legacyReply, ok bool) {
	if err := json.Unmarshal(body, &lr); err != nil || lr.Status == nil || *lr.Status == "" {
		return legacyReply{}, false
	}
	return lr, true
}

// legacyError maps a legacy answer that is not status "0" (see the table in
// the package doc). The legacy API answers HTTP 200 for its own failures,
// so both the HTTP status and the body's status are looked at.
func (l *Legacy) legacyError(op otp.Op, r vendorhttp.Reply) error {
	pe := l.http.Failure(op, r)
	if r.Status/100 != 2 {
		pe.Err = errors.New("vonage: unexpected http status")
		switch {
		case r.Status == http.StatusUnauthorized:
			// Header credentials refused: the account, as status 4 says.
			pe.Kind, pe.Err = otp.ProviderAccount, errAccount
		case r.Status == http.StatusTooManyRequests || r.Status >= 500:
			pe.Kind = otp.ProviderUnavailable
		}
		return pe
	}
	lr, ok := decodeLegacy(r.Body)
	if !ok {
		return l.http.Unknown(op, r, errors.New("vonage: malformed response body"))
	}
	status := string(*lr.Status)
	pe.VendorStatus = vendorhttp.Text(status)
	text := strings.ToLower(lr.ErrorText)
	var sentinel error
	switch status {
	case "1": // throttled
		pe.Kind = otp.ProviderUnavailable
	case "3":
		switch {
		case op == otp.OpStart && strings.Contains(text, "number"):
			sentinel = otp.ErrInvalidPhone
		case op != otp.OpStart && strings.Contains(text, "request_id"):
			sentinel = otp.ErrNotFound
		}
	case "5": // internal error: Vonage may have acted
		pe = l.http.Unknown(op, r, withText(nil, lr.ErrorText))
		pe.VendorStatus = status
		return pe
	case "6":
		if op != otp.OpStart {
			sentinel = otp.ErrNotFound
		}
	case "7", "15": // blocked number, unsupported network
		sentinel = otp.ErrInvalidPhone
	case "10":
		ce := &ConcurrentError{}
		if vendorhttp.ValidID(lr.RequestID) {
			ce.RequestID = lr.RequestID
		}
		pe.Err = ce
		return pe
	case "16":
		sentinel = otp.ErrWrongCode
	case "17":
		sentinel = otp.ErrTooManyAttempts
	case "101":
		sentinel = otp.ErrNotFound
	case "4", "8", "9", "29":
		// the account: credentials, barred, no credit, demo mode
		pe.Kind, pe.Err = otp.ProviderAccount, withText(errAccount, lr.ErrorText)
		return pe
	case "19":
		if strings.Contains(text, "within the first") {
			// A cancel in the first 30 seconds: allowed later. The other
			// 19s (too late, no events left) are final.
			pe.Kind, pe.Err = otp.ProviderUnavailable, withText(nil, lr.ErrorText)
			if pe.RetryAfter == 0 {
				pe.RetryAfter = cancelAfter
			}
			return pe
		}
	case "2", "18", "20":
		// refusals: missing parameter, too many ids, pin_code
	default:
		pe.Err = withText(nil, "unknown status")
		return pe
	}
	if sentinel == otp.ErrNotFound && vendorhttp.LostCheck(pe) { // status 6 also means "already verified"
		return pe
	}
	pe.Err = withText(sentinel, lr.ErrorText)
	return pe
}
