package otp_test

import (
	"context"
	"fmt"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/twilio"
	"github.com/otpkit/otp/twilio/twiliotest"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// Routing by destination, each route with failover behind it: India
// through Infobip, the US and Canada through Twilio then Vonage,
// everywhere else through Vonage then Infobip. Here against the three
// fake servers; in production leave BaseURL unset and pass credentials.
func ExampleNewRouter() {
	twilioFake := twiliotest.NewServer(twiliotest.Config{})
	defer twilioFake.Close()
	vonageFake := vonagetest.NewServer(vonagetest.Config{})
	defer vonageFake.Close()
	infobipFake := infobiptest.NewServer(infobiptest.Config{})
	defer infobipFake.Close()
	app := infobipFake.AddApplication("login", infobiptest.AppConfig{})
	msg := infobipFake.AddMessage(app, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})

	tw, err := twilio.New(twilio.Config{ServiceSID: twiliotest.ServiceSID, APIKeySID: twiliotest.APIKeySID,
		APIKeySecret: twiliotest.APIKeySecret, BaseURL: twilioFake.URL})
	if err != nil {
		panic(err)
	}
	vg, err := vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "test-secret", Brand: "Acme", BaseURL: vonageFake.URL})
	if err != nil {
		panic(err)
	}
	ib, err := infobip.New(infobip.Config{BaseURL: infobipFake.URL, APIKey: "test-api-key", ApplicationID: app, SMSMessageID: msg})
	if err != nil {
		panic(err)
	}
	northAmerica, _ := otp.NewFailover(otp.FailoverConfig{}, tw, vg)
	elsewhere, _ := otp.NewFailover(otp.FailoverConfig{}, vg, ib)
	router, err := otp.NewRouter(elsewhere,
		otp.Route{Regions: []string{"IN"}, Provider: ib},
		otp.Route{Regions: []string{"US", "CA"}, Provider: northAmerica})
	if err != nil {
		panic(err)
	}

	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(router, store, otp.Config{CodeLength: 6})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, to := range []string{"+91 98765 43210", "+1 201 555 0123", "+44 7400 123456"} {
		st, err := v.Start(ctx, to, to) // the number as the key
		if err != nil {
			panic(err)
		}
		code, _ := map[string]func(string) (string, bool){
			"infobip": infobipFake.LastCode, "twilio": twilioFake.LastCode, "vonage": vonageFake.LastCode,
		}[st.Provider](st.To)
		_, err = v.Check(ctx, to, code) // goes back to the provider that sent
		fmt.Println(st.To, st.Provider, err)
	}
	// Output:
	// +919876543210 infobip <nil>
	// +12015550123 twilio <nil>
	// +447400123456 vonage <nil>
}
