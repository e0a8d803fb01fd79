package otp

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Target is what a runtime [Override] applies to: a region, a calling
// code, or a number range. Build one with [RegionTarget],
// [CallingCodeTarget] or [RangeTarget].
type Target struct {
	kind  string // "region", "code" or "range"
	value string
}

// RegionTarget is the ISO 3166 region r ("JM").
func RegionTarget(r string) Target { return Target{"region", r} }

// CallingCodeTarget is every number of calling code c (1 covers the US,
// Canada and the Caribbean).
func CallingCodeTarget(c int) Target { return Target{"code", strconv.Itoa(c)} }

// RangeTarget is the number range id, as [Event].Range gives it
// ("+1876555xxxx"): all numbers that start with its digits.
func RangeTarget(id string) Target { return Target{"range", strings.TrimRight(id, "x")} }

// Key is the target as limiters store it: "region:JM", "code:1",
// "range:+1876555".
func (t Target) Key() string { return t.kind + ":" + t.value }

// String is Key.
func (t Target) String() string { return t.Key() }

// ParseTarget reads a Target back from its Key.
func ParseTarget(key string) (Target, error) {
	kind, value, _ := strings.Cut(key, ":")
	switch {
	case kind == "region" && isRegion(value), kind == "code" && isCallingCode(value),
		kind == "range" && len(value) > 2 && value[0] == '+' && strings.Trim(value[1:], "0123456789") == "":
		return Target{kind, value}, nil
	}
	return Target{}, errorf("%q is not an override target (region:GB, code:44, range:+44740012)", key)
}

// Action is what an [Override] does.
type Action string

// Override actions.
const (
	// OverrideNone removes an override.
	OverrideNone Action = ""
	// OverrideBlock refuses every send to the target with a *BlockedError.
	OverrideBlock Action = "block"
	// OverrideChallenge asks every Start to the target for a challenge.
	OverrideChallenge Action = "challenge"
	// OverrideAllow exempts the target from the signal rules: the
	// unverified budgets and the conversion breakers. The ceilings and
	// blocks still apply. For a range of numbers you know to be good.
	OverrideAllow Action = "allow"
)

// Override is a rule an operator puts in force at runtime, on every
// instance sharing the Limiter: block a region under attack, ask a range
// for challenges, trust a known range.
type Override struct {
	Target Target
	Action Action
	// Until ends the override; zero means until it is removed.
	Until time.Time
}

// SetOverride puts o in force (see [Override]); with redisstore or pgstore
// as the Limiter it reaches every instance at once.
func (v *Verifier) SetOverride(ctx context.Context, o Override) error {
	switch {
	case o.Target.kind == "":
		return errorf("SetOverride: no target")
	case o.Action != OverrideNone && o.Action != OverrideBlock && o.Action != OverrideChallenge && o.Action != OverrideAllow:
		return errorf("SetOverride: unknown action %q", o.Action)
	}
	if _, err := ParseTarget(o.Target.Key()); err != nil {
		return err
	}
	return v.state.SetOverride(ctx, o)
}

// Overrides lists the overrides in force, expired ones left out.
func (v *Verifier) Overrides(ctx context.Context) ([]Override, error) {
	all, err := v.state.Overrides(ctx)
	if err != nil {
		return nil, err
	}
	now := v.cfg.Clock.Now()
	live := all[:0]
	for _, o := range all {
		if o.Until.IsZero() || now.Before(o.Until) {
			live = append(live, o)
		}
	}
	return live, nil
}
