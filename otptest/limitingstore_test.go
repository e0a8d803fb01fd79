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
	lim *otp.MemoryLimiter
	mu  sync.Mutex
}

var _ otp.LimitingStore = (*lockedStore)(nil)

func (s *lockedStore) Allow(ctx context.Context, reqs []otp.LimitRequest) error {
	return s.lim.Allow(ctx, reqs)
}

func (s *lockedStore) GetAllow(ctx context.Context, key string, spare otp.Spare, reqs []otp.LimitRequest) (otp.Verification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.Get(ctx, key)
	if err != nil {
		v = otp.Verification{}
	}
	if spare.Matches(v) {
		return v, nil
	}
	if err := s.lim.Allow(ctx, reqs); err != nil {
		return otp.Verification{}, err
	}
	return v, nil
}

func (s *lockedStore) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.lim.Allow(ctx, reqs); err != nil {
		return otp.Verification{}, err
	}
	return s.AddAttempt(ctx, key, max)
}

func TestLimitingStoreInMemory(t *testing.T) {
	otptest.TestLimitingStore(t, func() otp.LimitingStore {
		s := memstore.New(memstore.Config{})
		t.Cleanup(func() { s.Close() })
		return &lockedStore{Store: s, lim: otp.NewMemoryLimiter(nil, 0)}
	})
}
