package vonage_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp/reusetest"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// benchRig is a fake server with the JWT key registered.
func benchRig(b testing.TB) *vonagetest.Server {
	key, _ := testRSA(b)
	srv := vonagetest.NewServer(vonagetest.Config{APIKey: testKey, APISecret: testSecret, ApplicationID: testAppID, PublicKey: &key.PublicKey})
	b.Cleanup(srv.Close)
	return srv
}

// benchProvider is a V2 on srv, sending with hc.
func benchProvider(b testing.TB, srv *vonagetest.Server, jwtAuth bool, hc *http.Client) *vonage.V2 {
	_, pemKey := testRSA(b)
	cfg := vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme", BaseURL: srv.URL, HTTPClient: hc}
	if jwtAuth {
		cfg.APIKey, cfg.APISecret, cfg.ApplicationID, cfg.PrivateKey = "", "", testAppID, pemKey
	}
	p, err := vonage.NewV2(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// adapterLoop runs Start+Check through the adapter.
func adapterLoop(b *testing.B, srv *vonagetest.Server, p *vonage.V2) {
	ctx := context.Background()
	req := otp.SendRequest{To: testPhone, Channel: otp.SMS, CodeLength: 6}
	b.ReportAllocs()
	for b.Loop() {
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

var bareStart = []byte(`{"brand":"Acme","workflow":[{"channel":"sms","to":"447700900001"}],"code_length":6}`)

// barePoster returns a bare keep-alive net/http POST with Basic auth.
func barePoster(b *testing.B, srv *vonagetest.Server) func(path string, body []byte) []byte {
	hc := srv.Client()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":"+testSecret))
	return func(path string, body []byte) []byte {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
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
}

// bareLoop does the same two calls as adapterLoop with bare POSTs.
func bareLoop(b *testing.B, srv *vonagetest.Server) {
	post := barePoster(b, srv)
	b.ReportAllocs()
	for b.Loop() {
		var r struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(post("/v2/verify", bareStart), &r)
		code, _ := srv.Code(r.RequestID)
		post("/v2/verify/"+r.RequestID, []byte(`{"code":"`+code+`"}`))
	}
}

func BenchmarkStartCheck(b *testing.B) {
	b.Run("bare-post", func(b *testing.B) { bareLoop(b, benchRig(b)) })
	b.Run("adapter-basic", func(b *testing.B) {
		srv := benchRig(b)
		adapterLoop(b, srv, benchProvider(b, srv, false, srv.Client()))
	})
	b.Run("adapter-jwt", func(b *testing.B) {
		srv := benchRig(b)
		adapterLoop(b, srv, benchProvider(b, srv, true, srv.Client()))
		b.ReportMetric(float64(srv.Connections()), "conns")
		b.ReportMetric(float64(srv.TokensSeen()), "tokens")
	})
}

// BenchmarkRatios interleaves one bare Start+Check, one through the adapter
// with Basic auth and one with JWT auth per iteration, against three fake
// servers, and reports each one's ns/op and the ratios adapter-basic/bare
// and adapter-jwt/adapter-basic.
func BenchmarkRatios(b *testing.B) {
	bareSrv, basicSrv, jwtSrv := benchRig(b), benchRig(b), benchRig(b)
	// The adapters and clients are built once, outside the timing.
	steps := make([]func(), 3)
	for i := range steps {
		steps[i] = stepper(b, i, bareSrv, basicSrv, jwtSrv)
	}
	var spent [3]time.Duration
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
	b.ReportMetric(ns(1), "basic-ns/op")
	b.ReportMetric(ns(2), "jwt-ns/op")
	b.ReportMetric(ns(1)/ns(0), "basic/bare")
	b.ReportMetric(ns(2)/ns(1), "jwt/basic")
	b.ReportMetric(float64(basicSrv.Connections()+jwtSrv.Connections()), "adapter-conns")
}

// stepper returns one Start+Check: bare (0), Basic (1) or JWT (2).
func stepper(b *testing.B, kind int, bareSrv, basicSrv, jwtSrv *vonagetest.Server) func() {
	ctx := context.Background()
	switch kind {
	case 0:
		post := barePoster(b, bareSrv)
		return func() {
			var r struct {
				RequestID string `json:"request_id"`
			}
			_ = json.Unmarshal(post("/v2/verify", bareStart), &r)
			code, _ := bareSrv.Code(r.RequestID)
			post("/v2/verify/"+r.RequestID, []byte(`{"code":"`+code+`"}`))
		}
	default:
		srv := map[int]*vonagetest.Server{1: basicSrv, 2: jwtSrv}[kind]
		p := benchProvider(b, srv, kind == 2, srv.Client())
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
}

// TestSequentialCallsShareOneConnection: N sequential Start+Check pairs,
// with either auth, leave their connection reusable (every answer read to
// EOF and closed, the pool never closed, also when an answer exhausts the
// retries; see package reusetest for why this is not a count of TCP
// connections); and JWT auth signs once.
func TestSequentialCallsShareOneConnection(t *testing.T) {
	for _, jwtAuth := range []bool{false, true} {
		srv := benchRig(t)
		hc := srv.Client()
		watch := reusetest.Wrap(hc)
		p := benchProvider(t, srv, jwtAuth, hc)
		ctx := context.Background()
		var ref otp.Ref
		for range 20 {
			var err error
			if ref, err = p.Send(ctx, sms(testPhone)); err != nil {
				t.Fatal(err)
			}
			code, _ := srv.Code(ref.ID)
			if err := p.Check(ctx, ref, code); err != nil {
				t.Fatal(err)
			}
			_ = p.Check(ctx, ref, code) // a 404
		}
		srv.FailNext(vonagetest.V2Check, slices.Repeat([]vonagetest.Fault{{Status: 500}}, 3)...)
		if err := p.Check(ctx, ref, "123456"); !errors.Is(err, otp.ErrProviderUnavailable) {
			t.Fatal(err)
		}
		watch.Check(t, 63)
		if want := map[bool]int{false: 0, true: 1}[jwtAuth]; srv.TokensSeen() != want {
			t.Fatalf("jwt=%v: %d tokens", jwtAuth, srv.TokensSeen())
		}
	}
}
