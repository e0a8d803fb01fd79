package otptest

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpkit/otp"
)

// ProviderConfig configures a fake Provider. Every zero field takes the
// default shown.
type ProviderConfig struct {
	// Name is the provider's name. Default "otptest".
	Name string
	// Channels the fake supports. Default: all four.
	Channels []otp.Channel
	// Code, if set, is sent every time, making codes deterministic.
	// Default: random digits of the requested length.
	Code string
	// TTL makes codes expire at the fake vendor, by Clock. Default: never.
	TTL time.Duration
	// Reusable makes a right code verify however often it is checked, as
	// a vendor that keeps no state would: only the Store can then make
	// concurrent right checks succeed once. Default: a code verifies once.
	Reusable bool
	// BurnAfter makes the fake vendor burn a verification after this many
	// wrong codes, answering otp.ErrTooManyAttempts, as real vendors do.
	// Default: never.
	BurnAfter int
	// Clock tells the time for TTL and Send.At. Default otp.SystemClock.
	Clock otp.Clock
	// OnSend, if set, is called after every successful send and resend,
	// outside the fake's lock (a demo prints the code from here).
	OnSend func(Send)
	// History is how many recent sends Sends and LastCode remember.
	// Default 1,000.
	History int
}

// Send records one delivery by the fake Provider.
type Send struct {
	Ref     otp.Ref
	To      string
	Channel otp.Channel
	Code    string
	At      time.Time
	Resend  bool // true for a Resend of an earlier verification
}

// Provider is a fake [otp.Provider] (also an [otp.Resender] and
// [otp.Canceler]) that keeps codes in memory. It counts every call that
// reaches it, remembers recent sends so a test can read the code, and can
// be told to fail or slow down. Safe for concurrent use.
type Provider struct {
	cfg ProviderConfig

	calls [len(ops)]paddedCounter
	// armed is set once a fault or delay is scripted, so that calls on
	// an unscripted fake skip the lock in enter.
	armed atomic.Bool

	idPrefix string        // random, so that two fakes never share an ID
	ids      atomic.Uint64 // IDs are idPrefix and a sequence number

	// pending holds the codes by Ref.ID, sharded so that parallel tests
	// and benchmarks do not queue on one lock.
	seed    maphash.Seed
	pending [16]codeShard

	mu      sync.Mutex // guards the fields below
	history []Send     // ring, next at len % cap once full
	next    int
	faults  [len(ops)][]Fault // scripted, next first
	delay   time.Duration
}

type paddedCounter struct {
	atomic.Int64
	_ [56]byte // parallel sends and checks count on separate cache lines
}

type codeShard struct {
	mu sync.Mutex
	m  map[string]*pendingCode
	_  [48]byte // one shard per cache line
}

// ops are the operations the fake counts, in the order of Provider.calls.
var ops = [...]otp.Op{otp.OpStart, otp.OpCheck, otp.OpResend, otp.OpCancel}

func opIndex(op otp.Op) int {
	for i, o := range ops {
		if o == op {
			return i
		}
	}
	return -1
}

type pendingCode struct {
	to      string
	channel otp.Channel
	code    string
	expires time.Time // zero: never
	wrong   int
}

// Fault is a scripted failure for [Provider.FailNext]. The call is counted
// and fails with Err; a nil Err means a *otp.ProviderError of Kind
// otp.ProviderUnavailable ("provider unavailable"). A Fault with Delay
// waits that long first, or until the call's context ends.
type Fault struct {
	Err   error
	Delay time.Duration
}

var (
	_ otp.Provider = (*Provider)(nil)
	_ otp.Resender = (*Provider)(nil)
	_ otp.Canceler = (*Provider)(nil)
)

// NewProvider returns a fake Provider configured by cfg.
func NewProvider(cfg ProviderConfig) *Provider {
	if cfg.Name == "" {
		cfg.Name = "otptest"
	}
	if cfg.Channels == nil {
		cfg.Channels = []otp.Channel{otp.SMS, otp.Voice, otp.Email, otp.WhatsApp}
	}
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.History <= 0 {
		cfg.History = 1000
	}
	p := &Provider{cfg: cfg, seed: maphash.MakeSeed(), idPrefix: rand.Text()[:10] + "-"}
	for i := range p.pending {
		p.pending[i].m = make(map[string]*pendingCode)
	}
	return p
}

// Name implements otp.Provider.
func (p *Provider) Name() string { return p.cfg.Name }

// Supports implements otp.Provider.
func (p *Provider) Supports(c otp.Channel) bool { return slices.Contains(p.cfg.Channels, c) }

// Send implements otp.Provider: it makes up a code and remembers it.
func (p *Provider) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	if err := p.enter(ctx, otp.OpStart); err != nil {
		return otp.Ref{}, err
	}
	if !p.Supports(req.Channel) {
		return otp.Ref{}, &otp.ProviderError{Provider: p.cfg.Name, Op: otp.OpStart, Err: otp.ErrUnsupportedChannel}
	}
	code := p.cfg.Code
	if code == "" {
		code = randomDigits(req.CodeLength)
	}
	now := p.cfg.Clock.Now()
	id := p.idPrefix + strconv.FormatUint(p.ids.Add(1), 10)
	s := Send{Ref: otp.Ref{Provider: p.cfg.Name, ID: id}, To: req.To, Channel: req.Channel, Code: code, At: now}
	pc := &pendingCode{to: req.To, channel: req.Channel, code: code}
	if p.cfg.TTL > 0 {
		pc.expires = now.Add(p.cfg.TTL)
	}
	sh := p.shard(s.Ref.ID)
	sh.mu.Lock()
	sh.m[s.Ref.ID] = pc
	sh.mu.Unlock()
	p.record(s)
	return s.Ref, nil
}

// Check implements otp.Provider with the semantics of a real vendor: a
// right code consumes the verification (a second check gets
// otp.ErrNotFound), a wrong one counts towards BurnAfter.
func (p *Provider) Check(ctx context.Context, ref otp.Ref, code string) error {
	if err := p.enter(ctx, otp.OpCheck); err != nil {
		return err
	}
	sh := p.shard(ref.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	pc, err := p.live(sh, ref.ID)
	if err != nil {
		return err
	}
	if code == pc.code {
		if !p.cfg.Reusable {
			delete(sh.m, ref.ID)
		}
		return nil
	}
	pc.wrong++
	if p.cfg.BurnAfter > 0 && pc.wrong >= p.cfg.BurnAfter {
		delete(sh.m, ref.ID)
		return otp.ErrTooManyAttempts
	}
	return otp.ErrWrongCode
}

// Resend implements otp.Resender: it delivers the same code again.
func (p *Provider) Resend(ctx context.Context, ref otp.Ref) error {
	if err := p.enter(ctx, otp.OpResend); err != nil {
		return err
	}
	sh := p.shard(ref.ID)
	sh.mu.Lock()
	pc, err := p.live(sh, ref.ID)
	var s Send
	if err == nil {
		s = Send{Ref: ref, To: pc.to, Channel: pc.channel, Code: pc.code, At: p.cfg.Clock.Now(), Resend: true}
	}
	sh.mu.Unlock()
	if err != nil {
		return err
	}
	p.record(s)
	return nil
}

// Cancel implements otp.Canceler.
func (p *Provider) Cancel(ctx context.Context, ref otp.Ref) error {
	if err := p.enter(ctx, otp.OpCancel); err != nil {
		return err
	}
	sh := p.shard(ref.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[ref.ID]; !ok {
		return otp.ErrNotFound
	}
	delete(sh.m, ref.ID)
	return nil
}

func (p *Provider) shard(id string) *codeShard {
	return &p.pending[maphash.String(p.seed, id)%uint64(len(p.pending))]
}

// live returns the pending code for id; sh.mu must be held.
func (p *Provider) live(sh *codeShard, id string) (*pendingCode, error) {
	pc, ok := sh.m[id]
	if !ok {
		return nil, otp.ErrNotFound
	}
	if !pc.expires.IsZero() && !p.cfg.Clock.Now().Before(pc.expires) {
		delete(sh.m, id)
		return nil, otp.ErrExpired
	}
	return pc, nil
}

// enter counts a call, waits out the delay and fires a scripted fault.
func (p *Provider) enter(ctx context.Context, op otp.Op) error {
	i := opIndex(op)
	p.calls[i].Add(1)
	if !p.armed.Load() {
		return ctx.Err()
	}
	p.mu.Lock()
	delay := p.delay
	var f *Fault
	if q := p.faults[i]; len(q) > 0 {
		f, p.faults[i] = &q[0], q[1:]
		delay = max(delay, f.Delay)
	}
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &otp.ProviderError{Provider: p.cfg.Name, Op: op, Kind: otp.ProviderUnavailable, Err: ctx.Err()}
		}
	}
	if f == nil {
		return ctx.Err()
	}
	if f.Err == nil {
		return &otp.ProviderError{Provider: p.cfg.Name, Op: op, Kind: otp.ProviderUnavailable, Err: errors.New("otptest: injected fault")}
	}
	return f.Err
}

// record appends s to the history ring and calls OnSend.
func (p *Provider) record(s Send) {
	p.mu.Lock()
	if len(p.history) < p.cfg.History {
		p.history = append(p.history, s)
	} else {
		p.history[p.next] = s
		p.next = (p.next + 1) % p.cfg.History
	}
	p.mu.Unlock()
	if p.cfg.OnSend != nil {
		p.cfg.OnSend(s)
	}
}

// FailNext scripts the next len(faults) calls of op (otp.OpStart for
// sends, OpCheck, OpResend or OpCancel) to fail as listed, in order,
// replacing what was scripted for op before; FailNext(op) clears it.
func (p *Provider) FailNext(op otp.Op, faults ...Fault) {
	i := opIndex(op)
	if i < 0 {
		panic("otptest: FailNext of unknown op " + string(op))
	}
	p.mu.Lock()
	p.faults[i] = slices.Clone(faults)
	p.mu.Unlock()
	p.armed.Store(true)
}

// SetDelay makes every later call wait d first (or until its context
// ends, which fails the call with a *otp.ProviderError of Kind
// otp.ProviderUnavailable).
func (p *Provider) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
	p.armed.Store(true)
}

// Sends returns the remembered sends, oldest first.
func (p *Provider) Sends() []Send {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Send, 0, len(p.history))
	out = append(out, p.history[p.next:]...)
	return append(out, p.history[:p.next]...)
}

// LastCode returns the code most recently sent to to (an E.164 number or
// email address), as a person would read it off their phone.
func (p *Provider) LastCode(to string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.history {
		j := (p.next - 1 - i + 2*len(p.history)) % len(p.history)
		if p.history[j].To == to {
			return p.history[j].Code, true
		}
	}
	return "", false
}

// Calls returns how many calls of op (OpStart for sends, OpCheck, OpResend or
// "cancel") reached the fake, failed ones included.
func (p *Provider) Calls(op otp.Op) int {
	if i := opIndex(op); i >= 0 {
		return int(p.calls[i].Load())
	}
	return 0
}

// Pending returns how many verifications the fake vendor holds.
func (p *Provider) Pending() int {
	n := 0
	for i := range p.pending {
		sh := &p.pending[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(n int) string {
	if n <= 0 {
		n = 6
	}
	out := make([]byte, 0, n)
	var buf [16]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if b < 250 && len(out) < n { // 250 = 25*10: no modulo bias
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out)
}
