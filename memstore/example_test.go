package memstore_test

import (
	"context"
	"fmt"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// A Verifier keeping its pending verifications in a memstore. The fake
// provider stands in for a real vendor.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	defer store.Close()
	provider := otptest.NewProvider(otptest.ProviderConfig{})
	v, err := otp.NewVerifier(provider, store, otp.Config{})
	if err != nil {
		panic(err)
	}

	if _, err := v.Start(ctx, "session-1", "+447911123456"); err != nil {
		panic(err)
	}
	code, _ := provider.LastCode("+447911123456")
	st, err := v.Check(ctx, "session-1", code)
	fmt.Println(st.To, err)
	_, err = v.Check(ctx, "session-1", code)
	fmt.Println(err)
	// Output:
	// +447911123456 <nil>
	// otp: verification not found
}
