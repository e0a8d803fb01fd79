package otp_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// pumpingOutcome is what reached the provider in one simulated hour.
type pumpingOutcome struct {
	attackStarts, attackSent int
	people, peopleServed     int
	peopleInAttackedCountry  int
	peopleInAttackedBlock    int // people whose number shares the attack's block of 10,000
	attackedCountryServed    int
	deniedBy                 map[string]int // attack denials by scope or class
}

// simulatePumping runs the attack issue 6 describes against a Verifier
// configured by cfg: 10,000 Starts for 1,000 valid mobile numbers in one
// narrow range of one country (GB), from 200 client IDs, interleaved with
// 1,000 people (one Start each, numbers from 20 countries, 50 of them in GB
// outside the range), spread evenly over one hour of a fake clock.
func simulatePumping(t testing.TB, cfg otp.Config) pumpingOutcome {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	clock := otptest.NewClock(time.Time{})
	var mu sync.Mutex
	sentTo := map[string]int{}
	p := otptest.NewProvider(otptest.ProviderConfig{Clock: clock, History: 1, OnSend: func(s otptest.Send) {
		mu.Lock()
		sentTo[s.To]++
		mu.Unlock()
	}})
	store := memstore.New(memstore.Config{Clock: clock})
	defer store.Close()
	cfg.Clock = clock
	v, err := otp.NewVerifier(p, store, cfg)
	require.NoError(t, err)

	type start struct {
		to, client string
		attack     bool
	}
	var starts []start
	attackNumbers := make([]string, 1000)
	for i := range attackNumbers {
		attackNumbers[i] = fmt.Sprintf("+447400123%03d", i)
	}
	for range 10_000 {
		starts = append(starts, start{
			to:     attackNumbers[rng.IntN(len(attackNumbers))],
			client: "bot-" + strconv.Itoa(rng.IntN(200)),
			attack: true,
		})
	}
	out := pumpingOutcome{attackStarts: 10_000, deniedBy: map[string]int{}}
	regions := []string{"GB", "US", "DE", "FR", "IN", "BR", "NG", "ID", "MX", "JP",
		"PH", "EG", "TR", "IT", "ES", "PL", "KE", "ZA", "AU", "CA"}
	seen := map[string]bool{}
	for _, region := range regions {
		for range 50 {
			to := randomMobile(t, rng, region, seen)
			if region == "GB" {
				require.NotEqual(t, "+447400123", to[:10], "people are outside the attacked range")
				out.peopleInAttackedCountry++
				if to[:9] == "+44740012" {
					out.peopleInAttackedBlock++
				}
			}
			starts = append(starts, start{to: to, client: "person-" + to})
		}
	}
	out.people = len(starts) - out.attackStarts
	rng.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })

	step := time.Hour / time.Duration(len(starts))
	for i, s := range starts {
		_, err := v.Start(ctx, "key-"+strconv.Itoa(i), s.to, otp.WithClient(s.client))
		if s.attack && err != nil {
			var rl *otp.RateLimitError
			if errors.As(err, &rl) {
				out.deniedBy[string(rl.Scope)]++
			} else {
				out.deniedBy[otp.ErrorClass(err)]++
			}
		}
		clock.Advance(step)
	}
	for _, s := range starts {
		if s.attack {
			continue
		}
		if sentTo[s.to] > 0 {
			out.peopleServed++
			if s.to[:3] == "+44" {
				out.attackedCountryServed++
			}
		}
	}
	for _, n := range attackNumbers {
		out.attackSent += sentTo[n]
	}
	return out
}

// randomMobile returns a valid mobile number of region not in seen: the
// region's example mobile number with all but its first three national
// digits drawn at random, until libphonenumber calls it mobile.
func randomMobile(t testing.TB, rng *rand.Rand, region string, seen map[string]bool) string {
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	require.NotNil(t, ex, region)
	nsn := []byte(phonenumbers.GetNationalSignificantNumber(ex))
	for range 10_000 {
		for i := 3; i < len(nsn); i++ {
			nsn[i] = byte('0' + rng.IntN(10))
		}
		num, err := phonenumbers.Parse("+"+strconv.Itoa(int(ex.GetCountryCode()))+string(nsn), "")
		require.NoError(t, err)
		typ := phonenumbers.GetNumberType(num)
		if phonenumbers.GetRegionCodeForNumber(num) != region || (typ != phonenumbers.MOBILE && typ != phonenumbers.FIXED_LINE_OR_MOBILE) {
			continue
		}
		to := phonenumbers.Format(num, phonenumbers.E164)
		if !seen[to] {
			seen[to] = true
			return to
		}
	}
	t.Fatalf("no random mobile number for %s", region)
	return ""
}

// TestPumpingSimulation holds the default guard to issue 6's targets: at
// most 1% of the attack's Starts reach the provider, and at least 99% of
// the people get their code. Run with -v for the figures.
func TestPumpingSimulation(t *testing.T) {
	def := simulatePumping(t, otp.Config{})
	t.Logf("default guard: attack %d/%d sends (%.2f%%), people %d/%d served (%d/%d in the attacked country, %d of them in the attacked block); attack denied by %v",
		def.attackSent, def.attackStarts, 100*float64(def.attackSent)/float64(def.attackStarts),
		def.peopleServed, def.people, def.attackedCountryServed, def.peopleInAttackedCountry,
		def.peopleInAttackedBlock, def.deniedBy)
	assert.LessOrEqual(t, def.attackSent*100, def.attackStarts, "at most 1% of the attack reaches the provider")
	assert.GreaterOrEqual(t, def.peopleServed*100, def.people*99, "at least 99% of people get their code")
	assert.GreaterOrEqual(t, def.attackedCountryServed, def.peopleInAttackedCountry-def.peopleInAttackedBlock,
		"the attacked country stays open to people outside the attacked block")

	// Without the range limit the per-country limit is all that stands in
	// the way: the attack spends it, and people in that country are shut out.
	noRange := simulatePumping(t, otp.Config{Limits: otp.Limits{PerRange: otp.NoLimit}})
	t.Logf("without PerRange: attack %d/%d sends, people %d/%d served (%d/%d in the attacked country); attack denied by %v",
		noRange.attackSent, noRange.attackStarts, noRange.peopleServed, noRange.people,
		noRange.attackedCountryServed, noRange.peopleInAttackedCountry, noRange.deniedBy)
	assert.Greater(t, noRange.attackSent*100, noRange.attackStarts, "the range limit is what stops this attack")
}
