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
	// Clock, if set, tells the time for expiry, claims, limits, breakers
	// and overrides instead of the Redis server's clock, for tests that
	// move time by hand (otptest.Clock).
	// Every process sharing the Redis must then read the same clock. Redis
	// removes keys in real time whatever the Clock says. Default: nil, the
	// server's TIME, one clock for every instance.
	Clock otp.Clock
	// KeySecret keys the HMAC-SHA256 that stands, in key names, for the
	// caller's key of each verification and its claim, for the number,
	// client ID, region or range of each limit bucket and for the region
	// or calling code of each breaker, so that no name holds a raw number,
	// IP address or user ID (the package doc shows the names).
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
// [otp.LimitingStore], so a Verifier built on it makes two round trips to
// Redis for a Start and for a Check on a standalone or Sentinel client
// (the package doc counts them on Cluster). Create it with [New]; it is
// safe for concurrent use and holds no goroutines: close the client
// yourself.
type Store struct {
	client    redis.UniversalClient
	sharded   bool   // the keys of one call may live on different nodes
	vprefix   string // prefix of verification keys, up to their hash tag's brace
	cprefix   string // prefix of claims, likewise: a claim shares its verification's tag
	ltag      string // the hash tag of every limit bucket, breaker and the overrides
	lprefix   string // prefix of limit buckets: ltag and a colon
	overrides string // the hash of the overrides
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
		cprefix:   cfg.Prefix + "c:",
		ltag:      ltag,
		lprefix:   ltag + ":",
		overrides: ltag + ":overrides",
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
	kindBreaker      = 'b'
	kindMark         = 's'
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

// breaker returns the name of the conversion breaker key names, counted
// over windows of win microseconds: breakers of other windows are other
// breakers, as in otp.MemoryLimiter.
func (s *Store) breaker(key string, win int64) string {
	return s.name(s.lprefix+"breaker:"+strconv.FormatInt(win, 10)+":", kindBreaker, "", key, "")
}

// mark returns the name of the mark of the send of the verification under
// key with Ref.ID id, in the limits' slot (see recordMarkScript). The
// key's length comes first, so that no other key and ID make the same
// string.
func (s *Store) mark(key, id string) string {
	return s.name(s.lprefix+"sent:", kindMark, "", strconv.Itoa(len(key))+":"+key+id, "")
}

// receipt returns the name of a new receipt, for one call of a script
// that changes something, in the slot of the hash tag given: a random
// token, so that a retry of the call finds what its first run left and
// nothing else does.
func (s *Store) receipt(tag string) string {
	return s.rprefix + tag + ":" + rand.Text()
}

// vnames are the names of the keys of the verification under one key:
// their hash tag, the verification and its claim, which the tag keeps in
// one slot.
type vnames struct{ tag, v, c string }

func (s *Store) vnames(key string) vnames {
	v := s.vkey(key)
	tag := v[len(s.vprefix)-1:]
	return vnames{tag: tag, v: v, c: s.cprefix + tag}
}

// keys returns the keys of a script that changes the verification under
// key and nothing else: a receipt, the verification and its claim.
func (s *Store) keys(key string) []string {
	n := s.vnames(key)
	return []string{s.receipt(n.tag), n.v, n.c}
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

// Claim implements [otp.Store]: the claim is a key beside the
// verification's, holding the token and Until, which Redis drops at Until.
func (s *Store) Claim(ctx context.Context, key string, c otp.Claim) (otp.Verification, error) {
	r, err := claimScript.Run(ctx, s.client, s.keys(key), s.claimArgs(c, nil)...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable("claim", err)
	}
	return s.claimed("claim", key, r)
}

// claimArgs returns the arguments of claimScript, and of getAllowScript
// before its limit requests: the time, the claim, then the spare if
// there is one.
func (s *Store) claimArgs(c otp.Claim, spare *otp.Spare) []any {
	args := appendTime(s.args(c.Token), c.Until)
	if spare == nil {
		return append(args, "", "", "", "", "")
	}
	var cd []byte
	for i, d := range spare.Cooldowns {
		if i > 0 {
			cd = append(cd, ' ')
		}
		cd = strconv.AppendInt(cd, int64(d), 10)
	}
	return append(appendTime(append(args, "1", spare.To), spare.Now), string(cd))
}

// claimed decodes the reply of a script that claims: the verification,
// none (a zero Verification, also for an expired one) or
// otp.ErrSendInFlight.
func (s *Store) claimed(op, key string, r []any) (otp.Verification, error) {
	v, err := s.verification(op, key, r)
	if errors.Is(err, otp.ErrNotFound) {
		return otp.Verification{}, nil
	}
	return v, err
}

// Release implements [otp.Store].
func (s *Store) Release(ctx context.Context, key, token string) error {
	if err := releaseScript.Run(ctx, s.client, []string{s.vnames(key).c}, s.args(token)...).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}

// Put implements [otp.Store]. Redis removes the verification Retention
// after its ExpiresAt.
func (s *Store) Put(ctx context.Context, v otp.Verification) error {
	if err := putScript.Run(ctx, s.client, s.keys(v.Key), s.putArgs(v)...).Err(); err != nil {
		return unavailable("put", err)
	}
	return nil
}

// putArgs returns the arguments of putScript: the time, the retention and
// the fields of v.
func (s *Store) putArgs(v otp.Verification) []any {
	challenged := ""
	if v.Challenged {
		challenged = "1"
	}
	args := s.args(s.retention, v.Ref.Provider, v.Ref.ID, v.To, string(v.Channel), strconv.Itoa(v.Attempts))
	args = appendTime(args, v.CreatedAt)
	args = appendTime(args, v.SentAt)
	args = appendTime(args, v.ExpiresAt)
	return append(args, v.Region, challenged, strconv.Itoa(v.Sends))
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
	return deleted(n)
}

// deleted returns what the reply n of a script that deletes means.
func deleted(n int) error {
	if n == 0 {
		return otp.ErrNotFound
	}
	return nil
}

// Reply statuses, the first element of a script's reply (see scripts.go).
const (
	replyNone      = 0
	replyLive      = 1
	replyExpired   = 2
	replyTooMany   = 3
	replyLimited   = 4
	replyChallenge = 5
	replyBlocked   = 6
	replyInFlight  = 7
	replySpare     = 8
)

// verification decodes a script's reply: a status, then the fields.
func (s *Store) verification(op, key string, r []any) (otp.Verification, error) {
	if len(r) == 0 {
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	switch r[0] {
	case int64(replyNone):
		return otp.Verification{}, otp.ErrNotFound
	case int64(replyExpired):
		return otp.Verification{}, otp.ErrExpired
	case int64(replyTooMany):
		return otp.Verification{}, otp.ErrTooManyAttempts
	case int64(replyInFlight):
		return otp.Verification{}, otp.ErrSendInFlight
	case int64(replyLive), int64(replySpare):
	default:
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	var f [14]string
	if len(r) != len(f)+1 {
		return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
	}
	for i := range f {
		f[i], _ = r[i+1].(string) // a field missing (Redis nil) is ""
	}
	// The numbers: attempts, the times' halves, and the sends, which a
	// verification stored by an earlier version lacks.
	var n [8]int64
	for i, x := range append(f[4:11:11], f[13]) {
		var err error
		if n[i], err = strconv.ParseInt(x, 10, 64); err != nil && !(i == 7 && x == "") {
			return otp.Verification{}, unavailable(op, errors.New("unexpected reply"))
		}
	}
	return otp.Verification{
		Key:        key,
		Ref:        otp.Ref{Provider: f[0], ID: f[1]},
		To:         f[2],
		Region:     f[11],
		Channel:    otp.Channel(f[3]),
		Challenged: f[12] == "1",
		Sends:      int(n[7]),
		Attempts:   int(n[0]),
		CreatedAt:  time.Unix(n[1], n[2]).UTC(),
		SentAt:     time.Unix(n[3], n[4]).UTC(),
		ExpiresAt:  time.Unix(n[5], n[6]).UTC(),
	}, nil
}

func appendTime(args []any, t time.Time) []any {
	return append(args, strconv.FormatInt(t.Unix(), 10), strconv.Itoa(t.Nanosecond()))
}

// unavailable wraps a failure to reach Redis, or to make sense of its
// answer, with otp.ErrStoreUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, otp.ErrStoreUnavailable, err)
}
