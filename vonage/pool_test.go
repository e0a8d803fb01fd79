package vonage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// TestDefaultClientKeepsConnectionsUnderConcurrency: with the default HTTP
// client, 16 concurrent sends, twice, open about 16 connections; net/http's
// default of 2 idle connections per host would dial again for most of the
// second round.
func TestDefaultClientKeepsConnectionsUnderConcurrency(t *testing.T) {
	srv := vonagetest.NewServer(vonagetest.Config{})
	defer srv.Close()
	p, err := vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "test-secret", Brand: "Acme", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range 16 {
			wg.Go(func() {
				_, errs[i] = p.Send(context.Background(), otp.SendRequest{
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
