package twilio_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp/reusetest"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// benchRig is a fake server.
func benchRig(b testing.TB) *twiliotest.Server {
	srv := twiliotest.NewServer(twiliotest.Config{})
	b.Cleanup(srv.Close)
	return srv
}

// benchProvider is a Provider on srv, sending with hc.
func benchProvider(b testing.TB, srv *twiliotest.Server, hc *http.Client) *twilio.Provider {
	p, err := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID,
		AuthToken: twiliotest.AuthToken, BaseURL: srv.URL, HTTPClient: hc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// adapterStep is one Start+Check through the adapter.
func adapterStep(b testing.TB, srv *twiliotest.Server, p *twilio.Provider) func() {
	ctx := context.Background()
	req := otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 6}
	return func() {
		ref, err := p.Send(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		code, _ := srv.Code(ref.ID)
		if err := p.Check(ctx, ref, code); err != nil {
			b.Fatal(err)
		}
	}
}

// bareStep is the same two calls as bare keep-alive net/http POSTs.
func bareStep(b testing.TB, srv *twiliotest.Server) func() {
	hc := srv.Client()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(twiliotest.AccountSID+":"+twiliotest.AuthToken))
	base := srv.URL + "/v2/Services/" + twiliotest.ServiceSID
	post := func(u, form string) []byte {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
		return out
	}
	start := url.Values{"To": {testPhone}, "Channel": {"sms"}}.Encode()
	return func() {
		var v struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(post(base+"/Verifications", start), &v)
		code, _ := srv.Code(v.SID)
		post(base+"/VerificationCheck", url.Values{"VerificationSid": {v.SID}, "Code": {code}}.Encode())
	}
}

func BenchmarkStartCheck(b *testing.B) {
	b.Run("bare-post", func(b *testing.B) {
		step := bareStep(b, benchRig(b))
		b.ReportAllocs()
		for b.Loop() {
			step()
		}
	})
	b.Run("adapter", func(b *testing.B) {
		srv := benchRig(b)
		step := adapterStep(b, srv, benchProvider(b, srv, srv.Client()))
		b.ReportAllocs()
		for b.Loop() {
			step()
		}
		b.ReportMetric(float64(srv.Connections()), "conns")
	})
}

// BenchmarkRatios interleaves one bare Start+Check and one through the
// adapter per iteration, each against a fake server of its own and on one
// keep-alive connection, and reports each one's ns/op and the ratio
// adapter/bare (the target is at most 1.3).
func BenchmarkRatios(b *testing.B) {
	bareSrv, adapterSrv := benchRig(b), benchRig(b)
	// The adapter and the clients are built once, outside the timing.
	steps := []func(){bareStep(b, bareSrv), adapterStep(b, adapterSrv, benchProvider(b, adapterSrv, adapterSrv.Client()))}
	var spent [2]time.Duration
	n := 0
	for b.Loop() {
		for i, step := range steps {
			begin := time.Now()
			step()
			spent[i] += time.Since(begin)
		}
		n++
	}
	ns := func(i int) float64 { return float64(spent[i].Nanoseconds()) / float64(n) }
	b.ReportMetric(ns(0), "bare-ns/op")
	b.ReportMetric(ns(1), "adapter-ns/op")
	b.ReportMetric(ns(1)/ns(0), "adapter/bare")
	b.ReportMetric(float64(adapterSrv.Connections()), "adapter-conns")
}

// TestSequentialCallsShareOneConnection: sequential Start+Check pairs,
// resends and cancels leave their connection reusable (every answer read
// to EOF and closed, the pool never closed, also when an answer exhausts
// the retries; see package reusetest for why this is not a count of TCP
// connections).
func TestSequentialCallsShareOneConnection(t *testing.T) {
	srv := benchRig(t)
	hc := srv.Client()
	watch := reusetest.Wrap(hc)
	p := benchProvider(t, srv, hc)
	ctx := context.Background()
	var ref otp.Ref
	for range 10 {
		var err error
		if ref, err = p.Send(ctx, sms(testPhone)); err != nil {
			t.Fatal(err)
		}
		if err := p.Resend(ctx, ref); err != nil { // a read and a start
			t.Fatal(err)
		}
		code, _ := srv.Code(ref.ID)
		if err := p.Check(ctx, ref, code); err != nil {
			t.Fatal(err)
		}
		_ = p.Check(ctx, ref, code) // a 404
	}
	ref, _ = p.Send(ctx, sms(testPhone))
	srv.FailNext(twiliotest.OpCheck, slices.Repeat([]twiliotest.Fault{{Status: 500}}, 3)...)
	if err := p.Check(ctx, ref, "123456"); !errors.Is(err, otp.ErrProviderUnavailable) {
		t.Fatal(err)
	}
	if err := p.Cancel(ctx, ref); err != nil {
		t.Fatal(err)
	}
	watch.Check(t, 10*5+1+3+1)
}
