package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpkit/otp"
)

// limits are the requests of one decision, as the decide function takes
// them: parallel arrays of buckets, breakers and override targets, each in
// the order of the requests. Requests whose limit is off are left out.
type limits struct {
	bIDs    [][]byte
	bScopes []string
	bInt    []int64 // emission interval, ns
	bTol    []int64 // burst tolerance, ns
	bSoft   []bool  // Challenge
	breakers
	kShare []float64
	kRO    []bool
	oKeys  []string
	oSoft  []bool // Challenge: an OverrideChallenge asks for one
}

// breakers are the arguments decide and record both take of each breaker.
type breakers struct {
	kIDs   [][]byte
	kWin   []int64 // µs
	kGrace []int64 // µs; 0: none
	kMin   []int32
	kFb    []bool // Fallback
}

// add appends breaker request r, or ErrBadRequest.
func (k *breakers) add(s *Store, r otp.LimitRequest) error {
	win, err := window(r.Breaker)
	if err != nil {
		return err
	}
	k.kIDs = append(k.kIDs, s.breakerID(r.Key, win))
	k.kWin = append(k.kWin, win)
	k.kGrace = append(k.kGrace, grace(r.Breaker))
	k.kMin = append(k.kMin, int32(min(r.Breaker.MinSends, 1<<31-1)))
	k.kFb = append(k.kFb, r.Fallback)
	return nil
}

// limits returns the arguments that decide reqs, or ErrBadRequest.
func (s *Store) limits(reqs []otp.LimitRequest) (limits, error) {
	var l limits
	for _, r := range reqs {
		switch r.Kind {
		case otp.LimitBucket:
			if r.Limit.N < 0 {
				continue
			}
			interval, err := gcra(r.Limit)
			if err != nil {
				return limits{}, err
			}
			l.bIDs = append(l.bIDs, s.digest(kindBucket, string(r.Scope), r.Key))
			l.bScopes = append(l.bScopes, string(r.Scope))
			l.bInt = append(l.bInt, interval)
			l.bTol = append(l.bTol, interval*int64(r.Limit.N-1))
			l.bSoft = append(l.bSoft, r.Challenge)
		case otp.LimitBreaker:
			if r.Breaker.MinSends < 0 {
				continue
			}
			if err := l.add(s, r); err != nil {
				return limits{}, err
			}
			l.kShare = append(l.kShare, r.Breaker.MinShare)
			l.kRO = append(l.kRO, r.Breaker.RecordOnly)
		case otp.LimitOverride:
			l.oKeys = append(l.oKeys, r.Key)
			l.oSoft = append(l.oSoft, r.Challenge)
		default:
			return limits{}, fmt.Errorf("%w: unknown limit kind %d", ErrBadRequest, r.Kind)
		}
	}
	return l, nil
}

func (l *limits) empty() bool { return len(l.bIDs)+len(l.kIDs)+len(l.oKeys) == 0 }

// args returns l as the fourteen arguments decide takes after the time.
func (l *limits) args() []any {
	return []any{l.bIDs, l.bScopes, l.bInt, l.bTol, l.bSoft, l.kIDs, l.kWin, l.kGrace, l.kMin, l.kShare, l.kRO,
		l.kFb, l.oKeys, l.oSoft}
}

// gcra returns the emission interval of limit, in nanoseconds: GCRA
// allows a burst of N and one more every Per/N, as x/time/rate does.
func gcra(limit otp.Limit) (int64, error) {
	if limit.N == 0 || limit.Per <= 0 {
		return 0, fmt.Errorf("%w: limit %d per %v needs a positive N and Per", ErrBadRequest, limit.N, limit.Per)
	}
	return max(1, limit.Per.Nanoseconds()/int64(limit.N)), nil
}

// window returns the breaker's window in microseconds, as
// otp.MemoryLimiter counts it.
func window(c otp.Conversion) (int64, error) {
	if w := c.Window.Microseconds(); w > 0 {
		return w, nil
	}
	return 0, fmt.Errorf("%w: a breaker's Window must be at least a microsecond", ErrBadRequest)
}

// grace returns the breaker's grace in microseconds, as
// otp.MemoryLimiter counts it: 0, none, for a Grace under a microsecond
// (a LimitRequest's 0 included).
func grace(c otp.Conversion) int64 { return max(0, c.Grace.Microseconds()) }

// breakerID returns the id of the breaker of key and window: breakers are
// their key and window, as in otp.MemoryLimiter.
func (s *Store) breakerID(key string, win int64) []byte {
	return s.digest(kindBreaker, strconv.FormatInt(win, 10), key)
}

// denied returns the error a decision's reply r reports, or nil if r is
// not a denial.
func (l *limits) denied(op string, r reply) error {
	inRange := func(n int) bool { return r.idx >= 0 && int(r.idx) < n }
	switch r.st {
	case stLimited:
		if inRange(len(l.bScopes)) {
			return &otp.RateLimitError{Scope: otp.Scope(l.bScopes[r.idx]), RetryAfter: time.Duration(r.wait)}
		}
	case stChallenge:
		if inRange(len(l.bScopes)) {
			return &otp.ChallengeError{Scope: otp.Scope(l.bScopes[r.idx]), RetryAfter: time.Duration(r.wait)}
		}
	case stOverride:
		return &otp.ChallengeError{Scope: otp.ScopeOverride}
	case stBreaker:
		return &otp.ChallengeError{Scope: otp.ScopeConversion}
	case stBlocked:
		if inRange(len(l.oKeys)) {
			// SetOverride stores only targets that parse.
			t, err := otp.ParseTarget(l.oKeys[r.idx])
			if err != nil {
				return &Error{Op: op, Err: err}
			}
			return &otp.BlockedError{Target: t}
		}
	default:
		return nil
	}
	return &Error{Op: op, Err: fmt.Errorf("unexpected reply %d", r.st)}
}

// outcome is what Record feeds, as the record function takes it: the
// buckets that get a token back and the breakers, in the order of the
// requests.
type outcome struct {
	o    int32
	fIDs [][]byte
	fInt []int64
	breakers
	kNames []string
}

func (s *Store) outcome(o otp.Outcome, reqs []otp.LimitRequest) (outcome, error) {
	out := outcome{o: int32(o)}
	for _, r := range reqs {
		switch {
		case r.Kind == otp.LimitBreaker && r.Breaker.MinSends >= 0:
			if err := out.add(s, r); err != nil {
				return outcome{}, err
			}
			out.kNames = append(out.kNames, label(r.Key))
		case r.Kind == otp.LimitBucket && r.Refund && o == otp.OutcomeVerified && r.Limit.N >= 0:
			interval, err := gcra(r.Limit)
			if err != nil {
				return outcome{}, err
			}
			out.fIDs = append(out.fIDs, s.digest(kindBucket, string(r.Scope), r.Key))
			out.fInt = append(out.fInt, interval)
		}
	}
	return out, nil
}

// args returns out as the nine arguments record takes after the time.
func (out *outcome) args() []any {
	return []any{out.o, out.fIDs, out.fInt, out.kIDs, out.kNames, out.kWin, out.kGrace, out.kMin, out.kFb}
}

// label returns a breaker's key as a readable name for operators: a
// region or calling-code group, which is no personal data. Bytes that text
// cannot hold are replaced.
func label(key string) string {
	key = strings.ReplaceAll(strings.ToValidUTF8(key, "\uFFFD"), "\x00", "\uFFFD")
	if len(key) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(key[n]) {
			n--
		}
		key = key[:n]
	}
	return key
}

// Allow implements [otp.Limiter], as otp.MemoryLimiter decides, atomically
// across every process sharing the tables: one statement. Buckets are
// GCRA (a burst of N and one token back every Per/N, the same answers as
// x/time/rate), each one row holding a timestamp, deleted once the bucket
// is full again. A denial writes nothing but, for an open breaker, its
// count of refusals.
func (s *Store) Allow(ctx context.Context, reqs []otp.LimitRequest) error {
	l, err := s.limits(reqs)
	if err != nil || l.empty() {
		return err
	}
	sec, ns := s.now()
	r, err := s.call(ctx, "allow", s.sql.allow, append([]any{sec, ns}, l.args()...)...)
	if err != nil {
		return err
	}
	return l.denied("allow", r)
}

// Record implements [otp.Limiter].
func (s *Store) Record(ctx context.Context, o otp.Outcome, reqs []otp.LimitRequest) error {
	out, err := s.outcome(o, reqs)
	if err != nil || len(out.fIDs)+len(out.kIDs) == 0 {
		return err
	}
	sec, ns := s.now()
	_, err = s.call(ctx, "record", s.sql.record, append([]any{sec, ns}, out.args()...)...)
	return err
}

// SetOverride implements [otp.Limiter]. The target must be one that
// otp.ParseTarget reads back (as [otp.Verifier.SetOverride] checks).
func (s *Store) SetOverride(ctx context.Context, o otp.Override) error {
	key := o.Target.Key()
	if _, err := otp.ParseTarget(key); err != nil {
		return err
	}
	var action, untilS, untilN any
	switch o.Action {
	case otp.OverrideNone:
	case otp.OverrideBlock, otp.OverrideChallenge, otp.OverrideAllow:
		action = string(o.Action)
	default:
		return fmt.Errorf("pgstore: unknown override action %q", o.Action)
	}
	if !o.Until.IsZero() {
		untilS, untilN = split(o.Until)
	}
	sec, ns := s.now()
	_, err := s.call(ctx, "set override", s.sql.setOverride, sec, ns, key, action, untilS, untilN)
	return err
}

// Overrides implements [otp.Limiter]: the overrides in force, by target.
func (s *Store) Overrides(ctx context.Context) ([]otp.Override, error) {
	var out []otp.Override
	err := s.retry(ctx, func() (bool, error) {
		var err error
		out, err = s.overrides(ctx)
		return false, err // it changes nothing: always safe to run again
	})
	if err != nil {
		return nil, fail("overrides", err)
	}
	return out, nil
}

func (s *Store) overrides(ctx context.Context) ([]otp.Override, error) {
	sec, ns := s.now()
	rows, err := s.pool.Query(ctx, s.sql.overrides, sec, ns)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []otp.Override
	for rows.Next() {
		var target, action string
		var untilS *int64
		var untilN *int32
		if err := rows.Scan(&target, &action, &untilS, &untilN); err != nil {
			return nil, err
		}
		t, err := otp.ParseTarget(target)
		if err != nil {
			continue // not written by SetOverride
		}
		o := otp.Override{Target: t, Action: otp.Action(action)}
		if untilS != nil && untilN != nil {
			o.Until = join(*untilS, *untilN)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// GetAllow implements [otp.LimitingStore]: one statement, one round trip.
func (s *Store) GetAllow(ctx context.Context, key string, spare otp.Spare, c otp.Claim, reqs []otp.LimitRequest) (otp.Verification, error) {
	l, err := s.limits(reqs)
	if err != nil {
		return otp.Verification{}, err
	}
	cooldowns := make([]int64, len(spare.Cooldowns))
	for i, d := range spare.Cooldowns {
		cooldowns[i] = d.Nanoseconds()
	}
	sec, ns := s.now()
	us, un := split(c.Until)
	ss, sn := split(spare.Now)
	args := append([]any{s.vid(key), sec, ns, c.Token, us, un, spare.To, ss, sn, cooldowns}, l.args()...)
	r, err := s.call(ctx, "get and allow", s.sql.getAllow, args...)
	if err != nil {
		return otp.Verification{}, err
	}
	if err := l.denied("get and allow", r); err != nil {
		return otp.Verification{}, err
	}
	return r.claimed("get and allow", key)
}

// PutRecord implements [otp.LimitingStore]: one statement, one round trip.
func (s *Store) PutRecord(ctx context.Context, v otp.Verification, o otp.Outcome, reqs []otp.LimitRequest) error {
	out, err := s.outcome(o, reqs)
	if err != nil {
		return err
	}
	_, err = s.call(ctx, "put and record", s.sql.putRecord, s.putArgs(v, out.args()...)...)
	return err
}

// AllowAddAttempt implements [otp.LimitingStore]: one statement, one
// round trip.
func (s *Store) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	l, err := s.limits(reqs)
	if err != nil {
		return otp.Verification{}, err
	}
	op := "allow and add attempt"
	if len(reqs) == 0 {
		op = "add attempt"
	}
	sec, ns := s.now()
	args := append([]any{s.vid(key), sec, ns, int32(min(max, 1<<31-1))}, l.args()...)
	r, err := s.call(ctx, op, s.sql.allowAddAttempt, args...)
	if err != nil {
		return otp.Verification{}, err
	}
	if err := l.denied(op, r); err != nil {
		return otp.Verification{}, err
	}
	return r.verification(op, key)
}

// DeleteRecord implements [otp.LimitingStore]: one statement, one round
// trip.
func (s *Store) DeleteRecord(ctx context.Context, key, id string, o otp.Outcome, reqs []otp.LimitRequest) error {
	out, err := s.outcome(o, reqs)
	if err != nil {
		return err
	}
	sec, ns := s.now()
	r, err := s.call(ctx, "delete and record", s.sql.deleteRecord,
		append([]any{s.vid(key), sec, ns, id}, out.args()...)...)
	if err != nil {
		return err
	}
	return r.status("delete and record")
}
