package otptest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// lockedStore is the simplest LimitingStore: a memstore and a
// MemoryLimiter, the combined methods made atomic by one mutex.
type lockedStore struct {
	*memstore.Store
	*otp.MemoryLimiter
	mu sync.Mutex
}

var _ otp.LimitingStore = (*lockedStore)(nil)

func (s *lockedStore) GetAllow(ctx context.Context, key string, spare otp.Spare, c otp.Claim, reqs []otp.LimitRequest) (otp.Verification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.Claim(ctx, key, c)
	switch {
	case err != nil:
		return otp.Verification{}, err
	case spare.Matches(v):
		return v, s.Release(ctx, key, c.Token)
	}
	if err := s.Allow(ctx, reqs); err != nil {
		_ = s.Release(ctx, key, c.Token)
		return otp.Verification{}, err
	}
	return v, nil
}

func (s *lockedStore) PutRecord(ctx context.Context, v otp.Verification, o otp.Outcome, reqs []otp.LimitRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Put(ctx, v); err != nil {
		return err
	}
	return s.Record(ctx, o, reqs)
}

func (s *lockedStore) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Allow(ctx, reqs); err != nil {
		return otp.Verification{}, err
	}
	return s.AddAttempt(ctx, key, max)
}

func (s *lockedStore) DeleteRecord(ctx context.Context, key, id string, o otp.Outcome, reqs []otp.LimitRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Delete(ctx, key, id); err != nil {
		return err
	}
	return s.Record(ctx, o, reqs)
}

func TestLimitingStoreInMemory(t *testing.T) {
	otptest.TestLimitingStore(t, func() otp.LimitingStore {
		s := memstore.New(memstore.Config{})
		t.Cleanup(func() { s.Close() })
		return &lockedStore{Store: s, MemoryLimiter: otp.NewMemoryLimiter(otp.MemoryLimiterConfig{})}
	})
}

func TestLimiterInMemory(t *testing.T) {
	otptest.TestLimiter(t, func() otp.Limiter { return otp.NewMemoryLimiter(otp.MemoryLimiterConfig{}) })
}
