package otp

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit allows N events per Per, as a token bucket: a burst of N, refilled
// evenly over Per. The zero Limit means "use the default"; a negative N
// turns the limit off (see [NoLimit]).
type Limit struct {
	N   int
	Per time.Duration
}

// NoLimit turns a limit off.
var NoLimit = Limit{N: -1}

// NoLimits turns every limit off: for load tests and trusted callers. The
// Guard's number rules still apply.
var NoLimits = Limits{PerNumber: NoLimit, PerClient: NoLimit, PerCountry: NoLimit, PerRange: NoLimit,
	Total: NoLimit, ChecksPerClient: NoLimit}

func (l Limit) off() bool { return l.N < 0 }

func (l Limit) or(def Limit) Limit {
	if l == (Limit{}) {
		return def
	}
	return l
}

// Limits are the abuse limits a Verifier applies before asking the provider.
// Each zero field takes the default shown; set a field to [NoLimit] to turn
// it off. Denials are *[RateLimitError] values naming the scope.
type Limits struct {
	// PerNumber caps sends (Start and Resend) to one destination.
	// Default: 5 per hour.
	PerNumber Limit
	// PerClient caps sends per client ID (see [WithClient]); calls without
	// a client ID skip it. Default: 10 per hour.
	PerClient Limit
	// PerCountry caps sends per country calling code. Default: 500 per hour.
	PerCountry Limit
	// PerRange caps sends per number range: the numbers that share all but
	// their last RangeDigits digits. Carriers allocate numbers, and pumping
	// schemes lease them, in such blocks, so an attack on many numbers of
	// one range meets this limit long before PerCountry, while real people
	// almost never share a range. Default: 10 per hour.
	PerRange Limit
	// RangeDigits is how many trailing digits a range leaves out: 4 makes
	// blocks of 10,000 numbers. Default 4; allowed 1 to 8.
	RangeDigits int
	// Total caps all sends: a budget. Default: 2,000 per hour.
	Total Limit
	// ChecksPerClient caps Check calls per client ID, across keys; calls
	// without a client ID skip it. Default: 30 per 10 minutes.
	ChecksPerClient Limit
}

func (l Limits) withDefaults() Limits {
	l.PerNumber = l.PerNumber.or(Limit{5, time.Hour})
	l.PerClient = l.PerClient.or(Limit{10, time.Hour})
	l.PerCountry = l.PerCountry.or(Limit{500, time.Hour})
	l.PerRange = l.PerRange.or(Limit{10, time.Hour})
	if l.RangeDigits == 0 {
		l.RangeDigits = 4
	}
	l.Total = l.Total.or(Limit{2000, time.Hour})
	l.ChecksPerClient = l.ChecksPerClient.or(Limit{30, 10 * time.Minute})
	return l
}

func (l Limits) validate() error {
	if l.RangeDigits < 1 || l.RangeDigits > 8 {
		return errorf("RangeDigits %d is outside 1..8", l.RangeDigits)
	}
	for _, x := range []Limit{l.PerNumber, l.PerClient, l.PerCountry, l.PerRange, l.Total, l.ChecksPerClient} {
		if !x.off() && (x.N == 0 || x.Per <= 0) {
			return errorf("limit %d per %v needs a positive N and Per", x.N, x.Per)
		}
	}
	return nil
}

// LimitRequest names one bucket a call must take a token from.
type LimitRequest struct {
	Scope Scope
	Key   string // the number, client ID or calling code; "" for ScopeTotal
	Limit Limit
}

// Limiter decides whether a call may proceed. The default is an in-process
// limiter built on golang.org/x/time/rate; a shared one (redisstore) makes
// the limits hold across processes.
type Limiter interface {
	// Allow takes one token from the bucket of every request, or from none:
	// if any bucket is empty it charges nothing and returns a
	// *RateLimitError for that scope, with the RetryAfter of the longest
	// wait among the empty buckets. Requests with an off Limit are skipped.
	// Allow must not keep reqs after it returns. Safe for concurrent use.
	Allow(ctx context.Context, reqs []LimitRequest) error
}

// MemoryLimiter is the in-process [Limiter]. Its memory is bounded: a key
// whose bucket has refilled is forgotten (which changes nothing), and when
// its table is still full an eighth of it is dropped, chosen arbitrarily, so
// a flood of distinct numbers or client IDs cannot grow it without limit. A
// dropped key starts again with a full bucket: under such a flood a limit
// may let a few more calls through, never fewer.
type MemoryLimiter struct {
	clock    Clock
	perShard int
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

const limiterShards = 64

type limiterShard struct {
	mu sync.Mutex
	m  map[bucketKey]*bucket
}

type bucketKey struct {
	scope Scope
	key   string
}

type bucket struct {
	lim     *rate.Limiter
	limit   Limit
	touched time.Time // last token taken
}

// NewMemoryLimiter returns an in-process limiter holding at most about
// maxKeys buckets (default 100,000 when maxKeys <= 0), reading time from
// clock (default [SystemClock]).
func NewMemoryLimiter(clock Clock, maxKeys int) *MemoryLimiter {
	if clock == nil {
		clock = SystemClock
	}
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	l := &MemoryLimiter{clock: clock, seed: maphash.MakeSeed()}
	l.perShard = max(1, maxKeys/limiterShards)
	for i := range l.shards {
		l.shards[i].m = make(map[bucketKey]*bucket)
	}
	return l
}

// Allow implements [Limiter].
func (l *MemoryLimiter) Allow(_ context.Context, reqs []LimitRequest) error {
	now := l.clock.Now()
	var buf [8]*rate.Limiter
	taken := buf[:0]
	for i, r := range reqs {
		if r.Limit.off() {
			continue
		}
		lim := l.bucket(r, now)
		if lim.AllowN(now, 1) {
			taken = append(taken, lim)
			continue
		}
		// Give back what the earlier requests took. A negative n returns
		// tokens: x/time/rate's only other undo is a Reservation, which costs
		// an allocation on every call; TestMemoryLimiterAllOrNothing holds
		// the library to it.
		for _, t := range taken {
			t.AllowN(now, -1)
		}
		denied := &RateLimitError{Scope: r.Scope, RetryAfter: wait(lim, now)}
		for _, rest := range reqs[i+1:] {
			if rest.Limit.off() {
				continue
			}
			if d := wait(l.bucket(rest, now), now); d > denied.RetryAfter {
				denied.Scope, denied.RetryAfter = rest.Scope, d
			}
		}
		return denied
	}
	return nil
}

// wait returns how long until lim has a token, without taking one.
func wait(lim *rate.Limiter, now time.Time) time.Duration {
	r := lim.ReserveN(now, 1)
	defer r.CancelAt(now)
	return r.DelayFrom(now)
}

// bucket returns the limiter for r, creating it if needed.
func (l *MemoryLimiter) bucket(r LimitRequest, now time.Time) *rate.Limiter {
	k := bucketKey{r.Scope, r.Key}
	sh := &l.shards[maphash.String(l.seed, r.Key)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[k]
	if b == nil || b.limit != r.Limit {
		if len(sh.m) >= l.perShard {
			sh.evict(now, l.perShard)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(r.Limit.Per/time.Duration(r.Limit.N)), r.Limit.N), limit: r.Limit}
		sh.m[k] = b
	}
	b.touched = now
	return b.lim
}

// evict drops every bucket that has refilled (forgetting it changes
// nothing). If that frees too little it drops an eighth of the shard in map
// order, so that the cost of a sweep is spread over many inserts.
func (sh *limiterShard) evict(now time.Time, max int) {
	for k, b := range sh.m {
		if now.Sub(b.touched) >= b.limit.Per {
			delete(sh.m, k)
		}
	}
	for k := range sh.m {
		if len(sh.m) <= max-max/8-1 {
			break
		}
		delete(sh.m, k)
	}
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
