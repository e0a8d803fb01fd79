package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// DefaultBaseURL is Twilio Verify's API host.
const DefaultBaseURL = "https://verify.twilio.com"

// RiskCheck is the RiskCheck parameter of a start: whether Fraud Guard and
// Geo Permissions judge this SMS.
type RiskCheck string

// RiskCheck values.
const (
	// RiskCheckDefault sends no RiskCheck: Twilio's default, enabled.
	RiskCheckDefault RiskCheck = ""
	// RiskCheckEnable states Twilio's default.
	RiskCheckEnable RiskCheck = "enable"
	// RiskCheckDisable lets this SMS past Fraud Guard and Geo Permissions,
	// for a destination the caller trusts. SMS only.
	RiskCheckDisable RiskCheck = "disable"
)

// SendOptions are the parameters of a start that may change from one send
// to the next. Config.SendOptions sets them for every send and
// Config.PerSend may change them for one. Every zero field sends nothing,
// leaving Twilio's behaviour, as stated on the field.
type SendOptions struct {
	// Locale picks the message language when the send request has none
	// ("en", "pt-br"; written to Twilio as "pt-BR"). Default: Twilio's
	// choice by the destination's country.
	Locale string
	// CustomFriendlyName replaces the Service's friendly name in the
	// message (at most 30 characters). Twilio must have enabled it for the
	// Service, which otherwise refuses the account (60204). Default: the
	// Service's friendly name.
	CustomFriendlyName string
	// AppHash is the Android SMS Retriever hash (11 characters) that
	// lets an app read the code itself. SMS only. Default none.
	AppHash string
	// TemplateSID picks a message template ("HJ" and 32 hex digits). SMS
	// only: Twilio's spec says SMS and voice, its error 60408 says SMS
	// only, so it is sent only for SMS. Default: the Service's template.
	TemplateSID string
	// TemplateSubstitutions fills the template's variables; sent, as
	// TemplateCustomSubstitutions, only for SMS. Default none.
	TemplateSubstitutions map[string]string
	// RiskCheck is sent only for SMS. Default RiskCheckDefault.
	RiskCheck RiskCheck
	// CustomCode is the code to send instead of Twilio's: 4 to 10 letters
	// or digits, with the Verifier's CodeLength digits. The Service needs
	// custom codes enabled, which otherwise refuses the account (60204).
	// Set it per send from Config.PerSend. Default none.
	CustomCode string
}

// Config configures a [Provider]. Every zero field takes the default
// documented on it. Printing a Config with any fmt verb never shows the
// Auth Token or the API key secret.
type Config struct {
	// ServiceSID is the Verify Service that sends and checks the codes:
	// "VA" and 32 hex digits. Required. Its code length (a Service
	// setting, never sent per request) must equal otp.Config.CodeLength.
	ServiceSID string
	// AccountSID ("AC...") and AuthToken authenticate with HTTP Basic.
	AccountSID, AuthToken string
	// APIKeySID ("SK...") and APIKeySecret authenticate with HTTP Basic
	// instead, as Twilio recommends in production. Exactly one of the two
	// pairs is required.
	APIKeySID, APIKeySecret string
	// Channels are the channels the Service delivers on: otp.SMS,
	// otp.Voice (Twilio's "call"), otp.WhatsApp (with a WhatsApp sender
	// set up on the Service) and otp.Email (with a Mailer). Default SMS
	// and Voice.
	Channels []otp.Channel
	// SendOptions are the start parameters of every send; see each field
	// for its default.
	SendOptions
	// PerSend, if set, adjusts the options of one send: it gets the send
	// request (with its Region) and a copy of SendOptions to change, for
	// instance a template per country. It also runs for Resend, whose
	// request has only To, Channel and Region, and whose CustomCode is not
	// sent. It must be safe for concurrent use. Default none.
	PerSend func(req otp.SendRequest, o *SendOptions)
	// ClientRateLimit is the unique name of a Service Rate Limit that gets
	// the caller's client ID (otp.WithClient, SendRequest.Client) on each
	// start: RateLimits={"<name>":"<client ID>"}. A start without a client
	// ID sends no RateLimits. Default none.
	ClientRateLimit string
	// DeviceIP sends the caller's client ID as DeviceIp when it is an IP
	// address, for Twilio's fraud checks. Default false.
	DeviceIP bool

	// BaseURL is the API host: https, or plain http only to a loopback
	// host (a fake server in tests). Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client of its own with a
	// 10s timeout per try and a keep-alive connection pool.
	HTTPClient *http.Client
	// Retry bounds retries; see otp.RetryPolicy for its defaults. Starts,
	// and the start a Resend makes, are retried only when Twilio surely
	// did not act on them: Twilio has no idempotency key.
	Retry otp.RetryPolicy
	// Clock reads Retry-After dates. Default otp.SystemClock.
	Clock otp.Clock
}

// Format prints the configuration without its secrets, whatever the verb.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "twilio.Config{ServiceSID:%q AccountSID:%q AuthToken:%s APIKeySID:%q APIKeySecret:%s Channels:%v BaseURL:%q}",
		c.ServiceSID, c.AccountSID, redacted(c.AuthToken != ""), c.APIKeySID, redacted(c.APIKeySecret != ""), c.Channels, c.BaseURL)
}

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return `""`
}

// Provider is an [otp.Provider] for Twilio Verify v2, also an
// [otp.Resender] and an [otp.Canceler]. Its Name is "twilio". One Provider
// is safe for concurrent use and reuses its connections; Close releases
// the idle ones.
type Provider struct {
	cfg           Config // a copy; secrets never printed
	auth          string // the Basic header
	verifications string // base + /v2/Services/{sid}/Verifications
	check         string // base + /v2/Services/{sid}/VerificationCheck
	http          *vendorhttp.Client
}

var (
	_ otp.Provider = (*Provider)(nil)
	_ otp.Resender = (*Provider)(nil)
	_ otp.Canceler = (*Provider)(nil)
)

var (
	serviceSIDRE  = regexp.MustCompile(`^VA[0-9a-fA-F]{32}$`)
	accountSIDRE  = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeySIDRE   = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	templateSIDRE = regexp.MustCompile(`^HJ[0-9a-fA-F]{32}$`)
	// verificationSIDRE is what a Ref.ID must look like: it goes into a
	// URL path and a form.
	verificationSIDRE = regexp.MustCompile(`^VE[0-9a-fA-F]{32}$`)
)

// New returns a Verify provider configured by a copy of cfg, or an error
// naming the field that is wrong. It makes no request.
func New(cfg Config) (*Provider, error) {
	if !serviceSIDRE.MatchString(cfg.ServiceSID) {
		if strings.HasPrefix(cfg.ServiceSID, "AC") {
			return nil, errors.New("twilio: Config.ServiceSID is an Account SID; give the Verify Service SID (VA...)")
		}
		return nil, errors.New("twilio: Config.ServiceSID must be VA and 32 hex digits")
	}
	var user, pass string
	switch account, key := cfg.AccountSID != "" || cfg.AuthToken != "", cfg.APIKeySID != "" || cfg.APIKeySecret != ""; {
	case account && key:
		return nil, errors.New("twilio: set AccountSID and AuthToken, or APIKeySID and APIKeySecret, not both")
	case account:
		if !accountSIDRE.MatchString(cfg.AccountSID) || cfg.AuthToken == "" {
			return nil, errors.New("twilio: Config.AccountSID must be AC and 32 hex digits, with an AuthToken")
		}
		user, pass = cfg.AccountSID, cfg.AuthToken
	case key:
		if !apiKeySIDRE.MatchString(cfg.APIKeySID) || cfg.APIKeySecret == "" {
			return nil, errors.New("twilio: Config.APIKeySID must be SK and 32 hex digits, with an APIKeySecret")
		}
		user, pass = cfg.APIKeySID, cfg.APIKeySecret
	default:
		return nil, errors.New("twilio: Config needs AccountSID and AuthToken, or APIKeySID and APIKeySecret")
	}
	if strings.ContainsAny(pass, "\r\n") {
		return nil, errors.New("twilio: the secret holds a line break")
	}
	if cfg.Channels == nil {
		cfg.Channels = []otp.Channel{otp.SMS, otp.Voice}
	}
	cfg.Channels = slices.Clone(cfg.Channels)
	for _, c := range cfg.Channels {
		if _, ok := channelNames[c]; !ok {
			return nil, fmt.Errorf("twilio: Config.Channels: %q is not sms, voice, whatsapp or email", c)
		}
	}
	cfg.TemplateSubstitutions = maps.Clone(cfg.TemplateSubstitutions)
	if err := cfg.SendOptions.validate(); err != nil {
		return nil, err
	}
	if n := cfg.ClientRateLimit; len(n) > 64 || strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return nil, errors.New("twilio: Config.ClientRateLimit must be a rate limit's unique name, up to 64 characters")
	}
	base, err := vendorhttp.BaseURL("twilio", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	svc := base + vendorhttp.Path("/v2/Services/%s", cfg.ServiceSID)
	p := &Provider{cfg: cfg, verifications: svc + "/Verifications", check: svc + "/VerificationCheck",
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	if p.http, err = vendorhttp.New(p.Name(), cfg.HTTPClient, cfg.Retry, cfg.Clock); err != nil {
		return nil, fmt.Errorf("twilio: Config.%w", err)
	}
	return p, nil
}

// Format prints the provider without its secrets, whatever the verb.
func (p *Provider) Format(f fmt.State, verb rune) { p.cfg.Format(f, verb) }

// Close closes the HTTP client's idle connections, so that no connection
// goroutine outlives the provider. Calls in flight are not affected.
func (p *Provider) Close() error { return p.http.Close() }

// Name returns "twilio".
func (p *Provider) Name() string { return "twilio" }

// Supports reports whether c is one of Config.Channels.
func (p *Provider) Supports(c otp.Channel) bool { return slices.Contains(p.cfg.Channels, c) }

// channelNames are Twilio's names of the channels.
var channelNames = map[otp.Channel]string{otp.SMS: "sms", otp.Voice: "call", otp.WhatsApp: "whatsapp", otp.Email: "email"}

// channelOf reads a channel as Twilio writes it, in any case.
func channelOf(s string) (otp.Channel, bool) {
	for c, name := range channelNames {
		if strings.EqualFold(s, name) {
			return c, true
		}
	}
	return "", false
}

// Send starts a verification: POST /v2/Services/{ServiceSID}/Verifications.
// To a destination that has a verification pending at the Service, Twilio
// sends that verification's code again and answers with its SID: see
// "Resends and pending verifications" in the package doc. On failure the
// *otp.ProviderError's NotSent says whether a code may have gone out.
func (p *Provider) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	form, err := p.startForm(req, false)
	if err != nil {
		return otp.Ref{}, local(otp.OpStart, err)
	}
	r, err := p.call(ctx, otp.OpStart, http.MethodPost, p.verifications, form)
	if err != nil {
		return otp.Ref{}, err
	}
	id, err := p.startOutcome(otp.OpStart, r)
	if err != nil {
		return otp.Ref{}, err
	}
	return otp.Ref{Provider: p.Name(), ID: id}, nil
}

// startOutcome reads the answer to a start (of a Send, or op OpResend):
// the SID of the pending verification, or the mapped error.
func (p *Provider) startOutcome(op otp.Op, r vendorhttp.Reply) (string, error) {
	if r.Status/100 != 2 {
		return "", p.statusError(otp.OpStart, op, r)
	}
	v, err := decodeVerification(r.Body)
	if err == nil && v.Status != "pending" {
		err = errors.New("twilio: a start answered a verification that is not pending")
	}
	if err != nil {
		// Twilio accepted something; without a pending SID it cannot be checked.
		return "", p.http.Unknown(op, r, err)
	}
	return v.SID, nil
}

// startForm builds the form of a start to req.To on req.Channel; that of
// a resend carries no CustomCode, the pending verification having its
// code.
func (p *Provider) startForm(req otp.SendRequest, resend bool) (url.Values, error) {
	name, ok := channelNames[req.Channel]
	if !ok || !p.Supports(req.Channel) {
		return nil, fmt.Errorf("twilio: %w: %q", otp.ErrUnsupportedChannel, req.Channel)
	}
	var valid bool
	if req.Channel == otp.Email {
		valid = vendorhttp.Email(req.To)
	} else {
		_, valid = vendorhttp.E164Digits(req.To)
	}
	if !valid {
		return nil, fmt.Errorf("twilio: %w: want E.164 (+ and 7 to 15 digits), or an address for email", otp.ErrInvalidPhone)
	}
	o := p.cfg.SendOptions
	if p.cfg.PerSend != nil {
		o.TemplateSubstitutions = maps.Clone(o.TemplateSubstitutions)
		p.cfg.PerSend(req, &o)
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("%w (from PerSend)", err)
		}
	}
	form := url.Values{"To": {req.To}, "Channel": {name}}
	locale := twilioLocale(req.Locale)
	if locale == "" {
		locale = twilioLocale(o.Locale)
	}
	set := func(k, v string) {
		if v != "" {
			form.Set(k, v)
		}
	}
	set("Locale", locale)
	set("CustomFriendlyName", o.CustomFriendlyName)
	if resend {
		o.CustomCode = ""
	}
	set("CustomCode", o.CustomCode)
	if o.CustomCode != "" && req.CodeLength != 0 && len(o.CustomCode) != req.CodeLength {
		return nil, fmt.Errorf("twilio: CustomCode has %d characters, the Verifier wants %d", len(o.CustomCode), req.CodeLength)
	}
	if req.Channel == otp.SMS {
		set("AppHash", o.AppHash)
		set("TemplateSid", o.TemplateSID)
		set("RiskCheck", string(o.RiskCheck))
		if len(o.TemplateSubstitutions) > 0 {
			set("TemplateCustomSubstitutions", string(mustJSON(o.TemplateSubstitutions)))
		}
	}
	if c := req.Client; c != "" {
		if p.cfg.ClientRateLimit != "" {
			if len(c) > 256 || strings.ContainsFunc(c, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return nil, errors.New("twilio: the client ID cannot go into RateLimits: over 256 bytes or control characters")
			}
			set("RateLimits", string(mustJSON(map[string]string{p.cfg.ClientRateLimit: c})))
		}
		if ip, err := netip.ParseAddr(c); p.cfg.DeviceIP && err == nil && ip.Zone() == "" {
			set("DeviceIp", ip.String())
		}
	}
	return form, nil
}

// Check asks Twilio whether code is right: POST
// /v2/Services/{ServiceSID}/VerificationCheck with the verification's SID.
// Twilio answers a wrong code with 200 and status "pending", which is
// otp.ErrWrongCode; a verification it no longer has (approved, expired,
// cancelled, out of checks) with 404, which is otp.ErrNotFound and never a
// success.
func (p *Provider) Check(ctx context.Context, ref otp.Ref, code string) error {
	if !verificationSIDRE.MatchString(ref.ID) {
		return local(otp.OpCheck, fmt.Errorf("twilio: %w: not a verification SID", otp.ErrNotFound))
	}
	if !vendorhttp.Code(code) {
		return local(otp.OpCheck, fmt.Errorf("twilio: %w: want 4 to 10 letters or digits", otp.ErrInvalidCode))
	}
	form := url.Values{"VerificationSid": {ref.ID}, "Code": {code}}
	r, err := p.call(ctx, otp.OpCheck, http.MethodPost, p.check, form)
	if err != nil {
		return err
	}
	return p.checkOutcome(ref.ID, r)
}

// verificationOf reads an answer that is verification id: the mapped
// error for a failure, an unknown outcome for a 2xx that is not it. phase
// is the request, op the operation named in errors.
func (p *Provider) verificationOf(phase, op otp.Op, id string, r vendorhttp.Reply) (verification, error) {
	if r.Status/100 != 2 {
		return verification{}, p.statusError(phase, op, r)
	}
	v, err := decodeVerification(r.Body)
	if err == nil && v.SID != id {
		err = errors.New("twilio: the answer is for another verification")
	}
	if err != nil {
		return verification{}, p.http.Unknown(op, r, err)
	}
	return v, nil
}

// checkOutcome reads the answer to a check of verification id.
func (p *Provider) checkOutcome(id string, r vendorhttp.Reply) error {
	v, err := p.verificationOf(otp.OpCheck, otp.OpCheck, id, r)
	if err != nil {
		return err
	}
	pe := p.http.Failure(otp.OpCheck, r)
	pe.VendorStatus = vendorhttp.Text(v.Status)
	switch {
	case v.Status == "approved" && (v.Valid == nil || *v.Valid):
		return nil
	case v.Status == "pending" && (v.Valid == nil || !*v.Valid):
		pe.Err = otp.ErrWrongCode // the Verifier counts the attempts left
		return pe
	case v.Status == "approved", v.Status == "pending":
		return p.http.Unknown(otp.OpCheck, r, errors.New("twilio: check status and valid disagree"))
	}
	if err := ended(v.Status); err != nil {
		pe.Err = err
		return pe
	}
	return p.http.Unknown(otp.OpCheck, r, errors.New("twilio: unknown verification status"))
}

// ended maps the status of a verification that is no longer pending to
// the core's error, or nil for a status it does not know.
func ended(status string) error {
	switch status {
	case "expired":
		return otp.ErrExpired
	case "max_attempts_reached":
		return otp.ErrTooManyAttempts
	case "approved", "canceled", "deleted", "failed":
		return otp.ErrNotFound
	}
	return nil
}

// Resend sends the pending code again, as Twilio does it: a new start to
// the same To on the same channel, which keeps the verification and its
// SID. It first reads the verification (GET .../Verifications/{sid}) to
// learn its destination and channel and that it is still pending, so that
// a verification Twilio no longer has gets otp.ErrNotFound (or
// otp.ErrExpired, otp.ErrTooManyAttempts) and nothing is sent. Should the
// start still create a new verification (the old one ended in between),
// that one is cancelled and Resend fails with otp.ErrNotFound, NotSent
// false: a second pending verification is never left behind. Like a send,
// the start is never repeated once Twilio may have acted on it.
func (p *Provider) Resend(ctx context.Context, ref otp.Ref) error {
	if !verificationSIDRE.MatchString(ref.ID) {
		return local(otp.OpResend, fmt.Errorf("twilio: %w: not a verification SID", otp.ErrNotFound))
	}
	u := p.verifications + vendorhttp.Path("/%s", ref.ID)
	r, err := p.call(ctx, opFetch, http.MethodGet, u, nil)
	if err != nil {
		return asOp(err, otp.OpResend)
	}
	v, ch, err := p.fetchOutcome(ref.ID, r)
	if err != nil {
		return err
	}
	form, err := p.startForm(otp.SendRequest{To: v.To, Channel: ch, Region: regionOf(v.To)}, true)
	if err != nil {
		return local(otp.OpResend, err)
	}
	r, err = p.call(ctx, otp.OpResend, http.MethodPost, p.verifications, form)
	if err != nil {
		return err
	}
	again, err := p.startOutcome(otp.OpResend, r)
	if err != nil {
		return err
	}
	if again != ref.ID {
		// The verification ended between the read and the start, which
		// made a new one: withdraw it, since the caller holds the old SID.
		_ = p.Cancel(ctx, otp.Ref{Provider: p.Name(), ID: again})
		pe := p.http.Unknown(otp.OpResend, r, fmt.Errorf("twilio: %w: the verification ended before the resend; the one the resend started was cancelled", otp.ErrNotFound))
		pe.Kind = otp.ProviderRejected
		return pe
	}
	return nil
}

// fetchOutcome reads the answer to the read of verification id that
// starts a Resend: the verification and its channel when it is pending,
// else the error Resend returns.
func (p *Provider) fetchOutcome(id string, r vendorhttp.Reply) (verification, otp.Channel, error) {
	v, err := p.verificationOf(opFetch, otp.OpResend, id, r)
	if err != nil {
		return verification{}, "", err
	}
	ch, known := channelOf(v.Channel)
	if !known {
		return verification{}, "", p.http.Unknown(otp.OpResend, r, errors.New("twilio: fetch answered an unknown channel"))
	}
	if v.Status != "pending" {
		pe := p.http.Failure(otp.OpResend, r)
		pe.VendorStatus, pe.Err = vendorhttp.Text(v.Status), ended(v.Status)
		if pe.Err == nil {
			return verification{}, "", p.http.Unknown(otp.OpResend, r, errors.New("twilio: unknown verification status"))
		}
		return verification{}, "", pe
	}
	return v, ch, nil
}

// Cancel stops the verification: POST .../Verifications/{sid} with
// Status=canceled. A verification Twilio no longer has is otp.ErrNotFound.
func (p *Provider) Cancel(ctx context.Context, ref otp.Ref) error {
	if !verificationSIDRE.MatchString(ref.ID) {
		return local(otp.OpCancel, fmt.Errorf("twilio: %w: not a verification SID", otp.ErrNotFound))
	}
	u := p.verifications + vendorhttp.Path("/%s", ref.ID)
	r, err := p.call(ctx, otp.OpCancel, http.MethodPost, u, url.Values{"Status": {"canceled"}})
	if err != nil {
		return err
	}
	return p.cancelOutcome(ref.ID, r)
}

// cancelOutcome reads the answer to a cancel of verification id.
func (p *Provider) cancelOutcome(id string, r vendorhttp.Reply) error {
	v, err := p.verificationOf(otp.OpCancel, otp.OpCancel, id, r)
	if err == nil && v.Status != "canceled" {
		err = p.http.Unknown(otp.OpCancel, r, errors.New("twilio: cancel answered a verification that is not cancelled"))
	}
	return err
}

// call sends one request through the shared transport.
func (p *Provider) call(ctx context.Context, op otp.Op, method, u string, form url.Values) (vendorhttp.Reply, error) {
	req := vendorhttp.Request{Op: op, Method: method, URL: u, Auth: p.auth, Final: final}
	if form != nil {
		req.Body, req.ContentType = []byte(form.Encode()), "application/x-www-form-urlencoded"
	}
	return p.http.Do(ctx, req)
}

func (o SendOptions) validate() error {
	switch {
	case o.Locale != "" && twilioLocale(o.Locale) == "":
		return fmt.Errorf("twilio: Locale %q is not like \"en\" or \"pt-br\"", o.Locale)
	case len([]rune(o.CustomFriendlyName)) > 30:
		return errors.New("twilio: CustomFriendlyName is longer than 30 characters")
	case o.AppHash != "" && (len(o.AppHash) != 11 || strings.ContainsFunc(o.AppHash, func(r rune) bool { return r <= ' ' || r >= 0x7f })):
		return errors.New("twilio: AppHash must be 11 printable characters")
	case o.TemplateSID != "" && !templateSIDRE.MatchString(o.TemplateSID):
		return errors.New("twilio: TemplateSID must be HJ and 32 hex digits")
	case o.RiskCheck != RiskCheckDefault && o.RiskCheck != RiskCheckEnable && o.RiskCheck != RiskCheckDisable:
		return fmt.Errorf("twilio: RiskCheck %q is not enable or disable", o.RiskCheck)
	case o.CustomCode != "" && !vendorhttp.Code(o.CustomCode):
		return errors.New("twilio: CustomCode must be 4 to 10 letters or digits")
	}
	return nil
}

// twilioLocale writes l as Twilio writes locales ("en", "pt-BR"), or ""
// when l is not shaped like one.
func twilioLocale(l string) string {
	lang, region, _ := strings.Cut(strings.ReplaceAll(l, "_", "-"), "-")
	if len(lang) < 2 || len(lang) > 3 || !letters(lang) || len(region) > 4 || !vendorhttp.Alnum(region) || strings.Count(l, "-")+strings.Count(l, "_") > 1 {
		return ""
	}
	if region == "" {
		return strings.ToLower(lang)
	}
	return strings.ToLower(lang) + "-" + strings.ToUpper(region)
}

// regionOf is the ISO 3166 region of an E.164 number, "" when it has
// none, for the request PerSend gets on a Resend.
func regionOf(to string) string {
	if _, ok := vendorhttp.E164Digits(to); !ok {
		return ""
	}
	num, err := phonenumbers.Parse(to, "")
	if err != nil {
		return ""
	}
	return phonenumbers.GetRegionCodeForNumber(num)
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// mustJSON marshals a map of strings, which cannot fail.
func mustJSON(v map[string]string) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("twilio: " + err.Error())
	}
	return b
}
