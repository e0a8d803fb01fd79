package otptest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// TestLimitingStore runs the conformance suite for the methods an
// [otp.LimitingStore] adds to an [otp.Store] (run [TestStore] for the
// rest): Allow, GetAllow and AllowAddAttempt.
//
//	func TestLimitingConformance(t *testing.T) {
//		otptest.TestLimitingStore(t, func() otp.LimitingStore {
//			return newStoreWithFreshLimits(t)
//		})
//	}
//
// The suite checks that limits are all or nothing across the requests of
// a call, and a denial names the scope with the longest wait; that
// GetAllow spares the repeat inside the cooldown (returning it and taking
// no token, even from an empty bucket), returns a zero Verification for a
// missing or expired one and still takes the tokens; that AllowAddAttempt
// takes the tokens before it reserves an attempt and reserves nothing when
// denied; that the store's own errors (not found, expired, too many
// attempts) come through the combined methods; and that of concurrent
// calls on a bucket of N exactly N are granted.
//
// As for TestStore, newStore is called once per subtest, never
// concurrently, and the suite uses the wall clock, with a 300ms TTL for
// expiry and a 500ms refill for limits. Each store newStore returns must
// start with limits of its own: the ScopeTotal bucket has an empty key,
// so two stores sharing limit state would share it.
func TestLimitingStore(t *testing.T, newStore func() otp.LimitingStore) {
	runRules(t, newStore, func(s otp.LimitingStore, prefix string) limitSuite {
		return limitSuite{storeSuite: storeSuite{store: s, prefix: prefix}, ls: s}
	}, []rule[limitSuite]{
		{"AllowAllOrNothing", testAllowAllOrNothing},
		{"AllowRetryAfter", testAllowRetryAfter},
		{"AllowRefill", testAllowRefill},
		{"AllowBucketsIsolated", testAllowBucketsIsolated},
		{"AllowConcurrent", testAllowConcurrent},
		{"GetAllowMissing", testGetAllowMissing},
		{"GetAllowLive", testGetAllowLive},
		{"GetAllowSpare", testGetAllowSpare},
		{"GetAllowExpired", testGetAllowExpired},
		{"GetAllowDenied", testGetAllowDenied},
		{"GetAllowConcurrent", testGetAllowConcurrent},
		{"AllowAddAttempt", testAllowAddAttempt},
		{"AllowAddAttemptErrors", testAllowAddAttemptErrors},
		{"AllowAddAttemptConcurrent", testAllowAddAttemptConcurrent},
	})
}

// limitSuite is what each rule of TestLimitingStore works with.
type limitSuite struct {
	storeSuite
	ls otp.LimitingStore
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
		noError(t, x.ls.Allow(t.Context(), reqs(r)), "Allow #%d of %d", i+1, r.Limit.N)
	}
	requireLimited(t, x.ls.Allow(t.Context(), reqs(r)), r.Scope, r.Limit.Per, "Allow on a drained bucket")
}

// testAllowAllOrNothing: a call takes a token from every bucket or from
// none, and requests whose limit is off are skipped.
func testAllowAllOrNothing(t *testing.T, x limitSuite) {
	ctx := t.Context()
	a := x.req(otp.ScopeNumber, "a", 1, time.Hour)
	b := x.req(otp.ScopeClient, "b", 1, time.Hour)
	c := x.req(otp.ScopeCountry, "c", 1, time.Hour)

	noError(t, x.ls.Allow(ctx, reqs(a, b)), "Allow(a, b)")
	requireLimited(t, x.ls.Allow(ctx, reqs(c, a)), otp.ScopeNumber, time.Hour, "Allow(c, a) with a empty")
	// c was not charged by the denied call.
	noError(t, x.ls.Allow(ctx, reqs(c)), "Allow(c) after a denied Allow(c, a)")
	requireLimited(t, x.ls.Allow(ctx, reqs(c)), otp.ScopeCountry, time.Hour, "Allow(c) twice")

	off := a
	off.Limit = otp.NoLimit
	noError(t, x.ls.Allow(ctx, reqs(off)), "Allow with the limit off")
	noError(t, x.ls.Allow(ctx, nil), "Allow with no requests")
	requireLimited(t, x.ls.Allow(ctx, reqs(off, b)), otp.ScopeClient, time.Hour, "Allow(off, b) with b empty")
}

// testAllowRetryAfter: RetryAfter is the wait for one token of the bucket
// with the longest wait among the empty ones.
func testAllowRetryAfter(t *testing.T, x limitSuite) {
	ctx := t.Context()
	two := x.req(otp.ScopeNumber, "two-per-hour", 2, time.Hour)
	x.drain(t, two)
	rl := requireLimited(t, x.ls.Allow(ctx, reqs(two)), otp.ScopeNumber, 30*time.Minute, "Allow of 2 per hour, third")
	isTrue(t, rl.RetryAfter > 29*time.Minute, "a token of 2 per hour comes back after about 30 minutes: RetryAfter %v", rl.RetryAfter)

	long := x.req(otp.ScopeTotal, "", 1, time.Hour)
	short := x.req(otp.ScopeClient, "one-per-minute", 1, time.Minute)
	fresh := x.req(otp.ScopeCountry, "fresh", 1, time.Minute)
	x.drain(t, long)
	x.drain(t, short)
	rl = requireLimited(t, x.ls.Allow(ctx, reqs(fresh, short, long)), otp.ScopeTotal, time.Hour, "Allow(fresh, short, long)")
	isTrue(t, rl.RetryAfter > 59*time.Minute, "RetryAfter is the longest wait: RetryAfter %v", rl.RetryAfter)
	rl = requireLimited(t, x.ls.Allow(ctx, reqs(long, short)), otp.ScopeTotal, time.Hour, "Allow(long, short)")
	isTrue(t, rl.RetryAfter > 59*time.Minute, "RetryAfter is the longest wait, whatever the order: RetryAfter %v", rl.RetryAfter)
	noError(t, x.ls.Allow(ctx, reqs(fresh)), "the fresh bucket was not charged")
}

// testAllowRefill: an empty bucket gets a token back after Per/N.
func testAllowRefill(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeChecks, "refill", 2, time.Second)
	x.drain(t, r)
	rl := requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeChecks, 500*time.Millisecond, "Allow on an empty bucket")
	time.Sleep(rl.RetryAfter)
	// A store reading another clock (a Redis server's) may lag a little.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := x.ls.Allow(ctx, reqs(r))
		if err == nil {
			break
		}
		isTrue(t, time.Now().Before(deadline), "no token came back: %v", err)
		requireLimited(t, err, otp.ScopeChecks, 500*time.Millisecond, "Allow while refilling")
		time.Sleep(10 * time.Millisecond)
	}
	requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeChecks, 500*time.Millisecond, "one token came back, not two")
}

// testAllowBucketsIsolated: a bucket is its scope and key; keys are
// arbitrary strings.
func testAllowBucketsIsolated(t *testing.T, x limitSuite) {
	ctx := t.Context()
	names := []string{"k", "k:x", "{tag}", "with space", "ключ 🔑", "nul\x00byte", "line\nbreak", ""}
	scopes := []otp.Scope{otp.ScopeNumber, otp.ScopeClient, otp.ScopeCountry, otp.ScopeChecks}
	for _, scope := range scopes {
		for _, name := range names {
			r := x.req(scope, name, 1, time.Hour)
			noError(t, x.ls.Allow(ctx, reqs(r)), "Allow(%s %q), first", scope, name)
		}
	}
	for _, scope := range scopes {
		for _, name := range names {
			r := x.req(scope, name, 1, time.Hour)
			requireLimited(t, x.ls.Allow(ctx, reqs(r)), scope, time.Hour, "Allow(%s %q), second", scope, name)
		}
	}
	total := otp.LimitRequest{Scope: otp.ScopeTotal, Limit: otp.Limit{N: 1, Per: time.Hour}}
	noError(t, x.ls.Allow(ctx, reqs(total)), "Allow(total)")
	requireLimited(t, x.ls.Allow(ctx, reqs(total)), otp.ScopeTotal, time.Hour, "Allow(total), second")
}

// testAllowConcurrent: of concurrent calls on a bucket of N, exactly N are
// granted.
func testAllowConcurrent(t *testing.T, x limitSuite) {
	const calls, n = 100, 7
	r := x.req(otp.ScopeNumber, "race", n, time.Hour)
	other := x.req(otp.ScopeClient, "race-other", calls, time.Hour)
	errs := race(calls, func(int) error { return x.ls.Allow(t.Context(), reqs(other, r)) })
	requireGranted(t, errs, n, otp.ScopeNumber)
	// The denied calls took nothing from the other bucket.
	for i := range calls - n {
		noError(t, x.ls.Allow(t.Context(), reqs(other)), "Allow(other) #%d after the race", i+1)
	}
	requireLimited(t, x.ls.Allow(t.Context(), reqs(other)), otp.ScopeClient, time.Hour, "Allow(other) once too many")
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

// testGetAllowMissing: with nothing under the key, GetAllow returns a zero
// Verification and takes the tokens.
func testGetAllowMissing(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeNumber, "missing", 1, time.Hour)
	spare := otp.Spare{To: "+447911123456", SentAfter: time.Now().Add(-time.Hour)}
	v, err := x.ls.GetAllow(ctx, x.key("missing"), spare, reqs(r))
	noError(t, err, "GetAllow on a missing key")
	equal(t, otp.Verification{}, v, "GetAllow on a missing key")
	_, err = x.ls.GetAllow(ctx, x.key("missing-2"), spare, reqs(r))
	requireLimited(t, err, otp.ScopeNumber, time.Hour, "GetAllow after the bucket's one token was taken")
	x.requireNotFound(t, x.key("missing"))

	v, err = x.ls.GetAllow(ctx, x.key("missing"), spare, nil)
	noError(t, err, "GetAllow without requests")
	equal(t, otp.Verification{}, v, "GetAllow without requests")
}

// testGetAllowLive: a live verification that is not the spare repeat is
// returned, and the tokens are taken.
func testGetAllowLive(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("live"), "id-live", time.Minute)
	v.Attempts = 2
	x.put(t, v)
	cases := []struct {
		name  string
		spare otp.Spare
	}{
		{"another number", otp.Spare{To: "+14155550123", SentAfter: v.SentAt.Add(-time.Second)}},
		{"sent at the edge of the cooldown", otp.Spare{To: v.To, SentAfter: v.SentAt}},
		{"sent before the cooldown", otp.Spare{To: v.To, SentAfter: v.SentAt.Add(time.Nanosecond)}},
	}
	for _, c := range cases {
		r := x.req(otp.ScopeNumber, c.name, 1, time.Hour)
		got, err := x.ls.GetAllow(ctx, v.Key, c.spare, reqs(r))
		noError(t, err, "GetAllow, %s", c.name)
		requireSameVerification(t, v, got, "GetAllow, %s", c.name)
		requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeNumber, time.Hour, "Allow after GetAllow, %s: the token was taken", c.name)
	}
	x.requireStored(t, v)
}

// testGetAllowSpare: the repeat inside the cooldown is returned and takes
// no token, even from an empty bucket.
func testGetAllowSpare(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("spare"), "id-spare", time.Minute)
	x.put(t, v)
	spare := otp.Spare{To: v.To, SentAfter: v.SentAt.Add(-time.Nanosecond)}
	a := x.req(otp.ScopeNumber, "spare-a", 1, time.Hour)
	b := x.req(otp.ScopeTotal, "spare-b", 1, time.Hour)
	for i := range 3 {
		got, err := x.ls.GetAllow(ctx, v.Key, spare, reqs(a, b))
		noError(t, err, "GetAllow of the repeat #%d", i+1)
		requireSameVerification(t, v, got, "GetAllow of the repeat #%d", i+1)
	}
	noError(t, x.ls.Allow(ctx, reqs(a, b)), "Allow after GetAllow of the repeat: no token was taken")

	// With the buckets empty the repeat is still returned.
	got, err := x.ls.GetAllow(ctx, v.Key, spare, reqs(a, b))
	noError(t, err, "GetAllow of the repeat with empty buckets")
	requireSameVerification(t, v, got, "GetAllow of the repeat with empty buckets")
	x.requireStored(t, v)
}

// testGetAllowExpired: an expired verification reads as none, even as the
// repeat, and the tokens are taken.
func testGetAllowExpired(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("expiring"), "id-expiring", 300*time.Millisecond)
	v.SentAt = oddNanos(time.Now(), 3)
	x.put(t, v)
	spare := otp.Spare{To: v.To, SentAfter: v.SentAt.Add(-time.Minute)}
	r := x.req(otp.ScopeNumber, "expiring", 1, time.Hour)
	time.Sleep(time.Until(v.ExpiresAt))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := x.store.Get(ctx, v.Key)
		if errors.Is(err, otp.ErrExpired) {
			break
		}
		noError(t, err, "Get just after expiry")
		isTrue(t, time.Now().Before(deadline), "the verification never expired")
		time.Sleep(10 * time.Millisecond)
	}
	got, err := x.ls.GetAllow(ctx, v.Key, spare, reqs(r))
	noError(t, err, "GetAllow on an expired verification")
	equal(t, otp.Verification{}, got, "GetAllow on an expired verification")
	requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeNumber, time.Hour, "Allow after GetAllow on an expired verification")
	x.requireExpired(t, v.Key)
}

// testGetAllowDenied: a denied GetAllow returns a zero Verification and
// takes nothing.
func testGetAllowDenied(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("denied"), "id-denied", time.Minute)
	x.put(t, v)
	empty := x.req(otp.ScopeClient, "empty", 1, time.Hour)
	fresh := x.req(otp.ScopeNumber, "fresh", 1, time.Hour)
	x.drain(t, empty)
	got, err := x.ls.GetAllow(ctx, v.Key, otp.Spare{To: "+14155550123"}, reqs(fresh, empty))
	requireLimited(t, err, otp.ScopeClient, time.Hour, "GetAllow with an empty bucket")
	equal(t, otp.Verification{}, got, "GetAllow denied")
	noError(t, x.ls.Allow(ctx, reqs(fresh)), "the denied GetAllow took nothing")
	x.requireStored(t, v)
}

// testGetAllowConcurrent: of concurrent GetAllow calls on a bucket of N,
// exactly N are granted.
func testGetAllowConcurrent(t *testing.T, x limitSuite) {
	const calls, n = 100, 5
	v := x.sample(x.key("race-live"), "id-race-live", time.Minute)
	x.put(t, v)
	r := x.req(otp.ScopeTotal, "race", n, time.Hour)
	spare := otp.Spare{To: "+14155550123"}
	errs := race(calls, func(i int) error {
		key := v.Key
		if i%2 == 0 {
			key = x.key("race-missing")
		}
		got, err := x.ls.GetAllow(t.Context(), key, spare, reqs(r))
		if err == nil && got.Ref.ID != "" && got.Ref.ID != v.Ref.ID {
			return errors.New("GetAllow returned another verification")
		}
		return err
	})
	requireGranted(t, errs, n, otp.ScopeTotal)
}

// testAllowAddAttempt: granted tokens reserve an attempt; a denial
// reserves nothing.
func testAllowAddAttempt(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("attempts"), "id-attempts", time.Minute)
	x.put(t, v)
	r := x.req(otp.ScopeChecks, "attempts", 2, time.Hour)
	for i := 1; i <= 2; i++ {
		got, err := x.ls.AllowAddAttempt(ctx, v.Key, 5, reqs(r))
		noError(t, err, "AllowAddAttempt #%d", i)
		v.Attempts = i
		requireSameVerification(t, v, got, "AllowAddAttempt #%d", i)
	}
	for i := range 2 {
		got, err := x.ls.AllowAddAttempt(ctx, v.Key, 5, reqs(r))
		requireLimited(t, err, otp.ScopeChecks, time.Hour, "AllowAddAttempt with the bucket empty, #%d", i+1)
		equal(t, otp.Verification{}, got)
		x.requireStored(t, v) // still 2 attempts
	}
	// With no limit, or the limit off, it is AddAttempt.
	got, err := x.ls.AllowAddAttempt(ctx, v.Key, 5, nil)
	noError(t, err, "AllowAddAttempt without requests")
	equal(t, 3, got.Attempts)
	off := r
	off.Limit = otp.NoLimit
	got, err = x.ls.AllowAddAttempt(ctx, v.Key, 5, reqs(off))
	noError(t, err, "AllowAddAttempt with the limit off")
	equal(t, 4, got.Attempts)
}

// testAllowAddAttemptErrors: the store's errors come through, after the
// tokens were taken.
func testAllowAddAttemptErrors(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeChecks, "missing", 1, time.Hour)
	_, err := x.ls.AllowAddAttempt(ctx, x.key("missing"), 5, reqs(r))
	requireNotFoundErr(t, err, "AllowAddAttempt on a missing key")
	requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeChecks, time.Hour, "Allow after AllowAddAttempt on a missing key: the token was taken")
	x.requireNotFound(t, x.key("missing"))

	u := x.sample(x.key("used-up"), "id-used-up", time.Minute)
	u.Attempts = 3
	x.put(t, u)
	_, err = x.ls.AllowAddAttempt(ctx, u.Key, 3, reqs(x.req(otp.ScopeChecks, "used-up", 5, time.Hour)))
	errorIs(t, err, otp.ErrTooManyAttempts, "AllowAddAttempt with every attempt used")
	x.requireStored(t, u)

	v := x.sample(x.key("expiring"), "id-expiring", 300*time.Millisecond)
	x.put(t, v)
	time.Sleep(time.Until(v.ExpiresAt))
	e := x.req(otp.ScopeChecks, "expiring", 100, time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := x.ls.AllowAddAttempt(ctx, v.Key, 5, reqs(e))
		if err == nil && time.Now().Before(deadline) {
			equal(t, v.Ref.ID, got.Ref.ID, "AllowAddAttempt just after expiry")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		requireExpiredErr(t, err, "AllowAddAttempt on an expired verification")
		break
	}
}

// testAllowAddAttemptConcurrent: concurrent calls get exactly as many
// attempts as both the bucket and the verification allow, and tokens are
// taken before attempts.
func testAllowAddAttemptConcurrent(t *testing.T, x limitSuite) {
	const calls, maxAttempts = 100, 5
	cases := []struct {
		name           string
		tokens         int
		granted        int // attempts reserved
		tooMany, limit int // refusals
	}{
		{"bucket-smaller", 3, 3, 0, calls - 3},
		{"bucket-larger", 50, maxAttempts, 50 - maxAttempts, calls - 50},
	}
	for _, c := range cases {
		v := x.sample(x.key(c.name), "id-"+c.name, time.Minute)
		x.put(t, v)
		r := x.req(otp.ScopeChecks, c.name, c.tokens, time.Hour)
		counts := make([]int, calls)
		errs := race(calls, func(i int) error {
			got, err := x.ls.AllowAddAttempt(t.Context(), v.Key, maxAttempts, reqs(r))
			counts[i] = got.Attempts
			return err
		})
		var ok []int
		tooMany, limited := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok = append(ok, counts[i])
			case errors.Is(err, otp.ErrTooManyAttempts):
				tooMany++
			default:
				requireLimited(t, err, otp.ScopeChecks, time.Hour, "%s: concurrent AllowAddAttempt", c.name)
				limited++
			}
		}
		slices.Sort(ok)
		var want []int
		for n := 1; n <= c.granted; n++ {
			want = append(want, n)
		}
		equal(t, want, ok, "%s: Attempts returned by the successful calls", c.name)
		equal(t, c.tooMany, tooMany, "%s: calls refused with ErrTooManyAttempts", c.name)
		equal(t, c.limit, limited, "%s: calls refused by the limit", c.name)
		v.Attempts = c.granted
		x.requireStored(t, v)
	}
}
