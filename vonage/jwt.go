package vonage

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/otpkit/otp"
)

// tokenSource signs the application JWT (RS256) and caches it: a token is
// signed once and reused until a fifth of its lifetime is left, then
// renewed, so a request never carries a token about to expire. Safe for
// concurrent use: one caller signs while the others wait for its token.
type tokenSource struct {
	appID string
	key   *rsa.PrivateKey
	ttl   time.Duration
	clock otp.Clock

	cur   atomic.Pointer[token]
	mu    sync.Mutex // serialises signing
	signs atomic.Int64
}

type token struct {
	header  string // "Bearer <jwt>"
	iat     time.Time
	renewAt time.Time // sign a new one from then on
}

// fresh reports whether t may be sent at now: not due for renewal, and not
// issued in the future (the clock may have been set back).
func (t *token) fresh(now time.Time) bool {
	return t != nil && now.Before(t.renewAt) && !now.Before(t.iat)
}

// header returns the Authorization header value, signing a new token when
// the cached one is due for renewal.
func (s *tokenSource) header() (string, error) {
	now := s.clock.Now()
	if t := s.cur.Load(); t.fresh(now) {
		return t.header, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.cur.Load(); t.fresh(now) {
		return t.header, nil
	}
	t, err := s.sign(now)
	if err != nil {
		return "", err
	}
	s.cur.Store(t)
	return t.header, nil
}

// invalidate drops the cached token if it is still hdr, so that the next
// call signs a new one (after Vonage refused hdr, e.g. for clock skew).
func (s *tokenSource) invalidate(hdr string) {
	if t := s.cur.Load(); t != nil && t.header == hdr {
		s.cur.CompareAndSwap(t, nil)
	}
}

func (s *tokenSource) sign(now time.Time) (*token, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return nil, errors.New("vonage: cannot make a token id")
	}
	jti[6] = jti[6]&0x0f | 0x40 // UUID version 4
	jti[8] = jti[8]&0x3f | 0x80
	h := hex.EncodeToString(jti[:])
	id := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	iat := now.Truncate(time.Second)
	exp := iat.Add(s.ttl)
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"application_id": s.appID,
		"iat":            iat.Unix(),
		"jti":            id,
		"exp":            exp.Unix(),
	}).SignedString(s.key)
	if err != nil {
		return nil, errors.New("vonage: cannot sign the application token")
	}
	s.signs.Add(1)
	return &token{header: "Bearer " + signed, iat: iat, renewAt: exp.Add(-s.ttl / 5)}, nil
}
