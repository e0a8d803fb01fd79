package twilio

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

const fuzzSID = "VE0123456789abcdef0123456789abcdef"

// seeds are the fact sheet's bodies plus broken variants.
var seeds = []struct {
	status int
	body   string
}{
	{201, `{"sid":"VE0123456789abcdef0123456789abcdef","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sms","status":"pending","valid":false,"send_code_attempts":[{"time":"2015-07-30T20:00:00Z","channel":"SMS","attempt_sid":"VLaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}`},
	{200, `{"sid":"VE0123456789abcdef0123456789abcdef","status":"approved","valid":true}`},
	{200, `{"sid":"VE0123456789abcdef0123456789abcdef","status":"pending","valid":false}`},
	{200, `{"sid":"VE0123456789abcdef0123456789abcdef","status":"canceled","valid":false}`},
	{200, `{"sid":"VE0123456789abcdef0123456789abcdef","status":"max_attempts_reached"}`},
	{400, `{"code":60200,"message":"Invalid parameter ` + "`To`" + `: +15017122661","more_info":"https://www.twilio.com/docs/errors/60200","status":400}`},
	{401, `{"status":401,"message":"Authenticate","code":20003,"more_info":"http://www.twilio.com/docs/errors/20003"}`},
	{404, `{"code":20404,"message":"The requested resource /Services/VAaaaaaaaa/VerificationCheck was not found","status":404}`},
	{429, `{"code":20429,"message":"Too many requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`},
	{429, `{"code":60202,"message":"Max check attempts reached","status":429}`},
	{429, `{"code":"60203","message":"Max send attempts reached"}`},
	{403, `{"code":60410,"message":"Verification delivery attempt blocked","status":403}`},
	{500, `<html>oops</html>`},
	{200, ``}, {200, `null`}, {200, `[]`}, {201, `{"sid":"VE0123`}, {200, `{"sid":5}`}, {200, `"pending"`},
}

// FuzzAnswer: any answer maps to success only when it is a 2xx with the
// operation's body; everything else is a classed *otp.ProviderError whose
// text holds no digit run of the body. Never a panic.
func FuzzAnswer(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	p, err := New(Config{ServiceSID: "VA0123456789abcdef0123456789abcdef", AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "t"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r := vendorhttp.Reply{Status: status, Body: body, Header: http.Header{}}
		classed := func(op string, err error) {
			var pe *otp.ProviderError
			if !errors.As(err, &pe) || !(errors.Is(err, otp.ErrProviderRejected) || errors.Is(err, otp.ErrProviderUnavailable) || errors.Is(err, otp.ErrProviderAccount)) {
				t.Fatalf("%s: %v is not a classed provider error", op, err)
			}
			if msg := err.Error(); strings.Contains(msg, "15017122661") {
				t.Fatalf("%s: error %q shows a number", op, msg)
			}
		}
		object := status/100 == 2 && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && json.Valid(body)
		id, err := p.startOutcome(otp.OpStart, r)
		if err == nil && (!object || !verificationSIDRE.MatchString(id)) {
			t.Fatalf("start: %d %q became %q", status, body, id)
		} else if err != nil {
			classed("start", err)
		}
		if err := p.checkOutcome(fuzzSID, r); err == nil && !object {
			t.Fatalf("check: %d %q became a success", status, body)
		} else if err != nil {
			classed("check", err)
		}
		if _, _, err := p.fetchOutcome(fuzzSID, r); err == nil && !object {
			t.Fatalf("fetch: %d %q became pending", status, body)
		} else if err != nil {
			classed("fetch", err)
		}
		if err := p.cancelOutcome(fuzzSID, r); err == nil && !object {
			t.Fatalf("cancel: %d %q became a success", status, body)
		} else if err != nil {
			classed("cancel", err)
		}
	})
}

// FuzzErrorBody: decodeError never fails and the outcome table always
// gives a kind; a 5xx is always unavailable; final is true only for a
// 429.
func FuzzErrorBody(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		ae := decodeError(body)
		for _, op := range []otp.Op{otp.OpStart, otp.OpCheck, otp.OpCancel, opFetch} {
			kind, sentinels := classify(op, status, ae)
			if kind != otp.ProviderRejected && kind != otp.ProviderUnavailable && kind != otp.ProviderAccount {
				t.Fatalf("kind %v", kind)
			}
			if status >= 500 && kind != otp.ProviderUnavailable {
				t.Fatalf("%d: %v", status, kind)
			}
			_ = withText(ae.message, sentinels...).Error()
		}
		if final(status, body) && status != http.StatusTooManyRequests {
			t.Fatalf("final %d", status)
		}
		_ = invalidParam(ae.message)
	})
}

// FuzzEvents: decodeEvents never panics; every event it returns has a
// verification SID, a status and an ID, and its otp.Event never shows the
// destination.
func FuzzEvents(f *testing.F) {
	f.Add([]byte(`[{"specversion":"1.0","type":"com.twilio.accountsecurity.verify.verification.approved","id":"EZ1","data":{"verification_sid":"VE1","to":"+14155550100","verification_status":"APPROVED","country":"US","created_at":"2024-01-01T10:00:00Z","verified_at":"2024-01-01T10:00:42Z","send_code_attempts":{"count":1,"attempts":[{"channel":"SMS"}]}}}]`))
	f.Add([]byte(`{"type":"com.twilio.accountsecurity.verify.verification.expired","id":"EZ2","data":{"verification_sid":"VE2","to":"jane@example.com"}}`))
	f.Add([]byte(`[{"type":"com.twilio.messaging.message.delivered","id":"x","data":null}]`))
	f.Add([]byte(`[{"type":"com.twilio.accountsecurity.verify.attempt-dlr","id":"x","data":{"verification_sid":"VE3","verification_status":"pending"}}]`))
	for _, s := range []string{``, `null`, `[]`, `[null]`, `[1]`, `{"type":1}`, `[{"type":"com.twilio.accountsecurity.verify.verification.","id":"a","data":{}}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := decodeEvents(body)
		if err != nil {
			return
		}
		for _, ve := range evs {
			if ve.VerificationSID == "" || ve.Status == "" || ve.ID == "" || !strings.HasPrefix(ve.Type, verifyTypes) {
				t.Fatalf("%+v", ve)
			}
			ev, ok := verifyEvent(ve)
			if ok && len(ve.To) > 5 && ev.To == ve.To {
				t.Fatalf("unmasked destination %q", ev.To)
			}
			if ev.Err != nil {
				_ = ev.Err.Error()
			}
		}
	})
}

// FuzzSignature: the validators never panic; what the signer signs
// validates, with the default port added or removed; a flipped byte of
// the signature or of the body never does.
func FuzzSignature(f *testing.F) {
	f.Add("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", "Digits", "1234", []byte(`{"property": "value", "boolean": true}`))
	f.Add("t", "http://[::1]:80/x", "", "", []byte(""))
	f.Add("t", "https://h:443/?bodySHA256=00", "a", "b", []byte("x"))
	f.Add("t", "%zz", "k", "v", []byte("{}"))
	f.Fuzz(func(t *testing.T, token, rawURL, key, value string, body []byte) {
		params := url.Values{key: {value}}
		_ = ValidateSignature(token, rawURL, params, string(body))
		_ = ValidateBody(token, rawURL, body, value)
		if token == "" {
			return
		}
		sig := sign(token, rawURL+key+value)
		if !ValidateSignature(token, rawURL, params, sig) {
			t.Fatalf("own form signature refused: %q %q", rawURL, sig)
		}
		for _, v := range portVariants(rawURL) {
			if !ValidateSignature(token, v, params, sig) {
				t.Fatalf("port variant %q of %q refused", v, rawURL)
			}
		}
		flipped := []byte(sig)
		flipped[0] ^= 1
		if ValidateSignature(token, rawURL, params, string(flipped)) && string(flipped) != sig {
			t.Fatal("a flipped signature validated")
		}
		if u, err := url.Parse(rawURL); err == nil && u.Query().Get("bodySHA256") == "" {
			bs := sign(token, rawURL+string(body))
			if !ValidateBody(token, rawURL, body, bs) {
				t.Fatal("own body signature refused")
			}
			if ValidateBody(token, rawURL, append(body, 'x'), bs) && sign(token, rawURL+string(body)+"x") != bs {
				t.Fatal("a longer body validated")
			}
		}
	})
}

func sign(token, data string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
