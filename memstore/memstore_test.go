package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// TestMain fails the run if any test, example or benchmark leaves a
// goroutine behind: no sweeper may outlive Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// newStore returns a Store closed when the test ends.
func newStore(t *testing.T, cfg memstore.Config) *memstore.Store {
	t.Helper()
	s := memstore.New(cfg)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// sample returns a verification created at now that expires after ttl.
func sample(key, id string, now time.Time, ttl time.Duration) otp.Verification {
	return otp.Verification{
		Key:       key,
		Ref:       otp.Ref{Provider: "vonage", ID: id},
		To:        "+447911123456",
		Channel:   otp.SMS,
		CreatedAt: now.Add(-time.Second),
		SentAt:    now,
		ExpiresAt: now.Add(ttl),
	}
}

func requireSame(t *testing.T, want, got otp.Verification) {
	t.Helper()
	require.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %s, got %s", want.CreatedAt, got.CreatedAt)
	require.True(t, want.SentAt.Equal(got.SentAt), "SentAt: want %s, got %s", want.SentAt, got.SentAt)
	require.True(t, want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt: want %s, got %s", want.ExpiresAt, got.ExpiresAt)
	got.CreatedAt, got.SentAt, got.ExpiresAt = want.CreatedAt, want.SentAt, want.ExpiresAt
	require.Equal(t, want, got)
}

func TestConformance(t *testing.T) {
	otptest.TestStore(t, func() otp.Store {
		s := memstore.New(memstore.Config{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two Verifiers of one process on one memstore behave as one.
func TestInstances(t *testing.T) {
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { s.Close() })
	otptest.TestInstances(t, func() otp.Store { return s })
}

// TestConformanceSweeping runs the suite with the sweeper working flat out
// and the shortest retention the suite allows, so that a sweep racing the
// operations shows.
func TestConformanceSweeping(t *testing.T) {
	otptest.TestStore(t, func() otp.Store {
		s := memstore.New(memstore.Config{Retention: time.Second, SweepInterval: time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestExpiry walks one verification through live, expired and forgotten by
// the clock alone, with the sweeper out of the way.
func TestExpiry(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	const retention = 10 * time.Minute
	s := newStore(t, memstore.Config{Clock: clock, Retention: retention, SweepInterval: 24 * time.Hour})
	v := sample("k", "id-1", t0, 5*time.Minute)
	require.NoError(t, s.Put(ctx, v))

	// Live until the instant before ExpiresAt.
	clock.Set(v.ExpiresAt.Add(-time.Nanosecond))
	got, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	requireSame(t, v, got)

	clock.Set(v.ExpiresAt)
	for name, call := range map[string]func() error{
		"Get":        func() error { _, err := s.Get(ctx, v.Key); return err },
		"AddAttempt": func() error { _, err := s.AddAttempt(ctx, v.Key, 5); return err },
		"MarkSent":   func() error { return s.MarkSent(ctx, v.Key, v.Ref.ID, clock.Now()) },
	} {
		err := call()
		require.ErrorIs(t, err, otp.ErrExpired, name)
		require.NotErrorIs(t, err, otp.ErrNotFound, name)
	}
	require.Equal(t, 1, s.Len())

	// Still expired, and unchanged, until ExpiresAt+Retention.
	clock.Set(v.ExpiresAt.Add(retention - time.Nanosecond))
	got, err = s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrExpired)
	require.Zero(t, got)
	clock.Set(v.ExpiresAt.Add(-time.Nanosecond))
	got, err = s.Get(ctx, v.Key)
	require.NoError(t, err)
	requireSame(t, v, got)

	clock.Set(v.ExpiresAt.Add(retention))
	_, err = s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrNotFound)
	require.NotErrorIs(t, err, otp.ErrExpired)
	require.Zero(t, s.Len(), "a read of a forgotten verification frees it")

	// Going back in time does not bring it back.
	clock.Set(t0)
	_, err = s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrNotFound)
}

// TestExpiredIsUnchanged: the calls refused with ErrExpired leave the
// verification as it was, and forgotten verifications answer ErrNotFound to
// every method, Delete included.
func TestExpiredIsUnchanged(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	s := newStore(t, memstore.Config{Clock: clock, Retention: time.Minute})
	v := sample("k", "id-1", t0, time.Minute)
	v.Attempts = 2
	require.NoError(t, s.Put(ctx, v))
	clock.Advance(90 * time.Second)

	require.ErrorIs(t, s.MarkSent(ctx, v.Key, v.Ref.ID, clock.Now()), otp.ErrExpired)
	_, err := s.AddAttempt(ctx, v.Key, 5)
	require.ErrorIs(t, err, otp.ErrExpired)
	require.ErrorIs(t, s.MarkSent(ctx, v.Key, "id-other", clock.Now()), otp.ErrNotFound,
		"another ID is not found, expired or not")

	clock.Set(t0)
	got, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	requireSame(t, v, got)

	clock.Set(v.ExpiresAt.Add(time.Minute))
	require.ErrorIs(t, s.Delete(ctx, v.Key, v.Ref.ID), otp.ErrNotFound)
	require.ErrorIs(t, s.MarkSent(ctx, v.Key, v.Ref.ID, clock.Now()), otp.ErrNotFound)
	_, err = s.AddAttempt(ctx, v.Key, 5)
	require.ErrorIs(t, err, otp.ErrNotFound)
}

// TestTimes: times keep their instant to the nanosecond and come back in
// UTC, without a monotonic reading; the zero time round-trips.
func TestTimes(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	s := newStore(t, memstore.Config{Clock: clock})
	tokyo := time.FixedZone("JST", 9*3600)

	v := sample("k", "id", t0, time.Minute)
	v.CreatedAt = time.Time{}
	v.SentAt = t0.In(tokyo).Add(time.Nanosecond)
	v.ExpiresAt = time.Now().Add(time.Hour * 24 * 365 * 10) // has a monotonic reading
	require.NoError(t, s.Put(ctx, v))
	got, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	requireSame(t, v, got)
	require.Equal(t, time.Time{}, got.CreatedAt)
	require.Equal(t, time.UTC, got.SentAt.Location())
	require.Equal(t, time.UTC, got.ExpiresAt.Location())
	require.Equal(t, got.ExpiresAt.Round(0), got.ExpiresAt, "no monotonic reading")

	at := t0.In(tokyo).Add(time.Second)
	require.NoError(t, s.MarkSent(ctx, v.Key, v.Ref.ID, at))
	got, err = s.Get(ctx, v.Key)
	require.NoError(t, err)
	require.True(t, at.Equal(got.SentAt))
	require.Equal(t, time.UTC, got.SentAt.Location())
}

// TestAnyYear: every method works with times and clocks in any year,
// including those that Unix nanoseconds cannot count (before 1678, after
// 2262), and an expired verification is forgotten after the retention.
func TestAnyYear(t *testing.T) {
	ctx := t.Context()
	otptest.TestStoreAnyYear(t, func(clock otp.Clock) otp.Store { return newStore(t, memstore.Config{Clock: clock}) })
	const retention = time.Minute
	for _, base := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(99999, 12, 31, 0, 0, 0, 5, time.UTC)} {
		clock := otptest.NewClock(base)
		s := newStore(t, memstore.Config{Clock: clock, Retention: retention})
		v := sample("k", "id", base, time.Minute)
		require.NoError(t, s.Put(ctx, v))
		clock.Set(v.ExpiresAt.Add(retention - time.Nanosecond))
		_, err := s.Get(ctx, v.Key)
		require.ErrorIs(t, err, otp.ErrExpired, "year %d: inside the retention", base.Year())
		clock.Set(v.ExpiresAt.Add(retention))
		_, err = s.Get(ctx, v.Key)
		require.ErrorIs(t, err, otp.ErrNotFound, "year %d: after the retention", base.Year())
	}

	// A verification from another century answers by the clock's year.
	clock := otptest.NewClock(t0)
	s := newStore(t, memstore.Config{Clock: clock})
	old := sample("old", "id", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute)
	future := sample("future", "id", time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute)
	require.NoError(t, s.Put(ctx, old))
	require.NoError(t, s.Put(ctx, future))
	_, err := s.Get(ctx, old.Key)
	require.ErrorIs(t, err, otp.ErrNotFound, "forgotten centuries ago")
	got, err := s.Get(ctx, future.Key)
	require.NoError(t, err)
	requireSame(t, future, got)
	require.NoError(t, s.Delete(ctx, future.Key, future.Ref.ID))
}

// TestZeroExpiresAt: a verification without an expiry is long forgotten,
// and Put of it still replaces what was there.
func TestZeroExpiresAt(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, memstore.Config{})
	v := sample("k", "id", time.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))
	v.ExpiresAt = time.Time{}
	require.NoError(t, s.Put(ctx, v))
	_, err := s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrNotFound)
}

// TestAttempts: any int count round-trips, and AddAttempt neither wraps nor
// stops short of maxAttempts.
func TestAttempts(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, memstore.Config{})
	v := sample("k", "id", time.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))

	for _, maxAttempts := range []int{0, -1, math.MinInt} {
		got, err := s.AddAttempt(ctx, v.Key, maxAttempts)
		require.ErrorIs(t, err, otp.ErrTooManyAttempts, maxAttempts)
		require.Zero(t, got, "a refused AddAttempt returns no verification")
	}

	for _, n := range []int{math.MinInt, -1, math.MaxInt32, math.MaxInt32 + 1, math.MaxInt - 1} {
		v.Attempts = n
		require.NoError(t, s.Put(ctx, v))
		got, err := s.Get(ctx, v.Key)
		require.NoError(t, err)
		require.Equal(t, n, got.Attempts)
		got, err = s.AddAttempt(ctx, v.Key, math.MaxInt)
		require.NoError(t, err, n)
		require.Equal(t, n+1, got.Attempts)
	}
	_, err := s.AddAttempt(ctx, v.Key, math.MaxInt)
	require.ErrorIs(t, err, otp.ErrTooManyAttempts)
	got, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	require.Equal(t, math.MaxInt, got.Attempts)
}

// TestLongStrings: the key, Ref.ID and To of any length round-trip, and a
// long Ref.ID matches only itself.
func TestLongStrings(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, memstore.Config{})
	id := strings.Repeat("i", 70_000)
	v := sample(strings.Repeat("k", 70_000), id+"1", time.Now(), time.Minute)
	v.Ref.Provider = strings.Repeat("p", 70_000)
	v.To = strings.Repeat("t", 70_000)
	v.Channel = otp.Channel(strings.Repeat("c", 70_000))
	require.NoError(t, s.Put(ctx, v))
	got, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	requireSame(t, v, got)

	require.ErrorIs(t, s.MarkSent(ctx, v.Key, id+"2", time.Now()), otp.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, v.Key, id), otp.ErrNotFound)
	require.NoError(t, s.MarkSent(ctx, v.Key, v.Ref.ID, time.Now()))
	require.NoError(t, s.Delete(ctx, v.Key, v.Ref.ID))
}

// TestProvidersAndChannels: provider names and channels come back as put,
// however many distinct ones there are, even under one key (one shard).
func TestProvidersAndChannels(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, memstore.Config{})
	providers := []string{"vonage", "infobip", "", "failover/vonage", "ünïcode"}
	channels := []otp.Channel{otp.SMS, otp.Voice, otp.Email, otp.WhatsApp, "", "carrier-pigeon"}
	var want []otp.Verification
	for i := range 2000 {
		v := sample(fmt.Sprint("k", i), fmt.Sprint("id", i), time.Now(), time.Minute)
		v.Ref.Provider = providers[i%len(providers)]
		v.Channel = channels[i%len(channels)]
		v.To = fmt.Sprintf("+4479111%05d", i)
		v.Attempts = i % 7
		require.NoError(t, s.Put(ctx, v))
		want = append(want, v)
	}
	for _, v := range want {
		got, err := s.Get(ctx, v.Key)
		require.NoError(t, err)
		requireSame(t, v, got)
	}

	for i := range 70_000 {
		v := sample("one-key", "id", time.Now(), time.Minute)
		v.Ref.Provider = fmt.Sprint("provider-", i)
		v.Channel = otp.Channel(fmt.Sprint("channel-", i))
		require.NoError(t, s.Put(ctx, v), i)
		got, err := s.Get(ctx, v.Key)
		require.NoError(t, err)
		requireSame(t, v, got)
	}
}

// TestContextIgnored: a done context does not stop a call, as documented.
func TestContextIgnored(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := newStore(t, memstore.Config{})
	v := sample("k", "id", time.Now(), time.Minute)
	require.NoError(t, s.Put(ctx, v))
	_, err := s.Get(ctx, v.Key)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, v.Key, v.Ref.ID))
}

// TestDefaults: zero and negative fields take the documented defaults.
func TestDefaults(t *testing.T) {
	ctx := t.Context()
	for _, cfg := range []memstore.Config{{}, {Retention: -1, SweepInterval: -1}} {
		clock := otptest.NewClock(t0)
		cfg.Clock = clock
		s := newStore(t, cfg)
		v := sample("k", "id", t0, time.Minute)
		require.NoError(t, s.Put(ctx, v))
		clock.Set(v.ExpiresAt.Add(5*time.Minute - time.Nanosecond))
		_, err := s.Get(ctx, v.Key)
		require.ErrorIs(t, err, otp.ErrExpired, "retained for 5 minutes")
		clock.Advance(time.Nanosecond)
		_, err = s.Get(ctx, v.Key)
		require.ErrorIs(t, err, otp.ErrNotFound, "forgotten after 5 minutes")
	}
}

// TestMinRetention: a retention under a second is raised to a second, the
// least the otp.Store contract allows.
func TestMinRetention(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	s := newStore(t, memstore.Config{Clock: clock, Retention: time.Millisecond})
	v := sample("k", "id", t0, time.Minute)
	require.NoError(t, s.Put(ctx, v))
	clock.Set(v.ExpiresAt.Add(time.Second - time.Nanosecond))
	_, err := s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrExpired)
	clock.Advance(time.Nanosecond)
	_, err = s.Get(ctx, v.Key)
	require.ErrorIs(t, err, otp.ErrNotFound)
}

// TestConcurrentChurn hammers a few keys with every method while the
// sweeper runs and the clock moves, for the race detector, and checks that
// no verification ever gets more attempts than allowed.
func TestConcurrentChurn(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	s := newStore(t, memstore.Config{Clock: clock, Retention: time.Second, SweepInterval: time.Millisecond})
	const maxAttempts = 3
	var ids atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprint("k", (g+i)%16)
				switch i % 5 {
				case 0:
					id := fmt.Sprint("id", ids.Add(1))
					if err := s.Put(ctx, sample(key, id, clock.Now(), time.Second)); err != nil {
						t.Error(err)
						return
					}
				case 1:
					v, err := s.AddAttempt(ctx, key, maxAttempts)
					if err == nil && (v.Attempts < 1 || v.Attempts > maxAttempts || v.Key != key) {
						t.Errorf("AddAttempt(%q) = %+v", key, v)
					}
				case 2:
					v, err := s.Get(ctx, key)
					if err == nil {
						_ = s.MarkSent(ctx, key, v.Ref.ID, clock.Now())
						_ = s.Delete(ctx, key, v.Ref.ID)
					}
				case 3:
					clock.Advance(50 * time.Millisecond)
				case 4:
					_, err := s.Get(ctx, key)
					if err != nil && !errors.Is(err, otp.ErrNotFound) && !errors.Is(err, otp.ErrExpired) {
						t.Errorf("Get(%q): %v", key, err)
					}
				}
			}
		})
	}
	wg.Wait()
}
