package otp

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// A flood of distinct keys cannot grow the limiter past its bound.
func TestMemoryLimiterBoundedUnderFlood(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(clock, 10_000)
	lim := Limit{N: 5, Per: time.Hour}
	for i := range 500_000 {
		err := l.Allow(context.Background(), []LimitRequest{{Scope: ScopeNumber, Key: "+4479" + strconv.Itoa(i), Limit: lim}, {Scope: ScopeClient, Key: strconv.Itoa(i % 7919), Limit: Limit{N: 1000, Per: time.Hour}}})
		require.NoError(t, err)
		clock.t = clock.t.Add(time.Microsecond)
	}
	assert.LessOrEqual(t, l.size(), 10_000+limiterShards)
	assert.Greater(t, l.size(), 5_000, "eviction keeps most of the table")
}

// Keys whose buckets have refilled go first (forgetting them changes no
// answer); only when that frees nothing are live keys dropped, an eighth at
// a time so the sweep's cost spreads over many inserts.
func TestLimiterShardEviction(t *testing.T) {
	now := time.Unix(1e9, 0)
	lim := Limit{N: 1, Per: time.Minute}
	sh := limiterShard{m: map[bucketKey]*bucket{}}
	for i := range 3 {
		sh.m[bucketKey{ScopeNumber, "old" + strconv.Itoa(i)}] = &bucket{limit: lim, touched: now.Add(-time.Minute)}
	}
	sh.m[bucketKey{ScopeNumber, "fresh"}] = &bucket{limit: lim, touched: now.Add(-59 * time.Second)}
	sh.evict(now, 4)
	require.Len(t, sh.m, 1)
	assert.Contains(t, sh.m, bucketKey{ScopeNumber, "fresh"})

	for i := range 15 {
		sh.m[bucketKey{ScopeNumber, "new" + strconv.Itoa(i)}] = &bucket{limit: lim, touched: now}
	}
	sh.evict(now, 16)
	assert.Len(t, sh.m, 13)
}

func TestMemoryLimiterAllOrNothing(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(clock, 0)
	a := LimitRequest{Scope: ScopeNumber, Key: "a", Limit: Limit{N: 1, Per: time.Minute}}
	b := LimitRequest{Scope: ScopeClient, Key: "b", Limit: Limit{N: 1, Per: time.Hour}}
	require.NoError(t, l.Allow(context.Background(), []LimitRequest{b}))
	err := l.Allow(context.Background(), []LimitRequest{a, b})
	var rl *RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, ScopeClient, rl.Scope)
	assert.Equal(t, time.Hour, rl.RetryAfter)
	// a was not charged by the denied call: its one token is there, and
	// only one.
	require.NoError(t, l.Allow(context.Background(), []LimitRequest{a}))
	err = l.Allow(context.Background(), []LimitRequest{a})
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, ScopeNumber, rl.Scope)
	assert.Equal(t, time.Minute, rl.RetryAfter)
	// With both empty, the longer wait is reported, whatever the order.
	err = l.Allow(context.Background(), []LimitRequest{a, b})
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, ScopeClient, rl.Scope)
	assert.Equal(t, time.Hour, rl.RetryAfter)
	// Half a minute on, a has half a token: still denied, nothing taken.
	clock.t = clock.t.Add(30 * time.Second)
	err = l.Allow(context.Background(), []LimitRequest{a})
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 30*time.Second, rl.RetryAfter)
	clock.t = clock.t.Add(30 * time.Second)
	require.NoError(t, l.Allow(context.Background(), []LimitRequest{a}))
	// Off limits are skipped.
	require.NoError(t, l.Allow(context.Background(), []LimitRequest{{Scope: ScopeTotal, Limit: NoLimit}}))
}
