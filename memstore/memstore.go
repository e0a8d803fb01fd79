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
// the sweeper; the sweeper only frees memory. It visits one shard at a time
// and lets go of the shard's lock every few hundred entries, so that no
// call waits long for it.
//
// # Memory
//
// A pending verification with realistic values (a 15-byte key, a 36-byte
// vendor ID, an E.164 number) takes 312 bytes of heap, map overhead
// included, with a million held (Go 1.26, amd64), as measured by
//
//	go test -run '^$' -bench MillionEntries -benchtime 1x ./memstore/
//
// Put copies the strings it keeps, so longer ones cost their length and no
// more. Go maps never shrink; the sweeper remakes a shard's map once it is
// down to a quarter of its peak and to a few hundred entries, so the
// memory of a burst comes back when the store has all but emptied.
package memstore

import (
	"context"
	"hash/maphash"
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
	numShards  = 256 // a power of two, so that a hash picks one with a mask
	sweepBatch = 256 // entries the sweeper visits per hold of a shard's lock

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
}

var _ otp.Store = (*Store)(nil)

// shards is everything the sweeper needs, kept apart from Store so that a
// Store nobody closed can still be garbage collected (see New).
type shards struct {
	seed      maphash.Seed
	clock     otp.Clock
	retention time.Duration
	stop      chan struct{} // closed to stop the sweeper
	done      chan struct{} // closed when the sweeper has returned
	s         [numShards]shard
}

// shard is one lock's worth of the store.
type shard struct {
	mu     sync.Mutex
	m      map[string]otp.Verification
	claims map[string]otp.Claim // sends in flight, by key
	// peak is the largest len(m) since m was made; Go maps never shrink,
	// so the sweeper remakes m once it has emptied out.
	peak int
	_    [64]byte // keeps neighbouring shards' locks off one cache line
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
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = defaultSweepInterval
	}
	sh := &shards{
		seed:      maphash.MakeSeed(),
		clock:     cfg.Clock,
		retention: max(cfg.Retention, minRetention),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for i := range sh.s {
		sh.s[i].m = make(map[string]otp.Verification)
		sh.s[i].claims = make(map[string]otp.Claim)
	}
	go sh.sweep(max(cfg.SweepInterval/numShards, time.Microsecond))
	s := &Store{shards: sh}
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
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return s.live(sh, key, now)
}

// Claim returns the live verification under key, or a zero Verification,
// and claims key for c unless another unexpired claim holds it:
// [otp.ErrSendInFlight].
func (s *Store) Claim(_ context.Context, key string, c otp.Claim) (otp.Verification, error) {
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if held, ok := sh.claims[key]; ok && held.Token != c.Token && now.Before(held.Until) {
		return otp.Verification{}, otp.ErrSendInFlight
	}
	v, err := s.live(sh, key, now)
	if err != nil {
		v = otp.Verification{}
	}
	sh.claims[strings.Clone(key)] = c // the key may pin the caller's request buffer
	return v, nil
}

// Release drops the claim on key if token holds it.
func (s *Store) Release(_ context.Context, key, token string) error {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.claims[key].Token == token {
		delete(sh.claims, key)
	}
	return nil
}

// Put stores v under v.Key, replacing whatever was there (a claim
// included), until v.ExpiresAt plus Config.Retention. It always returns
// nil.
func (s *Store) Put(_ context.Context, v otp.Verification) error {
	// A copy of the key, the one string a caller hands over as it came
	// (a session ID cut from a cookie header), so that the store never
	// pins the larger buffer it may point into.
	v.Key = strings.Clone(v.Key)
	v.CreatedAt, v.SentAt, v.ExpiresAt = v.CreatedAt.UTC(), v.SentAt.UTC(), v.ExpiresAt.UTC()

	sh := s.shard(v.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.m[v.Key] = v
	delete(sh.claims, v.Key)
	sh.peak = max(sh.peak, len(sh.m))
	return nil
}

// AddAttempt reserves one attempt on the live verification under key if it
// has used fewer than maxAttempts, and returns it with Attempts counting
// the new one. With maxAttempts used it returns [otp.ErrTooManyAttempts]
// and changes nothing; [otp.ErrNotFound] and [otp.ErrExpired] are as for
// Get.
func (s *Store) AddAttempt(_ context.Context, key string, maxAttempts int) (otp.Verification, error) {
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, err := s.live(sh, key, now)
	if err != nil {
		return otp.Verification{}, err
	}
	if v.Attempts >= maxAttempts {
		return otp.Verification{}, otp.ErrTooManyAttempts
	}
	v.Attempts++
	sh.m[key] = v
	return v, nil
}

// MarkSent records a resend on the verification under key with Ref.ID id:
// SentAt becomes at and Sends grows by one; the rest is left alone. It
// returns [otp.ErrNotFound] if there is no such verification and
// [otp.ErrExpired], changing nothing, if it has expired.
func (s *Store) MarkSent(_ context.Context, key, id string, at time.Time) error {
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, err := s.withID(sh, key, id, now)
	if err != nil {
		return err
	}
	if expired(v, now) {
		return otp.ErrExpired
	}
	v.SentAt = at.UTC()
	v.Sends++
	sh.m[key] = v
	return nil
}

// Delete removes the verification under key with Ref.ID id, expired or not.
// Of concurrent calls exactly one returns nil; the others, and calls for a
// missing or replaced verification, return [otp.ErrNotFound].
func (s *Store) Delete(_ context.Context, key, id string) error {
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, err := s.withID(sh, key, id, now); err != nil {
		return err
	}
	delete(sh.m, key)
	return nil
}

func (s *shards) shard(key string) *shard {
	return &s.s[maphash.String(s.seed, key)&(numShards-1)]
}

// live returns the verification under key if it is live: otp.ErrExpired if
// it has expired, otp.ErrNotFound if it is missing or forgotten. The caller
// holds sh.mu.
func (s *shards) live(sh *shard, key string, now time.Time) (otp.Verification, error) {
	v, err := s.held(sh, key, now)
	if err == nil && expired(v, now) {
		return otp.Verification{}, otp.ErrExpired
	}
	return v, err
}

// withID returns the verification under key with Ref.ID id, live or
// expired: otp.ErrNotFound if there is none. The caller holds sh.mu.
func (s *shards) withID(sh *shard, key, id string, now time.Time) (otp.Verification, error) {
	v, err := s.held(sh, key, now)
	if err == nil && v.Ref.ID != id {
		return otp.Verification{}, otp.ErrNotFound
	}
	return v, err
}

// held returns the verification under key, live or expired: otp.ErrNotFound
// if it is missing or forgotten (and then deletes it). The caller holds
// sh.mu.
func (s *shards) held(sh *shard, key string, now time.Time) (otp.Verification, error) {
	v, ok := sh.m[key]
	if !ok {
		return otp.Verification{}, otp.ErrNotFound
	}
	if s.forgotten(v, now) {
		delete(sh.m, key)
		return otp.Verification{}, otp.ErrNotFound
	}
	return v, nil
}

// expired reports whether v's code has expired at now: ExpiresAt is the
// first instant that is no longer live.
func expired(v otp.Verification, now time.Time) bool { return !now.Before(v.ExpiresAt) }

// forgotten reports whether v's retention has passed at now. Time.Add
// saturates, so this holds for any ExpiresAt.
func (s *shards) forgotten(v otp.Verification, now time.Time) bool {
	return !now.Before(v.ExpiresAt.Add(s.retention))
}

// sweep visits one shard per tick, round and round, until stop is closed.
func (s *shards) sweep(tick time.Duration) {
	defer close(s.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 0; ; i = (i + 1) % numShards {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.sweepShard(&s.s[i], s.clock.Now())
	}
}

// sweepShard deletes the verifications in sh forgotten at now, then remakes
// its map if that has emptied out.
func (s *shards) sweepShard(sh *shard, now time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for key, c := range sh.claims {
		if !now.Before(c.Until) { // a claim whose Start never ended
			delete(sh.claims, key)
		}
	}
	n := 0
	for key, v := range sh.m {
		if s.forgotten(v, now) {
			delete(sh.m, key)
		}
		// Let waiting calls in. A range loop survives changes to the map
		// between its steps: an entry put meanwhile may be missed, until
		// the next round.
		if n++; n%sweepBatch == 0 {
			sh.mu.Unlock()
			runtime.Gosched()
			sh.mu.Lock()
		}
	}
	// Go maps never shrink. Copy what is left to a new map once it is a
	// quarter of the peak and small enough to copy in one lock hold.
	if n := len(sh.m); sh.peak >= 64 && n <= sh.peak/4 && n <= sweepBatch {
		m := make(map[string]otp.Verification, n)
		for key, v := range sh.m {
			m[key] = v
		}
		sh.m, sh.peak = m, n
	}
}
