package memstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// idle keeps the sweeper goroutine out of a test's way: its first tick
// comes after 24h/256, over five minutes.
const idle = 24 * time.Hour

func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s := New(cfg)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// verification returns a verification under key that expires at expires.
func verification(key string, expires time.Time) otp.Verification {
	return otp.Verification{
		Key:       key,
		Ref:       otp.Ref{Provider: "vonage", ID: "id-" + key},
		To:        "+447911123456",
		Channel:   otp.SMS,
		CreatedAt: expires.Add(-time.Minute),
		SentAt:    expires.Add(-time.Minute),
		ExpiresAt: expires,
	}
}

// put stores verification(key, expires).
func put(t *testing.T, s *Store, key string, expires time.Time) {
	t.Helper()
	require.NoError(t, s.Put(context.Background(), verification(key, expires)))
}

// held reports whether the map holds key, without the expiry checks (and
// the deletion of forgotten entries) that the Store's methods make.
func held(s *Store, key string) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.m[key]
	return ok
}

// sweepAll sweeps every shard once at now, as one round of the sweeper
// goroutine does.
func sweepAll(s *Store, now time.Time) {
	for i := range s.s {
		s.sweepShard(&s.s[i], now)
	}
}

// TestSweepFreesForgottenOnly: a sweep keeps what is live or expired but
// retained, and frees what is forgotten.
func TestSweepFreesForgottenOnly(t *testing.T) {
	const retention = time.Minute
	s := newTestStore(t, Config{Clock: otptest.NewClock(t0), Retention: retention, SweepInterval: idle})
	const n = 1000
	soon, later := t0.Add(time.Minute), t0.Add(time.Hour)
	for i := range n {
		put(t, s, fmt.Sprint("soon", i), soon)
		put(t, s, fmt.Sprint("later", i), later)
	}

	sweepAll(s, soon.Add(retention-time.Nanosecond))
	require.Equal(t, 2*n, s.Len(), "expired, still retained")

	sweepAll(s, soon.Add(retention))
	require.Equal(t, n, s.Len())
	for i := range n {
		require.False(t, held(s, fmt.Sprint("soon", i)), i)
		require.True(t, held(s, fmt.Sprint("later", i)), i)
	}
}

// keysInShard returns n keys that all land in shard i of s.
func keysInShard(s *Store, i, n int) []string {
	var keys []string
	for k := 0; len(keys) < n; k++ {
		key := fmt.Sprint("k", k)
		if s.shard(key) == &s.s[i] {
			keys = append(keys, key)
		}
	}
	return keys
}

// TestSweepBigShard: a shard too big for one lock hold is swept whole,
// while calls on it go on between the sweep's batches.
func TestSweepBigShard(t *testing.T) {
	const retention = time.Minute
	s := newTestStore(t, Config{Clock: otptest.NewClock(t0), Retention: retention, SweepInterval: idle})
	keys := keysInShard(s, 7, 10*sweepBatch+3)
	soon, later := t0.Add(time.Minute), t0.Add(time.Hour)
	for i, key := range keys {
		if i%2 == 0 {
			put(t, s, key, soon)
		} else {
			put(t, s, key, later)
		}
	}

	// Others put, read and delete keys in the same shard meanwhile.
	others := keysInShard(s, 7, len(keys)+100)[len(keys):]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx := context.Background()
			key := others[i%len(others)]
			if err := s.Put(ctx, verification(key, later)); err != nil {
				t.Error(err)
				return
			}
			_, _ = s.Get(ctx, key)
			if i%3 == 0 {
				_ = s.Delete(ctx, key, "id-"+key)
			}
		}
	})
	s.sweepShard(&s.s[7], soon.Add(retention))
	close(stop)
	wg.Wait()

	for i, key := range keys {
		require.Equal(t, i%2 == 1, held(s, key), "%d: %s", i, key)
	}
}

// TestSweepShrinks: a shard emptied to a quarter of its peak gets a new,
// smaller map holding what is left.
func TestSweepShrinks(t *testing.T) {
	const retention = time.Minute
	s := newTestStore(t, Config{Clock: otptest.NewClock(t0), Retention: retention, SweepInterval: idle})
	keys := keysInShard(s, 3, 400)
	for i, key := range keys {
		expires := t0.Add(time.Minute)
		if i%10 == 0 {
			expires = t0.Add(time.Hour)
		}
		put(t, s, key, expires)
	}
	sh := &s.s[3]
	require.Equal(t, 400, sh.peak)

	s.sweepShard(sh, t0.Add(time.Minute+retention))
	require.Equal(t, 40, sh.peak, "the map was remade")
	require.Len(t, sh.m, 40)
	for i, key := range keys {
		require.Equal(t, i%10 == 0, held(s, key), i)
	}
}

// TestSweeperRuns: the sweeper goroutine sweeps by itself, by the store's
// clock.
func TestSweeperRuns(t *testing.T) {
	ctx := t.Context()
	clock := otptest.NewClock(t0)
	s := newTestStore(t, Config{Clock: clock, Retention: time.Minute, SweepInterval: time.Millisecond})
	const n = 1000
	for i := range n {
		put(t, s, fmt.Sprint("k", i), t0.Add(time.Minute))
	}
	clock.Set(t0.Add(2 * time.Minute))
	require.Eventually(t, func() bool { return s.Len() == 0 }, 10*time.Second, time.Millisecond)

	// A store emptied by the sweeper works as before.
	put(t, s, "again", clock.Now().Add(time.Minute))
	_, err := s.Get(ctx, "again")
	require.NoError(t, err)
}

// TestCloseStopsSweeper: the sweeper has returned by the time Close does;
// Close again, even concurrently, is a no-op; and the store keeps
// answering.
func TestCloseStopsSweeper(t *testing.T) {
	ctx := t.Context()
	s := New(Config{SweepInterval: time.Millisecond})
	require.NoError(t, s.Close())
	select {
	case <-s.done:
	default:
		t.Fatal("the sweeper is still running after Close")
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { require.NoError(t, s.Close()) })
	}
	wg.Wait()

	put(t, s, "k", time.Now().Add(time.Minute))
	v, err := s.AddAttempt(ctx, "k", 5)
	require.NoError(t, err)
	require.Equal(t, 1, v.Attempts)
	require.NoError(t, s.Delete(ctx, "k", v.Ref.ID))
	require.Zero(t, s.Len())
}

// TestUnclosedStoreStopsSweeper: the sweeper of a Store dropped without
// Close returns once the Store has been garbage collected.
func TestUnclosedStoreStopsSweeper(t *testing.T) {
	done := func() <-chan struct{} {
		s := New(Config{SweepInterval: time.Millisecond})
		put(t, s, "k", time.Now().Add(time.Minute))
		return s.done
	}()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatal("the sweeper of an unreachable Store is still running")
		case <-time.After(time.Millisecond):
		}
	}
}
