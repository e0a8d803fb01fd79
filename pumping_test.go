package otp_test

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// The pumping simulation runs attacks and busy days through a Verifier on a
// fake clock, with the default configuration unless a scenario says
// otherwise, and holds the defence to its targets: at most 1% of the
// Starts of an attack on number ranges reach the provider, at most 2% of
// an attack on whole regions; at least 99% of people get their code, 95%
// in a region whose ranges are attacked; a busy day with no attack serves
// 99%; and a flood meant to evict the limiter's state sends no more than
// the limits allow. Run with -v for the figures.
//
// People behave as people do: each Starts once, enters the code 10 s to
// 3 min later, or, one in twelve, never; one who is asked for a challenge
// passes it and Starts again WithChallengePassed. Bots Start and never
// verify, nor pass a challenge.

// flow is one Start by a person or a bot, and what came of it.
type simFlow struct {
	at      time.Duration // since the scenario began
	to      string
	client  string
	region  string
	attack  bool
	abandon bool // a person who never enters the code
	delay   time.Duration

	sent, challenged bool
	challengedBy     string // for a person asked for a challenge: why
	deniedBy         string // the rule that stopped it: a scope or an error class
}

// scenario describes one simulated run.
type scenario struct {
	name     string
	length   time.Duration
	flows    []*simFlow
	cfg      otp.Config
	attacked map[string]bool // regions whose people are counted apart
}

// outcome is what a run gave.
type outcome struct {
	attackStarts, attackSent         int
	people, served, challenged       int
	attackedPeople, attackedServed   int
	challengedElsewhere              int            // people asked for a challenge outside the attacked regions
	deniedBy                         map[string]int // attack Starts by the rule that stopped them
	peopleDeniedBy                   map[string]int
	challengedBy                     map[string]int // people asked for a challenge, by region and rule
	sentTo                           map[string]int
	capacityDenials, flaggedByLimits int
}

func (o outcome) String() string {
	return fmt.Sprintf("attack %d/%d sent (%.2f%%); people %d/%d served (%.2f%%), %d after a challenge (%d outside the attacked regions); "+
		"in the attacked regions %d/%d; attack stopped by %v; people stopped by %v; people challenged by %v",
		o.attackSent, o.attackStarts, pct(o.attackSent, o.attackStarts), o.served, o.people, pct(o.served, o.people),
		o.challenged, o.challengedElsewhere, o.attackedServed, o.attackedPeople, sortedCounts(o.deniedBy), sortedCounts(o.peopleDeniedBy), sortedCounts(o.challengedBy))
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d", k, m[k])
	}
	return "[" + b.String() + "]"
}

// checks is a queue of Checks people will make, by time.
type checks []pendingCheck

type pendingCheck struct {
	at  time.Duration
	key string
}

func (c checks) Len() int           { return len(c) }
func (c checks) Less(i, j int) bool { return c[i].at < c[j].at }
func (c checks) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *checks) Push(x any)        { *c = append(*c, x.(pendingCheck)) }
func (c *checks) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

const simCode = "123456"

// abandonRate: one person in abandonRate never enters the code.
const abandonRate = 12

// run plays sc on a Verifier over memstore and the fake provider.
func run(t testing.TB, sc scenario) outcome {
	t.Helper()
	clock := otptest.NewClock(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	start := clock.Now()
	out := outcome{deniedBy: map[string]int{}, peopleDeniedBy: map[string]int{}, challengedBy: map[string]int{}, sentTo: map[string]int{}}
	p := otptest.NewProvider(otptest.ProviderConfig{Code: simCode, Clock: clock, History: 1,
		OnSend: func(s otptest.Send) { out.sentTo[s.To]++ }})
	store := memstore.New(memstore.Config{Clock: clock})
	defer store.Close()
	cfg := sc.cfg
	cfg.Clock = clock
	cfg.OnEvent = func(e otp.Event) {
		if e.Scope == otp.ScopeCapacity {
			out.capacityDenials++
		}
		if e.Kind == otp.EventFlagged {
			out.flaggedByLimits++
		}
	}
	v, err := otp.NewVerifier(p, store, cfg)
	require.NoError(t, err)

	sort.SliceStable(sc.flows, func(i, j int) bool { return sc.flows[i].at < sc.flows[j].at })
	var pending checks
	checkUntil := func(until time.Duration) {
		for len(pending) > 0 && pending[0].at <= until {
			c := heap.Pop(&pending).(pendingCheck)
			clock.Set(start.Add(c.at))
			_, err := v.Check(ctx, c.key, simCode)
			require.NoError(t, err, "a person's right code")
		}
	}
	for i, f := range sc.flows {
		checkUntil(f.at)
		clock.Set(start.Add(f.at))
		key := "key-" + strconv.Itoa(i)
		_, err := v.Start(ctx, key, f.to, otp.WithClient(f.client))
		if errors.Is(err, otp.ErrChallengeRequired) && !f.attack {
			f.challenged, f.challengedBy = true, deniedBy(err)
			_, err = v.Start(ctx, key, f.to, otp.WithClient(f.client), otp.WithChallengePassed())
		}
		if err != nil {
			f.deniedBy = deniedBy(err)
			continue
		}
		f.sent = true
		if !f.attack && !f.abandon {
			heap.Push(&pending, pendingCheck{at: f.at + f.delay, key: key})
		}
	}
	checkUntil(sc.length + time.Hour)

	for _, f := range sc.flows {
		if f.attack {
			out.attackStarts++
			if f.sent {
				out.attackSent++
			} else {
				out.deniedBy[f.deniedBy]++
			}
			continue
		}
		out.people++
		if f.challenged {
			out.challenged++
			out.challengedBy[f.region+"/"+f.challengedBy]++
			if !sc.attacked[f.region] {
				out.challengedElsewhere++
			}
		}
		if f.sent {
			out.served++
		} else {
			out.peopleDeniedBy[f.deniedBy]++
		}
		if sc.attacked[f.region] {
			out.attackedPeople++
			if f.sent {
				out.attackedServed++
			}
		}
	}
	return out
}

func deniedBy(err error) string {
	var rl *otp.RateLimitError
	var ce *otp.ChallengeError
	switch {
	case errors.As(err, &rl):
		return string(rl.Scope)
	case errors.As(err, &ce):
		return "challenge:" + string(ce.Scope)
	}
	return otp.ErrorClass(err)
}

// numbers draws valid mobile numbers, none twice.
type numbers struct {
	rng  *rand.Rand
	seen map[string]bool
}

func newNumbers(seed uint64) *numbers {
	return &numbers{rng: rand.New(rand.NewPCG(seed, seed+1)), seen: map[string]bool{}}
}

// mobile returns a valid mobile number of region: its example mobile
// number with all but the first three national digits drawn at random,
// until libphonenumber calls it mobile.
func (n *numbers) mobile(t testing.TB, region string) string {
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	require.NotNil(t, ex, region)
	e164 := phonenumbers.Format(ex, phonenumbers.E164)
	cc := len(strconv.Itoa(int(ex.GetCountryCode())))
	return n.inRange(t, region, e164[:1+cc+3], len(e164))
}

// inRange returns a valid mobile number of region that starts with
// prefix, length characters long.
func (n *numbers) inRange(t testing.TB, region, prefix string, length int) string {
	b := []byte(prefix)
	for range 10_000 {
		b = b[:len(prefix)]
		for len(b) < length {
			b = append(b, byte('0'+n.rng.IntN(10)))
		}
		to := string(b)
		num, err := phonenumbers.Parse(to, "")
		if err != nil || n.seen[to] {
			continue
		}
		typ := phonenumbers.GetNumberType(num)
		if phonenumbers.GetRegionCodeForNumber(num) != region || (typ != phonenumbers.MOBILE && typ != phonenumbers.FIXED_LINE_OR_MOBILE) {
			continue
		}
		n.seen[to] = true
		return to
	}
	t.Fatalf("no random mobile number for %s %s", region, prefix)
	return ""
}

// ranges returns count distinct ranges (E.164 prefixes of blocks of 10,000
// numbers) of region, and the length of their numbers.
func (n *numbers) ranges(t testing.TB, region string, count int) ([]string, int) {
	var out []string
	length := 0
	seen := map[string]bool{}
	for len(out) < count {
		to := n.mobile(t, region)
		prefix := to[:len(to)-4]
		if !seen[prefix] {
			seen[prefix] = true
			out = append(out, prefix)
			length = len(to)
		}
	}
	return out, length
}

// people adds count people spread evenly over length from the regions,
// weighted by weights (nil: alike), with their own client IDs.
func people(t testing.TB, rng *rand.Rand, nums *numbers, count int, from, length time.Duration, regions []string, weights []int) []*simFlow {
	total := 0
	for i := range regions {
		total += weight(weights, i)
	}
	var out []*simFlow
	for range count {
		pick := rng.IntN(total)
		r := 0
		for ; pick >= weight(weights, r); r++ {
			pick -= weight(weights, r)
		}
		out = append(out, person(t, rng, nums, regions[r], from+time.Duration(rng.Int64N(int64(length)))))
	}
	return out
}

func weight(weights []int, i int) int {
	if weights == nil {
		return 1
	}
	return weights[i]
}

func person(t testing.TB, rng *rand.Rand, nums *numbers, region string, at time.Duration) *simFlow {
	to := nums.mobile(t, region)
	return &simFlow{at: at, to: to, region: region, client: "person-" + to,
		abandon: rng.IntN(abandonRate) == 0, delay: 10*time.Second + time.Duration(rng.Int64N(int64(170*time.Second)))}
}

// bots adds count attack Starts spread evenly over length, to numbers to()
// draws, from 500 rotating client IDs.
func bots(rng *rand.Rand, count int, from, length time.Duration, to func() (string, string)) []*simFlow {
	var out []*simFlow
	for range count {
		n, region := to()
		out = append(out, &simFlow{at: from + time.Duration(rng.Int64N(int64(length))), to: n, region: region,
			client: "bot-" + strconv.Itoa(rng.IntN(500)), attack: true})
	}
	return out
}

// world is where the people of the scenarios come from.
var world = []string{"GB", "US", "DE", "FR", "IN", "BR", "NG", "ID", "MX", "JP", "PH", "EG", "TR", "IT", "ES",
	"PL", "KE", "ZA", "AU", "CA", "NL", "SE", "AR", "CO", "VN", "TH", "MY", "PK", "BD", "SA"}

// An attack spread over 48 ranges of 10,000 numbers in six high-cost
// countries, 14,400 Starts over a day, among 2,000 people from 30
// countries.
func rangesOverADay(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(11, 12))
	nums := newNumbers(13)
	sc := scenario{name: "ranges over a day", length: 24 * time.Hour, attacked: map[string]bool{}}
	type block struct {
		region, prefix string
		length         int
	}
	var blocks []block
	for _, region := range []string{"GB", "UZ", "RU", "ID", "NG", "TJ"} {
		prefixes, length := nums.ranges(t, region, 8)
		for _, p := range prefixes {
			blocks = append(blocks, block{region, p, length})
		}
		sc.attacked[region] = true
	}
	sc.flows = bots(rng, 14_400, 0, sc.length, func() (string, string) {
		b := blocks[rng.IntN(len(blocks))]
		return nums.inRange(t, b.region, b.prefix, b.length), b.region
	})
	regions := append(append([]string(nil), world...), "UZ", "RU", "TJ")
	sc.flows = append(sc.flows, people(t, rng, nums, 2_000, 0, sc.length, regions, nil)...)
	return sc
}

// A low-and-slow attack: 300 Starts an hour into five ranges of two
// countries for 12 hours, among 1,000 people.
func lowAndSlow(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(21, 22))
	nums := newNumbers(23)
	sc := scenario{name: "low and slow", length: 12 * time.Hour, attacked: map[string]bool{"GB": true, "FR": true}}
	gb, gbLen := nums.ranges(t, "GB", 3)
	fr, frLen := nums.ranges(t, "FR", 2)
	sc.flows = bots(rng, 3_600, 0, sc.length, func() (string, string) {
		if i := rng.IntN(5); i < 3 {
			return nums.inRange(t, "GB", gb[i], gbLen), "GB"
		} else {
			return nums.inRange(t, "FR", fr[i-3], frLen), "FR"
		}
	})
	sc.flows = append(sc.flows, people(t, rng, nums, 1_000, 0, sc.length, world, nil)...)
	return sc
}

// Random valid mobiles across all of Indonesia: 3,000 Starts in an hour,
// among 1,000 people of 20 countries, a tenth of them in Indonesia.
func wholeCountry(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(31, 32))
	nums := newNumbers(33)
	sc := scenario{name: "whole country", length: time.Hour, attacked: map[string]bool{"ID": true}}
	sc.flows = bots(rng, 3_000, 0, sc.length, func() (string, string) { return nums.mobile(t, "ID"), "ID" })
	regions := world[:20]
	weights := make([]int, len(regions))
	for i, r := range regions {
		weights[i] = 1
		if r == "ID" {
			weights[i] = 2 // a tenth of 20 shares, all but this one alike
		}
	}
	sc.flows = append(sc.flows, people(t, rng, nums, 1_000, 0, sc.length, regions, weights)...)
	return sc
}

// A busy day and no attack: 40,000 people of 30 countries, their hours
// following a day's curve whose peak is three times its mean, and a
// marketing push of 4,000 people in Brazil within one hour.
func busyDay(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(41, 42))
	nums := newNumbers(43)
	sc := scenario{name: "busy day", length: 24 * time.Hour, attacked: map[string]bool{"BR": true}}
	// Hour weights: a trough at night, a peak in the evening at 3x the mean.
	curve := []int{4, 3, 2, 2, 2, 3, 5, 8, 10, 11, 12, 13, 13, 13, 14, 15, 17, 20, 24, 30, 26, 18, 11, 6}
	sum := 0
	for _, w := range curve {
		sum += w
	}
	weights := make([]int, len(world))
	for i := range world {
		weights[i] = 1 + (len(world)-i)/3 // a few big markets, a long tail
	}
	for h, w := range curve {
		n := 40_000 * w / sum
		sc.flows = append(sc.flows, people(t, rng, nums, n, time.Duration(h)*time.Hour, time.Hour, world, weights)...)
	}
	sc.flows = append(sc.flows, people(t, rng, nums, 4_000, 14*time.Hour, time.Hour, []string{"PT"}, nil)...)
	return sc
}

// A +1 attack: 2,000 Starts an hour to random mobiles of Jamaica and a
// thin spread over ten other Caribbean regions, for two hours, among
// people of the US, Canada and the Caribbean.
func sharedCode(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(51, 52))
	nums := newNumbers(53)
	caribbean := []string{"BS", "BB", "AG", "DM", "GD", "KN", "LC", "VC", "TT", "KY"}
	sc := scenario{name: "+1 attack", length: 2 * time.Hour, attacked: map[string]bool{"JM": true}}
	for _, r := range caribbean {
		sc.attacked[r] = true
	}
	sc.flows = bots(rng, 4_000, 0, sc.length, func() (string, string) { return nums.mobile(t, "JM"), "JM" })
	for _, r := range caribbean { // 15 each: too few for any one region's breaker
		r := r
		sc.flows = append(sc.flows, bots(rng, 15, 0, sc.length, func() (string, string) { return nums.mobile(t, r), r })...)
	}
	sc.flows = append(sc.flows, people(t, rng, nums, 1_000, 0, sc.length, []string{"US", "CA", "JM"}, []int{80, 18, 2})...)
	return sc
}

// A flood meant to reset the limiter: in one hour, 30,000 Starts to
// distinct numbers of 30 countries, each from a client ID of its own,
// interleaved with 1,000 Starts to one victim number from rotating clients
// and 1,000 Starts from one client to rotating numbers, and 500 people.
// Refused Starts leave the limiter nothing to hold, so nothing is evicted
// to make room and no limit starts over.
func evictionFlood(t testing.TB) (scenario, string, string) {
	rng := rand.New(rand.NewPCG(61, 62))
	nums := newNumbers(63)
	sc := scenario{name: "eviction flood", length: time.Hour, attacked: map[string]bool{}}
	i := 0
	sc.flows = bots(rng, 30_000, 0, sc.length, func() (string, string) {
		i++
		r := world[i%len(world)]
		return nums.mobile(t, r), r
	})
	for j, f := range sc.flows {
		f.client = "flood-" + strconv.Itoa(j)
	}
	victim := nums.mobile(t, "GB")
	victims := bots(rng, 1_000, 0, sc.length, func() (string, string) { return victim, "GB" })
	for j, f := range victims {
		f.client = "rotating-" + strconv.Itoa(j)
	}
	const client = "one-bot"
	fromOne := bots(rng, 1_000, 0, sc.length, func() (string, string) {
		r := world[rng.IntN(len(world))]
		return nums.mobile(t, r), r
	})
	for _, f := range fromOne {
		f.client = client
	}
	sc.flows = append(append(sc.flows, victims...), fromOne...)
	sc.flows = append(sc.flows, people(t, rng, nums, 500, 0, sc.length, world, nil)...)
	return sc, victim, client
}

// A thin spread: random mobiles of every region that has them (some 200;
// those whose numbers are too short to draw from are left out),
// 12 Starts an hour each, too few for any one region's breaker, for six
// hours, among 1,000 people of 30 countries.
func thinSpread(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(71, 72))
	nums := newNumbers(73)
	sc := scenario{name: "thin spread", length: 6 * time.Hour, attacked: map[string]bool{}}
	var regions []string
	for r := range phonenumbers.GetSupportedRegions() {
		if ex := phonenumbers.GetExampleNumberForType(r, phonenumbers.MOBILE); ex != nil &&
			phonenumbers.GetNumberType(ex) == phonenumbers.MOBILE && phonenumbers.GetRegionCodeForNumber(ex) == r &&
			len(phonenumbers.GetNationalSignificantNumber(ex)) >= 8 { // room for 72 random numbers
			regions = append(regions, r)
		}
	}
	sort.Strings(regions)
	for _, r := range regions {
		sc.attacked[r] = true
		sc.flows = append(sc.flows, bots(rng, 12*6, 0, sc.length, func() (string, string) { return nums.mobile(t, r), r })...)
	}
	sc.flows = append(sc.flows, people(t, rng, nums, 1_000, 0, sc.length, world, nil)...)
	return sc
}

// A burst: 3,000 Starts within 20 seconds, half an hour in, to random
// mobiles of all of Indonesia (every range, not a few), among 1,000 people
// of 20 countries over the hour. All of it falls inside the breaker's
// Grace, before any of its sends could count as unverified.
func burst(t testing.TB) scenario {
	rng := rand.New(rand.NewPCG(81, 82))
	nums := newNumbers(83)
	sc := scenario{name: "burst", length: time.Hour, attacked: map[string]bool{"ID": true}}
	ex := phonenumbers.GetExampleNumberForType("ID", phonenumbers.MOBILE)
	e164 := phonenumbers.Format(ex, phonenumbers.E164)
	sc.flows = bots(rng, 3_000, 30*time.Minute, 20*time.Second, func() (string, string) {
		return nums.inRange(t, "ID", e164[:4], len(e164)), "ID" // +628: every mobile range
	})
	sc.flows = append(sc.flows, people(t, rng, nums, 1_000, 0, sc.length, world[:20], nil)...)
	return sc
}

// most is how many calls lim allows over d: its burst and its refill.
func most(lim otp.Limit, d time.Duration) int {
	return lim.N + int(d/(lim.Per/time.Duration(lim.N)))
}

func TestPumpingSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("the simulation takes seconds")
	}
	cases := []struct {
		build      func(testing.TB) scenario
		wholeRange bool // an attack on whole regions, not on ranges
	}{
		{rangesOverADay, false},
		{lowAndSlow, false},
		{wholeCountry, true},
		{sharedCode, true},
		{thinSpread, true},
		{burst, true},
	}
	for _, c := range cases {
		sc := c.build(t)
		t.Run(sc.name, func(t *testing.T) {
			out := run(t, sc)
			t.Logf("%s: %v", sc.name, out)
			most := 1.0
			if c.wholeRange {
				most = 2.0
			}
			assert.LessOrEqual(t, pct(out.attackSent, out.attackStarts), most, "attack Starts that reached the provider")
			assert.GreaterOrEqual(t, pct(out.served, out.people), 99.0, "people served")
			if !c.wholeRange {
				assert.GreaterOrEqual(t, pct(out.attackedServed, out.attackedPeople), 95.0, "people of the attacked regions served")
			}
		})
	}
	t.Run("eviction flood", func(t *testing.T) {
		sc, victim, client := evictionFlood(t)
		out := run(t, sc)
		fromClient := 0
		for _, f := range sc.flows {
			if f.client == client && f.sent {
				fromClient++
			}
		}
		perNumber, perClient := otp.Limit{N: 5, Per: time.Hour}, otp.Limit{N: 10, Per: time.Hour} // the defaults
		t.Logf("eviction flood: %v; sends to the victim %d (PerNumber allows %d), from one client %d (PerClient allows %d), capacity refusals %d",
			out, out.sentTo[victim], most(perNumber, sc.length), fromClient, most(perClient, sc.length), out.capacityDenials)
		assert.LessOrEqual(t, float64(out.sentTo[victim]), 1.1*float64(most(perNumber, sc.length)), "sends to the victim number")
		assert.LessOrEqual(t, float64(fromClient), 1.1*float64(most(perClient, sc.length)), "sends from the one client")
		assert.GreaterOrEqual(t, pct(out.served, out.people), 99.0, "people served")
	})
	t.Run("busy day", func(t *testing.T) {
		out := run(t, busyDay(t))
		t.Logf("busy day: %v", out)
		assert.Zero(t, out.attackStarts)
		assert.GreaterOrEqual(t, pct(out.served, out.people), 99.0, "people served")
	})
}
