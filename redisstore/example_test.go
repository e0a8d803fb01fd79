package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// A Verifier keeping its verifications and limits in Redis. Every process
// built like this, on the same Redis, Prefix and KeySecret, behaves as one
// Verifier.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Config{
		Prefix: "myapp:otp:",
		// 32 random bytes, the same in every instance: key names then
		// give away no number, IP or user ID, even to someone with the code.
		// An unset variable is an empty secret, which New refuses.
		KeySecret: []byte(os.Getenv("OTP_REDIS_KEY_SECRET")),
	})
	if err != nil {
		log.Fatal(err)
	}
	provider := otptest.NewProvider(otptest.ProviderConfig{}) // a vendor adapter in production
	v, err := otp.NewVerifier(provider, store, otp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	st, err := v.Start(context.Background(), "session-1", "+447400123456")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("code sent to", st.To)
}

// On Redis Cluster, pass a ClusterClient; New finds out it is one.
func Example_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: strings.Split(os.Getenv("OTP_REDIS_CLUSTER"), ","),
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_ = store // otp.NewVerifier(provider, store, otp.Config{})
}
