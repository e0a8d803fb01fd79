package otptest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// TestStore runs the conformance suite against the stores that newStore
// makes. Every otp.Store implementation should call it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		otptest.TestStore(t, func() otp.Store {
//			s := memstore.New(memstore.Config{})
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks every rule in the [otp.Store] contract: not-found and
// expired are told apart; Put replaces everything, attempts included;
// AddAttempt, MarkSent and Delete act only on the verification with the
// given Ref.ID; concurrent AddAttempt calls never reserve more than the
// allowed attempts and concurrent Deletes have exactly one winner; keys are
// arbitrary strings of up to [otp.MaxKeyLen] bytes and never affect each
// other; and times round-trip to the nanosecond (compared with
// [time.Time.Equal], so locations and monotonic readings may be dropped).
// What several Verifiers on one store must see (one success of concurrent
// right codes, concurrent Starts sending once) is [TestInstances]'s: a
// shared store runs both.
//
// Each rule is a subtest with a fresh store: newStore is called once per
// subtest, never concurrently, before the subtest calls t.Parallel. Stores
// needing to be closed should register that with t.Cleanup on the t of the
// calling test, as above; those cleanups run after every subtest has ended.
//
// The suite uses the wall clock, so the store must use the real time too.
// Expiry is tested with a 300ms TTL; the store's retention of expired
// verifications (during which they read as ErrExpired) must be at least one
// second. Keys start with a random prefix per run, so several runs may share
// one backend, such as a Redis server, without colliding; the suite does not
// remove what it leaves there beyond what its Delete calls remove.
func TestStore(t *testing.T, newStore func() otp.Store) {
	runRules(t, newStore, func(s otp.Store, prefix string) storeSuite {
		return storeSuite{store: s, prefix: prefix}
	}, []rule[storeSuite]{
		{"Missing", testStoreMissing},
		{"RoundTrip", testStoreRoundTrip},
		{"ZeroAttemptsDistinctTimes", testStoreZeroAttemptsDistinctTimes},
		{"PutReplaces", testStorePutReplaces},
		{"Expiry", testStoreExpiry},
		{"AddAttempt", testStoreAddAttempt},
		{"AddAttemptConcurrent", testStoreAddAttemptConcurrent},
		{"MarkSent", testStoreMarkSent},
		{"Delete", testStoreDelete},
		{"DeleteConcurrent", testStoreDeleteConcurrent},
		{"KeysIsolated", testStoreKeysIsolated},
		{"Claim", testStoreClaim},
		{"ClaimConcurrent", testStoreClaimConcurrent},
	})
}

// rule is one named check of a conformance suite, run on a suite value X.
type rule[X any] struct {
	name string
	test func(t *testing.T, x X)
}

// runRules runs each rule as a parallel subtest on a store of its own,
// made by newStore before the subtest goes parallel, with keys under a
// prefix unique to the run and the rule.
// newPrefix returns a key prefix unique to one run of a suite.
func newPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return "otptest-" + hex.EncodeToString(b[:]) + "/"
}

func runRules[S, X any](t *testing.T, newStore func() S, suite func(s S, prefix string) X, rules []rule[X]) {
	prefix := newPrefix()
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			s := newStore()
			isTrue(t, any(s) != nil, "newStore returned nil")
			t.Parallel()
			r.test(t, suite(s, prefix+r.name+"/"))
		})
	}
}

// storeSuite is what each rule of TestStore works with.
type storeSuite struct {
	store  otp.Store
	prefix string // unique to one run and one rule
}

// key returns a key unique to this run and rule.
func (x storeSuite) key(name string) string { return x.prefix + name }

// sample returns a live verification under key with Ref.ID id, which
// expires after ttl. Its times have odd nanoseconds, so that a store that
// rounds them fails, and CreatedAt, SentAt and ExpiresAt all differ.
func (x storeSuite) sample(key, id string, ttl time.Duration) otp.Verification {
	now := time.Now().Round(0) // no monotonic reading: compare wall times
	return otp.Verification{
		Key:       key,
		Ref:       otp.Ref{Provider: "otptest", ID: id},
		To:        "+447911123456",
		Region:    "GB",
		Channel:   otp.SMS,
		Sends:     1,
		Attempts:  0,
		CreatedAt: oddNanos(now.Add(-2*time.Minute), 1),
		SentAt:    oddNanos(now.Add(-time.Minute), 7),
		ExpiresAt: oddNanos(now.Add(ttl), 9),
	}
}

// put stores v and fails the test if the store refuses.
func (x storeSuite) put(t *testing.T, v otp.Verification) {
	t.Helper()
	noError(t, x.store.Put(t.Context(), v), "Put(%q)", v.Key)
}

// requireStored fails the test unless Get(want.Key) returns want.
func (x storeSuite) requireStored(t *testing.T, want otp.Verification) {
	t.Helper()
	got, err := x.store.Get(t.Context(), want.Key)
	noError(t, err, "Get(%q)", want.Key)
	requireSameVerification(t, want, got, "Get(%q)", want.Key)
}

// requireNotFound fails the test unless Get(key) returns ErrNotFound.
func (x storeSuite) requireNotFound(t *testing.T, key string) {
	t.Helper()
	_, err := x.store.Get(t.Context(), key)
	requireNotFoundErr(t, err, "Get(%q)", key)
}

// requireExpired fails the test unless Get(key) returns ErrExpired.
func (x storeSuite) requireExpired(t *testing.T, key string) {
	t.Helper()
	_, err := x.store.Get(t.Context(), key)
	requireExpiredErr(t, err, "Get(%q)", key)
}

// requireNotFoundErr fails the test unless err is ErrNotFound and nothing
// that contradicts it.
func requireNotFoundErr(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	errorIs(t, err, otp.ErrNotFound, msgAndArgs...)
	notErrorIs(t, err, otp.ErrExpired, msgAndArgs...)
	notErrorIs(t, err, otp.ErrTooManyAttempts, msgAndArgs...)
}

// requireExpiredErr fails the test unless err is ErrExpired and not
// ErrNotFound.
func requireExpiredErr(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	errorIs(t, err, otp.ErrExpired, msgAndArgs...)
	notErrorIs(t, err, otp.ErrNotFound, msgAndArgs...)
	notErrorIs(t, err, otp.ErrTooManyAttempts, msgAndArgs...)
}

// requireSameVerification fails the test unless got equals want, comparing
// times as instants.
func requireSameVerification(t *testing.T, want, got otp.Verification, msgAndArgs ...any) {
	t.Helper()
	msg := ""
	if len(msgAndArgs) > 0 {
		msg = fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...) + ": "
	}
	times := []struct {
		name      string
		want, got time.Time
	}{
		{"CreatedAt", want.CreatedAt, got.CreatedAt},
		{"SentAt", want.SentAt, got.SentAt},
		{"ExpiresAt", want.ExpiresAt, got.ExpiresAt},
	}
	for _, f := range times {
		isTrue(t, f.want.Equal(f.got), "%s%s: want %s, got %s",
			msg, f.name, f.want.Format(time.RFC3339Nano), f.got.Format(time.RFC3339Nano))
	}
	got.CreatedAt, got.SentAt, got.ExpiresAt = want.CreatedAt, want.SentAt, want.ExpiresAt
	equal(t, want, got, msgAndArgs...)
}

// oddNanos returns t moved by less than a microsecond so that its
// nanoseconds end in ns (0 to 999).
func oddNanos(t time.Time, ns int) time.Time {
	return t.Truncate(time.Microsecond).Add(time.Duration(ns))
}

// testStoreMissing: every method reports ErrNotFound for a key never Put,
// and none of them creates anything under it.
func testStoreMissing(t *testing.T, x storeSuite) {
	ctx := t.Context()
	key := x.key("never-put")

	x.requireNotFound(t, key)
	_, err := x.store.AddAttempt(ctx, key, 5)
	requireNotFoundErr(t, err, "AddAttempt on a missing key")
	err = x.store.MarkSent(ctx, key, "id-1", time.Now())
	requireNotFoundErr(t, err, "MarkSent on a missing key")
	err = x.store.Delete(ctx, key, "id-1")
	requireNotFoundErr(t, err, "Delete on a missing key")

	// Nothing above may have left a record behind.
	x.requireNotFound(t, key)
	_, err = x.store.AddAttempt(ctx, key, 5)
	requireNotFoundErr(t, err, "AddAttempt on a missing key, again")
}

// testStoreRoundTrip: Put then Get returns every field as it was put.
func testStoreRoundTrip(t *testing.T, x storeSuite) {
	v := x.sample(x.key("round-trip"), "id-round-trip-1", time.Minute)
	v.Ref.Provider = "vonage"
	v.To = "someone@example.com"
	v.Region = ""
	v.Channel = otp.Email
	v.Attempts = 3
	v.Sends = 4
	v.Challenged = true
	x.put(t, v)
	x.requireStored(t, v)

	// A second read is the same: Get changes nothing.
	x.requireStored(t, v)
}

// testStoreZeroAttemptsDistinctTimes: a verification with no attempts and a
// CreatedAt different from its SentAt round-trips, and later operations
// keep CreatedAt apart from SentAt.
func testStoreZeroAttemptsDistinctTimes(t *testing.T, x storeSuite) {
	ctx := t.Context()
	v := x.sample(x.key("zero"), "id-zero", time.Minute)
	v.CreatedAt = oddNanos(time.Now().Add(-4*time.Minute), 3)
	v.SentAt = oddNanos(time.Now().Add(-10*time.Second), 5)
	equal(t, 0, v.Attempts)
	x.put(t, v)
	x.requireStored(t, v)

	got, err := x.store.AddAttempt(ctx, v.Key, 5)
	noError(t, err, "AddAttempt")
	v.Attempts = 1
	requireSameVerification(t, v, got, "AddAttempt")

	v.SentAt = oddNanos(time.Now(), 11)
	noError(t, x.store.MarkSent(ctx, v.Key, v.Ref.ID, v.SentAt), "MarkSent")
	v.Sends++
	x.requireStored(t, v)
}

// testStorePutReplaces: Put over an existing verification replaces all of
// it, attempts included, and the old Ref.ID no longer matches.
func testStorePutReplaces(t *testing.T, x storeSuite) {
	ctx := t.Context()
	old := x.sample(x.key("replaced"), "id-old", time.Minute)
	x.put(t, old)
	for range 3 {
		_, err := x.store.AddAttempt(ctx, old.Key, 5)
		noError(t, err, "AddAttempt")
	}
	old.Attempts = 3
	x.requireStored(t, old)

	now := time.Now()
	v := otp.Verification{
		Key:       old.Key,
		Ref:       otp.Ref{Provider: "infobip", ID: "id-new"},
		To:        "+14155550123",
		Channel:   otp.Voice,
		Attempts:  0,
		CreatedAt: oddNanos(now.Add(-30*time.Second), 21),
		SentAt:    oddNanos(now.Add(-20*time.Second), 23),
		ExpiresAt: oddNanos(now.Add(2*time.Minute), 25),
	}
	x.put(t, v)
	x.requireStored(t, v)

	// Operations with the old ID miss, and change nothing.
	err := x.store.MarkSent(ctx, v.Key, old.Ref.ID, time.Now())
	requireNotFoundErr(t, err, "MarkSent with the replaced ID")
	err = x.store.Delete(ctx, v.Key, old.Ref.ID)
	requireNotFoundErr(t, err, "Delete with the replaced ID")
	x.requireStored(t, v)

	// The attempts start again from the new verification's count.
	got, err := x.store.AddAttempt(ctx, v.Key, 5)
	noError(t, err, "AddAttempt after Put")
	v.Attempts = 1
	requireSameVerification(t, v, got, "AddAttempt after Put")

	// Put sets the count it is given, not zero.
	v.Attempts = 4
	x.put(t, v)
	x.requireStored(t, v)
	got, err = x.store.AddAttempt(ctx, v.Key, 5)
	noError(t, err, "AddAttempt after Put with 4 attempts")
	equal(t, 5, got.Attempts, "AddAttempt after Put with 4 attempts")
	_, err = x.store.AddAttempt(ctx, v.Key, 5)
	errorIs(t, err, otp.ErrTooManyAttempts, "AddAttempt after Put with 4 attempts, twice")
}

// testStoreExpiry: after ExpiresAt, the reading methods return ErrExpired,
// never the verification and never ErrNotFound; it can still be deleted
// with its ID, and replaced by Put.
func testStoreExpiry(t *testing.T, x storeSuite) {
	ctx := t.Context()
	const ttl = 300 * time.Millisecond
	v := x.sample(x.key("expiring"), "id-expiring", ttl)
	v.Attempts = 1
	w := x.sample(x.key("expiring-then-put"), "id-expiring-then-put", ttl)
	x.put(t, v)
	x.put(t, w)
	x.requireStored(t, v)
	x.requireStored(t, w)

	// Wait until the store agrees that v has expired. A store reading
	// another clock (a Redis server's) may lag the test's a little; meanwhile
	// v must read as live or expired, and nothing else.
	time.Sleep(time.Until(v.ExpiresAt) + 20*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := x.store.Get(ctx, v.Key)
		if err == nil && time.Now().Before(deadline) {
			requireSameVerification(t, v, got, "Get just after expiry")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		requireExpiredErr(t, err, "Get after ExpiresAt (waited until %s)", time.Now().Format(time.RFC3339Nano))
		break
	}

	_, err := x.store.AddAttempt(ctx, v.Key, 5)
	requireExpiredErr(t, err, "AddAttempt on an expired verification")
	x.requireExpired(t, v.Key)
	x.requireNotFound(t, x.key("never-put"))

	// Delete with another ID misses; with the right ID it removes the
	// expired verification for good.
	err = x.store.Delete(ctx, v.Key, "id-other")
	requireNotFoundErr(t, err, "Delete of an expired verification with another ID")
	x.requireExpired(t, v.Key)
	noError(t, x.store.Delete(ctx, v.Key, v.Ref.ID), "Delete of an expired verification")
	x.requireNotFound(t, v.Key)
	err = x.store.Delete(ctx, v.Key, v.Ref.ID)
	requireNotFoundErr(t, err, "second Delete of an expired verification")

	// Put over an expired verification makes the key live again.
	x.requireExpired(t, w.Key)
	w2 := x.sample(w.Key, "id-replacement", time.Minute)
	x.put(t, w2)
	x.requireStored(t, w2)
	got, err := x.store.AddAttempt(ctx, w2.Key, 5)
	noError(t, err, "AddAttempt after Put over an expired verification")
	w2.Attempts = 1
	requireSameVerification(t, w2, got, "AddAttempt after Put over an expired verification")
}

// testStoreAddAttempt: AddAttempt counts one attempt per call up to max,
// returns the whole verification, and refuses beyond max without counting.
func testStoreAddAttempt(t *testing.T, x storeSuite) {
	ctx := t.Context()
	v := x.sample(x.key("attempts"), "id-attempts", time.Minute)
	x.put(t, v)
	for i := 1; i <= 3; i++ {
		got, err := x.store.AddAttempt(ctx, v.Key, 3)
		noError(t, err, "AddAttempt #%d of 3", i)
		v.Attempts = i
		requireSameVerification(t, v, got, "AddAttempt #%d of 3", i)
		x.requireStored(t, v)
	}
	for i := range 2 {
		_, err := x.store.AddAttempt(ctx, v.Key, 3)
		errorIs(t, err, otp.ErrTooManyAttempts, "AddAttempt beyond max, #%d", i+1)
		notErrorIs(t, err, otp.ErrNotFound)
		notErrorIs(t, err, otp.ErrExpired)
		x.requireStored(t, v) // still 3
	}

	// max belongs to the call, not to the verification.
	got, err := x.store.AddAttempt(ctx, v.Key, 5)
	noError(t, err, "AddAttempt with a larger max")
	v.Attempts = 4
	requireSameVerification(t, v, got, "AddAttempt with a larger max")

	// More attempts than max (a lowered limit) is also too many.
	u := x.sample(x.key("over-max"), "id-over-max", time.Minute)
	u.Attempts = 5
	x.put(t, u)
	_, err = x.store.AddAttempt(ctx, u.Key, 3)
	errorIs(t, err, otp.ErrTooManyAttempts, "AddAttempt with 5 used and max 3")
	x.requireStored(t, u)

	_, err = x.store.AddAttempt(ctx, x.key("missing"), 3)
	requireNotFoundErr(t, err, "AddAttempt on a missing key")
	x.requireNotFound(t, x.key("missing"))
}

// testStoreAddAttemptConcurrent: of many concurrent AddAttempt calls,
// exactly max minus the attempts already used succeed, each with a
// different count.
func testStoreAddAttemptConcurrent(t *testing.T, x storeSuite) {
	const calls, maxAttempts = 100, 5
	cases := []struct {
		name  string
		start int
	}{
		{"from-0", 0},
		{"from-2", 2},
		{"from-5", 5},
	}
	for _, c := range cases {
		v := x.sample(x.key(c.name), "id-"+c.name, time.Minute)
		v.Attempts = c.start
		x.put(t, v)
	}

	// All keys at once, so that a store mixing up counters shows it.
	type result struct {
		got otp.Verification
		err error
	}
	results := make([][]result, len(cases))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cases {
		results[i] = make([]result, calls)
		for j := range calls {
			wg.Go(func() {
				<-start
				got, err := x.store.AddAttempt(t.Context(), x.key(c.name), maxAttempts)
				results[i][j] = result{got, err}
			})
		}
	}
	close(start)
	wg.Wait()

	for i, c := range cases {
		var counts []int
		tooMany := 0
		for _, r := range results[i] {
			switch {
			case r.err == nil:
				equal(t, x.key(c.name), r.got.Key, "%s: AddAttempt returned another key's verification", c.name)
				equal(t, "id-"+c.name, r.got.Ref.ID, "%s: AddAttempt returned another verification", c.name)
				counts = append(counts, r.got.Attempts)
			case errors.Is(r.err, otp.ErrTooManyAttempts):
				tooMany++
			default:
				noError(t, r.err, "%s: concurrent AddAttempt", c.name)
			}
		}
		slices.Sort(counts)
		var want []int
		for n := c.start + 1; n <= maxAttempts; n++ {
			want = append(want, n)
		}
		equal(t, want, counts, "%s: Attempts returned by the successful AddAttempt calls", c.name)
		equal(t, calls-len(want), tooMany, "%s: calls refused with ErrTooManyAttempts", c.name)

		got, err := x.store.Get(t.Context(), x.key(c.name))
		noError(t, err, "%s: Get", c.name)
		equal(t, maxAttempts, got.Attempts, "%s: Attempts after the race", c.name)
	}
}

// testStoreMarkSent: MarkSent sets SentAt and counts a send, and changes
// nothing else, and only on the verification with the given ID.
func testStoreMarkSent(t *testing.T, x storeSuite) {
	ctx := t.Context()
	v := x.sample(x.key("mark-sent"), "id-mark-sent", time.Minute)
	x.put(t, v)
	for range 2 {
		_, err := x.store.AddAttempt(ctx, v.Key, 5)
		noError(t, err, "AddAttempt")
	}
	v.Attempts = 2

	v.SentAt = oddNanos(time.Now(), 13)
	noError(t, x.store.MarkSent(ctx, v.Key, v.Ref.ID, v.SentAt), "MarkSent")
	v.Sends++
	x.requireStored(t, v)

	err := x.store.MarkSent(ctx, v.Key, "id-other", oddNanos(time.Now().Add(time.Second), 17))
	requireNotFoundErr(t, err, "MarkSent with another ID")
	x.requireStored(t, v)

	// The attempts were left alone: three more, and no further.
	for i := 3; i <= 5; i++ {
		got, err := x.store.AddAttempt(ctx, v.Key, 5)
		noError(t, err, "AddAttempt #%d after MarkSent", i)
		equal(t, i, got.Attempts, "AddAttempt #%d after MarkSent", i)
	}
	_, err = x.store.AddAttempt(ctx, v.Key, 5)
	errorIs(t, err, otp.ErrTooManyAttempts, "AddAttempt #6 after MarkSent")

	err = x.store.MarkSent(ctx, x.key("missing"), "id-missing", time.Now())
	requireNotFoundErr(t, err, "MarkSent on a missing key")
	x.requireNotFound(t, x.key("missing"))
}

// testStoreDelete: Delete removes only the verification with the given ID,
// once.
func testStoreDelete(t *testing.T, x storeSuite) {
	ctx := t.Context()
	v := x.sample(x.key("delete"), "id-delete", time.Minute)
	v.Attempts = 2
	x.put(t, v)

	err := x.store.Delete(ctx, v.Key, "id-other")
	requireNotFoundErr(t, err, "Delete with another ID")
	err = x.store.Delete(ctx, v.Key, "")
	requireNotFoundErr(t, err, "Delete with an empty ID")
	x.requireStored(t, v)

	noError(t, x.store.Delete(ctx, v.Key, v.Ref.ID), "Delete")
	x.requireNotFound(t, v.Key)
	err = x.store.Delete(ctx, v.Key, v.Ref.ID)
	requireNotFoundErr(t, err, "second Delete")
	_, err = x.store.AddAttempt(ctx, v.Key, 5)
	requireNotFoundErr(t, err, "AddAttempt after Delete")
	err = x.store.MarkSent(ctx, v.Key, v.Ref.ID, time.Now())
	requireNotFoundErr(t, err, "MarkSent after Delete")
	x.requireNotFound(t, v.Key)

	// The key can be used again, with nothing left of the old verification.
	w := x.sample(v.Key, "id-delete-2", time.Minute)
	x.put(t, w)
	x.requireStored(t, w)
	got, err := x.store.AddAttempt(ctx, w.Key, 5)
	noError(t, err, "AddAttempt after Delete and Put")
	equal(t, 1, got.Attempts, "AddAttempt after Delete and Put")
}

// testStoreDeleteConcurrent: of many concurrent Deletes of one
// verification exactly one succeeds.
func testStoreDeleteConcurrent(t *testing.T, x storeSuite) {
	const calls = 100
	v := x.sample(x.key("delete-race"), "id-delete-race", time.Minute)
	x.put(t, v)

	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			errs[i] = x.store.Delete(t.Context(), v.Key, v.Ref.ID)
		})
	}
	close(start)
	wg.Wait()

	winners := 0
	for _, err := range errs {
		if err == nil {
			winners++
			continue
		}
		requireNotFoundErr(t, err, "concurrent Delete that lost")
	}
	equal(t, 1, winners, "concurrent Deletes that returned nil")
	x.requireNotFound(t, v.Key)
}

// testStoreKeysIsolated: keys are arbitrary strings up to otp.MaxKeyLen
// bytes, and operations under one never affect another.
func testStoreKeysIsolated(t *testing.T, x storeSuite) {
	ctx := t.Context()
	long := x.key("long-")
	long += strings.Repeat("x", otp.MaxKeyLen-len(long))
	equal(t, otp.MaxKeyLen, len(long))
	keys := []string{
		x.key("a"),
		x.key("a:b"),
		x.key("a:attempts"),
		x.key("{tag}"),
		x.key("{tag}:a"),
		x.key("with space"),
		x.key("ключ 🔑 鍵"),
		x.key("*?[]"),
		x.key("line\nbreak\ttab"),
		x.key("nul\x00byte"),
		long,
	}

	vs := make([]otp.Verification, len(keys))
	for i, key := range keys {
		v := x.sample(key, fmt.Sprintf("id-%d", i), time.Minute)
		v.To = fmt.Sprintf("+4479111234%02d", i)
		vs[i] = v
		x.put(t, v)
	}
	for _, v := range vs {
		x.requireStored(t, v)
	}

	// Give each key a different count and SentAt.
	for i := range vs {
		for range i + 1 {
			_, err := x.store.AddAttempt(ctx, vs[i].Key, 100)
			noError(t, err, "AddAttempt(%q)", vs[i].Key)
		}
		vs[i].Attempts = i + 1
		vs[i].SentAt = oddNanos(time.Now().Add(time.Duration(i)*time.Second), 100+i)
		noError(t, x.store.MarkSent(ctx, vs[i].Key, vs[i].Ref.ID, vs[i].SentAt), "MarkSent(%q)", vs[i].Key)
		vs[i].Sends++
	}
	for _, v := range vs {
		x.requireStored(t, v)
	}

	// Another key's ID does not match.
	err := x.store.Delete(ctx, vs[0].Key, vs[1].Ref.ID)
	requireNotFoundErr(t, err, "Delete(%q) with the ID under %q", vs[0].Key, vs[1].Key)
	err = x.store.MarkSent(ctx, vs[0].Key, vs[1].Ref.ID, time.Now())
	requireNotFoundErr(t, err, "MarkSent(%q) with the ID under %q", vs[0].Key, vs[1].Key)

	// Deleting every other key leaves the rest alone.
	for i := 0; i < len(vs); i += 2 {
		noError(t, x.store.Delete(ctx, vs[i].Key, vs[i].Ref.ID), "Delete(%q)", vs[i].Key)
	}
	for i, v := range vs {
		if i%2 == 0 {
			x.requireNotFound(t, v.Key)
		} else {
			x.requireStored(t, v)
		}
	}
	x.requireNotFound(t, x.key(""))
	x.requireNotFound(t, x.key("A"))
}

// testStoreClaim: a claim holds its key against other tokens until it is
// put over, released or over; it never hides the verification under it.
func testStoreClaim(t *testing.T, x storeSuite) {
	ctx := t.Context()
	key := x.key("claim")
	hour := time.Now().Add(time.Hour)
	v, err := x.store.Claim(ctx, key, otp.Claim{Token: "a", Until: hour})
	noError(t, err, "Claim of a free key")
	equal(t, otp.Verification{}, v, "Claim of a missing key returns a zero Verification")
	_, err = x.store.Claim(ctx, key, otp.Claim{Token: "b", Until: hour})
	errorIs(t, err, otp.ErrSendInFlight, "Claim of a claimed key")
	_, err = x.store.Claim(ctx, key, otp.Claim{Token: "a", Until: hour})
	noError(t, err, "Claim again by the holder")
	x.requireNotFound(t, key)

	noError(t, x.store.Release(ctx, key, "b"), "Release by another token")
	_, err = x.store.Claim(ctx, key, otp.Claim{Token: "b", Until: hour})
	errorIs(t, err, otp.ErrSendInFlight, "Release by another token changes nothing")
	noError(t, x.store.Release(ctx, key, "a"), "Release by the holder")
	_, err = x.store.Claim(ctx, key, otp.Claim{Token: "b", Until: hour})
	noError(t, err, "Claim after Release")

	// Put drops the claim and Claim returns what was put.
	p := x.sample(key, "id-claim", time.Minute)
	x.put(t, p)
	got, err := x.store.Claim(ctx, key, otp.Claim{Token: "c", Until: hour})
	noError(t, err, "Claim after Put")
	requireSameVerification(t, p, got, "Claim after Put")
	x.requireStored(t, p)

	// A claim past its Until is free, and Release of a free key is nothing.
	other := x.key("claim-over")
	_, err = x.store.Claim(ctx, other, otp.Claim{Token: "a", Until: time.Now().Add(200 * time.Millisecond)})
	noError(t, err, "a short Claim")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = x.store.Claim(ctx, other, otp.Claim{Token: "b", Until: hour})
		if err == nil {
			break
		}
		errorIs(t, err, otp.ErrSendInFlight, "Claim while the first runs")
		isTrue(t, time.Now().Before(deadline), "the claim never ended")
		time.Sleep(20 * time.Millisecond)
	}
	noError(t, x.store.Release(ctx, x.key("never-claimed"), "x"), "Release of a free key")

	// An expired verification reads as none.
	e := x.sample(x.key("claim-expired"), "id-claim-expired", 300*time.Millisecond)
	x.put(t, e)
	time.Sleep(time.Until(e.ExpiresAt) + 50*time.Millisecond)
	for {
		got, err = x.store.Claim(ctx, e.Key, otp.Claim{Token: "a", Until: hour})
		noError(t, err, "Claim of an expired verification")
		if got.Ref.ID == "" || !time.Now().Before(deadline) {
			break
		}
		noError(t, x.store.Release(ctx, e.Key, "a"), "Release")
		time.Sleep(20 * time.Millisecond)
	}
	equal(t, otp.Verification{}, got, "Claim of an expired verification returns a zero Verification")
}

// testStoreClaimConcurrent: of concurrent Claims of one free key exactly
// one wins.
func testStoreClaimConcurrent(t *testing.T, x storeSuite) {
	const calls = 100
	key := x.key("claim-race")
	until := time.Now().Add(time.Hour)
	errs := race(calls, func(i int) error {
		_, err := x.store.Claim(t.Context(), key, otp.Claim{Token: "t" + strconv.Itoa(i), Until: until})
		return err
	})
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		errorIs(t, err, otp.ErrSendInFlight, "a Claim that lost")
	}
	equal(t, 1, won, "Claims that won")
}
