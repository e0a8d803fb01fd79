package redisstore

import "github.com/redis/go-redis/v9"

// The Lua below runs inside Redis, one script per store call (two for the
// combined calls on Cluster), so that each is atomic and costs one round
// trip (EVALSHA; EVAL once per node when its script cache lacks the
// script). Every rule is written once, in lib, which every script
// includes; the scripts only put the rules together.
//
// Every script starts with ARGV[1] and ARGV[2], the time as Unix seconds
// and nanoseconds, or two empty strings to read the server's TIME. Times
// stay split in two because Lua numbers are doubles: a Unix time in
// nanoseconds does not fit in one exactly, its halves do. Limits work in
// Unix microseconds, which a double holds exactly.
//
// Every script that changes something takes its receipt as KEYS[1] and
// runs its work through once (see lib); the scripts that only read, and
// release, which is harmless to run twice, have none. Those that change a
// verification take it as KEYS[2] and its claim as KEYS[3] (whether they
// touch it or not, so that their limit requests always start at KEYS[4]).
//
// Replies start with a status: 0 no verification, 1 the verification
// (its fields follow), 2 expired, 3 too many attempts, 4 rate limited, 5
// challenge required, 6 blocked, 7 a send in flight (another's claim), 8
// the spare repeat (its fields follow; nothing was claimed or taken).

// receiptMillis is how long a receipt is kept: longer than go-redis's
// retries take with its default timeouts (three retries, each after a 5 s
// read timeout and up to 1 s of backoff), as the package doc explains.
const receiptMillis = "30000"

// lib is the code every script shares.
const lib = `
-- once runs body, the work of a script that changes something, once per
-- call. go-redis may run a script again when its reply is lost, so each
-- call names a receipt, KEYS[1], after a random token, in the hash slot of
-- its other keys. When body reports that it changed something, its reply
-- is kept there for receiptMillis, in MessagePack, which keeps strings
-- byte for byte; a rerun finds it and answers the same, changing nothing.
-- A body that changed nothing leaves no receipt: running it again is
-- harmless.
local function once(body)
  local kept = redis.call('GET', KEYS[1])
  if kept then return cmsgpack.unpack(kept) end
  local reply, changed = body()
  if changed then
    redis.call('SET', KEYS[1], cmsgpack.pack(reply), 'PX', ` + receiptMillis + `)
  end
  return reply
end

local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]), tonumber(ARGV[2]) end
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2]) * 1000
end

local function micros(s, n) return s * 1000000 + math.floor(n / 1000) end

-- before reports whether the time s, n (seconds, nanoseconds) is before
-- s2, n2.
local function before(s, n, s2, n2) return s < s2 or (s == s2 and n < n2) end

-- ttl returns how to make a key vanish at at, a time in Unix microseconds
-- of the script's clock after now: on the server's clock an absolute
-- expiry ('AT' and Unix milliseconds), which Redis keeps as it is; on a
-- Config.Clock, whose time is not Redis's, a relative one ('' and the
-- milliseconds from now, at least one). Callers append the first to PX or
-- PEXPIRE.
local function ttl(at, now)
  if ARGV[1] == '' then return 'AT', math.ceil(at / 1000) end
  return '', math.max(1, math.ceil((at - now) / 1000))
end

-- F are a verification's fields: provider, ID, To, channel, attempts;
-- CreatedAt, SentAt and ExpiresAt as seconds and nanoseconds; region,
-- challenged ('1' or ''), sends. A verification written before the last
-- three existed lacks them, and reads as "", not challenged, 0 sends.
local F = {'p', 'i', 't', 'c', 'a', 'cs', 'cn', 'ss', 'sn', 'es', 'en', 'r', 'x', 'n'}

-- read returns 0 (missing), 1 (live) or 2 (expired), and the fields in F order.
local function read(key, s, n)
  local r = redis.call('HMGET', key, unpack(F))
  if not r[2] then return 0, r end
  if not before(s, n, tonumber(r[10]), tonumber(r[11])) then return 2, r end
  return 1, r
end

-- put stores the verification whose fields in F order are ARGV[4..17] in
-- vkey until its expiry plus ARGV[3] (the retention, in milliseconds), by
-- the script's clock, and drops the claim ckey: the send it marked has
-- ended.
local function put(vkey, ckey, s, n)
  redis.call('DEL', ckey)
  local life = math.ceil(((tonumber(ARGV[13]) - s) * 1e9 + (tonumber(ARGV[14]) - n)) / 1e6) + tonumber(ARGV[3])
  if life <= 0 then
    redis.call('DEL', vkey)
    return
  end
  local a = {}
  for i, f in ipairs(F) do
    a[#a + 1] = f
    a[#a + 1] = ARGV[3 + i]
  end
  redis.call('HSET', vkey, unpack(a))
  redis.call('PEXPIRE', vkey, life)
end

-- delete removes the verification in vkey, expired or not, if its ID is
-- id, and reports whether it did.
local function delete(vkey, id)
  if redis.call('HGET', vkey, 'i') ~= id then return false end
  redis.call('DEL', vkey)
  return true
end

-- add_attempt reserves an attempt and returns the reply and whether it
-- did, as once takes them.
local function add_attempt(key, s, n, max)
  local st, r = read(key, s, n)
  if st ~= 1 then return {st} end
  if tonumber(r[5]) >= max then return {3} end
  r[5] = tostring(redis.call('HINCRBY', key, 'a', 1))
  return {1, unpack(r)}, true
end

-- A claim is a string, "<Until seconds> <Until nanoseconds> <token>", that
-- Redis drops at its Until. It lives beside the verification, in its slot,
-- and holds no number.

-- claimant returns the Until (seconds, nanoseconds) and the token of the
-- claim in ckey, or nothing if there is none.
local function claimant(ckey)
  local c = redis.call('GET', ckey)
  if not c then return nil end
  local us, un, token = string.match(c, '^(%-?%d+) (%d+) (.*)$')
  return tonumber(us), tonumber(un), token
end

-- held reports whether a claim other than token's holds ckey at s, n.
local function held(ckey, token, s, n)
  local us, un, t = claimant(ckey)
  return us ~= nil and t ~= token and before(s, n, us, un)
end

-- claim claims ckey for token until us, un (strings, as ARGV has them).
-- A claim already over would hold nothing, so none is kept.
local function claim(ckey, token, us, un, s, n)
  if not before(s, n, tonumber(us), tonumber(un)) then
    redis.call('DEL', ckey)
    return
  end
  local at, ms = ttl(micros(tonumber(us), tonumber(un)), micros(s, n))
  redis.call('SET', ckey, us .. ' ' .. un .. ' ' .. token, 'PX' .. at, ms)
end

-- spare reports whether the live verification of fields r is the repeat
-- that the spare ARGV[a..a+4] describes, as otp.Spare.Matches does: a flag
-- ('1' if there is a spare), To, Now (seconds, nanoseconds) and the resend
-- cooldowns in nanoseconds, separated by spaces. The cooldown after the
-- sends-th code is the sends-th, the last beyond their end, the first for
-- none (otp.Cooldown).
local function spare(r, a)
  if ARGV[a] ~= '1' or r[2] == '' or r[3] ~= ARGV[a + 1] then return false end
  local cd = {}
  for x in string.gmatch(ARGV[a + 4], '%S+') do cd[#cd + 1] = tonumber(x) end
  if #cd == 0 then cd[1] = 0 end
  local c = cd[math.min(math.max(tonumber(r[14]) or 0, 1), #cd)]
  -- Now - SentAt < cooldown, in nanoseconds: exact for any gap that matters.
  return (tonumber(ARGV[a + 2]) - tonumber(r[8])) * 1e9 + (tonumber(ARGV[a + 3]) - tonumber(r[9])) < c
end

-- claim_or_spare begins Claim and GetAllow (KEYS[2] the verification,
-- KEYS[3] its claim; ARGV[3] the token, ARGV[4..5] its Until, ARGV[6..10]
-- the spare). When there is nothing to claim it returns the whole reply:
-- {7}, another's claim holds the key, or {8, fields}, the repeat.
-- Otherwise it returns nil, then the reply to give once the key is
-- claimed: {1, fields} for a live verification, {0} for none.
local function claim_or_spare(s, n)
  if held(KEYS[3], ARGV[3], s, n) then return {7} end
  local st, r = read(KEYS[2], s, n)
  if st ~= 1 then return nil, {0} end
  if spare(r, 6) then return {8, unpack(r)} end
  return nil, {1, unpack(r)}
end

-- Limit requests are the keys from KEYS[base] on, each with five ARGV
-- from ARGV[arg] on: a kind and four parameters.
--   'B' a bucket, 'C' a bucket that asks for a challenge when empty:
--       its emission interval and burst tolerance (µs); the key holds its
--       GCRA theoretical arrival time (TAT), in Unix µs.
--   'K' a conversion breaker, 'R' a RecordOnly one, either followed by
--       'F' for a Fallback one (otp.LimitRequest.Fallback): its window
--       (µs), MinSends, MinShare and Grace (µs, 0 for none); the key is
--       its hash of counts.
--   'O' an override: its target's key, and 1 if an override that
--       challenges asks for a challenge (otp.LimitRequest.Challenge); the
--       key is the overrides hash.
local function requests(base, arg)
  local q = {}
  for j = 0, #KEYS - base do
    local a = arg + 5 * j
    q[j + 1] = {key = KEYS[base + j], kind = string.sub(ARGV[a], 1, 1), fallback = string.sub(ARGV[a], 2) == 'F',
      p1 = ARGV[a + 1], p2 = tonumber(ARGV[a + 2]), p3 = tonumber(ARGV[a + 3]), p4 = tonumber(ARGV[a + 4])}
  end
  return q
end

-- set_tat stores the TAT t of bucket k, which Redis drops at t, when the
-- bucket is full again.
local function set_tat(k, t, now)
  local at, ms = ttl(t, now)
  redis.call('SET', k, t, 'PX' .. at, ms)
end

-- refund gives bucket k of the emission interval given its token back,
-- never beyond full: a bucket full again is deleted, as a missing one is
-- full.
local function refund(k, interval, now)
  local t = tonumber(redis.call('GET', k))
  if not t then return end
  t = t - interval
  if t <= now then
    redis.call('DEL', k)
  else
    set_tat(k, t, now)
  end
end

-- A breaker's hash holds w, the index of its current window (Unix µs /
-- window), then the counts of that window and of the one before, as
-- otp's breakerState: sends, verified, refused and passed, each; then yw,
-- the index of its current window of Grace (Unix µs / grace), and the
-- sends of that window and of the one before: the young ones. A breaker
-- without a Grace leaves the last three as they are (or missing).
local B = {'w', 's', 'v', 'r', 'p', 'ps', 'pv', 'pr', 'pp', 'yw', 'ys', 'yp'}

-- breaker returns the counts of breaker k rolled to the windows holding
-- now, as breakerState.roll and young do: {w = index, c = current, p =
-- previous, g = grace (µs, 0 for none), yw = young index, yc, yp = young
-- current and previous, found = whether k exists}.
local function breaker(k, win, grace, now)
  local h = redis.call('HMGET', k, unpack(B))
  local b = {w = math.floor(now / win), c = {0, 0, 0, 0}, p = {0, 0, 0, 0}, g = grace, yw = 0, yc = 0, yp = 0,
    found = h[1] ~= false}
  local w = tonumber(h[1])
  for i = 1, 4 do
    if w == b.w then
      b.c[i], b.p[i] = tonumber(h[i + 1]), tonumber(h[i + 5])
    elseif w == b.w - 1 then
      b.p[i] = tonumber(h[i + 1])
    end
  end
  if grace > 0 then
    b.yw = math.floor(now / grace)
    local yw = tonumber(h[10])
    if yw == b.yw then
      b.yc, b.yp = tonumber(h[11]), tonumber(h[12])
    elseif yw == b.yw - 1 then
      b.yp = tonumber(h[11])
    end
  end
  return b
end

-- young returns the sends of breaker b still in their grace at now, as
-- breakerState.young does: yp*(1-f) + yc, f being how far now is into
-- the current window of grace; 0 without a Grace.
local function young(b, now)
  if b.g <= 0 then return 0 end
  local f = (now - b.yw * b.g) / b.g
  return b.yp * (1 - f) + b.yc
end

-- add_send counts a send in breaker b: in its current window, and as
-- young, as breakerState.add does.
local function add_send(b)
  b.c[1] = b.c[1] + 1
  b.yc = b.yc + 1
end

-- save stores breaker b in k until it no longer counts: when the window
-- after the next begins, its counts have left the sliding window; and,
-- with a Grace, not before its young sends have left theirs, at the
-- start of the window of Grace after the next (later than the first when
-- Grace is more than half the window).
local function save(k, b, win, now)
  local a = {B[1], b.w}
  for i = 1, 4 do
    a[#a + 1], a[#a + 2], a[#a + 3], a[#a + 4] = B[i + 1], b.c[i], B[i + 5], b.p[i]
  end
  local last = (b.w + 2) * win
  if b.g > 0 then
    a[#a + 1], a[#a + 2], a[#a + 3], a[#a + 4], a[#a + 5], a[#a + 6] = B[10], b.yw, B[11], b.yc, B[12], b.yp
    last = math.max(last, (b.yw + 2) * b.g)
  end
  redis.call('HSET', k, unpack(a))
  local at, ms = ttl(last, now)
  redis.call('PEXPIRE' .. at, k, ms)
end

-- judge reports, as breakerState.judge does, whether breaker b has the
-- demand to be judged at now (at least min_sends) and, if so, whether it
-- refuses: its verified share of that demand is below min_share. Each
-- count is estimated over the sliding window as prev*(1-f) + cur, f being
-- how far now is into the current window; demand is the sends past their
-- grace (the sends less the young ones, never below 0) and the refusals
-- no passed challenge answered, and the surge: the young sends beyond
-- the larger of the sends past their grace and the verified ones, as in
-- breakerState.judge.
local function judge(b, now, win, min_sends, min_share)
  local f = (now - b.w * win) / win
  local e = {}
  for i = 1, 4 do e[i] = b.p[i] * (1 - f) + b.c[i] end
  local y = young(b, now)
  local older = math.max(0, e[1] - y)
  local verified = e[2]
  local surge = math.max(0, y - math.max(older, verified))
  local demand = older + math.max(0, e[3] - e[4]) + surge
  if demand < min_sends then return false, false end
  return true, verified < min_share * demand
end

-- An override is a field of the overrides hash: its target's key, with
-- its action, and if it has an Until, the seconds and nanoseconds of it:
-- "block" or "challenge 1767225600 0".

-- live returns the action of the override o at s, n, or nil if there is
-- none or it has ended.
local function live(o, s, n)
  if not o then return nil end
  local action, us, un = string.match(o, '^(%a+) (%-?%d+) (%d+)$')
  if not action then return o end
  if before(s, n, tonumber(us), tonumber(un)) then return action end
  return nil
end

-- decide decides the limit requests (see requests) as otp's
-- MemoryLimiter.Allow does, and returns nil when it took their tokens, or
-- the denial: {6, the blocking override}, {4, the bucket with the longest
-- wait, the wait} or {5, the request that asks for a challenge, its wait},
-- each request counted from 0. Its second result says whether it changed
-- anything: tokens taken, or the refusals of open breakers counted, the
-- only state a denial leaves.
local function decide(base, arg, s, n)
  local now = micros(s, n)
  local q = requests(base, arg)
  local allowed, challenge = false, nil
  for j, r in ipairs(q) do
    if r.kind == 'O' then
      local action = live(redis.call('HGET', r.key, r.p1), s, n)
      if action == 'block' then return {6, j - 1}, false end
      if action == 'allow' then allowed = true end
      if action == 'challenge' and r.p2 == 1 then challenge = j - 1 end
    end
  end
  -- The TATs the call would leave, by key, so that a bucket asked for
  -- twice gives two tokens. An allowed destination skips the buckets
  -- that ask for a challenge.
  local tat, hard, hwait, soft, swait = {}, nil, 0, nil, 0
  for j, r in ipairs(q) do
    if r.kind == 'B' or (r.kind == 'C' and not allowed) then
      local t = tat[r.key] or math.max(tonumber(redis.call('GET', r.key)) or now, now)
      local w = t - now - r.p2
      if w <= 0 then
        tat[r.key] = t + tonumber(r.p1)
      elseif r.kind == 'B' and w > hwait then
        hard, hwait = j - 1, w
      elseif r.kind == 'C' and w > swait then
        soft, swait = j - 1, w
      end
    end
  end
  if hard then return {4, hard, hwait}, false end
  local counted = false
  if not allowed then
    -- A Fallback breaker stands in for the breaker before it only while
    -- that one is too quiet to be judged, or missing: judged is the last
    -- breaker's, as in MemoryLimiter.Allow.
    local judged = false
    for j, r in ipairs(q) do
      if (r.kind == 'K' or r.kind == 'R') and not (r.fallback and judged) then
        -- (a breaker before a skipped Fallback in the chain answers for it)
        local win = tonumber(r.p1)
        local b = breaker(r.key, win, r.p4, now)
        if not b.found then
          judged = false
        else
          local refuses
          judged, refuses = judge(b, now, win, r.p2, r.p3)
          if refuses then
            challenge = j - 1
            -- A call a challenge bucket refuses too is no refusal of the
            -- breaker's, as in MemoryLimiter.Allow.
            if r.kind == 'K' and not soft then
              b.c[3] = b.c[3] + 1
              save(r.key, b, win, now)
              counted = true
            end
          end
        end
      end
    end
  end
  if challenge and not allowed then return {5, challenge, 0}, counted end
  if soft then return {5, soft, swait}, counted end
  local took = false
  for k, t in pairs(tat) do
    set_tat(k, t, now)
    took = true
  end
  return nil, took
end

-- record feeds the outcome o (otp.Outcome: 1 sent, 2 sent after a
-- challenge, 3 verified) to the limit requests, which are breakers ('K',
-- with its window, MinSends, nothing and Grace, or 'KF' for a Fallback
-- one) and, for a verified send only, the buckets that refund ('B', with
-- its emission interval). A send counts as young too. A Fallback breaker counts the outcome only when the breaker
-- before it, judged before it counts, was too quiet, as in
-- MemoryLimiter.Record. It reports whether it changed anything.
local function record(base, arg, o, s, n)
  local now = micros(s, n)
  local q = requests(base, arg)
  local judged = false -- the last breaker's
  for _, r in ipairs(q) do
    if r.kind ~= 'K' then
      refund(r.key, tonumber(r.p1), now)
    elseif r.fallback and judged then
      -- a breaker before it in the chain answers for it
    else
      local win = tonumber(r.p1)
      local b = breaker(r.key, win, r.p4, now)
      judged = judge(b, now, win, r.p2, 0)
      if o == '3' then
        b.c[2] = b.c[2] + 1
      else
        add_send(b)
        if o == '2' then b.c[4] = b.c[4] + 1 end
      end
      save(r.key, b, win, now)
    end
  end
  return #q > 0
end
`

var (
	// KEYS[1]: the verification.
	getScript = redis.NewScript(lib + `
local s, n = clock()
local st, r = read(KEYS[1], s, n)
if st == 0 then return {0} end
return {st, unpack(r)}
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3]: its
	// claim. ARGV[3]: retention in milliseconds; ARGV[4..17]: the fields
	// in F order.
	putScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  put(KEYS[2], KEYS[3], s, n)
  return 1, true
end)
`)

	// putScript's keys and arguments, then the limit requests to record
	// from KEYS[4] and ARGV[19]; ARGV[18]: the outcome. Only for a server
	// that is not a cluster: the keys span hash slots.
	putRecordScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  put(KEYS[2], KEYS[3], s, n)
  record(4, 19, ARGV[18], s, n)
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2..]: the limit requests. ARGV[3]: the
	// outcome; ARGV[4..]: the requests.
	recordScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  return 1, record(2, 4, ARGV[3], s, n)
end)
`)

	// The Record of PutRecord on Cluster, beside the Put: recordScript's
	// work, and it marks the send in KEYS[2] until ARGV[4], ARGV[5] (the
	// verification's expiry and a while more), so that
	// recordMarkedScript counts its outcome once. ARGV[3]: the outcome;
	// KEYS[3..] and ARGV[6..]: the requests, possibly none.
	recordMarkScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local at, ms = ttl(micros(tonumber(ARGV[4]), tonumber(ARGV[5])), micros(s, n))
  redis.call('SET', KEYS[2], '1', 'PX' .. at, ms)
  record(3, 6, ARGV[3], s, n)
  return 1, true
end)
`)

	// The Record of DeleteRecord on Cluster, beside the Delete: if the
	// send is still marked in KEYS[2] (see recordMarkScript), it drops the
	// mark and records the outcome, ARGV[3], in the requests, KEYS[3..] and
	// ARGV[4..]; a verification's outcome is counted once, by whichever
	// of its concurrent checks comes first, and never for a verification
	// that was not sent.
	recordMarkedScript = redis.NewScript(lib + `
return once(function()
  if redis.call('DEL', KEYS[2]) == 0 then return 0 end
  local s, n = clock()
  record(3, 4, ARGV[3], s, n)
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3]: its
	// claim. ARGV[3]: max.
	addAttemptScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  return add_attempt(KEYS[2], s, n, tonumber(ARGV[3]))
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3]: its
	// claim. ARGV[3]: the ID; ARGV[4], ARGV[5]: SentAt.
	markSentScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local st, r = read(KEYS[2], s, n)
  if st == 0 or r[2] ~= ARGV[3] then return 0 end
  if st == 2 then return 2 end
  redis.call('HSET', KEYS[2], 'ss', ARGV[4], 'sn', ARGV[5])
  redis.call('HINCRBY', KEYS[2], 'n', 1)
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3]: its
	// claim, which stays. ARGV[3]: the ID. The receipt is the tombstone
	// that tells a rerun it won.
	deleteScript = redis.NewScript(lib + `
return once(function()
  if not delete(KEYS[2], ARGV[3]) then return 0 end
  return 1, true
end)
`)

	// deleteScript's keys and arguments, then the limit requests to
	// record, if it deleted, from KEYS[4] and ARGV[5]; ARGV[4]: the
	// outcome. Only for a server that is not a cluster.
	deleteRecordScript = redis.NewScript(lib + `
return once(function()
  if not delete(KEYS[2], ARGV[3]) then return 0 end
  local s, n = clock()
  record(4, 5, ARGV[4], s, n)
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2..]: the limit requests. ARGV[3..]: the
	// requests.
	allowScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local denied, changed = decide(2, 3, s, n)
  return denied or {1}, changed
end)
`)

	// addAttemptScript's keys and arguments, then the limit requests from
	// KEYS[4] and ARGV[4]. Only for a server that is not a cluster.
	allowAddAttemptScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local denied, changed = decide(4, 4, s, n)
  if denied then return denied, changed end
  return add_attempt(KEYS[2], s, n, tonumber(ARGV[3])), true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3]: its
	// claim. ARGV[3]: the token; ARGV[4], ARGV[5]: its Until; ARGV[6..10]:
	// the spare (see spare), or '' for Claim. Claims the key unless it
	// is held or the repeat.
	claimScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local done, reply = claim_or_spare(s, n)
  if done then return done end
  claim(KEYS[3], ARGV[3], ARGV[4], ARGV[5], s, n)
  return reply, true
end)
`)

	// claimScript's keys and arguments, then the limit requests from
	// KEYS[4] and ARGV[11]: claims the key if the requests pass. Only for
	// a server that is not a cluster.
	getAllowScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local done, reply = claim_or_spare(s, n)
  if done then return done end
  local denied, changed = decide(4, 11, s, n)
  if denied then return denied, changed end
  claim(KEYS[3], ARGV[3], ARGV[4], ARGV[5], s, n)
  return reply, true
end)
`)

	// KEYS[1]: the claim. ARGV[3]: the token. No receipt: once it has run,
	// no claim holds the token (only its caller has it, and waits), so a
	// rerun finds nothing to do.
	releaseScript = redis.NewScript(lib + `
local _, _, token = claimant(KEYS[1])
if token == ARGV[3] then redis.call('DEL', KEYS[1]) end
return 1
`)

	// KEYS[1]: the receipt; KEYS[2]: the overrides hash. ARGV[3]: the
	// target's key; ARGV[4]: the override as live reads it, '' to remove
	// it. Drops the overrides that have ended, and makes the hash vanish
	// when the last of them ends.
	setOverrideScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  if ARGV[4] == '' then
    redis.call('HDEL', KEYS[2], ARGV[3])
  else
    redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  end
  local all, last = redis.call('HGETALL', KEYS[2]), 0
  for i = 1, #all, 2 do
    local _, us, un = string.match(all[i + 1], '^(%a+) (%-?%d+) (%d+)$')
    if not us then
      last = nil
    elseif not live(all[i + 1], s, n) then
      redis.call('HDEL', KEYS[2], all[i])
    elseif last then
      last = math.max(last, micros(tonumber(us), tonumber(un)))
    end
  end
  if not last then
    redis.call('PERSIST', KEYS[2])
  elseif last > 0 then
    local at, ms = ttl(last, micros(s, n))
    redis.call('PEXPIRE' .. at, KEYS[2], ms)
  end
  return 1, true
end)
`)

	// KEYS[1]: the overrides hash. Returns the target and value of each
	// override in force.
	overridesScript = redis.NewScript(lib + `
local s, n = clock()
local all, out = redis.call('HGETALL', KEYS[1]), {}
for i = 1, #all, 2 do
  if live(all[i + 1], s, n) then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`)
)
