package otelotp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otelotp"
	"github.com/otpkit/otp/otptest"
)

const (
	phone  = "+447400123456"
	secret = "session-key-3f9a" // the key: never an attribute
	code   = "424242"
)

type env struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	prov   *otptest.Provider
	clock  *otptest.Clock
	v      *otp.Verifier
}

func newEnv(t *testing.T, cfg otp.Config) *env {
	t.Helper()
	e := &env{t: t, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(), clock: otptest.NewClock(time.Time{})}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	tel, err := otelotp.New(otelotp.Config{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader)),
		TracerProvider: e.tp,
	})
	require.NoError(t, err)
	e.prov = otptest.NewProvider(otptest.ProviderConfig{Code: code, Clock: e.clock})
	ms := memstore.New(memstore.Config{Clock: e.clock})
	t.Cleanup(func() { _ = ms.Close() })
	cfg.Observer, cfg.Clock = tel, e.clock
	e.v, err = otp.NewVerifier(e.prov, ms, cfg)
	require.NoError(t, err)
	return e
}

func (e *env) metrics() metricdata.ResourceMetrics {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(e.t, e.reader.Collect(context.Background(), &rm))
	return rm
}

// sum adds up the instrument name's data points whose attributes include
// every pair of want: the values of a counter, the observation counts of a
// histogram.
func (e *env) sum(name string, want ...attribute.KeyValue) int64 {
	e.t.Helper()
	var n int64
	for _, sm := range e.metrics().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if has(dp.Attributes, want) {
						n += dp.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					if has(dp.Attributes, want) {
						n += int64(dp.Count)
					}
				}
			}
		}
	}
	return n
}

func has(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

var (
	region   = otelotp.AttrRegion.String("GB")
	provider = otelotp.AttrProvider.String("otptest")
	sms      = otelotp.AttrChannel.String("sms")
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 2, Per: time.Hour}}})
	ctx := context.Background()
	_, err := e.v.Start(ctx, secret, phone)
	require.NoError(t, err)
	_, err = e.v.Check(ctx, secret, "000000")
	require.ErrorIs(t, err, otp.ErrWrongCode)
	_, err = e.v.Check(ctx, secret, code)
	require.NoError(t, err)

	start := otelotp.AttrOp.String("start")
	assert.EqualValues(t, 1, e.sum("otp.sends", start, provider, sms, region))
	assert.EqualValues(t, 1, e.sum("otp.checks", otelotp.AttrResult.String("wrong_code"), provider, sms, region))
	assert.EqualValues(t, 1, e.sum("otp.checks", otelotp.AttrResult.String("verified"), provider, sms, region))
	assert.EqualValues(t, 1, e.sum("otp.verified", provider, sms, region), "the verified share: otp.verified over otp.sends, by region")
	assert.EqualValues(t, 1, e.sum("otp.failures", otelotp.AttrClass.String("wrong_code")))
	assert.EqualValues(t, 3, e.sum("otp.provider.duration", provider, sms, region), "one send, two checks")
	assert.EqualValues(t, 1, e.sum("otp.provider.duration", otelotp.AttrOp.String("start")))

	// Resend after the cooldown, then the per-number limit denies.
	_, err = e.v.Start(ctx, "k2", phone)
	require.NoError(t, err)
	_, err = e.v.Start(ctx, "k3", phone)
	require.ErrorIs(t, err, otp.ErrRateLimited)
	assert.EqualValues(t, 1, e.sum("otp.denials", otelotp.AttrScope.String("number"), otelotp.AttrClass.String("rate_limited"),
		otelotp.AttrRecordOnly.Bool(false), region))
	e.clock.Advance(31 * time.Second)
	_, err = e.v.Resend(ctx, "k2")
	require.ErrorIs(t, err, otp.ErrRateLimited, "a resend is a send: the per-number limit applies")
	assert.EqualValues(t, 2, e.sum("otp.denials", otelotp.AttrScope.String("number")))

	// Refused and blocked destinations, and a challenge.
	_, err = e.v.Start(ctx, "k4", "+442079460000")
	require.ErrorIs(t, err, otp.ErrNumberTypeNotAllowed)
	assert.EqualValues(t, 1, e.sum("otp.denials", otelotp.AttrScope.String("guard"), otelotp.AttrClass.String("refused_destination")))
	require.NoError(t, e.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("FR"), Action: otp.OverrideBlock}))
	_, err = e.v.Start(ctx, "k5", "+33612345678")
	require.ErrorIs(t, err, otp.ErrDestinationBlocked)
	assert.EqualValues(t, 1, e.sum("otp.denials", otelotp.AttrScope.String("override"), otelotp.AttrClass.String("refused_destination"),
		otelotp.AttrRegion.String("FR")))
	require.NoError(t, e.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("DE"), Action: otp.OverrideChallenge}))
	_, err = e.v.Start(ctx, "k6", "+4915123456789")
	require.ErrorIs(t, err, otp.ErrChallengeRequired)
	assert.EqualValues(t, 1, e.sum("otp.denials", otelotp.AttrScope.String("override"), otelotp.AttrClass.String("challenge_required"),
		otelotp.AttrRegion.String("DE")))

	e.noSecrets()
}

// noSecrets holds every attribute of every metric and span free of the
// number, the key and the code.
func (e *env) noSecrets() {
	e.t.Helper()
	var values []string
	add := func(s attribute.Set) {
		for _, kv := range s.ToSlice() {
			values = append(values, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, sm := range e.metrics().ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes)
				}
			}
		}
	}
	for _, s := range e.spans.Ended() {
		add(attribute.NewSet(s.Attributes()...))
		for _, ev := range s.Events() {
			add(attribute.NewSet(ev.Attributes...))
		}
	}
	require.NotEmpty(e.t, values)
	for _, v := range values {
		for _, bad := range []string{"7400123456", "2079460000", "612345678", "15123456789", secret, code} {
			assert.NotContains(e.t, v, bad)
		}
	}
}

func TestSpans(t *testing.T) {
	e := newEnv(t, otp.Config{})
	ctx, parent := e.tp.Tracer("test").Start(context.Background(), "POST /verify")
	_, err := e.v.Start(ctx, secret, phone)
	require.NoError(t, err)
	_, err = e.v.Check(ctx, secret, "000000")
	require.ErrorIs(t, err, otp.ErrWrongCode)
	e.clock.Advance(31 * time.Second)
	_, err = e.v.Resend(ctx, secret)
	require.NoError(t, err)
	require.NoError(t, e.v.Cancel(ctx, secret))
	parent.End()

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range e.spans.Ended() {
		byName[s.Name()] = s
	}
	for _, name := range []string{"otp.Start", "otp.Check", "otp.Resend", "otp.Cancel"} {
		s := byName[name]
		require.NotNil(t, s, name)
		assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "%s is a child of the caller's span", name)
		assert.Equal(t, codes.Unset, s.Status().Code, "%s: a wrong code is not the service's error", name)
	}
	for op, child := range map[string]string{"otp.Start": "otp.provider.Send", "otp.Check": "otp.provider.Check", "otp.Resend": "otp.provider.Resend"} {
		c := byName[child]
		require.NotNil(t, c, child)
		p := byName[op]
		assert.Equal(t, p.SpanContext().SpanID(), c.Parent().SpanID(), "%s is a child of %s", child, op)
		assert.False(t, c.StartTime().Before(p.StartTime()), "%s starts within %s", child, op)
		assert.False(t, c.EndTime().After(p.EndTime()), "%s ends within %s", child, op)
		assert.Contains(t, c.Attributes(), otelotp.AttrProvider.String("otptest"))
	}
	assert.NotContains(t, byName, "otp.provider.Cancel", "a cancel at the provider is best effort and untimed")
	assert.Contains(t, byName["otp.Start"].Attributes(), otelotp.AttrRegion.String("GB"))
	assert.Contains(t, byName["otp.Start"].Attributes(), otelotp.AttrRange.String("+44740012xxxx"))
	assert.Contains(t, byName["otp.Check"].Attributes(), otelotp.AttrClass.String("wrong_code"))
	var kinds []string
	for _, ev := range byName["otp.Start"].Events() {
		kinds = append(kinds, ev.Name)
	}
	assert.Equal(t, []string{"started", "sent"}, kinds)
	assert.Len(t, e.spans.Ended(), 8, "four operations, three provider calls, the caller's span")
	e.noSecrets()
}

func TestSpansOfFailures(t *testing.T) {
	e := newEnv(t, otp.Config{})
	e.prov.FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "otptest", Op: otp.OpStart,
		Kind: otp.ProviderUnavailable, HTTPStatus: 503}})
	_, err := e.v.Start(context.Background(), secret, phone)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	_, err = e.v.Start(context.Background(), secret, "not a number")
	require.ErrorIs(t, err, otp.ErrInvalidPhone)

	ended := e.spans.Ended()
	require.Len(t, ended, 3)
	send, start, typo := ended[0], ended[1], ended[2]
	assert.Equal(t, "otp.provider.Send", send.Name())
	assert.Equal(t, codes.Error, send.Status().Code)
	assert.Equal(t, codes.Error, start.Status().Code, "an outage is the service's error")
	assert.Equal(t, "provider_unavailable", start.Status().Description)
	assert.Equal(t, "otp.Start", typo.Name())
	assert.Equal(t, codes.Unset, typo.Status().Code, "a typo is the person's")
	assert.Contains(t, typo.Attributes(), otelotp.AttrClass.String("invalid_input"))
	assert.EqualValues(t, 1, e.sum("otp.failures", otelotp.AttrClass.String("provider_unavailable"), provider))
	assert.EqualValues(t, 1, e.sum("otp.provider.duration", otelotp.AttrClass.String("provider_unavailable")))
}

// TestDefaults: without providers the global ones (no-ops unless set)
// serve, and the Verifier works as without telemetry.
func TestDefaults(t *testing.T) {
	tel, err := otelotp.New(otelotp.Config{})
	require.NoError(t, err)
	ms := memstore.New(memstore.Config{})
	defer ms.Close()
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{}), ms, otp.Config{Observer: tel})
	require.NoError(t, err)
	_, err = v.Start(context.Background(), "k", phone)
	assert.NoError(t, err)
	_, err = v.Check(context.Background(), "k", "12")
	assert.True(t, errors.Is(err, otp.ErrInvalidCode))
}
