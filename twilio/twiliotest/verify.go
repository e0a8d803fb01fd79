package twiliotest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

type verification struct {
	sid, to, channel, code string
	status                 string // pending, approved, canceled, expired, max_attempts_reached
	created, updated       time.Time
	expires                time.Time
	sends                  []time.Time
	checks                 int
}

var (
	e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	codeRE = regexp.MustCompile(`^[0-9A-Za-z]{4,10}$`)
)

// live moves v to "expired" when its time is up and reports whether it is
// pending. The caller holds s.mu.
func (s *Server) live(v *verification, now time.Time) bool {
	if v.status == "pending" && !now.Before(v.expires) {
		s.end(v, "expired", now)
	}
	return v.status == "pending"
}

// end gives v its final status; Twilio then deletes it.
func (s *Server) end(v *verification, status string, now time.Time) {
	v.status, v.updated = status, now
	if s.pending[v.to] == v.sid {
		delete(s.pending, v.to)
	}
}

// refusal is the HTTP status of a code in Config.Refuse.
func refusal(code int) int {
	switch {
	case code == 60204 || code == 60205 || code == 60410 || code == 60605:
		return http.StatusForbidden
	case code >= 60202 && code <= 60212:
		return http.StatusTooManyRequests
	case code == 20003:
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

func (s *Server) start(w http.ResponseWriter, form url.Values, identity string) {
	to, ch := form.Get("To"), form.Get("Channel")
	switch {
	case to == "":
		twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: To")
		return
	case !slices.Contains([]string{"sms", "call", "whatsapp", "email", "sna", "auto"}, ch):
		twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: Channel")
		return
	case !slices.Contains(s.cfg.Channels, ch):
		twilioError(w, http.StatusBadRequest, 60223, "Delivery channel disabled: "+ch)
		return
	case ch == "email" && !strings.Contains(to, "@"), ch != "email" && !e164RE.MatchString(to):
		twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter `To`: "+to)
		return
	}
	if msg, code, status := s.badParams(form, ch); code != 0 {
		twilioError(w, status, code, msg)
		return
	}
	if code, ok := s.cfg.Refuse[to]; ok && !(ch == "sms" && form.Get("RiskCheck") == "disable" && (code == 60410 || code == 60605)) {
		twilioError(w, refusal(code), code, "Refused by the fake's Config.Refuse")
		return
	}
	now := s.cfg.Clock.Now()
	var v *verification
	if sid, ok := s.pending[to]; ok && s.live(s.vs[sid], now) {
		v = s.vs[sid]
		if ch != v.channel && s.cfg.NewSIDOnChannelChange {
			s.end(v, "canceled", now)
			v = nil
		}
	}
	resend := v != nil
	switch {
	case resend && len(v.sends) >= s.cfg.MaxSends:
		twilioError(w, http.StatusTooManyRequests, 60203, "Max send attempts reached")
		return
	case resend:
		v.channel, v.updated = ch, now
		v.sends = append(v.sends, now)
	default:
		code := form.Get("CustomCode")
		if code == "" {
			code = s.newCode()
		}
		v = &verification{sid: newSID("VE"), to: to, channel: ch, code: code, status: "pending",
			created: now, updated: now, expires: now.Add(s.cfg.TTL), sends: []time.Time{now}}
		s.vs[v.sid] = v
		s.pending[to] = v.sid
	}
	s.sends = append(s.sends, Send{SID: v.sid, To: to, Channel: ch, Code: v.code, Resend: resend,
		Params: form, Identity: identity, At: now})
	writeJSON(w, http.StatusCreated, s.resource(v, true))
}

// badParams checks a start's optional parameters as Twilio does.
func (s *Server) badParams(form url.Values, ch string) (msg string, code, status int) {
	jsonObject := func(k string) bool {
		var m map[string]string
		return form.Get(k) == "" || json.Unmarshal([]byte(form.Get(k)), &m) == nil
	}
	switch {
	case form.Get("CustomCode") != "" && !s.cfg.CustomCodes:
		return "Custom code not allowed", 60204, http.StatusForbidden
	case form.Get("CustomCode") != "" && !codeRE.MatchString(form.Get("CustomCode")):
		return "Invalid parameter: CustomCode", 60200, http.StatusBadRequest
	case form.Get("CustomFriendlyName") != "" && !s.cfg.CustomFriendlyName:
		return "Custom friendly name not allowed", 60204, http.StatusForbidden
	case form.Get("AppHash") != "" && ch != "sms":
		return "AppHash is only supported for SMS", 60602, http.StatusBadRequest
	case form.Get("TemplateSid") != "" && ch != "sms":
		return "TemplateSid is only supported for SMS", 60408, http.StatusBadRequest
	case !jsonObject("RateLimits"):
		return "Invalid parameter: RateLimits", 60200, http.StatusBadRequest
	case !jsonObject("TemplateCustomSubstitutions"):
		return "Invalid parameter: TemplateCustomSubstitutions", 60200, http.StatusBadRequest
	case form.Get("RiskCheck") != "" && form.Get("RiskCheck") != "enable" && form.Get("RiskCheck") != "disable":
		return "Invalid parameter: RiskCheck", 60200, http.StatusBadRequest
	}
	if ip := form.Get("DeviceIp"); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "Invalid parameter: DeviceIp", 60200, http.StatusBadRequest
		}
	}
	return "", 0, 0
}

func (s *Server) check(w http.ResponseWriter, form url.Values) {
	sid, to, code := form.Get("VerificationSid"), form.Get("To"), form.Get("Code")
	switch {
	case sid == "" && to == "":
		twilioError(w, http.StatusBadRequest, 60221, "No target verification specified")
		return
	case !codeRE.MatchString(code):
		twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: Code")
		return
	}
	if sid == "" {
		sid = s.pending[to]
	}
	now := s.cfg.Clock.Now()
	v, ok := s.vs[sid]
	if !ok || !s.live(v, now) {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource /Services/"+s.cfg.ServiceSID+"/VerificationCheck was not found")
		return
	}
	if v.checks >= s.cfg.MaxChecks {
		// The check after the last ends the verification: later ones
		// find nothing.
		s.end(v, "max_attempts_reached", now)
		if s.cfg.MaxChecksStatus == http.StatusTooManyRequests {
			twilioError(w, http.StatusTooManyRequests, 60202, "Max check attempts reached")
			return
		}
		twilioError(w, http.StatusNotFound, 20404, "The requested resource /Services/"+s.cfg.ServiceSID+"/VerificationCheck was not found")
		return
	}
	v.checks++
	v.updated = now
	if code == v.code {
		s.end(v, "approved", now)
	}
	writeJSON(w, http.StatusOK, s.resource(v, false))
}

func (s *Server) fetch(w http.ResponseWriter, sid string) {
	v, ok := s.vs[sid]
	if !ok || !s.live(v, s.cfg.Clock.Now()) {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource /Services/"+s.cfg.ServiceSID+"/Verifications/"+sid+" was not found")
		return
	}
	writeJSON(w, http.StatusOK, s.resource(v, true))
}

func (s *Server) update(w http.ResponseWriter, sid string, form url.Values) {
	status := form.Get("Status")
	if status != "canceled" && status != "approved" {
		twilioError(w, http.StatusBadRequest, 60200, "Invalid parameter: Status")
		return
	}
	now := s.cfg.Clock.Now()
	v, ok := s.vs[sid]
	if !ok || !s.live(v, now) {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource /Services/"+s.cfg.ServiceSID+"/Verifications/"+sid+" was not found")
		return
	}
	s.end(v, status, now)
	writeJSON(w, http.StatusOK, s.resource(v, true))
}

// resource is v as Twilio returns it: a Verification (full) or a
// VerificationCheck.
func (s *Server) resource(v *verification, full bool) map[string]any {
	out := map[string]any{"sid": v.sid, "service_sid": s.cfg.ServiceSID, "account_sid": s.cfg.AccountSID,
		"to": v.to, "channel": v.channel, "status": v.status, "valid": v.status == "approved",
		"amount": nil, "payee": nil, "date_created": v.created.UTC().Format(time.RFC3339),
		"date_updated": v.updated.UTC().Format(time.RFC3339)}
	if !full {
		out["sna_attempts_error_codes"] = []any{}
		return out
	}
	attempts := make([]map[string]any, 0, len(v.sends))
	for _, at := range v.sends {
		attempts = append(attempts, map[string]any{"time": at.UTC().Format(time.RFC3339), "channel": strings.ToUpper(v.channel),
			"attempt_sid": newSID("VL")})
	}
	out["send_code_attempts"] = attempts
	out["lookup"] = map[string]any{}
	out["sna"] = nil
	out["url"] = "https://verify.twilio.com/v2/Services/" + s.cfg.ServiceSID + "/Verifications/" + v.sid
	return out
}

func (s *Server) newCode() string {
	if s.cfg.Code != "" {
		return s.cfg.Code
	}
	b := make([]byte, s.cfg.CodeLength)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}
