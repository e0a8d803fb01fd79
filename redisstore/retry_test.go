package redisstore_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// proxy is a TCP proxy on 127.0.0.1 between go-redis and Redis (each node
// of a Cluster gets a listener of its own, reached through the client's
// Dialer) that can lose the reply of one chosen command: it forwards the
// command, waits until Redis answers, which it does only once the command
// has run, and then closes the client's connection instead of passing the
// answer on, as a network failure after the write would. go-redis then
// retries the command on a new connection.
type proxy struct {
	t    *testing.T
	lost atomic.Int64 // replies lost so far

	mu     sync.Mutex
	fronts map[string]string        // a node's address → the listener for it
	target func(args []string) bool // the command whose reply to lose; nil once lost
	then   func()                   // runs after Redis answered the target, before the client sees the loss
	closer []io.Closer
	wg     sync.WaitGroup
}

func newProxy(t *testing.T) *proxy {
	p := &proxy{t: t, fronts: map[string]string{}}
	t.Cleanup(func() {
		p.mu.Lock()
		for _, c := range p.closer {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// via makes a client dial every node through the proxy.
func (p *proxy) via(o *redis.UniversalOptions) {
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		front, err := p.front(addr)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, network, front)
	}
}

// front returns the address of the listener forwarding to addr, which it
// starts on first use.
func (p *proxy) front(addr string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.fronts[addr]; ok {
		return f, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p.closer = append(p.closer, l)
	p.fronts[addr] = l.Addr().String()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.closer = append(p.closer, c)
			p.mu.Unlock()
			p.wg.Go(func() { p.serve(c, addr) })
		}
	})
	return p.fronts[addr], nil
}

// serve forwards one client connection to addr.
func (p *proxy) serve(client net.Conn, addr string) {
	defer client.Close()
	server, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer server.Close()
	var losing atomic.Bool
	p.wg.Go(func() { // replies
		defer client.Close()
		defer server.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && losing.Load() {
				// go-redis waits for each reply before it sends the next
				// command on a connection, so these bytes answer the
				// target: it has run.
				p.mu.Lock()
				then := p.then
				p.then = nil
				p.mu.Unlock()
				if then != nil {
					then()
				}
				p.lost.Add(1)
				return
			}
			if n > 0 {
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	rd := bufio.NewReader(client)
	for {
		args, err := readCommand(rd)
		if err != nil {
			return
		}
		if p.take(args) {
			losing.Store(true)
		}
		if _, err := server.Write(encodeCommand(args)); err != nil {
			return
		}
	}
}

// take reports whether args is the target, and disarms it if so.
func (p *proxy) take(args []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == nil || !p.target(args) {
		return false
	}
	p.target = nil
	return true
}

// loseReply arms the proxy: the next run of script loses its reply, after
// then (if not nil) has run.
func (p *proxy) loseReply(script *redis.Script, then func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = runs(script)
	p.then = then
	p.lost.Store(0)
}

// requireLost fails the test unless exactly one reply was lost since the
// last call.
func (p *proxy) requireLost(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	armed := p.target != nil
	p.target, p.then = nil, nil
	p.mu.Unlock()
	require.False(t, armed, "the script never ran")
	require.Equal(t, int64(1), p.lost.Swap(0), "replies lost")
}

// runs matches the commands that run script.
func runs(script *redis.Script) func(args []string) bool {
	return func(args []string) bool {
		if len(args) < 2 {
			return false
		}
		switch strings.ToLower(args[0]) {
		case "evalsha":
			return args[1] == script.Hash()
		case "eval":
			sum := sha1.Sum([]byte(args[1]))
			return hex.EncodeToString(sum[:]) == script.Hash()
		}
		return false
	}
}

// readCommand reads one command as go-redis sends it, an array of bulk
// strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	n, err := readLength(rd, '*')
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		l, err := readLength(rd, '$')
		if err != nil {
			return nil, err
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:l])
	}
	return args, nil
}

func readLength(rd *bufio.Reader, kind byte) (int, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 4 || line[0] != kind || !strings.HasSuffix(line, "\r\n") {
		return 0, fmt.Errorf("proxy: unexpected %q", line)
	}
	return strconv.Atoi(line[1 : len(line)-2])
}

func encodeCommand(args []string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// retrying makes a client retry a command whose reply was lost, as
// go-redis does by default (MaxRetries 3 on a Client, MaxRedirects 3 on a
// ClusterClient), with short backoffs.
func retrying(o *redis.UniversalOptions) {
	o.MaxRetries = 3
	o.MaxRedirects = 3
	o.MinRetryBackoff = time.Millisecond
	o.MaxRetryBackoff = 5 * time.Millisecond
}

// loadScripts puts every script in the script cache of every node, so that
// each runs as one EVALSHA, the command the proxy loses the reply of.
func loadScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	load := func(ctx context.Context, n redis.Scripter) error {
		for name, s := range redisstore.Scripts {
			if err := s.Load(ctx, n).Err(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error { return load(ctx, n) }))
		return
	}
	require.NoError(t, load(t.Context(), c))
}

// either returns what is on this backend: cluster if sharded, else
// standalone.
func either[T any](sharded bool, standalone, cluster T) T {
	if sharded {
		return cluster
	}
	return standalone
}

// TestRetriedScripts: when the reply of a script is lost and go-redis runs
// it again, the second run answers what the first did and does nothing
// more: a right code verifies once, a guess costs one attempt, a call takes
// its tokens once, and a retried write does not undo a call that came in
// between.
func TestRetriedScripts(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			p := newProxy(t)
			client := be.client(t, p.via, retrying)
			direct := be.client(t)
			cfg := redisstore.Config{Prefix: prefix()}
			store := newStore(t, client, cfg)
			other := newStore(t, direct, cfg) // another instance, whose replies arrive
			loadScripts(t, direct)
			ctx := t.Context()
			_, sharded := direct.(*redis.ClusterClient)

			// key returns a key of its own for name. On Cluster it lives on
			// another node than the limits, so that a pipeline sends one
			// command on each connection.
			key := func(name string) string {
				k := name
				if cc, ok := direct.(*redis.ClusterClient); ok {
					for i := 0; sameNode(t, cc, store.VerificationKey(k), store.BucketKey(otp.ScopeTotal, "")); i++ {
						k = name + "-" + strconv.Itoa(i)
					}
				}
				return k
			}
			sample := func(key string) otp.Verification {
				now := time.Now()
				return otp.Verification{Key: key, Ref: otp.Ref{Provider: "p", ID: "id-" + key}, To: ukMobile,
					Channel: otp.SMS, CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Minute)}
			}
			put := func(key string) otp.Verification {
				t.Helper()
				v := sample(key)
				require.NoError(t, other.Put(ctx, v))
				return v
			}
			attempts := func(key string) int {
				t.Helper()
				v, err := other.Get(ctx, key)
				require.NoError(t, err)
				return v.Attempts
			}
			// limit is a bucket of two tokens of the test's own.
			limit := func(name string) []otp.LimitRequest {
				return []otp.LimitRequest{{Scope: otp.ScopeClient, Key: name, Limit: otp.Limit{N: 2, Per: time.Hour}}}
			}
			// tokensLeft takes the tokens left in reqs' bucket and counts them.
			tokensLeft := func(reqs []otp.LimitRequest) int {
				n := 0
				for n < 5 && other.Allow(ctx, reqs) == nil {
					n++
				}
				return n
			}
			// claim is a claim of an hour for token.
			claim := func(token string) otp.Claim { return otp.Claim{Token: token, Until: time.Now().Add(time.Hour)} }
			// spare is the repeat of v.
			spare := func(v otp.Verification) otp.Spare {
				return otp.Spare{To: v.To, Now: v.SentAt.Add(time.Second), Cooldowns: []time.Duration{time.Minute}}
			}
			// breaker is a breaker of the test's own, judged from 2 sends.
			breaker := func(name string) []otp.LimitRequest {
				return []otp.LimitRequest{{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: name,
					Breaker: otp.Conversion{Window: time.Hour, MinSends: 2, MinShare: 0.5}}}
			}
			// counts reads the counts of b's current window.
			counts := func(b []otp.LimitRequest) map[string]string {
				t.Helper()
				m, err := direct.HGetAll(ctx, store.BreakerKey(b[0].Key, b[0].Breaker.Window)).Result()
				require.NoError(t, err)
				return m
			}
			// open returns a breaker opened by two unverified sends.
			open := func(t *testing.T, name string) []otp.LimitRequest {
				b := breaker(name)
				for range 2 {
					require.NoError(t, other.Record(ctx, otp.OutcomeSent, b))
				}
				watch := slices.Clone(b)
				watch[0].Breaker.RecordOnly = true // counts no refusal
				requireChallenge(t, other.Allow(ctx, watch), otp.ScopeConversion)
				return b
			}

			t.Run("Delete", func(t *testing.T) {
				k := key("delete")
				v := put(k)
				p.loseReply(redisstore.Scripts["delete"], nil)
				require.NoError(t, store.Delete(ctx, k, v.Ref.ID), "Delete whose first reply was lost")
				p.requireLost(t)
				_, err := other.Get(ctx, k)
				require.ErrorIs(t, err, otp.ErrNotFound)
			})

			t.Run("Check right code", func(t *testing.T) {
				k := key("check-right")
				provider := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
				v, err := otp.NewVerifier(provider, store, otp.Config{})
				require.NoError(t, err)
				_, err = v.Start(ctx, k, ukMobile)
				require.NoError(t, err)
				p.loseReply(redisstore.Scripts[either(sharded, "deleteRecord", "delete")], nil)
				_, err = v.Check(ctx, k, fixedCode)
				require.NoError(t, err, "right code whose Delete reply was lost")
				p.requireLost(t)
				assert.Equal(t, 1, provider.Calls(otp.OpCheck))
				_, err = v.Check(ctx, k, fixedCode)
				require.ErrorIs(t, err, otp.ErrNotFound, "the verification was consumed")
			})

			// Another instance's attempt between the first run and the
			// retry changes neither the retry's answer nor its cost.
			for _, between := range []int{0, 1} {
				t.Run("AddAttempt with "+strconv.Itoa(between)+" in between", func(t *testing.T) {
					k := key("add-attempt-" + strconv.Itoa(between))
					put(k)
					p.loseReply(redisstore.Scripts["addAttempt"], func() {
						for range between {
							_, err := other.AddAttempt(ctx, k, 5)
							assert.NoError(t, err, "the attempt in between")
						}
					})
					got, err := store.AddAttempt(ctx, k, 5)
					require.NoError(t, err)
					p.requireLost(t)
					assert.Equal(t, 1, got.Attempts, "the retry's answer: the first run's")
					assert.Equal(t, 1+between, attempts(k), "attempts used")
				})
			}

			t.Run("Check wrong code", func(t *testing.T) {
				k := key("check-wrong")
				provider := otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode})
				v, err := otp.NewVerifier(provider, store, otp.Config{MaxAttempts: 5})
				require.NoError(t, err)
				_, err = v.Start(ctx, k, ukMobile)
				require.NoError(t, err)
				p.loseReply(redisstore.Scripts["addAttempt"], nil)
				_, err = v.Check(ctx, k, wrongCode)
				var wrong *otp.WrongCodeError
				require.ErrorAs(t, err, &wrong)
				p.requireLost(t)
				assert.Equal(t, 4, wrong.AttemptsLeft)
				assert.Equal(t, 1, attempts(k), "attempts used")
			})

			// On Cluster the tokens and the attempt are two scripts.
			for _, script := range either(sharded, []string{"allowAddAttempt"}, []string{"allow", "addAttempt"}) {
				t.Run("AllowAddAttempt/"+script, func(t *testing.T) {
					k := key("allow-add-attempt-" + script)
					put(k)
					reqs := limit(k)
					p.loseReply(redisstore.Scripts[script], nil)
					got, err := store.AllowAddAttempt(ctx, k, 5, reqs)
					require.NoError(t, err)
					p.requireLost(t)
					assert.Equal(t, 1, got.Attempts, "the retry's answer")
					assert.Equal(t, 1, attempts(k), "attempts used")
					assert.Equal(t, 1, tokensLeft(reqs), "tokens left of 2")
				})
			}

			t.Run("Allow", func(t *testing.T) {
				reqs := limit("allow")
				p.loseReply(redisstore.Scripts["allow"], nil)
				require.NoError(t, store.Allow(ctx, reqs))
				p.requireLost(t)
				assert.Equal(t, 1, tokensLeft(reqs), "tokens left of 2")
			})

			// A denial by an open breaker counts a refusal: the retry
			// answers the denial and counts nothing more.
			t.Run("Allow refused by a breaker", func(t *testing.T) {
				b := open(t, "allow-refused")
				p.loseReply(redisstore.Scripts["allow"], nil)
				requireChallenge(t, store.Allow(ctx, b), otp.ScopeConversion)
				p.requireLost(t)
				assert.Equal(t, "1", counts(b)["r"], "refusals counted")
			})

			t.Run("Record", func(t *testing.T) {
				reqs := limit("record")
				reqs[0].Refund = true
				b := breaker("record")
				require.NoError(t, other.Allow(ctx, reqs))
				require.NoError(t, other.Allow(ctx, reqs))
				p.loseReply(redisstore.Scripts["record"], nil)
				require.NoError(t, store.Record(ctx, otp.OutcomeVerified, append(reqs, b...)))
				p.requireLost(t)
				assert.Equal(t, "1", counts(b)["v"], "verifications counted")
				assert.Equal(t, 1, tokensLeft(reqs), "tokens given back of 2 taken")
			})

			// GetAllow claims and takes its tokens once: on Cluster in two
			// scripts, each of which may lose its reply.
			for _, script := range either(sharded, []string{"getAllow"}, []string{"claim", "allow"}) {
				t.Run("GetAllow/"+script, func(t *testing.T) {
					k := key("get-allow-" + script)
					reqs := limit(k)
					p.loseReply(redisstore.Scripts[script], nil)
					got, err := store.GetAllow(ctx, k, otp.Spare{}, claim("mine"), reqs)
					require.NoError(t, err, "the retry answers the first run: the key was free")
					p.requireLost(t)
					assert.Empty(t, got.Ref.ID)
					assert.Equal(t, 1, tokensLeft(reqs), "tokens left of 2")
					_, err = other.Claim(ctx, k, claim("another"))
					require.ErrorIs(t, err, otp.ErrSendInFlight, "the key is claimed")
				})
			}

			t.Run("GetAllow repeat", func(t *testing.T) {
				k := key("get-allow-repeat")
				v := put(k)
				reqs := limit(k)
				p.loseReply(redisstore.Scripts[either(sharded, "getAllow", "claim")], nil)
				got, err := store.GetAllow(ctx, k, spare(v), claim("mine"), reqs)
				require.NoError(t, err)
				p.requireLost(t)
				assert.Equal(t, v.Ref.ID, got.Ref.ID)
				assert.Equal(t, 2, tokensLeft(reqs), "tokens left of 2: the repeat took none")
				_, err = other.Claim(ctx, k, claim("another"))
				require.NoError(t, err, "the repeat claimed nothing")
			})

			t.Run("GetAllow refused by a breaker", func(t *testing.T) {
				k := key("get-allow-refused")
				b := open(t, k)
				p.loseReply(redisstore.Scripts[either(sharded, "getAllow", "allow")], nil)
				_, err := store.GetAllow(ctx, k, otp.Spare{}, claim("mine"), b)
				requireChallenge(t, err, otp.ScopeConversion)
				p.requireLost(t)
				assert.Equal(t, "1", counts(b)["r"], "refusals counted")
				_, err = other.Claim(ctx, k, claim("another"))
				require.NoError(t, err, "a denial claims nothing")
			})

			t.Run("Claim", func(t *testing.T) {
				k := key("claim")
				v := put(k)
				p.loseReply(redisstore.Scripts["claim"], nil)
				got, err := store.Claim(ctx, k, claim("mine"))
				require.NoError(t, err, "the retry answers the first run: the key was free")
				p.requireLost(t)
				assert.Equal(t, v.Ref.ID, got.Ref.ID)
				_, err = other.Claim(ctx, k, claim("another"))
				require.ErrorIs(t, err, otp.ErrSendInFlight)
			})

			t.Run("Release", func(t *testing.T) {
				k := key("release")
				_, err := other.Claim(ctx, k, claim("mine"))
				require.NoError(t, err)
				p.loseReply(redisstore.Scripts["release"], nil)
				require.NoError(t, store.Release(ctx, k, "mine"))
				p.requireLost(t)
				_, err = other.Claim(ctx, k, claim("another"))
				require.NoError(t, err, "released")
			})

			// PutRecord stores and counts the send once: on Cluster in two
			// scripts sent together, either of which may lose its reply.
			for _, script := range either(sharded, []string{"putRecord"}, []string{"put", "recordMark"}) {
				t.Run("PutRecord/"+script, func(t *testing.T) {
					k := key("put-record-" + script)
					b := breaker(k)
					b[0].Breaker.Grace = time.Minute
					_, err := other.Claim(ctx, k, claim("mine"))
					require.NoError(t, err)
					// An attempt between the Put and its retry; not when the
					// Record loses its reply, as the Put, sent to another node
					// at the same time, may not have run yet.
					between := 0
					p.loseReply(redisstore.Scripts[script], func() {
						if script == "recordMark" {
							return
						}
						between++
						_, err := other.AddAttempt(ctx, k, 5)
						assert.NoError(t, err, "the attempt in between")
					})
					require.NoError(t, store.PutRecord(ctx, sample(k), otp.OutcomeSent, b))
					p.requireLost(t)
					assert.Equal(t, between, attempts(k), "the retried Put kept the attempt made after it")
					assert.Equal(t, "1", counts(b)["s"], "sends counted")
					assert.Equal(t, "1", counts(b)["ys"], "young sends counted")
					_, err = other.Claim(ctx, k, claim("another"))
					require.NoError(t, err, "the Put dropped the claim")
				})
			}

			// DeleteRecord consumes the verification and counts its outcome
			// once: on Cluster in two scripts sent together, either of which
			// may lose its reply.
			for _, script := range either(sharded, []string{"deleteRecord"}, []string{"delete", "recordMarked"}) {
				t.Run("DeleteRecord/"+script, func(t *testing.T) {
					k := key("delete-record-" + script)
					reqs := limit(k)
					reqs[0].Refund = true
					b := breaker(k)
					v := sample(k)
					require.NoError(t, other.PutRecord(ctx, v, otp.OutcomeSent, append(reqs, b...)))
					require.NoError(t, other.Allow(ctx, reqs))
					require.NoError(t, other.Allow(ctx, reqs))
					p.loseReply(redisstore.Scripts[script], nil)
					require.NoError(t, store.DeleteRecord(ctx, k, v.Ref.ID, otp.OutcomeVerified, append(reqs, b...)),
						"DeleteRecord whose first reply was lost")
					p.requireLost(t)
					_, err := other.Get(ctx, k)
					require.ErrorIs(t, err, otp.ErrNotFound)
					assert.Equal(t, "1", counts(b)["v"], "verifications counted")
					assert.Equal(t, 1, tokensLeft(reqs), "tokens given back of 2 taken")
				})
			}

			t.Run("SetOverride with another in between", func(t *testing.T) {
				target := otp.RangeTarget("+99" + strconv.Itoa(int(time.Now().UnixNano()%1e9)))
				p.loseReply(redisstore.Scripts["setOverride"], func() {
					assert.NoError(t, other.SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideChallenge}))
				})
				require.NoError(t, store.SetOverride(ctx, otp.Override{Target: target, Action: otp.OverrideBlock}))
				p.requireLost(t)
				list, err := other.Overrides(ctx)
				require.NoError(t, err)
				assert.Equal(t, []otp.Override{{Target: target, Action: otp.OverrideChallenge}}, list,
					"the retried SetOverride kept the one set after it")
			})

			t.Run("Put with an attempt in between", func(t *testing.T) {
				k := key("put-between")
				v := sample(k)
				p.loseReply(redisstore.Scripts["put"], func() {
					_, err := other.AddAttempt(ctx, k, 5)
					assert.NoError(t, err, "the attempt in between")
				})
				require.NoError(t, store.Put(ctx, v))
				p.requireLost(t)
				assert.Equal(t, 1, attempts(k), "the retried Put kept the attempt made after it")
			})

			t.Run("MarkSent with a later send in between", func(t *testing.T) {
				k := key("mark-sent-between")
				v := put(k)
				later := v.SentAt.Add(time.Second)
				p.loseReply(redisstore.Scripts["markSent"], func() {
					assert.NoError(t, other.MarkSent(ctx, k, v.Ref.ID, later), "the send in between")
				})
				require.NoError(t, store.MarkSent(ctx, k, v.Ref.ID, v.SentAt.Add(time.Millisecond)))
				p.requireLost(t)
				got, err := other.Get(ctx, k)
				require.NoError(t, err)
				assert.True(t, later.Equal(got.SentAt), "the retried MarkSent kept the later send: SentAt %v", got.SentAt)
			})

			// Without retries the lost reply is an error, and the script ran.
			t.Run("no retries", func(t *testing.T) {
				once := newStore(t, be.client(t, p.via, func(o *redis.UniversalOptions) {
					o.MaxRetries, o.MaxRedirects = -1, -1
				}), cfg)
				k := key("no-retries")
				v := put(k)
				p.loseReply(redisstore.Scripts["delete"], nil)
				err := once.Delete(ctx, k, v.Ref.ID)
				require.ErrorIs(t, err, otp.ErrStoreUnavailable)
				p.requireLost(t)
				_, err = other.Get(ctx, k)
				require.True(t, errors.Is(err, otp.ErrNotFound), "the Delete ran: %v", err)
			})
		})
	}
}
