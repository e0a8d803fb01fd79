package otp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

const (
	ukMobile   = "+447400123456"
	ukMobile2  = "+447400123457"
	fixedCode  = "123456"
	wrongCode  = "654321"
	sessionKey = "session-1"
	// randomCodes as ProviderConfig.Code asks newFixture for random codes.
	randomCodes = "random"
)

// fixture is a Verifier wired to fakes that share one fake clock.
type fixture struct {
	v      *otp.Verifier
	p      *otptest.Provider
	clock  *otptest.Clock
	store  otp.Store
	events *eventLog
}

// newFixture builds a Verifier over memstore and the otptest provider. The
// provider sends fixedCode unless pcfg.Code says otherwise.
func newFixture(t testing.TB, cfg otp.Config, pcfg otptest.ProviderConfig) *fixture {
	t.Helper()
	clock := otptest.NewClock(time.Time{})
	switch pcfg.Code {
	case "":
		pcfg.Code = fixedCode
	case randomCodes:
		pcfg.Code = ""
	}
	pcfg.Clock = clock
	p := otptest.NewProvider(pcfg)
	ms := memstore.New(memstore.Config{Clock: clock})
	t.Cleanup(func() { _ = ms.Close() })
	f := &fixture{p: p, clock: clock, store: ms, events: &eventLog{}}
	f.v = f.verifier(t, p, ms, cfg)
	return f
}

// verifier builds a Verifier on the fixture's clock and event log.
func (f *fixture) verifier(t testing.TB, p otp.Provider, s otp.Store, cfg otp.Config) *otp.Verifier {
	t.Helper()
	cfg.Clock = f.clock
	if cfg.OnEvent == nil {
		cfg.OnEvent = f.events.add
	}
	v, err := otp.NewVerifier(p, s, cfg)
	require.NoError(t, err)
	return v
}

// start starts a verification to ukMobile under sessionKey.
func (f *fixture) start(t testing.TB, opts ...otp.StartOption) otp.Status {
	t.Helper()
	st, err := f.v.Start(context.Background(), sessionKey, ukMobile, opts...)
	require.NoError(t, err)
	return st
}

type eventLog struct {
	mu     sync.Mutex
	events []otp.Event
}

func (l *eventLog) add(e otp.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) kinds() []otp.EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]otp.EventKind, len(l.events))
	for i, e := range l.events {
		out[i] = e.Kind
	}
	return out
}

func (l *eventLog) last() otp.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events[len(l.events)-1]
}

// exampleNumber returns libphonenumber's example of type typ in region, E.164.
func exampleNumber(t testing.TB, region string, typ phonenumbers.PhoneNumberType) string {
	t.Helper()
	n := phonenumbers.GetExampleNumberForType(region, typ)
	require.NotNil(t, n, "no example %v number for %s", typ, region)
	return phonenumbers.Format(n, phonenumbers.E164)
}

// faultyStore lets a test make one Store method fail.
type faultyStore struct {
	otp.Store
	mu       sync.Mutex
	failPut  error
	failGet  error
	failAdd  error
	failMark error
}

func (s *faultyStore) MarkSent(ctx context.Context, key, id string, at time.Time) error {
	s.mu.Lock()
	err := s.failMark
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Store.MarkSent(ctx, key, id, at)
}

func (s *faultyStore) Put(ctx context.Context, v otp.Verification) error {
	s.mu.Lock()
	err := s.failPut
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Store.Put(ctx, v)
}

func (s *faultyStore) Get(ctx context.Context, key string) (otp.Verification, error) {
	s.mu.Lock()
	err := s.failGet
	s.mu.Unlock()
	if err != nil {
		return otp.Verification{}, err
	}
	return s.Store.Get(ctx, key)
}

// Claim reads as Get does, so failGet fails it too.
func (s *faultyStore) Claim(ctx context.Context, key string, c otp.Claim) (otp.Verification, error) {
	s.mu.Lock()
	err := s.failGet
	s.mu.Unlock()
	if err != nil {
		return otp.Verification{}, err
	}
	return s.Store.Claim(ctx, key, c)
}

func (s *faultyStore) AddAttempt(ctx context.Context, key string, max int) (otp.Verification, error) {
	s.mu.Lock()
	err := s.failAdd
	s.mu.Unlock()
	if err != nil {
		return otp.Verification{}, err
	}
	return s.Store.AddAttempt(ctx, key, max)
}

// plainProvider hides the fake's Resend and Cancel, like a vendor without
// them.
type plainProvider struct{ p *otptest.Provider }

func (pp plainProvider) Name() string                { return pp.p.Name() }
func (pp plainProvider) Supports(c otp.Channel) bool { return pp.p.Supports(c) }
func (pp plainProvider) Send(ctx context.Context, r otp.SendRequest) (otp.Ref, error) {
	return pp.p.Send(ctx, r)
}
func (pp plainProvider) Check(ctx context.Context, ref otp.Ref, code string) error {
	return pp.p.Check(ctx, ref, code)
}

func (l *eventLog) all() []otp.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]otp.Event(nil), l.events...)
}
