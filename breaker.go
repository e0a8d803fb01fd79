package otp

import "time"

// Conversion is the conversion breaker: it watches, per region, how many of
// the recent sends were verified, and when that share falls far below what
// real people give, new Starts to the region need a challenge
// (*[ChallengeError]) until it recovers. Real people verify; pumped numbers
// never do, so an attack on a whole country shows as a collapse of that
// country's share within a few dozen sends, whatever numbers it uses.
//
// Each region has its breaker: an attack on Jamaica trips Jamaica's, never
// that of the United States or Canada, though all three share calling code
// 1. A code that several regions share also has a group breaker over the
// regions other than its main one (for 1, all but the US), judged only for
// a region too quiet to be judged alone: an attack spread thinly over the
// Caribbean trips it, while Canada, busy enough for its own breaker, is
// judged by that.
//
// Last, one breaker gathers every region (and group) too quiet to be
// judged alone, with a higher MinSends of its own (QuietMinSends): an
// attack spread thin over many regions, a few sends to each, trips it,
// where no region's breaker sees enough to act.
//
// A Start the breaker refuses counts against the share until a challenge
// is passed for it, so an attack that goes on keeps the breaker open; once
// it stops, its refusals leave the window and the breaker closes. The zero
// Conversion takes the defaults shown.
type Conversion struct {
	// Window is how far back the breaker looks. Default: 1 hour.
	Window time.Duration
	// MinSends is how many recent sends (and refusals) a region needs
	// before its share is judged, so that a quiet region is not refused on
	// a handful of typos. Default 20; negative turns the breaker off.
	MinSends int
	// QuietMinSends is MinSends for the breaker over the regions too quiet
	// to be judged alone, which holds the traffic of many: it opens on
	// more evidence, so that one attack the range budget already stops
	// does not ask the people of every quiet region for a challenge.
	// Default 5 times MinSends (100); negative turns that breaker off.
	QuietMinSends int
	// QuietRecordOnly runs the quiet breaker record-only on its own (as
	// RecordOnly runs them all): what it would refuse is an [EventFlagged].
	QuietRecordOnly bool
	// MinShare is the verified share below which the breaker opens. Real
	// sign-ups verify 70-95% of their sends; pumping verifies none.
	// Default 0.4.
	MinShare float64
	// Grace is how old a send must be before it counts as unverified: a
	// code a person is still typing is not a failed verification. A send
	// counts once it is between Grace and twice Grace old, or as soon as it
	// is verified; sends in their grace beyond the larger of the sends past
	// it and the verified ones (a burst the region has not seen the like
	// of) count at once. Without it a region's first busy minute (after a
	// restart, or a push into a quiet country) would look like an attack.
	// Default 30 seconds; negative: none. In a LimitRequest, 0 is none.
	Grace time.Duration
	// RecordOnly reports the Starts the breaker would refuse as
	// [EventFlagged] and lets them go on.
	RecordOnly bool
}

func (c Conversion) withDefaults() Conversion {
	if c.Window == 0 {
		c.Window = time.Hour
	}
	if c.MinSends == 0 {
		c.MinSends = 20
	}
	if c.QuietMinSends == 0 {
		c.QuietMinSends = 5 * max(c.MinSends, 0)
	}
	if c.MinShare == 0 {
		c.MinShare = 0.4
	}
	switch {
	case c.Grace == 0:
		c.Grace = 30 * time.Second
	case c.Grace < 0:
		c.Grace = 0
	}
	return c
}

func (c Conversion) validate() error {
	if c.Window < time.Second || c.MinShare < 0 || c.MinShare > 1 || c.Grace >= c.Window {
		return errorf("Guard.Conversion: Window must be at least 1s and longer than Grace, MinShare within 0..1")
	}
	return nil
}

func (c Conversion) off() bool { return c.MinSends < 0 }

// A breaker's counters.
const (
	countSent     = iota // codes sent
	countVerified        // of which verified
	countRefused         // Starts the breaker refused
	countPassed          // Starts sent after passing a challenge
	breakerCounts
)

// breakerState is one breaker's counters, as every Limiter keeps them: a
// sliding window approximated by the counts of the current fixed window and
// of the one before, the older weighted by how much of it still overlaps
// the sliding window. Shared limiters (redisstore, pgstore) keep the same
// fields and apply the same arithmetic (see [LimitBreaker]);
// otptest.TestLimiter holds them to it.
type breakerState struct {
	Window int64 // index of the current window: Unix microseconds / Conversion.Window
	Cur    [breakerCounts]float64
	Prev   [breakerCounts]float64
	// The sends of the current and the previous window of Grace: those
	// still in their grace, estimated as the others are.
	YoungWindow         int64
	YoungCur, YoungPrev float64
}

// roll moves the counts to the window holding now (Unix microseconds).
func (b *breakerState) roll(now int64, c Conversion) {
	w := now / c.Window.Microseconds()
	switch {
	case w == b.Window:
	case w == b.Window+1:
		b.Window, b.Prev, b.Cur = w, b.Cur, [breakerCounts]float64{}
	default:
		b.Window, b.Prev, b.Cur = w, [breakerCounts]float64{}, [breakerCounts]float64{}
	}
}

// young returns the sends still in their grace at now (rolling the young
// windows to now).
func (b *breakerState) young(now int64, c Conversion) float64 {
	g := c.Grace.Microseconds()
	if g <= 0 {
		return 0
	}
	w := now / g
	switch {
	case w == b.YoungWindow:
	case w == b.YoungWindow+1:
		b.YoungWindow, b.YoungPrev, b.YoungCur = w, b.YoungCur, 0
	default:
		b.YoungWindow, b.YoungPrev, b.YoungCur = w, 0, 0
	}
	f := float64(now-w*g) / float64(g)
	return b.YoungPrev*(1-f) + b.YoungCur
}

// estimate returns the counts over the sliding window ending at now.
func (b *breakerState) estimate(now int64, c Conversion) [breakerCounts]float64 {
	win := c.Window.Microseconds()
	f := float64(now-b.Window*win) / float64(win)
	var e [breakerCounts]float64
	for i := range e {
		e[i] = b.Prev[i]*(1-f) + b.Cur[i]
	}
	return e
}

// judge reports whether the breaker has the demand to be judged (sends past
// their grace, and refusals not yet answered by a passed challenge: at
// least MinSends) and,
// if so, whether it is open: the verified share of that demand is below
// MinShare. It rolls b to now.
func (b *breakerState) judge(now time.Time, c Conversion) (judged, open bool) {
	us := now.UnixMicro()
	b.roll(us, c)
	e := b.estimate(us, c)
	young := b.young(us, c)
	older := max(0, e[countSent]-young)
	verified := e[countVerified]
	// Sends in their grace beyond what the breaker has seen (sends past
	// it, or verified ones) are a surge, and count as unverified: a burst
	// inside the grace, thousands of sends in a few seconds, meets the
	// breaker before its grace is over.
	surge := max(0, young-max(older, verified))
	demand := older + max(0, e[countRefused]-e[countPassed]) + surge
	if c.off() || demand < float64(c.MinSends) {
		return false, false
	}
	return true, verified < c.MinShare*demand
}

// add counts one event of kind i (countSent, ...) at now.
func (b *breakerState) add(now time.Time, c Conversion, i int) {
	us := now.UnixMicro()
	b.roll(us, c)
	b.Cur[i]++
	if i == countSent {
		b.young(us, c)
		b.YoungCur++
	}
}
