package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/otpkit/otp"
)

// Get implements [otp.Store].
func (s *Store) Get(ctx context.Context, key string) (otp.Verification, error) {
	sec, ns := s.now()
	r, err := s.call(ctx, "get", s.sql.get, s.vid(key), sec, ns)
	if err != nil {
		return otp.Verification{}, err
	}
	return r.verification("get", key)
}

// Claim implements [otp.Store].
func (s *Store) Claim(ctx context.Context, key string, c otp.Claim) (otp.Verification, error) {
	// GetAllow with no spare and no limits.
	sec, ns := s.now()
	us, un := split(c.Until)
	args := []any{s.vid(key), sec, ns, c.Token, us, un, nil, nil, nil, nil}
	r, err := s.call(ctx, "claim", s.sql.getAllow, append(args, (&limits{}).args()...)...)
	if err != nil {
		return otp.Verification{}, err
	}
	return r.claimed("claim", key)
}

// Release implements [otp.Store].
func (s *Store) Release(ctx context.Context, key, token string) error {
	sec, ns := s.now()
	_, err := s.call(ctx, "release", s.sql.release, s.vid(key), sec, ns, token)
	return err
}

// Put implements [otp.Store]. The row is invisible from v.ExpiresAt plus
// Config.Retention on, and the cleaner deletes it after that.
func (s *Store) Put(ctx context.Context, v otp.Verification) error {
	_, err := s.call(ctx, "put", s.sql.put, s.putArgs(v)...)
	return err
}

// putArgs returns the arguments of put, which put_record starts with.
func (s *Store) putArgs(v otp.Verification, more ...any) []any {
	sec, ns := s.now()
	cs, cn := split(v.CreatedAt)
	ss, sn := split(v.SentAt)
	es, en := split(v.ExpiresAt)
	return append([]any{s.vid(v.Key), sec, ns, s.retention, v.Ref.Provider, v.Ref.ID, v.To, v.Region,
		string(v.Channel), v.Challenged, int32(v.Sends), int32(v.Attempts), cs, cn, ss, sn, es, en}, more...)
}

// AddAttempt implements [otp.Store].
func (s *Store) AddAttempt(ctx context.Context, key string, max int) (otp.Verification, error) {
	return s.AllowAddAttempt(ctx, key, max, nil)
}

// MarkSent implements [otp.Store].
func (s *Store) MarkSent(ctx context.Context, key, id string, at time.Time) error {
	sec, ns := s.now()
	as, an := split(at)
	r, err := s.call(ctx, "mark sent", s.sql.markSent, s.vid(key), sec, ns, id, as, an)
	if err != nil {
		return err
	}
	return r.status("mark sent")
}

// Delete implements [otp.Store].
func (s *Store) Delete(ctx context.Context, key, id string) error {
	sec, ns := s.now()
	r, err := s.call(ctx, "delete", s.sql.delete, s.vid(key), sec, ns, id)
	if err != nil {
		return err
	}
	return r.status("delete")
}

// status returns the error of a reply that carries no verification.
func (r reply) status(op string) error {
	switch r.st {
	case stOK:
		return nil
	case stNone:
		return otp.ErrNotFound
	case stExpired:
		return otp.ErrExpired
	case stTooMany:
		return otp.ErrTooManyAttempts
	case stInFlight:
		return otp.ErrSendInFlight
	}
	return &Error{Op: op, Err: errors.New("unexpected reply")}
}

// verification decodes a reply that carries a verification or says why
// it does not.
func (r reply) verification(op, key string) (otp.Verification, error) {
	if err := r.status(op); err != nil {
		return otp.Verification{}, err
	}
	return otp.Verification{
		Key:        key,
		Ref:        otp.Ref{Provider: r.provider, ID: r.refID},
		To:         r.dest,
		Region:     r.region,
		Channel:    otp.Channel(r.channel),
		Challenged: r.challenged,
		Sends:      int(r.sends),
		Attempts:   int(r.attempts),
		CreatedAt:  join(r.createdS, r.createdN),
		SentAt:     join(r.sentS, r.sentN),
		ExpiresAt:  join(r.expiresS, r.expiresN),
	}, nil
}

// claimed decodes the reply of claim and get_allow, which report a missing
// or expired verification as none.
func (r reply) claimed(op, key string) (otp.Verification, error) {
	if r.st == stNone || r.st == stExpired {
		return otp.Verification{}, nil
	}
	return r.verification(op, key)
}
