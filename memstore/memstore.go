// Package memstore is an in-process [otp.Store]: the embedded default for a
// single instance, for tests and for demos. Pending verifications live in
// memory, in sharded maps, and are lost when the process exits; several
// processes behind a load balancer need a shared store such as redisstore.
//
// Build a Verifier with it like this, and Close the store on shutdown to
// stop its sweeper goroutine:
//
//	store := memstore.New(memstore.Config{})
//	defer store.Close()
//	v, err := otp.NewVerifier(provider, store, otp.Config{})
//	if err != nil {
//		return err
//	}
//
// Give the store the same [otp.Clock] as the Verifier (Config.Clock) when
// a test moves time by hand, for example with otptest.NewClock.
//
// # Expiry
//
// A verification is live while the Clock reads before its ExpiresAt. From
// ExpiresAt on it answers [otp.ErrExpired], for Config.Retention, and from
// ExpiresAt plus Retention on [otp.ErrNotFound]. Every method checks
// this against the Clock when it reads an entry, so answers never depend on
// the sweeper; the sweeper only frees memory, visiting one shard at a time
// so that no call ever waits for more than one shard's sweep.
//
// # Memory
//
// A pending verification with realistic values (a 15-byte key, a 36-byte
// vendor ID, an E.164 number) takes 165 to 215 bytes of heap, map overhead
// included, depending on how full the maps' tables happen to be (a million
// take 215). The key, Ref.ID and To share one allocation, times are kept
// as Unix nanoseconds, and each shard keeps one copy of every distinct pair
// of provider name and channel. That table is never pruned, so it suits the
// handful of provider names and channels an application uses, not
// arbitrary strings.
package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/otpkit/otp"
)

// Config holds a Store's tunables. Every zero or negative field takes its
// default.
type Config struct {
	// Clock tells the time for expiry. The sweeper goroutine reads it too,
	// so it must be safe for concurrent use. Default [otp.SystemClock].
	Clock otp.Clock
	// Retention is how long an expired verification still answers
	// [otp.ErrExpired] before it is forgotten and answers [otp.ErrNotFound].
	// Default 5 minutes; values under a second, the least the otp.Store
	// contract allows, are raised to a second.
	Retention time.Duration
	// SweepInterval is how long the sweeper takes to visit every shard
	// once, freeing the verifications forgotten by then. Default 1 minute;
	// the sweeper visits at most one shard per microsecond.
	SweepInterval time.Duration
}

const (
	numShards = 256 // a power of two, so that a hash picks one with a mask

	defaultRetention     = 5 * time.Minute
	minRetention         = time.Second
	defaultSweepInterval = time.Minute
)

// Store is an in-memory [otp.Store]. Create it with [New]; it is safe for
// concurrent use.
//
// Methods ignore their context: they never block on anything but a brief
// lock, so a cancelled context does not stop them. Times come back in UTC,
// as the same instants that were put.
type Store struct {
	*shards
	closeOnce sync.Once
	cleanup   runtime.Cleanup
	done      chan struct{} // closed when the sweeper has returned
}

var _ otp.Store = (*Store)(nil)

// shards is everything the sweeper needs, kept apart from Store so that a
// Store nobody closed can still be garbage collected (see New).
type shards struct {
	seed      maphash.Seed
	clock     otp.Clock
	retention int64 // nanoseconds
	stop      chan struct{}
	s         [numShards]shard
}

// shard is one lock's worth of the store.
type shard struct {
	mu sync.Mutex
	// m maps each key to its entry. The key string is a prefix of the same
	// allocation as entry.ref, so the key is stored once.
	m map[string]entry
	// peak is the largest len(m) since m was last rebuilt; Go maps never
	// shrink, so the sweeper rebuilds m once it has emptied out.
	peak int
	// kinds interns the provider name and channel of the entries; an
	// entry holds its index.
	kinds     []kind
	kindIndex map[kind]uint16
	_         [64]byte // keeps neighbouring shards' locks off one cache line
}

type kind struct {
	provider string
	channel  otp.Channel
}

// entry is a stored verification, without its key. It takes 48 bytes.
type entry struct {
	ref                    string // Ref.ID followed by To
	created, sent, expires int64  // Unix nanoseconds; see toNanos
	attempts               int32
	kind                   uint16 // index in shard.kinds
	idLen                  uint16 // length of Ref.ID within ref
}

// New returns a Store configured by cfg and starts its sweeper goroutine.
// Close stops it; so, eventually, does the garbage collector, once a Store
// that was never closed is unreachable.
func New(cfg Config) *Store {
	if cfg.Clock == nil {
		cfg.Clock = otp.SystemClock
	}
	if cfg.Retention <= 0 {
		cfg.Retention = defaultRetention
	}
	cfg.Retention = max(cfg.Retention, minRetention)
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = defaultSweepInterval
	}
	sh := &shards{
		seed:      maphash.MakeSeed(),
		clock:     cfg.Clock,
		retention: int64(cfg.Retention),
		stop:      make(chan struct{}),
	}
	for i := range sh.s {
		sh.s[i].m = make(map[string]entry)
		sh.s[i].kindIndex = make(map[kind]uint16)
	}
	s := &Store{shards: sh, done: make(chan struct{})}
	go sh.sweep(max(cfg.SweepInterval/numShards, time.Microsecond), s.done)
	// The sweeper references only sh, so a Store dropped without Close
	// becomes unreachable; stop its sweeper then rather than leak it.
	s.cleanup = runtime.AddCleanup(s, func(stop chan struct{}) { close(stop) }, sh.stop)
	return s
}

// Close stops the sweeper and waits for it to return. It always returns
// nil, and calling it again does nothing. The Store keeps working after
// Close, but memory held by forgotten verifications is freed only when a
// method next touches their keys.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cleanup.Stop()
		close(s.stop)
		<-s.done
	})
	return nil
}

// Len returns how many verifications the store holds, live or expired,
// including forgotten ones the sweeper has not yet freed.
func (s *Store) Len() int {
	n := 0
	for i := range s.s {
		sh := &s.s[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Get returns the verification under key: [otp.ErrNotFound] if there is
// none, [otp.ErrExpired] if it has expired.
func (s *Store) Get(_ context.Context, key string) (otp.Verification, error) {
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, err := sh.live(key, now, s.retention)
	if err != nil {
		return otp.Verification{}, err
	}
	return sh.verification(key, e), nil
}

// Put stores v under v.Key, replacing whatever was there, until v.ExpiresAt
// plus Config.Retention. It fails, storing nothing, if a time in v lies
// outside the years 1678 to 2262 (the zero time excepted), if Ref.ID is
// longer than 65,535 bytes or if Attempts does not fit in an int32.
func (s *Store) Put(_ context.Context, v otp.Verification) error {
	created, err1 := toNanos("CreatedAt", v.CreatedAt)
	sent, err2 := toNanos("SentAt", v.SentAt)
	expires, err3 := toNanos("ExpiresAt", v.ExpiresAt)
	switch {
	case err1 != nil:
		return err1
	case err2 != nil:
		return err2
	case err3 != nil:
		return err3
	case len(v.Ref.ID) > math.MaxUint16:
		return fmt.Errorf("memstore: Ref.ID is %d bytes, longer than %d", len(v.Ref.ID), math.MaxUint16)
	case v.Attempts < math.MinInt32 || v.Attempts > math.MaxInt32:
		return fmt.Errorf("memstore: Attempts %d does not fit in an int32", v.Attempts)
	}
	// One allocation holds the key, Ref.ID and To. Copying also keeps the
	// store from pinning larger buffers that the caller's strings point into.
	var b strings.Builder
	b.Grow(len(v.Key) + len(v.Ref.ID) + len(v.To))
	b.WriteString(v.Key)
	b.WriteString(v.Ref.ID)
	b.WriteString(v.To)
	all := b.String()
	e := entry{
		ref:      all[len(v.Key):],
		created:  created,
		sent:     sent,
		expires:  expires,
		attempts: int32(v.Attempts),
		idLen:    uint16(len(v.Ref.ID)),
	}

	sh := s.shard(v.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k, err := sh.intern(v.Ref.Provider, v.Channel)
	if err != nil {
		return err
	}
	e.kind = k
	// Assigning to an existing key also replaces the map's copy of the key
	// string, so the old allocation is freed.
	sh.m[all[:len(v.Key)]] = e
	sh.peak = max(sh.peak, len(sh.m))
	return nil
}

// AddAttempt reserves one attempt on the live verification under key if it
// has used fewer than maxAttempts, and returns it with Attempts counting
// the new one. With maxAttempts used it returns [otp.ErrTooManyAttempts]
// and changes nothing; [otp.ErrNotFound] and [otp.ErrExpired] are as for
// Get.
func (s *Store) AddAttempt(_ context.Context, key string, maxAttempts int) (otp.Verification, error) {
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, err := sh.live(key, now, s.retention)
	if err != nil {
		return otp.Verification{}, err
	}
	if int(e.attempts) >= maxAttempts || e.attempts == math.MaxInt32 {
		return otp.Verification{}, otp.ErrTooManyAttempts
	}
	e.attempts++
	sh.m[key] = e
	return sh.verification(key, e), nil
}

// MarkSent sets SentAt to at on the verification under key with Ref.ID id,
// leaving everything else alone. It returns [otp.ErrNotFound] if there is
// no such verification and [otp.ErrExpired], changing nothing, if it has
// expired. It fails like Put if at is out of range.
func (s *Store) MarkSent(_ context.Context, key, id string, at time.Time) error {
	sent, err := toNanos("SentAt", at)
	if err != nil {
		return err
	}
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, err := sh.withID(key, id, now, s.retention)
	if err != nil {
		return err
	}
	if e.expired(now) {
		return otp.ErrExpired
	}
	e.sent = sent
	sh.m[key] = e
	return nil
}

// Delete removes the verification under key with Ref.ID id, expired or not.
// Of concurrent calls exactly one returns nil; the others, and calls for a
// missing or replaced verification, return [otp.ErrNotFound].
func (s *Store) Delete(_ context.Context, key, id string) error {
	now := s.now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, err := sh.withID(key, id, now, s.retention); err != nil {
		return err
	}
	delete(sh.m, key)
	return nil
}

func (s *shards) now() int64 { return s.clock.Now().UnixNano() }

func (s *shards) shard(key string) *shard {
	return &s.s[maphash.String(s.seed, key)&(numShards-1)]
}

// sweep visits one shard per tick, round and round, until stop is closed.
func (s *shards) sweep(tick time.Duration, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 0; ; i = (i + 1) % numShards {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.s[i].sweep(s.now(), s.retention)
	}
}

// sweep deletes the entries forgotten at now, then rebuilds the map if it
// holds a quarter or less of its peak.
func (sh *shard) sweep(now, retention int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for key, e := range sh.m {
		if e.forgotten(now, retention) {
			delete(sh.m, key)
		}
	}
	if sh.peak >= 64 && len(sh.m) <= sh.peak/4 { // small maps are not worth it
		m := make(map[string]entry, len(sh.m))
		for key, e := range sh.m {
			m[key] = e
		}
		sh.m, sh.peak = m, len(m)
	}
}

// live returns the entry under key if it is live: otp.ErrExpired if it has
// expired, otp.ErrNotFound if it is missing or forgotten. The caller holds
// sh.mu.
func (sh *shard) live(key string, now, retention int64) (entry, error) {
	e, err := sh.held(key, now, retention)
	if err == nil && e.expired(now) {
		return entry{}, otp.ErrExpired
	}
	return e, err
}

// withID returns the entry under key with Ref.ID id, live or expired:
// otp.ErrNotFound if there is none. The caller holds sh.mu.
func (sh *shard) withID(key, id string, now, retention int64) (entry, error) {
	e, err := sh.held(key, now, retention)
	if err == nil && e.ref[:e.idLen] != id {
		return entry{}, otp.ErrNotFound
	}
	return e, err
}

// held returns the entry under key, live or expired: otp.ErrNotFound if it
// is missing or forgotten (and then deletes it). The caller holds sh.mu.
func (sh *shard) held(key string, now, retention int64) (entry, error) {
	e, ok := sh.m[key]
	if !ok {
		return entry{}, otp.ErrNotFound
	}
	if e.forgotten(now, retention) {
		delete(sh.m, key)
		return entry{}, otp.ErrNotFound
	}
	return e, nil
}

// intern returns the index of the pair (provider, channel) in sh.kinds,
// adding it if new. The caller holds sh.mu.
func (sh *shard) intern(provider string, channel otp.Channel) (uint16, error) {
	k := kind{provider, channel}
	if i, ok := sh.kindIndex[k]; ok {
		return i, nil
	}
	if len(sh.kinds) > math.MaxUint16 {
		return 0, fmt.Errorf("memstore: more than %d distinct pairs of provider name and channel", math.MaxUint16+1)
	}
	k = kind{strings.Clone(provider), otp.Channel(strings.Clone(string(channel)))}
	i := uint16(len(sh.kinds))
	sh.kinds = append(sh.kinds, k)
	sh.kindIndex[k] = i
	return i, nil
}

// verification rebuilds the otp.Verification that e stores under key. The
// caller holds sh.mu.
func (sh *shard) verification(key string, e entry) otp.Verification {
	k := sh.kinds[e.kind]
	return otp.Verification{
		Key:       key,
		Ref:       otp.Ref{Provider: k.provider, ID: e.ref[:e.idLen]},
		To:        e.ref[e.idLen:],
		Channel:   k.channel,
		Attempts:  int(e.attempts),
		CreatedAt: fromNanos(e.created),
		SentAt:    fromNanos(e.sent),
		ExpiresAt: fromNanos(e.expires),
	}
}

// expired reports whether e's code has expired at now: ExpiresAt is the
// first instant that is no longer live.
func (e entry) expired(now int64) bool { return now >= e.expires }

// forgotten reports whether e's retention has passed at now. The difference
// is taken as unsigned because expires+retention, or now-expires as signed,
// overflows for a zero ExpiresAt or a year-2262 one.
func (e entry) forgotten(now, retention int64) bool {
	return now >= e.expires && uint64(now-e.expires) >= uint64(retention)
}

// zeroTime stands for time.Time{}, which has no Unix nanoseconds; it sorts
// before every other time, so a zero ExpiresAt is long expired.
const zeroTime = math.MinInt64

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// toNanos returns t as Unix nanoseconds, the exact instant in 8 bytes.
func toNanos(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return zeroTime, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("memstore: %s %s is outside the years 1678 to 2262", field, t.Format(time.RFC3339Nano))
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time {
	if n == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
