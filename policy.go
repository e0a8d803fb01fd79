package otp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// plan is what one send must pass, as the policy decided it.
type plan struct {
	dest       destination
	client     string         // the caller's client ID, as given (WithClient)
	challenged bool           // the Start passed a challenge
	enforce    []LimitRequest // decided with the read of the pending verification, all or none
	record     []LimitRequest // record-only: decided apart; a denial is only flagged
	outcome    []LimitRequest // the breakers and unverified budgets the send's outcome feeds

	enforceBuf, recordBuf [12]LimitRequest
	outcomeBuf            [5]LimitRequest
}

// plans recycles plans: their requests are handed to interface methods,
// which would otherwise move them to the heap on every call.
var plans = sync.Pool{New: func() any { return new(plan) }}

func newPlan() *plan {
	p := plans.Get().(*plan)
	p.enforce, p.record, p.outcome = p.enforceBuf[:0], p.recordBuf[:0], p.outcomeBuf[:0]
	return p
}

func (p *plan) release() {
	*p = plan{}
	plans.Put(p)
}

// maxClientLen is the longest client ID kept as it is; longer ones are
// hashed to a fixed size, so that no caller's input sizes the limiter.
const maxClientLen = 64

// clientKey returns the per-client bucket key of id.
func clientKey(id string) string {
	if len(id) <= maxClientLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// plan is the policy, the one place that decides what a send must pass: it
// normalises raw for channel c, applies the Guard's static rules, and lists
// the overrides, budgets, unverified budgets and breakers one send to it by
// client takes, each to enforce or, in record-only mode, only to record; or
// it returns the error that refuses the send. A record-only static rule
// that would refuse is flagged here. It fills ev's destination fields.
func (v *Verifier) plan(ctx context.Context, ev *Event, raw string, c Channel, client string, challenged bool) (*plan, error) {
	d, err := v.normalize(raw, c)
	ev.To, ev.Region, ev.CallingCode = d.to, d.region, d.callingCode
	if v.observed(ctx) {
		ev.Range = d.rangeID()
	}
	if err != nil {
		return nil, err
	}
	if err := v.guard.check(d, c); err != nil {
		if !v.guard.recordOnly {
			return nil, err
		}
		v.flag(ctx, *ev, err)
	}
	if ds, ok := v.provider.(DestinationSupporter); ok && !d.test && !ds.SupportsDestination(c, d.to, d.region) {
		// Refused before any token is taken: a route table that lacks a
		// channel must not spend the budgets of the people it refuses. A
		// test number is never sent.
		return nil, fmt.Errorf("%w: %q to this destination", ErrUnsupportedChannel, c)
	}
	l := v.cfg.Limits
	p := newPlan()
	p.dest, p.client, p.challenged = d, client, challenged
	if m := d.meta; m != nil {
		for _, key := range [...]string{m.regionTarget, m.codeTarget, Target{"range", d.rangeKey}.Key()} {
			p.enforce = append(p.enforce, LimitRequest{Kind: LimitOverride, Scope: ScopeOverride, Key: key, Challenge: !challenged})
		}
	}
	p.add(false, LimitRequest{Scope: ScopeNumber, Key: d.limitKey, Limit: l.PerNumber})
	if client != "" {
		p.add(false, LimitRequest{Scope: ScopeClient, Key: clientKey(client), Limit: l.PerClient})
	}
	guarded := v.guard.recordOnly
	if d.region != "" {
		lim, key := l.region(d.region, v.expected)
		p.add(guarded, LimitRequest{Scope: ScopeRegion, Key: key, Limit: lim})
	}
	p.add(guarded, LimitRequest{Scope: ScopeTotal, Limit: l.Total})
	if d.region == "" || d.test {
		// Email has no ranges; a test number costs nothing to send to, and
		// its outcomes would only blur its region's.
		return p, nil
	}
	p.outcome = v.outcomes(p.outcome, d.region, d.place, challenged)
	copied := false // the enforced breakers, for a record-only Fallback after them
	for i, r := range p.outcome {
		// What a send's outcome feeds is what it must pass: the unverified
		// budgets, which ask for a challenge, and the breakers; a Start that
		// passed a challenge passes the breakers and takes from the
		// challenged budgets, which refuse.
		switch {
		case r.Kind == LimitBucket:
			r.Challenge = !challenged
		case challenged:
			continue
		case r.Fallback && r.Breaker.RecordOnly && !guarded && !copied:
			// A record-only Fallback (QuietRecordOnly) behind enforced
			// breakers: the record-only call judges the chain from its
			// start too, so that it stops where the enforced one does.
			for _, b := range p.outcome[:i] {
				if b.Kind == LimitBreaker && !b.Breaker.RecordOnly {
					p.add(true, b)
				}
			}
			copied = true
		}
		p.add(guarded, r)
	}
	return p, nil
}

// add puts r among the requests to enforce or, if r is record-only (its
// own or, for the Guard's rules, guarded), among those to record.
func (p *plan) add(guarded bool, r LimitRequest) {
	if r.Limit.RecordOnly || r.Breaker.RecordOnly || guarded {
		r.Limit.RecordOnly, r.Breaker.RecordOnly = true, true
		p.record = append(p.record, r)
		return
	}
	p.enforce = append(p.enforce, r)
}

// outcomes appends the breakers and unverified budgets that the outcome of
// a send to a number of region at pl feeds. Start and Check both build
// them here, so that a verified send gives its token back to the very
// bucket that the send took it from.
func (v *Verifier) outcomes(reqs []LimitRequest, region string, pl place, challenged bool) []LimitRequest {
	l, conv := v.cfg.Limits, v.guard.conversion
	if !challenged {
		reqs = append(reqs, LimitRequest{Scope: ScopeRange, Key: pl.rangeKey, Limit: l.UnverifiedPerRange, Refund: true})
	} else {
		reqs = append(reqs,
			LimitRequest{Scope: ScopeChallenged, Key: pl.rangeKey, Limit: l.ChallengedPerRange, Refund: true},
			LimitRequest{Scope: ScopeChallenged, Key: region, Limit: l.ChallengedPerRegion, Refund: true})
	}
	if conv.off() {
		return reqs
	}
	reqs = append(reqs, LimitRequest{Kind: LimitBreaker, Scope: ScopeConversion, Key: region, Breaker: conv})
	if pl.group != "" {
		reqs = append(reqs, LimitRequest{Kind: LimitBreaker, Scope: ScopeConversion, Key: pl.group, Breaker: conv, Fallback: true})
	}
	// The last fallback gathers every region too quiet to judge, so that an
	// attack spread thin over many regions meets a breaker too.
	if quiet := conv; quiet.QuietMinSends >= 0 {
		quiet.MinSends, quiet.RecordOnly = quiet.QuietMinSends, quiet.RecordOnly || quiet.QuietRecordOnly
		reqs = append(reqs, LimitRequest{Kind: LimitBreaker, Scope: ScopeConversion, Key: quietBreaker, Breaker: quiet, Fallback: true})
	}
	return reqs
}

// quietBreaker is the key of the conversion breaker that judges the sends
// to every region, and every calling-code group, with too little demand to
// be judged on its own (Conversion.MinSends in its Window), on
// Conversion.QuietMinSends: a pumping attack spread thin over many
// regions, a few sends to each, drives its verified share down where no
// region's breaker sees enough to act.
const quietBreaker = "*"

// record decides p's record-only requests and flags what they would have
// refused, without failing the call.
func (v *Verifier) record(ctx context.Context, ev Event, p *plan) {
	if len(p.record) == 0 {
		return
	}
	err := v.state.Allow(ctx, p.record)
	switch {
	case err == nil:
	case errors.As(err, new(*RateLimitError)), errors.As(err, new(*ChallengeError)):
		v.flag(ctx, ev, err)
	default:
		v.log.LogAttrs(ctx, slog.LevelWarn, "otp: record-only limits failed", slog.String("error", err.Error()))
	}
}

// flag reports what the guard would have refused in record-only mode.
func (v *Verifier) flag(ctx context.Context, ev Event, err error) {
	ev.setErr(err)
	v.emit(ctx, EventFlagged, ev)
}

// storeAndLimiter is a Store beside a separate Limiter, as one
// LimitingStore: what the Verifier works through when the store does not
// keep the limits itself. Its steps are not atomic with each other, which
// in one process the Verifier's key locks make up for, and the outcome it
// records after a Put or Delete is best effort: a Limiter that fails then
// does not undo a send that was stored.
type storeAndLimiter struct {
	Store
	Limiter
}

// GetAllow implements LimitingStore: Claim, then Allow.
func (s storeAndLimiter) GetAllow(ctx context.Context, key string, spare Spare, c Claim, reqs []LimitRequest) (Verification, error) {
	old, err := s.Claim(ctx, key, c)
	if err != nil {
		return Verification{}, err
	}
	if spare.Matches(old) {
		return old, s.Release(ctx, key, c.Token)
	}
	if err := s.Allow(ctx, reqs); err != nil {
		_ = s.Release(ctx, key, c.Token) // the denial is the answer
		return Verification{}, err
	}
	return old, nil
}

// PutRecord implements LimitingStore: Put, then Record.
func (s storeAndLimiter) PutRecord(ctx context.Context, v Verification, o Outcome, reqs []LimitRequest) error {
	if err := s.Put(ctx, v); err != nil {
		return err
	}
	_ = s.Record(ctx, o, reqs)
	return nil
}

// AllowAddAttempt implements LimitingStore: Allow, then AddAttempt.
func (s storeAndLimiter) AllowAddAttempt(ctx context.Context, key string, max int, reqs []LimitRequest) (Verification, error) {
	if len(reqs) > 0 {
		if err := s.Allow(ctx, reqs); err != nil {
			return Verification{}, err
		}
	}
	return s.AddAttempt(ctx, key, max)
}

// DeleteRecord implements LimitingStore: Delete, then Record.
func (s storeAndLimiter) DeleteRecord(ctx context.Context, key, id string, o Outcome, reqs []LimitRequest) error {
	if err := s.Delete(ctx, key, id); err != nil {
		return err
	}
	_ = s.Record(ctx, o, reqs)
	return nil
}
