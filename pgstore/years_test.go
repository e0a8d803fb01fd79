package pgstore_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// TestAnyYear: a verification's times round-trip to the nanosecond
// whatever their year, and expiry, claims, retention, overrides and limits
// work by a clock of any year: the tables keep Unix seconds and
// nanoseconds apart, where one count of nanoseconds would hold only the
// years 1678 to 2262.
func TestAnyYear(t *testing.T) {
	ctx := t.Context()
	otptest.TestStoreAnyYear(t, func(clock otp.Clock) otp.Store {
		_, s := isolatedStore(t, pgstore.Config{Clock: clock, CleanInterval: -1})
		return s
	})
	const retention = time.Minute
	for _, base := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1500, 6, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(2026, 3, 1, 12, 34, 56, 789, time.UTC),
		time.Date(2500, 6, 1, 12, 0, 0, 987654321, time.UTC),
		time.Date(99999, 12, 31, 0, 0, 0, 5, time.UTC),
	} {
		t.Run(strconv.Itoa(base.Year()), func(t *testing.T) {
			clock := otptest.NewClock(base)
			_, s := isolatedStore(t, pgstore.Config{Clock: clock, Retention: retention, CleanInterval: -1})
			// GetAllow's repeat rule reads SentAt and the cooldown by the
			// same clock; an expired verification is gone after the
			// retention.
			v := sample("k", base, time.Minute)
			require.NoError(t, s.Put(ctx, v))
			got, err := s.GetAllow(ctx, v.Key, otp.Spare{To: v.To, Now: v.SentAt, Cooldowns: []time.Duration{time.Nanosecond}},
				otp.Claim{Token: "t", Until: base.Add(time.Minute)}, nil)
			require.NoError(t, err)
			assert.Equal(t, v, got, "the repeat inside its cooldown, which ends a nanosecond after SentAt")
			clock.Set(v.ExpiresAt.Add(retention - time.Nanosecond))
			_, err = s.Get(ctx, v.Key)
			require.ErrorIs(t, err, otp.ErrExpired, "inside the retention")
			clock.Set(v.ExpiresAt.Add(retention))
			_, err = s.Get(ctx, v.Key)
			require.ErrorIs(t, err, otp.ErrNotFound, "after the retention")

			// An override's Until round-trips and ends it.
			jm := otp.RegionTarget("JM")
			end := clock.Now().Add(time.Hour + time.Nanosecond)
			require.NoError(t, s.SetOverride(ctx, otp.Override{Target: jm, Action: otp.OverrideBlock, Until: end}))
			list, err := s.Overrides(ctx)
			require.NoError(t, err)
			assert.Equal(t, []otp.Override{{Target: jm, Action: otp.OverrideBlock, Until: end}}, list)
			block := []otp.LimitRequest{{Kind: otp.LimitOverride, Scope: otp.ScopeOverride, Key: jm.Key()}}
			require.ErrorIs(t, s.Allow(ctx, block), otp.ErrDestinationBlocked)
			clock.Set(end)
			require.NoError(t, s.Allow(ctx, block), "at the override's Until")

			// A bucket waits to the nanosecond; a breaker opens.
			bucket := []otp.LimitRequest{{Scope: otp.ScopeNumber, Key: ukMobile, Limit: otp.Limit{N: 1, Per: time.Hour}}}
			require.NoError(t, s.Allow(ctx, bucket))
			clock.Advance(time.Nanosecond)
			var rl *otp.RateLimitError
			require.ErrorAs(t, s.Allow(ctx, bucket), &rl)
			assert.Equal(t, time.Hour-time.Nanosecond, rl.RetryAfter)
			breaker := []otp.LimitRequest{{Kind: otp.LimitBreaker, Scope: otp.ScopeConversion, Key: "GB",
				Breaker: otp.Conversion{Window: time.Hour, MinSends: 2, MinShare: 0.5}}}
			require.NoError(t, s.Record(ctx, otp.OutcomeSent, breaker))
			require.NoError(t, s.Allow(ctx, breaker), "one send: too few to judge")
			require.NoError(t, s.Record(ctx, otp.OutcomeSent, breaker))
			require.ErrorIs(t, s.Allow(ctx, breaker), otp.ErrChallengeRequired, "two sends, none verified")
		})
	}
}
