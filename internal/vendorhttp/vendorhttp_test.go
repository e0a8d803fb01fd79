package vendorhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]struct {
		d  time.Duration
		ok bool
	}{
		"":                              {0, false},
		"0":                             {0, true},
		"120":                           {2 * time.Minute, true},
		"-1":                            {0, false},
		"999999999999":                  {24 * time.Hour, true},
		"Sun, 22 Nov 2026 12:01:00 GMT": {time.Minute, true},
		"Sun, 22 Nov 2026 11:00:00 GMT": {0, true},
		"soon":                          {0, false},
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		d, ok := RetryAfter(h, now)
		if d != want.d || ok != want.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", v, d, ok, want.d, want.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 10*time.Millisecond, 70*time.Millisecond
	for attempt, want := range []time.Duration{10, 20, 40, 70, 70} {
		if got := Backoff(lo, hi, attempt, nil, time.Time{}); got != want*time.Millisecond {
			t.Errorf("Backoff(attempt %d) = %v, want %v", attempt, got, want*time.Millisecond)
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {"3"}}}
	if got := Backoff(lo, hi, 0, resp, time.Time{}); got != 3*time.Second {
		t.Errorf("Backoff with Retry-After 3 = %v", got)
	}
}

func TestDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := (&net.Dialer{}).DialContext(context.Background(), "tcp", addr)
	if refused == nil || !DialError(refused) {
		t.Fatalf("a refused connection is a dial error: %v", refused)
	}
	if !DialError(&net.DNSError{Err: "no such host", Name: "x"}) {
		t.Fatal("a DNS failure is a dial error")
	}
	if DialError(&net.OpError{Op: "read", Err: errors.New("reset")}) || DialError(context.DeadlineExceeded) {
		t.Fatal("a read failure or a deadline is not")
	}
}

func TestNewClientKeepsConnections(t *testing.T) {
	c := NewClient()
	if tr := c.Transport.(*http.Transport); tr.MaxIdleConnsPerHost != maxIdlePerHost || c.Timeout == 0 {
		t.Fatalf("pool %d, timeout %v", tr.MaxIdleConnsPerHost, c.Timeout)
	}
	if c.Transport == http.DefaultTransport {
		t.Fatal("the default client shares http.DefaultTransport")
	}
}

// FuzzRetryAfter: never negative, a number of seconds never more than a
// day, never a panic.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "Fri, 31 Dec 1999 23:59:59 GMT", "99999999999999999999", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Retry-After", v)
		if d, ok := RetryAfter(h, now); d < 0 || d > 24*time.Hour && ok && !strings.Contains(v, " ") {
			t.Fatalf("%q -> %v", v, d)
		}
	})
}
