package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/redisstore"
)

const (
	ukMobile  = "+447400123456"
	fixedCode = "123456"
	wrongCode = "654321"

	howTo = "start Redis and set OTP_REDIS_URL=redis://127.0.0.1:6379/0 and " +
		"OTP_REDIS_CLUSTER=host:port,host:port,... (a Redis Cluster's seed nodes), " +
		"or run .ci/run, which starts both"
)

// need skips the test when a variable is unset, or fails it when CI is set.
func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is unset and CI is set: %s", name, howTo)
	}
	t.Skipf("%s is unset: %s", name, howTo)
	return ""
}

// backend is a way to reach Redis: standalone or Cluster.
type backend struct {
	name   string
	client func(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient
}

var backends = []backend{
	{"standalone", standalone},
	{"cluster", cluster},
}

// standalone returns a new client of OTP_REDIS_URL, closed after the test.
func standalone(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	o, err := redis.ParseURL(need(t, "OTP_REDIS_URL"))
	require.NoError(t, err, "OTP_REDIS_URL")
	u := &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password}
	for _, f := range opts {
		f(u)
	}
	c := redis.NewClient(u.Simple())
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), "Redis at OTP_REDIS_URL")
	return c
}

// cluster returns a new client of the cluster OTP_REDIS_CLUSTER seeds,
// closed after the test.
func cluster(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	u := &redis.UniversalOptions{Addrs: strings.Split(need(t, "OTP_REDIS_CLUSTER"), ",")}
	for _, f := range opts {
		f(u)
	}
	c := redis.NewClusterClient(u.Cluster())
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), "Redis Cluster at OTP_REDIS_CLUSTER")
	return c
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
