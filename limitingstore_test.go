package otp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

// lockedStore is a LimitingStore made of a Store and a MemoryLimiter under
// one mutex; it counts the calls it gets, one per round trip a shared store
// would make.
type lockedStore struct {
	otp.Store
	*otp.MemoryLimiter
	mu    sync.Mutex
	calls map[string]int
}

var _ otp.LimitingStore = (*lockedStore)(nil)

func newLockedStore(f *fixture) *lockedStore {
	return &lockedStore{Store: f.store, MemoryLimiter: otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: f.clock}),
		calls: map[string]int{}}
}

func (s *lockedStore) count(op string) func() {
	s.mu.Lock()
	s.calls[op]++
	return s.mu.Unlock
}

func (s *lockedStore) Get(ctx context.Context, key string) (otp.Verification, error) {
	defer s.count("Get")()
	return s.Store.Get(ctx, key)
}

func (s *lockedStore) Put(ctx context.Context, v otp.Verification) error {
	defer s.count("Put")()
	return s.Store.Put(ctx, v)
}

func (s *lockedStore) AddAttempt(ctx context.Context, key string, max int) (otp.Verification, error) {
	defer s.count("AddAttempt")()
	return s.Store.AddAttempt(ctx, key, max)
}

func (s *lockedStore) Delete(ctx context.Context, key, id string) error {
	defer s.count("Delete")()
	return s.Store.Delete(ctx, key, id)
}

func (s *lockedStore) Claim(ctx context.Context, key string, c otp.Claim) (otp.Verification, error) {
	defer s.count("Claim")()
	return s.Store.Claim(ctx, key, c)
}

func (s *lockedStore) Release(ctx context.Context, key, token string) error {
	defer s.count("Release")()
	return s.Store.Release(ctx, key, token)
}

func (s *lockedStore) Allow(ctx context.Context, reqs []otp.LimitRequest) error {
	defer s.count("Allow")()
	return s.MemoryLimiter.Allow(ctx, reqs)
}

func (s *lockedStore) GetAllow(ctx context.Context, key string, spare otp.Spare, c otp.Claim, reqs []otp.LimitRequest) (otp.Verification, error) {
	defer s.count("GetAllow")()
	v, err := s.Store.Claim(ctx, key, c)
	switch {
	case err != nil:
		return otp.Verification{}, err
	case spare.Matches(v):
		return v, s.Store.Release(ctx, key, c.Token)
	}
	if err := s.MemoryLimiter.Allow(ctx, reqs); err != nil {
		_ = s.Store.Release(ctx, key, c.Token)
		return otp.Verification{}, err
	}
	return v, nil
}

func (s *lockedStore) PutRecord(ctx context.Context, v otp.Verification, o otp.Outcome, reqs []otp.LimitRequest) error {
	defer s.count("PutRecord")()
	if err := s.Store.Put(ctx, v); err != nil {
		return err
	}
	return s.Record(ctx, o, reqs)
}

func (s *lockedStore) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	defer s.count("AllowAddAttempt")()
	if err := s.MemoryLimiter.Allow(ctx, reqs); err != nil {
		return otp.Verification{}, err
	}
	return s.Store.AddAttempt(ctx, key, max)
}

func (s *lockedStore) DeleteRecord(ctx context.Context, key, id string, o otp.Outcome, reqs []otp.LimitRequest) error {
	defer s.count("DeleteRecord")()
	if err := s.Store.Delete(ctx, key, id); err != nil {
		return err
	}
	return s.Record(ctx, o, reqs)
}

func (s *lockedStore) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, n := range s.calls {
		out[k] = n
	}
	clear(s.calls)
	return out
}

func TestStoreThatLimitsServesStartAndCheckInTwoCalls(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	s := newLockedStore(f)
	v := f.verifier(t, f.p, s, otp.Config{})

	_, err := v.Start(ctx, sessionKey, ukMobile, otp.WithClient("203.0.113.9"))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"GetAllow": 1, "PutRecord": 1}, s.snapshot())

	_, err = v.Check(ctx, sessionKey, wrongCode, otp.WithClient("203.0.113.9"))
	require.ErrorIs(t, err, otp.ErrWrongCode)
	assert.Equal(t, map[string]int{"AllowAddAttempt": 1}, s.snapshot())

	_, err = v.Check(ctx, sessionKey, fixedCode, otp.WithClient("203.0.113.9"))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"AllowAddAttempt": 1, "DeleteRecord": 1}, s.snapshot())
}

func TestStoreIsNotTheLimiterWhenAnotherIsConfigured(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	s := newLockedStore(f)
	v := f.verifier(t, f.p, s, otp.Config{Limiter: otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: f.clock})})

	_, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	_, err = v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"Claim": 1, "Put": 1, "AddAttempt": 1, "Delete": 1}, s.snapshot())
}

// The rules a LimitingStore must keep hold on both paths: the combined one
// and the separate Store and Limiter.
func TestLimitsOnBothPaths(t *testing.T) {
	paths := map[string]func(f *fixture, cfg otp.Config) *otp.Verifier{
		"combined": func(f *fixture, cfg otp.Config) *otp.Verifier { return f.verifier(t, f.p, newLockedStore(f), cfg) },
		"separate": func(f *fixture, cfg otp.Config) *otp.Verifier { return f.verifier(t, f.p, f.store, cfg) },
	}
	for name, build := range paths {
		t.Run(name+"/repeat start takes no token", func(t *testing.T) {
			f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
			v := build(f, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}}})
			_, err := v.Start(ctx, sessionKey, ukMobile)
			require.NoError(t, err)
			_, err = v.Start(ctx, sessionKey, ukMobile)
			require.NoError(t, err, "the repeat inside the cooldown sends nothing and is not charged")
			f.clock.Advance(31 * time.Second)
			_, err = v.Start(ctx, sessionKey, ukMobile)
			var rl *otp.RateLimitError
			require.ErrorAs(t, err, &rl)
			assert.Equal(t, otp.ScopeNumber, rl.Scope)
			assert.Equal(t, 1, f.p.Calls(otp.OpStart))
		})
		t.Run(name+"/denied check reserves no attempt", func(t *testing.T) {
			f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
			v := build(f, otp.Config{Limits: otp.Limits{ChecksPerClient: otp.Limit{N: 1, Per: time.Hour}}})
			_, err := v.Start(ctx, sessionKey, ukMobile)
			require.NoError(t, err)
			_, err = v.Check(ctx, sessionKey, wrongCode, otp.WithClient("c"))
			require.ErrorIs(t, err, otp.ErrWrongCode)
			_, err = v.Check(ctx, sessionKey, fixedCode, otp.WithClient("c"))
			require.ErrorIs(t, err, otp.ErrRateLimited)
			st, err := v.Status(ctx, sessionKey)
			require.NoError(t, err)
			assert.Equal(t, 4, st.AttemptsLeft)
			assert.Equal(t, 1, f.p.Calls(otp.OpCheck))
		})
	}
}

func TestSpareMatches(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cooldowns := []time.Duration{30 * time.Second, time.Minute}
	s := otp.Spare{To: ukMobile, Now: at.Add(30*time.Second - time.Nanosecond), Cooldowns: cooldowns}
	live := otp.Verification{Ref: otp.Ref{ID: "r1"}, To: ukMobile, SentAt: at, Sends: 1}
	assert.True(t, s.Matches(live))
	other := live
	other.To = ukMobile2
	assert.False(t, s.Matches(other), "another number")
	edge := s
	edge.Now = at.Add(30 * time.Second)
	assert.False(t, edge.Matches(live), "at the end of the cooldown")
	second := live
	second.Sends = 2
	assert.True(t, edge.Matches(second), "the second code's cooldown is longer")
	third := second
	third.Sends = 9
	late := s
	late.Now = at.Add(time.Minute)
	assert.False(t, late.Matches(third), "past the end of the schedule, its last entry")
	legacy := live
	legacy.Sends = 0
	assert.True(t, s.Matches(legacy), "no recorded sends: the first cooldown")
	assert.False(t, s.Matches(otp.Verification{}), "nothing pending")
}

// lostReply is a LimitingStore whose next GetAllow runs but loses its
// reply, as a shared store's can.
type lostReply struct {
	*lockedStore
	lose bool
}

func (s *lostReply) GetAllow(ctx context.Context, key string, spare otp.Spare, c otp.Claim, reqs []otp.LimitRequest) (otp.Verification, error) {
	v, err := s.lockedStore.GetAllow(ctx, key, spare, c, reqs)
	if s.lose {
		s.lose = false
		return otp.Verification{}, fmt.Errorf("%w: reply lost", otp.ErrStoreUnavailable)
	}
	return v, err
}

// A Start whose claim's reply was lost releases the claim, so that the
// next Start of the key (on another instance) need not wait for it.
func TestLostClaimReplyIsReleased(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	s := &lostReply{lockedStore: newLockedStore(f), lose: true}
	first := f.verifier(t, f.p, s, otp.Config{})
	second := f.verifier(t, f.p, s, otp.Config{})
	_, err := first.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = second.Start(c, sessionKey, ukMobile)
	require.NoError(t, err, "the key was not left claimed")
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))
}
