package redisstore

import (
	"context"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
)

// The methods of otp.LimitingStore. On a standalone or Sentinel client
// each is one script over the verification's keys and the limits': one
// round trip. On Cluster (or a Ring) those live in different hash slots,
// which one script cannot span, so each is split in two scripts, in the
// order that never shows a concurrent call a token or an attempt taken
// only to be given back.

// limits returns the part of c in the limits' slot, for allowScript or
// recordScript (recordMarkScript and recordMarkedScript take a mark after
// the receipt): a receipt of its own, c's time, and c's requests, which
// follow nkeys keys and nargs arguments.
func (s *Store) limits(c call, nkeys, nargs int) call {
	return call{
		keys: append([]string{s.receipt(s.ltag)}, c.keys[nkeys:]...),
		args: append(slices.Clip(c.args[:2]), c.args[nargs:]...),
		reqs: c.reqs,
		sent: c.sent,
	}
}

// claimArgc is how many arguments claimScript takes: the time, the
// token, its Until and the spare.
const claimArgc = 10

// GetAllow implements [otp.LimitingStore]. On Cluster it claims first,
// with the read (a claim in flight or the spare repeat end it there,
// having taken nothing), then takes the tokens; when the limits deny, a
// third round trip releases the claim, which until then makes a
// concurrent Start of the same key wait, as an otp.Store with a separate
// Limiter does.
func (s *Store) GetAllow(ctx context.Context, key string, spare otp.Spare, cl otp.Claim, reqs []otp.LimitRequest) (otp.Verification, error) {
	const op = "get and allow"
	c := call{keys: s.keys(key), args: s.claimArgs(cl, &spare)}
	if err := s.decided(&c, reqs); err != nil {
		return otp.Verification{}, err
	}
	if !s.sharded {
		r, err := c.decide(ctx, s.client, getAllowScript, op)
		if err != nil {
			return otp.Verification{}, err
		}
		return s.claimed(op, key, r)
	}

	r, err := claimScript.Run(ctx, s.client, c.keys[:3], c.args[:claimArgc]...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable(op, err)
	}
	v, err := s.claimed(op, key, r)
	if err != nil || r[0] == int64(replySpare) || len(c.sent) == 0 {
		return v, err
	}
	l := s.limits(c, 3, claimArgc)
	if _, err := l.decide(ctx, s.client, allowScript, op); err != nil {
		// The denial is the answer; a claim that fails to go ends at its Until.
		_ = s.Release(ctx, key, cl.Token)
		return otp.Verification{}, err
	}
	return v, nil
}

// PutRecord implements [otp.LimitingStore]. On Cluster the Put and the
// Record go in one pipeline, which go-redis sends to their two nodes in
// parallel: one round trip. The Record is then best effort, as with an
// otp.Store and a separate Limiter: a failure of it is not reported, the
// send being stored all the same; and a send whose Put failed may be
// counted, which is true too: its code went out. When a verified outcome
// would feed any of reqs, the Record also marks the send, beside the
// limits, until a while after v expires: DeleteRecord records the
// outcome of a marked send once.
func (s *Store) PutRecord(ctx context.Context, v otp.Verification, o otp.Outcome, reqs []otp.LimitRequest) error {
	const op = "put and record"
	c := call{keys: s.keys(v.Key), args: append(s.putArgs(v), int(o))}
	if err := s.recorded(&c, o, reqs); err != nil {
		return err
	}
	var err error
	switch {
	case !s.sharded && len(c.sent) > 0:
		err = putRecordScript.Run(ctx, s.client, c.keys, c.args...).Err()
	case !s.sharded || !slices.ContainsFunc(reqs, verifiable):
		// Nothing to record, nor to mark: a verified outcome feeds all
		// that a send's does, and on Cluster more (the buckets that refund).
		err = putScript.Run(ctx, s.client, c.keys[:3], c.args[:putArgc]...).Err()
	default:
		l := s.limits(c, 3, putArgc)
		l.keys = slices.Insert(l.keys, 1, s.mark(v.Key, v.Ref.ID))
		l.args = appendTime(l.args[:3:3], v.ExpiresAt.Add(markAfterExpiry))
		l.args = append(l.args, c.args[putArgc+1:]...)
		err = s.pipelined(ctx, run{putScript, c.keys[:3], c.args[:putArgc]}, run{recordMarkScript, l.keys, l.args})[0].Err()
	}
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// markAfterExpiry is how long a send's mark outlives its verification's
// expiry: longer than a check that reserved its attempt just before the
// expiry takes to hear from the vendor.
const markAfterExpiry = 5 * time.Minute

// putArgc is how many arguments putScript takes: the time, the retention
// and the fields.
const putArgc = 17

// run is one run of a script.
type run struct {
	script *redis.Script
	keys   []string
	args   []any
}

// pipelined runs rs in one pipeline, which go-redis sends to their nodes
// in parallel: one round trip. A node whose script cache lacks a script
// ran nothing of it; that one runs again, with EVAL.
func (s *Store) pipelined(ctx context.Context, rs ...run) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(rs))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rs {
			cmds[i] = r.script.EvalSha(ctx, p, r.keys, r.args...)
		}
		return nil
	})
	for i, r := range rs {
		if isNoScript(cmds[i].Err()) {
			cmds[i] = r.script.Eval(ctx, s.client, r.keys, r.args...)
		}
	}
	return cmds
}

// AllowAddAttempt implements [otp.LimitingStore]. On Cluster, when reqs
// hold a limit, it takes the tokens and then reserves the attempt, in two
// round trips, so that a denial reserves nothing: reserving first and
// giving the attempt back after a denial would make a concurrent check
// see a false otp.ErrTooManyAttempts meanwhile.
func (s *Store) AllowAddAttempt(ctx context.Context, key string, max int, reqs []otp.LimitRequest) (otp.Verification, error) {
	const op = "allow and add attempt"
	c := call{keys: s.keys(key), args: s.args(max)}
	if err := s.decided(&c, reqs); err != nil {
		return otp.Verification{}, err
	}
	switch {
	case len(c.sent) == 0:
	case s.sharded:
		l := s.limits(c, 3, 3)
		if _, err := l.decide(ctx, s.client, allowScript, op); err != nil {
			return otp.Verification{}, err
		}
	default:
		r, err := c.decide(ctx, s.client, allowAddAttemptScript, op)
		if err != nil {
			return otp.Verification{}, err
		}
		return s.verification(op, key, r)
	}
	r, err := addAttemptScript.Run(ctx, s.client, c.keys[:3], c.args[:3]...).Slice()
	if err != nil {
		return otp.Verification{}, unavailable(op, err)
	}
	return s.verification(op, key, r)
}

// DeleteRecord implements [otp.LimitingStore]. On Cluster the Delete and
// the Record go in one pipeline, which go-redis sends to their two nodes
// in parallel: one round trip. The Record then counts the outcome only if
// PutRecord marked the send of the verification under key with Ref.ID id,
// and drops the mark: of concurrent checks of one verification, the
// outcome is counted once, whichever of them wins the Delete, and a
// Delete that failed because the verification was replaced meanwhile
// still counts the outcome of the one that was checked. The Record is
// best effort: the verification is consumed whether or not its outcome
// was counted.
func (s *Store) DeleteRecord(ctx context.Context, key, id string, o otp.Outcome, reqs []otp.LimitRequest) error {
	const op = "delete and record"
	c := call{keys: s.keys(key), args: s.args(id, int(o))}
	if err := s.recorded(&c, o, reqs); err != nil {
		return err
	}
	var cmd *redis.Cmd
	switch {
	case len(c.sent) == 0:
		cmd = deleteScript.Run(ctx, s.client, c.keys[:3], c.args[:3]...)
	case !s.sharded:
		cmd = deleteRecordScript.Run(ctx, s.client, c.keys, c.args...)
	default:
		l := s.limits(c, 3, 3)
		l.keys = slices.Insert(l.keys, 1, s.mark(key, id))
		cmd = s.pipelined(ctx, run{deleteScript, c.keys[:3], c.args[:3]}, run{recordMarkedScript, l.keys, l.args})[0]
	}
	n, err := cmd.Int()
	if err != nil {
		return unavailable(op, err)
	}
	return deleted(n)
}

func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}
