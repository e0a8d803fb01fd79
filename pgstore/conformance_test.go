package pgstore_test

import (
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

func TestConformance(t *testing.T) {
	pool := newPool(t)
	t.Run("Store", func(t *testing.T) {
		otptest.TestStore(t, func() otp.Store { return newStore(t, pool, pgstore.Config{}) })
	})
	t.Run("LimitingStore", func(t *testing.T) {
		otptest.TestLimitingStore(t, func() otp.LimitingStore { return newStore(t, pool, pgstore.Config{}) })
	})
	t.Run("Limiter", func(t *testing.T) {
		otptest.TestLimiter(t, func() otp.Limiter { return newStore(t, pool, pgstore.Config{}) })
	})
}
