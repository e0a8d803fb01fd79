package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
)

// A Verifier sending through Twilio Verify, here against the fake server;
// in production leave BaseURL unset and pass the Service's SID and an API
// key.
func ExampleNew() {
	fake := twiliotest.NewServer(twiliotest.Config{})
	defer fake.Close()

	provider, err := twilio.New(twilio.Config{
		ServiceSID:   twiliotest.ServiceSID,
		APIKeySID:    twiliotest.APIKeySID,
		APIKeySecret: twiliotest.APIKeySecret,
		Channels:     []otp.Channel{otp.SMS, otp.Voice, otp.WhatsApp},
		BaseURL:      fake.URL,
	})
	if err != nil {
		panic(err)
	}
	defer provider.Close()
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(provider, store, otp.Config{CodeLength: 6})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if _, err := v.Start(ctx, "session-1", "+1 415 555 0100"); err != nil {
		panic(err)
	}
	_, err = v.Check(ctx, "session-1", "000000")
	var wrong *otp.WrongCodeError
	if errors.As(err, &wrong) {
		fmt.Println("wrong code,", wrong.AttemptsLeft, "attempts left")
	}
	code, _ := fake.LastCode("+14155550100")
	st, err := v.Check(ctx, "session-1", code)
	fmt.Println(st.To, st.Provider, err)
	// Output:
	// wrong code, 4 attempts left
	// +14155550100 twilio <nil>
}

// Fraud Guard's and Geo Permissions' blocks are refused destinations, with
// Twilio's code kept.
func ExampleProvider_Send_blocked() {
	fake := twiliotest.NewServer(twiliotest.Config{Refuse: map[string]int{"+14155550123": 60410}})
	defer fake.Close()
	p, _ := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID, AccountSID: twiliotest.AccountSID,
		AuthToken: twiliotest.AuthToken, BaseURL: fake.URL})
	_, err := p.Send(context.Background(), otp.SendRequest{To: "+14155550123", Channel: otp.SMS})
	var pe *otp.ProviderError
	errors.As(err, &pe)
	fmt.Println(otp.ErrorClass(err), errors.Is(err, twilio.ErrBlocked), pe.VendorStatus, pe.NotSent)
	// Output: refused_destination true 60410 true
}

// Verify events: mount the handler at the URL of an Event Streams webhook
// sink subscribed to Verify events, and feed its events to the same hook
// as the Verifier's.
func ExampleNewWebhookHandler() {
	h, err := twilio.NewWebhookHandler(twilio.WebhookConfig{
		AuthToken: "auth-token",
		PublicURL: "https://hooks.example.com",
		OnEvent:   func(ev otp.Event) { fmt.Println(ev.Op, ev.Kind, ev.Channel, ev.Class) },
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/twilio", h)

	body := `[{"specversion":"1.0","type":"com.twilio.accountsecurity.verify.verification.expired","id":"EZ1",` +
		`"data":{"verification_sid":"VE0123456789abcdef0123456789abcdef","to":"+14155550100",` +
		`"send_code_attempts":{"count":1,"attempts":[{"channel":"SMS"}]}}}]`
	signedURL, sig := twiliotest.SignJSON("auth-token", "https://hooks.example.com/webhooks/twilio", []byte(body))
	req := httptest.NewRequest("POST", strings.TrimPrefix(signedURL, "https://hooks.example.com"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(twilio.SignatureHeader, sig)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)

	req = httptest.NewRequest("POST", "/webhooks/twilio", strings.NewReader(body)) // unsigned
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)
	// Output:
	// check failed sms expired
	// 204
	// 401
}
