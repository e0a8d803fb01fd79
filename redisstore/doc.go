// Package redisstore keeps pending verifications and abuse limits in Redis,
// so that several processes behind a load balancer behave as one
// [otp.Verifier]: one success of any number of concurrent correct checks,
// never more wrong guesses than MaxAttempts, a resend cooldown and send
// limits that hold across instances.
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
// its limits in Redis too and asks for a verification and the limit tokens
// in one call.
//
// # Round trips
//
// Every method is one Lua script, run with EVALSHA (and EVAL once per
// server whose script cache lacks it), so one round trip. On a standalone
// or Sentinel client (a *redis.Client) a Verifier's Start costs two
// round trips (GetAllow and Put; one for a repeat inside the cooldown) and
// Check two (AllowAddAttempt and Delete).
//
// # Redis Cluster
//
// A Cluster script may only touch keys of one hash slot. Each verification
// is one key, whose receipts (see Retries) share its hash tag, so the Store
// methods are single-slot scripts. The limit
// buckets of all scopes share one hash tag, so that a call's limits are
// taken all or none atomically in one script; every send takes a token
// from the Total bucket anyway, so the node holding that slot sees one
// script per send whether the other buckets are with it or not. The
// combined methods, which touch a verification and the limits, are split
// on a *redis.ClusterClient or *redis.Ring:
//
//   - GetAllow sends the read and the limit script in one pipeline, which
//     go-redis sends to the two nodes in parallel: one round trip of
//     latency. When the verification is the repeat that takes no tokens, a
//     second round trip gives back the tokens just taken; until it lands, a
//     concurrent call may find them taken, as with otp.MemoryLimiter, which
//     also gives tokens back.
//   - AllowAddAttempt with a limit takes the tokens and then reserves the
//     attempt: two round trips, so that a denial reserves nothing. Reserving
//     first and undoing it could make a concurrent check see a spurious
//     ErrTooManyAttempts.
//
// So on Cluster Start costs two sequential round trips and Check two, or
// three when the check is made WithClient and ChecksPerClient is on.
//
// # Keys and personal data
//
// Every key starts with Config.Prefix (default "otp:"), and no key name
// holds a raw value: where a name needs the caller's key, a number, a
// client ID or an IP address, it holds a digest of it, the first 16 bytes
// of HMAC-SHA256 under Config.KeySecret in unpadded base64url (22
// characters). With the default Prefix:
//
//	otp:v:{<digest of the caller's key>}      a pending verification, a hash
//	{otp:limits}:<scope>:<digest of its key>  a limit bucket, a string
//	otp:r:{<a hash tag above>}:<token>        a receipt (see Retries), for 30 s
//
// The scope of a bucket (number, client, country, range, total, checks)
// stays readable, so that an operator can tell what a key is for. The
// braces are hash tags: a verification and its receipts share a slot, and
// all limit buckets and theirs share another.
//
// The names keep personal data out of key listings, slow logs and
// monitoring tools, but Redis still holds some as data: a verification's
// hash holds the E.164 number (or email address) the code went to, the
// vendor and its reference, the channel, the attempts and the times, until
// the verification is consumed or Config.Retention after it expires. A
// limit bucket holds a timestamp only. A receipt holds the reply of the
// call that left it, which for AddAttempt, AllowAddAttempt and GetAllow is
// a copy of the verification, for 30 seconds. Secure, back up and erase this Redis
// as you would a list of your users' phone numbers.
//
// Without Config.KeySecret the digests are keyed with a secret built into
// this package: the names are unreadable at a glance, but anyone with the
// code and a key listing can test guesses, and phone numbers are few enough
// to try them all. Set a secret of your own, the same in every instance.
//
// # Limits
//
// The limiter is GCRA (the generic cell rate algorithm): each bucket of N
// per Per is one Redis string holding a timestamp, allowing a burst of N
// and one more every Per/N, as otp.MemoryLimiter does; Redis drops the key
// once the bucket is full again. Denials are *otp.RateLimitError values
// with the scope of the longest wait as RetryAfter, and take nothing.
//
// # Time and expiry
//
// Expiry and limits read the Redis server's clock (TIME), one clock for all
// instances; Config.Clock replaces it in tests. A verification is live
// strictly before its ExpiresAt, then answers otp.ErrExpired until Redis
// removes the key Config.Retention later (default one second).
//
// # Failures
//
// Every failure to reach Redis, including a timeout of the client or the
// context, is wrapped with otp.ErrStoreUnavailable. It does not say
// whether the script ran: a Delete whose reply was lost may have consumed
// the verification.
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
// takes its limit tokens once; a retried Put, MarkSent or refund does not
// undo what another call did in between. A call that changes nothing (a
// denial, a miss) leaves no receipt, and its retry simply runs again.
//
// The receipts cover retries that reach Redis within 30 seconds of the
// first run. go-redis's defaults stay inside that: three retries, each
// after at most a 5 s read timeout and a 1 s backoff. If you raise
// ReadTimeout, MaxRetryBackoff or the number of retries, keep retries ×
// (ReadTimeout + MaxRetryBackoff) under 30 seconds, or give each call a
// context deadline that does; a later retry runs the script again, as
// without receipts (an attempt or a token counted twice, a consumed
// verification reported as not found). Each receipt is a small key, one
// per script run that changed something (two or three per Start and per
// Check), gone 30 seconds later.
package redisstore
