package otp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

type opKey struct{}

// recordingObserver logs what it sees, and marks each operation's context
// so the test can tell that the context Begin returns is the one used.
type recordingObserver struct {
	mu  sync.Mutex
	log []string
}

func (o *recordingObserver) add(s string) {
	o.mu.Lock()
	o.log = append(o.log, s)
	o.mu.Unlock()
}

func (o *recordingObserver) Begin(ctx context.Context, op otp.Op) context.Context {
	o.add("begin " + string(op))
	return context.WithValue(ctx, opKey{}, op)
}

func (o *recordingObserver) Event(ctx context.Context, ev otp.Event) {
	o.add("event " + string(ev.Kind) + " in " + string(ctx.Value(opKey{}).(otp.Op)))
}

func (o *recordingObserver) End(ctx context.Context, op otp.Op, err error) {
	o.add("end " + string(ctx.Value(opKey{}).(otp.Op)) + " " + otp.ErrorClass(err))
}

// ctxProvider records the operation marked in the context of each send.
type ctxProvider struct {
	*otptest.Provider
	seen []any
}

func (p *ctxProvider) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	p.seen = append(p.seen, ctx.Value(opKey{}))
	return p.Provider.Send(ctx, req)
}

func TestObserverFollowsEachOperation(t *testing.T) {
	obs := &recordingObserver{}
	prov := &ctxProvider{Provider: otptest.NewProvider(otptest.ProviderConfig{Code: "123456"})}
	ms := memstore.New(memstore.Config{})
	defer ms.Close()
	v, err := otp.NewVerifier(prov, ms, otp.Config{Observer: obs})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = v.Start(ctx, "k", "+447400123456")
	require.NoError(t, err)
	_, err = v.Check(ctx, "k", "000000")
	require.True(t, errors.Is(err, otp.ErrWrongCode))
	_, err = v.Resend(ctx, "k")
	require.True(t, errors.Is(err, otp.ErrResendTooSoon))
	require.NoError(t, v.Cancel(ctx, "k"))
	_, err = v.Status(ctx, "k")
	require.True(t, errors.Is(err, otp.ErrNotFound))

	assert.Equal(t, []string{
		"begin start", "event started in start", "event sent in start", "end start ",
		"begin check", "event failed in check", "end check wrong_code",
		"begin resend", "event failed in resend", "end resend resend_too_soon",
		"begin cancel", "event canceled in cancel", "end cancel ",
	}, obs.log, "Status is not observed: it has no events")
	assert.Equal(t, []any{otp.OpStart}, prov.seen, "the provider got the context Begin returned")
}

// Each provider call is reported once, by one event with a Duration: a
// burn after the last wrong code does not report the check again.
func TestEachProviderCallReportedOnce(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 2}, otptest.ProviderConfig{})
	f.p.SetDelay(time.Millisecond)
	f.start(t)
	_, err := f.v.Check(context.Background(), sessionKey, wrongCode)
	require.Error(t, err)
	before := len(f.events.events)
	_, err = f.v.Check(context.Background(), sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrTooManyAttempts)
	timed := 0
	for _, e := range f.events.events[before:] {
		if e.Duration > 0 {
			timed++
		}
	}
	assert.Equal(t, 1, timed, "events with a Duration for one check: %v", f.events.kinds()[before:])

	// A resend whose MarkSent fails after the vendor resent: the call is
	// EventSent's, not the failure's too.
	store := &faultyStore{Store: f.store}
	f.v = f.verifier(t, f.p, store, otp.Config{})
	f.start(t)
	f.clock.Advance(time.Minute)
	store.failMark = otp.ErrStoreUnavailable
	before = len(f.events.events)
	_, err = f.v.Resend(context.Background(), sessionKey)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	timed = 0
	for _, e := range f.events.events[before:] {
		if e.Duration > 0 {
			timed++
		}
	}
	assert.Equal(t, 1, timed, "events with a Duration for one resend: %v", f.events.kinds()[before:])
}
