package vonage_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// A Verifier sending through Verify v2, here against the fake server; in
// production leave BaseURL and HTTPClient unset and pass real credentials.
func ExampleNewV2() {
	fake := vonagetest.NewServer(vonagetest.Config{APIKey: "key", APISecret: "secret"})
	defer fake.Close()

	provider, err := vonage.NewV2(vonage.V2Config{
		APIKey: "key", APISecret: "secret", // or ApplicationID + PrivateKey for JWT auth
		Brand:    "Acme",
		Fallback: []otp.Channel{otp.Voice}, // Resend moves to a voice call
		BaseURL:  fake.URL,
	})
	if err != nil {
		panic(err)
	}
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(provider, store, otp.Config{CodeLength: 6})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if _, err := v.Start(ctx, "session-1", "+44 7400 123456"); err != nil {
		panic(err)
	}
	code, _ := fake.LastCode("+447400123456")
	st, err := v.Check(ctx, "session-1", code)
	fmt.Println(st.To, err)
	// Output: +447400123456 <nil>
}

// The legacy API answers HTTP 200 even for failures; the adapter maps its
// status codes to the core's errors.
func ExampleNewLegacy() {
	fake := vonagetest.NewServer(vonagetest.Config{APIKey: "key", APISecret: "secret", Code: "1234"})
	defer fake.Close()
	p, err := vonage.NewLegacy(vonage.LegacyConfig{APIKey: "key", APISecret: "secret", Brand: "Acme", BaseURL: fake.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	ref, _ := p.Send(ctx, otp.SendRequest{To: "+447700900123", Channel: otp.SMS, CodeLength: 4})
	err = p.Check(ctx, ref, "0000")
	var pe *otp.ProviderError
	errors.As(err, &pe)
	fmt.Println(errors.Is(err, otp.ErrWrongCode), pe.VendorStatus)
	fmt.Println(p.Check(ctx, ref, "1234"))
	// Output:
	// true 16
	// <nil>
}

// A failed send's *otp.ProviderError says through NotSent whether a code
// may have gone out: a refused send surely sent nothing, so another
// provider may be tried; after a 500 Vonage may have sent one.
func ExampleV2_Send_notSent() {
	fake := vonagetest.NewServer(vonagetest.Config{APIKey: "key", APISecret: "secret"})
	defer fake.Close()
	p, _ := vonage.NewV2(vonage.V2Config{APIKey: "key", APISecret: "secret", Brand: "Acme", BaseURL: fake.URL})
	ctx := context.Background()
	var pe *otp.ProviderError

	fake.FailNext(vonagetest.V2Start, vonagetest.Fault{Status: 429}) // refused: nothing sent
	_, err := p.Send(ctx, otp.SendRequest{To: "+447700900123", Channel: otp.SMS})
	errors.As(err, &pe)
	fmt.Println(errors.Is(err, otp.ErrProviderUnavailable), pe.NotSent)

	fake.FailNext(vonagetest.V2Start, vonagetest.Fault{Status: 500}) // Vonage may have acted
	_, err = p.Send(ctx, otp.SendRequest{To: "+447700900123", Channel: otp.SMS})
	errors.As(err, &pe)
	fmt.Println(errors.Is(err, otp.ErrProviderUnavailable), pe.NotSent)
	fmt.Println(fake.Calls(vonagetest.V2Start), "requests") // never re-sent
	// Output:
	// true true
	// true false
	// 2 requests
}

// Status webhooks: mount the handler where the Vonage application's status
// webhook points, and feed its events to the same hook as the Verifier's.
func ExampleNewWebhookHandler() {
	h, err := vonage.NewWebhookHandler(vonage.WebhookConfig{
		SignatureSecret: "signature-secret",
		OnEvent: func(ev otp.Event) {
			fmt.Println(ev.Op, ev.Kind, ev.Channel, ev.Class)
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/vonage/status", h)

	body := `{"type":"summary","request_id":"c11236f4","status":"expired","workflow":[{"channel":"sms","status":"expired"}]}`
	req := httptest.NewRequest("POST", "/webhooks/vonage/status", strings.NewReader(body))
	req.Header.Set("Authorization", vonagetest.SignCallback("signature-secret", []byte(body), time.Now()))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)

	req = httptest.NewRequest("POST", "/webhooks/vonage/status", strings.NewReader(body)) // unsigned
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)
	// Output:
	// check failed sms expired
	// 204
	// 401
}
