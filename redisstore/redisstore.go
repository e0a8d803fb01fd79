package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
)

// Config holds a Store's tunables. Every zero field takes its default.
type Config struct {
	// Prefix starts every key the Store writes, so that several
	// applications can share one Redis. It must not contain braces, which
	// would change the hash slots. Default "otp:".
	Prefix string
	// Retention is how long an expired verification still answers
	// [otp.ErrExpired] before Redis removes it and it answers
	// [otp.ErrNotFound]. Default and minimum: one second, so that no
	// verification outlives its expiry in Redis by more than that.
	Retention time.Duration
	// Clock, if set, tells the time for expiry and limits instead of the
	// Redis server's clock, for tests that move time by hand (otptest.Clock).
	// Every process sharing the Redis must then read the same clock. Redis
	// removes keys in real time whatever the Clock says. Default: nil, the
	// server's TIME, one clock for every instance.
	Clock otp.Clock
	// KeySecret keys the HMAC-SHA256 that stands, in key names, for the
	// caller's key of each verification and for the number, client ID,
	// calling code or range of each limit bucket, so that no name holds a
	// raw number, IP address or user ID (the package doc shows the names).
	// Every instance sharing the Redis and Prefix must use the same
	// secret: changing it strands the pending verifications and the
	// limits' state under names no instance looks up again, until Redis
	// drops them as they expire. Use 32 random bytes from your secret
	// store; shorter than 16 bytes is refused.
	//
	// Default: a key built into this package. It keeps the names
	// unreadable at a glance (in a key listing, a monitoring tool, a slow
	// log), but not to someone who has the code and the names: phone
	// numbers are few enough to hash every candidate and compare. Set a
	// secret of your own.
	KeySecret []byte
}

const (
	defaultPrefix = "otp:"
	minRetention  = time.Second
	minKeySecret  = 16
	digestLen     = 16 // bytes of HMAC-SHA256 kept in a name
)

// defaultKeySecret keys the names when Config.KeySecret is unset. It is
// public: it hides the raw values from a glance, not from a search.
var defaultKeySecret = []byte("github.com/otpkit/otp/redisstore: default KeySecret")

// Store is an [otp.Store] and [otp.Limiter] on Redis, shared by every
// process using the same Redis, Prefix and KeySecret. It also implements
// [otp.LimitingStore], so a Verifier built on it makes at most two round
// trips to Redis for Start and for Check. Create it with [New]; it is safe
// for concurrent use and holds no goroutines: close the client yourself.
type Store struct {
	client    redis.UniversalClient
	sharded   bool   // the keys of one call may live on different nodes
	vprefix   string // prefix of verification keys, up to their hash tag's brace
	ltag      string // the hash tag of every limit bucket
	lprefix   string // prefix of limit buckets: ltag and a colon
	rprefix   string // prefix of receipts
	retention string // milliseconds, as the scripts take it
	clock     otp.Clock
	macs      sync.Pool // of *mac, keyed with Config.KeySecret
}

// mac computes the digests of key names.
type mac struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

var (
	_ otp.Store         = (*Store)(nil)
	_ otp.Limiter       = (*Store)(nil)
	_ otp.LimitingStore = (*Store)(nil)
)

// New returns a Store on client configured by cfg. The client may be a
// standalone or Sentinel *redis.Client, a *redis.ClusterClient or a
// *redis.Ring; the package doc says how each is used.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New needs a client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, errors.New("redisstore: Prefix must not contain braces")
	}
	if cfg.Retention < 0 {
		return nil, errors.New("redisstore: Retention must not be negative")
	}
	cfg.Retention = max(cfg.Retention, minRetention)
	secret := defaultKeySecret
	if cfg.KeySecret != nil {
		if len(cfg.KeySecret) < minKeySecret {
			return nil, fmt.Errorf("redisstore: KeySecret must be at least %d bytes", minKeySecret)
		}
		secret = slices.Clone(cfg.KeySecret)
	}
	_, single := client.(*redis.Client)
	ltag := "{" + cfg.Prefix + "limits}"
	s := &Store{
		client:    client,
		sharded:   !single,
		vprefix:   cfg.Prefix + "v:{",
		ltag:      ltag,
		lprefix:   ltag + ":",
		rprefix:   cfg.Prefix + "r:",
		retention: strconv.FormatInt(cfg.Retention.Milliseconds(), 10),
		clock:     cfg.Clock,
	}
	s.macs.New = func() any { return &mac{h: hmac.New(sha256.New, secret)} }
	return s, nil
}

// Kinds of value a digest stands for, so that equal strings of different
// kinds get different names.
const (
	kindVerification = 'v'
	kindBucket       = 'l'
)

// name returns head, the digest of the value key of the kind and scope
// given, and tail: the digest is HMAC-SHA256 under the KeySecret,
// truncated to digestLen bytes, in unpadded base64url.
func (s *Store) name(head string, kind byte, scope otp.Scope, key, tail string) string {
	m := s.macs.Get().(*mac)
	defer s.macs.Put(m)
	// NUL ends the scope; the key, last, may hold anything.
	m.buf = append(append(append(append(m.buf[:0], kind, 0), scope...), 0), key...)
	m.h.Reset()
	m.h.Write(m.buf)
	sum := m.h.Sum(m.sum[:0])
	m.buf = append(m.buf[:0], head...)
	m.buf = base64.RawURLEncoding.AppendEncode(m.buf, sum[:digestLen])
	m.buf = append(m.buf, tail...)
	return string(m.buf)
}

// vkey returns the name of the verification under key. Its hash tag is
// the digest, so that the keys of one verification share its slot.
func (s *Store) vkey(key string) string {
	return s.name(s.vprefix, kindVerification, "", key, "}")
}

// bucket returns the name of the limit bucket of scope and key. The scope
// stays readable, for operators.
func (s *Store) bucket(scope otp.Scope, key string) string {
	return s.name(s.lprefix+string(scope)+":", kindBucket, scope, key, "")
}

// receipt returns the name of a new receipt, for one call of a script
// that changes something, in the slot of the hash tag given: a random
// token, so that a retry of the call finds what its first run left and
// nothing else does.
func (s *Store) receipt(tag string) string {
	return s.rprefix + tag + ":" + rand.Text()
}

// vkeys returns the receipt and the name of the verification under key:
// the first keys of a script that changes it.
func (s *Store) vkeys(key string) (receipt, vkey string) {
	vkey = s.vkey(key)
	return s.receipt(vkey[len(s.vprefix)-1:]), vkey
}

// keys returns the keys of a script that changes the verification under
// key and nothing else.
func (s *Store) keys(key string) []string {
	r, v := s.vkeys(key)
	return []string{r, v}
}

// now returns the two leading arguments of every script.
func (s *Store) now() (string, string) {
	if s.clock == nil {
		return "", ""
	}
	t := s.clock.Now()
	return strconv.FormatInt(t.Unix(), 10), strconv.Itoa(t.Nanosecond())
}

// args returns the time followed by more.
func (s *Store) args(more ...any) []any {
	sec, ns := s.now()
	return append([]any{sec, ns}, more...)
}

// Get implements [otp.Store].
func (s *Store) Get(ctx context.Context, key string) (otp.Verification, error) {
	r, err := getScript.Run(ctx, s.client, []string{s.vkey(key)}, s.args()...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable("get", err)
	}
	return s.verification("get", key, r)
}

// Put implements [otp.Store]. Redis removes the verification Retention
// after its ExpiresAt.
func (s *Store) Put(ctx context.Context, v otp.Verification) error {
	args := s.args(s.retention, v.Ref.Provider, v.Ref.ID, v.To, string(v.Channel), strconv.Itoa(v.Attempts))
	args = appendTime(args, v.CreatedAt)
	args = appendTime(args, v.SentAt)
	args = appendTime(args, v.ExpiresAt)
	if err := putScript.Run(ctx, s.client, s.keys(v.Key), args...).Err(); err != nil {
		return unavailable("put", err)
	}
	return nil
}

// AddAttempt implements [otp.Store].
func (s *Store) AddAttempt(ctx context.Context, key string, max int) (otp.Verification, error) {
	r, err := addAttemptScript.Run(ctx, s.client, s.keys(key), s.args(max)...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable("add attempt", err)
	}
	return s.verification("add attempt", key, r)
}

// MarkSent implements [otp.Store].
func (s *Store) MarkSent(ctx context.Context, key, id string, at time.Time) error {
	args := appendTime(s.args(id), at)
	n, err := markSentScript.Run(ctx, s.client, s.keys(key), args...).Int()
	switch {
	case err != nil:
		return unavailable("mark sent", err)
	case n == 0:
		return otp.ErrNotFound
	case n == 2:
		return otp.ErrExpired
	}
	return nil
}

// Delete implements [otp.Store].
func (s *Store) Delete(ctx context.Context, key, id string) error {
	n, err := deleteScript.Run(ctx, s.client, s.keys(key), s.args(id)...).Int()
	if err != nil {
		return unavailable("delete", err)
	}
	if n == 0 {
		return otp.ErrNotFound
	}
	return nil
}

// Allow implements [otp.Limiter] with the generic cell rate algorithm
// (GCRA): a bucket of Limit.N tokens refilled one every Limit.Per/N, as a
// single timestamp per bucket that Redis drops once the bucket is full
// again. It is atomic, across processes, over all of reqs.
func (s *Store) Allow(ctx context.Context, reqs []otp.LimitRequest) error {
	b, err := s.buckets(reqs, 1)
	if err != nil || len(b.keys) == 1 {
		return err
	}
	return s.allow(ctx, b)
}

// allow runs allowScript on b, after one reserved key, which it fills
// with a receipt.
func (s *Store) allow(ctx context.Context, b buckets) error {
	b.keys[0] = s.receipt(s.ltag)
	r, err := allowScript.Run(ctx, s.client, b.keys, s.args(b.args...)...).Slice()
	if err != nil {
		return unavailable("allow", err)
	}
	return b.denied(r)
}

// GetAllow implements [otp.LimitingStore]: one script, one round trip, on
// a standalone or Sentinel client. On Cluster the verification and the
// limits live in different hash slots, so it sends a script to each in one
// pipeline, which go-redis sends to their nodes in parallel; when the
// verification turns out to be the spare repeat, a second round trip gives
// the tokens back.
func (s *Store) GetAllow(ctx context.Context, key string, spare otp.Spare, reqs []otp.LimitRequest) (otp.Verification, error) {
	b, err := s.buckets(reqs, 2)
	if err != nil {
		return otp.Verification{}, err
	}
	if s.sharded {
		return s.getAllowSharded(ctx, key, spare, b)
	}
	b.keys[0], b.keys[1] = s.vkeys(key)
	args := appendTime(s.args(spare.To), spare.SentAfter)
	r, err := getAllowScript.Run(ctx, s.client, b.keys, append(args, b.args...)...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable("get and allow", err)
	}
	if err := b.denied(r); err != nil {
		return otp.Verification{}, err
	}
	v, err := s.verification("get and allow", key, r)
	if errors.Is(err, otp.ErrNotFound) {
		return otp.Verification{}, nil // the script reports expired as missing
	}
	return v, err
}

func (s *Store) getAllowSharded(ctx context.Context, key string, spare otp.Spare, b buckets) (otp.Verification, error) {
	b.keys = b.keys[1:] // the receipt of the limits, then the buckets
	vkeys := []string{s.vkey(key)}
	now := s.args()
	if len(b.keys) == 1 {
		v, err := s.Get(ctx, key)
		if errors.Is(err, otp.ErrNotFound) || errors.Is(err, otp.ErrExpired) {
			return otp.Verification{}, nil
		}
		return v, err
	}
	largs := append(now[:2:2], b.args...)
	b.keys[0] = s.receipt(s.ltag)
	var get, allow *redis.Cmd
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = getScript.EvalSha(ctx, p, vkeys, now...)
		allow = allowScript.EvalSha(ctx, p, b.keys, largs...)
		return nil
	})
	// A node without the scripts cached ran nothing: run them there again.
	if isNoScript(get.Err()) {
		get = getScript.Eval(ctx, s.client, vkeys, now...)
	}
	if isNoScript(allow.Err()) {
		allow = allowScript.Eval(ctx, s.client, b.keys, largs...)
	}
	gr, err := get.Slice()
	if err != nil {
		return otp.Verification{}, unavailable("get and allow", err)
	}
	ar, err := allow.Slice()
	if err != nil {
		return otp.Verification{}, unavailable("get and allow", err)
	}
	v, err := s.verification("get and allow", key, gr)
	switch {
	case errors.Is(err, otp.ErrNotFound) || errors.Is(err, otp.ErrExpired):
		v = otp.Verification{}
	case err != nil:
		return otp.Verification{}, err
	}
	deny := b.denied(ar)
	if !spare.Matches(v) {
		if deny != nil {
			return otp.Verification{}, deny
		}
		return v, nil
	}
	if deny == nil {
		b.keys[0] = s.receipt(s.ltag) // a call of its own
		if err := refundScript.Run(ctx, s.client, b.keys, largs...).Err(); err != nil {
			return otp.Verification{}, unavailable("get and allow", err)
		}
	}
	return v, nil
}

// AllowAddAttempt implements [otp.LimitingStore]: one script, one round
// trip, on a standalone or Sentinel client. On Cluster, when reqs hold a
// limit that is not off, it takes the tokens first and reserves the
// attempt in a second round trip, as the two live in different slots.
func (s *Store) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	b, err := s.buckets(reqs, 2)
	if err != nil {
		return otp.Verification{}, err
	}
	if len(b.keys) == 2 {
		return s.AddAttempt(ctx, key, max)
	}
	if s.sharded {
		b.keys = b.keys[1:]
		if err := s.allow(ctx, b); err != nil {
			return otp.Verification{}, err
		}
		return s.AddAttempt(ctx, key, max)
	}
	b.keys[0], b.keys[1] = s.vkeys(key)
	r, err := allowAddAttemptScript.Run(ctx, s.client, b.keys, append(s.args(max), b.args...)...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable("allow and add attempt", err)
	}
	if err := b.denied(r); err != nil {
		return otp.Verification{}, err
	}
	return s.verification("allow and add attempt", key, r)
}

// buckets are the limit buckets of one call, as the scripts take them.
type buckets struct {
	keys   []string    // reserved slots first, then one per bucket
	args   []any       // emission interval and burst tolerance, in µs
	scopes []otp.Scope // of each bucket
}

// buckets returns the buckets of the requests whose limit is not off,
// after reserved empty keys.
func (s *Store) buckets(reqs []otp.LimitRequest, reserved int) (buckets, error) {
	b := buckets{keys: make([]string, reserved, reserved+len(reqs))}
	for _, r := range reqs {
		l := r.Limit
		if l.N < 0 {
			continue
		}
		if l.N == 0 || l.Per <= 0 {
			return buckets{}, fmt.Errorf("redisstore: limit %d per %v needs a positive N and Per", l.N, l.Per)
		}
		interval := max(1, l.Per.Microseconds()/int64(l.N))
		b.keys = append(b.keys, s.bucket(r.Scope, r.Key))
		b.args = append(b.args, interval, interval*int64(l.N-1))
		b.scopes = append(b.scopes, r.Scope)
	}
	return b, nil
}

// denied returns the *otp.RateLimitError a script's reply r reports, or
// nil if r is not a denial.
func (b buckets) denied(r []any) error {
	if len(r) != 3 || r[0] != int64(4) {
		return nil
	}
	i, _ := r[1].(int64)
	wait, _ := r[2].(int64)
	if i < 0 || int(i) >= len(b.scopes) {
		return unavailable("allow", errors.New("unexpected reply"))
	}
	return &otp.RateLimitError{Scope: b.scopes[i], RetryAfter: time.Duration(wait) * time.Microsecond}
}

// verification decodes a script's reply: a status, then the fields.
func (s *Store) verification(op, key string, r []any) (otp.Verification, error) {
	if len(r) == 0 {
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	switch r[0] {
	case int64(0):
		return otp.Verification{}, otp.ErrNotFound
	case int64(2):
		return otp.Verification{}, otp.ErrExpired
	case int64(3):
		return otp.Verification{}, otp.ErrTooManyAttempts
	case int64(1):
	default:
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	var f [11]string
	if len(r) != 12 {
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	for i := range f {
		f[i], _ = r[i+1].(string)
	}
	var n [7]int64
	for i, x := range f[4:] {
		var err error
		if n[i], err = strconv.ParseInt(x, 10, 64); err != nil {
			return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
		}
	}
	return otp.Verification{
		Key:       key,
		Ref:       otp.Ref{Provider: f[0], ID: f[1]},
		To:        f[2],
		Channel:   otp.Channel(f[3]),
		Attempts:  int(n[0]),
		CreatedAt: time.Unix(n[1], n[2]).UTC(),
		SentAt:    time.Unix(n[3], n[4]).UTC(),
		ExpiresAt: time.Unix(n[5], n[6]).UTC(),
	}, nil
}

func appendTime(args []any, t time.Time) []any {
	return append(args, strconv.FormatInt(t.Unix(), 10), strconv.Itoa(t.Nanosecond()))
}

func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// unavailable wraps a failure to reach Redis, or to make sense of its
// answer, with otp.ErrStoreUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, otp.ErrStoreUnavailable, err)
}
