package otp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Failover is a Provider that sends through the first healthy one
// of several and moves to the next only when the vendor surely did not act
// on the send, so that a person never gets two codes. Checks, resends and
// cancels go to the provider that issued the verification (Ref.Provider),
// and events name it. Build one with [NewFailover].
//
// A send falls over when the error means "this provider cannot serve and
// sent nothing": a *ProviderError with NotSent whose Kind is
// ProviderUnavailable (connection refused, vendor throttling) or
// ProviderAccount (bad credentials, no credit). NotSent is the one answer
// Failover reads from a *ProviderError: it does not guess from the cause (a
// dial error wrapped without NotSent does not fall over); only from a
// provider that returns no *ProviderError does a dial or DNS error, which
// proves nothing was written, fall over. It does not fall over on a person's
// bad input (an invalid number, a wrong code) nor on an ambiguous failure,
// such as a timeout after the request was written: that error is returned
// as it is.
//
// Each provider has a circuit breaker: after Failures consecutive
// unavailable answers it is skipped for Cooldown, then one send probes it;
// a success closes the breaker, a failure opens it again.
type Failover struct {
	providers []Provider
	breakers  []breaker
	byName    map[string]int
	cfg       FailoverConfig
}

// FailoverConfig tunes a Failover's circuit breakers.
type FailoverConfig struct {
	// Failures is how many consecutive unavailable answers open a
	// provider's breaker. Default 3.
	Failures int
	// Cooldown is how long an open breaker skips its provider. Default 30s.
	Cooldown time.Duration
	// Clock tells the time. Default [SystemClock].
	Clock Clock
	// Logger receives a warning for every fall-over and opened breaker.
	// Default: discard.
	Logger *slog.Logger
}

var (
	_ Resender = (*Failover)(nil)
	_ Canceler = (*Failover)(nil)
)

// NewFailover returns a Failover over providers, in order of preference;
// the zero FailoverConfig takes the defaults. Providers need distinct names, since a verification's
// Ref.Provider routes its checks; Failovers do not nest, and a [Router]
// holds Failovers rather than the other way round.
func NewFailover(cfg FailoverConfig, providers ...Provider) (*Failover, error) {
	if cfg.Failures == 0 {
		cfg.Failures = 3
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Failures < 0 || cfg.Cooldown < 0 {
		return nil, errorf("Failover: Failures and Cooldown must not be negative")
	}
	if len(providers) == 0 {
		return nil, errorf("Failover needs at least one provider")
	}
	f := &Failover{providers: providers, breakers: make([]breaker, len(providers)),
		byName: make(map[string]int, len(providers)), cfg: cfg}
	for i, p := range providers {
		if p == nil {
			return nil, errorf("Failover: provider %d is nil", i)
		}
		if _, nested := p.(*Failover); nested {
			return nil, errorf("Failover: providers do not nest")
		}
		if _, router := p.(*Router); router {
			return nil, errorf("Failover: a Router goes around Failovers, not in one")
		}
		if _, dup := f.byName[p.Name()]; dup {
			return nil, errorf("Failover: two providers are named %q", p.Name())
		}
		f.byName[p.Name()] = i
	}
	return f, nil
}

// Name returns "failover"; the Ref of each verification names the
// provider that sent it.
func (f *Failover) Name() string { return "failover" }

// Supports reports whether any of the providers supports c.
func (f *Failover) Supports(c Channel) bool {
	for _, p := range f.providers {
		if p.Supports(c) {
			return true
		}
	}
	return false
}

// Send sends through the first provider that supports the channel and whose
// breaker is closed (or due a probe), falling over as the type describes.
func (f *Failover) Send(ctx context.Context, req SendRequest) (Ref, error) {
	var last error
	for i, p := range f.providers {
		if !p.Supports(req.Channel) || !f.breakers[i].allow(f.cfg.Clock.Now()) {
			continue
		}
		ref, err := p.Send(ctx, req)
		f.record(i, err)
		if err == nil {
			ref.Provider = p.Name()
			return ref, nil
		}
		if ctx.Err() != nil || !surelyNotSent(err) {
			return Ref{}, err
		}
		f.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "otp: failover: provider sent nothing, trying the next",
			slog.String("provider", p.Name()), slog.String("error", err.Error()))
		last = err
	}
	if last != nil {
		return Ref{}, last
	}
	return Ref{}, &ProviderError{Provider: f.Name(), Op: OpStart, Kind: ProviderUnavailable, NotSent: true,
		Err: errors.New("every provider is skipped by its circuit breaker")}
}

// Check asks the provider that issued ref.
func (f *Failover) Check(ctx context.Context, ref Ref, code string) error {
	i, err := f.route(ref)
	if err != nil {
		return err
	}
	err = f.providers[i].Check(ctx, ref, code)
	f.record(i, err)
	return err
}

// Resend asks the provider that issued ref; one that cannot resend gives
// an error matching errors.ErrUnsupported.
func (f *Failover) Resend(ctx context.Context, ref Ref) error {
	i, err := f.route(ref)
	if err != nil {
		return err
	}
	r, ok := f.providers[i].(Resender)
	if !ok {
		return fmt.Errorf("otp: %s cannot resend: %w", ref.Provider, errors.ErrUnsupported)
	}
	err = r.Resend(ctx, ref)
	f.record(i, err)
	return err
}

// Cancel asks the provider that issued ref; one that cannot cancel gives
// an error matching errors.ErrUnsupported.
func (f *Failover) Cancel(ctx context.Context, ref Ref) error {
	i, err := f.route(ref)
	if err != nil {
		return err
	}
	c, ok := f.providers[i].(Canceler)
	if !ok {
		return fmt.Errorf("otp: %s cannot cancel: %w", ref.Provider, errors.ErrUnsupported)
	}
	err = c.Cancel(ctx, ref)
	f.record(i, err)
	return err
}

func (f *Failover) route(ref Ref) (int, error) {
	i, ok := f.byName[ref.Provider]
	if !ok {
		return 0, fmt.Errorf("%w: failover has no provider named %q", ErrNotFound, ref.Provider)
	}
	return i, nil
}

// record feeds an answer of provider i to its breaker: only "unavailable"
// answers count against it; anything else proves it is up.
func (f *Failover) record(i int, err error) {
	if !unavailable(err) {
		f.breakers[i].success()
		return
	}
	if f.breakers[i].failure(f.cfg.Clock.Now(), f.cfg.Failures, f.cfg.Cooldown) {
		f.cfg.Logger.Warn("otp: failover: circuit breaker opened",
			slog.String("provider", f.providers[i].Name()), slog.Duration("cooldown", f.cfg.Cooldown))
	}
}

// unavailable reports whether err says the provider cannot serve now: it
// is down, overloaded, or refuses the account.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, ErrProviderUnavailable) || errors.Is(err, ErrProviderAccount) ||
		errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// surelyNotSent reports whether err proves that the provider did not act
// and another may serve: its ProviderError says so or, from a provider that
// returns no ProviderError, the connection was never made.
func surelyNotSent(err error) bool {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.NotSent && pe.Kind != ProviderRejected
	}
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &dns)
}

// breaker is one provider's circuit breaker.
type breaker struct {
	mu        sync.Mutex
	failures  int       // consecutive unavailable answers
	openUntil time.Time // while failures >= limit: skip until then
	probing   bool      // one send is testing an open breaker
}

// allow reports whether a send may use the provider now.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if now.Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	b.failures, b.openUntil, b.probing = 0, time.Time{}, false
	b.mu.Unlock()
}

// failure counts an unavailable answer and reports whether it opened the
// breaker.
func (b *breaker) failure(now time.Time, limit int, cooldown time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	b.probing = false
	if b.failures < limit {
		return false
	}
	b.openUntil = now.Add(cooldown)
	return true
}
