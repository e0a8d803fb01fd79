package infobip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/otpkit/otp/internal/vendorhttp"
)

// Application is an Infobip 2FA application: the PIN rules shared by its
// message templates.
type Application struct {
	// ID is Infobip's applicationId; empty when creating.
	ID string
	// Name identifies the application for EnsureSetup. Required.
	Name string
	// Disabled stops the application from starting PINs. Zero: enabled.
	Disabled bool
	// Config holds the PIN rules.
	Config AppConfig
}

// AppConfig is a 2FA application's configuration. Limits are Infobip's
// strings: a duration is "{length}{unit}" with unit ms, s, m, h or d
// ("15m"); a rate is "{count}/{duration}" ("3/1d").
type AppConfig struct {
	// PinAttempts is how many wrong PINs a PIN survives. 0: Infobip's
	// default, 10. Keep it at least otp.Config.MaxAttempts.
	PinAttempts int
	// AllowMultiplePinVerifications lets a PIN be verified more than
	// once. Zero false: once, which suits otp.Verifier (it consumes a
	// verification once). Infobip's own default is true.
	AllowMultiplePinVerifications bool
	// PinTimeToLive is how long a PIN stays valid. "": Infobip's default,
	// "15m".
	PinTimeToLive string
	// VerifyPinLimit limits verify calls per destination. "": "1/3s".
	VerifyPinLimit string
	// SendPinPerApplicationLimit limits sends for the whole application.
	// "": "10000/1d".
	SendPinPerApplicationLimit string
	// SendPinPerPhoneNumberLimit limits sends to one destination.
	// "": "3/1d".
	SendPinPerPhoneNumberLimit string
}

// PinType is the alphabet of the PINs a template generates.
type PinType string

// PIN types.
const (
	Numeric      PinType = "NUMERIC"
	Alpha        PinType = "ALPHA"
	Hex          PinType = "HEX"
	Alphanumeric PinType = "ALPHANUMERIC"
)

// Message is a 2FA message template. An SMS or voice template has Text; an
// email template has EmailTemplateID instead.
type Message struct {
	// ID is Infobip's messageId; empty when creating.
	ID string
	// Text is the SMS text or voice script; it must contain "{{pin}}".
	Text string
	// PinType is the PIN's alphabet. Zero: Numeric, the only type
	// otp.Verifier accepts.
	PinType PinType
	// PinLength is the number of characters in the PIN; set it to
	// otp.Config.CodeLength. 0: Infobip's default (4 for email).
	PinLength int
	// SenderID is the sender name or number. "": Infobip's default.
	SenderID string
	// Language is the voice language ("en", "de", "pt_br", ...).
	// "": Infobip's default, "en".
	Language string
	// VoiceName, RepeatDTMF and SpeechRate tune voice calls; zero values
	// leave Infobip's defaults.
	VoiceName  string
	RepeatDTMF string
	SpeechRate float64
	// EmailTemplateID is the Infobip email template (made in the portal)
	// of an email 2FA template; non-zero makes this an email template.
	EmailTemplateID int64
	// From is the sender address of an email template.
	From string
	// LandingPageID is the email template's landing page, if any.
	LandingPageID string
	// IndiaDLT is the SMS template's registration under India's DLT rules
	// (TRAI's Telecom Commercial Communications Customer Preference
	// Regulations, 2018), sent as regional.indiaDlt: without it Indian
	// operators drop the SMS. Zero: none.
	IndiaDLT IndiaDLT
}

// IndiaDLT is an SMS template's Distributed Ledger Technology
// registration in India. PrincipalEntityID is required when any field is
// set.
type IndiaDLT struct {
	// PrincipalEntityID is the sender's DLT principal entity ID (up to 30
	// characters).
	PrincipalEntityID string
	// ContentTemplateID is the DLT content template ID that matches the
	// template's text (up to 30 characters).
	ContentTemplateID string
	// TeleMarketerID is the telemarketer ID aggregators must give (up to
	// 255 characters).
	TeleMarketerID string
}

type appWire struct {
	ApplicationID string         `json:"applicationId,omitempty"`
	Name          string         `json:"name"`
	Enabled       *bool          `json:"enabled,omitempty"`
	Configuration *appConfigWire `json:"configuration,omitempty"`
}

type appConfigWire struct {
	PinAttempts                   int    `json:"pinAttempts,omitempty"`
	AllowMultiplePinVerifications *bool  `json:"allowMultiplePinVerifications,omitempty"`
	PinTimeToLive                 string `json:"pinTimeToLive,omitempty"`
	VerifyPinLimit                string `json:"verifyPinLimit,omitempty"`
	SendPinPerApplicationLimit    string `json:"sendPinPerApplicationLimit,omitempty"`
	SendPinPerPhoneNumberLimit    string `json:"sendPinPerPhoneNumberLimit,omitempty"`
}

func (a Application) wire() appWire {
	enabled, multiple := !a.Disabled, a.Config.AllowMultiplePinVerifications
	return appWire{Name: a.Name, Enabled: &enabled, Configuration: &appConfigWire{
		PinAttempts:                   a.Config.PinAttempts,
		AllowMultiplePinVerifications: &multiple,
		PinTimeToLive:                 a.Config.PinTimeToLive,
		VerifyPinLimit:                a.Config.VerifyPinLimit,
		SendPinPerApplicationLimit:    a.Config.SendPinPerApplicationLimit,
		SendPinPerPhoneNumberLimit:    a.Config.SendPinPerPhoneNumberLimit,
	}}
}

// application converts what Infobip returned, filling its documented
// defaults for missing fields.
func (w appWire) application() (Application, error) {
	if !vendorhttp.ValidID(w.ApplicationID) {
		return Application{}, errors.New("no usable applicationId")
	}
	a := Application{ID: w.ApplicationID, Name: w.Name, Disabled: w.Enabled != nil && !*w.Enabled}
	a.Config.AllowMultiplePinVerifications = true
	if c := w.Configuration; c != nil {
		a.Config = AppConfig{
			PinAttempts:                   c.PinAttempts,
			AllowMultiplePinVerifications: c.AllowMultiplePinVerifications == nil || *c.AllowMultiplePinVerifications,
			PinTimeToLive:                 c.PinTimeToLive,
			VerifyPinLimit:                c.VerifyPinLimit,
			SendPinPerApplicationLimit:    c.SendPinPerApplicationLimit,
			SendPinPerPhoneNumberLimit:    c.SendPinPerPhoneNumberLimit,
		}
	}
	return a, nil
}

type messageWire struct {
	MessageID       string  `json:"messageId,omitempty"`
	MessageText     string  `json:"messageText,omitempty"`
	PinType         PinType `json:"pinType,omitempty"`
	PinLength       int     `json:"pinLength,omitempty"`
	SenderID        string  `json:"senderId,omitempty"`
	Language        string  `json:"language,omitempty"`
	VoiceName       string  `json:"voiceName,omitempty"`
	RepeatDTMF      string  `json:"repeatDTMF,omitempty"`
	SpeechRate      float64 `json:"speechRate,omitempty"`
	EmailTemplateID int64   `json:"emailTemplateId,omitempty"`
	From            string  `json:"from,omitempty"`
	LandingPageID   string  `json:"landingPageId,omitempty"`
	Regional        *struct {
		IndiaDLT *indiaDLTWire `json:"indiaDlt,omitempty"`
	} `json:"regional,omitempty"`
}

type indiaDLTWire struct {
	PrincipalEntityID string `json:"principalEntityId"`
	ContentTemplateID string `json:"contentTemplateId,omitempty"`
	TeleMarketerID    string `json:"teleMarketerId,omitempty"`
}

func (m Message) wire() messageWire {
	pt := m.PinType
	if pt == "" {
		pt = Numeric
	}
	w := messageWire{
		MessageText: m.Text, PinType: pt, PinLength: m.PinLength, SenderID: m.SenderID,
		Language: m.Language, VoiceName: m.VoiceName, RepeatDTMF: m.RepeatDTMF, SpeechRate: m.SpeechRate,
		EmailTemplateID: m.EmailTemplateID, From: m.From, LandingPageID: m.LandingPageID,
	}
	if d := m.IndiaDLT; d != (IndiaDLT{}) {
		w.Regional = &struct {
			IndiaDLT *indiaDLTWire `json:"indiaDlt,omitempty"`
		}{&indiaDLTWire{PrincipalEntityID: d.PrincipalEntityID, ContentTemplateID: d.ContentTemplateID, TeleMarketerID: d.TeleMarketerID}}
	}
	return w
}

func (w messageWire) message() (Message, error) {
	if !vendorhttp.ValidID(w.MessageID) {
		return Message{}, errors.New("no usable messageId")
	}
	m := Message{
		ID: w.MessageID, Text: w.MessageText, PinType: w.PinType, PinLength: w.PinLength, SenderID: w.SenderID,
		Language: w.Language, VoiceName: w.VoiceName, RepeatDTMF: w.RepeatDTMF, SpeechRate: w.SpeechRate,
		EmailTemplateID: w.EmailTemplateID, From: w.From, LandingPageID: w.LandingPageID,
	}
	if w.Regional != nil && w.Regional.IndiaDLT != nil {
		d := w.Regional.IndiaDLT
		m.IndiaDLT = IndiaDLT{PrincipalEntityID: d.PrincipalEntityID, ContentTemplateID: d.ContentTemplateID, TeleMarketerID: d.TeleMarketerID}
	}
	return m, nil
}

// Decoders of the setup answers. Each needs a JSON object (or array of
// them) with a usable ID; anything else is malformed.

func decodeApplication(body []byte) (Application, error) {
	var w appWire
	if err := unmarshalObject(body, &w); err != nil {
		return Application{}, malformed(err)
	}
	a, err := w.application()
	if err != nil {
		return Application{}, malformed(err)
	}
	return a, nil
}

func decodeApplications(body []byte) ([]Application, error) {
	var ws []appWire
	if err := unmarshalArray(body, &ws); err != nil {
		return nil, malformed(err)
	}
	out := make([]Application, 0, len(ws))
	for _, w := range ws {
		a, err := w.application()
		if err != nil {
			return nil, malformed(err)
		}
		out = append(out, a)
	}
	return out, nil
}

func decodeMessage(body []byte) (Message, error) {
	var w messageWire
	if err := unmarshalObject(body, &w); err != nil {
		return Message{}, malformed(err)
	}
	m, err := w.message()
	if err != nil {
		return Message{}, malformed(err)
	}
	return m, nil
}

func decodeMessages(body []byte) ([]Message, error) {
	var ws []messageWire
	if err := unmarshalArray(body, &ws); err != nil {
		return nil, malformed(err)
	}
	out := make([]Message, 0, len(ws))
	for _, w := range ws {
		m, err := w.message()
		if err != nil {
			return nil, malformed(err)
		}
		out = append(out, m)
	}
	return out, nil
}

func unmarshalArray(body []byte, v any) error {
	b := strings.TrimSpace(string(body))
	if b == "" || b[0] != '[' {
		return errors.New("not a JSON array")
	}
	return json.Unmarshal([]byte(b), v)
}

var (
	durationRE = regexp.MustCompile(`^[0-9]*(ms|s|m|h|d)$`)
	rateRE     = regexp.MustCompile(`^[0-9]+/[0-9]*(ms|s|m|h|d)$`)
)

func (a Application) validate() error {
	if strings.TrimSpace(a.Name) == "" {
		return errors.New("infobip: Application.Name is required")
	}
	c := a.Config
	if c.PinAttempts < 0 {
		return errors.New("infobip: AppConfig.PinAttempts is negative")
	}
	if c.PinTimeToLive != "" && !durationRE.MatchString(c.PinTimeToLive) {
		return fmt.Errorf("infobip: AppConfig.PinTimeToLive %q is not like \"15m\"", c.PinTimeToLive)
	}
	for name, v := range map[string]string{
		"VerifyPinLimit":             c.VerifyPinLimit,
		"SendPinPerApplicationLimit": c.SendPinPerApplicationLimit,
		"SendPinPerPhoneNumberLimit": c.SendPinPerPhoneNumberLimit,
	} {
		if v != "" && !rateRE.MatchString(v) {
			return fmt.Errorf("infobip: AppConfig.%s %q is not like \"3/1d\"", name, v)
		}
	}
	return nil
}

func (m Message) validate() error {
	switch m.PinType {
	case "", Numeric, Alpha, Hex, Alphanumeric:
	default:
		return fmt.Errorf("infobip: Message.PinType %q is unknown", m.PinType)
	}
	if m.PinLength < 0 {
		return errors.New("infobip: Message.PinLength is negative")
	}
	if m.EmailTemplateID == 0 && !strings.Contains(m.Text, "{{pin}}") {
		return errors.New("infobip: Message.Text must contain {{pin}}")
	}
	if d := m.IndiaDLT; d != (IndiaDLT{}) {
		switch {
		case m.EmailTemplateID != 0:
			return errors.New("infobip: Message.IndiaDLT is for SMS templates")
		case d.PrincipalEntityID == "":
			return errors.New("infobip: Message.IndiaDLT needs a PrincipalEntityID")
		case len(d.PrincipalEntityID) > 30 || len(d.ContentTemplateID) > 30 || len(d.TeleMarketerID) > 255:
			return errors.New("infobip: Message.IndiaDLT IDs are too long (30, 30 and 255 characters at most)")
		}
	}
	return nil
}

// Applications lists the account's 2FA applications.
func (c *Client) Applications(ctx context.Context) ([]Application, error) {
	r, err := c.call(ctx, opRead, http.MethodGet, "/2fa/2/applications", nil)
	if err != nil {
		return nil, err
	}
	apps, err := decodeApplications(r.Body)
	return apps, c.failure(opRead, r, err)
}

// Application reads one 2FA application. An unknown id is a
// *otp.ProviderError matching otp.ErrNotFound.
func (c *Client) Application(ctx context.Context, id string) (Application, error) {
	r, err := c.call(ctx, opRead, http.MethodGet, vendorhttp.Path("/2fa/2/applications/%s", id), nil)
	if err != nil {
		return Application{}, err
	}
	a, err := decodeApplication(r.Body)
	return a, c.failure(opRead, r, err)
}

// CreateApplication creates a 2FA application and returns it with its ID.
// It is never retried once the request may have reached Infobip (a
// temporary *otp.ProviderError with NotSent false): rerun EnsureSetup,
// which finds it by name, instead.
func (c *Client) CreateApplication(ctx context.Context, a Application) (Application, error) {
	if err := a.validate(); err != nil {
		return Application{}, err
	}
	r, err := c.call(ctx, opCreate, http.MethodPost, "/2fa/2/applications", a.wire())
	if err != nil {
		return Application{}, err
	}
	a, err = decodeApplication(r.Body)
	return a, c.failure(opCreate, r, err)
}

// UpdateApplication replaces the name and configuration of application
// a.ID with a's.
func (c *Client) UpdateApplication(ctx context.Context, a Application) (Application, error) {
	if a.ID == "" {
		return Application{}, errors.New("infobip: Application.ID is required to update")
	}
	if err := a.validate(); err != nil {
		return Application{}, err
	}
	r, err := c.call(ctx, opUpdate, http.MethodPut, vendorhttp.Path("/2fa/2/applications/%s", a.ID), a.wire())
	if err != nil {
		return Application{}, err
	}
	a, err = decodeApplication(r.Body)
	return a, c.failure(opUpdate, r, err)
}

// Messages lists the message templates of application appID.
func (c *Client) Messages(ctx context.Context, appID string) ([]Message, error) {
	r, err := c.call(ctx, opRead, http.MethodGet, vendorhttp.Path("/2fa/2/applications/%s/messages", appID), nil)
	if err != nil {
		return nil, err
	}
	ms, err := decodeMessages(r.Body)
	return ms, c.failure(opRead, r, err)
}

// Message reads one message template of application appID.
func (c *Client) Message(ctx context.Context, appID, msgID string) (Message, error) {
	r, err := c.call(ctx, opRead, http.MethodGet, vendorhttp.Path("/2fa/2/applications/%s/messages/%s", appID, msgID), nil)
	if err != nil {
		return Message{}, err
	}
	m, err := decodeMessage(r.Body)
	return m, c.failure(opRead, r, err)
}

// CreateMessage creates a message template in application appID: an
// email template when m.EmailTemplateID is set, an SMS/voice one
// otherwise. Like CreateApplication it is never blindly retried.
func (c *Client) CreateMessage(ctx context.Context, appID string, m Message) (Message, error) {
	if err := m.validate(); err != nil {
		return Message{}, err
	}
	path := vendorhttp.Path("/2fa/2/applications/%s/messages", appID)
	if m.EmailTemplateID != 0 {
		path = vendorhttp.Path("/2fa/2/applications/%s/email/messages", appID)
	}
	r, err := c.call(ctx, opCreate, http.MethodPost, path, m.wire())
	if err != nil {
		return Message{}, err
	}
	m, err = decodeMessage(r.Body)
	return m, c.failure(opCreate, r, err)
}

// UpdateMessage replaces template m.ID of application appID with m.
func (c *Client) UpdateMessage(ctx context.Context, appID string, m Message) (Message, error) {
	if m.ID == "" {
		return Message{}, errors.New("infobip: Message.ID is required to update")
	}
	if err := m.validate(); err != nil {
		return Message{}, err
	}
	path := vendorhttp.Path("/2fa/2/applications/%s/messages/%s", appID, m.ID)
	if m.EmailTemplateID != 0 {
		path = vendorhttp.Path("/2fa/2/applications/%s/email/messages/%s", appID, m.ID)
	}
	r, err := c.call(ctx, opUpdate, http.MethodPut, path, m.wire())
	if err != nil {
		return Message{}, err
	}
	m, err = decodeMessage(r.Body)
	return m, c.failure(opUpdate, r, err)
}

// Setup is what EnsureSetup makes exist.
type Setup struct {
	// Application is found by its Name, created when missing and updated
	// when its Disabled or Config differ.
	Application Application
	// SMS, Voice and Email are the templates per channel; nil means none.
	// An SMS or voice template is found by its Text, an email template by
	// its EmailTemplateID; one found with other settings is updated. SMS
	// and Voice may be the same template; with the same Text they must
	// be.
	SMS, Voice, Email *Message
}

// SetupIDs are the IDs to put in Config.
type SetupIDs struct {
	ApplicationID, SMSMessageID, VoiceMessageID, EmailMessageID string
}

// EnsureSetup finds or creates the application and templates s describes
// and returns their IDs. Running it again with the same s changes nothing
// and returns the same IDs. Two applications with s.Application.Name are
// an error: it cannot tell which one is meant.
func (c *Client) EnsureSetup(ctx context.Context, s Setup) (SetupIDs, error) {
	if err := s.Application.validate(); err != nil {
		return SetupIDs{}, err
	}
	for _, m := range []*Message{s.SMS, s.Voice, s.Email} {
		if m == nil {
			continue
		}
		if err := m.validate(); err != nil {
			return SetupIDs{}, err
		}
	}
	if s.SMS != nil && s.Voice != nil && s.SMS.Text == s.Voice.Text && *s.SMS != *s.Voice {
		return SetupIDs{}, errors.New("infobip: the SMS and voice templates share a text but not their settings")
	}
	app, err := c.ensureApplication(ctx, s.Application)
	if err != nil {
		return SetupIDs{}, err
	}
	ids := SetupIDs{ApplicationID: app.ID}
	have, err := c.Messages(ctx, app.ID)
	if err != nil {
		return SetupIDs{}, err
	}
	for _, w := range []struct {
		m  *Message
		id *string
	}{{s.SMS, &ids.SMSMessageID}, {s.Voice, &ids.VoiceMessageID}, {s.Email, &ids.EmailMessageID}} {
		if w.m == nil {
			continue
		}
		m, err := c.ensureMessage(ctx, app.ID, *w.m, &have)
		if err != nil {
			return SetupIDs{}, err
		}
		*w.id = m.ID
	}
	return ids, nil
}

func (c *Client) ensureApplication(ctx context.Context, want Application) (Application, error) {
	apps, err := c.Applications(ctx)
	if err != nil {
		return Application{}, err
	}
	var found []Application
	for _, a := range apps {
		if a.Name == want.Name {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return c.CreateApplication(ctx, want)
	case 1:
	default:
		return Application{}, fmt.Errorf("infobip: %d applications are named %q", len(found), want.Name)
	}
	got := found[0]
	if got.Disabled == want.Disabled && sameConfig(got.Config, want.Config) {
		return got, nil
	}
	want.ID = got.ID
	return c.UpdateApplication(ctx, want)
}

// sameConfig reports whether have already has every setting want states.
func sameConfig(have, want AppConfig) bool {
	same := func(h, w string) bool { return w == "" || h == w }
	return (want.PinAttempts == 0 || have.PinAttempts == want.PinAttempts) &&
		have.AllowMultiplePinVerifications == want.AllowMultiplePinVerifications &&
		same(have.PinTimeToLive, want.PinTimeToLive) &&
		same(have.VerifyPinLimit, want.VerifyPinLimit) &&
		same(have.SendPinPerApplicationLimit, want.SendPinPerApplicationLimit) &&
		same(have.SendPinPerPhoneNumberLimit, want.SendPinPerPhoneNumberLimit)
}

// ensureMessage finds want among have (by Text, or EmailTemplateID for an
// email template), updating it when its settings differ, or creates it and
// adds it to have.
func (c *Client) ensureMessage(ctx context.Context, appID string, want Message, have *[]Message) (Message, error) {
	for i, m := range *have {
		if (want.EmailTemplateID != 0 && m.EmailTemplateID == want.EmailTemplateID) ||
			(want.EmailTemplateID == 0 && m.EmailTemplateID == 0 && m.Text == want.Text) {
			if sameMessage(m, want) {
				return m, nil
			}
			want.ID = m.ID
			got, err := c.UpdateMessage(ctx, appID, want)
			if err == nil {
				(*have)[i] = got
			}
			return got, err
		}
	}
	got, err := c.CreateMessage(ctx, appID, want)
	if err == nil {
		*have = append(*have, got)
	}
	return got, err
}

// sameMessage reports whether have already has every setting want states.
func sameMessage(have, want Message) bool {
	same := func(h, w string) bool { return w == "" || h == w }
	pt := want.PinType
	if pt == "" {
		pt = Numeric
	}
	return (have.PinType == pt || (have.PinType == "" && pt == Numeric)) &&
		(want.PinLength == 0 || have.PinLength == want.PinLength) &&
		same(have.SenderID, want.SenderID) && same(have.Language, want.Language) &&
		same(have.VoiceName, want.VoiceName) && same(have.RepeatDTMF, want.RepeatDTMF) &&
		(want.SpeechRate == 0 || have.SpeechRate == want.SpeechRate) &&
		same(have.From, want.From) && same(have.LandingPageID, want.LandingPageID) &&
		(want.IndiaDLT == IndiaDLT{} || have.IndiaDLT == want.IndiaDLT)
}
