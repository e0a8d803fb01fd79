package otp_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

// One test per rule of the pumping defence, each of which fails when its
// rule is taken out.

func requireChallenge(t *testing.T, err error, scope otp.Scope) *otp.ChallengeError {
	t.Helper()
	var ce *otp.ChallengeError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, otp.ErrChallengeRequired)
	assert.Equal(t, scope, ce.Scope)
	assert.Equal(t, "challenge_required", otp.ErrorClass(err))
	return ce
}

// uniqueRanges returns n GB mobiles, each in a range of its own.
func uniqueRanges(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+4474%04d0000", 1000+i)
	}
	return out
}

func TestUnverifiedRangeBudget(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	start := func(key, to string, opts ...otp.StartOption) error {
		_, err := f.v.Start(ctx, key, to, opts...)
		return err
	}
	// Default: two unverified sends per range a day.
	require.NoError(t, start("a", "+447400123001"))
	require.NoError(t, start("b", "+447400123002"))
	ce := requireChallenge(t, start("c", "+447400123003"), otp.ScopeRange)
	assert.Greater(t, ce.RetryAfter, 11*time.Hour, "a token comes back in 12 hours")
	ev := f.events.last()
	assert.Equal(t, otp.EventChallenged, ev.Kind)
	assert.Equal(t, otp.ScopeRange, ev.Scope)
	assert.Equal(t, "+44740012xxxx", ev.Range, "events name the range, not the number")
	assert.Equal(t, 2, f.p.Calls(otp.OpStart), "nothing sent")

	// Another range goes on; a verified send gives its token back.
	require.NoError(t, start("d", "+447400133001"))
	_, err := f.v.Check(ctx, "a", fixedCode)
	require.NoError(t, err)
	require.NoError(t, start("c", "+447400123003"), "the verified send gave its token back")
	requireChallenge(t, start("e", "+447400123004"), otp.ScopeRange)

	// A person who passes the challenge gets the code, from the small
	// budget of challenged sends.
	require.NoError(t, start("e", "+447400123004", otp.WithChallengePassed()))
	for i := range 9 {
		require.NoError(t, start(fmt.Sprint("f", i), fmt.Sprint("+44740012310", i), otp.WithChallengePassed()))
	}
	_, err = f.v.Start(ctx, "g", "+447400123200", otp.WithChallengePassed())
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl, "ten challenged unverified sends per range an hour")
	assert.Equal(t, otp.ScopeChallenged, rl.Scope)
}

func TestRangeDigitsFollowTheNumberingPlan(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	// Iceland's 7-digit numbers make ranges of 1,000; Britain's 10-digit
	// ones, of 10,000.
	is := exampleNumber(t, "IS", phonenumbers.MOBILE)
	_, err := f.v.Start(ctx, "is", is)
	require.NoError(t, err)
	assert.Equal(t, is[:len(is)-3]+"xxx", f.events.last().Range)
	_, err = f.v.Start(ctx, "gb", ukMobile)
	require.NoError(t, err)
	assert.Equal(t, ukMobile[:len(ukMobile)-4]+"xxxx", f.events.last().Range)

	f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: otp.Guard{RangeDigits: map[string]int{"GB": 2}}})
	_, err = f.v.Start(ctx, "gb2", ukMobile2)
	require.NoError(t, err)
	assert.Equal(t, ukMobile2[:len(ukMobile2)-2]+"xx", f.events.last().Range)
}

func TestConversionBreakerPerRegion(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	// Britain's history: 20 people who verified.
	numbers := uniqueRanges(60)
	for i, to := range numbers[:20] {
		key := fmt.Sprint("person", i)
		_, err := f.v.Start(ctx, key, to)
		require.NoError(t, err, "person %d", i)
		_, err = f.v.Check(ctx, key, fixedCode)
		require.NoError(t, err, "person %d", i)
	}
	f.clock.Advance(time.Minute)
	// 40 unverified sends, each in a range of its own: no range budget
	// binds, and in their grace (30 s) they are not yet unverified; 20 of
	// them are a surge beside the 20 verified, too few to open.
	for i, to := range numbers[20:] {
		_, err := f.v.Start(ctx, fmt.Sprint("bot", i), to)
		require.NoError(t, err, "send %d", i)
	}
	_, err := f.v.Start(ctx, "early", "+447420009999")
	require.NoError(t, err, "sends in their grace (30 s) are not yet unverified")
	f.clock.Advance(time.Minute)
	_, err = f.v.Start(ctx, "next", "+447420001234")
	requireChallenge(t, err, otp.ScopeConversion)
	assert.Equal(t, 61, f.p.Calls(otp.OpStart))
	_, err = f.v.Start(ctx, "fr", exampleNumber(t, "FR", phonenumbers.MOBILE))
	require.NoError(t, err, "France has a breaker of its own")

	// A person passes the challenge and verifies.
	_, err = f.v.Start(ctx, "next", "+447420001234", otp.WithChallengePassed())
	require.NoError(t, err)
	_, err = f.v.Check(ctx, "next", fixedCode)
	require.NoError(t, err)

	// The breaker stays open while its refusals stand, then closes: two
	// windows on, the attack has left its counts.
	f.clock.Advance(2 * time.Hour)
	_, err = f.v.Start(ctx, "later", "+447430001234")
	require.NoError(t, err, "the attack is out of the window")
}

func TestBreakersOfASharedCallingCode(t *testing.T) {
	cfg := otp.Config{Limits: otp.Limits{UnverifiedPerRange: otp.NoLimit}} // breakers only
	f := newFixture(t, cfg, otptest.ProviderConfig{})
	send := func(key, region string, verify bool) error {
		_, err := f.v.Start(ctx, key, exampleNumberN(t, region, key))
		if err == nil && verify {
			_, err = f.v.Check(ctx, key, fixedCode)
		}
		return err
	}
	// Canada is busy and verifies; Jamaica is pumped.
	for i := range 25 {
		require.NoError(t, send(fmt.Sprint("ca", i), "CA", true))
	}
	for i := range 20 {
		require.NoError(t, send(fmt.Sprint("jm", i), "JM", false))
	}
	f.clock.Advance(time.Minute) // past the sends' grace
	requireChallenge(t, send("jm-next", "JM", false), otp.ScopeConversion)
	require.NoError(t, send("us", "US", false), "the US shares calling code 1, not Jamaica's breaker")
	require.NoError(t, send("ca-next", "CA", false), "nor does Canada")

	// Thin spread over quiet Caribbean regions trips the +1 group, which
	// judges only regions too quiet for their own.
	f = newFixture(t, cfg, otptest.ProviderConfig{})
	for i := range 25 {
		if i == 20 {
			f.clock.Advance(time.Minute) // Canada's first 20 past their grace: judged on its own
		}
		require.NoError(t, send(fmt.Sprint("ca", i), "CA", true))
	}
	// Canada's first 20 sends and verifications, before it was busy enough
	// for its own breaker, count in the group, so the spread needs more
	// than 30 sends (none of its regions more than four) to bring the
	// group's share below 0.4.
	quiet := []string{"BS", "BB", "AG", "DM", "GD", "KN", "LC", "VC", "TT", "KY"}
	for i := range 28 {
		require.NoError(t, send(fmt.Sprint("c", i), quiet[i%len(quiet)], false), "spread %d", i)
	}
	f.clock.Advance(time.Minute) // past the sends' grace
	require.NoError(t, send("c28", "BB", false), "28 spread sends: 20 of 48 verified, not below 0.4")
	for i := 29; i < 40; i++ {
		require.NoError(t, send(fmt.Sprint("c", i), quiet[i%len(quiet)], false), "spread %d", i)
	}
	f.clock.Advance(time.Minute)
	requireChallenge(t, send("bb-next", "BB", false), otp.ScopeConversion) // 20 of 60
	require.NoError(t, send("ca-next", "CA", false), "Canada is judged by its own breaker")
	require.NoError(t, send("us", "US", false), "the main region is in no group")
}

func TestQuietRegionsShareABreaker(t *testing.T) {
	spread := []string{"DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "SE", "NO", "DK", "FI", "PL",
		"CZ", "PT", "IE", "GR", "HU", "RO", "BG", "HR", "SK", "SI", "LT", "EE"}
	attack := func(t *testing.T, conv otp.Conversion) *fixture {
		cfg := otp.Config{Limits: otp.Limits{UnverifiedPerRange: otp.NoLimit}, // breakers only
			Guard: otp.Guard{Conversion: conv}}
		f := newFixture(t, cfg, otptest.ProviderConfig{})
		// Britain is busy and verifies: judged by its own breaker.
		for i := range 25 {
			if i == 20 {
				f.clock.Advance(time.Minute)
			}
			key := fmt.Sprint("gb", i)
			_, err := f.v.Start(ctx, key, exampleNumberN(t, "GB", key))
			require.NoError(t, err)
			_, err = f.v.Check(ctx, key, fixedCode)
			require.NoError(t, err)
		}
		// 100 unverified sends, 4 to each of 25 regions: too few for any
		// region's own breaker (MinSends 20).
		for i := range 100 {
			key := fmt.Sprint("bot", i)
			_, err := f.v.Start(ctx, key, exampleNumberN(t, spread[i%len(spread)], key))
			require.NoError(t, err, "spread %d", i)
		}
		f.clock.Advance(time.Minute) // past the sends' grace
		return f
	}

	f := attack(t, otp.Conversion{})
	_, err := f.v.Start(ctx, "mx", exampleNumberN(t, "MX", "mx"))
	requireChallenge(t, err, otp.ScopeConversion)
	_, err = f.v.Start(ctx, "de", exampleNumberN(t, "DE", "de"))
	requireChallenge(t, err, otp.ScopeConversion)
	_, err = f.v.Start(ctx, "gb", exampleNumberN(t, "GB", "gb-next"))
	require.NoError(t, err, "Britain is judged by its own breaker")

	f = attack(t, otp.Conversion{QuietMinSends: -1})
	_, err = f.v.Start(ctx, "mx", exampleNumberN(t, "MX", "mx"))
	require.NoError(t, err, "QuietMinSends < 0 turns the quiet breaker off")

	f = attack(t, otp.Conversion{QuietRecordOnly: true})
	_, err = f.v.Start(ctx, "mx", exampleNumberN(t, "MX", "mx"))
	require.NoError(t, err, "QuietRecordOnly: the quiet breaker only records")
	assert.Contains(t, f.events.kinds()[len(f.events.kinds())-2:], otp.EventFlagged, "what it would have refused is flagged")
	n := len(f.events.all())
	_, err = f.v.Start(ctx, "gb", exampleNumberN(t, "GB", "gb-next"))
	require.NoError(t, err)
	assert.NotContains(t, f.events.kinds()[n:], otp.EventFlagged,
		"Britain is judged by its own breaker, record-only quiet breaker or not")
}

// exampleNumberN returns a valid mobile number of region made from key:
// region's example mobile number with its last six digits drawn from a
// generator seeded by key, so that keys give distinct numbers, mostly in
// distinct ranges.
func exampleNumberN(t *testing.T, region, key string) string {
	base := exampleNumber(t, region, phonenumbers.MOBILE)
	var seed uint64
	for _, c := range key {
		seed = seed*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for range 1000 {
		b := []byte(base)
		for i := len(b) - 6; i < len(b); i++ {
			b[i] = byte('0' + rng.IntN(10))
		}
		num, err := phonenumbers.Parse(string(b), "")
		if err == nil && phonenumbers.GetRegionCodeForNumber(num) == region &&
			phonenumbers.GetNumberType(num) == phonenumbers.GetNumberType(mustParse(t, base)) {
			return string(b)
		}
	}
	t.Fatalf("no mobile number of %s for %q", region, key)
	return ""
}

func mustParse(t *testing.T, s string) *phonenumbers.PhoneNumber {
	num, err := phonenumbers.Parse(s, "")
	require.NoError(t, err)
	return num
}

func TestRegionBudgetsAreByISORegion(t *testing.T) {
	one := otp.Limit{N: 1, Per: time.Hour}
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerRegion: one, Regions: map[string]otp.Limit{"GB": {N: 2, Per: time.Hour}}}},
		otptest.ProviderConfig{})
	start := func(key, to string) error { _, err := f.v.Start(ctx, key, to); return err }
	require.NoError(t, start("us", exampleNumber(t, "US", phonenumbers.MOBILE)))
	require.NoError(t, start("ca", exampleNumber(t, "CA", phonenumbers.MOBILE)), "Canada is not the US, though both are +1")
	var rl *otp.RateLimitError
	require.ErrorAs(t, start("us2", exampleNumberN(t, "US", "x")), &rl)
	assert.Equal(t, otp.ScopeRegion, rl.Scope)
	require.NoError(t, start("gb1", uniqueRanges(2)[0]))
	require.NoError(t, start("gb2", uniqueRanges(2)[1]), "Regions gives Britain two")

	// Outside the expected regions, all share one budget.
	f = newFixture(t, otp.Config{Limits: otp.Limits{ExpectedRegions: []string{"GB"}, Elsewhere: one}}, otptest.ProviderConfig{})
	require.NoError(t, start("fr", exampleNumber(t, "FR", phonenumbers.MOBILE)))
	require.ErrorAs(t, start("de", exampleNumber(t, "DE", phonenumbers.MOBILE)), &rl)
	assert.Equal(t, otp.ScopeRegion, rl.Scope)
	require.NoError(t, start("gb", ukMobile), "an expected region has its own")
}

func TestSatelliteAndNetworkCodesAreRefused(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{Channels: []otp.Channel{otp.SMS, otp.Voice}})
	for _, cc := range []int{870, 881, 882, 883} {
		to := phonenumbers.Format(phonenumbers.GetExampleNumberForNonGeoEntity(cc), phonenumbers.E164)
		for _, ch := range []otp.Channel{otp.SMS, otp.Voice} {
			_, err := f.v.Start(ctx, fmt.Sprint(cc, ch), to, otp.WithChannel(ch))
			require.ErrorIs(t, err, otp.ErrRegionNotAllowed, "+%d by %s", cc, ch)
			assert.Equal(t, "refused_destination", otp.ErrorClass(err))
		}
	}
	assert.Zero(t, f.p.Calls(otp.OpStart))

	f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: otp.Guard{AllowedNetworkCodes: []int{882},
		NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: otp.AllNumberTypes}}})
	_, err := f.v.Start(ctx, "882", phonenumbers.Format(phonenumbers.GetExampleNumberForNonGeoEntity(882), phonenumbers.E164))
	require.NoError(t, err, "a code listed in AllowedNetworkCodes")
}

// A verified send to an allowed network code gives its range token back, as
// one to a country does: Check finds the range Start charged.
func TestNetworkCodeSendsGiveTheirRangeTokenBack(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		n := phonenumbers.GetExampleNumberForNonGeoEntity(cc)
		if n == nil {
			continue
		}
		to := phonenumbers.Format(n, phonenumbers.E164)
		f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: otp.Guard{AllowedNetworkCodes: []int{cc},
			NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: otp.AllNumberTypes}},
			Limits: otp.Limits{UnverifiedPerRange: otp.Limit{N: 1, Per: 24 * time.Hour}}})
		key := fmt.Sprint(cc)
		_, err := f.v.Start(ctx, key+"a", to)
		require.NoError(t, err, "+%d", cc)
		_, err = f.v.Check(ctx, key+"a", fixedCode)
		require.NoError(t, err, "+%d", cc)
		_, err = f.v.Start(ctx, key+"b", to)
		require.NoError(t, err, "+%d: the verified send gave its token back", cc)
		requireChallenge(t, func() error { _, err := f.v.Start(ctx, key+"c", to); return err }(), otp.ScopeRange)
	}
}

func TestOverridesAtRuntime(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	start := func(key, to string, opts ...otp.StartOption) error {
		_, err := f.v.Start(ctx, key, to, opts...)
		return err
	}
	require.NoError(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("FR"), Action: otp.OverrideBlock}))
	err := start("fr", exampleNumber(t, "FR", phonenumbers.MOBILE), otp.WithChallengePassed())
	var be *otp.BlockedError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, otp.RegionTarget("FR"), be.Target)
	assert.Equal(t, "refused_destination", otp.ErrorClass(err))

	rangeID := "+44740012xxxx"
	require.NoError(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RangeTarget(rangeID), Action: otp.OverrideChallenge,
		Until: f.clock.Now().Add(time.Hour)}))
	requireChallenge(t, start("a", ukMobile), otp.ScopeOverride)
	require.NoError(t, start("a", ukMobile, otp.WithChallengePassed()), "a passed challenge answers it")

	list, err := f.v.Overrides(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	f.clock.Advance(time.Hour)
	require.NoError(t, start("b", ukMobile2), "the challenge override has ended")
	require.NoError(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("FR")}))
	require.NoError(t, start("fr", exampleNumber(t, "FR", phonenumbers.MOBILE)), "unblocked")
	list, err = f.v.Overrides(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)

	// Allow exempts a known range from the unverified budget.
	require.NoError(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RangeTarget("+44740099xxxx"), Action: otp.OverrideAllow}))
	for i := range 5 {
		require.NoError(t, start(fmt.Sprint("corp", i), fmt.Sprint("+44740099000", i)))
	}
	assert.Error(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("XX"), Action: otp.OverrideBlock}))
	_, err = otp.ParseTarget("range:+44abc")
	assert.Error(t, err)
}

func TestResendCooldownsGrow(t *testing.T) {
	f := newFixture(t, otp.Config{TTL: time.Hour, Limits: otp.Limits{PerNumber: otp.Limit{N: 20, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit}},
		otptest.ProviderConfig{})
	st := f.start(t)
	assert.Equal(t, st.SentAt.Add(30*time.Second), st.ResendAt)
	for _, wait := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		f.clock.Advance(wait - time.Second)
		_, err := f.v.Resend(ctx, sessionKey)
		var rl *otp.RateLimitError
		require.ErrorAs(t, err, &rl, "a second before the cooldown of %v ends", wait)
		require.ErrorIs(t, err, otp.ErrResendTooSoon)
		assert.Equal(t, time.Second, rl.RetryAfter)
		st, err = f.v.Start(ctx, sessionKey, ukMobile)
		require.NoError(t, err, "a repeat Start inside the cooldown")
		f.clock.Advance(time.Second)
		st, err = f.v.Resend(ctx, sessionKey)
		require.NoError(t, err, "at the end of the cooldown of %v", wait)
	}
	assert.Equal(t, 6, f.p.Calls(otp.OpResend))
	assert.Equal(t, 1, f.p.Calls(otp.OpStart), "the repeats sent nothing")
	assert.Equal(t, st.SentAt.Add(10*time.Minute), st.ResendAt)

	// Start after the cooldown, to the same number, keeps counting.
	f.clock.Advance(10 * time.Minute)
	st, err := f.v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	assert.Equal(t, st.SentAt.Add(10*time.Minute), st.ResendAt)
	st, err = f.v.Start(ctx, sessionKey, ukMobile2)
	require.NoError(t, err, "another number starts the schedule again")
	assert.Equal(t, st.SentAt.Add(30*time.Second), st.ResendAt)
}

func TestEachSignalRuleCanRecordOnly(t *testing.T) {
	f := newFixture(t, otp.Config{
		Limits: otp.Limits{UnverifiedPerRange: otp.Limit{RecordOnly: true}},
		Guard:  otp.Guard{Conversion: otp.Conversion{RecordOnly: true}},
	}, otptest.ProviderConfig{})
	for i := range 3 {
		_, err := f.v.Start(ctx, fmt.Sprint("r", i), fmt.Sprint("+44740012300", i))
		require.NoError(t, err, "the range budget records")
	}
	for i, to := range uniqueRanges(22) {
		if i == 21 {
			f.clock.Advance(time.Minute) // past the others' grace
		}
		_, err := f.v.Start(ctx, fmt.Sprint("b", i), to)
		require.NoError(t, err, "the breaker records")
	}
	flagged := map[otp.Scope]int{}
	for _, e := range f.events.all() {
		if e.Kind == otp.EventFlagged {
			flagged[e.Scope]++
			assert.ErrorIs(t, e.Err, otp.ErrChallengeRequired)
		}
	}
	assert.Equal(t, 1, flagged[otp.ScopeRange])
	assert.Positive(t, flagged[otp.ScopeConversion])
	assert.Equal(t, 25, f.p.Calls(otp.OpStart))
}

func TestChallengePassedStillMeetsTheBudgets(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}, PerClient: otp.Limit{N: 2, Per: time.Hour}}},
		otptest.ProviderConfig{})
	_, err := f.v.Start(ctx, "a", ukMobile, otp.WithChallengePassed(), otp.WithClient("c"))
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "b", ukMobile, otp.WithChallengePassed(), otp.WithClient("d"))
	require.ErrorIs(t, err, otp.ErrRateLimited, "PerNumber")
	_, err = f.v.Start(ctx, "c", ukMobile2, otp.WithChallengePassed(), otp.WithClient("c"))
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "d", "+447400123458", otp.WithChallengePassed(), otp.WithClient("c"))
	require.ErrorIs(t, err, otp.ErrRateLimited, "PerClient")
}

func TestLongClientIDsKeepTheirLimits(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerClient: otp.Limit{N: 1, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit}},
		otptest.ProviderConfig{})
	long := strings.Repeat("x", 4096)
	_, err := f.v.Start(ctx, "a", ukMobile, otp.WithClient(long+"1"))
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "b", ukMobile2, otp.WithClient(long+"1"))
	require.ErrorIs(t, err, otp.ErrRateLimited, "the same long ID is the same client")
	_, err = f.v.Start(ctx, "c", ukMobile2, otp.WithClient(long+"2"))
	require.NoError(t, err, "another long ID is another client")
}

// An event of a refused destination says what refused it, so a dashboard
// tells the Guard's fixed rules from an operator's block and from the
// vendor's own fraud or geography block.
func TestRefusedDestinationEventsNameWhatRefused(t *testing.T) {
	f := newFixture(t, otp.Config{Guard: otp.Guard{AllowedRegions: []string{"GB", "FR"}}}, otptest.ProviderConfig{})
	refused := func(key, to string, kind otp.EventKind, scope otp.Scope) {
		t.Helper()
		_, err := f.v.Start(ctx, key, to)
		if kind != otp.EventFlagged {
			require.Error(t, err)
		}
		var ev otp.Event
		for _, e := range f.events.all() {
			if e.Kind == kind {
				ev = e
			}
		}
		assert.Equal(t, "refused_destination", ev.Class, key)
		assert.Equal(t, scope, ev.Scope, key)
	}
	refused("us", exampleNumber(t, "US", phonenumbers.MOBILE), otp.EventFailed, otp.ScopeGuard)
	refused("landline", exampleNumber(t, "GB", phonenumbers.FIXED_LINE), otp.EventFailed, otp.ScopeGuard)
	require.NoError(t, f.v.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("FR"), Action: otp.OverrideBlock}))
	refused("fr", exampleNumber(t, "FR", phonenumbers.MOBILE), otp.EventFailed, otp.ScopeOverride)
	f.p.FailNext(otp.OpStart, otptest.Fault{Err: &otp.ProviderError{Provider: "otptest", Op: otp.OpStart, NotSent: true,
		Err: otp.ErrRegionNotAllowed}})
	refused("vendor", ukMobile, otp.EventFailed, otp.ScopeProvider)

	f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: otp.Guard{AllowedRegions: []string{"GB"}, RecordOnly: true}})
	refused("flagged", exampleNumber(t, "DE", phonenumbers.MOBILE), otp.EventFlagged, otp.ScopeGuard)
}

func TestEventsCarryWhereTheNumberIs(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	us := exampleNumber(t, "US", phonenumbers.MOBILE)
	_, err := f.v.Start(ctx, sessionKey, us)
	require.NoError(t, err)
	ev := f.events.last()
	assert.Equal(t, "US", ev.Region)
	assert.Equal(t, "1", ev.CallingCode)
	assert.Equal(t, us[:len(us)-4]+"xxxx", ev.Range)
	assert.NotContains(t, fmt.Sprint(ev), us)
}

// A limiter full of live buckets refuses new keys and says so: an event
// and a warning.
func TestFullLimiterFailsClosedAndSaysSo(t *testing.T) {
	var logs strings.Builder
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.v = f.verifier(t, f.p, f.store, otp.Config{
		Limiter: otp.NewMemoryLimiter(otp.MemoryLimiterConfig{Clock: f.clock, MaxBytes: 64}),
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	_, err := f.v.Start(ctx, sessionKey, ukMobile)
	var rl *otp.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, otp.ScopeCapacity, rl.Scope)
	assert.Zero(t, f.p.Calls(otp.OpStart))
	ev := f.events.last()
	assert.Equal(t, otp.EventLimited, ev.Kind)
	assert.Equal(t, otp.ScopeCapacity, ev.Scope)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "scope=capacity")
}
