package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// sessionStore is an in-process scs.Store with no goroutine. scs's own
// memstore starts a sweeper that its StopCleanup can miss (the stop channel
// is made inside the goroutine, so a Close right after New races and leaks
// it); this one sweeps during Commit instead, and holds at most max
// sessions so that a flood of new clients cannot grow it without limit.
type sessionStore struct {
	mu      sync.Mutex
	items   map[string]sessionItem
	max     int
	commits int
	now     func() time.Time
}

type sessionItem struct {
	data    []byte
	expires time.Time
}

var _ scs.Store = (*sessionStore)(nil)

// errSessionsFull is returned by Commit when max live sessions are held.
var errSessionsFull = errors.New("demo: too many live sessions")

func newSessionStore(max int) *sessionStore {
	return &sessionStore{items: make(map[string]sessionItem), max: max, now: time.Now}
}

// Find implements scs.Store.
func (s *sessionStore) Find(token string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[token]
	if !ok || !s.now().Before(it.expires) {
		return nil, false, nil
	}
	return it.data, true, nil
}

// Commit implements scs.Store. Every 1,024 commits, and whenever the store
// is full, it first drops the expired sessions.
func (s *sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	_, exists := s.items[token]
	if s.commits%1024 == 0 || (!exists && len(s.items) >= s.max) {
		now := s.now()
		for k, it := range s.items {
			if !now.Before(it.expires) {
				delete(s.items, k)
			}
		}
	}
	if !exists && len(s.items) >= s.max {
		return errSessionsFull
	}
	s.items[token] = sessionItem{data: b, expires: expiry}
	return nil
}

// Delete implements scs.Store.
func (s *sessionStore) Delete(token string) error {
	s.mu.Lock()
	delete(s.items, token)
	s.mu.Unlock()
	return nil
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// stringCodec is the sessions' scs.Codec. The demo keeps only strings in
// sessions, so JSON does; scs's default gob codec builds a new decoder for
// every request, which cost the demo a sixth of its CPU under load.
type stringCodec struct{}

var _ scs.Codec = stringCodec{}

type sessionData struct {
	Deadline time.Time         `json:"d"`
	Values   map[string]string `json:"v"`
}

// errNotString is returned by Encode for a value that is not a string.
var errNotString = errors.New("demo: session values must be strings")

// Encode implements scs.Codec.
func (stringCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	d := sessionData{Deadline: deadline, Values: make(map[string]string, len(values))}
	for k, v := range values {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %q is %T", errNotString, k, v)
		}
		d.Values[k] = s
	}
	return json.Marshal(d)
}

// Decode implements scs.Codec.
func (stringCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	var d sessionData
	if err := json.Unmarshal(b, &d); err != nil {
		return time.Time{}, nil, err
	}
	values := make(map[string]any, len(d.Values))
	for k, v := range d.Values {
		values[k] = v
	}
	return d.Deadline, values, nil
}
