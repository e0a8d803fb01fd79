package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// server is a redis-server process of the test's own.
type server struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

// startServer starts redis-server on a free loopback port (or port, if
// not zero) and waits until it answers.
func startServer(t *testing.T, port int) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed and CI is set; .ci/run installs it")
		}
		t.Skip("redis-server is not installed: install it (Debian package redis-server) to run the outage test")
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port = l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
	}
	s := &server{t: t, port: port}
	s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, s.cmd.Start())
	t.Cleanup(s.stop)
	for i := 0; !s.answers(); i++ {
		require.Less(t, i, 200, "redis-server on port %d never answered", port)
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// answers reports whether the server answers PING, without go-redis.
func (s *server) answers() bool {
	c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// stop kills the server and waits for it; it may be called twice.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// waitUp waits until store reaches Redis again.
func waitUp(t *testing.T, store *redisstore.Store) {
	t.Helper()
	for i := 0; ; i++ {
		_, err := store.Get(context.Background(), "k")
		if !errors.Is(err, otp.ErrStoreUnavailable) {
			return
		}
		require.Less(t, i, 200, "the store never came back: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestOutage: with Redis down or frozen, every operation fails with
// ErrStoreUnavailable within the client's timeouts, nothing panics and no
// goroutine is left; after a restart everything works again.
func TestOutage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	redis.SetLogger(quiet{}) // the pool logs every failed dial
	srv := startServer(t, 0)
	const timeout = 100 * time.Millisecond
	client := redis.NewClient(&redis.Options{
		Addr: srv.addr(), DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxRetries: 1, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond,
		DialerRetries: 1, PoolSize: 2,
	})
	defer client.Close()
	// The most one call may take: every try dials, writes and reads, plus
	// the backoff between tries, and scheduling slack.
	budget := 2*(3*timeout+10*time.Millisecond) + time.Second

	store, err := redisstore.New(client, redisstore.Config{})
	require.NoError(t, err)
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
	v, err := otp.NewVerifier(p, store, otp.Config{})
	require.NoError(t, err)
	ctx := context.Background()

	reqs := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 100, Per: time.Hour}}}
	now := time.Now()
	rec := otp.Verification{Key: "k", Ref: otp.Ref{Provider: "p", ID: "id"}, To: ukMobile, Channel: otp.SMS,
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Minute)}
	claim := otp.Claim{Token: "t", Until: now.Add(time.Minute)}
	breaker := []otp.LimitRequest{{Kind: otp.LimitBreaker, Key: "GB", Breaker: otp.Conversion{Window: time.Hour}}}
	override := otp.Override{Target: otp.RegionTarget("GB"), Action: otp.OverrideBlock}
	ops := map[string]func() error{
		"Get":             func() error { _, err := store.Get(ctx, "k"); return err },
		"Claim":           func() error { _, err := store.Claim(ctx, "k", claim); return err },
		"Release":         func() error { return store.Release(ctx, "k", claim.Token) },
		"Put":             func() error { return store.Put(ctx, rec) },
		"AddAttempt":      func() error { _, err := store.AddAttempt(ctx, "k", 5); return err },
		"MarkSent":        func() error { return store.MarkSent(ctx, "k", "id", now) },
		"Delete":          func() error { return store.Delete(ctx, "k", "id") },
		"Allow":           func() error { return store.Allow(ctx, reqs) },
		"Record":          func() error { return store.Record(ctx, otp.OutcomeSent, breaker) },
		"SetOverride":     func() error { return store.SetOverride(ctx, override) },
		"Overrides":       func() error { _, err := store.Overrides(ctx); return err },
		"GetAllow":        func() error { _, err := store.GetAllow(ctx, "k", otp.Spare{}, claim, reqs); return err },
		"PutRecord":       func() error { return store.PutRecord(ctx, rec, otp.OutcomeSent, breaker) },
		"AllowAddAttempt": func() error { _, err := store.AllowAddAttempt(ctx, "k", 5, reqs); return err },
		"DeleteRecord":    func() error { return store.DeleteRecord(ctx, "k", "id", otp.OutcomeVerified, breaker) },
		"Verifier.Start":  func() error { _, err := v.Start(ctx, "s", ukMobile); return err },
		"Verifier.Check":  func() error { _, err := v.Check(ctx, "s", fixedCode); return err },
	}
	requireDown := func(state string) {
		t.Helper()
		for name, op := range ops {
			begin := time.Now()
			err := op()
			elapsed := time.Since(begin)
			assert.ErrorIs(t, err, otp.ErrStoreUnavailable, "%s with Redis %s", name, state)
			assert.Less(t, elapsed, budget, "%s with Redis %s took longer than the client's timeouts allow", name, state)
		}
	}
	requireUp := func(state string) {
		t.Helper()
		require.NoError(t, store.Put(ctx, rec), "Put with Redis %s", state)
		_, err := store.Get(ctx, "k")
		require.NoError(t, err, "Get with Redis %s", state)
		require.NoError(t, store.Delete(ctx, "k", "id"), "Delete with Redis %s", state)
		// A key of its own: a Start cut off while Redis was frozen runs
		// when it thaws and claims "s" until the claim's Until (see the
		// package doc, Failures), and a Start of "s" would wait that long.
		_, err = v.Start(ctx, "s-"+state, ukMobile)
		require.NoError(t, err, "Start with Redis %s", state)
		_, err = v.Check(ctx, "s-"+state, fixedCode)
		require.NoError(t, err, "Check with Redis %s", state)
	}

	requireUp("up")

	srv.stop()
	requireDown("stopped")

	srv = startServer(t, srv.port)
	waitUp(t, store)
	requireUp("restarted")

	// Frozen: connections are accepted, no answer comes; the read
	// timeout ends every call.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGSTOP))
	requireDown("frozen")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGCONT))
	waitUp(t, store)
	requireUp("thawed")

	require.NoError(t, client.Close())
	srv.stop()
}
