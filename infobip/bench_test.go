package infobip_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// benchApp lifts the fake's limits so that only the HTTP path is measured.
var benchApp = infobiptest.AppConfig{PinAttempts: 10, VerifyPinLimit: "1000000000/1s",
	SendPinPerApplicationLimit: "1000000000/1d", SendPinPerPhoneNumberLimit: "1000000000/1d"}

// BenchmarkSendCheck is one Send and one Check through the adapter against
// the fake; "ns/call" is per HTTP call. Compare with BenchmarkBarePOST,
// the same two requests by hand with a keep-alive net/http client.
func BenchmarkSendCheck(b *testing.B) {
	e := newEnv(b, benchApp, infobiptest.Config{}, nil)
	req := otp.SendRequest{To: phone, Channel: otp.SMS, CodeLength: 6}
	b.ReportAllocs()
	for b.Loop() {
		ref, err := e.client.Send(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.client.Check(ctx, ref, "000000"); err == nil {
			b.Fatal("a wrong PIN passed")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/call")
	if n := e.srv.Connections(); n != 1 {
		b.Fatalf("%d connections, want 1", n)
	}
}

func BenchmarkBarePOST(b *testing.B) {
	e := newEnv(b, benchApp, infobiptest.Config{}, nil)
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	post := func(path string, body []byte) []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "App "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("http %d: %s", resp.StatusCode, out)
		}
		return out
	}
	send := []byte(`{"applicationId":"` + e.ids.ApplicationID + `","messageId":"` + e.ids.SMSMessageID + `","to":"` + digits + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		var r struct {
			PinID string `json:"pinId"`
		}
		if err := json.Unmarshal(post("/2fa/2/pin?ncNeeded=false", send), &r); err != nil {
			b.Fatal(err)
		}
		post("/2fa/2/pin/"+r.PinID+"/verify", []byte(`{"pin":"000000"}`))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/call")
}
