// Package otp verifies that a person holds a phone number: it sends a
// one-time code through a verification vendor, keeps the pending
// verification server-side, checks the code the person types, and guards
// the flow against abuse.
//
// A [Verifier] orchestrates three parts, each an interface that this
// package defines and its subpackages implement:
//
//   - a [Provider] talks to one vendor; package otptest has a fake one, and
//     [Failover] makes one Provider of several;
//   - a [Store] keeps pending verifications: package memstore keeps them in
//     one process, a shared store across many;
//   - a [Limiter] keeps the [Limits], the conversion breakers and the
//     overrides: a [MemoryLimiter] by default, or the Store itself when it
//     keeps them shared ([LimitingStore]).
//
// Verifications are addressed by a key of the caller's choosing (a session
// ID, a user ID); the vendor's request ID stays in the Store and never has
// to reach the browser.
//
// # Guarantees
//
//   - Phone numbers are parsed once per call, with
//     github.com/nyaruka/phonenumbers, and must be valid and pass the
//     [Guard]: by default SMS and WhatsApp go to mobile numbers only, never
//     to premium-rate, shared-cost, toll-free or VoIP ones.
//   - Bad input (key, number, channel, code format) fails with its sentinel
//     error before anything else happens: no send, no attempt used, no limit
//     charged, nothing pending lost.
//   - An attempt is reserved in the Store before the provider sees a code,
//     so concurrent guesses never exceed Config.MaxAttempts; the last wrong
//     code burns the verification.
//   - A right code consumes the verification exactly once, however many
//     checks race for it, across every process sharing the Store.
//   - Start with the same key and number inside the resend cooldown sends
//     nothing; Resend inside it fails with ErrResendTooSoon.
//   - Limits deny with a *[RateLimitError] carrying RetryAfter, before any
//     provider call, and charge nothing when they deny; the pumping
//     defence asks for a challenge with a *[ChallengeError].
//   - Concurrent Starts of one key and number send once, across every
//     process sharing the Store (a claim marks a send in flight).
//   - Logs go to the caller's [log/slog] logger (silent by default) with
//     numbers masked; codes, secrets and keys never appear in logs, events or
//     error messages.
//
// # Abuse and SMS pumping
//
// Pumping (toll fraud) is an attacker having a site send codes to numbers
// whose termination fees it shares. The defence reads what a destination
// is (region, calling code, number type and its range: the block of
// numbers a carrier allocates) and, above all, whether sends are verified:
// real people verify, pumped numbers never do.
//
//   - Static rules ([Guard]): number types per channel (SMS only to
//     mobiles), region and calling-code lists, satellite and
//     international-network codes refused. A refusal's class is
//     "refused_destination".
//   - Budgets ([Limits]): per number, per client, per ISO region (a table,
//     and "expected regions" with one budget for everywhere else), in
//     total: ceilings against runaway spend, sized above a busy site's
//     peak.
//   - Signal rules: an unverified budget per range (a verified send gives
//     its token back) and a conversion breaker per region, with a group
//     breaker for the quiet regions of a shared calling code and one last
//     breaker for every region too quiet to be judged alone, so that an
//     attack spread thin over many regions trips it ([Conversion]). They
//     do not refuse: they ask for a challenge
//     (*[ChallengeError], [ErrChallengeRequired]); a person who passes it
//     Starts again [WithChallengePassed].
//   - Resend cooldowns grow with each code (Config.ResendCooldowns).
//   - Operators block, unblock, challenge or trust a region, calling code
//     or range at runtime ([Verifier.SetOverride]); events carry the
//     region, calling code and range (its last digits hidden) to show
//     which range is being pumped.
//
// Every rule has a documented default, can be switched off, and can run
// record-only ([EventFlagged]). The [MemoryLimiter] cannot be reset by a
// flood: refused calls create no state and only full buckets are ever
// dropped; a shared store (redisstore, pgstore) keeps all of it across
// instances in the same round trips. [TestNumber] entries give reviewers
// and end-to-end tests fixed codes that never reach a provider.
//
// # Errors
//
// Every error wraps one of the sentinels in errors.go ([ErrWrongCode],
// [ErrExpired], [ErrRateLimited], ...). Match them with [errors.Is]; use
// [errors.As] for the detail in [*WrongCodeError], [*RateLimitError] and
// [*ProviderError], or [RetryAfter] for a Retry-After header.
//
// # Optional provider capabilities
//
// A Provider may also implement [Resender] (deliver the pending code again;
// otherwise Resend starts a new verification) and [Canceler] (cancel at the
// vendor; otherwise cancelling is local only, which is enough to make every
// later Check fail). The Verifier finds them by type assertion. A Store may
// implement [LimitingStore] to take limits and read state in one step.
//
// # Name clash
//
// github.com/pquerna/otp is also package otp. Where both meet, import this
// one under another name:
//
//	import phoneotp "github.com/otpkit/otp"
package otp
