package infobip_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// TestRetryPolicy counts the requests a failing fake received: a send is
// repeated only when Infobip surely did not act on it; a verify is
// repeated on any transient failure.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name     string
		op       infobiptest.Op
		faults   []infobiptest.Fault
		timeout  time.Duration // client timeout; 0: default
		requests int           // want requests received
		ok       bool          // want success after the faults
		notSent  bool          // want NotSent on failure
	}{
		{name: "send 500 is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 500}}, requests: 1},
		{name: "send 502 is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 502, Body: "<html>bad gateway</html>"}}, requests: 1},
		{name: "send 503 without Retry-After is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 503}}, requests: 1},
		{name: "send 429 without Retry-After is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 429}}, requests: 1, notSent: true},
		{name: "send 429 with a Retry-After beyond the cap is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 429, RetryAfter: "120"}}, requests: 1, notSent: true},
		{name: "send 429 with Retry-After is repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Status: 429, RetryAfter: "0"}}, requests: 2, ok: true},
		{name: "send 503 with Retry-After is repeated", op: infobiptest.OpSend,
			faults:   []infobiptest.Fault{{Status: 503, RetryAfter: "0"}, {Status: 503, RetryAfter: "0", Envelope: infobiptest.Modern}},
			requests: 3, ok: true},
		{name: "send throttled three times gives up after two retries", op: infobiptest.OpSend,
			faults:   []infobiptest.Fault{{Status: 429, RetryAfter: "0"}, {Status: 429, RetryAfter: "0"}, {Status: 429, RetryAfter: "0"}},
			requests: 3, notSent: true},
		{name: "send timing out after the request was written is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Delay: time.Hour}}, timeout: 100 * time.Millisecond, requests: 1},
		{name: "send dropped after the request was written is not repeated", op: infobiptest.OpSend,
			faults: []infobiptest.Fault{{Drop: true}}, requests: 1},
		{name: "resend 500 is not repeated", op: infobiptest.OpResend,
			faults: []infobiptest.Fault{{Status: 500}}, requests: 1},
		{name: "resend 429 with Retry-After is repeated", op: infobiptest.OpResend,
			faults: []infobiptest.Fault{{Status: 429, RetryAfter: "0"}}, requests: 2, ok: true},
		{name: "verify 500 is repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Status: 500}, {Status: 502}}, requests: 3, ok: true},
		{name: "verify 429 without Retry-After is repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Status: 429}}, requests: 2, ok: true},
		{name: "verify dropped is repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Drop: true}}, requests: 2, ok: true},
		{name: "verify timing out is repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Delay: time.Hour}}, timeout: 100 * time.Millisecond, requests: 2, ok: true},
		{name: "verify 429 with a Retry-After beyond the cap is not repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Status: 429, RetryAfter: "120"}}, requests: 1, notSent: true},
		{name: "verify 400 is not repeated", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Status: 400}}, requests: 1, notSent: true},
		{name: "verify failing three times gives up", op: infobiptest.OpVerify,
			faults: []infobiptest.Fault{{Status: 500}, {Status: 500}, {Status: 500}}, requests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := defaultApp
			app.SendPinPerPhoneNumberLimit = "100/1d"
			e := newEnv(t, app, infobiptest.Config{}, func(c *infobip.Config) {
				if tt.timeout > 0 {
					c.HTTPClient = &http.Client{Timeout: tt.timeout}
				}
			})
			var ref otp.Ref
			if tt.op != infobiptest.OpSend {
				var err error
				if ref, err = e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS}); err != nil {
					t.Fatal(err)
				}
			}
			pin, _ := e.srv.LastCode(phone)
			before := e.srv.Calls(tt.op)
			e.srv.FailNext(tt.op, tt.faults...)
			var err error
			switch tt.op {
			case infobiptest.OpSend:
				_, err = e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS})
			case infobiptest.OpResend:
				err = e.client.Resend(ctx, ref)
			case infobiptest.OpVerify:
				err = e.client.Check(ctx, ref, pin)
			}
			if n := e.srv.Calls(tt.op) - before; n != tt.requests {
				t.Errorf("server received %d requests, want %d (err %v)", n, tt.requests, err)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("err = %v, want success after the retries", err)
				}
				return
			}
			if !errors.Is(err, otp.ErrProviderUnavailable) && !errors.Is(err, otp.ErrProviderRejected) {
				t.Fatalf("err = %v, want a provider error", err)
			}
			if pe := providerError(t, err); pe.NotSent != tt.notSent {
				t.Errorf("NotSent = %t, want %t (%v)", pe.NotSent, tt.notSent, err)
			}
		})
	}
}

// A verify whose first try was lost and whose retry is a 404 may have
// verified the PIN with the first: not otp.ErrNotFound, an unknown outcome.
func TestVerifyAfterLostTryIsNotNotFound(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	ref, err := e.client.Send(ctx, otp.SendRequest{To: phone, Channel: otp.SMS})
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := e.srv.LastCode(phone)
	e.srv.FailNext(infobiptest.OpVerify, infobiptest.Fault{Status: 502}, infobiptest.Fault{Status: 404})
	err = e.client.Check(ctx, ref, pin)
	if pe := providerError(t, err); pe.Kind != otp.ProviderUnavailable || pe.NotSent || errors.Is(err, otp.ErrNotFound) {
		t.Fatalf("err = %v, want an unknown outcome", err)
	}
	if n := e.srv.Calls(infobiptest.OpVerify); n != 2 {
		t.Fatalf("%d verifies, want 2", n)
	}
}

// A refused connection is retried for a send too: no byte was written.
func TestRetryConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	c, err := infobip.New(infobip.Config{
		BaseURL: "http://" + addr, APIKey: apiKey, ApplicationID: "A", SMSMessageID: "M",
		HTTPClient: &http.Client{Transport: tr, Timeout: time.Second}, Retry: otp.RetryPolicy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = send(c, phone, otp.SMS)
	if n := dials.Load(); n != 3 {
		t.Errorf("dialled %d times, want 3 (1 + MaxRetries 2)", n)
	}
	pe := providerError(t, err)
	if pe.Kind != otp.ProviderUnavailable || !pe.NotSent || !errors.Is(err, otp.ErrProviderUnavailable) {
		t.Fatalf("err = %+v, want temporary and surely not sent", pe)
	}
}

// A Retry-After that would outlive the caller's deadline is not waited for.
func TestRetryAfterPastDeadline(t *testing.T) {
	h := &canned{status: 429, header: http.Header{"Retry-After": {"1"}}}
	c := cannedClient(t, h, func(cfg *infobip.Config) { cfg.Retry.MaxRetries = 2; cfg.Retry.MaxRetryAfter = 2 * time.Second })
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := c.Check(dctx, otp.Ref{ID: "sms:" + pinID}, "1234")
	if h.count() != 1 {
		t.Errorf("%d requests, want 1", h.count())
	}
	// Waiting would have ended in the deadline instead of the 429.
	if pe := providerError(t, err); pe.HTTPStatus != 429 || pe.Kind != otp.ProviderUnavailable {
		t.Errorf("err = %v, want the 429", err)
	}
}

// A cancelled context sends nothing and says so.
func TestCancelledContext(t *testing.T) {
	h := &canned{status: 200}
	c := cannedClient(t, h, nil)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := c.Send(cctx, otp.SendRequest{To: phone, Channel: otp.SMS})
	if !errors.Is(err, context.Canceled) || !providerError(t, err).NotSent || h.count() != 0 {
		t.Fatalf("err = %v, requests %d", err, h.count())
	}
}

// TestVendorRetryAfterReachesTheCaller: the wait Infobip asks for on a 429
// it was not retried through is on the error, for otp.RetryAfter.
func TestVendorRetryAfterReachesTheCaller(t *testing.T) {
	e := newEnv(t, defaultApp, infobiptest.Config{}, nil)
	e.srv.FailNext(infobiptest.OpSend, infobiptest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"})
	_, err := e.client.Send(context.Background(), otp.SendRequest{To: phone, Channel: otp.SMS, CodeLength: 6})
	if d, ok := otp.RetryAfter(err); !ok || d != time.Hour {
		t.Fatalf("RetryAfter = %v, %v; want 1h: %v", d, ok, err)
	}
	e.srv.FailNext(infobiptest.OpSend, infobiptest.Fault{Status: http.StatusInternalServerError})
	_, err = e.client.Send(context.Background(), otp.SendRequest{To: phone, Channel: otp.SMS, CodeLength: 6})
	if _, ok := otp.RetryAfter(err); ok {
		t.Fatalf("a 500 without Retry-After has none: %v", err)
	}
}
