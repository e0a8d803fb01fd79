package otptest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// TestLimiter runs the conformance suite for an [otp.Limiter] against the
// limiters that newLimiter makes: every rule in the Limiter contract.
//
//	func TestLimiterConformance(t *testing.T) {
//		otptest.TestLimiter(t, func() otp.Limiter {
//			return otp.NewMemoryLimiter(otp.MemoryLimiterConfig{})
//		})
//	}
//
// The suite checks that a call's buckets are all or nothing and a denial
// names the scope with the longest wait; that buckets refill, are isolated
// by scope and key, and grant exactly N of concurrent calls; that a
// bucket with Challenge asks for a challenge, after any refusal by a
// bucket without; that a verified outcome gives a Refund bucket its token
// back, never beyond N; that a breaker opens on a low verified share once
// it has MinSends, counts its refusals until a passed challenge answers
// them, and closes when verifications come; that a RecordOnly breaker
// counts no refusal; and that overrides block, challenge and allow,
// expire, and are listed.
//
// newLimiter is called once per subtest, never concurrently; the suite
// uses the wall clock, and one-hour breaker windows so that its counts do
// not age while it runs. Keys and override targets are unique to each run,
// so limiters may share a backend, except for the ScopeTotal bucket, whose
// key is empty: each limiter newLimiter returns must have its own.
func TestLimiter(t *testing.T, newLimiter func() otp.Limiter) {
	runRules(t, newLimiter, func(l otp.Limiter, prefix string) limitSuite {
		return limitSuite{storeSuite: storeSuite{prefix: prefix}, lim: l}
	}, limiterRules)
}

// limiterRules are TestLimiter's rules; TestLimitingStore runs them too.
var limiterRules = []rule[limitSuite]{
	{"AllowAllOrNothing", testAllowAllOrNothing},
	{"AllowRetryAfter", testAllowRetryAfter},
	{"AllowRefill", testAllowRefill},
	{"AllowBucketsIsolated", testAllowBucketsIsolated},
	{"AllowConcurrent", testAllowConcurrent},
	{"ChallengeBucket", testChallengeBucket},
	{"Refund", testRefund},
	{"BreakerOpensAndCloses", testBreakerOpensAndCloses},
	{"BreakerMinSends", testBreakerMinSends},
	{"BreakerRecordOnly", testBreakerRecordOnly},
	{"BreakerBesideAChallengeBucket", testBreakerBesideAChallengeBucket},
	{"BreakersIsolated", testBreakersIsolated},
	{"BreakerFallback", testBreakerFallback},
	{"BreakerFallbackChain", testBreakerFallbackChain},
	{"BreakerGrace", testBreakerGrace},
	{"BreakerSurge", testBreakerSurge},
	{"Overrides", testOverrides},
	{"OverrideAllow", testOverrideAllow},
}

// limitSuite is what each rule of TestLimiter and TestLimitingStore
// works with: ls is nil in TestLimiter.
type limitSuite struct {
	storeSuite
	lim otp.Limiter
	ls  otp.LimitingStore
}

// req returns a request for the bucket name of scope, unique to this run
// and rule, allowing n per per.
func (x limitSuite) req(scope otp.Scope, name string, n int, per time.Duration) otp.LimitRequest {
	return otp.LimitRequest{Scope: scope, Key: x.prefix + name, Limit: otp.Limit{N: n, Per: per}}
}

// reqs makes a slice of requests.
func reqs(r ...otp.LimitRequest) []otp.LimitRequest { return r }

// requireLimited fails the test unless err is a *otp.RateLimitError for
// scope whose RetryAfter is in (0, most].
func requireLimited(t *testing.T, err error, scope otp.Scope, most time.Duration, msgAndArgs ...any) *otp.RateLimitError {
	t.Helper()
	var rl *otp.RateLimitError
	if !errors.As(err, &rl) {
		fail(t, fmt.Sprintf("%v is not a *otp.RateLimitError", err), msgAndArgs)
	}
	errorIs(t, err, otp.ErrRateLimited, msgAndArgs...)
	equal(t, scope, rl.Scope, msgAndArgs...)
	if rl.RetryAfter <= 0 || rl.RetryAfter > most {
		fail(t, fmt.Sprintf("RetryAfter %v is outside (0, %v]", rl.RetryAfter, most), msgAndArgs)
	}
	return rl
}

// drain takes every token of r's bucket and fails the test unless the
// next Allow is denied.
func (x limitSuite) drain(t *testing.T, r otp.LimitRequest) {
	t.Helper()
	for i := range r.Limit.N {
		noError(t, x.lim.Allow(t.Context(), reqs(r)), "Allow #%d of %d", i+1, r.Limit.N)
	}
	requireLimited(t, x.lim.Allow(t.Context(), reqs(r)), r.Scope, r.Limit.Per, "Allow on a drained bucket")
}

// testAllowAllOrNothing: a call takes a token from every bucket or from
// none, and requests whose limit is off are skipped.
func testAllowAllOrNothing(t *testing.T, x limitSuite) {
	ctx := t.Context()
	a := x.req(otp.ScopeNumber, "a", 1, time.Hour)
	b := x.req(otp.ScopeClient, "b", 1, time.Hour)
	c := x.req(otp.ScopeRegion, "c", 1, time.Hour)

	noError(t, x.lim.Allow(ctx, reqs(a, b)), "Allow(a, b)")
	requireLimited(t, x.lim.Allow(ctx, reqs(c, a)), otp.ScopeNumber, time.Hour, "Allow(c, a) with a empty")
	// c was not charged by the denied call.
	noError(t, x.lim.Allow(ctx, reqs(c)), "Allow(c) after a denied Allow(c, a)")
	requireLimited(t, x.lim.Allow(ctx, reqs(c)), otp.ScopeRegion, time.Hour, "Allow(c) twice")

	off := a
	off.Limit = otp.NoLimit
	noError(t, x.lim.Allow(ctx, reqs(off)), "Allow with the limit off")
	noError(t, x.lim.Allow(ctx, nil), "Allow with no requests")
	requireLimited(t, x.lim.Allow(ctx, reqs(off, b)), otp.ScopeClient, time.Hour, "Allow(off, b) with b empty")
}

// testAllowRetryAfter: RetryAfter is the wait for one token of the bucket
// with the longest wait among the empty ones.
func testAllowRetryAfter(t *testing.T, x limitSuite) {
	ctx := t.Context()
	two := x.req(otp.ScopeNumber, "two-per-hour", 2, time.Hour)
	x.drain(t, two)
	rl := requireLimited(t, x.lim.Allow(ctx, reqs(two)), otp.ScopeNumber, 30*time.Minute, "Allow of 2 per hour, third")
	isTrue(t, rl.RetryAfter > 29*time.Minute, "a token of 2 per hour comes back after about 30 minutes: RetryAfter %v", rl.RetryAfter)

	long := x.req(otp.ScopeTotal, "", 1, time.Hour)
	short := x.req(otp.ScopeClient, "one-per-minute", 1, time.Minute)
	fresh := x.req(otp.ScopeRegion, "fresh", 1, time.Minute)
	x.drain(t, long)
	x.drain(t, short)
	rl = requireLimited(t, x.lim.Allow(ctx, reqs(fresh, short, long)), otp.ScopeTotal, time.Hour, "Allow(fresh, short, long)")
	isTrue(t, rl.RetryAfter > 59*time.Minute, "RetryAfter is the longest wait: RetryAfter %v", rl.RetryAfter)
	rl = requireLimited(t, x.lim.Allow(ctx, reqs(long, short)), otp.ScopeTotal, time.Hour, "Allow(long, short)")
	isTrue(t, rl.RetryAfter > 59*time.Minute, "RetryAfter is the longest wait, whatever the order: RetryAfter %v", rl.RetryAfter)
	noError(t, x.lim.Allow(ctx, reqs(fresh)), "the fresh bucket was not charged")
}

// testAllowRefill: an empty bucket gets a token back after Per/N.
func testAllowRefill(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeChecks, "refill", 2, time.Second)
	x.drain(t, r)
	rl := requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeChecks, 500*time.Millisecond, "Allow on an empty bucket")
	time.Sleep(rl.RetryAfter)
	// A store reading another clock (a Redis server's) may lag a little.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := x.lim.Allow(ctx, reqs(r))
		if err == nil {
			break
		}
		isTrue(t, time.Now().Before(deadline), "no token came back: %v", err)
		requireLimited(t, err, otp.ScopeChecks, 500*time.Millisecond, "Allow while refilling")
		time.Sleep(10 * time.Millisecond)
	}
	requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeChecks, 500*time.Millisecond, "one token came back, not two")
}

// testAllowBucketsIsolated: a bucket is its scope and key; keys are
// arbitrary strings.
func testAllowBucketsIsolated(t *testing.T, x limitSuite) {
	ctx := t.Context()
	names := []string{"k", "k:x", "{tag}", "with space", "ключ 🔑", "nul\x00byte", "line\nbreak", ""}
	scopes := []otp.Scope{otp.ScopeNumber, otp.ScopeClient, otp.ScopeRegion, otp.ScopeChecks}
	for _, scope := range scopes {
		for _, name := range names {
			r := x.req(scope, name, 1, time.Hour)
			noError(t, x.lim.Allow(ctx, reqs(r)), "Allow(%s %q), first", scope, name)
		}
	}
	for _, scope := range scopes {
		for _, name := range names {
			r := x.req(scope, name, 1, time.Hour)
			requireLimited(t, x.lim.Allow(ctx, reqs(r)), scope, time.Hour, "Allow(%s %q), second", scope, name)
		}
	}
	total := otp.LimitRequest{Scope: otp.ScopeTotal, Limit: otp.Limit{N: 1, Per: time.Hour}}
	noError(t, x.lim.Allow(ctx, reqs(total)), "Allow(total)")
	requireLimited(t, x.lim.Allow(ctx, reqs(total)), otp.ScopeTotal, time.Hour, "Allow(total), second")
}

// testAllowConcurrent: of concurrent calls on a bucket of N, exactly N are
// granted.
func testAllowConcurrent(t *testing.T, x limitSuite) {
	const calls, n = 100, 7
	r := x.req(otp.ScopeNumber, "race", n, time.Hour)
	other := x.req(otp.ScopeClient, "race-other", calls, time.Hour)
	errs := race(calls, func(int) error { return x.lim.Allow(t.Context(), reqs(other, r)) })
	requireGranted(t, errs, n, otp.ScopeNumber)
	// The denied calls took nothing from the other bucket.
	for i := range calls - n {
		noError(t, x.lim.Allow(t.Context(), reqs(other)), "Allow(other) #%d after the race", i+1)
	}
	requireLimited(t, x.lim.Allow(t.Context(), reqs(other)), otp.ScopeClient, time.Hour, "Allow(other) once too many")
}

// race runs f(i) for i in [0, calls) concurrently, released together.
func race(calls int, f func(i int) error) []error {
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// requireGranted fails the test unless exactly n of errs are nil and the
// others are rate-limit errors for scope.
func requireGranted(t *testing.T, errs []error, n int, scope otp.Scope) {
	t.Helper()
	granted := 0
	for _, err := range errs {
		if err == nil {
			granted++
			continue
		}
		requireLimited(t, err, scope, time.Hour, "a concurrent call that was denied")
	}
	equal(t, n, granted, "concurrent calls granted")
}

// requireChallenge fails the test unless err is a *otp.ChallengeError for
// scope.
func requireChallenge(t *testing.T, err error, scope otp.Scope, msgAndArgs ...any) *otp.ChallengeError {
	t.Helper()
	var ce *otp.ChallengeError
	if !errors.As(err, &ce) {
		fail(t, fmt.Sprintf("%v is not a *otp.ChallengeError", err), msgAndArgs)
	}
	errorIs(t, err, otp.ErrChallengeRequired, msgAndArgs...)
	notErrorIs(t, err, otp.ErrRateLimited, msgAndArgs...)
	equal(t, scope, ce.Scope, msgAndArgs...)
	return ce
}

// testChallengeBucket: an empty bucket with Challenge asks for a
// challenge, with the bucket's wait; an empty bucket without refuses
// first, and neither takes a token.
func testChallengeBucket(t *testing.T, x limitSuite) {
	ctx := t.Context()
	soft := x.req(otp.ScopeRange, "soft", 1, time.Hour)
	soft.Challenge = true
	hard := x.req(otp.ScopeNumber, "hard", 1, time.Hour)
	fresh := x.req(otp.ScopeClient, "fresh", 1, time.Hour)

	noError(t, x.lim.Allow(ctx, reqs(soft)), "Allow(soft)")
	ce := requireChallenge(t, x.lim.Allow(ctx, reqs(fresh, soft)), otp.ScopeRange, "Allow(fresh, soft) with soft empty")
	isTrue(t, ce.RetryAfter > 59*time.Minute && ce.RetryAfter <= time.Hour, "RetryAfter %v is the bucket's wait", ce.RetryAfter)
	noError(t, x.lim.Allow(ctx, reqs(hard)), "Allow(hard)")
	requireLimited(t, x.lim.Allow(ctx, reqs(soft, hard)), otp.ScopeNumber, time.Hour, "a refusal comes before a challenge")
	noError(t, x.lim.Allow(ctx, reqs(fresh)), "the denied calls took nothing")
}

// testRefund: a verified outcome gives the token back to a Refund bucket,
// and to no other, and never beyond the bucket's N.
func testRefund(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeRange, "refund", 2, 24*time.Hour)
	r.Refund = true
	plain := x.req(otp.ScopeNumber, "no-refund", 1, time.Hour)
	noError(t, x.lim.Record(ctx, otp.OutcomeVerified, reqs(r, r)), "Record(verified) on a full bucket")
	x.drain(t, r)
	noError(t, x.lim.Allow(ctx, reqs(plain)), "Allow(plain)")
	noError(t, x.lim.Record(ctx, otp.OutcomeVerified, reqs(r, plain)), "Record(verified)")
	noError(t, x.lim.Allow(ctx, reqs(r)), "Allow(refund) after a verified outcome")
	requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeRange, 24*time.Hour, "one token came back, not more")
	requireLimited(t, x.lim.Allow(ctx, reqs(plain)), otp.ScopeNumber, time.Hour, "a bucket without Refund gets nothing back")
	noError(t, x.lim.Record(ctx, otp.OutcomeSent, reqs(r)), "Record(sent)")
	requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeRange, 24*time.Hour, "a sent outcome gives nothing back")
}

// breaker returns a breaker request on name: judged from 4 sends, open
// below half verified.
func (x limitSuite) breaker(name string) otp.LimitRequest {
	return otp.LimitRequest{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: x.prefix + name,
		Breaker: otp.Conversion{Window: time.Hour, MinSends: 4, MinShare: 0.5}}
}

func (x limitSuite) record(t *testing.T, o otp.Outcome, n int, r ...otp.LimitRequest) {
	t.Helper()
	for range n {
		noError(t, x.lim.Record(t.Context(), o, r), "Record(%d)", o)
	}
}

// testBreakerOpensAndCloses: a breaker opens when its verified share is
// below MinShare, counts each refusal as demand until a passed challenge
// answers it, and closes when enough sends are verified.
func testBreakerOpensAndCloses(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("region")
	x.record(t, otp.OutcomeSent, 4, b)
	x.record(t, otp.OutcomeVerified, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "1 of 4 verified")
	// Demand: 4 sent + 1 refused = 5; 2 verified of 5 is below half.
	x.record(t, otp.OutcomeVerified, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "2 verified, the refusal counted")
	// Demand: 4 sent + 2 refused = 6; a passed challenge answers a refusal
	// (5 sent, 1 passed: 5 + 1 = 6), and its verification makes 3 of 6.
	x.record(t, otp.OutcomeSentChallenged, 1, b)
	x.record(t, otp.OutcomeVerified, 1, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "3 of 6 verified")
	noError(t, x.lim.Allow(ctx, reqs(b)), "a closed breaker counts nothing when it allows")
	x.record(t, otp.OutcomeSent, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "3 of 7 verified")

	// A refusal takes no token.
	fresh := x.req(otp.ScopeNumber, "fresh", 1, time.Hour)
	requireChallenge(t, x.lim.Allow(ctx, reqs(fresh, b)), otp.ScopeConversion, "Allow(fresh, open breaker)")
	noError(t, x.lim.Allow(ctx, reqs(fresh)), "the refused call took nothing")

	off := b
	off.Breaker.MinSends = -1
	noError(t, x.lim.Allow(ctx, reqs(off)), "a breaker with MinSends < 0 is off")
}

// testBreakerMinSends: below MinSends a breaker stays closed, however few
// sends were verified.
func testBreakerMinSends(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("quiet")
	x.record(t, otp.OutcomeSent, 3, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "3 sends, none verified, MinSends 4")
	noError(t, x.lim.Allow(ctx, reqs(b)), "allowing counts no demand")
	x.record(t, otp.OutcomeSent, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "4 sends, none verified")
}

// testBreakerRecordOnly: a RecordOnly breaker answers as the breaker
// would but counts no refusal.
func testBreakerRecordOnly(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("record-only")
	b.Breaker.RecordOnly = true
	x.record(t, otp.OutcomeSent, 4, b)
	x.record(t, otp.OutcomeVerified, 1, b)
	for range 3 {
		requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "1 of 4 verified")
	}
	x.record(t, otp.OutcomeVerified, 1, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "2 of 4: the refusals were not counted")
}

// testBreakerBesideAChallengeBucket: an open breaker counts no refusal of
// a call that a bucket asking for a challenge refuses too, so that traffic
// the bucket already stops (a range out of tokens) cannot keep the breaker
// open for everyone else.
func testBreakerBesideAChallengeBucket(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("beside")
	soft := x.req(otp.ScopeRange, "beside-range", 1, time.Hour)
	soft.Challenge = true
	noError(t, x.lim.Allow(ctx, reqs(soft)), "Allow(range)")
	x.record(t, otp.OutcomeSent, 4, b)
	x.record(t, otp.OutcomeVerified, 1, b)
	for range 3 {
		requireChallenge(t, x.lim.Allow(ctx, reqs(soft, b)), otp.ScopeConversion, "1 of 4 verified, the range empty too")
	}
	x.record(t, otp.OutcomeVerified, 1, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "2 of 4: the refusals beside the empty range were not counted")
	// Alone, the refusals count: 2 verified of 5 sent and 2 refused.
	x.record(t, otp.OutcomeSent, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "2 of 5 verified")
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "2 of 6")
	x.record(t, otp.OutcomeVerified, 1, b)
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "3 of 7: the lone refusals were counted")
}

// testBreakersIsolated: breakers are their keys, and a breaker's counts
// are not a bucket's.
func testBreakersIsolated(t *testing.T, x limitSuite) {
	ctx := t.Context()
	bad, good := x.breaker("GB"), x.breaker("+1")
	x.record(t, otp.OutcomeSent, 4, bad, good)
	x.record(t, otp.OutcomeVerified, 4, good)
	requireChallenge(t, x.lim.Allow(ctx, reqs(good, bad)), otp.ScopeConversion, "one open breaker")
	noError(t, x.lim.Allow(ctx, reqs(good)), "the other breaker")
	bucket := x.req(otp.ScopeRegion, "GB", 1, time.Hour)
	noError(t, x.lim.Allow(ctx, reqs(bucket)), "a bucket of the same name")
}

// testBreakerFallback: a Fallback breaker is judged only when the breaker
// before it has too little demand to be judged.
func testBreakerFallback(t *testing.T, x limitSuite) {
	ctx := t.Context()
	group := x.breaker("+1")
	group.Fallback = true
	quiet, other, busy := x.breaker("JM"), x.breaker("BB"), x.breaker("CA")
	// Two quiet regions' sends are counted in the group: 4, none verified.
	x.record(t, otp.OutcomeSent, 2, quiet, group)
	x.record(t, otp.OutcomeSent, 2, other, group)
	requireChallenge(t, x.lim.Allow(ctx, reqs(quiet, group)), otp.ScopeConversion, "a quiet region falls back on its open group")
	// A region busy enough for its own breaker neither dilutes the group
	// (its first 4 sends count there, its verified ones, once it is
	// judged, do not) nor is judged by it.
	x.record(t, otp.OutcomeSent, 8, busy, group)
	x.record(t, otp.OutcomeVerified, 8, busy, group)
	noError(t, x.lim.Allow(ctx, reqs(busy, group)), "a region judged on its own skips its group")
	requireChallenge(t, x.lim.Allow(ctx, reqs(other, group)), otp.ScopeConversion, "the busy region's verifications left the group open")
}

// testBreakerFallbackChain: once a breaker of a chain is judged, every
// Fallback after it is skipped, not just the next: a busy region answers
// for its group and for the quiet breaker after it, in Allow and Record.
func testBreakerFallbackChain(t *testing.T, x limitSuite) {
	ctx := t.Context()
	region, group, quiet := x.breaker("chain-CA"), x.breaker("chain-+1"), x.breaker("chain-*")
	group.Fallback, quiet.Fallback = true, true
	alone := quiet
	alone.Fallback = false
	x.record(t, otp.OutcomeSent, 4, alone)
	requireChallenge(t, x.lim.Allow(ctx, reqs(alone)), otp.ScopeConversion, "the quiet breaker: 4 sends, none verified")
	x.record(t, otp.OutcomeSent, 4, region)
	x.record(t, otp.OutcomeVerified, 4, region)
	noError(t, x.lim.Allow(ctx, reqs(region, group, quiet)), "a judged region answers for the whole chain")
	x.record(t, otp.OutcomeVerified, 4, region, group, quiet)
	requireChallenge(t, x.lim.Allow(ctx, reqs(alone)), otp.ScopeConversion, "the quiet breaker heard nothing of the judged region")
}

// testBreakerGrace: a send counts toward a breaker's demand only once past
// its grace (between Grace and twice Grace old).
func testBreakerGrace(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("grace")
	b.Breaker.Grace = 300 * time.Millisecond
	// One verified, so that the surge (the other three) is below MinSends.
	x.record(t, otp.OutcomeSent, 4, b)
	x.record(t, otp.OutcomeVerified, 1, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "4 sends in their grace, 1 verified")
	time.Sleep(700 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := x.lim.Allow(ctx, reqs(b))
		if err != nil {
			requireChallenge(t, err, otp.ScopeConversion, "1 of 4 sends past their grace verified")
			return
		}
		// A limiter on another clock (a Redis server's) may lag a little.
		isTrue(t, time.Now().Before(deadline), "the sends never left their grace")
		time.Sleep(20 * time.Millisecond)
	}
}

// testBreakerSurge: more sends in their grace than the breaker has seen
// past it or verified are judged as that many unverified sends, so that a
// burst meets the breaker before its grace is over; beside a history of
// verified sends, the same young sends are no surge.
func testBreakerSurge(t *testing.T, x limitSuite) {
	ctx := t.Context()
	burst, known := x.breaker("surge"), x.breaker("surge-known")
	// known's Grace is long enough that a loaded machine records its last 4
	// sends and asks inside it.
	burst.Breaker.Grace, known.Breaker.Grace = time.Minute, time.Second
	x.record(t, otp.OutcomeSent, 3, burst)
	noError(t, x.lim.Allow(ctx, reqs(burst)), "3 sends in their grace: fewer than MinSends")
	x.record(t, otp.OutcomeSent, 1, burst)
	requireChallenge(t, x.lim.Allow(ctx, reqs(burst)), otp.ScopeConversion, "4 sends in their grace, nothing before")

	// 3 of 4 verified: judged with its 4 young sends counted (no Grace, or
	// every young send a surge) it would be 3 of 8 and refuse.
	x.record(t, otp.OutcomeSent, 4, known)
	x.record(t, otp.OutcomeVerified, 3, known)
	time.Sleep(2*known.Breaker.Grace + 100*time.Millisecond) // past twice the Grace
	x.record(t, otp.OutcomeSent, 4, known)
	noError(t, x.lim.Allow(ctx, reqs(known)), "4 sends in their grace beside 4 past it, 3 verified: no surge")
}

// target returns a range target unique to this run and rule.
func (x limitSuite) target(t *testing.T, digits string) otp.Target {
	t.Helper()
	var sum uint32
	for _, c := range x.prefix {
		sum = sum*31 + uint32(c)
	}
	tg, err := otp.ParseTarget(fmt.Sprintf("range:+99%09d%s", sum%1e9, digits))
	noError(t, err, "ParseTarget")
	return tg
}

func overrideReq(tg otp.Target) otp.LimitRequest {
	return otp.LimitRequest{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: tg.Key(), Challenge: true}
}

// testOverrides: a block refuses, a challenge asks for one, an override
// ends at its Until or when removed, and Overrides lists what is set.
func testOverrides(t *testing.T, x limitSuite) {
	ctx := t.Context()
	blocked, challenged, ended := x.target(t, "1"), x.target(t, "2"), x.target(t, "3")
	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: blocked, Action: otp.OverrideBlock}), "SetOverride(block)")
	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: challenged, Action: otp.OverrideChallenge,
		Until: time.Now().Add(time.Hour).Truncate(time.Millisecond)}), "SetOverride(challenge)")
	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: ended, Action: otp.OverrideBlock,
		Until: time.Now().Add(-time.Second)}), "SetOverride(block, ended)")

	fresh := x.req(otp.ScopeNumber, "fresh", 1, time.Hour)
	err := x.lim.Allow(ctx, reqs(fresh, overrideReq(challenged), overrideReq(blocked)))
	var be *otp.BlockedError
	isTrue(t, errors.As(err, &be), "%v is not a *otp.BlockedError", err)
	errorIs(t, err, otp.ErrDestinationBlocked)
	equal(t, blocked, be.Target, "the blocked target")
	requireChallenge(t, x.lim.Allow(ctx, reqs(fresh, overrideReq(challenged))), otp.ScopeOverride, "a challenge override")
	passed := overrideReq(challenged)
	passed.Challenge = false
	passedBlock := overrideReq(blocked)
	passedBlock.Challenge = false
	errorIs(t, x.lim.Allow(ctx, reqs(passedBlock)), otp.ErrDestinationBlocked, "a block, for a Start that passed a challenge")
	noError(t, x.lim.Allow(ctx, reqs(overrideReq(ended), fresh)), "an override past its Until")
	other := x.req(otp.ScopeNumber, "other", 1, time.Hour)
	noError(t, x.lim.Allow(ctx, reqs(passed, other)), "a challenge override passes a Start that passed a challenge")
	requireLimited(t, x.lim.Allow(ctx, reqs(fresh)), otp.ScopeNumber, time.Hour, "the refused calls took nothing, the granted one its token")

	list, err := x.lim.Overrides(ctx)
	noError(t, err, "Overrides")
	mine := map[otp.Target]otp.Override{}
	for _, o := range list {
		if o.Target == blocked || o.Target == challenged {
			mine[o.Target] = o
		}
	}
	equal(t, 2, len(mine), "Overrides lists both live overrides: %v", list)
	equal(t, otp.OverrideBlock, mine[blocked].Action)
	isTrue(t, mine[blocked].Until.IsZero(), "a block without Until")
	equal(t, otp.OverrideChallenge, mine[challenged].Action)
	isTrue(t, time.Until(mine[challenged].Until) > 59*time.Minute, "the challenge's Until: %v", mine[challenged].Until)

	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: blocked}), "SetOverride(none)")
	noError(t, x.lim.Allow(ctx, reqs(overrideReq(blocked))), "a removed block")
}

// testOverrideAllow: an allowed destination skips the Challenge buckets
// and the breakers, but not the other buckets nor a block.
func testOverrideAllow(t *testing.T, x limitSuite) {
	ctx := t.Context()
	trusted, blocked := x.target(t, "4"), x.target(t, "5")
	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: trusted, Action: otp.OverrideAllow}), "SetOverride(allow)")
	noError(t, x.lim.SetOverride(ctx, otp.Override{Target: blocked, Action: otp.OverrideBlock}), "SetOverride(block)")
	soft := x.req(otp.ScopeRange, "soft", 1, time.Hour)
	soft.Challenge = true
	x.drain(t, otp.LimitRequest{Scope: soft.Scope, Key: soft.Key, Limit: soft.Limit})
	b := x.breaker("trusted")
	x.record(t, otp.OutcomeSent, 4, b)
	hard := x.req(otp.ScopeNumber, "hard", 2, time.Hour)

	noError(t, x.lim.Allow(ctx, reqs(overrideReq(trusted), soft, b, hard)), "an allowed destination")
	noError(t, x.lim.Allow(ctx, reqs(overrideReq(trusted), soft, b, hard)), "again")
	requireLimited(t, x.lim.Allow(ctx, reqs(overrideReq(trusted), soft, b, hard)), otp.ScopeNumber, time.Hour,
		"the other buckets still apply")
	errorIs(t, x.lim.Allow(ctx, reqs(overrideReq(trusted), overrideReq(blocked))), otp.ErrDestinationBlocked,
		"a block wins over an allow")
	requireChallenge(t, x.lim.Allow(ctx, reqs(b)), otp.ScopeConversion, "without the override the breaker is open")
	// The allowed calls counted no refusal: 3 verified of 4 sent and the
	// one refusal above is enough, of 4 sent and 3 refusals or more not.
	x.record(t, otp.OutcomeVerified, 3, b)
	noError(t, x.lim.Allow(ctx, reqs(b)), "3 of 5: the allowed calls were no refusals")
}
