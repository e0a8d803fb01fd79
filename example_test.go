package otp_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// A complete verification with the fake provider, as in a unit test.
func ExampleVerifier_Start() {
	provider := otptest.NewProvider(otptest.ProviderConfig{Code: "123456"})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(provider, store, otp.Config{DefaultRegion: "GB"})
	if err != nil {
		panic(err)
	}

	// The key is yours to choose: a session ID, a user ID...
	st, err := v.Start(context.Background(), "session-42", "07400 123456", otp.WithClient("203.0.113.7"))
	if err != nil {
		panic(err)
	}
	fmt.Println("sent to", st.To, "by", st.Channel, "with", st.AttemptsLeft, "attempts")

	code, _ := provider.LastCode(st.To) // what the person reads off their phone
	verified, err := v.Check(context.Background(), "session-42", code)
	fmt.Println("verified", verified.To, err)
	// Output:
	// sent to +447400123456 by sms with 5 attempts
	// verified +447400123456 <nil>
}

// Check's errors tell a handler what to show.
func ExampleVerifier_Check() {
	provider := otptest.NewProvider(otptest.ProviderConfig{Code: "123456"})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, _ := otp.NewVerifier(provider, store, otp.Config{MaxAttempts: 2})
	ctx := context.Background()
	_, _ = v.Start(ctx, "user-7", "+447400123456")

	for _, code := range []string{"12x456", "000000", "999999", "123456"} {
		_, err := v.Check(ctx, "user-7", code)
		var wrong *otp.WrongCodeError
		switch {
		case err == nil:
			fmt.Println(code, "verified")
		case errors.Is(err, otp.ErrInvalidCode):
			fmt.Println(code, "is not a code: no attempt used")
		case errors.As(err, &wrong):
			fmt.Println(code, "is wrong,", wrong.AttemptsLeft, "left")
		case errors.Is(err, otp.ErrTooManyAttempts):
			fmt.Println(code, "used the last attempt: start again")
		case errors.Is(err, otp.ErrNotFound), errors.Is(err, otp.ErrExpired):
			fmt.Println(code, "is too late: start again")
		}
	}
	// Output:
	// 12x456 is not a code: no attempt used
	// 000000 is wrong, 1 left
	// 999999 used the last attempt: start again
	// 123456 is too late: start again
}

// Limits deny before anything is sent, with a RetryAfter for the answer.
func ExampleRetryAfter() {
	clock := otptest.NewClock(time.Time{}) // a real service leaves Clock unset
	provider := otptest.NewProvider(otptest.ProviderConfig{Clock: clock})
	store := memstore.New(memstore.Config{Clock: clock})
	defer store.Close()
	v, _ := otp.NewVerifier(provider, store, otp.Config{
		Clock:  clock,
		Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: 10 * time.Minute}},
	})
	ctx := context.Background()
	_, _ = v.Start(ctx, "a", "+447400123456")
	_, err := v.Start(ctx, "b", "+447400123456")
	if wait, ok := otp.RetryAfter(err); ok {
		fmt.Printf("%v; answer 429 with Retry-After: %.0f\n", err, wait.Seconds())
	}
	// Output: otp: rate limited (number), retry after 10m0s; answer 429 with Retry-After: 600
}

// A Verifier's events feed metrics without the library importing any.
func ExampleConfig_onEvent() {
	provider := otptest.NewProvider(otptest.ProviderConfig{Code: "123456"})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, _ := otp.NewVerifier(provider, store, otp.Config{
		OnEvent: func(e otp.Event) {
			fmt.Printf("%s %s provider=%s channel=%s region=%s to=%s class=%s\n",
				e.Op, e.Kind, e.Provider, e.Channel, e.Region, e.To, e.Class)
		},
	})
	ctx := context.Background()
	_, _ = v.Start(ctx, "k", "+447400123456")
	_, _ = v.Check(ctx, "k", "000000")
	// Output:
	// start started provider=otptest channel=sms region=GB to=+44********56 class=
	// start sent provider=otptest channel=sms region=GB to=+44********56 class=
	// check failed provider=otptest channel=sms region=GB to=+44********56 class=wrong_code
}

// Two vendors: the second takes over only when the first surely sent
// nothing, and checks go back to whichever sent the code.
func ExampleFailover() {
	primary := otptest.NewProvider(otptest.ProviderConfig{Name: "primary", Code: "123456"})
	backup := otptest.NewProvider(otptest.ProviderConfig{Name: "backup", Code: "123456"})
	primary.FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "primary", Op: otp.OpStart, HTTPStatus: 503, Kind: otp.ProviderUnavailable, NotSent: true}})
	provider, err := otp.NewFailover(otp.FailoverConfig{}, primary, backup)
	if err != nil {
		panic(err)
	}
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, _ := otp.NewVerifier(provider, store, otp.Config{})

	st, _ := v.Start(context.Background(), "session-42", "+447400123456")
	fmt.Println("sent by", st.Provider)
	_, err = v.Check(context.Background(), "session-42", "123456")
	fmt.Println("checked by backup:", backup.Calls(otp.OpCheck) == 1, err)
	// Output:
	// sent by backup
	// checked by backup: true <nil>
}

// The guard refuses costly number types and can watch a policy before
// enforcing it.
func ExampleGuard() {
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, _ := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{}), store, otp.Config{
		Guard: otp.Guard{AllowedCallingCodes: []int{44, 353}}, // the UK and Ireland only
	})
	_, err := v.Start(context.Background(), "session-42", "+44 909 8765432") // premium rate
	var nt *otp.NumberTypeError
	fmt.Println(errors.As(err, &nt), nt.Type)
	_, err = v.Start(context.Background(), "session-43", "+1 201 555 0123")
	fmt.Println(errors.Is(err, otp.ErrRegionNotAllowed))
	// Output:
	// true premium-rate
	// true
}

// Test numbers let an app-store reviewer sign in with a fixed code.
func ExampleTestNumber() {
	provider := otptest.NewProvider(otptest.ProviderConfig{})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, _ := otp.NewVerifier(provider, store, otp.Config{
		TestNumbers: []otp.TestNumber{{Number: "+1 202 555 0100", Code: "246810",
			Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}},
	})
	_, _ = v.Start(context.Background(), "reviewer", "+1 202 555 0100")
	_, err := v.Check(context.Background(), "reviewer", "246810")
	fmt.Println(err, provider.Calls(otp.OpStart))
	// Output: <nil> 0
}
