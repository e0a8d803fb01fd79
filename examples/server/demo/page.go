package demo

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
)

var pageTemplate = template.Must(template.ParseFS(assets, "assets/page.html"))

// pageData is what page.html shows. Step is "phone", "code", "done" or
// "error" (a request that never reached the flow).
type pageData struct {
	Step         string
	Phone        string // refills the number field
	To           string // the number the code went to, or the one verified
	AttemptsLeft int
	CodeLength   int
	Notice       string
	Error        string
}

// CodePattern is the code field's HTML pattern attribute.
func (d pageData) CodePattern() string { return "[0-9]{" + strconv.Itoa(d.CodeLength) + "}" }

// page shows the session's current step.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.show(w, r, http.StatusOK, nil, "")
}

// show renders the session's current step with a notice popped from the
// session and, if f is set, its message as the error. phone, if set,
// refills the number field instead of the number in the session.
func (s *Server) show(w http.ResponseWriter, r *http.Request, status int, f *failure, phone string) {
	ctx := r.Context()
	st, err := s.state(ctx)
	if err != nil {
		s.fail(w, r, describe(err))
		return
	}
	d := pageData{To: st.To, AttemptsLeft: st.AttemptsLeft, CodeLength: s.cfg.CodeLength}
	d.Notice = s.sessions.PopString(ctx, keyFlash)
	switch st.State {
	case statePending:
		d.Step = "code"
	case stateVerified:
		d.Step = "done"
	default:
		d.Step = "phone"
		d.Phone = s.sessions.GetString(ctx, keyPhone)
		if st.State == stateExpired && f == nil {
			f = &failure{message: "That code has expired. Send a new one."}
		}
	}
	if phone != "" {
		d.Phone = phone
	}
	if f != nil {
		d.Error, d.Notice = f.message, ""
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(seconds(f.retryAfter)))
		}
	}
	s.render(w, status, d)
}

// renderError shows f on a page of its own, for requests that never
// reached the flow (refused, malformed or too large).
func (s *Server) renderError(w http.ResponseWriter, f failure) {
	s.render(w, f.status, pageData{Step: "error", Error: f.message, CodeLength: s.cfg.CodeLength})
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "demo: page template failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// seeOther sends the browser back to the page after a successful POST, so
// that reloading it does not post again.
func seeOther(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) pageStart(w http.ResponseWriter, r *http.Request) {
	if f, ok := parseForm(w, r); !ok {
		s.fail(w, r, f)
		return
	}
	phone := r.PostForm.Get("phone")
	_, err := s.start(r, phone)
	if err != nil {
		f := describe(err)
		s.show(w, r, f.status, &f, phone)
		return
	}
	s.sessions.Put(r.Context(), keyFlash, "Code sent. It can take a minute to arrive.")
	seeOther(w, r)
}

func (s *Server) pageCheck(w http.ResponseWriter, r *http.Request) {
	if f, ok := parseForm(w, r); !ok {
		s.fail(w, r, f)
		return
	}
	if _, err := s.check(r, r.PostForm.Get("code")); err != nil {
		f := describe(err)
		s.show(w, r, f.status, &f, "")
		return
	}
	seeOther(w, r)
}

func (s *Server) pageResend(w http.ResponseWriter, r *http.Request) {
	if _, err := s.resend(r); err != nil {
		f := describe(err)
		s.show(w, r, f.status, &f, "")
		return
	}
	s.sessions.Put(r.Context(), keyFlash, "We sent the code again.")
	seeOther(w, r)
}

func (s *Server) pageCancel(w http.ResponseWriter, r *http.Request) {
	if err := s.cancel(r); err != nil {
		f := describe(err)
		s.show(w, r, f.status, &f, "")
		return
	}
	seeOther(w, r)
}
