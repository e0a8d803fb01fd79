// Package reusetest checks, for the adapters' tests, that calls leave
// their keep-alive connections reusable: every answer body is read to EOF
// and closed, and nothing closes the pool.
//
// It checks this instead of counting TCP connections because net/http
// itself gives up a connection, now and then, that did everything right:
// after an answer is read it waits at most 50 ms to see its own request
// write finish (transport.go, maxWriteWaitBeforeConnReuse), and a test
// binary starved of CPU, as on a busy CI machine, misses that. A count of
// connections is then flaky; what the caller owes is not.
package reusetest

import (
	"io"
	"net/http"
	"sync"
	"testing"
)

// Transport wraps an HTTP client's transport and watches its answers.
type Transport struct {
	rt http.RoundTripper

	mu        sync.Mutex
	answers   int
	open      int // bodies not closed yet
	unread    int // bodies closed before EOF
	closeIdle int // CloseIdleConnections calls
}

// Wrap makes hc send through a Transport around its transport and returns
// it. It clears hc.Timeout, which a wrapped transport would serve with a
// goroutine per request; the caller's contexts still bound the calls.
func Wrap(hc *http.Client) *Transport {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t := &Transport{rt: rt}
	hc.Transport, hc.Timeout = t, 0
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.answers++
	t.open++
	t.mu.Unlock()
	resp.Body = &body{ReadCloser: resp.Body, t: t}
	return resp, nil
}

// CloseIdleConnections counts the call and passes it on.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	t.closeIdle++
	t.mu.Unlock()
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Check fails tb unless the Transport saw want answers, every one read to
// EOF and closed, and no call to CloseIdleConnections.
func (t *Transport) Check(tb testing.TB, want int) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.answers != want || t.open != 0 || t.unread != 0 || t.closeIdle != 0 {
		tb.Fatalf("%d answers (want %d): %d left open, %d closed unread; CloseIdleConnections called %d times",
			t.answers, want, t.open, t.unread, t.closeIdle)
	}
}

type body struct {
	io.ReadCloser
	t      *Transport
	eof    bool
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *body) Close() error {
	b.t.mu.Lock()
	if !b.closed {
		b.closed = true
		b.t.open--
		if !b.eof {
			b.t.unread++
		}
	}
	b.t.mu.Unlock()
	return b.ReadCloser.Close()
}
