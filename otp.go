package otp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// ResendCooldowns are how long after a send Resend is refused, and
	// during which Start with the same key and number sends nothing: the
	// first entry after the first code, the second after the second, and
	// so on, the last one for every later code. Growing waits, as Auth0 and
	// GitLab have, make a number cost an attacker more with each code.
	// Default 30s, 1m, 2m, 5m, 10m.
	ResendCooldowns []time.Duration
	// Limits are the abuse limits; see [Limits] for their defaults.
	Limits Limits
	// TestNumbers are numbers whose codes are fixed and never sent, so that
	// app-store reviewers and end-to-end tests can sign in. Off (empty) by
	// default; the Verifier logs a warning at construction when they are
	// on. See [TestNumber].
	TestNumbers []TestNumber
	// Limiter enforces Limits. Default (nil): the Store, if it is also a
	// Limiter (redisstore is: its limits hold across processes, and as a
	// [LimitingStore] it serves Start and Check in two round trips);
	// otherwise a [MemoryLimiter] private to this Verifier. Set it only to
	// keep the limits somewhere other than the Store.
	Limiter Limiter
	// Logger receives the Verifier's log lines, with phone numbers masked
	// and codes never present. Default: discard everything.
	Logger *slog.Logger
	// OnEvent, if set, is called synchronously for every [Event]; keep it
	// fast. Default: none.
	OnEvent func(Event)
	// Observer, if set, follows every Start, Check, Resend and Cancel from
	// call to return with its context, and sees its events: what tracing
	// needs (package otelotp). Default: none.
	Observer Observer
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
	state    LimitingStore // the Store, and the Limiter beside it or in it
	cfg      Config
	guard    *guard
	expected map[string]bool // Limits.ExpectedRegions
	tests    *testNumbers    // nil when Config.TestNumbers is empty
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
	if len(cfg.ResendCooldowns) == 0 {
		cfg.ResendCooldowns = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	cfg.ResendCooldowns = slices.Clone(cfg.ResendCooldowns)
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	cfg.Limits = cfg.Limits.withDefaults()
	switch {
	case cfg.CodeLength < 4 || cfg.CodeLength > 10:
		return nil, errorf("CodeLength %d is outside 4..10", cfg.CodeLength)
	case cfg.TTL < 0 || cfg.MaxAttempts < 0 || slices.ContainsFunc(cfg.ResendCooldowns, func(d time.Duration) bool { return d < 0 }):
		return nil, errorf("TTL, MaxAttempts and ResendCooldowns must not be negative")
	case cfg.DefaultRegion != "" && !isRegion(cfg.DefaultRegion):
		return nil, errorf("DefaultRegion %q is not a supported region", cfg.DefaultRegion)
	}
	if err := cfg.Limits.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{provider: provider, state: limitingStore(store, cfg), cfg: cfg, log: cfg.Logger,
		expected: set(cfg.Limits.ExpectedRegions)}
	var err error
	if v.guard, err = newGuard(cfg.Guard); err != nil {
		return nil, err
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.TestNumbers) > 0 {
		if v.tests, err = newTestNumbers(cfg); err != nil {
			return nil, err
		}
		v.tests.announce(v.log)
	}
	v.locks.init()
	return v, nil
}

// limitingStore returns store as the LimitingStore the Verifier works
// through: the store itself when it keeps the limits and no other Limiter
// is configured, else the store beside its Limiter.
func limitingStore(store Store, cfg Config) LimitingStore {
	if ls, ok := store.(LimitingStore); ok && cfg.Limiter == nil {
		return ls
	}
	lim := cfg.Limiter
	if l, ok := store.(Limiter); ok && lim == nil {
		lim = l
	}
	if lim == nil {
		lim = NewMemoryLimiter(MemoryLimiterConfig{Clock: cfg.Clock})
	}
	return storeAndLimiter{store, lim}
}

// StartOption adjusts one Start: [WithChannel], [WithLocale], or any
// [Option].
type StartOption interface {
	applyStart(*startOptions)
}

// Option adjusts one call of Start, Check or Resend: [WithClient].
type Option interface {
	StartOption
	apply(*callOptions)
}

type callOptions struct {
	client string
}

type startOptions struct {
	callOptions
	channel    Channel
	locale     string
	challenged bool
}

type clientOption string

func (o clientOption) apply(c *callOptions)       { c.client = string(o) }
func (o clientOption) applyStart(s *startOptions) { o.apply(&s.callOptions) }

type channelOption Channel

func (o channelOption) applyStart(s *startOptions) { s.channel = Channel(o) }

type localeOption string

func (o localeOption) applyStart(s *startOptions) { s.locale = string(o) }

type challengePassed struct{}

func (challengePassed) applyStart(s *startOptions) { s.challenged = true }

// WithChallengePassed tells Start that the person has just passed a
// challenge (a CAPTCHA, or another check of your own) after a Start that
// failed with ErrChallengeRequired. The Start then skips the signal rules
// that asked for it (the unverified budget of the range, the conversion
// breakers, an override that challenges) and takes instead from the small
// budgets of challenged sends (Limits.ChallengedPerRange and
// ChallengedPerRegion); PerNumber, PerClient, the ceilings and blocks still
// apply. Only pass it after a challenge really passed: it is a step up,
// not a bypass.
func WithChallengePassed() StartOption { return challengePassed{} }

// WithChannel picks the channel for Start (default [SMS]).
func WithChannel(c Channel) StartOption { return channelOption(c) }

// WithClient names the client making the call (an IP address or account
// ID) for the per-client limits of Start, Resend and Check.
func WithClient(id string) Option { return clientOption(id) }

// WithLocale passes a language hint ("en-gb") to the provider on Start.
func WithLocale(locale string) StartOption { return localeOption(locale) }

func startOpts(opts []StartOption) startOptions {
	if len(opts) == 0 {
		return startOptions{channel: SMS} // o below escapes through the interface call
	}
	o := &startOptions{channel: SMS}
	for _, opt := range opts {
		opt.applyStart(o)
	}
	return *o
}

func callOpts(opts []Option) callOptions {
	if len(opts) == 0 {
		return callOptions{}
	}
	o := &callOptions{}
	for _, opt := range opts {
		opt.apply(o)
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
		ResendAt:     p.SentAt.Add(Cooldown(v.cfg.ResendCooldowns, p.Sends)),
		ExpiresAt:    p.ExpiresAt,
	}
}

// Start sends a code to to, a phone number (for the Email channel, an email
// address), and keeps the pending verification under key, replacing any
// earlier one. Called again with the same key and number inside the resend
// cooldown it sends nothing and returns the pending verification. Options:
// WithChannel, WithClient, WithLocale.
//
// Bad input fails with ErrInvalidKey, ErrInvalidPhone, ErrRegionNotAllowed
// or ErrUnsupportedChannel before anything else happens. Before the
// provider is asked, a budget fails it with a *RateLimitError, an
// operator's block with a *BlockedError, and the pumping defence's signal
// rules with a *ChallengeError (ErrChallengeRequired): show the person a
// challenge and Start again WithChallengePassed. Option:
// WithChallengePassed.
func (v *Verifier) Start(ctx context.Context, key, to string, opts ...StartOption) (Status, error) {
	if o := v.cfg.Observer; o != nil {
		ctx = o.Begin(ctx, OpStart)
		st, err := v.start(ctx, key, to, opts)
		o.End(ctx, OpStart, err)
		return st, err
	}
	return v.start(ctx, key, to, opts)
}

func (v *Verifier) start(ctx context.Context, key, to string, opts []StartOption) (Status, error) {
	o := startOpts(opts)
	ev := Event{Op: OpStart, Channel: o.channel, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	if !o.channel.Valid() || !v.provider.Supports(o.channel) {
		return Status{}, v.fail(ctx, ev, fmt.Errorf("%w: %q", ErrUnsupportedChannel, o.channel))
	}
	p, err := v.plan(ctx, &ev, to, o.channel, o.client, o.challenged)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	defer p.release()
	v.emit(ctx, EventStarted, ev)

	defer v.locks.lock(key).unlock()
	claim := Claim{Token: rand.Text()}
	old, spare, err := v.getAllow(ctx, key, p, claim)
	if err != nil {
		if errors.Is(err, ErrStoreUnavailable) {
			// The reply may be what was lost: do not leave the key claimed.
			_ = v.state.Release(ctx, key, claim.Token)
		}
		return Status{}, v.fail(ctx, ev, err)
	}
	if spare {
		return v.status(old), nil
	}
	v.record(ctx, ev, p)
	st, err := v.replace(ctx, ev, old, p, Verification{Key: key, To: p.dest.to, Channel: o.channel}, o.locale)
	if err != nil {
		_ = v.state.Release(ctx, key, claim.Token) // let another Start send
	}
	return st, err
}

// claimFor is how long a Start's claim on its key lasts if it is never
// released: longer than any send, retries and fail-overs included.
const claimFor = time.Minute

// getAllow reads the verification under key, claims the key and takes p's
// tokens (GetAllow), waiting while another instance's send for the key is
// in flight, for as long as a claim lasts at most; spare reports that the
// verification is the repeat that sends nothing.
func (v *Verifier) getAllow(ctx context.Context, key string, p *plan, c Claim) (old Verification, spare bool, err error) {
	wait := 10 * time.Millisecond
	giveUp := time.Now().Add(claimFor)
	for {
		now := v.cfg.Clock.Now()
		s := Spare{To: p.dest.to, Now: now, Cooldowns: v.cfg.ResendCooldowns}
		c.Until = now.Add(claimFor)
		old, err = v.state.GetAllow(ctx, key, s, c, p.enforce)
		if !errors.Is(err, ErrSendInFlight) || time.Now().After(giveUp) {
			return old, err == nil && s.Matches(old), err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Verification{}, false, fmt.Errorf("otp: waiting for a send in flight: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// replace sends a new code for next (Key, To and Channel set) as p
// planned, stores it and withdraws old, if old has a Ref. The caller holds
// the key's lock and has applied p's limits.
func (v *Verifier) replace(ctx context.Context, ev Event, old Verification, p *plan, next Verification, locale string) (Status, error) {
	// Vendors refuse a second verification to a number while one is
	// pending, so an old one to the same number goes first; an old one to
	// another number goes only once its replacement is stored, so that a
	// failed send leaves it usable.
	sameNumber := old.Ref.ID != "" && old.To == next.To
	if sameNumber {
		v.cancel(ctx, old.Ref)
	}
	req := SendRequest{To: next.To, Channel: next.Channel, CodeLength: v.cfg.CodeLength, Locale: locale,
		Client: p.client, Region: p.dest.region}
	ref, err := v.send(ctx, ev, req, p.dest.test)
	if err != nil {
		return Status{}, err
	}
	now := v.cfg.Clock.Now()
	next.Ref, next.CreatedAt, next.SentAt, next.ExpiresAt = ref, now, now, now.Add(v.cfg.TTL)
	next.Region, next.Challenged, next.Sends = p.dest.region, p.challenged, 1
	if sameNumber {
		next.Sends = max(old.Sends, 1) + 1 // the cooldown keeps growing
	}
	if err := v.state.PutRecord(ctx, next, sentOutcome(p.challenged), p.outcome); err != nil {
		// The code went out but cannot be checked: withdraw it.
		v.cancel(ctx, ref)
		return Status{}, v.fail(ctx, ev, err)
	}
	if old.Ref.ID != "" && !sameNumber {
		v.cancel(ctx, old.Ref)
	}
	return v.status(next), nil
}

func sentOutcome(challenged bool) Outcome {
	if challenged {
		return OutcomeSentChallenged
	}
	return OutcomeSent
}

// send asks the provider to deliver, or for a live test number makes the
// reference itself, and reports the outcome.
func (v *Verifier) send(ctx context.Context, ev Event, req SendRequest, test bool) (Ref, error) {
	if test {
		ev.Provider = testNumberProvider
		v.emit(ctx, EventSent, ev)
		return v.tests.ref(req.To), nil
	}
	begin := time.Now()
	ref, err := v.provider.Send(ctx, req)
	ev.Duration = time.Since(begin)
	if err == nil && ref.ID == "" {
		err = &ProviderError{Provider: v.provider.Name(), Op: OpStart, Err: errors.New("empty verification id")}
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

// Check tells whether code is the one sent for key. On success the
// verification is consumed, exactly once however many checks race, and the
// returned Status says which number was verified. Option: WithClient.
//
// A malformed code fails with ErrInvalidCode without using an attempt. A
// wrong code fails with a *WrongCodeError; the last allowed wrong code burns
// the verification and fails with ErrTooManyAttempts. ErrExpired and
// ErrNotFound say there is nothing left to check.
func (v *Verifier) Check(ctx context.Context, key, code string, opts ...Option) (Status, error) {
	if o := v.cfg.Observer; o != nil {
		ctx = o.Begin(ctx, OpCheck)
		st, err := v.check(ctx, key, code, opts)
		o.End(ctx, OpCheck, err)
		return st, err
	}
	return v.check(ctx, key, code, opts)
}

func (v *Verifier) check(ctx context.Context, key, code string, opts []Option) (Status, error) {
	o := callOpts(opts)
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
	ev.Provider, ev.Channel, ev.To, ev.Region = p.Ref.Provider, p.Channel, p.To, p.Region
	begin := time.Now()
	if isTestRef(p.Ref) {
		err = v.tests.check(p.Ref, code)
	} else {
		err = v.provider.Check(ctx, p.Ref, code)
	}
	ev.Duration = time.Since(begin)
	switch {
	case err == nil:
		if err := v.consume(ctx, p); err != nil {
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
		_ = v.state.Delete(ctx, key, p.Ref.ID)
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

// consume deletes the verified p and feeds its success to the breakers and
// unverified budgets its send took from, in one step.
func (v *Verifier) consume(ctx context.Context, p Verification) error {
	pl := newPlan()
	defer pl.release()
	if p.Region != "" && !isTestRef(p.Ref) {
		pl.outcome = v.outcomes(pl.outcome, p.Region, v.guard.place(p.To, regionInfo(p.To, p.Region)), p.Challenged)
	}
	return v.state.DeleteRecord(ctx, p.Key, p.Ref.ID, OutcomeVerified, pl.outcome)
}

// reserveAttempt takes the checks-per-client token, if client is set, and
// reserves one attempt on the verification under key, in one step.
func (v *Verifier) reserveAttempt(ctx context.Context, key, client string) (Verification, error) {
	p := newPlan()
	defer p.release()
	if client != "" {
		p.enforce = append(p.enforce, LimitRequest{Scope: ScopeChecks, Key: clientKey(client), Limit: v.cfg.Limits.ChecksPerClient})
	}
	return v.state.AllowAddAttempt(ctx, key, v.cfg.MaxAttempts, p.enforce)
}

// burn deletes a verification whose attempts are used up and cancels it at
// the provider.
func (v *Verifier) burn(ctx context.Context, ev Event, p Verification) {
	if err := v.state.Delete(ctx, p.Key, p.Ref.ID); err != nil {
		return // someone else already removed it
	}
	v.cancel(ctx, p.Ref)
	ev.Duration = 0 // the check's call is the failure's to report
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
	if o := v.cfg.Observer; o != nil {
		ctx = o.Begin(ctx, OpResend)
		st, err := v.resend(ctx, key, opts)
		o.End(ctx, OpResend, err)
		return st, err
	}
	return v.resend(ctx, key, opts)
}

func (v *Verifier) resend(ctx context.Context, key string, opts []Option) (Status, error) {
	o := callOpts(opts)
	ev := Event{Op: OpResend, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	defer v.locks.lock(key).unlock()
	old, err := v.state.Get(ctx, key)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	ev.Provider, ev.Channel = old.Ref.Provider, old.Channel
	if wait := old.SentAt.Add(Cooldown(v.cfg.ResendCooldowns, old.Sends)).Sub(v.cfg.Clock.Now()); wait > 0 {
		ev.To = old.To
		return Status{}, v.fail(ctx, ev, &RateLimitError{Scope: ScopeCooldown, RetryAfter: wait})
	}
	// The stored number goes through the policy again, not trusted: a
	// resend is a send, and must pass the rules in force now (an
	// allow-list may have changed since Start). A challenge passed for the
	// Start holds for its resends.
	p, err := v.plan(ctx, &ev, old.To, old.Channel, o.client, old.Challenged)
	if err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	defer p.release()
	if err := v.state.Allow(ctx, p.enforce); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	v.record(ctx, ev, p)
	next := Verification{Key: key, To: old.To, Channel: old.Channel}
	r, canResend := v.provider.(Resender)
	switch {
	case isTestRef(old.Ref) != p.dest.test:
		// The number became, or stopped being, a test number.
		return v.replace(ctx, ev, old, p, next, "")
	case p.dest.test:
	case !canResend:
		return v.replace(ctx, ev, old, p, next, "")
	default:
		begin := time.Now()
		err := r.Resend(ctx, old.Ref)
		ev.Duration = time.Since(begin)
		if errors.Is(err, errors.ErrUnsupported) {
			// A wrapper (Failover) whose provider cannot resend.
			return v.replace(ctx, ev, old, p, next, "")
		}
		if err != nil {
			return Status{}, v.fail(ctx, ev, err)
		}
	}
	v.emit(ctx, EventSent, ev)
	ev.Duration = 0 // the call is reported; a store failure after it is not one
	old.SentAt = v.cfg.Clock.Now()
	old.Sends++ // as MarkSent does in the store
	if err := v.state.MarkSent(ctx, key, old.Ref.ID, old.SentAt); err != nil {
		return Status{}, v.fail(ctx, ev, err)
	}
	_ = v.state.Record(ctx, sentOutcome(p.challenged), p.outcome) // best effort: the code went out
	return v.status(old), nil
}

// Cancel removes the pending verification for key and cancels it at the
// provider, best effort: once Cancel returns nil no Check can succeed,
// whatever the vendor answered. ErrNotFound and ErrExpired as for Status.
func (v *Verifier) Cancel(ctx context.Context, key string) error {
	if o := v.cfg.Observer; o != nil {
		ctx = o.Begin(ctx, OpCancel)
		err := v.cancelKey(ctx, key)
		o.End(ctx, OpCancel, err)
		return err
	}
	return v.cancelKey(ctx, key)
}

func (v *Verifier) cancelKey(ctx context.Context, key string) error {
	ev := Event{Op: OpCancel, Provider: v.provider.Name()}
	if err := checkKey(key); err != nil {
		return v.fail(ctx, ev, err)
	}
	defer v.locks.lock(key).unlock()
	p, err := v.state.Get(ctx, key)
	if err != nil {
		return v.fail(ctx, ev, err)
	}
	ev.Provider, ev.Channel, ev.To, ev.Region = p.Ref.Provider, p.Channel, p.To, p.Region
	if err := v.state.Delete(ctx, key, p.Ref.ID); err != nil {
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
	p, err := v.state.Get(ctx, key)
	if err != nil {
		return Status{}, err
	}
	return v.status(p), nil
}

// cancel withdraws a verification at the provider, best effort.
func (v *Verifier) cancel(ctx context.Context, ref Ref) {
	c, ok := v.provider.(Canceler)
	if !ok || isTestRef(ref) {
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
