package otelotp_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otelotp"
	"github.com/otpkit/otp/otptest"
)

func Example() {
	reader := sdkmetric.NewManualReader() // in production: a Prometheus or OTLP exporter
	spans := tracetest.NewSpanRecorder()
	tel, err := otelotp.New(otelotp.Config{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
	})
	if err != nil {
		log.Fatal(err)
	}
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{Code: "123456"}), store, otp.Config{Observer: tel})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	_, _ = v.Start(ctx, "session-1", "+447400123456")
	_, _ = v.Check(ctx, "session-1", "123456")

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	var names []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	fmt.Println("metrics", names)
	for _, s := range spans.Ended() {
		fmt.Println("span", s.Name())
	}
	// Output:
	// metrics [otp.checks otp.provider.duration otp.sends otp.verified]
	// span otp.provider.Send
	// span otp.Start
	// span otp.provider.Check
	// span otp.Check
}
