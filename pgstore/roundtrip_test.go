package pgstore_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// tracer is a pgx.QueryTracer and pgx.PrepareTracer counting what the
// pool asks of PostgreSQL: statements run, and statements prepared (the
// round trip pgx's statement cache makes the first time a connection runs
// a statement).
type tracer struct {
	queries, prepares atomic.Int64
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.queries.Add(1)
	return ctx
}

func (t *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

func (t *tracer) TracePrepareEnd(_ context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	if !d.AlreadyPrepared {
		t.prepares.Add(1)
	}
}

// take returns the round trips counted, statements run plus statements
// prepared, and resets the counts.
func (t *tracer) take() int { return int(t.queries.Swap(0) + t.prepares.Swap(0)) }

// wire counts round trips on the sockets themselves: a read that follows
// a write is the client waiting for an answer. It sees what no tracer
// does: a pool's ping, a reconnection.
type wire struct{ n atomic.Int64 }

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, w: w}, nil
}

func (w *wire) take() int { return int(w.n.Swap(0)) }

type countedConn struct {
	net.Conn
	w       *wire
	mu      sync.Mutex
	written bool // since the last read
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.written = true
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.written {
		c.written = false
		c.w.n.Add(1)
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// countedPool returns a pool of one connection whose round trips tr and
// w count.
func countedPool(t *testing.T) (*pgxpool.Pool, *tracer, *wire) {
	tr, w := &tracer{}, &wire{}
	pool := newPool(t, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.Tracer = tr
		c.ConnConfig.DialFunc = w.dial
	})
	return pool, tr, w
}

// TestRoundTrips: with pgstore keeping the limits, a Start costs two round
// trips (GetAllow, PutRecord), a repeat inside the cooldown one, a wrong
// check one (AllowAddAttempt) and a right one two (AllowAddAttempt,
// DeleteRecord), as the tracer counts them and as the socket sees them,
// once the connection has prepared its statements.
func TestRoundTrips(t *testing.T) {
	pool, tr, w := countedPool(t)
	store := newStore(t, pool, pgstore.Config{CleanInterval: -1})
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
	v, err := otp.NewVerifier(p, store, otp.Config{})
	require.NoError(t, err)
	ctx := t.Context()
	ip := otp.WithClient("203.0.113.9")
	// Warm up: the connection prepares each statement the first time.
	_, err = v.Start(ctx, "warm", ukMobile, ip)
	require.NoError(t, err)
	_, _ = v.Start(ctx, "warm", ukMobile, ip)
	_, _ = v.Check(ctx, "warm", wrongCode, ip)
	_, err = v.Check(ctx, "warm", fixedCode, ip)
	require.NoError(t, err)
	_, err = v.Start(ctx, "warm-2", ukMobile)
	require.NoError(t, err)
	_, err = v.Check(ctx, "warm-2", fixedCode)
	require.NoError(t, err)
	assert.Positive(t, tr.prepares.Load(), "the warm-up prepared the statements")

	measure := func(name string, want int, f func() error) {
		t.Helper()
		tr.take()
		w.take()
		require.NoError(t, f(), name)
		assert.Equal(t, want, tr.take(), "%s: round trips the tracer counts", name)
		assert.Equal(t, want, w.take(), "%s: round trips on the socket", name)
	}
	measure("Start", 2, func() error { _, err := v.Start(ctx, "k", ukMobile, ip); return err })
	measure("Start again", 1, func() error { _, err := v.Start(ctx, "k", ukMobile, ip); return err })
	measure("Check wrong", 1, func() error {
		_, err := v.Check(ctx, "k", wrongCode, ip)
		if errors.Is(err, otp.ErrWrongCode) {
			return nil
		}
		return err
	})
	measure("Check right", 2, func() error { _, err := v.Check(ctx, "k", fixedCode, ip); return err })
	measure("Start without client", 2, func() error { _, err := v.Start(ctx, "k2", ukMobile); return err })
	measure("Check right without client", 2, func() error { _, err := v.Check(ctx, "k2", fixedCode); return err })
}
