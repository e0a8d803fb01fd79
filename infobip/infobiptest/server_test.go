package infobiptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/otptest"
)

// do sends a raw request and decodes the JSON answer.
func do(t *testing.T, srv *infobiptest.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "App "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestWireFormat(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k", Clock: clock})
	defer srv.Close()
	app := srv.AddApplication("a", infobiptest.AppConfig{PinAttempts: 2, PinTimeToLive: "1m", AllowMultiplePinVerifications: true})
	msg := srv.AddMessage(app, infobiptest.Message{Text: "{{pin}}", PinLength: 5, PinType: "HEX"})

	if st, out := do(t, srv, "POST", "/2fa/2/pin", "wrong", `{}`); st != 401 ||
		out["requestError"].(map[string]any)["serviceException"].(map[string]any)["messageId"] != "UNAUTHORIZED" {
		t.Fatalf("wrong key: %d %v", st, out)
	}
	// ncNeeded omitted: Number Lookup runs, as at Infobip.
	st, out := do(t, srv, "POST", "/2fa/2/pin", "k", `{"applicationId":"`+app+`","messageId":"`+msg+`","to":"41793026727"}`)
	if st != 200 || out["ncStatus"] != "NC_DESTINATION_REACHABLE" || out["smsStatus"] != "MESSAGE_SENT" {
		t.Fatalf("send: %d %v", st, out)
	}
	pinID := out["pinId"].(string)
	pin, _ := srv.LastCode("+41793026727")
	if len(pin) != 5 || strings.Trim(pin, "0123456789ABCDEF") != "" {
		t.Fatalf("HEX PIN of 5: %q", pin)
	}
	if srv.Sends()[0].NCNeeded != "" {
		t.Errorf("NCNeeded = %q, want empty when omitted", srv.Sends()[0].NCNeeded)
	}
	verify := func(p string) map[string]any {
		clock.Advance(3 * time.Second) // the default verify limit is 1/3s
		_, out := do(t, srv, "POST", "/2fa/2/pin/"+pinID+"/verify", "k", `{"pin":"`+p+`"}`)
		return out
	}
	if out := verify("x"); out["pinError"] != "WRONG_PIN" || out["attemptsRemaining"] != 1.0 || out["verified"] != false {
		t.Fatalf("wrong: %v", out)
	}
	if out := verify(pin); out["verified"] != true || out["attemptsRemaining"] != 0.0 || out["msisdn"] != "41793026727" {
		t.Fatalf("right: %v", out)
	}
	clock.Advance(time.Minute)
	if out := verify(pin); out["pinError"] != "TTL_EXPIRED" {
		t.Fatalf("expired: %v", out)
	}
	// Verify limit: two verifies inside the window.
	_, _ = do(t, srv, "POST", "/2fa/2/pin/"+pinID+"/verify", "k", `{"pin":"x"}`)
	if st, _ := do(t, srv, "POST", "/2fa/2/pin/"+pinID+"/verify", "k", `{"pin":"x"}`); st != 429 {
		t.Fatalf("verify limit: %d", st)
	}
}

func TestModernEnvelopeAndValidation(t *testing.T) {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k", Envelope: infobiptest.Modern})
	defer srv.Close()
	st, out := do(t, srv, "POST", "/2fa/2/applications", "k", `{"name":"a","configuration":{"pinTimeToLive":"15 minutes"}}`)
	if st != 400 || out["errorCode"] != "E400" {
		t.Fatalf("%d %v", st, out)
	}
	v := out["violations"].([]any)[0].(map[string]any)
	if v["property"] != "configuration.pinTimeToLive" {
		t.Fatalf("violations %v", out["violations"])
	}
	st, out = do(t, srv, "POST", "/2fa/2/applications", "k", `{"name":"a"}`)
	if st != 201 || out["enabled"] != true || out["configuration"].(map[string]any)["sendPinPerPhoneNumberLimit"] != "3/1d" {
		t.Fatalf("create with defaults: %d %v", st, out)
	}
	app := out["applicationId"].(string)
	if st, _ := do(t, srv, "POST", "/2fa/2/applications/"+app+"/messages", "k", `{"messageText":"no pin","pinType":"NUMERIC"}`); st != 400 {
		t.Fatalf("template without {{pin}}: %d", st)
	}
	if st, _ := do(t, srv, "POST", "/2fa/2/pin", "k", `{"applicationId":"`+app+`","messageId":"nope","to":"41793026727"}`); st != 404 {
		t.Fatalf("unknown template: %d", st)
	}
}

func TestSendLimitAndUndeliverable(t *testing.T) {
	clock := otptest.NewClock(time.Time{})
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k", Clock: clock, Undeliverable: []string{"41000000000"}})
	defer srv.Close()
	app := srv.AddApplication("a", infobiptest.AppConfig{SendPinPerPhoneNumberLimit: "2/1h"})
	msg := srv.AddMessage(app, infobiptest.Message{Text: "{{pin}}"})
	send := func(to string) (int, map[string]any) {
		return do(t, srv, "POST", "/2fa/2/pin/voice", "k", `{"applicationId":"`+app+`","messageId":"`+msg+`","to":"`+to+`"}`)
	}
	for range 2 {
		if st, out := send("41793026727"); st != 200 || out["callStatus"] != "PENDING_ACCEPTED" {
			t.Fatalf("%d %v", st, out)
		}
	}
	if st, _ := send("41793026727"); st != 429 {
		t.Fatalf("third send in an hour: %d", st)
	}
	clock.Advance(time.Hour)
	if st, _ := send("41793026727"); st != 200 {
		t.Fatalf("after the window: %d", st)
	}
	if st, out := send("41000000000"); st != 200 || out["callStatus"] != "REJECTED_DESTINATION" {
		t.Fatalf("undeliverable: %d %v", st, out)
	}
	if _, ok := srv.LastCode("41000000000"); ok {
		t.Fatal("an undeliverable PIN is readable")
	}
	if got := srv.Calls(infobiptest.OpSend); got != 5 {
		t.Fatalf("Requests(OpSend) = %d, want 5", got)
	}
}

// TestFaults: FailNext replaces the script of its Op and FailNext(op)
// clears it, as otptest.Provider's does; a Delay with Status 0 then
// handles the request; a Delay longer than the client waits is a hang that
// Close ends.
func TestFaults(t *testing.T) {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k"})
	status := func() int {
		st, _ := do(t, srv, "POST", "/2fa/2/pin/x/verify", "k", `{"pin":"1"}`)
		return st
	}
	srv.FailNext(infobiptest.OpVerify, infobiptest.Fault{Status: 500}, infobiptest.Fault{Status: 500})
	srv.FailNext(infobiptest.OpVerify, infobiptest.Fault{Status: 503}, infobiptest.Fault{Delay: time.Millisecond})
	if got := []int{status(), status(), status()}; got[0] != 503 || got[1] != 404 || got[2] != 404 {
		t.Fatalf("statuses %v, want the replacing 503, then the delayed and the real 404", got)
	}
	srv.FailNext(infobiptest.OpVerify, infobiptest.Fault{Status: 500})
	srv.FailNext(infobiptest.OpVerify)
	if got := status(); got != 404 || srv.Calls(infobiptest.OpVerify) != 4 {
		t.Fatalf("cleared script: %d after %d calls", got, srv.Calls(infobiptest.OpVerify))
	}

	srv.FailNext(infobiptest.OpVerify, infobiptest.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := http.Post(srv.URL+"/2fa/2/pin/x/verify", "application/json", strings.NewReader(`{}`))
		errc <- err
	}()
	for srv.Calls(infobiptest.OpVerify) == 4 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the hung request")
	}
	if err := <-errc; err == nil {
		t.Fatal("the hung request got an answer")
	}
}
