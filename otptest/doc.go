// Package otptest helps test code that uses package otp: a fake [Provider]
// that records what it sends so a test can read the code it "received", a
// fake [Clock], and [TestStore], the conformance suite every otp.Store must
// pass.
//
// A handler test typically looks like this:
//
//	clock := otptest.NewClock(time.Time{})
//	provider := otptest.NewProvider(otptest.ProviderConfig{Clock: clock})
//	store := memstore.New(memstore.Config{Clock: clock})
//	defer store.Close()
//	v, _ := otp.NewVerifier(provider, store, otp.Config{Clock: clock})
//	// ... POST the phone number to your handler ...
//	code, _ := provider.LastCode("+447911123456")
//	// ... POST the code; clock.Advance(10 * time.Minute) to test expiry ...
package otptest
