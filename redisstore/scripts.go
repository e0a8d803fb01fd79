package redisstore

import "github.com/redis/go-redis/v9"

// The Lua below runs inside Redis, one script per store operation, so that
// each operation is atomic and costs one round trip (EVALSHA; EVAL once
// per node when its script cache lacks the script).
//
// Every script starts with ARGV[1] and ARGV[2], the time as Unix seconds
// and nanoseconds, or two empty strings to read the server's TIME. Times
// stay split in two because Lua numbers are doubles: a Unix time in
// nanoseconds does not fit in one exactly, its halves do.
//
// A verification is a hash with the fields in F; times as seconds and
// nanoseconds. A limit bucket is a string holding its GCRA theoretical
// arrival time (TAT) in Unix microseconds, which a double holds exactly.
//
// Every script that changes something takes its receipt as KEYS[1] and
// runs its work through once (see lib); getScript, which only reads, has
// none.

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

local F = {'p', 'i', 't', 'c', 'a', 'cs', 'cn', 'ss', 'sn', 'es', 'en'}

-- read returns 0 (missing), 1 (live) or 2 (expired), and the fields in F order.
local function read(key, s, n)
  local r = redis.call('HMGET', key, unpack(F))
  if not r[2] then return 0, r end
  local es, en = tonumber(r[10]), tonumber(r[11])
  if s > es or (s == es and n >= en) then return 2, r end
  return 1, r
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

-- set_tat stores the TAT t of bucket k, which Redis drops at t, when the
-- bucket is full again. Numbers go to Redis as integers, not through
-- string.format. On the server's clock the expiry is absolute (PXAT), which
-- Redis stores as it is; PX on a Config.Clock, whose time is not Redis's.
local function set_tat(k, t, now)
  if ARGV[1] == '' then
    redis.call('SET', k, t, 'PXAT', math.ceil(t / 1000))
  else
    redis.call('SET', k, t, 'PX', math.ceil((t - now) / 1000))
  end
end

-- allow takes one token from each bucket KEYS[first..], whose emission
-- interval and burst tolerance (microseconds) are the ARGV pairs from arg
-- on, or from none. It returns nil when it took them, and otherwise
-- {4, index of the bucket with the longest wait counted from 0, the wait}.
-- The buckets share a hash tag, so one MGET reads them all.
local function allow(first, arg, now)
  if first > #KEYS then return nil end
  local cur = redis.call('MGET', unpack(KEYS, first))
  local tat, worst, wait = {}, -1, 0
  for j = first, #KEYS do
    local k = KEYS[j]
    local a = arg + 2 * (j - first)
    local t = tat[k] or tonumber(cur[j - first + 1]) or now
    if t < now then t = now end
    local w = t - now - tonumber(ARGV[a + 1])
    if w > 0 then
      if w > wait then worst, wait = j - first, w end
    else
      tat[k] = t + tonumber(ARGV[a])
    end
  end
  if worst >= 0 then return {4, worst, wait} end
  for k, t in pairs(tat) do set_tat(k, t, now) end
  return nil
end

local function micros(s, n) return s * 1000000 + math.floor(n / 1000) end
`

var (
	// KEYS[1]: the verification.
	getScript = redis.NewScript(lib + `
local s, n = clock()
local st, r = read(KEYS[1], s, n)
if st == 0 then return {0} end
return {st, unpack(r)}
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification. ARGV[3]: retention
	// in milliseconds; ARGV[4..14]: the fields in F order. The key lives
	// until expiry plus retention, by the script's clock.
	putScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local ttl = math.ceil(((tonumber(ARGV[13]) - s) * 1e9 + (tonumber(ARGV[14]) - n)) / 1e6) + tonumber(ARGV[3])
  if ttl <= 0 then
    redis.call('DEL', KEYS[2])
    return 1, true
  end
  local a = {}
  for i, f in ipairs(F) do
    a[#a + 1] = f
    a[#a + 1] = ARGV[3 + i]
  end
  redis.call('HSET', KEYS[2], unpack(a))
  redis.call('PEXPIRE', KEYS[2], ttl)
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification. ARGV[3]: max.
	addAttemptScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  return add_attempt(KEYS[2], s, n, tonumber(ARGV[3]))
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification. ARGV[3]: the ID;
	// ARGV[4], ARGV[5]: SentAt.
	markSentScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local st, r = read(KEYS[2], s, n)
  if st == 0 or r[2] ~= ARGV[3] then return 0 end
  if st == 2 then return 2 end
  redis.call('HSET', KEYS[2], 'ss', ARGV[4], 'sn', ARGV[5])
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification. ARGV[3]: the ID.
	// Expired or not. The receipt is the tombstone that tells a rerun it
	// won.
	deleteScript = redis.NewScript(lib + `
return once(function()
  if redis.call('HGET', KEYS[2], 'i') ~= ARGV[3] then return 0 end
  redis.call('DEL', KEYS[2])
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2..]: the buckets. ARGV[3..]: their pairs.
	allowScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local denied = allow(2, 3, micros(s, n))
  if denied then return denied end
  return {1}, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2..]: the buckets. ARGV[3..]: their
	// pairs. Gives back the token allowScript took from each; a bucket
	// that is full again is deleted.
	refundScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local now = micros(s, n)
  for j = 2, #KEYS do
    local t = tonumber(redis.call('GET', KEYS[j]))
    if t then
      t = t - tonumber(ARGV[1 + 2 * (j - 1)])
      if t <= now then
        redis.call('DEL', KEYS[j])
      else
        set_tat(KEYS[j], t, now)
      end
    end
  end
  return 1, true
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3..]: the
	// buckets. ARGV[3]: the spare number; ARGV[4], ARGV[5]: the spare's
	// SentAfter; ARGV[6..]: the buckets' pairs. Only for a server that is
	// not a cluster: the keys span hash slots.
	getAllowScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local st, r = read(KEYS[2], s, n)
  if st == 1 and r[3] == ARGV[3] then
    local ss, as = tonumber(r[8]), tonumber(ARGV[4])
    if ss > as or (ss == as and tonumber(r[9]) > tonumber(ARGV[5])) then return {1, unpack(r)} end
  end
  local denied = allow(3, 6, micros(s, n))
  if denied then return denied end
  local took = #KEYS >= 3
  if st ~= 1 then return {0}, took end
  return {1, unpack(r)}, took
end)
`)

	// KEYS[1]: the receipt; KEYS[2]: the verification; KEYS[3..]: the
	// buckets. ARGV[3]: max; ARGV[4..]: the buckets' pairs. Only for a
	// server that is not a cluster.
	allowAddAttemptScript = redis.NewScript(lib + `
return once(function()
  local s, n = clock()
  local denied = allow(3, 4, micros(s, n))
  if denied then return denied end
  local reply = add_attempt(KEYS[2], s, n, tonumber(ARGV[3]))
  return reply, true
end)
`)
)
