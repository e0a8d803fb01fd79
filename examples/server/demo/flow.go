package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otphttp"
)

// Session keys.
const (
	keyOTP        = "otp_key"     // the Verifier key of this session
	keyPhone      = "phone"       // the number last started, to refill the form
	keyVerified   = "verified"    // the number this session verified
	keyChallenge  = "challenge"   // the stand-in challenge's token, once asked for
	keyNotice     = "flash"       // a notice for the next page view
	keyError      = "flash_error" // an error for the next page view
	keyErrorField = "flash_field" // the field it is about: "phone" or "code"
	keyLang       = "flash_lang"  // the language of the two
	keyInput      = "flash_input" // the number typed, to refill the form after an error
)

// key returns the session's Verifier key, "" if it has none.
func (s *Server) key(ctx context.Context) string { return s.sessions.GetString(ctx, keyOTP) }

// started keeps the key of a successful Start in the session.
func (s *Server) started(_ http.ResponseWriter, r *http.Request, key string, st otp.Status) error {
	ctx := r.Context()
	s.sessions.Put(ctx, keyOTP, key)
	s.sessions.Put(ctx, keyPhone, st.To)
	s.sessions.Remove(ctx, keyVerified)
	return nil
}

// verified renews the session (a new token: its privilege changed) and
// remembers the number.
func (s *Server) verified(_ http.ResponseWriter, r *http.Request, st otp.Status) error {
	ctx := r.Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return errors.Join(otp.ErrStoreUnavailable, err)
	}
	s.sessions.Remove(ctx, keyOTP)
	s.sessions.Put(ctx, keyVerified, st.To)
	return nil
}

// canceled forgets the session's verification, pending or verified.
func (s *Server) canceled(_ http.ResponseWriter, r *http.Request) error {
	for _, k := range []string{keyOTP, keyPhone, keyVerified} {
		if s.sessions.Exists(r.Context(), k) {
			s.sessions.Remove(r.Context(), k)
		}
	}
	return nil
}

// challengePassed is the demo's stand-in for verifying a CAPTCHA's
// answer: the token must be the one this session was given when it was
// asked for a challenge, and counts once. A real site asks its CAPTCHA
// service instead.
func (s *Server) challengePassed(r *http.Request, token string) bool {
	want := s.sessions.GetString(r.Context(), keyChallenge)
	if token == "" || want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		return false
	}
	s.sessions.Remove(r.Context(), keyChallenge)
	return true
}

// newChallenge gives the session a challenge token and returns it.
func (s *Server) newChallenge(ctx context.Context) string {
	token := rand.Text()
	s.sessions.Put(ctx, keyChallenge, token)
	return token
}

// apiChallenge stands in for a CAPTCHA widget: the page calls it when the
// person ticks "I am not a robot", and sends its token with the Start.
func (s *Server) apiChallenge(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"token": s.newChallenge(r.Context())})
}

// apiStatus answers the session's state.
func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.state(r)
	if err != nil {
		s.api.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// state is the session's verification state: verified as the session
// remembers it, else as the Verifier has it, with the number of an
// expired code.
func (s *Server) state(r *http.Request) (otphttp.State, error) {
	ctx := r.Context()
	if to := s.sessions.GetString(ctx, keyVerified); to != "" {
		return otphttp.Verified(to), nil
	}
	st, err := s.api.State(r, s.key(ctx))
	if st.State == otphttp.StateExpired {
		st.To = s.sessions.GetString(ctx, keyPhone)
		st.Display = otphttp.FormatNumber(st.To)
	}
	return st, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var pageTemplate = template.Must(template.ParseFS(assets, "assets/page.html"))

// pageData is what page.html shows. Step is "phone", "code", "done" or
// "error" (a request that never reached the flow).
type pageData struct {
	Step         string
	Phone        string // refills the number field
	Display      string // the number the code went to, or the one verified, formatted
	AttemptsLeft int
	CodeLength   int
	Notice       string
	Error        string
	ErrorField   string // "phone" or "code": the field marked invalid
	Lang         string // the language of Notice and Error
	Challenge    string // the challenge token, when Start asked for one
}

// CodePattern is the code field's HTML pattern attribute.
func (d pageData) CodePattern() string { return "[0-9]{" + strconv.Itoa(d.CodeLength) + "}" }

// page shows the session's current step, with the notice or error a form
// post left.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := pageData{CodeLength: s.cfg.CodeLength, Lang: s.cat.Match(r).String()}
	st, err := s.state(r)
	if err != nil {
		d.Step, d.Error = "error", s.cat.Text(s.cat.Match(r), otphttp.Describe(err))
		s.render(w, otphttp.Describe(err).Status, d)
		return
	}
	d.Display, d.AttemptsLeft = st.Display, st.AttemptsLeft
	switch st.State {
	case otphttp.StatePending:
		d.Step = "code"
	case otphttp.StateVerified:
		d.Step = "done"
	default:
		d.Step, d.Phone = "phone", s.sessions.GetString(ctx, keyPhone)
		if st.State == otphttp.StateExpired {
			d.Error = s.cat.Text(s.cat.Match(r), otphttp.Describe(otp.ErrExpired))
		}
		d.Challenge = s.sessions.GetString(ctx, keyChallenge)
	}
	if e := s.sessions.PopString(ctx, keyError); e != "" {
		d.Error, d.ErrorField = e, s.sessions.PopString(ctx, keyErrorField)
		d.Lang = s.sessions.PopString(ctx, keyLang)
		if in := s.sessions.PopString(ctx, keyInput); in != "" {
			d.Phone = in
		}
	}
	if d.Error == "" {
		d.Notice = s.sessions.PopString(ctx, keyNotice)
	}
	s.render(w, http.StatusOK, d)
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

// done ends a page's form post, failed or not, with a redirect to the
// page (post/redirect/get), so that reloading it never posts again. A
// failure is shown there once: its message, the field it is about, and
// for a challenge the stand-in checkbox.
func (s *Server) done(w http.ResponseWriter, r *http.Request, err error, field, input string) {
	ctx := r.Context()
	if err != nil {
		f := otphttp.Describe(err)
		tag := s.cat.Match(r)
		s.sessions.Put(ctx, keyError, s.cat.Text(tag, f))
		s.sessions.Put(ctx, keyLang, tag.String())
		if f.Class == "invalid_input" || f.Class == "refused_destination" || f.Class == "wrong_code" {
			s.sessions.Put(ctx, keyErrorField, field)
		}
		if input != "" {
			s.sessions.Put(ctx, keyInput, input)
		}
		if f.Challenge {
			s.newChallenge(ctx)
		}
		if f.Status >= 500 {
			s.log.LogAttrs(ctx, slog.LevelWarn, "demo: page post failed",
				slog.String("path", r.URL.Path), slog.Int("status", f.Status), slog.String("class", f.Class))
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// form reads a page's form, capped like the API's bodies; a failure
// answers it and reports false.
func (s *Server) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, otphttp.DefaultMaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		f := otphttp.Describe(otphttp.BodyError(err))
		s.refuse(w, r, f.Status, f.Class, s.cat.Text(s.cat.Match(r), f))
		return false
	}
	return true
}

func (s *Server) pageStart(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	phone := r.PostForm.Get("phone")
	_, err := s.api.DoStart(w, r, phone, r.PostForm.Get("challenge_token"))
	if err == nil {
		s.sessions.Put(r.Context(), keyNotice, s.cat.Notice(r, otphttp.MsgCodeSent))
	}
	s.done(w, r, err, "phone", phone)
}

func (s *Server) pageCheck(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	_, err := s.api.DoCheck(w, r, r.PostForm.Get("code"))
	s.done(w, r, err, "code", "")
}

func (s *Server) pageResend(w http.ResponseWriter, r *http.Request) {
	_, err := s.api.DoResend(w, r)
	if err == nil {
		s.sessions.Put(r.Context(), keyNotice, s.cat.Notice(r, otphttp.MsgCodeResent))
	}
	s.done(w, r, err, "", "")
}

func (s *Server) pageCancel(w http.ResponseWriter, r *http.Request) {
	s.done(w, r, s.api.DoCancel(w, r), "", "")
}
