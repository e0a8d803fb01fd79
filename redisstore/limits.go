package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
)

// call is the keys and arguments of one script run, with the limit
// requests it carries last, as the scripts' requests function reads them.
type call struct {
	keys []string
	args []any
	reqs []otp.LimitRequest // the caller's
	sent []int              // the index in reqs of each request sent
}

// add appends one request: reqs[i], whose state is in key, as a kind and
// four parameters.
func (c *call) add(i int, key, kind string, p1, p2, p3, p4 any) {
	c.keys = append(c.keys, key)
	c.args = append(c.args, kind, p1, p2, p3, p4)
	c.sent = append(c.sent, i)
}

// gcra returns the emission interval and the burst tolerance, in
// microseconds, of a bucket of l.
func gcra(l otp.Limit) (interval, tolerance int64, err error) {
	if l.N <= 0 || l.Per <= 0 {
		return 0, 0, fmt.Errorf("redisstore: limit %d per %v needs a positive N and Per", l.N, l.Per)
	}
	interval = max(1, l.Per.Microseconds()/int64(l.N))
	return interval, interval * int64(l.N-1), nil
}

// window returns the window of c in microseconds.
func window(c otp.Conversion) (int64, error) {
	if c.Window < time.Microsecond {
		return 0, fmt.Errorf("redisstore: a conversion breaker needs a Window of at least 1µs, not %v", c.Window)
	}
	return c.Window.Microseconds(), nil
}

// grace returns the Grace of c in microseconds, 0 for none (as
// otp.LimitRequest takes it: 0 or less, or under a microsecond).
func grace(c otp.Conversion) int64 { return max(0, c.Grace.Microseconds()) }

// fallback returns the suffix of the kind of a breaker request: "F" for
// a Fallback one.
func fallback(r otp.LimitRequest) string {
	if r.Fallback {
		return "F"
	}
	return ""
}

// decided adds to c the requests of reqs that Allow decides: the buckets
// whose Limit is not off, the breakers not off, the overrides.
func (s *Store) decided(c *call, reqs []otp.LimitRequest) error {
	c.reqs = reqs
	for i, r := range reqs {
		switch r.Kind {
		case otp.LimitBucket:
			if r.Limit.N < 0 {
				continue
			}
			interval, tolerance, err := gcra(r.Limit)
			if err != nil {
				return err
			}
			kind := "B"
			if r.Challenge {
				kind = "C"
			}
			c.add(i, s.bucket(r.Scope, r.Key), kind, interval, tolerance, "", "")
		case otp.LimitBreaker:
			if r.Breaker.MinSends < 0 {
				continue
			}
			win, err := window(r.Breaker)
			if err != nil {
				return err
			}
			kind := "K"
			if r.Breaker.RecordOnly {
				kind = "R"
			}
			c.add(i, s.breaker(r.Key, win), kind+fallback(r), win, r.Breaker.MinSends,
				strconv.FormatFloat(r.Breaker.MinShare, 'g', -1, 64), grace(r.Breaker))
		case otp.LimitOverride:
			challenge := ""
			if r.Challenge {
				challenge = "1"
			}
			c.add(i, s.overrides, "O", r.Key, challenge, "", "")
		default:
			return fmt.Errorf("redisstore: unknown limit request kind %d", r.Kind)
		}
	}
	return nil
}

// recorded adds to c the requests of reqs that the outcome o feeds: the
// breakers not off and, for a verified send, the buckets that refund. The
// scripts take o as a number, among the arguments before the requests.
func (s *Store) recorded(c *call, o otp.Outcome, reqs []otp.LimitRequest) error {
	c.reqs = reqs
	if o != otp.OutcomeSent && o != otp.OutcomeSentChallenged && o != otp.OutcomeVerified {
		return nil // an outcome nothing counts
	}
	for i, r := range reqs {
		switch {
		case !feeds(o, r):
		case r.Kind == otp.LimitBreaker:
			win, err := window(r.Breaker)
			if err != nil {
				return err
			}
			c.add(i, s.breaker(r.Key, win), "K"+fallback(r), win, r.Breaker.MinSends, "", grace(r.Breaker))
		default:
			interval, _, err := gcra(r.Limit)
			if err != nil {
				return err
			}
			c.add(i, s.bucket(r.Scope, r.Key), "B", interval, "", "", "")
		}
	}
	return nil
}

// feeds reports whether the outcome o feeds r: a breaker not off, or for
// a verified send a bucket with Refund whose Limit is not off.
func feeds(o otp.Outcome, r otp.LimitRequest) bool {
	switch r.Kind {
	case otp.LimitBreaker:
		return r.Breaker.MinSends >= 0
	case otp.LimitBucket:
		return r.Refund && o == otp.OutcomeVerified && r.Limit.N >= 0
	}
	return false
}

// verifiable reports whether a verified outcome feeds r.
func verifiable(r otp.LimitRequest) bool { return feeds(otp.OutcomeVerified, r) }

// decide runs c on script, which decides c's requests, and returns its
// reply, or the error of a failure or a denial.
func (c *call) decide(ctx context.Context, client redis.Scripter, script *redis.Script, op string) ([]any, error) {
	r, err := script.Run(ctx, client, c.keys, c.args...).Slice()
	if err != nil {
		return nil, unavailable(op, err)
	}
	return r, c.denied(op, r)
}

// denied returns the error a script's reply r reports for c's requests,
// or nil if r is not a denial.
func (c *call) denied(op string, r []any) error {
	if len(r) < 2 || (r[0] != int64(replyLimited) && r[0] != int64(replyChallenge) && r[0] != int64(replyBlocked)) {
		return nil
	}
	j, _ := r[1].(int64)
	if j < 0 || int(j) >= len(c.sent) {
		return unavailable(op, errors.New("unexpected reply"))
	}
	req := c.reqs[c.sent[j]]
	var wait time.Duration
	if len(r) > 2 {
		us, _ := r[2].(int64)
		wait = time.Duration(us) * time.Microsecond
	}
	switch {
	case r[0] == int64(replyBlocked):
		// SetOverride stored only keys that parse; a zero Target still blocks.
		t, _ := otp.ParseTarget(req.Key)
		return &otp.BlockedError{Target: t}
	case r[0] == int64(replyLimited):
		return &otp.RateLimitError{Scope: req.Scope, RetryAfter: wait}
	case req.Kind == otp.LimitBreaker:
		return &otp.ChallengeError{Scope: otp.ScopeConversion}
	case req.Kind == otp.LimitOverride:
		return &otp.ChallengeError{Scope: otp.ScopeOverride}
	}
	return &otp.ChallengeError{Scope: req.Scope, RetryAfter: wait}
}

// Allow implements [otp.Limiter], atomically over all of reqs and across
// processes: the overrides, the buckets and the breakers are read and
// written by one script in the limits' hash slot. Buckets use the generic
// cell rate algorithm (GCRA): a bucket of Limit.N tokens refilled one
// every Limit.Per/N, as a single timestamp that Redis drops once the
// bucket is full again. Breakers keep otp.MemoryLimiter's counts and
// arithmetic (see [otp.LimitBreaker]).
func (s *Store) Allow(ctx context.Context, reqs []otp.LimitRequest) error {
	c := call{keys: []string{s.receipt(s.ltag)}, args: s.args()}
	if err := s.decided(&c, reqs); err != nil || len(c.sent) == 0 {
		return err
	}
	_, err := c.decide(ctx, s.client, allowScript, "allow")
	return err
}

// Record implements [otp.Limiter]: one script, in the limits' hash slot.
func (s *Store) Record(ctx context.Context, o otp.Outcome, reqs []otp.LimitRequest) error {
	c, err := s.record(o, reqs)
	if err != nil || len(c.sent) == 0 {
		return err
	}
	if err := recordScript.Run(ctx, s.client, c.keys, c.args...).Err(); err != nil {
		return unavailable("record", err)
	}
	return nil
}

// record returns the call of recordScript for o and reqs.
func (s *Store) record(o otp.Outcome, reqs []otp.LimitRequest) (call, error) {
	c := call{keys: []string{s.receipt(s.ltag)}, args: s.args(int(o))}
	return c, s.recorded(&c, o, reqs)
}

// SetOverride implements [otp.Limiter]: the overrides are one hash in the
// limits' hash slot, so that Allow reads them in the same script as the
// buckets; those that have ended are dropped as the next is set, and the
// hash goes when the last one ends.
func (s *Store) SetOverride(ctx context.Context, o otp.Override) error {
	key := o.Target.Key()
	if _, err := otp.ParseTarget(key); err != nil {
		return fmt.Errorf("redisstore: SetOverride: %w", err)
	}
	value := string(o.Action)
	switch o.Action {
	case otp.OverrideNone:
	case otp.OverrideBlock, otp.OverrideChallenge, otp.OverrideAllow:
		if !o.Until.IsZero() {
			value += " " + strconv.FormatInt(o.Until.Unix(), 10) + " " + strconv.Itoa(o.Until.Nanosecond())
		}
	default:
		return fmt.Errorf("redisstore: SetOverride: unknown action %q", o.Action)
	}
	err := setOverrideScript.Run(ctx, s.client, []string{s.receipt(s.ltag), s.overrides}, s.args(key, value)...).Err()
	if err != nil {
		return unavailable("set override", err)
	}
	return nil
}

// Overrides implements [otp.Limiter]: the overrides in force, by target.
func (s *Store) Overrides(ctx context.Context) ([]otp.Override, error) {
	r, err := overridesScript.Run(ctx, s.client, []string{s.overrides}, s.args()...).StringSlice()
	if err != nil {
		return nil, unavailable("overrides", err)
	}
	out := make([]otp.Override, 0, len(r)/2)
	for i := 0; i+1 < len(r); i += 2 {
		t, err := otp.ParseTarget(r[i])
		if err != nil {
			continue // not written by SetOverride
		}
		o := otp.Override{Target: t}
		action, until, timed := strings.Cut(r[i+1], " ")
		o.Action = otp.Action(action)
		if timed {
			sec, ns, _ := strings.Cut(until, " ")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			n, err2 := strconv.ParseInt(ns, 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			o.Until = time.Unix(s, n).UTC()
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b otp.Override) int { return strings.Compare(a.Target.Key(), b.Target.Key()) })
	return out, nil
}
