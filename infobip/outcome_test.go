package infobip_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/otpkit/otp"
)

const pinID = "9C817C6F8AF3D48F9FE553282AFA2B67"

// Error bodies in both envelopes, as the fact sheet quotes them.
func legacy(id, text string) string {
	return `{"requestError":{"serviceException":{"messageId":"` + id + `","text":"` + text + `"}}}`
}

func modern(code, desc string) string {
	return `{"errorCode":"` + code + `","description":"` + desc + `","action":"","violations":[],"resources":[]}`
}

// class is what a row expects of the error.
type class int

const (
	success     class = iota
	rejected          // *otp.ProviderError, Kind ProviderRejected
	unavailable       // *otp.ProviderError, Kind ProviderUnavailable
	account           // *otp.ProviderError, Kind ProviderAccount
	user              // a core sentinel, not a *otp.ProviderError
)

// TestOutcomes has one row per case of the fact sheet: every answer maps
// to success, a person's outcome, or a vendor failure of the right class.
func TestOutcomes(t *testing.T) {
	verified := `{"pinId":"` + pinID + `","msisdn":"41793026727","verified":true,"attemptsRemaining":0}`
	notVerified := func(pinError string, left int) string {
		s := `{"pinId":"` + pinID + `","msisdn":"41793026727","verified":false,"attemptsRemaining":` + string(rune('0'+left))
		if pinError != "" {
			s += `,"pinError":"` + pinError + `"`
		}
		return s + "}"
	}
	sent := func(extra string) string { return `{"pinId":"` + pinID + `","to":"41793026727"` + extra + `}` }
	tests := []struct {
		name    string
		op      otp.Op // OpStart (SMS unless channel), OpCheck or OpResend
		channel otp.Channel
		status  int
		header  http.Header
		body    string
		class   class
		is      []error // errors.Is must hold for each
		vendor  string  // want VendorStatus of a *otp.ProviderError
		notSent bool    // want NotSent of a *otp.ProviderError
		left    int     // want WrongCodeError.AttemptsLeft when > 0
	}{
		// Send: a 200 is a success only when the PIN went out.
		{name: "sms sent", op: otp.OpStart, status: 200, body: sent(`,"smsStatus":"MESSAGE_SENT"`)},
		{name: "sms sent, lookup reachable", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_DESTINATION_REACHABLE","smsStatus":"MESSAGE_SENT"`)},
		{name: "sms sent, lookup unknown", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_DESTINATION_UNKNOWN","smsStatus":"MESSAGE_SENT"`)},
		{name: "sms sent, lookup not configured", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_NOT_CONFIGURED","smsStatus":"MESSAGE_SENT"`)},
		{name: "sms 201", op: otp.OpStart, status: 201, body: sent(`,"smsStatus":"MESSAGE_SENT"`)},
		{name: "sms not sent", op: otp.OpStart, status: 200, body: sent(`,"smsStatus":"MESSAGE_NOT_SENT"`),
			class: rejected, vendor: "MESSAGE_NOT_SENT", notSent: true},
		{name: "lookup unreachable", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_DESTINATION_NOT_REACHABLE","smsStatus":"MESSAGE_NOT_SENT"`),
			class: rejected, is: []error{otp.ErrInvalidPhone}, vendor: "NC_DESTINATION_NOT_REACHABLE", notSent: true},
		{name: "lookup unreachable, docs' spelling", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_NOT_REACHABLE","smsStatus":"MESSAGE_NOT_SENT"`),
			class: rejected, is: []error{otp.ErrInvalidPhone}, vendor: "NC_NOT_REACHABLE", notSent: true},
		{name: "lookup unreachable yet sent", op: otp.OpStart, status: 200, body: sent(`,"ncStatus":"NC_DESTINATION_NOT_REACHABLE","smsStatus":"MESSAGE_SENT"`),
			class: rejected, is: []error{otp.ErrInvalidPhone}, notSent: true},
		{name: "voice accepted", op: otp.OpStart, channel: otp.Voice, status: 200, body: sent(`,"callStatus":"PENDING_ACCEPTED"`)},
		{name: "voice rejected", op: otp.OpStart, channel: otp.Voice, status: 200, body: sent(`,"callStatus":"REJECTED_DESTINATION"`),
			class: rejected, vendor: "REJECTED_DESTINATION", notSent: true},
		{name: "email accepted", op: otp.OpStart, channel: otp.Email, status: 200,
			body: sent(`,"emailStatus":{"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}`)},
		{name: "email undeliverable", op: otp.OpStart, channel: otp.Email, status: 200,
			body: sent(`,"emailStatus":{"name":"UNDELIVERABLE_NOT_DELIVERED"}`), class: rejected, notSent: true},
		{name: "send 200 empty", op: otp.OpStart, status: 200, body: "", class: unavailable},
		{name: "send 200 html", op: otp.OpStart, status: 200, body: "<html><body>OK</body></html>", class: unavailable},
		{name: "send 200 truncated", op: otp.OpStart, status: 200, body: sent(`,"smsStatus":"MESSAGE_SENT"`)[:30], class: unavailable},
		{name: "send 200 no pinId", op: otp.OpStart, status: 200, body: `{"smsStatus":"MESSAGE_SENT"}`, class: unavailable},
		{name: "send 200 null", op: otp.OpStart, status: 200, body: `null`, class: unavailable},
		{name: "send 200 array", op: otp.OpStart, status: 200, body: `[` + sent("") + `]`, class: unavailable},
		{name: "send 200 pinId number", op: otp.OpStart, status: 200, body: `{"pinId":12,"smsStatus":"MESSAGE_SENT"}`, class: unavailable},
		{name: "send 400 legacy", op: otp.OpStart, status: 400, body: legacy("BAD_REQUEST", "Bad request"),
			class: rejected, vendor: "BAD_REQUEST", notSent: true},
		{name: "send 400 legacy bad to", op: otp.OpStart, status: 400,
			body:  `{"requestError":{"serviceException":{"messageId":"BAD_REQUEST","text":"Bad request","validationErrors":{"to":["invalid destination address"]}}}}`,
			class: rejected, is: []error{otp.ErrInvalidPhone}, vendor: "BAD_REQUEST", notSent: true},
		{name: "send 400 modern bad to", op: otp.OpStart, status: 400,
			body:  `{"errorCode":"E400","description":"Bad request","violations":[{"property":"to","violation":"invalid"}]}`,
			class: rejected, is: []error{otp.ErrInvalidPhone}, vendor: "E400", notSent: true},
		{name: "send 401 legacy", op: otp.OpStart, status: 401, body: legacy("UNAUTHORIZED", "Invalid login details"),
			class: account, vendor: "UNAUTHORIZED", notSent: true},
		{name: "send 401 modern", op: otp.OpStart, status: 401, body: modern("E401", "Unauthorized"),
			class: account, vendor: "E401", notSent: true},
		{name: "send 403 legacy", op: otp.OpStart, status: 403, body: legacy("FORBIDDEN", "Forbidden"),
			class: account, vendor: "FORBIDDEN", notSent: true},
		{name: "send 403 modern", op: otp.OpStart, status: 403, body: modern("E403", "Forbidden"),
			class: account, vendor: "E403", notSent: true},
		{name: "send 404 unknown template", op: otp.OpStart, status: 404,
			body:  legacy("RESOURCE_NOT_FOUND", "Application or message with given ID cannot be found."),
			class: rejected, vendor: "RESOURCE_NOT_FOUND", notSent: true},
		{name: "send 429 legacy", op: otp.OpStart, status: 429, body: legacy("TOO_MANY_REQUESTS", "Too many requests"),
			class: unavailable, vendor: "TOO_MANY_REQUESTS", notSent: true},
		{name: "send 429 modern", op: otp.OpStart, status: 429, body: modern("E429", "Too many requests sent."),
			class: unavailable, vendor: "E429", notSent: true},
		{name: "send 500 legacy", op: otp.OpStart, status: 500, body: legacy("GENERAL_ERROR", "Something went wrong. Please contact support."),
			class: unavailable, vendor: "GENERAL_ERROR"},
		{name: "send 500 modern", op: otp.OpStart, status: 500, body: modern("E500", "Internal error"),
			class: unavailable, vendor: "E500"},
		{name: "send 502 html", op: otp.OpStart, status: 502, body: "<html>Bad gateway</html>", class: unavailable},
		{name: "send 503 with Retry-After", op: otp.OpStart, status: 503, header: http.Header{"Retry-After": {"120"}},
			class: unavailable, notSent: true},
		{name: "send 503 without Retry-After", op: otp.OpStart, status: 503, body: "", class: unavailable},
		{name: "send 418 empty", op: otp.OpStart, status: 418, class: rejected, notSent: true},

		// Verify: Infobip answers a wrong PIN with HTTP 200.
		{name: "verified", op: otp.OpCheck, status: 200, body: verified},
		{name: "verified, other pinId", op: otp.OpCheck, status: 200, body: strings.Replace(verified, pinID, "0000", 1), class: unavailable},
		{name: "verified with a pinError", op: otp.OpCheck, status: 200,
			body: `{"pinId":"` + pinID + `","verified":true,"pinError":"WRONG_PIN"}`, class: unavailable},
		{name: "wrong pin, 2 left", op: otp.OpCheck, status: 200, body: notVerified("WRONG_PIN", 2),
			class: user, is: []error{otp.ErrWrongCode}, left: 2},
		{name: "wrong pin, none left", op: otp.OpCheck, status: 200, body: notVerified("WRONG_PIN", 0),
			class: user, is: []error{otp.ErrTooManyAttempts}},
		{name: "wrong pin, count missing", op: otp.OpCheck, status: 200, body: `{"verified":false,"pinError":"WRONG_PIN"}`,
			class: user, is: []error{otp.ErrWrongCode}},
		{name: "ttl expired", op: otp.OpCheck, status: 200, body: notVerified("TTL_EXPIRED", 3),
			class: user, is: []error{otp.ErrExpired}},
		{name: "no more attempts", op: otp.OpCheck, status: 200, body: notVerified("NO_MORE_PIN_ATTEMPTS", 0),
			class: user, is: []error{otp.ErrTooManyAttempts}},
		{name: "unknown pinError", op: otp.OpCheck, status: 200, body: notVerified("PIN_EXPIRED", 2),
			class: rejected, vendor: "PIN_EXPIRED", notSent: true},
		{name: "no pinError, none left", op: otp.OpCheck, status: 200, body: notVerified("", 0),
			class: user, is: []error{otp.ErrTooManyAttempts}},
		{name: "no pinError, some left", op: otp.OpCheck, status: 200, body: notVerified("", 3),
			class: rejected, vendor: "verified:false", notSent: true},
		{name: "verify 200 empty", op: otp.OpCheck, status: 200, body: "", class: unavailable},
		{name: "verify 200 html", op: otp.OpCheck, status: 200, body: "<!doctype html><p>maintenance</p>", class: unavailable},
		{name: "verify 200 truncated", op: otp.OpCheck, status: 200, body: verified[:40], class: unavailable},
		{name: "verify 200 verified string", op: otp.OpCheck, status: 200, body: `{"pinId":"` + pinID + `","verified":"true"}`, class: unavailable},
		{name: "verify 200 no verified", op: otp.OpCheck, status: 200, body: `{"pinId":"` + pinID + `"}`, class: unavailable},
		{name: "verify 404 legacy", op: otp.OpCheck, status: 404, body: legacy("NOT_FOUND", "Not found"),
			class: user, is: []error{otp.ErrNotFound}},
		{name: "verify 404 modern", op: otp.OpCheck, status: 404, body: modern("E404", "Not found"),
			class: user, is: []error{otp.ErrNotFound}},
		{name: "verify 404 empty", op: otp.OpCheck, status: 404, class: user, is: []error{otp.ErrNotFound}},
		{name: "verify 400", op: otp.OpCheck, status: 400, body: legacy("BAD_REQUEST", "Bad request"), class: rejected, vendor: "BAD_REQUEST", notSent: true},
		{name: "verify 401", op: otp.OpCheck, status: 401, body: modern("E401", "Unauthorized"), class: account, vendor: "E401", notSent: true},
		{name: "verify 403", op: otp.OpCheck, status: 403, body: legacy("FORBIDDEN", "Forbidden"), class: account, vendor: "FORBIDDEN", notSent: true},
		{name: "verify 429", op: otp.OpCheck, status: 429, body: legacy("TOO_MANY_REQUESTS", "Too many requests"), class: unavailable, vendor: "TOO_MANY_REQUESTS", notSent: true},
		{name: "verify 500", op: otp.OpCheck, status: 500, body: modern("E500", "Internal"), class: unavailable, vendor: "E500"},
		{name: "verify 500 truncated", op: otp.OpCheck, status: 500, body: `{"requestError":{"serviceExc`, class: unavailable},

		// Resend: same answers as a send, and 404 for an unknown pin.
		{name: "resend sent", op: otp.OpResend, status: 200, body: sent(`,"smsStatus":"MESSAGE_SENT"`)},
		{name: "resend not sent", op: otp.OpResend, status: 200, body: sent(`,"smsStatus":"MESSAGE_NOT_SENT"`), class: rejected, notSent: true},
		{name: "resend 401", op: otp.OpResend, status: 401, body: legacy("UNAUTHORIZED", "Unauthorized"), class: account, vendor: "UNAUTHORIZED", notSent: true},
		{name: "resend 404", op: otp.OpResend, status: 404, body: legacy("NOT_FOUND", "Not found"), class: user, is: []error{otp.ErrNotFound}},
		{name: "resend 500", op: otp.OpResend, status: 500, body: legacy("GENERAL_ERROR", "x"), class: unavailable, vendor: "GENERAL_ERROR"},
		{name: "resend 200 garbage", op: otp.OpResend, status: 200, body: "}{", class: unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &canned{status: tt.status, header: tt.header, body: tt.body}
			c := cannedClient(t, h, nil)
			ch := tt.channel
			if ch == "" {
				ch = otp.SMS
			}
			var err error
			switch tt.op {
			case otp.OpStart:
				to := phone
				if ch == otp.Email {
					to = address
				}
				var ref otp.Ref
				ref, err = c.Send(context.Background(), otp.SendRequest{To: to, Channel: ch, CodeLength: 6})
				if err == nil && !strings.HasSuffix(ref.ID, pinID) {
					t.Errorf("Ref.ID = %q, want the pin ID", ref.ID)
				}
				if err != nil && ref != (otp.Ref{}) {
					t.Errorf("failed send returned Ref %+v", ref)
				}
			case otp.OpCheck:
				err = c.Check(context.Background(), otp.Ref{Provider: "infobip", ID: "sms:" + pinID}, "123456")
			case otp.OpResend:
				err = c.Resend(context.Background(), otp.Ref{Provider: "infobip", ID: "sms:" + pinID})
			}
			if h.count() != 1 {
				t.Errorf("server got %d requests, want 1", h.count())
			}
			if tt.class == success {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("success, want an error")
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("err = %v, want errors.Is %v", err, target)
				}
			}
			var pe *otp.ProviderError
			isPE := errors.As(err, &pe)
			switch tt.class {
			case user:
				if isPE {
					t.Errorf("err = %v is a ProviderError, want a person's outcome", err)
				}
				if tt.left > 0 {
					var wc *otp.WrongCodeError
					if !errors.As(err, &wc) || wc.AttemptsLeft != tt.left {
						t.Errorf("err = %v, want WrongCodeError with %d left", err, tt.left)
					}
				}
				return
			case rejected:
				if !errors.Is(err, otp.ErrProviderRejected) || errors.Is(err, otp.ErrProviderUnavailable) {
					t.Errorf("err = %v, want rejected only", err)
				}
			case unavailable:
				if !errors.Is(err, otp.ErrProviderUnavailable) || errors.Is(err, otp.ErrProviderRejected) {
					t.Errorf("err = %v, want unavailable only", err)
				}
			case account:
				if !errors.Is(err, otp.ErrProviderAccount) || errors.Is(err, otp.ErrProviderUnavailable) || errors.Is(err, otp.ErrProviderRejected) {
					t.Errorf("err = %v, want an account refusal only", err)
				}
			}
			if !isPE {
				t.Fatalf("err = %v (%T), want a *otp.ProviderError", err, err)
			}
			if pe.Provider != "infobip" || pe.Op != tt.op || pe.HTTPStatus != tt.status {
				t.Errorf("ProviderError %+v: want provider infobip, op %s, http %d", pe, tt.op, tt.status)
			}
			if tt.vendor != "" && pe.VendorStatus != tt.vendor {
				t.Errorf("VendorStatus = %q, want %q", pe.VendorStatus, tt.vendor)
			}
			if pe.NotSent != tt.notSent {
				t.Errorf("NotSent = %t, want %t (%v)", pe.NotSent, tt.notSent, err)
			}
			if strings.Contains(err.Error(), "123456") || strings.Contains(err.Error(), apiKey) {
				t.Errorf("error %q holds the code or the key", err)
			}
		})
	}
}
