// Package redisstore keeps pending verifications and the abuse defence's
// state in Redis, so that several processes behind a load balancer behave
// as one [otp.Verifier]: one success of any number of concurrent correct
// checks, never more wrong guesses than MaxAttempts, one send for
// concurrent Starts of a key, and a resend cooldown, send limits,
// conversion breakers and operators' overrides that hold across
// instances.
//
// It works on github.com/redis/go-redis/v9 and takes any
// redis.UniversalClient:
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	defer client.Close()
//	store, err := redisstore.New(client, redisstore.Config{})
//	if err != nil {
//		return err
//	}
//	v, err := otp.NewVerifier(provider, store, otp.Config{})
//
// A [Store] is an [otp.Store], an [otp.Limiter] and an
// [otp.LimitingStore]: left with a nil Config.Limiter, the Verifier keeps
// its limits, breakers and overrides in Redis too, and reads a
// verification, claims its key and takes the limit tokens in one call.
//
// # Round trips
//
// The methods run Lua scripts with EVALSHA (and EVAL once per server
// whose script cache lacks one). On a standalone or Sentinel client (a
// *redis.Client) every method is one script, so one round trip, and a
// Verifier's
//
//   - Start costs two: GetAllow, then PutRecord once the code is sent. A
//     repeat inside the resend cooldown, and a denial, cost one (GetAllow);
//     a Start that finds another instance's send in flight for its key
//     asks again, one round trip each time, until that send is stored.
//   - Check costs one for a wrong code (AllowAddAttempt) and two for a
//     right one (AllowAddAttempt, DeleteRecord); the last wrong code adds
//     the Delete that burns the verification.
//   - Resend, Cancel and Status cost one per store call they make (Resend:
//     Get and Allow, then MarkSent and Record, or PutRecord when it sends a
//     new code).
//
// Limits in record-only mode (Guard.RecordOnly, or a Limit's or the
// breaker's RecordOnly) are decided apart, by one more Allow per send.
//
// # Redis Cluster
//
// A Cluster script may only touch keys of one hash slot. Each verification
// is one key, whose claim and receipts (see Retries) share its hash tag,
// so the Store methods are single-slot scripts. The limit buckets, the
// breakers and the overrides of all scopes share another hash tag, so
// that Allow decides all of a call's requests atomically in one script;
// every send takes a token from the Total bucket anyway, so the node
// holding that slot sees every send whether the rest is with it or not.
// The combined methods touch both slots, so on a *redis.ClusterClient or
// *redis.Ring each runs as two scripts, in an order that never shows a
// concurrent call a token or an attempt taken only to be given back:
//
//   - GetAllow first claims the key, with the read: a send in flight or the
//     repeat ends it there, having taken nothing, in one round trip.
//     Otherwise a second takes the tokens. When the limits deny, a third
//     releases the claim; until it lands, a concurrent Start of the same
//     key waits for it (otp.ErrSendInFlight) rather than fails, as with
//     an otp.Store beside a separate Limiter.
//   - PutRecord sends the Put and the Record in one pipeline, which
//     go-redis sends to the two nodes in parallel: one round trip. When a
//     verified outcome would feed any of its requests (a breaker, a bucket
//     with Refund), the Record also marks the send, beside the limits,
//     until five minutes after the verification expires.
//   - AllowAddAttempt with a limit takes the tokens, then reserves the
//     attempt: two round trips, so that a denial reserves nothing.
//     Reserving first and undoing it after a denial would make a concurrent
//     check see a false otp.ErrTooManyAttempts meanwhile. Without a limit
//     (a check without WithClient, or ChecksPerClient off): one.
//   - DeleteRecord sends the Delete and the Record in one pipeline: one
//     round trip. The Record counts the outcome only if the verification's
//     send is marked, and drops the mark, so that a verification is
//     counted once however many of its concurrent checks heard the vendor
//     accept the code and whichever of them wins the Delete. Unlike one
//     script on a standalone client, it counts the outcome of a checked
//     verification whose Delete failed because a new Start replaced it
//     meanwhile (the vendor did accept that code), and it counts nothing
//     for a verification whose send no PutRecord of this package marked
//     (one stored by Put, or one pending from before this version).
//
// The Record of PutRecord and DeleteRecord is then best effort, as with a
// separate Limiter: a failure of it is not reported, since the send was
// stored or the verification consumed all the same. So on Cluster a
// Verifier's calls cost, in sequential round trips (node exchanges):
//
//	Start                         3 (4)  claim; allow; put | record and mark
//	Start, the repeat             1 (1)  claim
//	Start, denied                 3 (3)  claim; allow; release
//	Check, wrong code, WithClient 2 (2)  allow; add attempt
//	Check, wrong code             1 (1)  add attempt
//	Check, right code, WithClient 3 (4)  allow; add attempt; delete | record if marked
//	Check, right code             2 (3)  add attempt; delete | record if marked
//
// where ";" separates round trips and "|" the scripts of one pipeline,
// sent to two nodes at once (when the verification's slot and the
// limits' are on one node, a pipeline is one exchange). Without anything
// to record (an email address, a test number, the breakers and the
// unverified budgets off) the Start and the right Check skip the Record.
// On a standalone client the same calls cost 2, 1, 1, 1, 1, 2 and 2.
//
// # Keys and personal data
//
// Every key starts with Config.Prefix (default "otp:"), and no key name
// holds a raw value: where a name needs the caller's key, a number, a
// client ID, an IP address, a range or a region, it holds a digest of it,
// the first 16 bytes of HMAC-SHA256 under Config.KeySecret in unpadded
// base64url (22 characters) here written d(...). With the default Prefix:
//
//	otp:v:{d(key)}                             a pending verification, a hash
//	otp:c:{d(key)}                             the claim of a send in flight for it, a string
//	{otp:limits}:<scope>:d(key)                a limit bucket, a string
//	{otp:limits}:breaker:<window in µs>:d(key) a conversion breaker, a hash
//	{otp:limits}:overrides                     the overrides, a hash
//	{otp:limits}:sent:d(key, ID)               the mark of a send (on Cluster), a string
//	otp:r:{<a hash tag above>}:<token>         a receipt (see Retries)
//
// The scope of a bucket (number, client, region, range, challenged,
// total, checks) and a breaker's window stay readable, so that an
// operator can tell what a key is for. The braces are hash tags: a
// verification, its claim and their receipts share a slot, and all limit
// state and its receipts share another.
//
// The names keep personal data out of key listings, slow logs and
// monitoring tools, but Redis still holds some as data:
//
//   - a verification's hash holds the E.164 number (or email address) the
//     code went to, its region, the vendor and its reference, the channel,
//     whether a challenge was passed, the sends, the attempts and the
//     times, until the verification is consumed or Config.Retention after
//     it expires;
//   - a claim holds the claimant's random token and its Until, no number,
//     until that Until (a minute, as the Verifier sets it) or the Put or
//     Release that ends it;
//   - a limit bucket holds a timestamp, until it is full again;
//   - a breaker holds counts and a window's index, and with a Grace its
//     young sends and their window's index, until its counts have left
//     the sliding window (the end of the window after its current one)
//     and its young sends theirs (the end of the window of Grace after
//     its current one), whichever is later;
//   - a send's mark (on Cluster) holds "1", until the Check that verifies
//     it or five minutes after the verification expires;
//   - the overrides hash holds what operators set: each target's key
//     ("region:JM", "code:1", or "range:+1876555", the leading digits of a
//     block of numbers, never a whole number), its action and Until; an
//     override is dropped once it has ended and another is set, and the
//     hash vanishes when its last override ends (never while one has no
//     Until);
//   - a receipt holds the reply of the call that left it, which for
//     AddAttempt, AllowAddAttempt, Claim and GetAllow is a copy of the
//     verification, for 30 seconds.
//
// Secure, back up and erase this Redis as you would a list of your users'
// phone numbers.
//
// Without Config.KeySecret the digests are keyed with a secret built into
// this package: the names are unreadable at a glance, but anyone with the
// code and a key listing can test guesses, and phone numbers are few enough
// to try them all. Set a secret of your own, the same in every instance.
//
// # Limits, breakers and overrides
//
// One script (Allow, and the part of GetAllow and AllowAddAttempt that
// limits) decides a call's requests as otp.MemoryLimiter does, and the
// package's tests hold it to the same answers on the same clock:
//
//   - An override that blocks refuses with an *otp.BlockedError naming its
//     target; overrides that have reached their Until are ignored.
//   - A bucket is GCRA (the generic cell rate algorithm): one Redis string
//     per bucket of N per Per holding a timestamp, allowing a burst of N
//     and one more every Per/N; Redis drops it once it is full again. An
//     empty bucket without Challenge refuses with an *otp.RateLimitError
//     of the longest wait.
//   - Unless an override allows the destination, an override that
//     challenges (on a request with Challenge, which a Start made
//     WithChallengePassed does not set), an open breaker or an empty
//     bucket with Challenge asks for a challenge (*otp.ChallengeError);
//     each open breaker that is not RecordOnly counts the refusal, unless
//     a bucket with Challenge refuses the call too. An
//     allowed destination skips the buckets with Challenge and the
//     breakers.
//   - A breaker with Fallback (a calling code's group) is judged only when
//     the breaker just before it in the call has too little demand to be
//     judged (below its MinSends) or does not exist yet.
//   - Otherwise the call takes one token from every bucket. A call that
//     fails takes nothing and creates no key, but for the refusal counts
//     of breakers that exist already.
//
// Record feeds an outcome to the breakers, which count sends, verified
// sends, refusals and passed challenges in fixed windows of
// Conversion.Window (Unix µs / window), estimating the sliding window as
// prev*(1-f) + cur, as otp.LimitBreaker says; a Fallback breaker counts
// it only when the breaker before it, judged before it counts, is too
// quiet to be judged, so that a busy member region neither dilutes its
// group nor is judged by it. A verified send gives its token back to each
// bucket with Refund, never beyond full (the timestamp moves back one
// interval, and a bucket full again is deleted).
//
// Each send is also counted as young, in fixed windows of
// Conversion.Grace (Unix µs / grace) estimated alike, and a breaker's
// demand is its sends less the young ones, never below none, plus its
// refusals no passed challenge answered, plus the surge (the young sends
// beyond the larger of the older and the verified ones): a send counts as
// unverified once it is past its grace (or verified) or part of a burst
// the breaker has not seen the like of, and young sends never cancel
// refusals. A Grace of 0 in a request (or under a microsecond) is none:
// every send counts at once, and the young fields are left as they are.
// A breaker's hash holds:
//
//	w              the index of the current window (Unix µs / window)
//	s, v, r, p     its sends, verified sends, refusals and passed challenges
//	ps, pv, pr, pp those of the window before
//	yw             the index of the current window of Grace (Unix µs / grace)
//	ys, yp         the sends of that window and of the one before: the young
//
// A breaker is named by its key and Window, not by its Grace (nor its
// MinSends or MinShare), as in otp.MemoryLimiter: give a breaker one
// Grace in every Verifier sharing a Redis, as one Guard does, since a
// request with another reads the young windows in its own units and
// starts them afresh. Sends recorded by a version of this package from
// before Grace are not young: they count at once.
//
// Buckets are named by scope and key alone, not by their Limit as in
// otp.MemoryLimiter: Verifiers with different Limits sharing one Redis
// should use different Prefixes.
//
// # Memory
//
// Every key but the overrides without an Until expires once it can
// change no answer, so Redis holds what the traffic allowed recently, and
// a denied call adds nothing. Keep Redis's maxmemory-policy at its default,
// noeviction: a Redis that evicts may drop a bucket or a breaker still
// counting, which resets it, whereas a full Redis that refuses writes makes
// the store fail closed with otp.ErrStoreUnavailable.
//
// # Time and expiry
//
// Expiry, claims, limits, breakers and overrides read the Redis server's
// clock (TIME), one clock for all instances; Config.Clock replaces it in
// tests, and Redis then drops keys in real time, after their TTL on that
// Clock. A verification is live strictly before its ExpiresAt, then
// answers otp.ErrExpired until Redis removes the key Config.Retention
// later (default one second). The repeat of a Start is judged on the
// Spare's Now, the Verifier's clock, as otp.Spare.Matches does.
//
// # Failures
//
// Every failure to reach Redis, including a timeout of the client or the
// context, is wrapped with otp.ErrStoreUnavailable. It does not say
// whether the script ran: a Delete whose reply was lost may have consumed
// the verification, and a Claim or GetAllow whose reply was lost (say,
// sent to a Redis that froze and later thawed) may have claimed the key,
// which then stays claimed until the claim's Until, a minute as the
// Verifier sets it: meanwhile Starts of that key wait for a send that
// never comes.
//
// # Retries
//
// go-redis sends a command again when its connection fails after it was
// written, on a network error or a read timeout, although Redis may have
// run it already:
//
//   - a *redis.Client (standalone, or Sentinel's failover client) up to
//     Options.MaxRetries times (default 3; -1 turns retries off);
//   - a *redis.ClusterClient up to ClusterOptions.MaxRedirects times
//     (default 3; -1 turns them off), pipelines included; its MaxRetries,
//     off by default on Cluster, adds retries on the node within each try;
//   - a *redis.Ring up to RingOptions.MaxRetries times (default 3).
//
// A call whose context is done is not sent again. So every script that
// changes something is safe to run twice: each call names a receipt after
// a random token, a key in the hash slot of the script's other keys, and
// the first run keeps its reply there for 30 seconds. A run that finds the
// receipt answers from it and changes nothing. A right code whose Delete
// reply was lost still verifies, once; a guess costs one attempt; a call
// takes its limit tokens, counts a refusal, records an outcome and claims
// a key once; a retried Put, MarkSent, SetOverride or refund does not undo
// what another call did in between. A call that changes nothing (a
// denial that counted no refusal, a miss, the repeat) leaves no receipt,
// and its retry simply runs again. Release keeps none either: once it has
// run, no claim holds its token, so a rerun finds nothing to do.
//
// The receipts cover retries that reach Redis within 30 seconds of the
// first run. go-redis's defaults stay inside that: three retries, each
// after at most a 5 s read timeout and a 1 s backoff. If you raise
// ReadTimeout, MaxRetryBackoff or the number of retries, keep retries ×
// (ReadTimeout + MaxRetryBackoff) under 30 seconds, or give each call a
// context deadline that does; a later retry runs the script again, as
// without receipts (an attempt or a token counted twice, a consumed
// verification reported as not found). Each receipt is a small key, one
// per script run that changed something (two to four per Start and per
// Check), gone 30 seconds later.
package redisstore
