package otptest

import (
	"strconv"
	"testing"
	"time"

	"github.com/otpkit/otp"
)

// TestStoreAnyYear checks the Store contract's "times round-trip to the
// nanosecond" and its expiry by a clock of any year, from year 1 to
// 99999: a store that keeps one count of nanoseconds holds only 1678 to
// 2262. newStore returns a store that tells the time by clock (its
// Config.Clock), fresh for each year.
//
//	func TestAnyYear(t *testing.T) {
//		otptest.TestStoreAnyYear(t, func(clock otp.Clock) otp.Store {
//			s := memstore.New(memstore.Config{Clock: clock})
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
func TestStoreAnyYear(t *testing.T, newStore func(clock otp.Clock) otp.Store) {
	for _, base := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1500, 6, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(2026, 3, 1, 12, 34, 56, 789, time.UTC),
		time.Date(2500, 6, 1, 12, 0, 0, 987654321, time.UTC),
		time.Date(99999, 12, 31, 0, 0, 0, 5, time.UTC),
	} {
		t.Run(strconv.Itoa(base.Year()), func(t *testing.T) {
			ctx := t.Context()
			clock := NewClock(base)
			s := newStore(clock)
			x := storeSuite{store: s, prefix: newPrefix()}
			v := otp.Verification{Key: x.key("k"), Ref: otp.Ref{Provider: "otptest", ID: "id"}, To: "+447911123456",
				Region: "GB", Channel: otp.SMS, Sends: 1, CreatedAt: base.Add(-time.Second - time.Nanosecond),
				SentAt: base, ExpiresAt: base.Add(time.Minute + time.Nanosecond)}
			noError(t, s.Put(ctx, v), "Put")
			got, err := s.Get(ctx, v.Key)
			noError(t, err, "Get")
			requireSameVerification(t, v, got, "Get")

			v.SentAt = base.Add(time.Nanosecond)
			noError(t, s.MarkSent(ctx, v.Key, v.Ref.ID, v.SentAt), "MarkSent")
			v.Sends++
			got, err = s.AddAttempt(ctx, v.Key, 5)
			noError(t, err, "AddAttempt")
			v.Attempts = 1
			requireSameVerification(t, v, got, "AddAttempt after MarkSent")

			// A claim ends at its Until.
			until := base.Add(time.Minute)
			_, err = s.Claim(ctx, x.key("c"), otp.Claim{Token: "a", Until: until})
			noError(t, err, "Claim")
			clock.Set(until.Add(-time.Nanosecond))
			_, err = s.Claim(ctx, x.key("c"), otp.Claim{Token: "b", Until: until.Add(time.Minute)})
			errorIs(t, err, otp.ErrSendInFlight, "a nanosecond before the claim's Until")
			clock.Set(until)
			_, err = s.Claim(ctx, x.key("c"), otp.Claim{Token: "b", Until: until.Add(time.Minute)})
			noError(t, err, "at the claim's Until")

			// A verification expires at its ExpiresAt.
			clock.Set(v.ExpiresAt.Add(-time.Nanosecond))
			_, err = s.Get(ctx, v.Key)
			noError(t, err, "live until ExpiresAt")
			clock.Set(v.ExpiresAt)
			_, err = s.Get(ctx, v.Key)
			errorIs(t, err, otp.ErrExpired, "at ExpiresAt")
		})
	}
}
