package infobip

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// Seeds are the fact sheet's examples and their broken variants.
var (
	sendSeeds = []string{
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"41793026727","ncStatus":"NC_DESTINATION_REACHABLE","smsStatus":"MESSAGE_SENT"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"41793026727","ncStatus":"NC_DESTINATION_NOT_REACHABLE","smsStatus":"MESSAGE_NOT_SENT"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"41793026727","smsStatus":"MESSAGE_NOT_SENT"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"41793026727","callStatus":"PENDING_ACCEPTED"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"jane@example.com","emailStatus":{"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","to":"41793026727","smsStatus":"MESSAGE_SENT","externalMessageId":"8b2c1a6e-2d2a-4f1e-9a47-0d2f5c9c2f11"}`,
		`{"pinId":"","smsStatus":"MESSAGE_SENT"}`, `{"pinId":null}`, `{"pinId":"a b"}`, `null`, `[]`, `{}`, ``,
		`<html>502 Bad Gateway</html>`, `{"pinId":"9C817C6F8AF3D48F`, `{"pinId":"X"}garbage`,
	}
	verifySeeds = []string{
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","msisdn":"41793026727","verified":true,"attemptsRemaining":0}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","msisdn":"41793026727","verified":false,"attemptsRemaining":2,"pinError":"WRONG_PIN"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","verified":false,"attemptsRemaining":0,"pinError":"WRONG_PIN"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","verified":false,"attemptsRemaining":3,"pinError":"TTL_EXPIRED"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","verified":false,"attemptsRemaining":0,"pinError":"NO_MORE_PIN_ATTEMPTS"}`,
		`{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","verified":false,"pinError":"PIN_EXPIRED"}`,
		`{"verified":true}`, `{"verified":"true"}`, `{"verified":1}`, `{"attemptsRemaining":-5,"verified":false}`,
		`null`, `true`, ``, `<html></html>`, `{"pinId":"9C817C6F8AF3D48F9FE553282AFA2B67","verified":tr`,
	}
	errorSeeds = []string{
		`{"requestError":{"serviceException":{"messageId":"BAD_REQUEST","text":"Bad request","validationErrors":{"to":["invalid destination address"]}}}}`,
		`{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`,
		`{"requestError":{"serviceException":{"messageId":"RESOURCE_NOT_FOUND","text":"Application or message with given ID cannot be found."}}}`,
		`{"requestError":{"serviceException":{"messageId":"GENERAL_ERROR","text":"Something went wrong. Please contact support."}}}`,
		`{"errorCode":"E429","description":"Too many requests sent.","action":"Slow down.","violations":[{"property":"to","violation":"x"}],"resources":[{"name":"docs","url":"https://www.infobip.com/docs"}]}`,
		`{"requestError":{"serviceException":{"validationErrors":{"to":"not a list"}}}}`, `{"errorCode":7}`, ``, `<html>`, `{"requestError":`,
	}
	appSeeds = []string{
		`{"applicationId":"0933F3BC087D2A617AC6DCB2EF5B8A61","name":"2fa test application","enabled":true,"configuration":{"pinAttempts":10,"allowMultiplePinVerifications":true,"pinTimeToLive":"15m","verifyPinLimit":"1/3s","sendPinPerApplicationLimit":"10000/1d","sendPinPerPhoneNumberLimit":"3/1d"}}`,
		`{"applicationId":"1234567","name":"a"}`, `{"name":"no id"}`, `{"applicationId":""}`, `null`, ``, `<html>`,
	}
	messageSeeds = []string{
		`{"messageId":"9C815F8AF3328","applicationId":"HJ675435E3A6EA43432G5F37A635KJ8B","pinPlaceholder":"{{pin}}","messageText":"Your PIN is {{pin}}.","pinLength":4,"pinType":"NUMERIC","language":"en","senderId":"Infobip 2FA","repeatDTMF":"1#","speechRate":1}`,
		`{"messageId":"B628A31410306DDB2BFB0D9CF1F3A3FF","emailTemplateId":1234,"pinLength":4,"pinType":"NUMERIC","from":"a@example.com"}`,
		`{"messageText":"no id {{pin}}"}`, `{"messageId":5}`, `null`, ``, `<html>`,
	}
)

func FuzzDecodeSend(f *testing.F) {
	for _, s := range sendSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := decodeSend(body)
		if err != nil {
			if id != "" {
				t.Fatalf("error %v with pin ID %q", err, id)
			}
			return
		}
		// Success: the body really is an object naming this pin ID and no failure.
		r, ok := topLevel(body)
		if !ok || !vendorhttp.ValidID(id) || asString(r, "pinId") != id {
			t.Fatalf("success %q from %q", id, body)
		}
		for _, k := range []string{"smsStatus", "callStatus"} {
			if failedDelivery(asString(r, k)) {
				t.Fatalf("success with %s failed: %q", k, body)
			}
		}
	})
}

func FuzzDecodeVerify(f *testing.F) {
	for _, s := range verifySeeds {
		f.Add([]byte(s), "9C817C6F8AF3D48F9FE553282AFA2B67")
	}
	f.Fuzz(func(t *testing.T, body []byte, pinID string) {
		err := decodeVerify(pinID, body)
		if err != nil {
			var vf *vendorFailure
			if !errors.As(err, &vf) && !errors.Is(err, otp.ErrWrongCode) && !errors.Is(err, otp.ErrExpired) &&
				!errors.Is(err, otp.ErrTooManyAttempts) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		r, ok := topLevel(body)
		if !ok || r["verified"] != true || asString(r, "pinId") != pinID || asString(r, "pinError") != "" {
			t.Fatalf("verified from %q for pin %q", body, pinID)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	for _, s := range errorSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := decodeError(body)
		if len(e.status) > vendorhttp.MaxText || strings.ContainsFunc(e.status, func(r rune) bool { return r < ' ' }) {
			t.Fatalf("status %q is not short and printable", e.status)
		}
	})
}

func FuzzDecodeSetup(f *testing.F) {
	for _, s := range appSeeds {
		f.Add([]byte(s))
		f.Add([]byte("[" + s + "]"))
	}
	for _, s := range messageSeeds {
		f.Add([]byte(s))
		f.Add([]byte("[" + s + "]"))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if a, err := decodeApplication(body); err == nil && !vendorhttp.ValidID(a.ID) {
			t.Fatalf("application without an ID from %q", body)
		}
		if as, err := decodeApplications(body); err == nil {
			for _, a := range as {
				if !vendorhttp.ValidID(a.ID) {
					t.Fatalf("listed application without an ID from %q", body)
				}
			}
		}
		if m, err := decodeMessage(body); err == nil && !vendorhttp.ValidID(m.ID) {
			t.Fatalf("message without an ID from %q", body)
		}
		if ms, err := decodeMessages(body); err == nil {
			for _, m := range ms {
				if !vendorhttp.ValidID(m.ID) {
					t.Fatalf("listed message without an ID from %q", body)
				}
			}
		}
	})
}

// topLevel returns the last value of each top-level key of the JSON object
// body, keys folded to lower case, as encoding/json matches them onto a
// struct; ok is false when body is not one object.
func topLevel(body []byte) (map[string]any, bool) {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if _, err := dec.Token(); err != nil { // {
		return nil, false
	}
	out := map[string]any{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out[strings.ToLower(k.(string))] = v
	}
	return out, true
}

func asString(r map[string]any, k string) string {
	s, _ := r[strings.ToLower(k)].(string)
	return s
}

// The seeds themselves decode as the fact sheet says.
func TestSeedsDecode(t *testing.T) {
	if id, err := decodeSend([]byte(sendSeeds[0])); err != nil || id != "9C817C6F8AF3D48F9FE553282AFA2B67" {
		t.Errorf("send seed: %q, %v", id, err)
	}
	if err := decodeVerify("9C817C6F8AF3D48F9FE553282AFA2B67", []byte(verifySeeds[0])); err != nil {
		t.Errorf("verify seed: %v", err)
	}
	if e := decodeError([]byte(errorSeeds[0])); e.status != "BAD_REQUEST" || !e.field("to") {
		t.Errorf("legacy error: %+v", e)
	}
	if e := decodeError([]byte(errorSeeds[4])); e.status != "E429" || !e.field("to") {
		t.Errorf("modern error: %+v", e)
	}
	if e := decodeError([]byte(errorSeeds[5])); e.status != "" || !e.field("to") {
		t.Errorf("odd validationErrors: %+v", e)
	}
	if a, err := decodeApplication([]byte(appSeeds[0])); err != nil || a.Config.PinAttempts != 10 || !a.Config.AllowMultiplePinVerifications {
		t.Errorf("application seed: %+v, %v", a, err)
	}
	if a, err := decodeApplication([]byte(appSeeds[1])); err != nil || a.Disabled || !a.Config.AllowMultiplePinVerifications {
		t.Errorf("application without enabled/configuration gets Infobip's defaults: %+v, %v", a, err)
	}
	if m, err := decodeMessage([]byte(messageSeeds[0])); err != nil || m.PinLength != 4 || m.RepeatDTMF != "1#" {
		t.Errorf("message seed: %+v, %v", m, err)
	}
}
