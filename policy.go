package otp

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// plan is what one send must pass, as the policy decided it: the
// destination, the limits to enforce and, in record-only mode, the limits
// only to record.
type plan struct {
	dest    destination
	enforce []LimitRequest // taken with the read of the pending verification, all or none
	record  []LimitRequest // charged apart; a denial is only flagged
	buf     [8]LimitRequest
}

// plans recycles plans: their requests are handed to interface methods,
// which would otherwise move them to the heap on every call.
var plans = sync.Pool{New: func() any { return new(plan) }}

func newPlan() *plan {
	p := plans.Get().(*plan)
	p.enforce, p.record = p.buf[:0], nil
	return p
}

func (p *plan) release() {
	*p = plan{}
	plans.Put(p)
}

// plan is the policy: it normalises raw for channel c, applies the Guard's
// number rules, and returns the limits one send to it by client takes, or
// the error that refuses the send. In record-only mode a rule that would
// refuse is flagged here and the send goes on. It sets ev's To and Region.
func (v *Verifier) plan(ctx context.Context, ev *Event, raw string, c Channel, client string) (*plan, error) {
	d, err := v.normalize(raw, c)
	ev.To, ev.Region = d.to, d.region
	if err != nil {
		return nil, err
	}
	if err := v.guard.check(d, c); err != nil {
		if !v.guard.recordOnly {
			return nil, err
		}
		v.flag(ctx, *ev, err)
	}
	l := v.cfg.Limits
	p := newPlan()
	p.dest = d
	p.enforce = append(p.enforce, LimitRequest{Scope: ScopeNumber, Key: d.limitKey, Limit: l.PerNumber})
	if client != "" {
		p.enforce = append(p.enforce, LimitRequest{Scope: ScopeClient, Key: client, Limit: l.PerClient})
	}
	n := len(p.enforce)
	p.enforce = append(p.enforce, LimitRequest{Scope: ScopeTotal, Limit: l.Total})
	if d.callingCode != "" {
		p.enforce = append(p.enforce,
			LimitRequest{Scope: ScopeCountry, Key: d.callingCode, Limit: l.PerCountry},
			LimitRequest{Scope: ScopeRange, Key: d.to[:max(len(d.callingCode)+1, len(d.to)-l.RangeDigits)], Limit: l.PerRange})
	}
	if v.guard.recordOnly {
		// The guard's limits: recorded apart, so their denials never deny.
		p.enforce, p.record = p.enforce[:n:n], p.enforce[n:]
	}
	return p, nil
}

// record charges p's record-only limits and flags a denial without failing
// the call.
func (v *Verifier) record(ctx context.Context, ev Event, p *plan) {
	if len(p.record) == 0 {
		return
	}
	err := v.state.Allow(ctx, p.record)
	switch {
	case err == nil:
	case errors.As(err, new(*RateLimitError)):
		v.flag(ctx, ev, err)
	default:
		v.log.LogAttrs(ctx, slog.LevelWarn, "otp: record-only limits failed", slog.String("error", err.Error()))
	}
}

// flag reports what the guard would have denied in record-only mode.
func (v *Verifier) flag(ctx context.Context, ev Event, err error) {
	ev.Err, ev.Class = err, ErrorClass(err)
	var rl *RateLimitError
	if errors.As(err, &rl) {
		ev.Scope = rl.Scope
	}
	v.emit(ctx, EventFlagged, ev)
}

// storeAndLimiter is a Store beside a separate Limiter, as one
// LimitingStore: what the Verifier works through when the store does not
// keep the limits itself.
type storeAndLimiter struct {
	Store
	Limiter
}

// GetAllow implements LimitingStore in two steps.
func (s storeAndLimiter) GetAllow(ctx context.Context, key string, spare Spare, reqs []LimitRequest) (Verification, error) {
	old, err := s.Get(ctx, key)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired):
		old = Verification{}
	default:
		return Verification{}, err
	}
	if spare.Matches(old) {
		return old, nil
	}
	if err := s.Allow(ctx, reqs); err != nil {
		return Verification{}, err
	}
	return old, nil
}

// AllowAddAttempt implements LimitingStore in two steps.
func (s storeAndLimiter) AllowAddAttempt(ctx context.Context, key string, max int, reqs []LimitRequest) (Verification, error) {
	if len(reqs) > 0 {
		if err := s.Allow(ctx, reqs); err != nil {
			return Verification{}, err
		}
	}
	return s.AddAttempt(ctx, key, max)
}
