package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// cluster is a PostgreSQL cluster of the test's own: made with initdb in
// a temporary directory, run by the postgres user when the test runs as
// root, on a free loopback port.
type cluster struct {
	t    *testing.T
	bin  string // the directory of initdb and postgres
	dir  string // the cluster's data, socket and log
	port int
	cred *syscall.Credential // the postgres user's, when running as root
	cmd  *exec.Cmd
}

// pgBin returns the directory holding initdb and postgres: initdb's on
// PATH, or the newest Debian install's.
func pgBin() (string, bool) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p), true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", false
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	return filepath.Dir(dirs[0]), true
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	bin, ok := pgBin()
	if !ok {
		testenv.Missing(t, "initdb is not installed: install PostgreSQL (Debian package postgresql) to run the outage test")
	}
	c := &cluster{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "pgstore-outage-")
	require.NoError(t, err)
	c.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	initdb := c.command("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync",
		"--encoding=UTF8", "--locale=C")
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	c.start()
	t.Cleanup(c.kill)
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	// Killed with the test binary, should it die (a -timeout panic)
	// before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = c.dir
	return cmd
}

func (c *cluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// start runs postgres and waits until it accepts connections.
func (c *cluster) start() {
	c.t.Helper()
	c.cmd = c.command("postgres", "-D", c.data(), "-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=30")
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(c.t, err)
	defer logf.Close()
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	require.NoError(c.t, c.cmd.Start())
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.url())
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return
		}
		if i >= 300 {
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			c.t.Fatalf("postgres on port %d never accepted a connection: %v\n%s", c.port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to postgres and then to its children, the backends
// and auxiliary processes (each of which leads a process group of its
// own).
func (c *cluster) signal(sig syscall.Signal) {
	if c.cmd == nil || c.cmd.ProcessState != nil {
		return
	}
	pid := c.cmd.Process.Pid
	_ = syscall.Kill(pid, sig)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range stats {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
			_ = syscall.Kill(child, sig)
		}
	}
}

// stop shuts postgres down (fast: backends end, connections close) and
// waits for it.
func (c *cluster) stop() {
	c.signal(syscall.SIGCONT)
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	_ = c.cmd.Wait()
}

// kill ends postgres, frozen or not; it may be called twice.
func (c *cluster) kill() {
	if c.cmd == nil || c.cmd.ProcessState != nil {
		return
	}
	c.signal(syscall.SIGCONT)
	c.signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// TestOutage: with PostgreSQL stopped or frozen (SIGSTOP), every call
// fails with ErrStoreUnavailable within its context's deadline, nothing
// panics and no goroutine is left; after a restart, or a SIGCONT,
// everything works again.
func TestOutage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := startCluster(t)
	cfg, err := pgxpool.ParseConfig(c.url())
	require.NoError(t, err)
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pgstore.Migrate(t.Context(), pool, pgstore.Config{}))
	// The cleaner runs all along, into the outage.
	store, err := pgstore.New(pool, pgstore.Config{CleanInterval: 30 * time.Millisecond})
	require.NoError(t, err)
	defer store.Close()
	p := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
	v, err := otp.NewVerifier(p, store, otp.Config{})
	require.NoError(t, err)

	const timeout = 300 * time.Millisecond
	budget := timeout + 200*time.Millisecond // and scheduling slack
	reqs := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1000, Per: time.Hour}, Refund: true}}
	rec := sample("k", time.Now(), time.Hour)
	claim := otp.Claim{Token: "t", Until: time.Now().Add(time.Second)}
	ops := map[string]func(ctx context.Context) error{
		"Get":        func(ctx context.Context) error { _, err := store.Get(ctx, "k"); return err },
		"Put":        func(ctx context.Context) error { return store.Put(ctx, rec) },
		"Claim":      func(ctx context.Context) error { _, err := store.Claim(ctx, "c", claim); return err },
		"Release":    func(ctx context.Context) error { return store.Release(ctx, "c", "t") },
		"AddAttempt": func(ctx context.Context) error { _, err := store.AddAttempt(ctx, "k", 1000); return err },
		"MarkSent":   func(ctx context.Context) error { return store.MarkSent(ctx, "k", rec.Ref.ID, time.Now()) },
		"Delete":     func(ctx context.Context) error { return store.Delete(ctx, "gone", "id") },
		"Allow":      func(ctx context.Context) error { return store.Allow(ctx, reqs) },
		"Record":     func(ctx context.Context) error { return store.Record(ctx, otp.OutcomeVerified, reqs) },
		"SetOverride": func(ctx context.Context) error {
			return store.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("JM")})
		},
		"Overrides": func(ctx context.Context) error { _, err := store.Overrides(ctx); return err },
		"GetAllow": func(ctx context.Context) error {
			_, err := store.GetAllow(ctx, "g", otp.Spare{}, claim, reqs)
			return err
		},
		"PutRecord":       func(ctx context.Context) error { return store.PutRecord(ctx, rec, otp.OutcomeSent, reqs) },
		"AllowAddAttempt": func(ctx context.Context) error { _, err := store.AllowAddAttempt(ctx, "k", 1000, reqs); return err },
		"DeleteRecord": func(ctx context.Context) error {
			return store.DeleteRecord(ctx, "gone", "id", otp.OutcomeVerified, reqs)
		},
		"Clean":          func(ctx context.Context) error { _, err := store.Clean(ctx); return err },
		"CheckSchema":    func(ctx context.Context) error { return store.CheckSchema(ctx) },
		"Verifier.Start": func(ctx context.Context) error { _, err := v.Start(ctx, "s", ukMobile); return err },
		"Verifier.Check": func(ctx context.Context) error { _, err := v.Check(ctx, "s", fixedCode); return err },
	}
	run := func(op func(context.Context) error) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		begin := time.Now()
		err := op(ctx)
		return time.Since(begin), err
	}
	// All at once, more than the pool holds: waiting for a connection
	// ends at the deadline too.
	requireDown := func(state string) {
		t.Helper()
		var wg sync.WaitGroup
		for name, op := range ops {
			wg.Go(func() {
				// A call that hangs fails the test, and is left behind.
				done := make(chan struct{})
				var err error
				var elapsed time.Duration
				go func() {
					defer close(done)
					elapsed, err = run(op)
				}()
				select {
				case <-done:
				case <-time.After(2 * budget):
					assert.Fail(t, "a call hangs", "%s with PostgreSQL %s outlived its context", name, state)
					return
				}
				assert.ErrorIs(t, err, otp.ErrStoreUnavailable, "%s with PostgreSQL %s", name, state)
				var pe *pgstore.Error
				assert.ErrorAs(t, err, &pe, "%s with PostgreSQL %s", name, state)
				assert.Less(t, elapsed, budget, "%s with PostgreSQL %s outlived its context", name, state)
			})
		}
		wg.Wait()
	}
	requireUp := func(state string) {
		t.Helper()
		for _, name := range []string{"Put", "Get", "Claim", "Release", "AddAttempt", "MarkSent", "Allow", "Record",
			"SetOverride", "Overrides", "GetAllow", "PutRecord", "AllowAddAttempt", "Clean", "CheckSchema"} {
			_, err := run(ops[name])
			require.NoError(t, err, "%s with PostgreSQL %s", name, state)
		}
		require.ErrorIs(t, store.Delete(t.Context(), "gone", "id"), otp.ErrNotFound)
		_, err = v.Start(t.Context(), "s", ukMobile)
		require.NoError(t, err, "Start with PostgreSQL %s", state)
		_, err = v.Check(t.Context(), "s", fixedCode)
		require.NoError(t, err, "Check with PostgreSQL %s", state)
	}
	waitUp := func() {
		t.Helper()
		for i := 0; ; i++ {
			_, err := run(ops["Get"])
			if !errors.Is(err, otp.ErrStoreUnavailable) {
				return
			}
			require.Less(t, i, 500, "the store never came back: %v", err)
			time.Sleep(10 * time.Millisecond)
		}
	}

	requireUp("up")

	c.stop()
	requireDown("stopped")
	c.start()
	waitUp()
	requireUp("restarted")

	// Frozen: connections are accepted and nothing answers; the context's
	// deadline ends every call.
	c.signal(syscall.SIGSTOP)
	requireDown("frozen")
	c.signal(syscall.SIGCONT)
	waitUp()
	requireUp("thawed")

	require.NoError(t, store.Close())
	pool.Close()
	c.stop()
}

// TestRestartRetried: a statement on a pooled connection to a server that
// has restarted since meets the old server's farewell (SQLSTATE 57P01)
// and never ran; the Store runs it again on a new connection, so the
// first call after a restart succeeds, even on a pool that never pings.
func TestRestartRetried(t *testing.T) {
	c := startCluster(t)
	cfg, err := pgxpool.ParseConfig(c.url())
	require.NoError(t, err)
	cfg.MaxConns = 1
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pgstore.Migrate(t.Context(), pool, pgstore.Config{}))
	s, err := pgstore.New(pool, pgstore.Config{CleanInterval: -1})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	v := sample("k", time.Now(), time.Hour)
	require.NoError(t, s.Put(ctx, v))

	c.stop()
	c.start()
	require.NoError(t, s.Delete(ctx, "k", v.Ref.ID), "the first call after the restart")
	assert.Equal(t, int64(1), s.Retries(), "it ran twice: once on the old connection, once on a new one")
	require.ErrorIs(t, s.Delete(ctx, "k", v.Ref.ID), otp.ErrNotFound, "and deleted once")
}
