package otp

import (
	"context"
	"time"
)

// Limit allows N events per Per, as a token bucket: a burst of N, refilled
// evenly over Per. The zero Limit means "use the default"; a negative N
// turns the limit off (see [NoLimit]).
type Limit struct {
	N   int
	Per time.Duration
	// RecordOnly makes the limit an observer: a send it would deny is
	// reported as an [EventFlagged] and goes on. With N and Per zero the
	// default's are kept, so Limit{RecordOnly: true} records the default.
	RecordOnly bool
}

// NoLimit turns a limit off.
var NoLimit = Limit{N: -1}

// NoLimits turns every limit off: for load tests and trusted callers. The
// Guard's number rules and its conversion breaker still apply.
var NoLimits = Limits{PerNumber: NoLimit, PerClient: NoLimit, PerRegion: NoLimit, Elsewhere: NoLimit,
	Total: NoLimit, UnverifiedPerRange: NoLimit, ChallengedPerRange: NoLimit, ChallengedPerRegion: NoLimit,
	ChecksPerClient: NoLimit}

func (l Limit) off() bool { return l.N < 0 }

func (l Limit) or(def Limit) Limit {
	if l.N == 0 && l.Per == 0 {
		def.RecordOnly = l.RecordOnly
		return def
	}
	return l
}

// Limits are the budgets a Verifier applies before asking the provider.
// Each zero field takes the default shown; set a field to [NoLimit] to turn
// it off, or its RecordOnly to watch it without enforcing it. Denials are
// *[RateLimitError] values naming the scope, except the unverified budgets,
// whose denials ask for a challenge (*[ChallengeError]).
//
// The ceilings (PerRegion, Elsewhere, Total) are there against runaway
// spend and are sized so that a busy real site does not meet them: what
// stops pumping is the unverified budget per range and the Guard's
// conversion breaker, which read whether sends are verified. Set them from
// your own traffic: a little above your peak hour.
type Limits struct {
	// PerNumber caps sends (Start and Resend) to one destination.
	// Default: 5 per hour.
	PerNumber Limit
	// PerClient caps sends per client ID (see [WithClient]); calls without
	// a client ID skip it. Default: 10 per hour.
	PerClient Limit
	// PerRegion caps sends per ISO region (the US, Canada and Jamaica are
	// three regions, though they share calling code 1). Regions overrides
	// it for the regions it lists. Default: 10,000 per hour.
	PerRegion Limit
	// Regions gives some regions ("GB") their own PerRegion.
	Regions map[string]Limit
	// ExpectedRegions, if not empty, lists the regions a site serves:
	// PerRegion (or Regions) applies to each of them, and all other regions
	// share the one Elsewhere budget. Default: none, every region is
	// expected.
	ExpectedRegions []string
	// Elsewhere caps sends to all regions outside ExpectedRegions together,
	// when ExpectedRegions is set. Default: 100 per hour.
	Elsewhere Limit
	// Total caps all sends: a budget. Default: 30,000 per hour.
	Total Limit
	// UnverifiedPerRange caps the sends to one number range (see
	// Guard.RangeDigits) that were not verified: each send takes a token,
	// and a send that is verified gives it back. Real people verify; a
	// range leased for pumping never does, so it runs dry after a few sends
	// while the people of that range, and of every other, go on. A Start it
	// denies fails with a *ChallengeError: a person who passes the
	// challenge goes on (see [WithChallengePassed]). Default: 2 per day.
	UnverifiedPerRange Limit
	// ChallengedPerRange and ChallengedPerRegion cap the unverified sends
	// of Starts made [WithChallengePassed], per range and per region; a
	// verified send gives its token back. They bound what an attacker who
	// can pass the challenge (a solving farm) can spend. Defaults: 10 per
	// hour per range, 300 per hour per region.
	ChallengedPerRange, ChallengedPerRegion Limit
	// ChecksPerClient caps Check calls per client ID, across keys; calls
	// without a client ID skip it. Default: 30 per 10 minutes.
	ChecksPerClient Limit
}

func (l Limits) withDefaults() Limits {
	l.PerNumber = l.PerNumber.or(Limit{N: 5, Per: time.Hour})
	l.PerClient = l.PerClient.or(Limit{N: 10, Per: time.Hour})
	l.PerRegion = l.PerRegion.or(Limit{N: 10_000, Per: time.Hour})
	l.Elsewhere = l.Elsewhere.or(Limit{N: 100, Per: time.Hour})
	l.Total = l.Total.or(Limit{N: 30_000, Per: time.Hour})
	l.UnverifiedPerRange = l.UnverifiedPerRange.or(Limit{N: 2, Per: 24 * time.Hour})
	l.ChallengedPerRange = l.ChallengedPerRange.or(Limit{N: 10, Per: time.Hour})
	l.ChallengedPerRegion = l.ChallengedPerRegion.or(Limit{N: 300, Per: time.Hour})
	l.ChecksPerClient = l.ChecksPerClient.or(Limit{N: 30, Per: 10 * time.Minute})
	regions := make(map[string]Limit, len(l.Regions))
	for r, lim := range l.Regions {
		regions[r] = lim.or(l.PerRegion)
	}
	l.Regions = regions
	return l
}

func (l Limits) validate() error {
	all := []Limit{l.PerNumber, l.PerClient, l.PerRegion, l.Elsewhere, l.Total, l.UnverifiedPerRange,
		l.ChallengedPerRange, l.ChallengedPerRegion, l.ChecksPerClient}
	for r, lim := range l.Regions {
		if !isRegion(r) {
			return errorf("Limits.Regions: %q is not a supported region", r)
		}
		all = append(all, lim)
	}
	for _, r := range l.ExpectedRegions {
		if !isRegion(r) {
			return errorf("Limits.ExpectedRegions: %q is not a supported region", r)
		}
	}
	for _, x := range all {
		if !x.off() && (x.N == 0 || x.Per <= 0) {
			return errorf("limit %d per %v needs a positive N and Per", x.N, x.Per)
		}
	}
	return nil
}

// region returns the budget of sends to region and the bucket key it is
// charged to.
func (l Limits) region(region string, expected map[string]bool) (Limit, string) {
	if len(expected) > 0 && !expected[region] {
		return l.Elsewhere, elsewhereKey
	}
	if lim, ok := l.Regions[region]; ok {
		return lim, region
	}
	return l.PerRegion, region
}

// elsewhereKey is the ScopeRegion bucket that the regions outside
// Limits.ExpectedRegions share.
const elsewhereKey = "*"

// LimitKind says what a [LimitRequest] asks of the Limiter.
type LimitKind int

// Limit request kinds.
const (
	// LimitBucket takes one token from the bucket Scope and Key name,
	// sized by Limit.
	LimitBucket LimitKind = iota
	// LimitBreaker reads the conversion breaker Key names (a region, or a
	// calling code's group of regions), set by Breaker. A breaker keeps four
	// counts (sends, verified, refused, passed) for the current fixed window
	// of Breaker.Window (Unix microseconds / Window) and the one before; at
	// a fraction f into the current window each count is estimated as
	// prev*(1-f) + cur. Sends are also counted, as young, in windows of
	// Breaker.Grace (Unix microseconds / Grace), estimated alike. The
	// breaker is open when demand = older + max(0, refused-passed) +
	// surge, where older = max(0, sent-young) and surge = max(0, young -
	// max(older, verified)) (a burst in flight beyond what the breaker has
	// seen), is at least MinSends and verified is below
	// MinShare*demand; Allow counts a refusal when it refuses for an open
	// breaker (not for a RecordOnly one, nor when a bucket with Challenge
	// refuses the call too: traffic a range budget already stops must not
	// hold the breaker open for everyone else).
	LimitBreaker
	// LimitOverride looks up the runtime override of Key (a
	// [Target.Key]).
	LimitOverride
)

// LimitRequest is one thing a send or check must pass, or one counter its
// outcome feeds: a token bucket, a conversion breaker or an override.
type LimitRequest struct {
	Kind  LimitKind
	Scope Scope
	// Key names the bucket within Scope: a number, a client ID, a region,
	// a range; "" for ScopeTotal. For a breaker, the region or calling-code
	// group; for an override, the target's key ("region:GB").
	Key string
	// Limit sizes a bucket.
	Limit Limit
	// Breaker sets a breaker.
	Breaker Conversion
	// Challenge says that an empty bucket asks for a challenge
	// (*ChallengeError) instead of refusing (*RateLimitError). Breakers
	// always ask for one. For an override it says whether an
	// OverrideChallenge asks for one: false for a Start that has passed a
	// challenge.
	Challenge bool
	// Refund says that Record(OutcomeVerified) gives back the token this
	// bucket gave the send: an unverified budget.
	Refund bool
	// Fallback says that this breaker stands in for the breaker just
	// before it in reqs while that one has too little demand (below its
	// MinSends) to be judged itself, or is missing, or is itself a
	// Fallback that stood in for nothing: a calling code's group breaker,
	// for a region too quiet to be judged alone, and after it the quiet
	// breaker. Allow judges it, and Record counts the outcome in it, only
	// then; once a breaker of the chain is judged, every Fallback after it
	// is skipped, so a busy member region (Canada in +1) neither dilutes
	// the group or the quiet breaker nor is judged by them.
	Fallback bool
}

// Outcome is what happened to a send, for [Limiter.Record].
type Outcome int

// Outcomes.
const (
	// OutcomeSent: a code went out. Breakers count a send.
	OutcomeSent Outcome = iota + 1
	// OutcomeSentChallenged: a code went out for a Start made
	// WithChallengePassed. Breakers count a send that passed a challenge.
	OutcomeSentChallenged
	// OutcomeVerified: a send was verified. Breakers count a
	// verification; buckets with Refund get their token back.
	OutcomeVerified
)

// Limiter keeps the budgets, the conversion breakers and the runtime
// overrides. The default is the in-process [MemoryLimiter]; a shared one
// (redisstore, pgstore) makes them hold across processes. Implementations
// must be safe for concurrent use and must not keep reqs after a call
// returns; otptest.TestLimiter checks every rule here.
type Limiter interface {
	// Allow decides a send or check, atomically over all of reqs:
	//   - an override that blocks fails it with a *BlockedError;
	//   - an empty bucket without Challenge fails it with a *RateLimitError
	//     for the scope with the longest wait, and that wait as RetryAfter;
	//   - otherwise, unless an override allows the destination, an empty
	//     bucket with Challenge, an open breaker (which counts the refusal
	//     unless such a bucket refuses too; see LimitBreaker and Fallback)
	//     or an override that challenges (on
	//     a request with Challenge) fails it with a *ChallengeError;
	//   - otherwise it takes one token from every bucket (an override that
	//     allows skips the buckets with Challenge) and returns nil.
	// A call that fails takes no token and creates no state but a breaker's
	// count of refusals. Requests with an off Limit, or a Breaker with
	// MinSends < 0, are skipped. A limiter that cannot hold a new bucket
	// fails closed with a *RateLimitError of ScopeCapacity.
	Allow(ctx context.Context, reqs []LimitRequest) error

	// Record feeds an outcome to the breakers and buckets of reqs (see
	// [Outcome]). It never fails for lack of tokens.
	Record(ctx context.Context, o Outcome, reqs []LimitRequest) error

	// SetOverride puts o in force on every instance sharing the Limiter,
	// replacing any override of o.Target; an Action of OverrideNone
	// removes it.
	SetOverride(ctx context.Context, o Override) error

	// Overrides lists the overrides in force.
	Overrides(ctx context.Context) ([]Override, error)
}
