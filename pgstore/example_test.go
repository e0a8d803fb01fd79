package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// A Verifier keeping its verifications and limits in PostgreSQL. Every
// process built like this, on the same tables and KeySecret, behaves as
// one Verifier. (It needs a database, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("OTP_POSTGRES_URL"))
	if err != nil {
		log.Fatal("OTP_POSTGRES_URL is not a PostgreSQL URL") // the URL may hold a password
	}
	defer pool.Close()
	cfg := pgstore.Config{
		Schema: "myapp",
		// 32 random bytes, the same in every instance: the tables' keys
		// then give away no number, IP or user ID, even to someone with
		// the code. An unset variable is an empty secret, which New
		// refuses.
		KeySecret: []byte(os.Getenv("OTP_KEY_SECRET")),
	}
	// Idempotent, and safe from every instance at once.
	if err := pgstore.Migrate(ctx, pool, cfg); err != nil {
		log.Fatal(err)
	}
	store, err := pgstore.New(pool, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	provider := otptest.NewProvider(otptest.ProviderConfig{}) // a vendor adapter in production
	v, err := otp.NewVerifier(provider, store, otp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	st, err := v.Start(ctx, "session-1", "+447400123456")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("code sent to", st.To)
}

// Cleaning from a job of its own rather than from every instance.
func ExampleStore_Clean() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("OTP_POSTGRES_URL"))
	if err != nil {
		log.Fatal("OTP_POSTGRES_URL is not a PostgreSQL URL")
	}
	defer pool.Close()
	store, err := pgstore.New(pool, pgstore.Config{CleanInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	for range time.Tick(time.Minute) {
		n, err := store.Clean(ctx)
		if err != nil {
			log.Print(err)
			continue
		}
		log.Printf("deleted %d verifications, %d buckets", n.Verifications, n.Buckets)
	}
}
