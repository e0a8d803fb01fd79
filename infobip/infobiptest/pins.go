package infobiptest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpkit/otp"
)

// rate is a parsed "{count}/{length}{unit}" limit.
type rate struct {
	n      int
	window time.Duration
	ok     bool // false for text that is not a limit: no limit applies
}

type pin struct {
	id, appID, to, code string
	channel             otp.Channel
	expires             time.Time
	attemptsLeft        int
	verified            bool
}

type sendRequest struct {
	ApplicationID string            `json:"applicationId"`
	MessageID     string            `json:"messageId"`
	To            string            `json:"to"`
	From          string            `json:"from"`
	Placeholders  map[string]string `json:"placeholders"`
}

// badPlaceholders reports keys Infobip refuses: with braces, or "pin".
func badPlaceholders(m map[string]string) bool {
	for k := range m {
		if k == "" || k == "pin" || strings.ContainsAny(k, "{}") {
			return true
		}
	}
	return false
}

var digitsRE = regexp.MustCompile(`^[0-9]{6,15}$`)

func (s *Server) send(ch otp.Channel) handler {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
		var req sendRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return errAnswer(http.StatusBadRequest, map[string]string{"body": "malformed JSON"})
		}
		bad := map[string]string{}
		if req.ApplicationID == "" {
			bad["applicationId"] = "may not be null"
		}
		if req.MessageID == "" {
			bad["messageId"] = "may not be null"
		}
		if ch == otp.Email && !strings.Contains(req.To, "@") || ch != otp.Email && !digitsRE.MatchString(req.To) {
			bad["to"] = "invalid destination"
		}
		if badPlaceholders(req.Placeholders) {
			bad["placeholders"] = "keys must not contain curly brackets or pin"
		}
		if len(bad) > 0 {
			return errAnswer(http.StatusBadRequest, bad)
		}
		a, ok := s.apps[req.ApplicationID]
		var m *message
		if ok {
			m, ok = a.messages[req.MessageID]
		}
		if !ok {
			// V1 documents this text; its status is the fake's choice.
			return errAnswer(http.StatusNotFound, nil)
		}
		if !a.enabled || (m.EmailTemplateID != 0) != (ch == otp.Email) {
			return errAnswer(http.StatusBadRequest, map[string]string{"applicationId": "application disabled or template of another channel"})
		}
		now := s.cfg.Clock.Now()
		if !s.allow("app:"+a.id, a.cfg.SendPinPerApplicationLimit, now) ||
			!s.allow("to:"+a.id+":"+req.To, a.cfg.SendPinPerPhoneNumberLimit, now) {
			return errAnswer(http.StatusTooManyRequests, nil)
		}
		p := &pin{id: newID(16), appID: a.id, to: req.To, channel: ch, code: newPIN(m.PinType, m.PinLength),
			attemptsLeft: a.cfg.PinAttempts, expires: now.Add(parseDuration(a.cfg.PinTimeToLive))}
		s.pins[p.id] = p
		nc := ""
		if ch == otp.SMS {
			nc = r.URL.Query().Get("ncNeeded")
		}
		out := s.deliver(p, nc, nc != "false" && ch == otp.SMS, false, now)
		last := &s.sends[len(s.sends)-1]
		last.Placeholders, last.MessageID, last.From = req.Placeholders, m.MessageID, req.From
		if m.Regional != nil && m.Regional.IndiaDLT != nil {
			d := *m.Regional.IndiaDLT
			last.IndiaDLT = &d
		}
		return http.StatusOK, out
	}
}

// deliver records a delivery of p and builds the send/resend answer.
func (s *Server) deliver(p *pin, ncNeeded string, lookup, resend bool, now time.Time) map[string]any {
	out := map[string]any{"pinId": p.id, "to": p.to}
	sent := !slices.Contains(s.cfg.Undeliverable, p.to)
	if lookup {
		if slices.Contains(s.cfg.Unreachable, p.to) {
			out["ncStatus"], sent = "NC_DESTINATION_NOT_REACHABLE", false
		} else {
			out["ncStatus"] = "NC_DESTINATION_REACHABLE"
		}
	}
	switch p.channel {
	case otp.SMS:
		out["smsStatus"] = "MESSAGE_SENT"
		if !sent {
			out["smsStatus"] = "MESSAGE_NOT_SENT"
		}
	case otp.Voice:
		out["callStatus"] = "PENDING_ACCEPTED"
		if !sent {
			out["callStatus"] = "REJECTED_DESTINATION"
		}
	case otp.Email:
		out["emailStatus"] = map[string]string{"name": "PENDING_ACCEPTED", "description": "Message accepted, pending for delivery."}
		if !sent {
			out["emailStatus"] = map[string]string{"name": "REJECTED_DESTINATION", "description": "Message rejected."}
		}
	}
	rec := Send{PinID: p.id, To: p.to, Channel: p.channel, NCNeeded: ncNeeded, Resend: resend, At: now}
	if sent {
		rec.Code = p.code
	}
	s.sends = append(s.sends, rec)
	return out
}

func (s *Server) resend(ch otp.Channel) handler {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
		p, ok := s.pins[r.PathValue("pin")]
		if !ok || p.channel != ch {
			return errAnswer(http.StatusNotFound, nil)
		}
		var req struct {
			Placeholders map[string]string `json:"placeholders"`
		}
		if len(body) > 0 && json.Unmarshal(body, &req) != nil || badPlaceholders(req.Placeholders) {
			return errAnswer(http.StatusBadRequest, map[string]string{"placeholders": "invalid value"})
		}
		a := s.apps[p.appID]
		now := s.cfg.Clock.Now()
		if !s.allow("app:"+a.id, a.cfg.SendPinPerApplicationLimit, now) ||
			!s.allow("to:"+a.id+":"+p.to, a.cfg.SendPinPerPhoneNumberLimit, now) {
			return errAnswer(http.StatusTooManyRequests, nil)
		}
		out := s.deliver(p, "", false, true, now)
		s.sends[len(s.sends)-1].Placeholders = req.Placeholders
		return http.StatusOK, out
	}
}

func (s *Server) verify(_ http.ResponseWriter, r *http.Request, body []byte) (int, any) {
	p, ok := s.pins[r.PathValue("pin")]
	if !ok {
		return errAnswer(http.StatusNotFound, nil)
	}
	var req struct {
		PIN *string `json:"pin"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.PIN == nil {
		return errAnswer(http.StatusBadRequest, map[string]string{"pin": "may not be null"})
	}
	a := s.apps[p.appID]
	now := s.cfg.Clock.Now()
	if !s.allow("verify:"+a.id+":"+p.to, a.cfg.VerifyPinLimit, now) {
		return errAnswer(http.StatusTooManyRequests, nil)
	}
	if p.verified && !a.cfg.AllowMultiplePinVerifications {
		return errAnswer(http.StatusNotFound, nil)
	}
	out := map[string]any{"pinId": p.id, "msisdn": p.to, "verified": false}
	switch {
	case !now.Before(p.expires):
		out["pinError"] = "TTL_EXPIRED"
	case p.attemptsLeft <= 0:
		out["pinError"] = "NO_MORE_PIN_ATTEMPTS"
	case *req.PIN == p.code:
		p.verified = true
		out["verified"] = true
		out["attemptsRemaining"] = 0 // as in every example of a success
		return http.StatusOK, out
	default:
		p.attemptsLeft--
		out["pinError"] = "WRONG_PIN"
	}
	out["attemptsRemaining"] = p.attemptsLeft
	return http.StatusOK, out
}

// allow takes one event from the "{n}/{duration}" limit under key, or
// reports that the window is full.
func (s *Server) allow(key, limit string, now time.Time) bool {
	// Limits are parsed once: a load test sends thousands a second.
	r, seen := s.rates[limit]
	if !seen {
		r = parseRate(limit)
		s.rates[limit] = r
	}
	if !r.ok {
		return true
	}
	n := r.n
	since := now.Add(-r.window)
	// Events are in clock order: drop the ones before the window.
	events := s.windows[key]
	i, _ := slices.BinarySearchFunc(events, since, func(t, since time.Time) int {
		if t.After(since) {
			return 1
		}
		return -1
	})
	events = events[i:]
	if len(events) >= n {
		s.windows[key] = events
		return false
	}
	s.windows[key] = append(events, now)
	return true
}

// parseRate reads Infobip's "{count}/{length}{unit}".
func parseRate(limit string) rate {
	m := rateRE.FindStringSubmatch(limit)
	if m == nil {
		return rate{}
	}
	n, _ := strconv.Atoi(m[1])
	return rate{n: n, window: parseDuration(m[2]), ok: true}
}

// parseDuration reads Infobip's "{length}{unit}"; length defaults to 1.
func parseDuration(v string) time.Duration {
	m := durationRE.FindStringSubmatch(v)
	if m == nil {
		return 0
	}
	n := 1
	if m[1] != "" {
		n, _ = strconv.Atoi(m[1])
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit
}

// newPIN makes a PIN of the template's type and length.
func newPIN(pinType string, n int) string {
	alphabet := map[string]string{
		"NUMERIC": "0123456789", "ALPHA": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"HEX": "0123456789ABCDEF", "ALPHANUMERIC": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	}[pinType]
	if alphabet == "" {
		alphabet = "0123456789"
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
