package infobip_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
)

// TestDefaultClientKeepsConnectionsUnderConcurrency: with the default HTTP
// client, 16 concurrent sends, twice, open about 16 connections; net/http's
// default of 2 idle connections per host would dial again for most of the
// second round.
func TestDefaultClientKeepsConnectionsUnderConcurrency(t *testing.T) {
	srv := infobiptest.NewServer(infobiptest.Config{})
	defer srv.Close()
	app := srv.AddApplication("pool", infobiptest.AppConfig{SendPinPerApplicationLimit: "1000/1d"})
	msg := srv.AddMessage(app, infobiptest.Message{Text: "Code {{pin}}", PinLength: 6})
	c, err := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: "test-api-key", ApplicationID: app, SMSMessageID: msg})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range 16 {
			wg.Go(func() {
				_, errs[i] = c.Send(context.Background(), otp.SendRequest{
					To: fmt.Sprintf("+4474001%02d%03d", round, i), Channel: otp.SMS, CodeLength: 6})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// A few more than 16 happen: net/http now and then gives up a
	// connection that did everything right (see package reusetest). The
	// default pool of 2 would dial some 30.
	if n := srv.Connections(); n > 20 {
		t.Fatalf("%d connections for 2 rounds of 16 concurrent sends, want at most 20", n)
	}
}
