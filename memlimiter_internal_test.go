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

var bg = context.Background()

// A flood of distinct keys cannot grow the limiter past its bound in
// bytes: buckets that have refilled make room, and when none has, new
// keys are refused (fail closed) while every live bucket is kept.
func TestMemoryLimiterBoundedInBytes(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(MemoryLimiterConfig{Clock: clock, MaxBytes: 64 * 1000})
	lim := Limit{N: 5, Per: time.Minute}
	granted, full := 0, 0
	for i := range 2_000 {
		err := l.Allow(bg, []LimitRequest{{Scope: ScopeNumber, Key: "+4479" + strconv.Itoa(i), Limit: lim}})
		if err == nil {
			granted++
			continue
		}
		var rl *RateLimitError
		require.ErrorAs(t, err, &rl)
		require.Equal(t, ScopeCapacity, rl.Scope)
		full++
	}
	assert.Positive(t, full, "the limiter fails closed once full of live buckets")
	held := l.size()
	assert.Equal(t, granted, held, "no live bucket was dropped to make room")
	assert.LessOrEqual(t, held*bucketBytes(bucketKey{ScopeNumber, "+44790000", lim}), 64*1000)

	// Once the buckets have refilled (one token of five per minute comes
	// back in 12 s), forgetting them changes nothing, so new keys get
	// their room.
	for i := range 2_000 {
		clock.t = clock.t.Add(13 * time.Second)
		require.NoError(t, l.Allow(bg, []LimitRequest{{Scope: ScopeNumber, Key: "+4478" + strconv.Itoa(i), Limit: lim}}), "key %d", i)
	}
}

// A denied call creates no bucket, so a flood of refused calls with
// rotating keys costs the limiter nothing.
func TestMemoryLimiterDenialCreatesNoState(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(MemoryLimiterConfig{Clock: clock})
	total := LimitRequest{Scope: ScopeTotal, Limit: Limit{N: 1, Per: time.Hour}}
	require.NoError(t, l.Allow(bg, []LimitRequest{total}))
	before := l.size()
	for i := range 10_000 {
		err := l.Allow(bg, []LimitRequest{
			{Scope: ScopeClient, Key: "client-" + strconv.Itoa(i), Limit: Limit{N: 10, Per: time.Hour}},
			{Scope: ScopeNumber, Key: "+4479" + strconv.Itoa(i), Limit: Limit{N: 5, Per: time.Hour}},
			total})
		require.ErrorIs(t, err, ErrRateLimited)
	}
	assert.Equal(t, before, l.size())
}

// Two Verifiers sharing a MemoryLimiter with different Limits keep their
// buckets apart: neither resets nor drains the other's.
func TestMemoryLimiterSharedWithOtherLimits(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(MemoryLimiterConfig{Clock: clock})
	strict := LimitRequest{Scope: ScopeNumber, Key: "+447400123456", Limit: Limit{N: 1, Per: time.Hour}}
	loose := strict
	loose.Limit = Limit{N: 3, Per: time.Hour}
	require.NoError(t, l.Allow(bg, []LimitRequest{strict}))
	for range 3 {
		require.NoError(t, l.Allow(bg, []LimitRequest{loose}))
	}
	require.ErrorIs(t, l.Allow(bg, []LimitRequest{strict}), ErrRateLimited, "the strict bucket was not reset")
	require.ErrorIs(t, l.Allow(bg, []LimitRequest{loose}), ErrRateLimited)
}

func TestMemoryLimiterAllOrNothing(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewMemoryLimiter(MemoryLimiterConfig{Clock: clock})
	a := LimitRequest{Scope: ScopeNumber, Key: "a", Limit: Limit{N: 1, Per: time.Minute}}
	b := LimitRequest{Scope: ScopeClient, Key: "b", Limit: Limit{N: 1, Per: time.Hour}}
	require.NoError(t, l.Allow(bg, []LimitRequest{b}))
	err := l.Allow(bg, []LimitRequest{a, b})
	var rl *RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, ScopeClient, rl.Scope)
	assert.Equal(t, time.Hour, rl.RetryAfter)
	// a was not charged by the denied call: its one token is there, and
	// only one.
	require.NoError(t, l.Allow(bg, []LimitRequest{a}))
	err = l.Allow(bg, []LimitRequest{a})
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, ScopeNumber, rl.Scope)
	assert.Equal(t, time.Minute, rl.RetryAfter)
	// Half a minute on, a has half a token: still denied, nothing taken.
	clock.t = clock.t.Add(30 * time.Second)
	err = l.Allow(bg, []LimitRequest{a})
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 30*time.Second, rl.RetryAfter)
	clock.t = clock.t.Add(30 * time.Second)
	require.NoError(t, l.Allow(bg, []LimitRequest{a}))
}

// The breaker's estimate weighs the previous window by how much of it the
// sliding window still covers, and forgets windows older than that.
func TestBreakerWindows(t *testing.T) {
	c := Conversion{Window: time.Hour, MinSends: 10, MinShare: 0.5}
	t0 := time.Unix(0, 0).Add(100 * time.Hour) // a window boundary
	var b breakerState
	for range 20 {
		b.add(t0, c, countSent)
	}
	judged, open := b.judge(t0.Add(30*time.Minute), c)
	assert.True(t, judged && open, "20 sends, none verified")
	// Half into the next window the 20 count as 10: still enough to judge.
	judged, open = b.judge(t0.Add(90*time.Minute), c)
	assert.True(t, judged && open)
	judged, _ = b.judge(t0.Add(115*time.Minute), c)
	assert.False(t, judged, "a quarter of 20 is below MinSends")
	judged, _ = b.judge(t0.Add(3*time.Hour), c)
	assert.False(t, judged, "two windows on, nothing is left")
	assert.Zero(t, b.Prev[countSent]+b.Cur[countSent])
}

// A send counts toward the breaker's demand once past its grace, but for
// a surge: the sends in their grace beyond the larger of those past it and
// the verified ones count at once.
func TestBreakerGrace(t *testing.T) {
	c := Conversion{Window: time.Hour, MinSends: 10, MinShare: 0.5, Grace: time.Minute}
	t0 := time.Unix(0, 0).Add(100 * time.Hour)
	var b breakerState
	// A history: 20 sends ten minutes ago, all verified.
	for range 20 {
		b.add(t0.Add(-10*time.Minute), c, countSent)
		b.add(t0.Add(-10*time.Minute), c, countVerified)
	}
	for range 25 {
		b.add(t0, c, countSent)
	}
	judged, open := b.judge(t0.Add(time.Second), c)
	assert.True(t, judged && !open, "25 sends in their grace beside 20 verified: 5 of them a surge, 20 of 25 verified")
	judged, open = b.judge(t0.Add(2*time.Minute), c)
	assert.True(t, judged && open, "two minutes on, 25 unverified sends past their grace: 20 of 45 verified")

	var burst, few breakerState
	for range 20 {
		burst.add(t0, c, countSent)
	}
	judged, open = burst.judge(t0.Add(time.Second), c)
	assert.True(t, judged && open, "20 sends in their grace and nothing before: a surge, counted at once")
	for range 9 {
		few.add(t0, c, countSent)
	}
	judged, _ = few.judge(t0.Add(time.Second), c)
	assert.False(t, judged, "a surge of 9: below MinSends")
	c.Grace = 0
	var now breakerState
	for range 20 {
		now.add(t0, c, countSent)
	}
	judged, _ = now.judge(t0.Add(time.Second), c)
	assert.True(t, judged, "no grace: they count at once")
}

// A client ID of any length takes a bucket key of bounded size.
func TestLongClientIDsAreHashed(t *testing.T) {
	long := string(make([]byte, 4096))
	assert.LessOrEqual(t, len(clientKey(long)), maxClientLen)
	assert.NotEqual(t, clientKey(long), clientKey(long+"x"))
	assert.Equal(t, "203.0.113.9", clientKey("203.0.113.9"))
}
