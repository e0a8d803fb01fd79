package otp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MaxKeyLen is the longest key a Verifier accepts, in bytes.
const MaxKeyLen = 256

// Config holds a Verifier's tunables. Every zero field takes the default
// documented on it; NewVerifier validates the result.
type Config struct {
	// DefaultRegion is the ISO 3166 region ("GB") assumed for numbers
	// written without a leading "+". Empty: numbers must be international.
	DefaultRegion string
	// Guard holds the rules against pumping and abuse that every number
	// passes before a send: number types per channel, region and calling
	// code lists, record-only mode. See [Guard] for the defaults.
	Guard Guard
	// CodeLength is how many digits codes have; Check rejects other lengths
	// without asking the provider. It must match the provider's setting.
	// Default 6; allowed 4 to 10.
	CodeLength int
	// TTL is how long a sent code can be checked. It should match the
	// provider's own expiry. Default 5 minutes.
	TTL time.Duration
	// MaxAttempts is how many checks one verification allows; the last
	// wrong one burns it. Default 5.
	MaxAttempts int
	// ResendCooldown is how long after a send Resend is refused, and during
	// which Start with the same key and number sends nothing. Default 30s.
	ResendCooldown time.Duration
	// Limits are the abuse limits; see [Limits] for their defaults.
	Limits Limits
	// TestNumbers are numbers whose codes are fixed and never sent, so that
	// app-store reviewers and end-to-end tests can sign in. Off (empty) by
	// default; the Verifier logs a warning at construction when they are
	// on. See [TestNumber].
	TestNumbers []TestNumber
	// Limiter enforces Limits. Default: the Store, if it is also a Limiter
	// (redisstore is: its limits hold across processes); otherwise a
	// [MemoryLimiter] private to this Verifier holding at most 100,000 keys.
	Limiter Limiter
	// Logger receives the Verifier's log lines, with phone numbers masked
	// and codes never present. Default: discard everything.
	Logger *slog.Logger
	// OnEvent, if set, is called synchronously for every [Event]; keep it
	// fast. Default: none.
	OnEvent func(Event)
	// Clock tells the time. Default [SystemClock].
	Clock Clock
}

// Verifier runs phone verifications: it validates input, applies limits,
// asks its Provider to send and check codes, and keeps pending
// verifications in its Store. A Verifier is safe for concurrent use, holds
// no goroutines, and several Verifiers sharing one Store and Limiter behave
// as one.
type Verifier struct {
	provider Provider
	store    Store
	limiter  Limiter
	shared   LimitingStore // the store, when it is also the limiter
	cfg      Config
	guard    *guard
	tests    *testNumbers // nil when Config.TestNumbers is empty
	log      *slog.Logger
	locks    keyLocks
}

// NewVerifier returns a Verifier that sends through provider and keeps
// state in store, configured by cfg.
func NewVerifier(provider Provider, store Store, cfg Config) (*Verifier, error) {
	if provider == nil || store == nil {
		return nil, errorf("NewVerifier needs a provider and a store")
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.ResendCooldown == 0 {
		cfg.ResendCooldown = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	cfg.Limits = cfg.Limits.withDefaults()
	switch {
	case cfg.CodeLength < 4 || cfg.CodeLength > 10:
		return nil, errorf("CodeLength %d is outside 4..10", cfg.CodeLength)
	case cfg.TTL < 0 || cfg.MaxAttempts < 0 || cfg.ResendCooldown < 0:
		return nil, errorf("TTL, MaxAttempts and ResendCooldown must not be negative")
	case cfg.DefaultRegion != "" && !isRegion(cfg.DefaultRegion):
		return nil, errorf("DefaultRegion %q is not a supported region", cfg.DefaultRegion)
	}
	if err := cfg.Limits.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{provider: provider, store: store, cfg: cfg, log: cfg.Logger}
	var err error
	if v.guard, err = newGuard(cfg.Guard); err != nil {
		return nil, err
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.TestNumbers) > 0 {
		if v.tests, err = newTestNumbers(provider, cfg); err != nil {
			return nil, err
		}
		v.provider = v.tests
		v.tests.announce(v.log)
	}
	v.limiter = cfg.Limiter
	if l, ok := store.(Limiter); ok && v.limiter == nil {
		v.limiter = l
	}
	if v.limiter == nil {
		v.limiter = NewMemoryLimiter(cfg.Clock, 0)
	}
	if ls, ok := store.(LimitingStore); ok && sameValue(ls, v.limiter) {
		v.shared = ls
	}
	v.locks.init()
	return v, nil
}

// Option adjusts one call. Each operation documents the options it reads
// and ignores the others.
type Option func(*callOptions)

type callOptions struct {
	channel Channel
	client  string
	locale  string
}

// WithChannel picks the channel for Start (default [SMS]).
func WithChannel(c Channel) Option { return func(o *callOptions) { o.channel = c } }

// WithClient names the client making the call (an IP address or account
// ID) for the per-client limits of Start, Resend and Check.
func WithClient(id string) Option { return func(o *callOptions) { o.client = id } }

// WithLocale passes a language hint ("en-gb") to the provider on Start.
func WithLocale(locale string) Option { return func(o *callOptions) { o.locale = locale } }

func collect(opts []Option) callOptions {
	if len(opts) == 0 {
		return callOptions{channel: SMS}
	}
	o := &callOptions{channel: SMS}
	for _, opt := range opts {
		opt(o)
	}
	return *o
}

// Status describes a pending verification. It never holds the vendor's ID.
type Status struct {
	To           string    // E.164 number or email address
	Channel      Channel   // channel of the last send
	Provider     string    // provider holding the verification
	AttemptsLeft int       // checks still allowed
	CreatedAt    time.Time // first send
	SentAt       time.Time // last send
	ResendAt     time.Time // earliest Resend
	ExpiresAt    time.Time // the code's expiry
}

func (v *Verifier) status(p Verification) Status {
	return Status{
		To:           p.To,
		Channel:      p.Channel,
		Provider:     p.Ref.Provider,
		AttemptsLeft: max(0, v.cfg.MaxAttempts-p.Attempts),
		CreatedAt:    p.CreatedAt,
		SentAt:       p.SentAt,
		ResendAt:     p.SentAt.Add(v.cfg.ResendCooldown),
		ExpiresAt:    p.ExpiresAt,
	}
}

// Start sends a code to phone (for the Email channel, an email address) and
// keeps the pending verification under key, replacing any earlier one.
// Called again with the same key and number inside the resend cooldown it
// sends nothing and returns the pending verification. Options: WithChannel,
// WithClient, WithLocale.
//
// Bad input fails with ErrInvalidKey, ErrInvalidPhone, ErrRegionNotAllowed
// or ErrUnsupportedChannel before anything else happens; a limit fails with
// a *RateLimitError before the provider is asked.
func (v *Verifier) Start(ctx context.Context, key, phone string, opts ...Option) (Status, error) {
	o := collect(opts)
	ev := Event{Op: OpStart, Channel: o.channel, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	if !o.channel.Valid() || !v.provider.Supports(o.channel) {
		return Status{}, v.fail(ctx, ev, fmt.Errorf("%w: %q", ErrUnsupportedChannel, o.channel))
	}
	dest, err := v.normalize(phone, o.channel)
	ev.To, ev.Region = dest.to, dest.region
	if err == nil {
		err = v.screen(ctx, ev, dest, o.channel)
	}
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	v.emit(ctx, EventStarted, ev)

	defer v.locks.lock(key).unlock()
	spare := Spare{To: dest.to, SentAfter: v.cfg.Clock.Now().Add(-v.cfg.ResendCooldown)}
	old, err := v.getAllow(ctx, key, spare, dest, o.client)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	if spare.Matches(old) {
		return v.status(old), nil
	}
	v.recordLimits(ctx, ev, dest)
	return v.replace(ctx, ev, old, Verification{Key: key, To: dest.to, Channel: o.channel}, o.locale)
}

// replace sends a new code for next (Key, To and Channel set), stores it
// and withdraws old, if old has a Ref. The caller holds the key's lock and
// has applied the limits.
func (v *Verifier) replace(ctx context.Context, ev Event, old, next Verification, locale string) (Status, error) {
	// Vendors refuse a second verification to a number while one is
	// pending, so an old one to the same number goes first; an old one to
	// another number goes only once its replacement is stored, so that a
	// failed send leaves it usable.
	sameNumber := old.Ref.ID != "" && old.To == next.To
	if sameNumber {
		v.cancel(ctx, old.Ref)
	}
	ref, err := v.send(ctx, ev, SendRequest{To: next.To, Channel: next.Channel, CodeLength: v.cfg.CodeLength, Locale: locale})
	if err != nil {
		return Status{}, err
	}
	now := v.cfg.Clock.Now()
	next.Ref, next.CreatedAt, next.SentAt, next.ExpiresAt = ref, now, now, now.Add(v.cfg.TTL)
	if err := v.store.Put(ctx, next); err != nil {
		// The code went out but cannot be checked: withdraw it.
		v.cancel(ctx, ref)
		return Status{}, v.fail(ctx, ev, err)
	}
	if old.Ref.ID != "" && !sameNumber {
		v.cancel(ctx, old.Ref)
	}
	return v.status(next), nil
}

// send asks the provider to deliver and reports the outcome.
func (v *Verifier) send(ctx context.Context, ev Event, req SendRequest) (Ref, error) {
	begin := time.Now()
	ref, err := v.provider.Send(ctx, req)
	ev.Duration = time.Since(begin)
	if err == nil && ref.ID == "" {
		err = &ProviderError{Provider: v.provider.Name(), Op: "send", Err: errors.New("empty verification id")}
	}
	if err != nil {
		return Ref{}, v.fail(ctx, ev, err)
	}
	if ref.Provider == "" {
		ref.Provider = v.provider.Name()
	}
	ev.Provider = ref.Provider
	v.emit(ctx, EventSent, ev)
	return ref, nil
}

// getAllow returns the live verification under key (zero if none) and,
// unless it is the repeat spare describes, takes the tokens for a send to d
// by client: in one step when the store is the limiter.
func (v *Verifier) getAllow(ctx context.Context, key string, spare Spare, d destination, client string) (Verification, error) {
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	reqs := v.sendLimits(buf[:0], d, client)
	if v.shared != nil {
		return v.shared.GetAllow(ctx, key, spare, reqs)
	}
	old, err := v.store.Get(ctx, key)
	switch {
	case err == nil:
		if spare.Matches(old) {
			return old, nil
		}
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired):
		old = Verification{}
	default:
		return Verification{}, err
	}
	if err := v.limiter.Allow(ctx, reqs); err != nil {
		return Verification{}, err
	}
	return old, nil
}

// allowSend asks the limiter for one send to d by client.
func (v *Verifier) allowSend(ctx context.Context, d destination, client string) error {
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	return v.limiter.Allow(ctx, v.sendLimits(buf[:0], d, client))
}

// sendLimits appends the limits one send to d by client takes.
func (v *Verifier) sendLimits(reqs []LimitRequest, d destination, client string) []LimitRequest {
	l := v.cfg.Limits
	reqs = append(reqs, LimitRequest{Scope: ScopeNumber, Key: d.to, Limit: l.PerNumber})
	if client != "" {
		reqs = append(reqs, LimitRequest{Scope: ScopeClient, Key: client, Limit: l.PerClient})
	}
	if v.guard.recordOnly {
		return reqs // recordLimits charges the guard's limits apart
	}
	return v.guardLimits(reqs, d)
}

// limitBuf holds one call's limit requests; limitBufs recycles them, as the
// interface call would otherwise move them to the heap on every call.
type limitBuf [8]LimitRequest

var limitBufs = sync.Pool{New: func() any { return new(limitBuf) }}

// reserveAttempt takes the checks-per-client token, if client is set, and
// reserves one attempt on the verification under key: in one step when the
// store is the limiter.
func (v *Verifier) reserveAttempt(ctx context.Context, key, client string) (Verification, error) {
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	reqs := buf[:0]
	if client != "" {
		reqs = append(reqs, LimitRequest{Scope: ScopeChecks, Key: client, Limit: v.cfg.Limits.ChecksPerClient})
	}
	if v.shared != nil {
		return v.shared.AllowAddAttempt(ctx, key, v.cfg.MaxAttempts, reqs)
	}
	if len(reqs) > 0 {
		if err := v.limiter.Allow(ctx, reqs); err != nil {
			return Verification{}, err
		}
	}
	return v.store.AddAttempt(ctx, key, v.cfg.MaxAttempts)
}

// Check tells whether code is the one sent for key. On success the
// verification is consumed, exactly once however many checks race, and the
// returned Status says which number was verified. Option: WithClient.
//
// A malformed code fails with ErrInvalidCode without using an attempt. A
// wrong code fails with a *WrongCodeError; the last allowed wrong code burns
// the verification and fails with ErrTooManyAttempts. ErrExpired and
// ErrNotFound say there is nothing left to check.
func (v *Verifier) Check(ctx context.Context, key, code string, opts ...Option) (Status, error) {
	o := collect(opts)
	ev := Event{Op: OpCheck, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	if !v.validCode(code) {
		return Status{}, v.fail(ctx, ev, fmt.Errorf("%w: want %d digits", ErrInvalidCode, v.cfg.CodeLength))
	}
	// The attempt is reserved before the provider sees the code, so that
	// concurrent guesses can never exceed MaxAttempts.
	p, err := v.reserveAttempt(ctx, key, o.client)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	ev.Provider, ev.Channel, ev.To = p.Ref.Provider, p.Channel, p.To
	begin := time.Now()
	err = v.provider.Check(ctx, p.Ref, code)
	ev.Duration = time.Since(begin)
	switch {
	case err == nil:
		if err := v.store.Delete(ctx, key, p.Ref.ID); err != nil {
			// Another check consumed it first, or it was replaced.
			return Status{}, v.fail(ctx, ev, err)
		}
		v.emit(ctx, EventChecked, ev)
		st := v.status(p)
		st.AttemptsLeft = 0
		return st, nil
	case errors.Is(err, ErrWrongCode) && p.Attempts < v.cfg.MaxAttempts:
		return Status{}, v.fail(ctx, ev, &WrongCodeError{AttemptsLeft: v.cfg.MaxAttempts - p.Attempts})
	case errors.Is(err, ErrWrongCode) || errors.Is(err, ErrTooManyAttempts):
		v.burn(ctx, ev, p)
		return Status{}, v.fail(ctx, ev, ErrTooManyAttempts)
	case errors.Is(err, ErrExpired):
		// The vendor's code has expired; so has ours.
		_ = v.store.Delete(ctx, key, p.Ref.ID)
		return Status{}, v.fail(ctx, ev, err)
	case errors.Is(err, ErrNotFound):
		// Either the vendor forgot it or a concurrent check has just
		// consumed it there and is about to consume it here: deleting it
		// now could make that check fail too. The record ends with that
		// check, its attempts or its TTL.
		return Status{}, v.fail(ctx, ev, err)
	default:
		if p.Attempts >= v.cfg.MaxAttempts {
			v.burn(ctx, ev, p)
		}
		return Status{}, v.fail(ctx, ev, err)
	}
}

// burn deletes a verification whose attempts are used up and cancels it at
// the provider.
func (v *Verifier) burn(ctx context.Context, ev Event, p Verification) {
	if err := v.store.Delete(ctx, p.Key, p.Ref.ID); err != nil {
		return // someone else already removed it
	}
	v.cancel(ctx, p.Ref)
	v.emit(ctx, EventBurned, ev)
}

func (v *Verifier) validCode(code string) bool {
	if len(code) != v.cfg.CodeLength {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Resend delivers the pending code for key again, through the provider's
// Resender when it has one and as a new verification otherwise. It fails
// with ErrResendTooSoon (a *RateLimitError with RetryAfter) inside the
// cooldown, and applies the send limits as Start does. Option: WithClient.
func (v *Verifier) Resend(ctx context.Context, key string, opts ...Option) (Status, error) {
	o := collect(opts)
	ev := Event{Op: OpResend, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	defer v.locks.lock(key).unlock()
	p, err := v.store.Get(ctx, key)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	ev.Provider, ev.Channel, ev.To = p.Ref.Provider, p.Channel, p.To
	now := v.cfg.Clock.Now()
	if wait := p.SentAt.Add(v.cfg.ResendCooldown).Sub(now); wait > 0 {
		return Status{}, v.fail(ctx, ev, &RateLimitError{Scope: ScopeCooldown, RetryAfter: wait})
	}
	// The stored number is parsed again, not trusted: a resend is a send,
	// so it needs the calling code for the limits and must pass the rules
	// in force now (an allow-list may have changed since Start).
	dest, err := v.normalize(p.To, p.Channel)
	ev.Region = dest.region
	if err == nil {
		err = v.screen(ctx, ev, dest, p.Channel)
	}
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	if err := v.allowSend(ctx, dest, o.client); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	v.recordLimits(ctx, ev, dest)
	if r, ok := v.provider.(Resender); ok {
		begin := time.Now()
		err := r.Resend(ctx, p.Ref)
		ev.Duration = time.Since(begin)
		if errors.Is(err, errors.ErrUnsupported) {
			// A wrapper (Failover, test numbers) whose provider cannot resend.
			return v.replace(ctx, ev, p, Verification{Key: key, To: p.To, Channel: p.Channel}, "")
		}
		if err != nil {
			return Status{}, v.fail(ctx, ev, err)
		}
		v.emit(ctx, EventSent, ev)
		p.SentAt = v.cfg.Clock.Now()
		if err := v.store.MarkSent(ctx, key, p.Ref.ID, p.SentAt); err != nil {
			return Status{}, v.fail(ctx, ev, err)
		}
		return v.status(p), nil
	}
	return v.replace(ctx, ev, p, Verification{Key: key, To: p.To, Channel: p.Channel}, "")
}

// Cancel removes the pending verification for key and cancels it at the
// provider, best effort: once Cancel returns nil no Check can succeed,
// whatever the vendor answered. ErrNotFound and ErrExpired as for Status.
func (v *Verifier) Cancel(ctx context.Context, key string) error {
	ev := Event{Op: OpCancel, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return v.fail(ctx, ev, err)
	}
	defer v.locks.lock(key).unlock()
	p, err := v.store.Get(ctx, key)
	if err != nil {
		return v.fail(ctx, ev, err)
	}
	ev.Provider, ev.Channel, ev.To = p.Ref.Provider, p.Channel, p.To
	if err := v.store.Delete(ctx, key, p.Ref.ID); err != nil {
		return v.fail(ctx, ev, err)
	}
	v.cancel(ctx, p.Ref)
	v.emit(ctx, EventCanceled, ev)
	return nil
}

// Status returns the pending verification for key: ErrNotFound if there is
// none, ErrExpired if its code has expired.
func (v *Verifier) Status(ctx context.Context, key string) (Status, error) {
	if err := checkKey(key); err != nil {
		return Status{}, err
	}
	p, err := v.store.Get(ctx, key)
	if err != nil {
		return Status{}, err
	}
	return v.status(p), nil
}

// cancel withdraws a verification at the provider, best effort.
func (v *Verifier) cancel(ctx context.Context, ref Ref) {
	c, ok := v.provider.(Canceler)
	if !ok {
		return
	}
	if err := c.Cancel(ctx, ref); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errors.ErrUnsupported) {
		v.log.LogAttrs(ctx, slog.LevelWarn, "otp: cancel at provider failed",
			slog.String("provider", ref.Provider), slog.String("error", err.Error()))
	}
}

func checkKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: want 1 to %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	return nil
}

// errorf formats an error that starts with the package name.
func errorf(format string, args ...any) error {
	return fmt.Errorf("otp: "+format, args...)
}
