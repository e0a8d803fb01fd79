package redisstore_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// BenchmarkFlow measures a Start and a right Check through a Verifier on
// redisstore, with a client ID so that every limit is taken, against the
// floor of a bare GET on the same client, serially and with 64 goroutines,
// on standalone Redis and on Cluster. It reports flows (or GETs) per second
// and round trips per flow: "steps" the caller waits for in turn, "nodes"
// the exchanges with single nodes.
//
//	go test -run '^$' -bench Flow ./redisstore/
func BenchmarkFlow(b *testing.B) {
	for _, be := range backends {
		for _, goroutines := range []int{1, 64} {
			name := be.name + "/" + strconv.Itoa(goroutines) + "g"
			b.Run(name+"/GET", func(b *testing.B) { benchGET(b, be, goroutines) })
			b.Run(name+"/flow", func(b *testing.B) { benchFlow(b, be, goroutines) })
		}
	}
}

func poolOf64(o *redis.UniversalOptions) { o.PoolSize = 64 }

// run calls op b.N times on the given number of goroutines.
func run(b *testing.B, goroutines int, op func(i int64) error) {
	var n atomic.Int64
	b.ResetTimer()
	if goroutines == 1 {
		for range b.N {
			if err := op(n.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchGET(b *testing.B, be backend, goroutines int) {
	c := be.client(b, poolOf64)
	ctx := b.Context()
	pre := prefix()
	// 64 keys, so that on Cluster the GETs spread over the nodes as flows do.
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = pre + "get-" + strconv.Itoa(i)
		require.NoError(b, c.Set(ctx, keys[i], "x", time.Hour).Err())
	}
	steps, nodes := counted(c)
	run(b, goroutines, func(i int64) error { return c.Get(ctx, keys[i%64]).Err() })
	b.ReportMetric(float64(steps.take())/float64(b.N), "steps/op")
	b.ReportMetric(float64(nodes.take())/float64(b.N), "nodes/op")
}

func benchFlow(b *testing.B, be backend, goroutines int) {
	c := be.client(b, poolOf64)
	ctx := b.Context()
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, History: 1})
	many := otp.Limit{N: 1 << 30, Per: time.Hour} // taken, never exhausted
	v, err := otp.NewVerifier(p, newStore(b, c, redisstore.Config{}), otp.Config{Limits: otp.Limits{
		PerNumber: many, PerClient: many, PerRegion: many, Elsewhere: many, Total: many, UnverifiedPerRange: many,
		ChallengedPerRange: many, ChallengedPerRegion: many, ChecksPerClient: many,
	}})
	require.NoError(b, err)
	ip := otp.WithClient("203.0.113.9")
	flow := func(i int64) error {
		key := "flow-" + strconv.FormatInt(i, 10)
		if _, err := v.Start(ctx, key, ukMobile, ip); err != nil {
			return err
		}
		_, err := v.Check(ctx, key, fixedCode, ip)
		return err
	}
	require.NoError(b, flow(-1)) // load the scripts
	// A history of verified sends, as a live site has: with none, 64
	// Starts in flight at once are a surge the breaker asks to challenge.
	for i := int64(2); i <= 100; i++ {
		require.NoError(b, flow(-i))
	}
	steps, nodes := counted(c)
	run(b, goroutines, flow)
	b.ReportMetric(float64(steps.take())/float64(b.N), "steps/op")
	b.ReportMetric(float64(nodes.take())/float64(b.N), "nodes/op")
}
