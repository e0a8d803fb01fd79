package otp

import (
	"hash/maphash"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// keyLocks serialises Start, Resend and Cancel on one key within a process,
// so that a double-clicked Start sends one code. Memory is bounded by the
// number of calls in flight.
type keyLocks struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]*keyLock
	}
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (l *keyLocks) init() {
	l.seed = maphash.MakeSeed()
	for i := range l.shards {
		l.shards[i].m = make(map[string]*keyLock)
	}
}

// lock locks key and returns its unlock function.
func (l *keyLocks) lock(key string) (unlock func()) {
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	kl := sh.m[key]
	if kl == nil {
		kl = &keyLock{}
		sh.m[key] = kl
	}
	kl.refs++
	sh.mu.Unlock()
	kl.mu.Lock()
	return func() {
		kl.mu.Unlock()
		sh.mu.Lock()
		if kl.refs--; kl.refs == 0 {
			delete(sh.m, key)
		}
		sh.mu.Unlock()
	}
}

func isRegion(r string) bool {
	return phonenumbers.GetSupportedRegions()[r]
}
