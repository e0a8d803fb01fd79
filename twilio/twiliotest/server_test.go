package twiliotest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

type rig struct {
	t     *testing.T
	s     *twiliotest.Server
	clock *otptest.Clock
}

func newRig(t *testing.T, cfg twiliotest.Config) *rig {
	clock := otptest.NewClock(time.Time{})
	cfg.Clock = clock
	s := twiliotest.NewServer(cfg)
	t.Cleanup(s.Close)
	return &rig{t: t, s: s, clock: clock}
}

// do sends a request with the account identity and returns the status and
// the JSON body.
func (r *rig) do(method, path string, form url.Values) (int, map[string]any) {
	return r.doAs(twiliotest.AccountSID, twiliotest.AuthToken, method, path, form)
}

func (r *rig) doAs(user, pass, method, path string, form url.Values) (int, map[string]any) {
	r.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, r.s.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

const svc = "/v2/Services/" + twiliotest.ServiceSID

func start(to, ch string) url.Values { return url.Values{"To": {to}, "Channel": {ch}} }

func code(m map[string]any) int {
	f, _ := m["code"].(float64)
	return int(f)
}

func TestLifecycleChecks(t *testing.T) {
	for _, maxStatus := range []int{0, 404} {
		r := newRig(t, twiliotest.Config{Code: "123456", MaxChecksStatus: maxStatus})
		st, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
		sid, _ := m["sid"].(string)
		if st != 201 || m["status"] != "pending" || m["valid"] != false || !strings.HasPrefix(sid, "VE") || len(sid) != 34 {
			t.Fatalf("start: %d %v", st, m)
		}
		if st, m := r.do("GET", svc+"/Verifications/"+sid, nil); st != 200 || m["to"] != "+14155550100" || m["channel"] != "sms" {
			t.Fatalf("fetch: %d %v", st, m)
		}
		check := url.Values{"VerificationSid": {sid}, "Code": {"000000"}}
		for i := range 5 {
			if st, m := r.do("POST", svc+"/VerificationCheck", check); st != 200 || m["status"] != "pending" || m["valid"] != false {
				t.Fatalf("wrong code %d: %d %v", i+1, st, m)
			}
		}
		check.Set("Code", "123456") // right, but too late
		st, m = r.do("POST", svc+"/VerificationCheck", check)
		want := map[int]int{0: 429, 404: 404}[maxStatus]
		if st != want || want == 429 && code(m) != 60202 {
			t.Fatalf("sixth check: %d %v, want %d", st, m, want)
		}
		if st, _ := r.do("POST", svc+"/VerificationCheck", check); st != 404 {
			t.Fatalf("later check: %d", st)
		}
		if s, _ := r.s.State(sid); s != "max_attempts_reached" {
			t.Fatal(s)
		}
	}
}

func TestLifecycleApprovalAndExpiry(t *testing.T) {
	r := newRig(t, twiliotest.Config{})
	_, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
	sid := m["sid"].(string)
	c, _ := r.s.LastCode("+14155550100")
	if len(c) != 6 {
		t.Fatalf("code %q", c)
	}
	if st, m := r.do("POST", svc+"/VerificationCheck", url.Values{"To": {"+14155550100"}, "Code": {c}}); st != 200 || m["status"] != "approved" || m["valid"] != true {
		t.Fatalf("by To: %d %v", st, m)
	}
	for _, path := range []string{svc + "/VerificationCheck", svc + "/Verifications/" + sid} {
		method, form := "POST", url.Values{"VerificationSid": {sid}, "Code": {c}}
		if !strings.HasSuffix(path, "Check") {
			method, form = "GET", nil
		}
		if st, m := r.do(method, path, form); st != 404 || code(m) != 20404 {
			t.Fatalf("after approval %s: %d %v", path, st, m)
		}
	}
	// Expiry by the clock: ten minutes.
	_, m = r.do("POST", svc+"/Verifications", start("+14155550101", "call"))
	sid = m["sid"].(string)
	r.clock.Advance(10*time.Minute - time.Second)
	if st, _ := r.do("GET", svc+"/Verifications/"+sid, nil); st != 200 {
		t.Fatal("expired early")
	}
	r.clock.Advance(time.Second)
	if st, _ := r.do("POST", svc+"/VerificationCheck", url.Values{"VerificationSid": {sid}, "Code": {"123456"}}); st != 404 {
		t.Fatal("an expired verification was checked")
	}
	if s, _ := r.s.State(sid); s != "expired" || r.s.Pending() != 0 {
		t.Fatal(s, r.s.Pending())
	}
}

func TestResendsKeepTheSID(t *testing.T) {
	r := newRig(t, twiliotest.Config{})
	var sid string
	for i := range 5 {
		_, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
		if i == 0 {
			sid = m["sid"].(string)
		}
		if m["sid"] != sid || len(m["send_code_attempts"].([]any)) != i+1 {
			t.Fatalf("send %d: %v", i+1, m)
		}
	}
	if st, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms")); st != 429 || code(m) != 60203 {
		t.Fatalf("sixth send: %d %v", st, m)
	}
	sends := r.s.Sends()
	if len(sends) != 5 || !sends[4].Resend || sends[0].Resend || sends[4].Code != sends[0].Code {
		t.Fatalf("sends %+v", sends)
	}
	// A cancel clears it: the next start is a new verification.
	if st, m := r.do("POST", svc+"/Verifications/"+sid, url.Values{"Status": {"canceled"}}); st != 200 || m["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", st, m)
	}
	_, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
	if m["sid"] == sid {
		t.Fatal("a start after a cancel kept the SID")
	}
	sid = m["sid"].(string)
	// Another channel: same SID by default, a new one when configured.
	_, m = r.do("POST", svc+"/Verifications", start("+14155550100", "call"))
	if m["channel"] != "call" || m["sid"] != sid {
		t.Fatalf("channel change: %v", m)
	}
	r2 := newRig(t, twiliotest.Config{NewSIDOnChannelChange: true})
	_, a := r2.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
	_, b := r2.do("POST", svc+"/Verifications", start("+14155550100", "call"))
	if a["sid"] == b["sid"] || r2.s.Pending() != 1 {
		t.Fatalf("NewSIDOnChannelChange: %v %v", a["sid"], b["sid"])
	}
}

func TestAuthAndRoutes(t *testing.T) {
	r := newRig(t, twiliotest.Config{})
	if st, _ := r.doAs(twiliotest.APIKeySID, twiliotest.APIKeySecret, "POST", svc+"/Verifications", start("+14155550100", "sms")); st != 201 {
		t.Fatal("api key refused", st)
	}
	if st, m := r.doAs(twiliotest.AccountSID, "wrong", "POST", svc+"/Verifications", start("+14155550100", "sms")); st != 401 || code(m) != 20003 {
		t.Fatal(st, m)
	}
	if st, m := r.do("POST", "/v2/Services/VAffffffffffffffffffffffffffffffff/Verifications", start("+14155550100", "sms")); st != 404 || code(m) != 20404 {
		t.Fatal(st, m)
	}
	if got := r.s.Sends(); len(got) != 1 || got[0].Identity != "api key" {
		t.Fatalf("%+v", got)
	}
	if r.s.Calls(twiliotest.OpStart) != 3 {
		t.Fatal(r.s.Calls(twiliotest.OpStart))
	}
}

func TestStartParameters(t *testing.T) {
	r := newRig(t, twiliotest.Config{Channels: []string{"sms", "call"},
		Refuse: map[string]int{"+14155550190": 60410, "+14155550191": 60605, "+14155550192": 60205}})
	with := func(to, ch string, kv ...string) url.Values {
		f := start(to, ch)
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, tc := range []struct {
		form         url.Values
		status, code int
	}{
		{with("+14155550100", "whatsapp"), 400, 60223},
		{with("+14155550100", "fax"), 400, 60200},
		{with("14155550100", "sms"), 400, 60200},
		{with("+14155550100", "sms", "CustomCode", "1234"), 403, 60204},
		{with("+14155550100", "sms", "CustomFriendlyName", "Acme"), 403, 60204},
		{with("+14155550100", "call", "AppHash", "abcdefghijk"), 400, 60602},
		{with("+14155550100", "call", "TemplateSid", "HJ0123456789abcdef0123456789abcdef"), 400, 60408},
		{with("+14155550100", "sms", "RateLimits", "not json"), 400, 60200},
		{with("+14155550100", "sms", "DeviceIp", "nope"), 400, 60200},
		{with("+14155550100", "sms", "RiskCheck", "maybe"), 400, 60200},
		{with("+14155550190", "sms"), 403, 60410},
		{with("+14155550191", "call"), 403, 60605},
		{with("+14155550192", "sms"), 403, 60205},
	} {
		if st, m := r.do("POST", svc+"/Verifications", tc.form); st != tc.status || code(m) != tc.code {
			t.Errorf("%v: %d %v, want %d/%d", tc.form, st, m, tc.status, tc.code)
		}
	}
	// RiskCheck=disable lets an SMS past the fraud blocks, not past a landline.
	if st, _ := r.do("POST", svc+"/Verifications", with("+14155550190", "sms", "RiskCheck", "disable")); st != 201 {
		t.Fatal("RiskCheck=disable", st)
	}
	if st, _ := r.do("POST", svc+"/Verifications", with("+14155550192", "sms", "RiskCheck", "disable")); st != 403 {
		t.Fatal("landline bypassed", st)
	}
	ok := with("+14155550100", "sms", "AppHash", "abcdefghijk", "Locale", "pt-BR", "RateLimits", `{"end_user_ip_address":"203.0.113.7"}`, "DeviceIp", "203.0.113.7")
	if st, _ := r.do("POST", svc+"/Verifications", ok); st != 201 {
		t.Fatal(st)
	}
	last := r.s.Sends()[len(r.s.Sends())-1]
	if last.Params.Get("Locale") != "pt-BR" || last.Params.Get("DeviceIp") != "203.0.113.7" {
		t.Fatalf("params %v", last.Params)
	}
	r3 := newRig(t, twiliotest.Config{CustomCodes: true})
	if _, m := r3.do("POST", svc+"/Verifications", with("+14155550100", "sms", "CustomCode", "424242")); m["status"] != "pending" {
		t.Fatal(m)
	}
	if c, _ := r3.s.LastCode("+14155550100"); c != "424242" {
		t.Fatal(c)
	}
}

func TestFaults(t *testing.T) {
	r := newRig(t, twiliotest.Config{})
	r.s.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 500}, twiliotest.Fault{Status: 500})
	r.s.FailNext(twiliotest.OpCheck, twiliotest.Fault{Status: 429, Code: 60202, RetryAfter: "3"})
	check := url.Values{"VerificationSid": {"VE0123456789abcdef0123456789abcdef"}, "Code": {"1234"}}
	if st, m := r.do("POST", svc+"/VerificationCheck", check); st != 429 || code(m) != 60202 {
		t.Fatalf("replacing fault: %d %v", st, m)
	}
	if st, _ := r.do("POST", svc+"/VerificationCheck", check); st != 404 {
		t.Fatalf("after the script: %d", st)
	}
	r.s.FailNext(twiliotest.OpFetch, twiliotest.Fault{Status: 503})
	r.s.FailNext(twiliotest.OpFetch)
	if st, _ := r.do("GET", svc+"/Verifications/VE0123456789abcdef0123456789abcdef", nil); st != 404 {
		t.Fatalf("cleared script: %d", st)
	}
	r.s.FailNext(twiliotest.OpStart, twiliotest.Fault{Drop: true})
	req, _ := http.NewRequest("POST", r.s.URL+svc+"/Verifications", strings.NewReader("To=%2B14155550100&Channel=sms"))
	if _, err := http.DefaultTransport.RoundTrip(req); err == nil {
		t.Fatal("a dropped connection answered")
	}
	if r.s.Calls(twiliotest.OpCheck) != 2 || r.s.Calls(twiliotest.OpStart) != 1 || len(r.s.Sends()) != 0 {
		t.Fatal(r.s.Calls(twiliotest.OpCheck), r.s.Calls(twiliotest.OpStart))
	}
}

// TestCloseReleasesDelays: a Delay longer than any client's patience is a
// hang, and Close ends it.
func TestCloseReleasesDelays(t *testing.T) {
	s := twiliotest.NewServer(twiliotest.Config{})
	s.FailNext(twiliotest.OpCheck, twiliotest.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := http.Post(s.URL+svc+"/VerificationCheck", "application/x-www-form-urlencoded", strings.NewReader("Code=1234"))
		errc <- err
	}()
	for s.Calls(twiliotest.OpCheck) == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the delayed request")
	}
	if err := <-errc; err == nil {
		t.Fatal("the hung request got an answer")
	}
}

// TestSignaturesAndEvents: the fake's signatures pass the adapter's
// validators, and its events are Twilio's shape.
func TestSignaturesAndEvents(t *testing.T) {
	r := newRig(t, twiliotest.Config{})
	_, m := r.do("POST", svc+"/Verifications", start("+14155550100", "sms"))
	body, ok := r.s.Event(m["sid"].(string), "approved")
	if !ok {
		t.Fatal("no event")
	}
	var evs []map[string]any
	if err := json.Unmarshal(body, &evs); err != nil || len(evs) != 1 || evs[0]["type"] != "com.twilio.accountsecurity.verify.verification.approved" {
		t.Fatalf("%s", body)
	}
	u := "https://hooks.example.com/twilio/events"
	signed, sig := twiliotest.SignJSON("tok", u, body)
	if !twilio.ValidateBody("tok", signed, body, sig) || twilio.ValidateBody("other", signed, body, sig) {
		t.Fatal("SignJSON")
	}
	if !twilio.ValidateBody("tok", u, body, twiliotest.SignBody("tok", u, body)) {
		t.Fatal("SignBody")
	}
	form := url.Values{"b": {"2", "1"}, "a": {"x"}}
	if !twilio.ValidateSignature("tok", u, form, twiliotest.Sign("tok", u, form)) {
		t.Fatal("Sign")
	}
	if _, ok := r.s.Event("VEnope", "approved"); ok {
		t.Fatal("an event for an unknown SID")
	}
}
