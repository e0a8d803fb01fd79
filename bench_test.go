package otp_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// The flow benchmarks read as a ratio to this one: the cost of parsing and
// formatting one number, which every Start must pay.
func BenchmarkPhoneParseFormat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		n, err := phonenumbers.Parse("+447400123456", "")
		if err != nil {
			b.Fatal(err)
		}
		_ = phonenumbers.Format(n, phonenumbers.E164)
	}
}

// benchVerifier is a Verifier with the fake provider and memstore, with
// limits high enough never to deny but still charged on every Start.
func benchVerifier(b *testing.B) *otp.Verifier {
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, History: 16})
	s := memstore.New(memstore.Config{})
	b.Cleanup(func() { _ = s.Close() })
	high := otp.Limit{N: 1 << 30, Per: time.Hour}
	v, err := otp.NewVerifier(p, s, otp.Config{Limits: otp.Limits{PerNumber: high, PerClient: high, PerRegion: high,
		Total: high, UnverifiedPerRange: high}})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// flowInputs are 4,096 keys and numbers, reused round robin: a key is free
// again once its flow has checked.
var flowKeys, flowNumbers = func() ([]string, []string) {
	keys, nums := make([]string, 4096), make([]string, 4096)
	for i := range keys {
		keys[i] = "session-" + strconv.Itoa(i)
		nums[i] = "+447400" + strconv.Itoa(100000+i)
	}
	return keys, nums
}()

func flow(b *testing.B, v *otp.Verifier, i int) {
	key := flowKeys[i%len(flowKeys)]
	if _, err := v.Start(ctx, key, flowNumbers[i%len(flowNumbers)]); err != nil {
		b.Fatal(err)
	}
	if _, err := v.Check(ctx, key, fixedCode); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFlow is one Start and one Check, serially.
func BenchmarkFlow(b *testing.B) {
	v := benchVerifier(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		flow(b, v, i)
		i++
	}
}

// BenchmarkFlowParallel is BenchmarkFlow on every core. Each goroutine
// works on its own slice of keys.
func BenchmarkFlowParallel(b *testing.B) {
	v := benchVerifier(b)
	var worker atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		base := int(worker.Add(1)) * 512
		i := 0
		for pb.Next() {
			flow(b, v, base+i%512)
			i++
		}
	})
}

// BenchmarkPhoneParseFormatParallel shows how far the machine lets the
// parse alone scale, the ceiling for the flow's own scaling.
func BenchmarkPhoneParseFormatParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n, err := phonenumbers.Parse("+447400123456", "")
			if err != nil {
				b.Error(err)
				return
			}
			_ = phonenumbers.Format(n, phonenumbers.E164)
		}
	})
}
