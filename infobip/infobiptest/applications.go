package infobiptest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

type app struct {
	id       string
	name     string
	enabled  bool
	cfg      appConfig
	messages map[string]*message
	order    []string
}

type appConfig struct {
	PinAttempts                   int    `json:"pinAttempts"`
	AllowMultiplePinVerifications bool   `json:"allowMultiplePinVerifications"`
	PinTimeToLive                 string `json:"pinTimeToLive"`
	VerifyPinLimit                string `json:"verifyPinLimit"`
	SendPinPerApplicationLimit    string `json:"sendPinPerApplicationLimit"`
	SendPinPerPhoneNumberLimit    string `json:"sendPinPerPhoneNumberLimit"`
}

var defaultAppConfig = appConfig{
	PinAttempts: 10, AllowMultiplePinVerifications: true, PinTimeToLive: "15m",
	VerifyPinLimit: "1/3s", SendPinPerApplicationLimit: "10000/1d", SendPinPerPhoneNumberLimit: "3/1d",
}

type message struct {
	MessageID       string  `json:"messageId"`
	ApplicationID   string  `json:"applicationId"`
	PinPlaceholder  string  `json:"pinPlaceholder,omitempty"`
	MessageText     string  `json:"messageText,omitempty"`
	PinLength       int     `json:"pinLength,omitempty"`
	PinType         string  `json:"pinType,omitempty"`
	Language        string  `json:"language,omitempty"`
	VoiceName       string  `json:"voiceName,omitempty"`
	SenderID        string  `json:"senderId,omitempty"`
	RepeatDTMF      string  `json:"repeatDTMF,omitempty"`
	SpeechRate      float64 `json:"speechRate,omitempty"`
	EmailTemplateID int64   `json:"emailTemplateId,omitempty"`
	From            string  `json:"from,omitempty"`
	LandingPageID   string  `json:"landingPageId,omitempty"`
	Regional        *struct {
		IndiaDLT *IndiaDLT `json:"indiaDlt,omitempty"`
	} `json:"regional,omitempty"`
}

// IndiaDLT is a template's regional.indiaDlt: India's DLT registration.
type IndiaDLT struct {
	PrincipalEntityID string `json:"principalEntityId"`           // required
	ContentTemplateID string `json:"contentTemplateId,omitempty"` // the DLT template
	TeleMarketerID    string `json:"teleMarketerId,omitempty"`    // for aggregators
}

// AppConfig configures an application made with AddApplication. Zero
// fields take Infobip's defaults, except AllowMultiplePinVerifications,
// whose zero value false differs from Infobip's default (true).
type AppConfig struct {
	PinAttempts                   int    // default 10
	AllowMultiplePinVerifications bool   // Infobip's default is true
	PinTimeToLive                 string // default "15m"
	VerifyPinLimit                string // default "1/3s"
	SendPinPerApplicationLimit    string // default "10000/1d"
	SendPinPerPhoneNumberLimit    string // default "3/1d"
}

// Message configures a template made with AddMessage.
type Message struct {
	Text      string // must contain "{{pin}}" unless Email
	PinLength int    // default 4
	PinType   string // NUMERIC (default), ALPHA, HEX or ALPHANUMERIC
	SenderID  string
	// Email makes an email template (for /2fa/2/pin/email).
	Email bool
	// IndiaDLT, if set, is the template's DLT registration.
	IndiaDLT *IndiaDLT
}

// AddApplication creates an enabled application directly, as the portal
// would, and returns its ID.
func (s *Server) AddApplication(name string, c AppConfig) string {
	cfg := defaultAppConfig
	cfg.AllowMultiplePinVerifications = c.AllowMultiplePinVerifications
	if c.PinAttempts > 0 {
		cfg.PinAttempts = c.PinAttempts
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&cfg.PinTimeToLive, c.PinTimeToLive}, {&cfg.VerifyPinLimit, c.VerifyPinLimit},
		{&cfg.SendPinPerApplicationLimit, c.SendPinPerApplicationLimit},
		{&cfg.SendPinPerPhoneNumberLimit, c.SendPinPerPhoneNumberLimit},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newApp(name, true, cfg).id
}

// AddMessage creates a template in application appID directly and returns
// its ID. It panics if appID is unknown: a test's setup is wrong.
func (s *Server) AddMessage(appID string, m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		panic("infobiptest: AddMessage: unknown application " + appID)
	}
	msg := &message{MessageText: m.Text, PinLength: m.PinLength, PinType: m.PinType, SenderID: m.SenderID}
	if m.IndiaDLT != nil {
		d := *m.IndiaDLT
		msg.Regional = &struct {
			IndiaDLT *IndiaDLT `json:"indiaDlt,omitempty"`
		}{&d}
	}
	if m.Email {
		msg.EmailTemplateID = 1
	}
	return s.addMessage(a, msg).MessageID
}

func (s *Server) newApp(name string, enabled bool, cfg appConfig) *app {
	a := &app{id: newID(16), name: name, enabled: enabled, cfg: cfg, messages: map[string]*message{}}
	s.apps[a.id] = a
	s.appOrder = append(s.appOrder, a.id)
	return a
}

func (s *Server) addMessage(a *app, m *message) *message {
	m.MessageID, m.ApplicationID = newID(16), a.id
	if m.PinType == "" {
		m.PinType = "NUMERIC"
	}
	if m.PinLength == 0 {
		m.PinLength = 4
	}
	if m.EmailTemplateID == 0 {
		m.PinPlaceholder = "{{pin}}"
		if m.Language == "" {
			m.Language = "en"
		}
	}
	a.messages[m.MessageID] = m
	a.order = append(a.order, m.MessageID)
	return m
}

type appJSON struct {
	ApplicationID string    `json:"applicationId"`
	Name          string    `json:"name"`
	Enabled       bool      `json:"enabled"`
	Configuration appConfig `json:"configuration"`
}

func (a *app) json() appJSON {
	return appJSON{ApplicationID: a.id, Name: a.name, Enabled: a.enabled, Configuration: a.cfg}
}

func (s *Server) listApps(http.ResponseWriter, *http.Request, []byte) (int, any) {
	out := []appJSON{}
	for _, id := range s.appOrder {
		out = append(out, s.apps[id].json())
	}
	return http.StatusOK, out
}

func (s *Server) getApp(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	return http.StatusOK, a.json()
}

var (
	durationRE = regexp.MustCompile(`^([0-9]*)(ms|s|m|h|d)$`)
	rateRE     = regexp.MustCompile(`^([0-9]+)/([0-9]*(?:ms|s|m|h|d))$`)
)

// decodeApp reads an application request over the defaults, or says which
// field is wrong.
func decodeApp(body []byte) (string, bool, appConfig, map[string]string) {
	var req struct {
		Name          string `json:"name"`
		Enabled       *bool  `json:"enabled"`
		Configuration *struct {
			PinAttempts                   *int   `json:"pinAttempts"`
			AllowMultiplePinVerifications *bool  `json:"allowMultiplePinVerifications"`
			PinTimeToLive                 string `json:"pinTimeToLive"`
			VerifyPinLimit                string `json:"verifyPinLimit"`
			SendPinPerApplicationLimit    string `json:"sendPinPerApplicationLimit"`
			SendPinPerPhoneNumberLimit    string `json:"sendPinPerPhoneNumberLimit"`
		} `json:"configuration"`
	}
	cfg := defaultAppConfig
	if err := json.Unmarshal(body, &req); err != nil {
		return "", false, cfg, map[string]string{"body": "malformed JSON"}
	}
	bad := map[string]string{}
	if strings.TrimSpace(req.Name) == "" {
		bad["name"] = "may not be null"
	}
	if c := req.Configuration; c != nil {
		if c.PinAttempts != nil {
			if *c.PinAttempts < 1 {
				bad["configuration.pinAttempts"] = "must be greater than 0"
			}
			cfg.PinAttempts = *c.PinAttempts
		}
		if c.AllowMultiplePinVerifications != nil {
			cfg.AllowMultiplePinVerifications = *c.AllowMultiplePinVerifications
		}
		for _, f := range []struct {
			name string
			dst  *string
			v    string
			re   *regexp.Regexp
		}{
			{"pinTimeToLive", &cfg.PinTimeToLive, c.PinTimeToLive, durationRE},
			{"verifyPinLimit", &cfg.VerifyPinLimit, c.VerifyPinLimit, rateRE},
			{"sendPinPerApplicationLimit", &cfg.SendPinPerApplicationLimit, c.SendPinPerApplicationLimit, rateRE},
			{"sendPinPerPhoneNumberLimit", &cfg.SendPinPerPhoneNumberLimit, c.SendPinPerPhoneNumberLimit, rateRE},
		} {
			if f.v == "" {
				continue
			}
			if !f.re.MatchString(f.v) {
				bad["configuration."+f.name] = "invalid format"
			}
			*f.dst = f.v
		}
	}
	return req.Name, req.Enabled == nil || *req.Enabled, cfg, bad
}

func (s *Server) createApp(_ http.ResponseWriter, _ *http.Request, body []byte) (int, any) {
	name, enabled, cfg, bad := decodeApp(body)
	if len(bad) > 0 {
		return errAnswer(http.StatusBadRequest, bad)
	}
	return http.StatusCreated, s.newApp(name, enabled, cfg).json()
}

func (s *Server) updateApp(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	name, enabled, cfg, bad := decodeApp(body)
	if len(bad) > 0 {
		return errAnswer(http.StatusBadRequest, bad)
	}
	a.name, a.enabled, a.cfg = name, enabled, cfg
	return http.StatusOK, a.json()
}

func (s *Server) listMessages(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	out := []*message{}
	for _, id := range a.order {
		out = append(out, a.messages[id])
	}
	return http.StatusOK, out
}

func (s *Server) getMessage(_ http.ResponseWriter, r *http.Request, _ []byte) (int, any) {
	a, ok := s.apps[r.PathValue("app")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	m, ok := a.messages[r.PathValue("msg")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	return http.StatusOK, m
}

var pinTypes = []string{"NUMERIC", "ALPHA", "HEX", "ALPHANUMERIC"}

// saveMessage creates (POST) or replaces (PUT) a template.
func (s *Server) saveMessage(email bool) handler {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
		a, ok := s.apps[r.PathValue("app")]
		if !ok {
			return errAnswer(http.StatusNotFound, nil)
		}
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			return errAnswer(http.StatusBadRequest, map[string]string{"body": "malformed JSON"})
		}
		bad := map[string]string{}
		if email && m.EmailTemplateID == 0 {
			bad["emailTemplateId"] = "may not be null"
		}
		if !email {
			m.EmailTemplateID = 0
			if !strings.Contains(m.MessageText, "{{pin}}") {
				bad["messageText"] = "must contain {{pin}}"
			}
			if m.PinType == "" {
				bad["pinType"] = "may not be null"
			}
		}
		if m.PinType != "" && !slices.Contains(pinTypes, m.PinType) {
			bad["pinType"] = "invalid value"
		}
		if m.PinLength < 0 || m.PinLength > 16 {
			bad["pinLength"] = "invalid value"
		}
		if m.Regional != nil && m.Regional.IndiaDLT != nil {
			d := m.Regional.IndiaDLT
			if d.PrincipalEntityID == "" || len(d.PrincipalEntityID) > 30 || len(d.ContentTemplateID) > 30 || len(d.TeleMarketerID) > 255 {
				bad["regional.indiaDlt"] = "invalid value"
			}
		}
		if len(bad) > 0 {
			return errAnswer(http.StatusBadRequest, bad)
		}
		if id := r.PathValue("msg"); id != "" {
			old, ok := a.messages[id]
			if !ok {
				return errAnswer(http.StatusNotFound, nil)
			}
			m.MessageID, m.ApplicationID, m.PinPlaceholder = old.MessageID, a.id, old.PinPlaceholder
			if m.PinLength == 0 {
				m.PinLength = old.PinLength
			}
			*old = m
			return http.StatusOK, old
		}
		return http.StatusOK, s.addMessage(a, &m)
	}
}
