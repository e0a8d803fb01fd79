package otptest

import (
	"errors"
	"fmt"
	"slices"
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
		return limitSuite{storeSuite: storeSuite{store: s, prefix: prefix}, lim: s, ls: s}
	}, append(slices.Clone(limiterRules), []rule[limitSuite]{
		{"GetAllowMissing", testGetAllowMissing},
		{"GetAllowLive", testGetAllowLive},
		{"GetAllowSpare", testGetAllowSpare},
		{"GetAllowExpired", testGetAllowExpired},
		{"GetAllowDenied", testGetAllowDenied},
		{"GetAllowConcurrent", testGetAllowConcurrent},
		{"AllowAddAttempt", testAllowAddAttempt},
		{"AllowAddAttemptErrors", testAllowAddAttemptErrors},
		{"AllowAddAttemptConcurrent", testAllowAddAttemptConcurrent},
		{"GetAllowClaims", testGetAllowClaims},
		{"PutRecordDeleteRecord", testPutRecordDeleteRecord},
		{"DeleteRecordConcurrent", testDeleteRecordConcurrent},
	}...))
}

// spareAfter is the Spare that matches a verification to to sent after
// sentAfter.
func spareAfter(to string, sentAfter time.Time) otp.Spare {
	return otp.Spare{To: to, Now: sentAfter.Add(time.Minute), Cooldowns: []time.Duration{time.Minute}}
}

// claim is the suite's claim: one token for the whole rule, so that its
// calls never wait for themselves.
func (x limitSuite) claim() otp.Claim {
	return otp.Claim{Token: "suite-" + x.prefix, Until: time.Now().Add(time.Hour)}
}

// testGetAllowMissing: with nothing under the key, GetAllow returns a zero
// Verification and takes the tokens.
func testGetAllowMissing(t *testing.T, x limitSuite) {
	ctx := t.Context()
	r := x.req(otp.ScopeNumber, "missing", 1, time.Hour)
	spare := spareAfter("+447911123456", time.Now().Add(-time.Hour))
	v, err := x.ls.GetAllow(ctx, x.key("missing"), spare, x.claim(), reqs(r))
	noError(t, err, "GetAllow on a missing key")
	equal(t, otp.Verification{}, v, "GetAllow on a missing key")
	_, err = x.ls.GetAllow(ctx, x.key("missing-2"), spare, x.claim(), reqs(r))
	requireLimited(t, err, otp.ScopeNumber, time.Hour, "GetAllow after the bucket's one token was taken")
	x.requireNotFound(t, x.key("missing"))

	v, err = x.ls.GetAllow(ctx, x.key("missing"), spare, x.claim(), nil)
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
		{"another number", spareAfter("+14155550123", v.SentAt.Add(-time.Second))},
		{"sent at the edge of the cooldown", spareAfter(v.To, v.SentAt)},
		{"sent before the cooldown", spareAfter(v.To, v.SentAt.Add(time.Nanosecond))},
	}
	for _, c := range cases {
		r := x.req(otp.ScopeNumber, c.name, 1, time.Hour)
		got, err := x.ls.GetAllow(ctx, v.Key, c.spare, x.claim(), reqs(r))
		noError(t, err, "GetAllow, %s", c.name)
		requireSameVerification(t, v, got, "GetAllow, %s", c.name)
		requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeNumber, time.Hour, "Allow after GetAllow, %s: the token was taken", c.name)
	}
	x.requireStored(t, v)
}

// testGetAllowSpare: the repeat inside the cooldown is returned and takes
// no token, even from an empty bucket.
func testGetAllowSpare(t *testing.T, x limitSuite) {
	ctx := t.Context()
	v := x.sample(x.key("spare"), "id-spare", time.Minute)
	x.put(t, v)
	spare := spareAfter(v.To, v.SentAt.Add(-time.Nanosecond))
	a := x.req(otp.ScopeNumber, "spare-a", 1, time.Hour)
	b := x.req(otp.ScopeTotal, "spare-b", 1, time.Hour)
	for i := range 3 {
		got, err := x.ls.GetAllow(ctx, v.Key, spare, x.claim(), reqs(a, b))
		noError(t, err, "GetAllow of the repeat #%d", i+1)
		requireSameVerification(t, v, got, "GetAllow of the repeat #%d", i+1)
	}
	noError(t, x.lim.Allow(ctx, reqs(a, b)), "Allow after GetAllow of the repeat: no token was taken")

	// With the buckets empty the repeat is still returned.
	got, err := x.ls.GetAllow(ctx, v.Key, spare, x.claim(), reqs(a, b))
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
	spare := spareAfter(v.To, v.SentAt.Add(-time.Minute))
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
	got, err := x.ls.GetAllow(ctx, v.Key, spare, x.claim(), reqs(r))
	noError(t, err, "GetAllow on an expired verification")
	equal(t, otp.Verification{}, got, "GetAllow on an expired verification")
	requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeNumber, time.Hour, "Allow after GetAllow on an expired verification")
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
	got, err := x.ls.GetAllow(ctx, v.Key, spareAfter("+14155550123", time.Time{}), x.claim(), reqs(fresh, empty))
	requireLimited(t, err, otp.ScopeClient, time.Hour, "GetAllow with an empty bucket")
	equal(t, otp.Verification{}, got, "GetAllow denied")
	noError(t, x.lim.Allow(ctx, reqs(fresh)), "the denied GetAllow took nothing")
	x.requireStored(t, v)
}

// testGetAllowConcurrent: of concurrent GetAllow calls on a bucket of N,
// exactly N are granted.
func testGetAllowConcurrent(t *testing.T, x limitSuite) {
	const calls, n = 100, 5
	v := x.sample(x.key("race-live"), "id-race-live", time.Minute)
	x.put(t, v)
	r := x.req(otp.ScopeTotal, "race", n, time.Hour)
	spare := spareAfter("+14155550123", time.Time{})
	errs := race(calls, func(i int) error {
		key := v.Key
		if i%2 == 0 {
			key = x.key("race-missing")
		}
		got, err := x.ls.GetAllow(t.Context(), key, spare, x.claim(), reqs(r))
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
	requireLimited(t, x.lim.Allow(ctx, reqs(r)), otp.ScopeChecks, time.Hour, "Allow after AllowAddAttempt on a missing key: the token was taken")
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

// testGetAllowClaims: a GetAllow that passes claims the key; another's
// GetAllow then waits (ErrSendInFlight) and takes nothing, even for the
// repeat; a denied GetAllow claims nothing; Put drops the claim.
func testGetAllowClaims(t *testing.T, x limitSuite) {
	ctx := t.Context()
	key := x.key("claims")
	r := x.req(otp.ScopeNumber, "claims", 2, time.Hour)
	other := otp.Claim{Token: "other-" + x.prefix, Until: time.Now().Add(time.Hour)}
	_, err := x.ls.GetAllow(ctx, key, spareAfter("+447911123456", time.Now()), x.claim(), reqs(r))
	noError(t, err, "GetAllow of a free key")
	_, err = x.ls.GetAllow(ctx, key, spareAfter("+447911123456", time.Now()), other, reqs(r))
	errorIs(t, err, otp.ErrSendInFlight, "GetAllow of a claimed key")
	_, err = x.ls.Claim(ctx, key, other)
	errorIs(t, err, otp.ErrSendInFlight, "Claim of a key GetAllow claimed")

	v := x.sample(key, "id-claims", time.Minute)
	x.put(t, v)
	got, err := x.ls.GetAllow(ctx, key, spareAfter(v.To, v.SentAt.Add(-time.Second)), other, reqs(r))
	noError(t, err, "GetAllow of the repeat once Put dropped the claim")
	requireSameVerification(t, v, got, "GetAllow of the repeat")
	_, err = x.ls.Claim(ctx, key, x.claim())
	noError(t, err, "the repeat claimed nothing")

	_, err = x.ls.GetAllow(ctx, key, spareAfter(v.To, v.SentAt.Add(-time.Second)), other, reqs(r))
	errorIs(t, err, otp.ErrSendInFlight, "a claim is checked before the repeat")
	noError(t, x.ls.Allow(ctx, reqs(r)), "the waiting GetAllow took no token")
	requireLimited(t, x.ls.Allow(ctx, reqs(r)), otp.ScopeNumber, time.Hour, "the first GetAllow took one")

	denied := x.key("claims-denied")
	_, err = x.ls.GetAllow(ctx, denied, spareAfter("+447911123456", time.Now()), x.claim(), reqs(r))
	requireLimited(t, err, otp.ScopeNumber, time.Hour, "GetAllow with an empty bucket")
	_, err = x.ls.Claim(ctx, denied, other)
	noError(t, err, "a denied GetAllow claimed nothing")
}

// testPutRecordDeleteRecord: PutRecord stores and feeds a sent outcome;
// DeleteRecord consumes and feeds a verified one, only when it removed
// the verification.
func testPutRecordDeleteRecord(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("put-record")
	refund := x.req(otp.ScopeRange, "put-record", 1, 24*time.Hour)
	refund.Refund = true
	noError(t, x.ls.Allow(ctx, reqs(refund)), "Allow(refund)")
	vs := make([]otp.Verification, 4)
	for i := range vs {
		vs[i] = x.sample(x.key(fmt.Sprint("put-record-", i)), fmt.Sprint("id-", i), time.Minute)
		noError(t, x.ls.PutRecord(ctx, vs[i], otp.OutcomeSent, reqs(b, refund)), "PutRecord #%d", i)
		x.requireStored(t, vs[i])
	}
	requireChallenge(t, x.ls.Allow(ctx, reqs(b)), otp.ScopeConversion, "4 sends recorded, none verified")

	err := x.ls.DeleteRecord(ctx, vs[0].Key, "id-other", otp.OutcomeVerified, reqs(b, refund))
	requireNotFoundErr(t, err, "DeleteRecord with another ID")
	x.requireStored(t, vs[0])
	requireLimited(t, x.ls.Allow(ctx, reqs(refund)), otp.ScopeRange, 24*time.Hour, "a DeleteRecord that removed nothing recorded nothing")
	for i := range 3 {
		noError(t, x.ls.DeleteRecord(ctx, vs[i].Key, vs[i].Ref.ID, otp.OutcomeVerified, reqs(b, refund)), "DeleteRecord #%d", i)
		x.requireNotFound(t, vs[i].Key)
	}
	noError(t, x.ls.Allow(ctx, reqs(b, refund)), "3 of 5 verified (one refusal), and the token back")
}

// testDeleteRecordConcurrent: of concurrent DeleteRecords of one
// verification (the right code checked on many instances at once), one
// consumes it and feeds its verified outcome, once: a verification counted
// twice would lift a pumped region's verified share and give a range two
// tokens for one verified send.
func testDeleteRecordConcurrent(t *testing.T, x limitSuite) {
	ctx := t.Context()
	b := x.breaker("delete-race")
	refund := x.req(otp.ScopeRange, "delete-race", 2, 24*time.Hour)
	refund.Refund = true
	v := x.sample(x.key("delete-race"), "id-race", time.Minute)
	noError(t, x.ls.PutRecord(ctx, v, otp.OutcomeSent, reqs(b, refund)), "PutRecord")
	x.record(t, otp.OutcomeSent, 3, b)
	for i := range 2 {
		noError(t, x.ls.Allow(ctx, reqs(refund)), "Allow #%d takes a token of the range's two", i)
	}
	requireLimited(t, x.ls.Allow(ctx, reqs(refund)), otp.ScopeRange, 24*time.Hour, "the range's tokens taken")
	errs := race(50, func(int) error {
		return x.ls.DeleteRecord(ctx, v.Key, v.Ref.ID, otp.OutcomeVerified, reqs(b, refund))
	})
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		requireNotFoundErr(t, err, "a losing DeleteRecord")
	}
	equal(t, 1, wins, "DeleteRecords that consumed the verification")
	noError(t, x.ls.Allow(ctx, reqs(refund)), "one token back")
	requireLimited(t, x.ls.Allow(ctx, reqs(refund)), otp.ScopeRange, 24*time.Hour, "one token back, not two")
	requireChallenge(t, x.ls.Allow(ctx, reqs(b)), otp.ScopeConversion, "1 of 4 sends verified: counted once")
}
