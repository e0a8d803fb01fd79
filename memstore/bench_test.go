package memstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

const million = 1_000_000

// realistic returns the i'th of a set of verifications shaped like real
// ones: a session key, a Vonage request ID (a UUID) and a UK mobile number.
func realistic(i int, now time.Time, ttl time.Duration) otp.Verification {
	return otp.Verification{
		Key:       fmt.Sprintf("session-%07d", i),
		Ref:       otp.Ref{Provider: "vonage", ID: uuid()},
		To:        "+4479" + strconv.Itoa(10_000_000+i%90_000_000),
		Channel:   otp.SMS,
		CreatedAt: now,
		SentAt:    now,
		ExpiresAt: now.Add(ttl),
	}
}

func uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BenchmarkMillionEntries reports the heap taken per pending verification
// with a million held.
func BenchmarkMillionEntries(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)

		s := memstore.New(memstore.Config{})
		now := time.Now()
		for i := range million {
			if err := s.Put(ctx, realistic(i, now, 5*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}

		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s.Len() != million {
			b.Fatalf("Len() = %d, want %d", s.Len(), million)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/million, "B/entry")
		runtime.KeepAlive(s)
		s.Close()
	}
}

// BenchmarkOpsDuringSweep reports the latency of what Start and Check do to
// the store (Put of a new key, AddAttempt, Delete) with a million
// verifications held, half of them expired, with the sweeper idle and with
// it sweeping all the time.
func BenchmarkOpsDuringSweep(b *testing.B) {
	const retention = 30 * time.Second
	for _, bc := range sweepCases {
		// One store serves every run of the sub-benchmark; the operations
		// leave it as they found it.
		var s *memstore.Store
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			if s == nil {
				s = filledStore(b, retention, bc.sweep)
			}

			// New keys, cycled: each is deleted before it comes round again.
			// Made up front so that the loop allocates only what Put does.
			fresh := make([]otp.Verification, 4096)
			now := time.Now()
			for i := range fresh {
				fresh[i] = realistic(million+i, now, time.Hour)
			}
			latencies := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range latencies {
				v := &fresh[i%len(fresh)]
				start := time.Now()
				err := s.Put(ctx, *v)
				if err == nil {
					_, err = s.AddAttempt(ctx, v.Key, 5)
				}
				if err == nil {
					err = s.Delete(ctx, v.Key, v.Ref.ID)
				}
				latencies[i] = time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()

			reportLatencies(b, "", latencies)
		})
		if s != nil {
			s.Close()
		}
	}
}

// sweepCases are the sweeper settings the latency benchmarks compare.
var sweepCases = []struct {
	name  string
	sweep time.Duration
}{
	{"sweep=off", 24 * time.Hour},
	{"sweep=default", 0},                     // every shard once a minute
	{"sweep=stress", 256 * time.Millisecond}, // a million entries swept 4 times a second
}

// filledStore returns a store holding a million verifications, half of
// them expired and forgotten at a steady rate over the retention, so that
// every sweep has some to free.
func filledStore(b *testing.B, retention, sweep time.Duration) *memstore.Store {
	ctx := context.Background()
	s := memstore.New(memstore.Config{Retention: retention, SweepInterval: sweep})
	now := time.Now()
	for i := range million {
		v := realistic(i, now, time.Hour)
		if i%2 == 1 {
			v.ExpiresAt = now.Add(-retention + time.Duration(i)*retention/million)
		}
		if err := s.Put(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	return s
}

// reportLatencies sorts latencies and reports their p50, p99, p99.9 and
// maximum, each metric's name prefixed by prefix.
func reportLatencies(b *testing.B, prefix string, latencies []time.Duration) {
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Nanoseconds()), prefix+"p50-ns")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Nanoseconds()), prefix+"p99-ns")
	b.ReportMetric(float64(latencies[len(latencies)*999/1000].Nanoseconds()), prefix+"p99.9-ns")
	b.ReportMetric(float64(latencies[len(latencies)-1].Nanoseconds()), prefix+"max-ns")
}

// BenchmarkVerifierDuringSweep is BenchmarkOpsDuringSweep through a
// Verifier: the latency of Start and of Check, with the fake provider,
// while the store holds a million verifications and sweeps or not.
func BenchmarkVerifierDuringSweep(b *testing.B) {
	const retention = 30 * time.Second
	for _, bc := range sweepCases {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s := filledStore(b, retention, bc.sweep)
			defer s.Close()
			p := otptest.NewProvider(otptest.ProviderConfig{Code: "123456", History: 16})
			v, err := otp.NewVerifier(p, s, otp.Config{Limits: otp.NoLimits})
			if err != nil {
				b.Fatal(err)
			}
			starts := make([]time.Duration, b.N)
			checks := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				key := "flow-" + strconv.Itoa(i%4096)
				t0 := time.Now()
				_, err := v.Start(ctx, key, "+447400123456")
				t1 := time.Now()
				if err == nil {
					_, err = v.Check(ctx, key, "123456")
				}
				starts[i], checks[i] = t1.Sub(t0), time.Since(t1)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportLatencies(b, "start-", starts)
			reportLatencies(b, "check-", checks)
		})
	}
}
