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
// whatever their year, and expiry, claims, overrides and limits work by a
// clock of any year: the tables keep Unix seconds and nanoseconds apart,
// where one count of nanoseconds would hold only the years 1678 to 2262.
func TestAnyYear(t *testing.T) {
	ctx := t.Context()
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
			v := sample("k", base, time.Minute)
			v.CreatedAt = base.Add(-time.Second - time.Nanosecond)
			require.NoError(t, s.Put(ctx, v))
			got, err := s.Get(ctx, v.Key)
			require.NoError(t, err)
			assert.Equal(t, v, got)

			v.SentAt = base.Add(time.Nanosecond)
			require.NoError(t, s.MarkSent(ctx, v.Key, v.Ref.ID, v.SentAt))
			v.Sends++
			got, err = s.AddAttempt(ctx, v.Key, 5)
			require.NoError(t, err)
			v.Attempts = 1
			assert.Equal(t, v, got)
			got, err = s.GetAllow(ctx, v.Key, otp.Spare{To: v.To, Now: base, Cooldowns: []time.Duration{time.Nanosecond}},
				otp.Claim{Token: "t", Until: base.Add(time.Minute)}, nil)
			require.NoError(t, err)
			assert.Equal(t, v, got, "the repeat inside its cooldown, which ends a nanosecond after SentAt")

			// A claim ends at its Until.
			until := base.Add(time.Minute)
			_, err = s.Claim(ctx, "c", otp.Claim{Token: "a", Until: until})
			require.NoError(t, err)
			clock.Set(until.Add(-time.Nanosecond))
			_, err = s.Claim(ctx, "c", otp.Claim{Token: "b", Until: until.Add(time.Minute)})
			require.ErrorIs(t, err, otp.ErrSendInFlight, "a nanosecond before the claim's Until")
			clock.Set(until)
			_, err = s.Claim(ctx, "c", otp.Claim{Token: "b", Until: until.Add(time.Minute)})
			require.NoError(t, err, "at the claim's Until")

			// A verification expires at its ExpiresAt and is gone after
			// the retention.
			clock.Set(v.ExpiresAt.Add(-time.Nanosecond))
			_, err = s.Get(ctx, v.Key)
			require.NoError(t, err, "live until ExpiresAt")
			clock.Set(v.ExpiresAt)
			_, err = s.Get(ctx, v.Key)
			require.ErrorIs(t, err, otp.ErrExpired)
			clock.Set(v.ExpiresAt.Add(retention))
			_, err = s.Get(ctx, v.Key)
			require.ErrorIs(t, err, otp.ErrNotFound)

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
