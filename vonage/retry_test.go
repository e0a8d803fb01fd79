package vonage_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// failingDialer fails its first n dials with err, then dials for real.
type failingDialer struct {
	n     int32
	err   error
	dials atomic.Int32
}

func (d *failingDialer) client() *http.Client {
	var real net.Dialer
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if d.dials.Add(1) <= d.n {
				return nil, d.err
			}
			return real.DialContext(ctx, network, addr)
		},
	}}
}

var (
	refused  = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	noSuchDN = &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.nexmo.com", IsNotFound: true}}
)

// TestSendRetriedOnlyWhenSurelyNotSent runs a send against a server failing
// in each way and counts the sends it received.
func TestSendRetriedOnlyWhenSurelyNotSent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dialErr   error // first two dials fail with it
		faults    []vonagetest.Fault
		perTry    time.Duration // HTTP client timeout per try
		wantSends int           // requests the fake received
		wantErr   bool
		notSent   bool // on failure: Vonage surely did not act
	}{
		{name: "connection refused", dialErr: refused, wantSends: 1},
		{name: "dns failure", dialErr: noSuchDN, wantSends: 1},
		{name: "429 with retry-after", faults: []vonagetest.Fault{{Status: 429, RetryAfter: "0"}}, wantSends: 2},
		{name: "503 with retry-after", faults: []vonagetest.Fault{{Status: 503, RetryAfter: "0"}, {Status: 503, RetryAfter: "0"}}, wantSends: 3},
		{name: "429 three times", faults: []vonagetest.Fault{{Status: 429, RetryAfter: "0"}, {Status: 429, RetryAfter: "0"}, {Status: 429, RetryAfter: "0"}}, wantSends: 3, wantErr: true, notSent: true},
		{name: "429 without retry-after", faults: []vonagetest.Fault{{Status: 429}}, wantSends: 1, wantErr: true, notSent: true},
		{name: "429 retry-after over cap", faults: []vonagetest.Fault{{Status: 429, RetryAfter: "3600"}}, wantSends: 1, wantErr: true, notSent: true},
		{name: "503 without retry-after", faults: []vonagetest.Fault{{Status: 503}}, wantSends: 1, wantErr: true},
		{name: "500", faults: []vonagetest.Fault{{Status: 500}}, wantSends: 1, wantErr: true},
		{name: "502", faults: []vonagetest.Fault{{Status: 502}}, wantSends: 1, wantErr: true},
		{name: "504", faults: []vonagetest.Fault{{Status: 504}}, wantSends: 1, wantErr: true},
		{name: "dropped connection", faults: []vonagetest.Fault{{Drop: true}}, wantSends: 1, wantErr: true},
		{name: "timeout after write", faults: []vonagetest.Fault{{Delay: time.Minute}}, perTry: 50 * time.Millisecond, wantSends: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, vonagetest.Config{})
			f.srv.FailNext(vonagetest.V2Start, tc.faults...)
			hc := f.srv.Client()
			if tc.dialErr != nil {
				d := &failingDialer{n: 2, err: tc.dialErr}
				hc = d.client()
				defer func() {
					if d.dials.Load() != 3 {
						t.Errorf("dials = %d, want 3", d.dials.Load())
					}
				}()
			}
			if tc.perTry != 0 {
				hc.Timeout = tc.perTry
			}
			p := f.v2(t, func(c *vonage.V2Config) { c.HTTPClient = hc })
			ref, err := p.Send(context.Background(), sms(testPhone))
			if got := f.srv.Calls(vonagetest.V2Start); got != tc.wantSends {
				t.Fatalf("fake received %d sends, want %d (err %v)", got, tc.wantSends, err)
			}
			if !tc.wantErr {
				if err != nil || ref.ID == "" {
					t.Fatalf("ref %v err %v", ref, err)
				}
				return
			}
			mustIs(t, err, otp.ErrProviderUnavailable)
			if pe := providerError(t, err); pe.NotSent != tc.notSent {
				t.Fatalf("NotSent = %v, want %v: %v", pe.NotSent, tc.notSent, err)
			}
			// A status answer is reported as such, at once: no waiting out
			// a Retry-After over the cap until the call times out.
			if last := tc.faults[len(tc.faults)-1]; last.Status != 0 {
				if pe := providerError(t, err); pe.HTTPStatus != last.Status || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want the %d answer", err, last.Status)
				}
			}
		})
	}
}

// TestChecksRetriedOnTransientFailures: checks and cancels are retried on
// every transient failure, within MaxRetries; a resend (next_workflow),
// like a send, only when Vonage surely did not act, or it could skip a
// channel.
func TestChecksRetriedOnTransientFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint vonagetest.Op
		faults   []vonagetest.Fault
		perTry   time.Duration
		wantN    int
		want     error // nil: success
		notSent  bool
	}{
		{name: "check after 500", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Status: 500}}, wantN: 2},
		{name: "check after drop", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Drop: true}}, wantN: 2},
		{name: "check after timeout", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Delay: time.Minute}}, perTry: 50 * time.Millisecond, wantN: 2},
		{name: "check after 429", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Status: 429}}, wantN: 2},
		{name: "check 500 every time", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Status: 500}, {Status: 500}, {Status: 500}}, wantN: 3, want: otp.ErrProviderUnavailable},
		{name: "check 501 not retried", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Status: 501}}, wantN: 1, want: otp.ErrProviderUnavailable},
		{name: "cancel after 503", endpoint: vonagetest.V2Cancel, faults: []vonagetest.Fault{{Status: 503}}, wantN: 2},
		{name: "cancel after drop", endpoint: vonagetest.V2Cancel, faults: []vonagetest.Fault{{Drop: true}}, wantN: 2},
		{name: "resend 502 not repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Status: 502}}, wantN: 1, want: otp.ErrProviderUnavailable},
		{name: "resend 500 not repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Status: 500}}, wantN: 1, want: otp.ErrProviderUnavailable},
		{name: "resend dropped not repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Drop: true}}, wantN: 1, want: otp.ErrProviderUnavailable},
		{name: "resend timeout not repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Delay: time.Minute}}, perTry: 50 * time.Millisecond, wantN: 1, want: otp.ErrProviderUnavailable},
		{name: "resend 429 with retry-after repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Status: 429, RetryAfter: "0"}}, wantN: 2},
		{name: "resend 429 without retry-after not repeated", endpoint: vonagetest.V2NextWorkflow, faults: []vonagetest.Fault{{Status: 429}}, wantN: 1, want: otp.ErrProviderUnavailable, notSent: true},
		{name: "check 400 not retried", endpoint: vonagetest.V2Check, faults: []vonagetest.Fault{{Status: 400, Body: `{"title":"Invalid Code"}`}}, wantN: 1, want: otp.ErrWrongCode, notSent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, vonagetest.Config{Code: "123456"})
			hc := f.srv.Client()
			if tc.perTry != 0 {
				hc.Timeout = tc.perTry
			}
			p := f.v2(t, func(c *vonage.V2Config) { c.HTTPClient = hc; c.Fallback = []otp.Channel{otp.Voice} })
			ctx := context.Background()
			ref, err := p.Send(ctx, sms(testPhone))
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(31 * time.Second) // cancel allowed
			f.srv.FailNext(tc.endpoint, tc.faults...)
			switch tc.endpoint {
			case vonagetest.V2Check:
				err = p.Check(ctx, ref, "123456")
			case vonagetest.V2Cancel:
				err = p.Cancel(ctx, ref)
			default:
				err = p.Resend(ctx, ref)
			}
			if n := f.srv.Calls(tc.endpoint); n != tc.wantN {
				t.Fatalf("fake received %d, want %d (err %v)", n, tc.wantN, err)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			mustIs(t, err, tc.want)
			if pe := providerError(t, err); pe.NotSent != tc.notSent {
				t.Fatalf("NotSent = %v, want %v: %v", pe.NotSent, tc.notSent, err)
			}
		})
	}
}

// TestCheckAfterLostAnswerIsNotNotFound: when a check's answer was lost and
// the retry is a 404, the first try may have verified the code (Vonage
// answers 404 to a second check of a verified request), so the outcome is
// unknown rather than ErrNotFound.
func TestCheckAfterLostAnswerIsNotNotFound(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "123456"})
	p := f.v2(t, nil)
	ctx := context.Background()
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	f.srv.FailNext(vonagetest.V2Check, vonagetest.Fault{Status: 502}, vonagetest.Fault{Status: 404, Body: `{"title":"Not Found"}`})
	err = p.Check(ctx, ref, "123456")
	mustIs(t, err, otp.ErrProviderUnavailable)
	if errors.Is(err, otp.ErrNotFound) || errors.Is(err, otp.ErrProviderRejected) || providerError(t, err).NotSent {
		t.Fatalf("ambiguous 404 classed as not found: %v", err)
	}
	if f.srv.Calls(vonagetest.V2Check) != 2 {
		t.Fatal(f.srv.Calls(vonagetest.V2Check))
	}
}

// The legacy API says "already verified" with status 6 too: after a lost
// try it is no answer about the code either.
func TestLegacyCheckAfterLostAnswerIsNotNotFound(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "1234"})
	p := f.legacy(t, nil)
	ctx := context.Background()
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	notFound := vonagetest.Fault{Status: 200, Body: `{"status":"6","error_text":"The Verify request could not be found"}`}
	f.srv.FailNext(vonagetest.LegacyCheck, notFound)
	mustIs(t, p.Check(ctx, ref, "1234"), otp.ErrNotFound) // a first try: a plain not found

	f.srv.FailNext(vonagetest.LegacyCheck, vonagetest.Fault{Status: 502}, notFound)
	err = p.Check(ctx, ref, "1234")
	mustIs(t, err, otp.ErrProviderUnavailable)
	if errors.Is(err, otp.ErrNotFound) || providerError(t, err).NotSent {
		t.Fatalf("ambiguous status 6 classed as not found: %v", err)
	}
}

func TestLegacyThrottleRetry(t *testing.T) {
	f := newFixture(t, vonagetest.Config{Code: "1234"})
	p := f.legacy(t, nil)
	ctx := context.Background()
	throttled := vonagetest.Fault{Status: 200, Body: `{"status":"1","error_text":"Throttled"}`}
	f.srv.FailNext(vonagetest.LegacyRequest, throttled)
	_, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	mustIs(t, err, otp.ErrProviderUnavailable)
	if !providerError(t, err).NotSent || f.srv.Calls(vonagetest.LegacyRequest) != 1 {
		t.Fatalf("send throttled: %v, %d sends", err, f.srv.Calls(vonagetest.LegacyRequest))
	}
	ref, err := p.Send(ctx, otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.FailNext(vonagetest.LegacyCheck, throttled)
	if err := p.Check(ctx, ref, "1234"); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.Calls(vonagetest.LegacyCheck); n != 2 {
		t.Fatalf("checks = %d, want 2", n)
	}
	// A legacy send that got a 500 is not re-sent.
	f.srv.FailNext(vonagetest.LegacyRequest, vonagetest.Fault{Status: 500})
	_, err = p.Send(ctx, sms("+447700900002"))
	if providerError(t, err).NotSent || f.srv.Calls(vonagetest.LegacyRequest) != 3 {
		t.Fatalf("%v, %d sends", err, f.srv.Calls(vonagetest.LegacyRequest))
	}
	// Nor is trigger_next_event (Resend), neither after a 500 nor after a
	// throttled answer; a cancel is retried after both.
	ref, err = p.Send(ctx, otp.SendRequest{To: "+447700900003", Channel: otp.SMS, CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i, fault := range []vonagetest.Fault{{Status: 500}, {Drop: true}, throttled} {
		f.srv.FailNext(vonagetest.LegacyControl, fault)
		before := f.srv.Calls(vonagetest.LegacyControl)
		err = p.Resend(ctx, ref)
		mustIs(t, err, otp.ErrProviderUnavailable)
		if n := f.srv.Calls(vonagetest.LegacyControl) - before; n != 1 || providerError(t, err).NotSent != (i == 2) {
			t.Fatalf("trigger after %+v: %d requests, %v", fault, n, err)
		}
	}
	f.clock.Advance(31 * time.Second)
	f.srv.FailNext(vonagetest.LegacyControl, vonagetest.Fault{Status: 500}, throttled)
	before := f.srv.Calls(vonagetest.LegacyControl)
	if err := p.Cancel(ctx, ref); err != nil || f.srv.Calls(vonagetest.LegacyControl)-before != 3 {
		t.Fatalf("cancel: %v after %d requests", err, f.srv.Calls(vonagetest.LegacyControl)-before)
	}
}

func TestCallTimeoutBoundsRetries(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, func(c *vonage.V2Config) {
		c.Retry = otp.RetryPolicy{MaxRetries: 10, MinWait: time.Millisecond, MaxWait: time.Millisecond, Timeout: 30 * time.Millisecond}
	})
	f.srv.FailNext(vonagetest.V2Check, slices.Repeat([]vonagetest.Fault{{Delay: time.Minute}}, 10)...)
	err := p.Check(context.Background(), otp.Ref{ID: "x"}, "1234")
	mustIs(t, err, otp.ErrProviderUnavailable, context.DeadlineExceeded)
	if n := f.srv.Calls(vonagetest.V2Check); n != 1 {
		t.Fatalf("tries = %d, want 1 within the call's timeout", n)
	}
}

func TestCallerContextCancels(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Send(ctx, sms(testPhone))
	mustIs(t, err, otp.ErrProviderUnavailable, context.Canceled)
	if !providerError(t, err).NotSent {
		t.Fatalf("nothing was sent: %v", err)
	}
}

// TestVendorRetryAfterReachesTheCaller: the wait Vonage asks for on a 429
// it was not retried through is on the error, for otp.RetryAfter.
func TestVendorRetryAfterReachesTheCaller(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	f.srv.FailNext(vonagetest.V2Start, vonagetest.Fault{Status: 429, RetryAfter: "3600"})
	_, err := f.v2(t, nil).Send(context.Background(), sms(testPhone))
	if d, ok := otp.RetryAfter(err); !ok || d != time.Hour {
		t.Fatalf("v2: RetryAfter = %v, %v; want 1h: %v", d, ok, err)
	}
	f.srv.FailNext(vonagetest.LegacyRequest, vonagetest.Fault{Status: 429, RetryAfter: "120"})
	_, err = f.legacy(t, nil).Send(context.Background(), sms(testPhone))
	if d, ok := otp.RetryAfter(err); !ok || d != 2*time.Minute {
		t.Fatalf("legacy: RetryAfter = %v, %v; want 2m: %v", d, ok, err)
	}
	f.srv.FailNext(vonagetest.V2Start, vonagetest.Fault{Status: 500})
	_, err = f.v2(t, nil).Send(context.Background(), sms(testPhone))
	if _, ok := otp.RetryAfter(err); ok {
		t.Fatalf("a 500 without Retry-After has none: %v", err)
	}
}
