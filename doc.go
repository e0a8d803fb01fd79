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
//   - a [Limiter] applies the [Limits]: a [MemoryLimiter] by default, or the
//     Store itself when it keeps shared limits ([LimitingStore]).
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
//     provider call, and charge nothing when they deny.
//   - Logs go to the caller's [log/slog] logger (silent by default) with
//     numbers masked; codes, secrets and keys never appear in logs, events or
//     error messages.
//
// # Abuse and SMS pumping
//
// Before any send, the [Guard] checks the number's type for the channel
// and the region and calling-code lists, and the [Limits] cap sends per
// number, per client, per number range (a block of 10,000 numbers, where
// pumping attacks concentrate), per country and in total. Guard.RecordOnly
// reports what the guard would deny ([EventFlagged]) without denying.
// [TestNumber] entries give reviewers and end-to-end tests fixed codes
// that never reach a provider.
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
