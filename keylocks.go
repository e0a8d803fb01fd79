package otp

import (
	"hash/maphash"
	"sync"
)

// keyLocks serialises Start, Resend and Cancel on one key within a process,
// so that a double-clicked Start sends one code. Memory is bounded by the
// number of calls in flight.
type keyLocks struct {
	seed   maphash.Seed
	shards [64]keyLockShard
}

type keyLockShard struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	refs  int
	key   string
	shard *keyLockShard
}

func (l *keyLocks) init() {
	l.seed = maphash.MakeSeed()
	for i := range l.shards {
		l.shards[i].m = make(map[string]*keyLock)
	}
}

// lock locks key; the caller must call unlock on the result.
func (l *keyLocks) lock(key string) *keyLock {
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	kl := sh.m[key]
	if kl == nil {
		kl = keyLockPool.Get().(*keyLock)
		kl.key, kl.shard = key, sh
		sh.m[key] = kl
	}
	kl.refs++
	sh.mu.Unlock()
	kl.mu.Lock()
	return kl
}

func (kl *keyLock) unlock() {
	kl.mu.Unlock()
	sh := kl.shard
	sh.mu.Lock()
	if kl.refs--; kl.refs == 0 {
		delete(sh.m, kl.key)
		kl.key, kl.shard = "", nil
		keyLockPool.Put(kl)
	}
	sh.mu.Unlock()
}

var keyLockPool = sync.Pool{New: func() any { return new(keyLock) }}
