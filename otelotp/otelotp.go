package otelotp

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpkit/otp"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/otpkit/otp/otelotp"

// Config holds the providers to report to. Every zero field takes the
// default documented on it.
type Config struct {
	// MeterProvider makes the meter. Default: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the tracer. Default: otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
}

// Telemetry turns a Verifier's operations into metrics and spans. It is
// an [otp.Observer]: set it as otp.Config.Observer. Create it with [New];
// it is safe for concurrent use.
type Telemetry struct {
	tracer trace.Tracer

	sends, checks, verified, denials, failures metric.Int64Counter
	providerTime                               metric.Float64Histogram
}

var _ otp.Observer = (*Telemetry)(nil)

// providerBuckets are the provider-latency histogram's bounds, in
// seconds: vendors answer in tens of milliseconds to seconds.
var providerBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New makes the instruments and the tracer.
func New(cfg Config) (*Telemetry, error) {
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	m := cfg.MeterProvider.Meter(ScopeName)
	t := &Telemetry{tracer: cfg.TracerProvider.Tracer(ScopeName)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	t.sends = counter("otp.sends", "{send}", "Codes the provider accepted to send, by Start or Resend.")
	t.checks = counter("otp.checks", "{check}", "Checks of a code that reached the Verifier's store, by result.")
	t.verified = counter("otp.verified", "{verification}", "Verifications completed with the right code.")
	t.denials = counter("otp.denials", "{denial}", "Calls the abuse defence refused or challenged, by scope.")
	t.failures = counter("otp.failures", "{failure}", "Operations that failed, by error class.")
	var err error
	t.providerTime, err = m.Float64Histogram("otp.provider.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent in the provider's calls."), metric.WithExplicitBucketBoundaries(providerBuckets...))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// Attribute keys. Metrics carry only the low-cardinality ones (op,
// provider, channel, region, result, class, scope, record_only); spans
// also carry the calling code and the number range, whose last digits are
// hidden. No number, key or code is ever an attribute.
const (
	AttrOp          = attribute.Key("otp.op")          // start, check, resend, cancel
	AttrProvider    = attribute.Key("otp.provider")    // the provider's Name
	AttrChannel     = attribute.Key("otp.channel")     // sms, voice, email, whatsapp
	AttrRegion      = attribute.Key("otp.region")      // ISO 3166 region: GB
	AttrResult      = attribute.Key("otp.result")      // a check: verified, or the error class
	AttrClass       = attribute.Key("otp.error.class") // otp.ErrorClass
	AttrScope       = attribute.Key("otp.scope")       // the limit or rule: number, range, conversion, guard...
	AttrRecordOnly  = attribute.Key("otp.record_only") // a denial only recorded (Guard.RecordOnly)
	AttrCallingCode = attribute.Key("otp.calling_code")
	AttrRange       = attribute.Key("otp.range")
)

// opState is what Begin leaves in the context for the operation's
// events and End.
type opState struct {
	span     trace.Span
	provider bool // the provider call's span is made
}

type stateKey struct{}

var spanNames = map[otp.Op]string{otp.OpStart: "otp.Start", otp.OpCheck: "otp.Check", otp.OpResend: "otp.Resend", otp.OpCancel: "otp.Cancel"}

// providerSpanNames name the provider call of each operation.
var providerSpanNames = map[otp.Op]string{otp.OpStart: "otp.provider.Send", otp.OpCheck: "otp.provider.Check",
	otp.OpResend: "otp.provider.Resend", otp.OpCancel: "otp.provider.Cancel"}

// Begin implements [otp.Observer]: it starts the operation's span.
func (t *Telemetry) Begin(ctx context.Context, op otp.Op) context.Context {
	name := spanNames[op]
	if name == "" {
		name = "otp." + string(op)
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(AttrOp.String(string(op))))
	return context.WithValue(ctx, stateKey{}, &opState{span: span})
}

// Event implements [otp.Observer]: it counts ev, and notes it on the
// operation's span; an event with a Duration adds the provider call's
// span, once per operation.
func (t *Telemetry) Event(ctx context.Context, ev otp.Event) {
	t.count(ctx, ev)
	st, _ := ctx.Value(stateKey{}).(*opState)
	if st == nil || !st.span.IsRecording() {
		return
	}
	attrs := spanAttrs(ev)
	st.span.SetAttributes(attrs...)
	st.span.AddEvent(string(ev.Kind), trace.WithAttributes(eventAttrs(ev)...))
	if ev.Duration > 0 && !st.provider {
		st.provider = true
		end := time.Now()
		name := providerSpanNames[ev.Op]
		_, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithTimestamp(end.Add(-ev.Duration)), trace.WithAttributes(attrs...))
		if serverFault(ev.Class) && ev.Kind == otp.EventFailed {
			span.SetStatus(codes.Error, ev.Class)
		}
		span.End(trace.WithTimestamp(end))
	}
}

// End implements [otp.Observer]: it ends the operation's span, an error
// status for the failures that are the service's, not the person's.
func (t *Telemetry) End(ctx context.Context, _ otp.Op, err error) {
	st, _ := ctx.Value(stateKey{}).(*opState)
	if st == nil {
		return
	}
	if class := otp.ErrorClass(err); class != "" {
		st.span.SetAttributes(AttrClass.String(class))
		if serverFault(class) {
			st.span.SetStatus(codes.Error, class)
		}
	}
	st.span.End()
}

// serverFault reports the classes that are the service's failures (an
// outage, a misconfigured account) rather than the person's (a wrong
// code) or the abuse defence's.
func serverFault(class string) bool {
	switch class {
	case "provider_unavailable", "provider_account", "provider_rejected", "store_unavailable", "other":
		return true
	}
	return false
}

// count adds ev to the metrics.
func (t *Telemetry) count(ctx context.Context, ev otp.Event) {
	base := []attribute.KeyValue{AttrOp.String(string(ev.Op)), AttrProvider.String(ev.Provider),
		AttrChannel.String(string(ev.Channel)), AttrRegion.String(ev.Region)}
	with := func(extra ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append(base[:len(base):len(base)], extra...)...)
	}
	if ev.Duration > 0 {
		t.providerTime.Record(ctx, ev.Duration.Seconds(), with(AttrClass.String(ev.Class)))
	}
	switch ev.Kind {
	case otp.EventSent:
		t.sends.Add(ctx, 1, with())
	case otp.EventChecked:
		t.checks.Add(ctx, 1, with(AttrResult.String("verified")))
		t.verified.Add(ctx, 1, with())
	case otp.EventLimited, otp.EventChallenged:
		t.denials.Add(ctx, 1, with(AttrScope.String(string(ev.Scope)), AttrClass.String(ev.Class), AttrRecordOnly.Bool(false)))
	case otp.EventFlagged:
		t.denials.Add(ctx, 1, with(AttrScope.String(string(ev.Scope)), AttrClass.String(ev.Class), AttrRecordOnly.Bool(true)))
	case otp.EventFailed:
		t.failures.Add(ctx, 1, with(AttrClass.String(ev.Class)))
		if ev.Class == "refused_destination" {
			t.denials.Add(ctx, 1, with(AttrScope.String(string(ev.Scope)), AttrClass.String(ev.Class), AttrRecordOnly.Bool(false)))
		}
		if ev.Op == otp.OpCheck {
			t.checks.Add(ctx, 1, with(AttrResult.String(ev.Class)))
		}
	}
}

func spanAttrs(ev otp.Event) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 6)
	if ev.Provider != "" {
		a = append(a, AttrProvider.String(ev.Provider))
	}
	if ev.Channel != "" {
		a = append(a, AttrChannel.String(string(ev.Channel)))
	}
	if ev.Region != "" {
		a = append(a, AttrRegion.String(ev.Region))
	}
	if ev.CallingCode != "" {
		a = append(a, AttrCallingCode.String(ev.CallingCode))
	}
	if ev.Range != "" {
		a = append(a, AttrRange.String(ev.Range))
	}
	return a
}

func eventAttrs(ev otp.Event) []attribute.KeyValue {
	var a []attribute.KeyValue
	if ev.Scope != "" {
		a = append(a, AttrScope.String(string(ev.Scope)))
	}
	if ev.Class != "" {
		a = append(a, AttrClass.String(ev.Class))
	}
	return a
}
