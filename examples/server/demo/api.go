package demo

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/otpkit/otp"
)

// The session's verification states, as the API and the page show them.
const (
	stateNone     = "none"     // nothing started, or cancelled
	statePending  = "pending"  // a code was sent and can be checked
	stateExpired  = "expired"  // the code sent has expired
	stateVerified = "verified" // this session proved it holds To
)

// stateBody is the JSON answer of every successful API call. It never holds
// the provider's ID or name.
type stateBody struct {
	State        string    `json:"state"`
	Verified     bool      `json:"verified"`
	To           string    `json:"to,omitempty"`
	Channel      string    `json:"channel,omitempty"`
	AttemptsLeft int       `json:"attempts_left,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	ResendAt     time.Time `json:"resend_at,omitzero"`
}

func pending(st otp.Status) stateBody {
	return stateBody{State: statePending, To: st.To, Channel: string(st.Channel), AttemptsLeft: st.AttemptsLeft,
		ExpiresAt: st.ExpiresAt.UTC(), ResendAt: st.ResendAt.UTC()}
}

// state reads the session's verification state.
func (s *Server) state(ctx context.Context) (stateBody, error) {
	if to := s.sessions.GetString(ctx, keyVerified); to != "" {
		return stateBody{State: stateVerified, Verified: true, To: to}, nil
	}
	key := s.key(ctx)
	if key == "" {
		return stateBody{State: stateNone}, nil
	}
	st, err := s.v.Status(ctx, key)
	switch {
	case err == nil:
		return pending(st), nil
	case errors.Is(err, otp.ErrExpired):
		return stateBody{State: stateExpired, To: s.sessions.GetString(ctx, keyPhone)}, nil
	case errors.Is(err, otp.ErrNotFound):
		return stateBody{State: stateNone}, nil
	}
	return stateBody{}, err
}

// start sends a code to phone for this session. Nothing is written to the
// session unless the send succeeds.
func (s *Server) start(r *http.Request, phone string) (otp.Status, error) {
	ctx := r.Context()
	key := s.key(ctx)
	if key == "" {
		key = newKey()
	}
	st, err := s.v.Start(ctx, key, phone, otp.WithClient(clientID(r)))
	if err != nil {
		return st, err
	}
	s.sessions.Put(ctx, keyOTP, key)
	s.sessions.Put(ctx, keyPhone, st.To)
	s.sessions.Remove(ctx, keyVerified)
	return st, nil
}

// check checks code for this session; on success the session is renewed
// (a new token: the session's privilege changed) and remembers the number.
func (s *Server) check(r *http.Request, code string) (otp.Status, error) {
	ctx := r.Context()
	key := s.key(ctx)
	if key == "" {
		return otp.Status{}, otp.ErrNotFound
	}
	st, err := s.v.Check(ctx, key, code, otp.WithClient(clientID(r)))
	if err != nil {
		return st, err
	}
	if err := s.sessions.RenewToken(ctx); err != nil {
		return st, errors.Join(otp.ErrStoreUnavailable, err)
	}
	s.sessions.Remove(ctx, keyOTP)
	s.sessions.Put(ctx, keyVerified, st.To)
	return st, nil
}

func (s *Server) resend(r *http.Request) (otp.Status, error) {
	key := s.key(r.Context())
	if key == "" {
		return otp.Status{}, otp.ErrNotFound
	}
	return s.v.Resend(r.Context(), key, otp.WithClient(clientID(r)))
}

// cancel forgets this session's verification, pending or verified.
func (s *Server) cancel(r *http.Request) error {
	ctx := r.Context()
	if key := s.key(ctx); key != "" {
		err := s.v.Cancel(ctx, key)
		if err != nil && !errors.Is(err, otp.ErrNotFound) && !errors.Is(err, otp.ErrExpired) {
			return err
		}
	}
	for _, k := range []string{keyOTP, keyPhone, keyVerified} {
		if s.sessions.Exists(ctx, k) {
			s.sessions.Remove(ctx, k)
		}
	}
	return nil
}

func (s *Server) apiStart(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Phone string `json:"phone"`
	}
	if f, ok := decodeJSON(w, r, &in); !ok {
		s.fail(w, r, f)
		return
	}
	st, err := s.start(r, in.Phone)
	if err != nil {
		s.fail(w, r, describe(err))
		return
	}
	writeJSON(w, http.StatusOK, pending(st))
}

func (s *Server) apiCheck(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	if f, ok := decodeJSON(w, r, &in); !ok {
		s.fail(w, r, f)
		return
	}
	st, err := s.check(r, in.Code)
	if err != nil {
		s.fail(w, r, describe(err))
		return
	}
	writeJSON(w, http.StatusOK, stateBody{State: stateVerified, Verified: true, To: st.To})
}

func (s *Server) apiResend(w http.ResponseWriter, r *http.Request) {
	st, err := s.resend(r)
	if err != nil {
		s.fail(w, r, describe(err))
		return
	}
	writeJSON(w, http.StatusOK, pending(st))
}

func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	if err := s.cancel(r); err != nil {
		s.fail(w, r, describe(err))
		return
	}
	writeJSON(w, http.StatusOK, stateBody{State: stateNone})
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.state(r.Context())
	if err != nil {
		s.fail(w, r, describe(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}
