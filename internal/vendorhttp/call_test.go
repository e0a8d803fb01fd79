package vendorhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// answer is what the scripted server does with one request.
type answer struct {
	status int
	header map[string]string
	body   string
	drop   bool // close the connection after reading the request
}

// script answers requests in order, then 200 "{}".
type script struct {
	mu      sync.Mutex
	answers []answer
	n       int
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.n++
	a := answer{status: 200, body: "{}"}
	if len(s.answers) > 0 {
		a, s.answers = s.answers[0], s.answers[1:]
	}
	s.mu.Unlock()
	if a.drop {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

var fast = otp.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}

func newScript(t *testing.T, answers ...answer) (*script, *httptest.Server, *Client) {
	t.Helper()
	s := &script{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := New("fake", srv.Client(), fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, srv, c
}

func ra(v string) map[string]string { return map[string]string{"Retry-After": v} }

// TestPolicy runs each failure once for a send (which must not run twice)
// and once for a check, counting what reached the server and whether the
// outcome says nothing was done.
func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		answers     []answer
		sends       int  // requests for a send
		sendOK      bool // the send succeeds after them
		sendNotSent bool // on failure
		checks      int  // requests for a check; its last answer is 200 when checks > len(answers)
		checkOK     bool
	}{
		{name: "429 with Retry-After", answers: []answer{{status: 429, header: ra("0")}}, sends: 2, sendOK: true, checks: 2, checkOK: true},
		{name: "429 without Retry-After", answers: []answer{{status: 429}}, sends: 1, sendNotSent: true, checks: 2, checkOK: true},
		{name: "429 Retry-After over the cap", answers: []answer{{status: 429, header: ra("60")}}, sends: 1, sendNotSent: true, checks: 1},
		{name: "503 with Retry-After", answers: []answer{{status: 503, header: ra("0")}}, sends: 2, sendOK: true, checks: 2, checkOK: true},
		{name: "503 without Retry-After", answers: []answer{{status: 503}}, sends: 1, checks: 2, checkOK: true},
		{name: "500", answers: []answer{{status: 500}}, sends: 1, checks: 2, checkOK: true},
		{name: "502, 504", answers: []answer{{status: 502}, {status: 504}}, sends: 1, checks: 3, checkOK: true},
		{name: "500 three times", answers: []answer{{status: 500}, {status: 500}, {status: 500}}, sends: 1, checks: 3},
		{name: "501", answers: []answer{{status: 501}}, sends: 1, checks: 1},
		{name: "400", answers: []answer{{status: 400}}, sends: 1, sendNotSent: true, checks: 1},
		{name: "dropped after the request", answers: []answer{{drop: true}}, sends: 1, checks: 2, checkOK: true},
		{name: "body over the cap", answers: []answer{{status: 200, body: strings.Repeat("x", MaxBody+1)}}, sends: 1, checks: 1},
	} {
		for _, op := range []otp.Op{otp.OpStart, otp.OpCheck} {
			t.Run(tc.name+"/"+string(op), func(t *testing.T) {
				s, srv, c := newScript(t, tc.answers...)
				r, err := c.Do(context.Background(), Request{Op: op, Method: "POST", URL: srv.URL, Body: []byte("{}")})
				want, ok := tc.sends, tc.sendOK
				if op == otp.OpCheck {
					want, ok = tc.checks, tc.checkOK
				}
				if s.count() != want {
					t.Fatalf("%d requests, want %d", s.count(), want)
				}
				if ok {
					if err != nil || r.Status != 200 {
						t.Fatalf("reply %d, err %v; want the 200", r.Status, err)
					}
					return
				}
				pe := outcome(t, c, op, r, err)
				if op == otp.OpStart && pe.NotSent != tc.sendNotSent {
					t.Fatalf("NotSent = %v, want %v: %v", pe.NotSent, tc.sendNotSent, pe)
				}
			})
		}
	}
}

// outcome is the error an adapter would return: Do's, or Failure of the
// last answer.
func outcome(t *testing.T, c *Client, op otp.Op, r Reply, err error) *otp.ProviderError {
	t.Helper()
	if err == nil {
		if r.Status/100 == 2 {
			t.Fatalf("success %d, want a failure", r.Status)
		}
		return c.Failure(op, r)
	}
	var pe *otp.ProviderError
	if !errors.As(err, &pe) || pe.Kind != otp.ProviderUnavailable || pe.Provider != "fake" || pe.Op != op {
		t.Fatalf("err %v, want an unavailable *otp.ProviderError", err)
	}
	return pe
}

// TestRefused2xx: a 2xx the adapter calls a refusal is retried like a 429.
func TestRefused2xx(t *testing.T) {
	throttled := answer{status: 200, body: `{"status":"1"}`}
	refused := func(b []byte) bool { return string(b) == `{"status":"1"}` }
	for op, want := range map[otp.Op]int{otp.OpStart: 1, otp.OpCheck: 2} {
		s, srv, c := newScript(t, throttled)
		r, err := c.Do(context.Background(), Request{Op: op, Method: "POST", URL: srv.URL, Refused: refused})
		if err != nil || s.count() != want {
			t.Fatalf("%s: %d requests (err %v), want %d", op, s.count(), err, want)
		}
		if op == otp.OpStart && (string(r.Body) != throttled.body || !c.Failure(op, r).NotSent) {
			t.Fatalf("send: %q, want the refusal, not sent", r.Body)
		}
	}
}

// TestSendRetriedAfterDialFailures: a try that never got a connection
// wrote nothing, so even a send is retried.
func TestSendRetriedAfterDialFailures(t *testing.T) {
	for name, dialErr := range map[string]error{
		"refused": &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		"dns":     &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}},
	} {
		t.Run(name, func(t *testing.T) {
			s, srv, _ := newScript(t)
			var dials atomic.Int32
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials.Add(1) <= 2 {
					return nil, dialErr
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}
			c, _ := New("fake", &http.Client{Transport: tr}, fast, nil)
			if _, err := c.Do(context.Background(), Request{Op: otp.OpStart, Method: "POST", URL: srv.URL}); err != nil {
				t.Fatal(err)
			}
			if dials.Load() != 3 || s.count() != 1 {
				t.Fatalf("%d dials, %d requests; want 3 and 1", dials.Load(), s.count())
			}
			// Every dial failing: the error says nothing was sent.
			dials.Store(-10)
			tr.CloseIdleConnections()
			_, err := c.Do(context.Background(), Request{Op: otp.OpStart, Method: "POST", URL: srv.URL})
			if pe := outcome(t, c, otp.OpStart, Reply{}, err); !pe.NotSent || !errors.Is(err, dialErr) {
				t.Fatalf("err %v, want not sent, wrapping the dial error", err)
			}
		})
	}
}

// TestLostTryIsRemembered: a check whose first try was lost and whose
// retry is refused may still have been acted on by the first.
func TestLostTryIsRemembered(t *testing.T) {
	_, srv, c := newScript(t, answer{status: 502}, answer{status: 404})
	r, err := c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "POST", URL: srv.URL})
	if err != nil || r.Status != 404 {
		t.Fatalf("%d %v", r.Status, err)
	}
	if c.Failure(otp.OpCheck, r).NotSent {
		t.Fatal("the 502'd try may have been acted on")
	}
	if pe := c.Failure(otp.OpCheck, r); !LostCheck(pe) || pe.Kind != otp.ProviderUnavailable || errors.Is(pe, otp.ErrNotFound) {
		t.Fatalf("a check's 404 after a lost try = %+v, want unavailable, not ErrNotFound", pe)
	}
	if pe := c.Failure(otp.OpCancel, r); LostCheck(pe) {
		t.Fatal("LostCheck of a cancel")
	}
	_, srv, c = newScript(t, answer{status: 404})
	r, _ = c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "POST", URL: srv.URL})
	if !c.Failure(otp.OpCheck, r).NotSent {
		t.Fatal("a lone 404 did nothing")
	}
	if pe := c.Failure(otp.OpCheck, r); LostCheck(pe) || pe.Err != nil {
		t.Fatalf("LostCheck of a lone 404 = %+v", pe)
	}
	if pe := c.Unknown(otp.OpCheck, r, errors.New("garbled")); pe.NotSent || pe.Kind != otp.ProviderUnavailable {
		t.Fatalf("Unknown = %+v", pe)
	}
}

// TestTimeouts: the call's Timeout bounds every try and wait; a
// Retry-After past the deadline is not waited for; the caller's context
// cancels; the vendor's Retry-After is on the error.
func TestTimeouts(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	c, _ := New("fake", srv.Client(), otp.RetryPolicy{MaxRetries: 10, Timeout: 50 * time.Millisecond}, nil)
	begin := time.Now()
	_, err := c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "GET", URL: srv.URL})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(begin))
	}
	if pe := outcome(t, c, otp.OpCheck, Reply{}, err); pe.NotSent {
		t.Fatal("a try that timed out after it was written may have been acted on")
	}

	s, srv2, _ := newScript(t, answer{status: 429, header: ra("2")})
	c, _ = New("fake", srv2.Client(), otp.RetryPolicy{MaxRetryAfter: 5 * time.Second}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r, err := c.Do(ctx, Request{Op: otp.OpCheck, Method: "GET", URL: srv2.URL})
	if err != nil || s.count() != 1 {
		t.Fatalf("%v, %d requests: want the 429 at once", err, s.count())
	}
	if pe := c.Failure(otp.OpCheck, r); pe.RetryAfter != 2*time.Second || pe.HTTPStatus != 429 || !pe.NotSent {
		t.Fatalf("%+v", pe)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = c.Do(ctx, Request{Op: otp.OpStart, Method: "POST", URL: srv2.URL})
	if pe := outcome(t, c, otp.OpStart, Reply{}, err); !pe.NotSent || !errors.Is(err, context.Canceled) || s.count() != 1 {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestNewValidatesThePolicy(t *testing.T) {
	for _, p := range []otp.RetryPolicy{{MaxRetries: 11}, {MinWait: time.Second, MaxWait: time.Millisecond}, {Timeout: -1}} {
		if _, err := New("fake", nil, p, nil); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	c, err := New("fake", nil, otp.RetryPolicy{MaxRetries: -1}, nil)
	if err != nil || c.policy.MaxRetries != 0 || c.policy.Timeout != 15*time.Second || c.hc == nil {
		t.Fatalf("%+v %v", c, err)
	}
}

// TestFinal: an answer the adapter calls final is not retried, whatever
// the policy says, and keeps what earlier tries may have done.
func TestFinal(t *testing.T) {
	final := func(status int, body []byte) bool { return status == 429 && string(body) == "done" }
	s, srv, c := newScript(t, answer{status: 429, body: "done"}, answer{status: 200})
	r, err := c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "POST", URL: srv.URL, Final: final})
	if err != nil || r.Status != 429 || s.count() != 1 {
		t.Fatalf("%d %v after %d requests: want the final 429 at once", r.Status, err, s.count())
	}
	if !c.Failure(otp.OpCheck, r).NotSent {
		t.Fatal("a final refusal did nothing")
	}
	s, srv, c = newScript(t, answer{status: 429, body: "busy"}, answer{status: 200})
	if r, err := c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "POST", URL: srv.URL, Final: final}); err != nil || r.Status != 200 || s.count() != 2 {
		t.Fatalf("%d %v after %d requests: another 429 is retried", r.Status, err, s.count())
	}
	_, srv, c = newScript(t, answer{status: 502}, answer{status: 429, body: "done"})
	r, _ = c.Do(context.Background(), Request{Op: otp.OpCheck, Method: "POST", URL: srv.URL, Final: final})
	if r.Status != 429 || c.Failure(otp.OpCheck, r).NotSent {
		t.Fatal("the 502'd try may have been acted on")
	}
}
