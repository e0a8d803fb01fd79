package twilio_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// TestStartRetriedOnlyWhenNotActed: a start is repeated only after an
// answer that proves Twilio did nothing and asked for a wait within the
// cap; after anything that may have sent a code it fails at once with
// NotSent false.
func TestStartRetriedOnlyWhenNotActed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		faults  []twiliotest.Fault
		calls   int
		ok      bool
		notSent bool
		wait    time.Duration
	}{
		{name: "429 Retry-After 0", faults: []twiliotest.Fault{{Status: 429, RetryAfter: "0"}}, calls: 2, ok: true},
		{name: "503 Retry-After 0", faults: []twiliotest.Fault{{Status: 503, RetryAfter: "0"}}, calls: 2, ok: true},
		{name: "429 without Retry-After", faults: []twiliotest.Fault{{Status: 429}}, calls: 1, notSent: true},
		{name: "429 Retry-After over the cap", faults: []twiliotest.Fault{{Status: 429, RetryAfter: "60"}}, calls: 1, notSent: true, wait: time.Minute},
		{name: "429 60203 with Retry-After", faults: []twiliotest.Fault{{Status: 429, Code: 60203, RetryAfter: "0"}}, calls: 1, notSent: true},
		{name: "500", faults: []twiliotest.Fault{{Status: 500}}, calls: 1},
		{name: "503 without Retry-After", faults: []twiliotest.Fault{{Status: 503}}, calls: 1},
		{name: "dropped", faults: []twiliotest.Fault{{Drop: true}}, calls: 1},
		{name: "timed out after it was written", faults: []twiliotest.Fault{{Delay: time.Second}}, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, twiliotest.Config{})
			p := f.provider(t, func(c *twilio.Config) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
			f.srv.FailNext(twiliotest.OpStart, tc.faults...)
			_, err := p.Send(ctx, sms(testPhone))
			if n := f.srv.Calls(twiliotest.OpStart); n != tc.calls {
				t.Fatalf("%d starts, want %d (%v)", n, tc.calls, err)
			}
			if tc.ok {
				if err != nil || len(f.srv.Sends()) != 1 {
					t.Fatalf("%v, %d sends", err, len(f.srv.Sends()))
				}
				return
			}
			pe := providerError(t, err)
			if pe.NotSent != tc.notSent || tc.wait != 0 && pe.RetryAfter != tc.wait {
				t.Fatalf("NotSent %v RetryAfter %v, want %v %v: %v", pe.NotSent, pe.RetryAfter, tc.notSent, tc.wait, err)
			}
		})
	}
}

// TestRetryAfterHonoured: the transport waits the Retry-After Twilio asks
// for, within the cap, before the next try.
func TestRetryAfterHonoured(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	f.srv.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: 429, Code: 20429, RetryAfter: "1"})
	begin := time.Now()
	if _, err := p.Send(ctx, sms(testPhone)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < time.Second {
		t.Fatalf("retried after %v, before the Retry-After", d)
	}
}

// TestStartRetriedAfterRefusedDials: a try that never got a connection
// wrote nothing, so even a start is retried; every dial refused ends in
// an unavailable error that says nothing was sent.
func TestStartRetriedAfterRefusedDials(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) <= 2 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	p := f.provider(t, func(c *twilio.Config) { c.HTTPClient = &http.Client{Transport: tr} })
	if _, err := p.Send(ctx, sms(testPhone)); err != nil {
		t.Fatal(err)
	}
	if dials.Load() != 3 || f.srv.Calls(twiliotest.OpStart) != 1 {
		t.Fatalf("%d dials, %d starts", dials.Load(), f.srv.Calls(twiliotest.OpStart))
	}
	closed := f.provider(t, func(c *twilio.Config) { c.BaseURL = "http://" + closedAddr(t) })
	_, err := closed.Send(ctx, sms(testPhone))
	mustIs(t, err, otp.ErrProviderUnavailable)
	if pe := providerError(t, err); !pe.NotSent {
		t.Fatalf("refused connection: %v", err)
	}
}

// TestChecksAndCancelsRetried: checks, cancels and the read of a Resend
// are retried on transient failures; a 429/60202 is not.
func TestChecksAndCancelsRetried(t *testing.T) {
	f := newFixture(t, twiliotest.Config{Code: "123456"})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	f.srv.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 500}, twiliotest.Fault{Drop: true})
	if err := p.Check(ctx, ref, "000000"); !errors.Is(err, otp.ErrWrongCode) || f.srv.Calls(twiliotest.OpCheck) != 3 {
		t.Fatalf("%v after %d checks", err, f.srv.Calls(twiliotest.OpCheck))
	}
	f.srv.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 429})
	if err := p.Check(ctx, ref, "000000"); !errors.Is(err, otp.ErrWrongCode) || f.srv.Calls(twiliotest.OpCheck) != 5 {
		t.Fatalf("429: %v after %d checks", err, f.srv.Calls(twiliotest.OpCheck))
	}
	f.srv.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 429, Code: 60202})
	mustIs(t, p.Check(ctx, ref, "000000"), otp.ErrTooManyAttempts)
	if n := f.srv.Calls(twiliotest.OpCheck); n != 6 {
		t.Fatalf("60202 retried: %d checks", n)
	}
	f.srv.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 502})
	if err := p.Resend(ctx, ref); err != nil || f.srv.Calls(twiliotest.OpFetch) != 2 {
		t.Fatalf("resend: %v after %d fetches", err, f.srv.Calls(twiliotest.OpFetch))
	}
	f.srv.FailNext(twiliotest.OpUpdate, twiliotest.Fault{Status: 503}, twiliotest.Fault{Status: 504})
	if err := p.Cancel(ctx, ref); err != nil || f.srv.Calls(twiliotest.OpUpdate) != 3 {
		t.Fatalf("cancel: %v after %d updates", err, f.srv.Calls(twiliotest.OpUpdate))
	}
}

// TestCheckAfterALostTry: a 404 after a try that may have approved the
// code is not "not found" but an unknown outcome.
func TestCheckAfterALostTry(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	f.srv.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 502}, twiliotest.Fault{Status: 404})
	err := p.Check(ctx, ref, "123456")
	mustIs(t, err, otp.ErrProviderUnavailable)
	if errors.Is(err, otp.ErrNotFound) || providerError(t, err).NotSent {
		t.Fatalf("%v", err)
	}
}

// TestResendStartNotRepeated: the start of a Resend is a send: not
// repeated after a 500.
func TestResendStartNotRepeated(t *testing.T) {
	f := newFixture(t, twiliotest.Config{})
	p := f.provider(t, nil)
	ref, _ := p.Send(ctx, sms(testPhone))
	f.srv.FailNext(twiliotest.OpStart, twiliotest.Fault{Status: 500})
	err := p.Resend(ctx, ref)
	mustIs(t, err, otp.ErrProviderUnavailable)
	if pe := providerError(t, err); pe.NotSent || pe.Op != otp.OpResend || f.srv.Calls(twiliotest.OpStart) != 2 {
		t.Fatalf("%+v after %d starts", pe, f.srv.Calls(twiliotest.OpStart))
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
