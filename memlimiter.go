package otp

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryLimiterConfig holds a MemoryLimiter's tunables. Every zero field
// takes its default.
type MemoryLimiterConfig struct {
	// Clock tells the time. Default [SystemClock].
	Clock Clock
	// MaxBytes bounds the memory the limiter's buckets take, by an
	// estimate of each bucket's size (its key included). Default 64 MiB:
	// about 400,000 buckets with numbers and IP addresses as keys.
	MaxBytes int
}

// MemoryLimiter is the in-process [Limiter], on golang.org/x/time/rate.
//
// No flood can reset it. A call it denies creates no bucket, so rotating
// client IDs or numbers that are refused cost nothing. Its memory is
// bounded in bytes: when a new bucket would not fit, it drops the buckets
// that have refilled, which cannot change any decision (a full bucket and a
// missing one answer alike); if that frees too little, the call fails
// closed with a *RateLimitError of ScopeCapacity, never by forgetting a
// bucket still counting. Breaker counters (a few per region) and overrides
// are never dropped. Buckets are keyed by their Limit too, so Verifiers
// with different Limits can share one MemoryLimiter without touching each
// other's buckets.
type MemoryLimiter struct {
	clock    Clock
	perShard int // bytes
	seed     maphash.Seed
	shards   [limiterShards]limiterShard

	mu        sync.Mutex // guards breakers and overrides
	breakers  map[breakerKey]*breakerState
	overrides map[string]Override
}

const limiterShards = 64

type limiterShard struct {
	mu    sync.Mutex
	m     map[bucketKey]*rate.Limiter
	bytes int
}

type bucketKey struct {
	scope Scope
	key   string
	limit Limit // two Verifiers' limits never share a bucket
}

type breakerKey struct {
	key    string
	window time.Duration
}

// bucketBytes estimates what one bucket holds: the rate.Limiter, the map
// entry and the key's bytes.
func bucketBytes(k bucketKey) int { return 160 + len(k.scope) + len(k.key) }

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns an in-process limiter configured by cfg.
func NewMemoryLimiter(cfg MemoryLimiterConfig) *MemoryLimiter {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	l := &MemoryLimiter{clock: cfg.Clock, seed: maphash.MakeSeed(), perShard: max(1, cfg.MaxBytes/limiterShards),
		breakers: map[breakerKey]*breakerState{}, overrides: map[string]Override{}}
	for i := range l.shards {
		l.shards[i].m = make(map[bucketKey]*rate.Limiter)
	}
	return l
}

func (l *MemoryLimiter) shard(k bucketKey) int {
	return int(maphash.String(l.seed, k.key) % limiterShards)
}

// verdict is what Allow decided for one request.
type verdict struct {
	key   bucketKey
	shard int
	lim   *rate.Limiter // nil: no bucket yet, so full
	wait  time.Duration
	skip  bool // a challenge bucket of a destination an override allows
}

// Allow implements [Limiter].
func (l *MemoryLimiter) Allow(_ context.Context, reqs []LimitRequest) error {
	now := l.clock.Now()
	var buf [16]verdict
	buckets := buf[:0]
	var locked [limiterShards]bool
	for _, r := range reqs {
		if r.Kind == LimitBucket && !r.Limit.off() {
			k := bucketKey{r.Scope, r.Key, Limit{N: r.Limit.N, Per: r.Limit.Per}}
			buckets = append(buckets, verdict{key: k, shard: l.shard(k)})
			locked[buckets[len(buckets)-1].shard] = true
		}
	}
	// Every shard involved is locked, in order, for the whole decision, so
	// that it is atomic and a denial never holds a token for a moment.
	for i := range locked {
		if locked[i] {
			l.shards[i].mu.Lock()
		}
	}
	defer l.unlock(&locked)
	for i := range buckets {
		b := &buckets[i]
		if b.lim = l.shards[b.shard].m[b.key]; b.lim != nil {
			b.wait = waitAt(b.lim, now)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	allow, challenge := false, Scope("")
	for _, r := range reqs {
		if r.Kind != LimitOverride {
			continue
		}
		o, ok := l.overrides[r.Key]
		if !ok || !o.Until.IsZero() && !now.Before(o.Until) {
			continue
		}
		switch o.Action {
		case OverrideBlock:
			return &BlockedError{Target: o.Target}
		case OverrideAllow:
			allow = true
		case OverrideChallenge:
			if r.Challenge {
				challenge = ScopeOverride
			}
		}
	}
	var hard *RateLimitError
	var soft *ChallengeError
	j := 0
	for _, r := range reqs {
		if r.Kind != LimitBucket || r.Limit.off() {
			continue
		}
		b := buckets[j]
		j++
		switch {
		case b.wait <= 0:
		case !r.Challenge:
			if hard == nil || b.wait > hard.RetryAfter {
				hard = &RateLimitError{Scope: r.Scope, RetryAfter: b.wait}
			}
		case !allow && (soft == nil || b.wait > soft.RetryAfter):
			soft = &ChallengeError{Scope: r.Scope, RetryAfter: b.wait}
		}
	}
	if hard != nil {
		return hard
	}
	if !allow {
		judged := false // the last breaker's
		for _, r := range reqs {
			if r.Kind != LimitBreaker || r.Breaker.off() {
				continue
			}
			if r.Fallback && judged {
				continue // a breaker before it in the chain answers for it
			}
			b := l.breakers[breakerKey{r.Key, r.Breaker.Window}]
			if b == nil {
				judged = false
				continue
			}
			var open bool
			if judged, open = b.judge(now, r.Breaker); open {
				challenge = ScopeConversion
				// Traffic a challenge bucket stops too is not the
				// breaker's to count (see LimitBreaker).
				if !r.Breaker.RecordOnly && soft == nil {
					b.add(now, r.Breaker, countRefused)
				}
			}
		}
	}
	switch {
	case challenge != "" && !allow:
		return &ChallengeError{Scope: challenge}
	case soft != nil:
		return soft
	}

	// Granted: take the tokens, making the buckets that are missing, if
	// they fit.
	j = 0
	for _, r := range reqs {
		if r.Kind != LimitBucket || r.Limit.off() {
			continue
		}
		b := &buckets[j]
		j++
		b.skip = r.Challenge && allow
		if b.lim == nil && !b.skip {
			sh := &l.shards[b.shard]
			if size := bucketBytes(b.key); sh.bytes+size > l.perShard && !sh.evict(now, size, l.perShard) {
				return &RateLimitError{Scope: ScopeCapacity}
			}
		}
	}
	for i := range buckets {
		b := &buckets[i]
		if b.skip {
			continue
		}
		if b.lim == nil {
			sh := &l.shards[b.shard]
			b.lim = rate.NewLimiter(rate.Every(b.key.limit.Per/time.Duration(b.key.limit.N)), b.key.limit.N)
			sh.m[b.key] = b.lim
			sh.bytes += bucketBytes(b.key)
		}
		b.lim.AllowN(now, 1)
	}
	return nil
}

// unlock unlocks the shards Allow locked. (A defer per shard, in Allow's
// loop, would cost an allocation each.)
func (l *MemoryLimiter) unlock(locked *[limiterShards]bool) {
	for i := range locked {
		if locked[i] {
			l.shards[i].mu.Unlock()
		}
	}
}

// waitAt returns how long until lim has a token, without taking one.
func waitAt(lim *rate.Limiter, now time.Time) time.Duration {
	if lim.TokensAt(now) >= 1 {
		return 0 // the common case, with no reservation to take back
	}
	r := lim.ReserveN(now, 1)
	defer r.CancelAt(now)
	return r.DelayFrom(now)
}

// full reports whether lim has refilled: forgetting it changes nothing.
func full(lim *rate.Limiter, now time.Time) bool {
	return lim.TokensAt(now) >= float64(lim.Burst())
}

// evict drops the shard's full buckets until size more bytes fit under
// max, and reports whether they do. The caller holds sh.mu.
func (sh *limiterShard) evict(now time.Time, size, max int) bool {
	for k, lim := range sh.m {
		if sh.bytes+size <= max {
			break
		}
		if full(lim, now) {
			delete(sh.m, k)
			sh.bytes -= bucketBytes(k)
		}
	}
	return sh.bytes+size <= max
}

// Record implements [Limiter].
func (l *MemoryLimiter) Record(_ context.Context, o Outcome, reqs []LimitRequest) error {
	now := l.clock.Now()
	judged := false // the last breaker's
	for _, r := range reqs {
		switch {
		case r.Kind == LimitBreaker && !r.Breaker.off():
			if r.Fallback && judged {
				continue // a breaker before it in the chain answers for it
			}
			l.mu.Lock()
			k := breakerKey{r.Key, r.Breaker.Window}
			b := l.breakers[k]
			if b == nil {
				b = &breakerState{}
				l.breakers[k] = b
			}
			judged, _ = b.judge(now, r.Breaker)
			switch o {
			case OutcomeSent:
				b.add(now, r.Breaker, countSent)
			case OutcomeSentChallenged:
				b.add(now, r.Breaker, countSent)
				b.add(now, r.Breaker, countPassed)
			case OutcomeVerified:
				b.add(now, r.Breaker, countVerified)
			}
			l.mu.Unlock()
		case r.Kind == LimitBucket && r.Refund && o == OutcomeVerified && !r.Limit.off():
			k := bucketKey{r.Scope, r.Key, Limit{N: r.Limit.N, Per: r.Limit.Per}}
			sh := &l.shards[l.shard(k)]
			sh.mu.Lock()
			// A negative n gives a token back; x/time/rate's only other
			// undo, a Reservation, would have to be kept from the send.
			if lim := sh.m[k]; lim != nil && !full(lim, now) {
				lim.AllowN(now, -1)
			}
			sh.mu.Unlock()
		}
	}
	return nil
}

// SetOverride implements [Limiter].
func (l *MemoryLimiter) SetOverride(_ context.Context, o Override) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.Action == OverrideNone {
		delete(l.overrides, o.Target.Key())
	} else {
		l.overrides[o.Target.Key()] = o
	}
	return nil
}

// Overrides implements [Limiter].
func (l *MemoryLimiter) Overrides(context.Context) ([]Override, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Override, 0, len(l.overrides))
	for _, o := range l.overrides {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.Target.Key(), b.Target.Key()) })
	return out, nil
}

// size reports how many buckets are held; for tests.
func (l *MemoryLimiter) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
