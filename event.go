package otp

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	EventStarted    EventKind = "started"    // Start accepted its input
	EventSent       EventKind = "sent"       // the provider accepted a send (Start or Resend)
	EventChecked    EventKind = "checked"    // a code was verified
	EventFailed     EventKind = "failed"     // an operation failed; Class says why
	EventLimited    EventKind = "limited"    // a limit denied the operation; Scope says which
	EventBurned     EventKind = "burned"     // the last attempt was used; the verification is gone
	EventCanceled   EventKind = "canceled"   // Cancel removed a verification
	EventFlagged    EventKind = "flagged"    // a record-only rule would have refused the call; Err and Scope say which
	EventChallenged EventKind = "challenged" // Start needs a challenge (ErrChallengeRequired); Scope says why
)

// Op names the Verifier operation an Event belongs to.
type Op string

// Operations.
const (
	OpStart  Op = "start"
	OpCheck  Op = "check"
	OpResend Op = "resend"
	OpCancel Op = "cancel"
)

// Event reports one step of a verification, for metrics and audit. It never
// holds a code, the caller's key or an unmasked destination.
type Event struct {
	Kind     EventKind
	Op       Op
	Provider string  // provider name, the one that served for EventSent
	Channel  Channel // empty when unknown (a Check of nothing)
	To       string  // destination masked by [MaskPhone], empty when unknown
	Region   string  // ISO 3166 region of To, empty when unknown
	// CallingCode ("44") and Range ("+44740012xxxx": the number range, its
	// last digits hidden) group traffic for dashboards without revealing a
	// number: they show which range is being pumped, and Range is what
	// RangeTarget takes to block it. Set by Start and Resend.
	CallingCode string
	Range       string
	Scope       Scope         // for EventLimited, EventChallenged, EventFlagged, and EventFailed of a refused destination
	Class       string        // for EventFailed, EventLimited and EventFlagged: see [ErrorClass]
	Duration    time.Duration // time spent in the provider, when it was asked
	Err         error         // for EventFailed, EventLimited and EventFlagged
}

// Observer follows a Verifier's operations with their contexts, for
// tracing: Begin as Start, Check, Resend or Cancel is called, Event for
// each of its events, End as it returns. Calls are synchronous, from the
// caller's goroutine; keep them fast. Set it as Config.Observer.
type Observer interface {
	// Begin is called as op begins. The operation goes on with the
	// context Begin returns: its provider and store calls, its events and
	// End get it, so a tracer puts its span there.
	Begin(ctx context.Context, op Op) context.Context
	// Event is called for every Event of the operation, as Config.OnEvent
	// is; an Event with a Duration reports a provider call that has just
	// ended.
	Event(ctx context.Context, ev Event)
	// End is called as op returns, with its error, nil on success.
	End(ctx context.Context, op Op, err error)
}

// ErrorClass names the class of err, for metric labels:
// "refused_destination" (the Guard refused the number's region, calling
// code or type, or an override blocks it: what a pumping attempt looks
// like), "challenge_required", "invalid_input" (a
// typo, a bad key or code), "wrong_code", "expired", "not_found",
// "too_many_attempts", "rate_limited", "resend_too_soon",
// "provider_rejected", "provider_unavailable", "provider_account" (the
// vendor refused the account: a configuration error, not an outage),
// "store_unavailable", "canceled" (a context), or "other". It returns ""
// for nil.
func ErrorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRegionNotAllowed), errors.Is(err, ErrNumberTypeNotAllowed), errors.Is(err, ErrDestinationBlocked):
		return "refused_destination"
	case errors.Is(err, ErrChallengeRequired):
		return "challenge_required"
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrInvalidPhone),
		errors.Is(err, ErrInvalidCode), errors.Is(err, ErrUnsupportedChannel):
		return "invalid_input"
	case errors.Is(err, ErrWrongCode):
		return "wrong_code"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrTooManyAttempts):
		return "too_many_attempts"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrResendTooSoon):
		return "resend_too_soon"
	case errors.Is(err, ErrProviderUnavailable):
		return "provider_unavailable"
	case errors.Is(err, ErrProviderAccount):
		return "provider_account"
	case errors.Is(err, ErrProviderRejected):
		return "provider_rejected"
	case errors.Is(err, ErrStoreUnavailable):
		return "store_unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// fail reports err as an EventFailed, EventLimited or EventChallenged and
// returns it.
func (v *Verifier) fail(ctx context.Context, ev Event, err error) error {
	ev.setErr(err)
	kind := EventFailed
	switch {
	case errors.Is(err, ErrChallengeRequired):
		kind = EventChallenged
	case errors.Is(err, ErrRateLimited):
		kind = EventLimited
	}
	v.emit(ctx, kind, ev)
	return err
}

// setErr sets ev's Err, its Class and its Scope: the scope of a
// *RateLimitError or *ChallengeError, or what refused a destination.
func (ev *Event) setErr(err error) {
	ev.Err, ev.Class = err, ErrorClass(err)
	ev.Scope = scopeOf(err, ev.Class)
}

func scopeOf(err error, class string) Scope {
	var (
		rl *RateLimitError
		ce *ChallengeError
		pe *ProviderError
	)
	switch {
	case errors.As(err, &rl):
		return rl.Scope
	case errors.As(err, &ce):
		return ce.Scope
	case class != "refused_destination":
		return ""
	case errors.Is(err, ErrDestinationBlocked):
		return ScopeOverride
	case errors.As(err, &pe):
		return ScopeProvider
	}
	return ScopeGuard
}

// observed reports whether anyone reads events: an OnEvent hook, an
// Observer, or a logger that logs at any level. Fields that cost to fill
// are left empty when nobody does.
func (v *Verifier) observed(ctx context.Context) bool {
	return v.cfg.OnEvent != nil || v.cfg.Observer != nil || v.log.Enabled(ctx, slog.LevelError)
}

func (v *Verifier) emit(ctx context.Context, kind EventKind, ev Event) {
	level := slog.LevelInfo
	switch {
	case kind == EventStarted:
		level = slog.LevelDebug
	case kind == EventFlagged, ev.Scope == ScopeCapacity:
		level = slog.LevelWarn
	case errors.Is(ev.Err, ErrProviderUnavailable), errors.Is(ev.Err, ErrProviderRejected),
		errors.Is(ev.Err, ErrProviderAccount), errors.Is(ev.Err, ErrStoreUnavailable):
		level = slog.LevelWarn
	}
	logged := v.log.Enabled(ctx, level)
	if v.cfg.OnEvent == nil && v.cfg.Observer == nil && !logged {
		return
	}
	ev.Kind = kind
	ev.To = MaskPhone(ev.To)
	if v.cfg.OnEvent != nil {
		v.cfg.OnEvent(ev)
	}
	if v.cfg.Observer != nil {
		v.cfg.Observer.Event(ctx, ev)
	}
	if !logged {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("op", string(ev.Op)), slog.String("provider", ev.Provider))
	if ev.Channel != "" {
		attrs = append(attrs, slog.String("channel", string(ev.Channel)))
	}
	if ev.To != "" {
		attrs = append(attrs, slog.String("to", ev.To), slog.String("region", ev.Region))
	}
	if ev.Range != "" {
		attrs = append(attrs, slog.String("range", ev.Range))
	}
	if ev.Duration > 0 {
		attrs = append(attrs, slog.Duration("duration", ev.Duration))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("class", ev.Class), slog.String("error", ev.Err.Error()))
	}
	if ev.Scope != "" {
		attrs = append(attrs, slog.String("scope", string(ev.Scope)))
	}
	v.log.LogAttrs(ctx, level, "otp: "+string(kind), attrs...)
}
