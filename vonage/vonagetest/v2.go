package vonagetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

var (
	brandRE = regexp.MustCompile(`^[^/{}:$]{1,18}$`)
	alnumRE = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	phoneRE = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)
)

type v2Step struct {
	Channel   string  `json:"channel"`
	To        string  `json:"to"`
	From      string  `json:"from"`
	EntityID  *string `json:"entity_id"`
	ContentID *string `json:"content_id"`
	AppHash   *string `json:"app_hash"`
}

type v2Start struct {
	Brand          string   `json:"brand"`
	Workflow       []v2Step `json:"workflow"`
	Locale         string   `json:"locale"`
	ChannelTimeout *int     `json:"channel_timeout"`
	ClientRef      *string  `json:"client_ref"`
	CodeLength     *int     `json:"code_length"`
	Code           *string  `json:"code"`
}

type invalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func invalidParams(w http.ResponseWriter, detail string, params ...invalidParam) {
	problemJSON(w, http.StatusUnprocessableEntity, "invalid-params", "Invalid params", detail,
		map[string]any{"invalid_parameters": params})
}

// validate returns the first invalid parameter of a start, as Vonage's 422
// describes it.
func (b *v2Start) validate() (invalidParam, string, bool) {
	bad := func(name, reason string) (invalidParam, string, bool) {
		return invalidParam{name, reason}, "The value of one or more parameters is invalid.", false
	}
	switch {
	case b.Brand == "":
		return bad("brand", "Brand is required")
	case !brandRE.MatchString(b.Brand):
		return bad("brand", "Brand must be 1 to 18 characters, none of / { } : $")
	case len(b.Workflow) < 1 || len(b.Workflow) > 3:
		return bad("workflow", "Workflow must have 1 to 3 items")
	case b.CodeLength != nil && (*b.CodeLength < 4 || *b.CodeLength > 10):
		return bad("code_length", "Code length must be 4 to 10")
	case b.ChannelTimeout != nil && (*b.ChannelTimeout < 15 || *b.ChannelTimeout > 900):
		return bad("channel_timeout", "Channel timeout must be 15 to 900")
	case b.ClientRef != nil && (len(*b.ClientRef) > 40 || !alnumRE.MatchString(*b.ClientRef)):
		return bad("client_ref", "Client ref must be 1 to 40 letters and digits")
	case b.Code != nil && (len(*b.Code) < 4 || len(*b.Code) > 10 || !alnumRE.MatchString(*b.Code)):
		return bad("code", "Code must be 4 to 10 letters and digits")
	}
	for i, st := range b.Workflow {
		name := fmt.Sprintf("workflow[%d]", i)
		switch st.Channel {
		case "sms", "voice", "whatsapp", "rcs", "silent_auth":
			if !phoneRE.MatchString(st.To) {
				return invalidParam{name + ".to", "Invalid phone number"}, "'to' phone number is invalid", false
			}
		case "email":
			if !strings.Contains(st.To, "@") {
				return bad(name+".to", "Invalid email address")
			}
		default:
			return bad(name+".channel", "Unknown channel")
		}
		if (st.Channel == "whatsapp" || st.Channel == "rcs") && st.From == "" {
			return bad(name+".from", "From is required")
		}
		for field, v := range map[string]*string{"entity_id": st.EntityID, "content_id": st.ContentID, "app_hash": st.AppHash} {
			switch {
			case v == nil:
			case st.Channel != "sms":
				return bad(name+"."+field, "Only an sms step takes "+field)
			case field == "app_hash" && len(*v) != 11:
				return bad(name+".app_hash", "App hash must be 11 characters")
			case field != "app_hash" && (len(*v) < 1 || len(*v) > 20):
				return bad(name+"."+field, field+" must be 1 to 20 characters")
			}
		}
		if i > 0 && st.Channel == "silent_auth" {
			return bad(name+".channel", "silent_auth must be the first channel")
		}
	}
	return invalidParam{}, "", true
}

func (s *Server) v2Start(w http.ResponseWriter, r *http.Request) {
	var b v2Start
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		invalidParams(w, "The request body is not valid JSON.")
		return
	}
	if p, detail, ok := b.validate(); !ok {
		invalidParams(w, detail, p)
		return
	}
	if b.Code != nil && s.cfg.RefuseCustomCodes {
		problemJSON(w, http.StatusForbidden, "forbidden", "Forbidden", "Your account does not allow custom codes.", nil)
		return
	}
	to := b.Workflow[0].To
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	if id, busy := s.inFlight(to, now); busy {
		extra := map[string]any{}
		if id != "" {
			extra["request_id"] = id
		}
		problemJSON(w, s.cfg.ConflictStatus, "concurrent", "Conflict", "Concurrent verifications to the same number are not allowed.", extra)
		return
	}
	timeout, codeLen := 180, 4
	if b.ChannelTimeout != nil {
		timeout = *b.ChannelTimeout
	}
	if b.CodeLength != nil {
		codeLen = *b.CodeLength
	}
	channels := make([]string, len(b.Workflow))
	for i, st := range b.Workflow {
		channels[i] = st.Channel
	}
	v := s.newVerification("v2", to, channels, time.Duration(timeout)*time.Second, codeLen, now)
	first := &s.sends[len(s.sends)-1]
	if b.Code != nil {
		v.code = *b.Code
		first.Code = v.code
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for _, st := range b.Workflow {
		if st.Channel == "sms" {
			v.entityID, v.contentID, v.appHash = deref(st.EntityID), deref(st.ContentID), deref(st.AppHash)
		}
	}
	if first.Channel == "sms" {
		first.EntityID, first.ContentID, first.AppHash = v.entityID, v.contentID, v.appHash
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"request_id": v.id})
}

func notFound(w http.ResponseWriter, id string) {
	problemJSON(w, http.StatusNotFound, "not-found", "Not Found",
		fmt.Sprintf("Request %s was not found or it has been verified already.", id), nil)
}

func (s *Server) v2Check(w http.ResponseWriter, r *http.Request, id string) {
	var b struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Code == "" {
		invalidParams(w, "The value of one or more parameters is invalid.", invalidParam{"code", "Code is required"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.reqs[id]
	if !ok || v.api != "v2" || !s.live(v, s.cfg.Clock.Now()) {
		notFound(w, id)
		return
	}
	switch s.checkCode(v, b.Code) {
	case "right":
		writeJSON(w, http.StatusOK, map[string]string{"request_id": id, "status": "completed"})
	case "wrong":
		problemJSON(w, http.StatusBadRequest, "invalid-code", "Invalid Code", "The code you provided does not match the expected value.", nil)
	default:
		problemJSON(w, http.StatusGone, "gone", "Invalid Code", "An incorrect code has been provided too many times. Workflow terminated.", nil)
	}
}

func (s *Server) v2Cancel(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	v, ok := s.reqs[id]
	if !ok || v.api != "v2" || !s.live(v, now) {
		notFound(w, id)
		return
	}
	if why := s.cancelRefusal(v, now); why != "" {
		// SPEC2 repeats the timing rule for cancel without naming the
		// status; the fake answers 409.
		problemJSON(w, http.StatusConflict, "conflict", "Conflict", why, nil)
		return
	}
	s.cancel(v, now)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) v2Next(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	v, ok := s.reqs[id]
	if !ok || v.api != "v2" || !s.live(v, now) {
		notFound(w, id)
		return
	}
	if v.step >= len(v.channels)-1 {
		problemJSON(w, http.StatusConflict, "conflict", "Conflict", "There are no more events left to trigger.", nil)
		return
	}
	v.step++
	v.stepAt = now
	s.record(v, now)
	w.WriteHeader(http.StatusOK)
}
