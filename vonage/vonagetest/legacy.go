package vonagetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// legacyWorkflows are the legacy API's workflows: the events in order.
var legacyWorkflows = map[int][]string{
	1: {"sms", "tts", "tts"},
	2: {"sms", "sms", "tts"},
	3: {"tts", "tts"},
	4: {"sms", "sms"},
	5: {"sms", "tts"},
	6: {"sms"},
	7: {"tts"},
}

var legacyNumberRE = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)

type legacyAnswer map[string]string

func legacyFail(w http.ResponseWriter, status, text string) {
	writeJSON(w, http.StatusOK, legacyAnswer{"status": status, "error_text": text})
}

// legacyParams collects the parameters from the query, a form body or a
// JSON body, as the legacy API accepts all three.
func legacyParams(r *http.Request) (url.Values, bool) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, false
		}
		v := r.URL.Query()
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case float64:
				v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
			}
		}
		return v, true
	}
	if err := r.ParseForm(); err != nil {
		return nil, false
	}
	return r.Form, true
}

func (s *Server) legacy(w http.ResponseWriter, r *http.Request, endpoint Op) {
	p, ok := legacyParams(r)
	if !ok {
		legacyFail(w, "3", "Invalid request body")
		return
	}
	if !basicOK(r, s.cfg.APIKey, s.cfg.APISecret) {
		switch {
		case p.Get("api_key") == "":
			legacyFail(w, "2", "Missing api_key")
			return
		case p.Get("api_key") != s.cfg.APIKey || p.Get("api_secret") != s.cfg.APISecret:
			legacyFail(w, "4", "Bad credentials")
			return
		}
	}
	switch endpoint {
	case LegacyRequest:
		s.legacyRequest(w, p)
	case LegacyCheck:
		s.legacyCheck(w, p)
	case LegacyControl:
		s.legacyControl(w, p)
	default:
		s.legacySearch(w, p)
	}
}

// intParam reads an optional integer parameter in [min, max].
func intParam(p url.Values, name string, def, min, max int) (int, bool) {
	raw := p.Get(name)
	if raw == "" {
		return def, true
	}
	n, err := strconv.Atoi(raw)
	return n, err == nil && n >= min && n <= max
}

func (s *Server) legacyRequest(w http.ResponseWriter, p url.Values) {
	number, brand := p.Get("number"), p.Get("brand")
	switch {
	case number == "":
		legacyFail(w, "2", "Missing number")
		return
	case brand == "":
		legacyFail(w, "2", "Missing brand")
		return
	case !legacyNumberRE.MatchString(number):
		legacyFail(w, "3", "Invalid value for number")
		return
	case len([]rune(brand)) > 18:
		legacyFail(w, "3", "Invalid value for param: brand")
		return
	case len(p.Get("sender_id")) > 11:
		legacyFail(w, "3", "Invalid value for param: sender_id")
		return
	case p.Get("pin_code") != "":
		legacyFail(w, "20", "This account does not support the parameter: pin_code.")
		return
	}
	codeLen, ok1 := intParam(p, "code_length", 4, 4, 6)
	wf, ok2 := intParam(p, "workflow_id", 1, 1, 7)
	wait, ok3 := intParam(p, "next_event_wait", 300, 60, 900)
	expiry, ok4 := intParam(p, "pin_expiry", 300, 60, 3600)
	for name, ok := range map[string]bool{"code_length": ok1 && codeLen != 5, "workflow_id": ok2, "next_event_wait": ok3, "pin_expiry": ok4} {
		if !ok {
			legacyFail(w, "3", "Invalid value for param: "+name)
			return
		}
	}
	if expiry%wait != 0 {
		expiry = wait // Vonage's rule: pin_expiry must be a multiple of next_event_wait
	}
	number = strings.TrimPrefix(number, "+")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	if id, busy := s.inFlight(number, now); busy {
		writeJSON(w, http.StatusOK, legacyAnswer{"status": "10", "request_id": id,
			"error_text": "Concurrent verifications to the same number are not allowed"})
		return
	}
	v := s.newVerification("legacy", number, legacyWorkflows[wf], time.Duration(wait)*time.Second, codeLen, now)
	v.expires = now.Add(time.Duration(expiry) * time.Second)
	writeJSON(w, http.StatusOK, legacyAnswer{"request_id": v.id, "status": "0"})
}

func (s *Server) legacyCheck(w http.ResponseWriter, p url.Values) {
	id, code := p.Get("request_id"), p.Get("code")
	switch {
	case id == "":
		legacyFail(w, "2", "Missing request_id")
		return
	case code == "":
		legacyFail(w, "2", "Missing code")
		return
	case len(id) > 32:
		legacyFail(w, "3", "Invalid value for param: request_id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reqs[id]
	if !ok || v.api != "legacy" || !s.live(v, s.cfg.Clock.Now()) {
		legacyFail(w, "6", fmt.Sprintf("The Vonage platform was unable to process this message for the following reason: Request '%s' was not found or it has been verified already.", id))
		return
	}
	switch s.checkCode(v, code) {
	case "right":
		writeJSON(w, http.StatusOK, legacyAnswer{"request_id": id, "event_id": uuid(), "status": "0", "price": "0.10000000", "currency": "EUR"})
	case "wrong":
		legacyFail(w, "16", "The code inserted does not match the expected value")
	default:
		legacyFail(w, "17", "The wrong code was provided too many times. Request terminated")
	}
}

func (s *Server) legacyControl(w http.ResponseWriter, p url.Values) {
	id, cmd := p.Get("request_id"), p.Get("cmd")
	switch {
	case id == "":
		legacyFail(w, "2", "Missing request_id")
		return
	case cmd == "":
		legacyFail(w, "2", "Missing cmd")
		return
	case cmd != "cancel" && cmd != "trigger_next_event":
		legacyFail(w, "3", "Invalid value for param: cmd")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	v, ok := s.reqs[id]
	if !ok || v.api != "legacy" || !s.live(v, now) {
		legacyFail(w, "6", fmt.Sprintf("The requestId '%s' does not exist or its no longer active.", id))
		return
	}
	if cmd == "cancel" {
		if why := s.cancelRefusal(v, now); why != "" {
			legacyFail(w, "19", why)
			return
		}
		s.cancel(v, now)
	} else {
		if v.step >= len(v.channels)-1 {
			legacyFail(w, "19", fmt.Sprintf("No more events are left to execute for the request ['%s']", id))
			return
		}
		v.step++
		v.stepAt = now
		s.record(v, now)
	}
	writeJSON(w, http.StatusOK, legacyAnswer{"status": "0", "command": cmd})
}

var legacySearchStatus = map[string]string{
	"pending": "IN PROGRESS", "verified": "SUCCESS", "failed": "FAILED", "expired": "EXPIRED", "cancelled": "CANCELLED",
}

func (s *Server) legacySearch(w http.ResponseWriter, p url.Values) {
	id := p.Get("request_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reqs[id]
	if !ok || v.api != "legacy" {
		legacyFail(w, "101", "No response found")
		return
	}
	s.live(v, s.cfg.Clock.Now())
	writeJSON(w, http.StatusOK, map[string]any{
		"request_id": v.id, "number": v.to, "status": legacySearchStatus[v.state],
		"date_submitted": v.created.UTC().Format("2006-01-02 15:04:05"),
	})
}
