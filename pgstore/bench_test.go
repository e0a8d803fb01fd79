package pgstore_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// BenchmarkFlow measures a Start and a right Check through a Verifier on
// pgstore, with a client ID so that every limit is taken, against the
// floor of a bare SELECT 1 on the same pool, serially and with 64
// goroutines, on pgxpool's default pool (4 connections, or one a CPU if
// there are more), and once more with 64 goroutines on a pool of 64
// connections ("flow-pool64", as redisstore's BenchmarkFlow has a pool of
// 64): each connection is a PostgreSQL process, and 64 of them on a few
// cores queue for the same rows. It reports flows (or SELECTs) per second
// and "steps/op": the round trips one flow waits for in turn, as a pgx
// tracer counts them (statements run, and statements a connection
// prepares the first time it runs them). Its names line up with
// redisstore's ("standalone/64g/flow"), so that one run of both, and of
// the root package's BenchmarkFlow on memstore, reads side by side:
//
//	go test -run '^$' -bench Flow -benchtime 1x ./pgstore/ ./redisstore/ .
func BenchmarkFlow(b *testing.B) {
	for _, goroutines := range []int{1, 64} {
		name := "postgres/" + strconv.Itoa(goroutines) + "g"
		b.Run(name+"/SELECT", func(b *testing.B) { benchSelect(b, goroutines) })
		b.Run(name+"/flow", func(b *testing.B) { benchFlow(b, goroutines, 0) })
	}
	b.Run("postgres/64g/flow-pool64", func(b *testing.B) { benchFlow(b, 64, 64) })
}

// benchPool returns a pool whose round trips tr counts, of up to conns
// connections, or pgxpool's default for 0.
func benchPool(b *testing.B, conns int32) (*pgxpool.Pool, *tracer) {
	tr := &tracer{}
	return newPool(b, func(c *pgxpool.Config) {
		if conns > 0 {
			c.MaxConns = conns
		}
		c.ConnConfig.Tracer = tr
	}), tr
}

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

func benchSelect(b *testing.B, goroutines int) {
	pool, tr := benchPool(b, 0)
	ctx := b.Context()
	var one int
	require.NoError(b, pool.QueryRow(ctx, "SELECT 1").Scan(&one))
	tr.take()
	run(b, goroutines, func(int64) error { return pool.QueryRow(ctx, "SELECT 1").Scan(&one) })
	b.ReportMetric(float64(tr.take())/float64(b.N), "steps/op")
}

func benchFlow(b *testing.B, goroutines int, conns int32) {
	pool, tr := benchPool(b, conns)
	ctx := b.Context()
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode, History: 1})
	many := otp.Limit{N: 1 << 30, Per: time.Hour} // taken, never exhausted
	v, err := otp.NewVerifier(p, newStore(b, pool, pgstore.Config{}), otp.Config{Limits: otp.Limits{
		PerNumber: many, PerClient: many, PerRegion: many, Elsewhere: many, Total: many,
		UnverifiedPerRange: many, ChallengedPerRange: many, ChallengedPerRegion: many, ChecksPerClient: many,
	}})
	require.NoError(b, err)
	ip := otp.WithClient("203.0.113.9")
	prefix := "flow-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	flow := func(i int64) error {
		key := prefix + strconv.FormatInt(i, 10)
		if _, err := v.Start(ctx, key, ukMobile, ip); err != nil {
			return err
		}
		_, err := v.Check(ctx, key, fixedCode, ip)
		return err
	}
	require.NoError(b, flow(-1)) // one connection prepares its statements
	// A history of verified sends, as a live site has: with none, 64
	// Starts in flight at once are a surge the breaker asks to challenge.
	for i := int64(2); i <= 100; i++ {
		require.NoError(b, flow(-i))
	}
	tr.take()
	run(b, goroutines, flow)
	b.ReportMetric(float64(tr.take())/float64(b.N), "steps/op")
}
