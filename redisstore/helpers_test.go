package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/redisstore"
)

const (
	ukMobile  = "+447400123456"
	fixedCode = "123456"
	wrongCode = "654321"
)

// backend is a way to reach Redis: standalone or Cluster.
type backend struct {
	name   string
	client func(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient
}

var backends = []backend{
	{"standalone", standalone},
	{"cluster", cluster},
}

// standalone returns a new client of the Redis testenv gives the test,
// closed after the test.
func standalone(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	url := servers.get(t, "standalone", func() []string { return []string{testenv.Redis(t)} })[0]
	o, err := redis.ParseURL(url)
	require.NoError(t, err, "the Redis URL")
	u := &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password}
	for _, f := range opts {
		f(u)
	}
	c := redis.NewClient(u.Simple())
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), "Redis at %s", o.Addr)
	return c
}

// cluster returns a new client of the Redis Cluster testenv gives the
// test, closed after the test.
func cluster(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	u := &redis.UniversalOptions{Addrs: servers.get(t, "cluster", func() []string { return testenv.RedisCluster(t) })}
	for _, f := range opts {
		f(u)
	}
	c := redis.NewClusterClient(u.Cluster())
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), "Redis Cluster at %v", u.Addrs)
	return c
}

// servers remembers the Redis of each test, so that the clients of one
// test and of its subtests reach the same one: testenv starts a server
// for each call when no variable names one.
var servers = serverMemo{m: map[string][]string{}}

type serverMemo struct {
	mu sync.Mutex
	m  map[string][]string // by kind and the name of the test that got it
}

// get returns the addresses of the server of kind that t or a test above
// it got, or else those start returns, kept until t ends.
func (s *serverMemo) get(t testing.TB, kind string, start func() []string) []string {
	t.Helper()
	s.mu.Lock()
	for name := t.Name(); ; {
		if addrs, ok := s.m[kind+" "+name]; ok {
			s.mu.Unlock()
			return addrs
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			break
		}
		name = name[:i]
	}
	s.mu.Unlock()
	addrs := start() // skips or fails t when there is no Redis
	key := kind + " " + t.Name()
	s.mu.Lock()
	s.m[key] = addrs
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		delete(s.m, key)
		s.mu.Unlock()
	})
	return addrs
}

// prefix returns a key prefix no other test uses.
func prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "redisstore-test-" + hex.EncodeToString(b[:]) + ":"
}

// newStore returns a Store on c with a fresh prefix unless cfg has one.
// The overrides it leaves are removed after the test: an override without
// an Until never expires.
func newStore(t testing.TB, c redis.UniversalClient, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = prefix()
	}
	s, err := redisstore.New(c, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Del(context.Background(), s.OverridesKey()).Err() })
	return s
}

// counter is a go-redis hook counting round trips: a command sent alone
// or a pipeline. It leaves out the handshake of a new connection (HELLO,
// CLIENT SETINFO), which the pool pays once per connection.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return !handshake(cmd) }) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func handshake(cmd redis.Cmder) bool {
	return cmd.Name() == "hello" || cmd.Name() == "client"
}

// take returns the count and resets it.
func (c *counter) take() int { return int(c.n.Swap(0)) }

// counted adds counters to c: steps counts the round trips the caller
// waits for in turn; nodes counts the exchanges with single nodes, which
// on Cluster may run in parallel within one step (on a standalone client
// the two are the same).
func counted(c redis.UniversalClient) (steps, nodes *counter) {
	steps, nodes = &counter{}, &counter{}
	c.AddHook(steps)
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(nodes) })
		_ = cc.ForEachShard(context.Background(), func(_ context.Context, n *redis.Client) error {
			n.AddHook(nodes)
			return nil
		})
		return steps, nodes
	}
	c.AddHook(nodes)
	return steps, nodes
}

// requireChallenge fails the test unless err is a *otp.ChallengeError for
// scope.
func requireChallenge(t *testing.T, err error, scope otp.Scope) {
	t.Helper()
	var ce *otp.ChallengeError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, scope, ce.Scope)
}
