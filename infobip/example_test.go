package infobip_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// A Client against the fake server: send a PIN by SMS, read it as the
// person would, check it.
func Example() {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "my-key"})
	defer srv.Close()
	appID := srv.AddApplication("signup", infobiptest.AppConfig{PinAttempts: 3, VerifyPinLimit: "10/1s"})
	msgID := srv.AddMessage(appID, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})

	c, err := infobip.New(infobip.Config{
		BaseURL: srv.URL, APIKey: "my-key", ApplicationID: appID, SMSMessageID: msgID,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	ref, err := c.Send(ctx, otp.SendRequest{To: "+447911123456", Channel: otp.SMS, CodeLength: 6})
	if err != nil {
		panic(err)
	}
	pin, _ := srv.LastCode("+447911123456")
	fmt.Println("sent to", srv.Sends()[0].To)
	err = c.Check(ctx, ref, "not-it")
	fmt.Println("wrong PIN:", errors.Is(err, otp.ErrWrongCode))
	fmt.Println("right PIN:", c.Check(ctx, ref, pin))
	// Output:
	// sent to 447911123456
	// wrong PIN: true
	// right PIN: <nil>
}

// EnsureSetup finds or creates the application and templates by name and
// text, so running it twice gives the same IDs.
func ExampleClient_EnsureSetup() {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "my-key"})
	defer srv.Close()
	c, err := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: "my-key"})
	if err != nil {
		panic(err)
	}
	sms := &infobip.Message{Text: "Your code is {{pin}}", PinLength: 6, SenderID: "Acme"}
	setup := infobip.Setup{
		Application: infobip.Application{Name: "signup", Config: infobip.AppConfig{PinAttempts: 5, PinTimeToLive: "10m"}},
		SMS:         sms,
		Voice:       sms,
	}
	first, err := c.EnsureSetup(context.Background(), setup)
	if err != nil {
		panic(err)
	}
	again, _ := c.EnsureSetup(context.Background(), setup)
	fmt.Println("same IDs:", first == again)
	fmt.Println("one template for SMS and voice:", first.SMSMessageID == first.VoiceMessageID)
	// Output:
	// same IDs: true
	// one template for SMS and voice: true
}

// Errors match the core's sentinels; a send that may have gone out says
// so through ProviderError.NotSent.
func ExampleClient_Send_errors() {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "my-key"})
	defer srv.Close()
	appID := srv.AddApplication("signup", infobiptest.AppConfig{})
	msgID := srv.AddMessage(appID, infobiptest.Message{Text: "{{pin}}", PinLength: 6})
	c, _ := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: "my-key", ApplicationID: appID, SMSMessageID: msgID})

	srv.FailNext(infobiptest.OpSend, infobiptest.Fault{Status: 500})
	_, err := c.Send(context.Background(), otp.SendRequest{To: "+447911123456", Channel: otp.SMS})
	var pe *otp.ProviderError
	errors.As(err, &pe)
	fmt.Println("unavailable:", errors.Is(err, otp.ErrProviderUnavailable), "surely not sent:", pe.NotSent)
	// Output:
	// unavailable: true surely not sent: false
}
