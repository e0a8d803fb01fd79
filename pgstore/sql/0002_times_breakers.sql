-- pgstore schema, version 2.
--
-- Times. Version 1 kept each time as Unix nanoseconds in one bigint,
-- which holds only the years 1678 to 2262 and clamped the rest; the
-- otp.Store contract wants any time.Time back to the nanosecond. Each
-- time is now two columns, as redisstore keeps it: Unix seconds (bigint,
-- _s) and nanoseconds (integer, 0 to 999999999, _n), compared as the row
-- (s, n). Existing rows are converted; a version 1 time of -2^63, which
-- version 1 wrote for the zero time.Time (and any time before 1678),
-- becomes the zero time. Limits keep counting durations in nanoseconds
-- and breaker windows in microseconds (Unix µs hold ±292,000 years).
--
-- Breakers, as otp.MemoryLimiter judges them (breaker.go):
-- - a breaker also counts its sends as young, in windows of its Grace
--   (otp.Conversion.Grace: Unix µs / grace), the current one and the one
--   before, estimated as its other counts are; its demand leaves out the
--   sends still in their grace, but for a surge (young sends beyond the
--   larger of its older and its verified sends), and counts the refusals
--   no passed challenge answered. Existing breakers start with no young
--   sends, so the sends they counted are past their grace;
-- - a fallback chain (the region, its calling code's group, the quiet
--   breaker) is judged, and counts an outcome, only up to the first
--   breaker with the demand to be judged;
-- - an open breaker counts no refusal of a call that a bucket with
--   Challenge refuses too;
-- - an override that challenges asks for a challenge only when its
--   request has Challenge.
--
-- Claims. A claim on a row whose verification is gone replaces the row,
-- which version 1 kept, number and all, until the claim's Until.
--
-- Every function of version 1 is dropped and made again, as most of their
-- arguments changed (a time is two arguments now), and so is the reply
-- type. The functions a Start or Check calls on every call are PL/pgSQL,
-- so that a session plans their statements once (a LANGUAGE sql function
-- that cannot be inlined is planned on every call). Locks are taken in the
-- order of version 1, with one more class: record takes the advisory
-- locks of its breakers ({{.LockK}}), in ascending lock key, after those of
-- its buckets and before the breaker rows, since it may create breaker
-- rows and reads each before it writes it.

DROP FUNCTION {{.T}}clean(bigint, integer);
DROP FUNCTION {{.T}}overrides_in_force(bigint);
DROP FUNCTION {{.T}}set_override(bigint, text, text, bigint);
DROP FUNCTION {{.T}}delete_record(bytea, bigint, text, integer, bytea[], bigint[], bytea[], text[], bigint[]);
DROP FUNCTION {{.T}}put_record(bytea, bigint, bigint, text, text, text, text, text, boolean, integer, integer,
    bigint, bigint, bigint, integer, bytea[], bigint[], bytea[], text[], bigint[]);
DROP FUNCTION {{.T}}allow_add_attempt(bytea, bigint, integer,
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}get_allow(bytea, bigint, text, bigint, text, bigint, bigint[],
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}record(bigint, integer, bytea[], bigint[], bytea[], text[], bigint[]);
DROP FUNCTION {{.T}}decide(bigint,
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}delete(bytea, bigint, text);
DROP FUNCTION {{.T}}delete_v(bytea, bigint, text);
DROP FUNCTION {{.T}}mark_sent(bytea, bigint, text, bigint);
DROP FUNCTION {{.T}}release(bytea, bigint, text);
DROP FUNCTION {{.T}}put(bytea, bigint, bigint, text, text, text, text, text, boolean, integer, integer,
    bigint, bigint, bigint);
DROP FUNCTION {{.T}}put_v(bytea, bigint, bigint, text, text, text, text, text, boolean, integer, integer,
    bigint, bigint, bigint);
DROP FUNCTION {{.T}}get(bytea, bigint);
DROP FUNCTION {{.T}}set_claim(bytea, text, bigint);
DROP FUNCTION {{.T}}claimed_by_other({{.T}}verifications, text, bigint);
DROP FUNCTION {{.T}}state({{.T}}verifications, bigint);
DROP FUNCTION {{.T}}vreply(integer, {{.T}}verifications);
DROP FUNCTION {{.T}}sreply(integer, integer, bigint);
DROP FUNCTION {{.T}}now(bigint);
DROP TYPE {{.T}}reply;

-- A point in time: Unix seconds and nanoseconds.
CREATE TYPE {{.T}}instant AS (s bigint, n integer);

-- v1_time converts a version 1 time, for this migration only.
CREATE FUNCTION {{.T}}v1_time(ns bigint) RETURNS {{.T}}instant LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN ns IS NULL THEN NULL
        WHEN ns = -9223372036854775808 THEN ROW(-62135596800, 0)::{{.T}}instant -- the zero time.Time
        ELSE ROW(floor(ns::numeric / 1000000000)::bigint,
                 (ns::numeric - floor(ns::numeric / 1000000000) * 1000000000)::integer)::{{.T}}instant END
$$;

ALTER TABLE {{.T}}verifications
    ADD COLUMN created_s bigint, ADD COLUMN created_n integer,
    ADD COLUMN sent_s bigint, ADD COLUMN sent_n integer,
    ADD COLUMN expires_s bigint, ADD COLUMN expires_n integer,       -- from here on: expired
    ADD COLUMN forget_s bigint, ADD COLUMN forget_n integer,         -- expires + retention: from here on, gone
    ADD COLUMN claim_until_s bigint, ADD COLUMN claim_until_n integer;
UPDATE {{.T}}verifications SET (created_s, created_n, sent_s, sent_n, expires_s, expires_n, forget_s, forget_n,
        claim_until_s, claim_until_n) =
    (SELECT c.s, c.n, s.s, s.n, e.s, e.n, f.s, f.n, u.s, u.n
     FROM {{.T}}v1_time(created_at) AS c, {{.T}}v1_time(sent_at) AS s, {{.T}}v1_time(expires_at) AS e,
          {{.T}}v1_time(forget_at) AS f, {{.T}}v1_time(claim_until) AS u);
ALTER TABLE {{.T}}verifications
    DROP COLUMN purge_at, DROP COLUMN created_at, DROP COLUMN sent_at, DROP COLUMN expires_at,
    DROP COLUMN forget_at, DROP COLUMN claim_until;
-- purge: the later of forget and claim_until, from which no read sees the
-- row and the cleaner deletes it.
ALTER TABLE {{.T}}verifications
    ADD COLUMN purge_s bigint GENERATED ALWAYS AS (CASE
        WHEN claim_until_s IS NULL OR (forget_s, forget_n) >= (claim_until_s, claim_until_n) THEN forget_s
        ELSE claim_until_s END) STORED,
    ADD COLUMN purge_n integer GENERATED ALWAYS AS (CASE
        WHEN claim_until_s IS NULL OR (forget_s, forget_n) >= (claim_until_s, claim_until_n) THEN forget_n
        ELSE claim_until_n END) STORED;
CREATE INDEX {{.P}}verifications_purge ON {{.T}}verifications (purge_s, purge_n);

-- A bucket is full (and deletable) from its tat on.
ALTER TABLE {{.T}}buckets ADD COLUMN tat_s bigint, ADD COLUMN tat_n integer;
UPDATE {{.T}}buckets SET (tat_s, tat_n) = (SELECT t.s, t.n FROM {{.T}}v1_time(tat) AS t);
ALTER TABLE {{.T}}buckets ALTER COLUMN tat_s SET NOT NULL, ALTER COLUMN tat_n SET NOT NULL, DROP COLUMN tat;

-- A breaker is idle from the end of the window after next on, in Unix µs.
ALTER TABLE {{.T}}breakers RENAME COLUMN idle_at TO idle_us;
UPDATE {{.T}}breakers SET idle_us = least((win + 2)::numeric * window_us, 9223372036854775807)::bigint;
-- young_win is the index of the current window of the breaker's grace
-- (Unix µs / grace), young_cur and young_prev the sends of that window and
-- of the one before.
ALTER TABLE {{.T}}breakers
    ADD COLUMN young_win bigint NOT NULL DEFAULT 0,
    ADD COLUMN young_cur bigint NOT NULL DEFAULT 0,
    ADD COLUMN young_prev bigint NOT NULL DEFAULT 0;

ALTER TABLE {{.T}}overrides ADD COLUMN until_s bigint, ADD COLUMN until_n integer; -- NULL: until removed
UPDATE {{.T}}overrides SET (until_s, until_n) = (SELECT u.s, u.n FROM {{.T}}v1_time(until_ns) AS u);
ALTER TABLE {{.T}}overrides DROP COLUMN until_ns;

DROP FUNCTION {{.T}}v1_time(bigint);

-- What every function returns: a status, a denial's details, and a
-- verification.
--   st: 0 none, 1 ok (with a verification if there is one), 2 expired,
--       3 too many attempts, 4 a send in flight,
--       10 rate limited (idx: the bucket, wait: ns), 11 challenge by a
--       bucket (idx, wait), 12 challenge by an override, 13 challenge by a
--       breaker, 14 blocked (idx: the override).
CREATE TYPE {{.T}}reply AS (
    st integer, idx integer, wait bigint,
    provider text, ref_id text, dest text, region text, channel text,
    challenged boolean, sends integer, attempts integer,
    created_s bigint, created_n integer, sent_s bigint, sent_n integer, expires_s bigint, expires_n integer
);

CREATE FUNCTION {{.T}}now(p_s bigint, p_n integer) RETURNS {{.T}}instant
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    e numeric;
BEGIN
    IF p_s IS NOT NULL THEN
        RETURN ROW(p_s, coalesce(p_n, 0))::{{.T}}instant;
    END IF;
    e := extract(epoch FROM clock_timestamp());
    RETURN ROW(floor(e)::bigint, ((e - floor(e)) * 1000000000)::integer)::{{.T}}instant;
END
$$;

-- plus returns p_s, p_n plus d nanoseconds, its seconds saturating at the
-- ends of bigint.
CREATE FUNCTION {{.T}}plus(p_s bigint, p_n integer, d bigint) RETURNS {{.T}}instant
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s bigint := d / 1000000000;
    n bigint := p_n + d % 1000000000;
BEGIN
    IF n >= 1000000000 THEN
        n := n - 1000000000;
        s := s + 1;
    ELSIF n < 0 THEN
        n := n + 1000000000;
        s := s - 1;
    END IF;
    RETURN ROW({{.T}}sat_add(p_s, s), n)::{{.T}}instant;
END
$$;

-- ns_between returns a - b in nanoseconds, saturating at the ends of
-- bigint.
CREATE FUNCTION {{.T}}ns_between(a_s bigint, a_n integer, b_s bigint, b_n integer) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(least((a_s::numeric - b_s) * 1000000000 + (a_n - b_n),
        9223372036854775807), -9223372036854775808)::bigint
$$;

-- micros returns t in Unix microseconds (rounded down, as
-- time.Time.UnixMicro), saturating at the ends of bigint.
CREATE FUNCTION {{.T}}micros(t {{.T}}instant) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(least(t.s::numeric * 1000000 + t.n / 1000,
        9223372036854775807), -9223372036854775808)::bigint
$$;

CREATE FUNCTION {{.T}}sreply(p_st integer, p_idx integer, p_wait bigint) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_st, p_idx, p_wait, '', '', '', '', '', false, 0, 0, 0, 0, 0, 0, 0, 0)::{{.T}}reply
$$;

CREATE FUNCTION {{.T}}vreply(p_st integer, r {{.T}}verifications) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_st, 0, 0::bigint, coalesce(r.provider, ''), coalesce(r.ref_id, ''), coalesce(r.dest, ''),
               coalesce(r.region, ''), coalesce(r.channel, ''), r.challenged, r.sends, r.attempts,
               coalesce(r.created_s, 0), coalesce(r.created_n, 0), coalesce(r.sent_s, 0), coalesce(r.sent_n, 0),
               coalesce(r.expires_s, 0), coalesce(r.expires_n, 0))::{{.T}}reply
$$;

-- state is what a read of row r answers at t: none, expired, or the live
-- verification.
CREATE FUNCTION {{.T}}state(r {{.T}}verifications, t {{.T}}instant) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN r.id IS NULL OR r.ref_id IS NULL OR (t.s, t.n) >= (r.forget_s, r.forget_n) THEN {{.T}}sreply(0, 0, 0)
        WHEN (t.s, t.n) >= (r.expires_s, r.expires_n) THEN {{.T}}sreply(2, 0, 0)
        ELSE {{.T}}vreply(1, r) END
$$;

-- claimed_by_other reports whether another token's claim holds r at t.
CREATE FUNCTION {{.T}}claimed_by_other(r {{.T}}verifications, p_token text, t {{.T}}instant) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(r.claim_token <> p_token AND (t.s, t.n) < (r.claim_until_s, r.claim_until_n), false)
$$;

CREATE FUNCTION {{.T}}set_claim(p_id bytea, p_token text, p_until_s bigint, p_until_n integer)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO {{.T}}verifications AS v (id, claim_token, claim_until_s, claim_until_n)
    VALUES (p_id, p_token, p_until_s, p_until_n)
    ON CONFLICT (id) DO UPDATE SET claim_token = excluded.claim_token,
        claim_until_s = excluded.claim_until_s, claim_until_n = excluded.claim_until_n;
END
$$;

CREATE FUNCTION {{.T}}get(p_id bytea, p_s bigint, p_n integer) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id;
    RETURN {{.T}}state(r, {{.T}}now(p_s, p_n));
END
$$;

-- put_v stores a verification, replacing the row (and its claim). One
-- already gone at t is not kept.
CREATE FUNCTION {{.T}}put_v(p_id bytea, t {{.T}}instant, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created_s bigint, p_created_n integer, p_sent_s bigint, p_sent_n integer,
    p_expires_s bigint, p_expires_n integer) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_forget {{.T}}instant := {{.T}}plus(p_expires_s, p_expires_n, p_ret);
BEGIN
    IF (v_forget.s, v_forget.n) <= (t.s, t.n) THEN
        DELETE FROM {{.T}}verifications WHERE id = p_id;
        RETURN;
    END IF;
    INSERT INTO {{.T}}verifications AS v (id, provider, ref_id, dest, region, channel, challenged, sends,
        attempts, created_s, created_n, sent_s, sent_n, expires_s, expires_n, forget_s, forget_n,
        claim_token, claim_until_s, claim_until_n)
    VALUES (p_id, p_provider, p_ref, p_dest, p_region, p_channel, p_challenged, p_sends, p_attempts,
        p_created_s, p_created_n, p_sent_s, p_sent_n, p_expires_s, p_expires_n, v_forget.s, v_forget.n,
        NULL, NULL, NULL)
    ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, ref_id = excluded.ref_id,
        dest = excluded.dest, region = excluded.region, channel = excluded.channel,
        challenged = excluded.challenged, sends = excluded.sends, attempts = excluded.attempts,
        created_s = excluded.created_s, created_n = excluded.created_n,
        sent_s = excluded.sent_s, sent_n = excluded.sent_n,
        expires_s = excluded.expires_s, expires_n = excluded.expires_n,
        forget_s = excluded.forget_s, forget_n = excluded.forget_n,
        claim_token = NULL, claim_until_s = NULL, claim_until_n = NULL;
END
$$;

CREATE FUNCTION {{.T}}put(p_id bytea, p_s bigint, p_n integer, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created_s bigint, p_created_n integer, p_sent_s bigint, p_sent_n integer,
    p_expires_s bigint, p_expires_n integer) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    PERFORM {{.T}}put_v(p_id, {{.T}}now(p_s, p_n), p_ret, p_provider, p_ref, p_dest, p_region, p_channel,
        p_challenged, p_sends, p_attempts, p_created_s, p_created_n, p_sent_s, p_sent_n, p_expires_s, p_expires_n);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- release drops token's claim; a row left with nothing live goes.
CREATE FUNCTION {{.T}}release(p_id bytea, p_s bigint, p_n integer, p_token text) RETURNS {{.T}}reply
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    DELETE FROM {{.T}}verifications
    WHERE id = p_id AND claim_token = p_token AND (ref_id IS NULL OR (forget_s, forget_n) <= (t.s, t.n));
    IF NOT FOUND THEN
        UPDATE {{.T}}verifications SET claim_token = NULL, claim_until_s = NULL, claim_until_n = NULL
        WHERE id = p_id AND claim_token = p_token;
    END IF;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}mark_sent(p_id bytea, p_s bigint, p_n integer, p_ref text, p_at_s bigint, p_at_n integer)
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF r.id IS NULL OR r.ref_id IS DISTINCT FROM p_ref OR (t.s, t.n) >= (r.forget_s, r.forget_n) THEN
        RETURN {{.T}}sreply(0, 0, 0);
    ELSIF (t.s, t.n) >= (r.expires_s, r.expires_n) THEN
        RETURN {{.T}}sreply(2, 0, 0);
    END IF;
    UPDATE {{.T}}verifications SET sent_s = p_at_s, sent_n = p_at_n, sends = sends + 1 WHERE id = p_id;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- delete_v removes the verification under p_id with Ref.ID p_ref, expired
-- or not, and returns 1, or 0 if there is none. A live claim on the row
-- stays.
CREATE FUNCTION {{.T}}delete_v(p_id bytea, t {{.T}}instant, p_ref text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF r.id IS NULL OR r.ref_id IS DISTINCT FROM p_ref OR (t.s, t.n) >= (r.forget_s, r.forget_n) THEN
        RETURN 0;
    END IF;
    IF (t.s, t.n) < (r.claim_until_s, r.claim_until_n) THEN
        UPDATE {{.T}}verifications SET provider = NULL, ref_id = NULL, dest = NULL, region = NULL,
            channel = NULL, challenged = false, sends = 0, attempts = 0, created_s = NULL, created_n = NULL,
            sent_s = NULL, sent_n = NULL, expires_s = NULL, expires_n = NULL, forget_s = NULL, forget_n = NULL
        WHERE id = p_id;
    ELSE
        DELETE FROM {{.T}}verifications WHERE id = p_id;
    END IF;
    RETURN 1;
END
$$;

CREATE FUNCTION {{.T}}delete(p_id bytea, p_s bigint, p_n integer, p_ref text) RETURNS {{.T}}reply
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN {{.T}}sreply({{.T}}delete_v(p_id, {{.T}}now(p_s, p_n), p_ref), 0, 0);
END
$$;

-- rolled returns breaker b's counts rolled to the window holding t_us, as
-- breakerState.roll does: kept in the same window, moved to prev in the
-- window after, zeros after that or for no row; and, for a grace_us over
-- 0, its young counts rolled alike to the grace window holding t_us, as
-- breakerState.young does.
CREATE FUNCTION {{.T}}rolled(b {{.T}}breakers, t_us bigint, win_us bigint, grace_us bigint)
RETURNS {{.T}}breakers LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    w bigint := t_us / win_us;
    y bigint;
BEGIN
    IF b.id IS NULL THEN
        b.young_win := 0; b.young_cur := 0; b.young_prev := 0;
    END IF;
    IF b.id IS NOT NULL AND w = b.win THEN
        NULL;
    ELSIF b.id IS NOT NULL AND w = b.win + 1 THEN
        b.prev_sent := b.sent; b.prev_verified := b.verified; b.prev_refused := b.refused; b.prev_passed := b.passed;
        b.sent := 0; b.verified := 0; b.refused := 0; b.passed := 0;
    ELSE
        b.prev_sent := 0; b.prev_verified := 0; b.prev_refused := 0; b.prev_passed := 0;
        b.sent := 0; b.verified := 0; b.refused := 0; b.passed := 0;
    END IF;
    b.win := w;
    IF grace_us > 0 THEN
        y := t_us / grace_us;
        IF y = b.young_win THEN
            NULL;
        ELSIF y = b.young_win + 1 THEN
            b.young_prev := b.young_cur;
            b.young_cur := 0;
        ELSE
            b.young_prev := 0;
            b.young_cur := 0;
        END IF;
        b.young_win := y;
    END IF;
    RETURN b;
END
$$;

CREATE FUNCTION {{.T}}judge(b {{.T}}breakers, t_us bigint, win_us bigint, grace_us bigint,
    OUT demand double precision, OUT verified double precision) LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f double precision := (t_us - b.win * win_us)::double precision / win_us::double precision;
    fy double precision;
    young double precision := 0;
    older double precision;
    surge double precision;
BEGIN
    IF grace_us > 0 THEN
        fy := (t_us - b.young_win * grace_us)::double precision / grace_us::double precision;
        young := b.young_prev::double precision * (1 - fy) + b.young_cur::double precision;
    END IF;
    older := greatest(0::double precision,
        (b.prev_sent::double precision * (1 - f) + b.sent::double precision) - young);
    verified := b.prev_verified::double precision * (1 - f) + b.verified::double precision;
    surge := greatest(0::double precision, young - greatest(older, verified));
    demand := older
        + greatest(0::double precision,
            (b.prev_refused::double precision * (1 - f) + b.refused::double precision)
            - (b.prev_passed::double precision * (1 - f) + b.passed::double precision))
        + surge;
END
$$;

CREATE FUNCTION {{.T}}put_breaker(b {{.T}}breakers, p_id bytea, p_name text, win_us bigint, grace_us bigint)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO {{.T}}breakers AS k (id, name, window_us, win, sent, verified, refused, passed,
        prev_sent, prev_verified, prev_refused, prev_passed, young_win, young_cur, young_prev, idle_us)
    VALUES (p_id, p_name, win_us, b.win, b.sent, b.verified, b.refused, b.passed,
        b.prev_sent, b.prev_verified, b.prev_refused, b.prev_passed, b.young_win, b.young_cur, b.young_prev,
        least(greatest((b.win + 2)::numeric * win_us,
            CASE WHEN grace_us > 0 THEN (b.young_win + 2)::numeric * grace_us END),
            9223372036854775807)::bigint)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, window_us = excluded.window_us, win = excluded.win,
        sent = excluded.sent, verified = excluded.verified, refused = excluded.refused, passed = excluded.passed,
        prev_sent = excluded.prev_sent, prev_verified = excluded.prev_verified,
        prev_refused = excluded.prev_refused, prev_passed = excluded.prev_passed,
        young_win = excluded.young_win, young_cur = excluded.young_cur, young_prev = excluded.young_prev,
        idle_us = excluded.idle_us;
END
$$;

-- decide is Limiter.Allow, as otp.MemoryLimiter decides it, at t (the
-- Store calls it with now()):
-- overrides (o_*: target key, Challenge), buckets (b_*: id, scope,
-- emission interval and burst tolerance in ns, Challenge) and breakers
-- (k_*: id, window and grace in µs, MinSends, MinShare, RecordOnly,
-- Fallback; a grace of 0 is none). It
-- returns st 0 and takes one token from each bucket, or a denial (see
-- reply) and takes nothing; an open breaker that is not RecordOnly counts
-- its refusal, unless a bucket with Challenge refuses the call too. A
-- Fallback breaker is judged only while no breaker before it in its chain
-- was (too little demand, or no row).
CREATE FUNCTION {{.T}}decide(t {{.T}}instant,
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_grace bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    k_fb boolean[], o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    nb integer := coalesce(cardinality(b_ids), 0);
    nk integer := coalesce(cardinality(k_ids), 0);
    t_us bigint := {{.T}}micros(t);
    v_allow boolean := false;
    v_chal integer := 0;
    v_action text;
    v_ts bigint[];  -- the buckets' new tat, seconds
    v_tn integer[]; -- and nanoseconds; NULL: no token taken
    v_t {{.T}}instant;
    v_w bigint;
    v_hard integer := -1;
    v_hard_w bigint := 0;
    v_soft integer := -1;
    v_soft_w bigint := 0;
    v_key integer;
    kb {{.T}}breakers;
    e record;
    judged boolean := false; -- the last breaker's
BEGIN
    FOR i IN 1..coalesce(cardinality(o_keys), 0) LOOP
        SELECT action INTO v_action FROM {{.T}}overrides
        WHERE target = o_keys[i] AND (until_s IS NULL OR (t.s, t.n) < (until_s, until_n));
        IF v_action = 'block' THEN
            RETURN {{.T}}sreply(14, i - 1, 0);
        ELSIF v_action = 'allow' THEN
            v_allow := true;
        ELSIF v_action = 'challenge' AND o_soft[i] THEN
            v_chal := 12;
        END IF;
    END LOOP;

    IF nb > 0 THEN
        FOR v_key IN SELECT DISTINCT {{.T}}lock_key(x) FROM unnest(b_ids) AS x ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock({{.LockB}}, v_key);
        END LOOP;
        v_ts := array_fill(NULL::bigint, ARRAY[nb]);
        v_tn := array_fill(NULL::integer, ARRAY[nb]);
        FOR i IN 1..nb LOOP
            -- An allowed destination skips the buckets with Challenge.
            CONTINUE WHEN b_soft[i] AND v_allow;
            -- A bucket named twice sees its first token taken.
            v_t := NULL;
            FOR j IN REVERSE i - 1..1 LOOP
                IF b_ids[j] = b_ids[i] AND v_ts[j] IS NOT NULL THEN
                    v_t := ROW(v_ts[j], v_tn[j]);
                    EXIT;
                END IF;
            END LOOP;
            IF v_t.s IS NULL THEN
                SELECT tat_s, tat_n INTO v_t FROM {{.T}}buckets WHERE id = b_ids[i];
            END IF;
            IF v_t.s IS NULL OR (v_t.s, v_t.n) < (t.s, t.n) THEN
                v_t := t;
            END IF;
            v_w := {{.T}}sat_add({{.T}}ns_between(v_t.s, v_t.n, t.s, t.n), -b_tol[i]);
            IF v_w <= 0 THEN
                v_t := {{.T}}plus(v_t.s, v_t.n, b_int[i]);
                v_ts[i] := v_t.s;
                v_tn[i] := v_t.n;
            ELSIF NOT b_soft[i] THEN
                IF v_hard < 0 OR v_w > v_hard_w THEN
                    v_hard := i - 1;
                    v_hard_w := v_w;
                END IF;
            ELSIF v_soft < 0 OR v_w > v_soft_w THEN
                v_soft := i - 1;
                v_soft_w := v_w;
            END IF;
        END LOOP;
        IF v_hard >= 0 THEN
            RETURN {{.T}}sreply(10, v_hard, v_hard_w);
        END IF;
    END IF;

    IF NOT v_allow AND nk > 0 THEN
        PERFORM 1 FROM {{.T}}breakers WHERE id = ANY (k_ids) ORDER BY id FOR UPDATE;
        FOR i IN 1..nk LOOP
            SELECT * INTO kb FROM {{.T}}breakers WHERE id = k_ids[i];
            -- A breaker before it in the chain answers for a Fallback.
            CONTINUE WHEN k_fb[i] AND judged;
            IF kb.id IS NULL THEN
                judged := false;
                CONTINUE;
            END IF;
            kb := {{.T}}rolled(kb, t_us, k_win[i], k_grace[i]);
            e := {{.T}}judge(kb, t_us, k_win[i], k_grace[i]);
            judged := e.demand >= k_min[i]::double precision;
            IF judged AND e.verified < k_share[i] * e.demand THEN
                v_chal := 13;
                -- A call a challenge bucket refuses too is no refusal of
                -- the breaker's, as in otp.MemoryLimiter.
                IF NOT k_ro[i] AND v_soft < 0 THEN
                    kb.refused := kb.refused + 1;
                    PERFORM {{.T}}put_breaker(kb, kb.id, kb.name, k_win[i], k_grace[i]);
                END IF;
            END IF;
        END LOOP;
    END IF;
    IF v_chal <> 0 AND NOT v_allow THEN
        RETURN {{.T}}sreply(v_chal, 0, 0);
    END IF;
    IF v_soft >= 0 THEN
        RETURN {{.T}}sreply(11, v_soft, v_soft_w);
    END IF;

    FOR i IN 1..nb LOOP
        CONTINUE WHEN v_ts[i] IS NULL;
        INSERT INTO {{.T}}buckets AS b (id, scope, tat_s, tat_n) VALUES (b_ids[i], b_scopes[i], v_ts[i], v_tn[i])
        ON CONFLICT (id) DO UPDATE SET tat_s = excluded.tat_s, tat_n = excluded.tat_n;
    END LOOP;
    RETURN {{.T}}sreply(0, 0, 0);
END
$$;

-- record is Limiter.Record at t (the Store calls it with now()):
-- outcome 1 (sent), 2 (sent after a challenge) or 3 (verified); f_* the
-- buckets that get their token back on a verified outcome (id, emission
-- interval); k_* the breakers (id, name, window and grace in µs,
-- MinSends, Fallback), fed in order: a Fallback breaker counts the outcome
-- only when the breaker before it has too little demand to be judged. A
-- send counts as young too, as breakerState.add counts it.
CREATE FUNCTION {{.T}}record(t {{.T}}instant, p_outcome integer, f_ids bytea[], f_int bigint[],
    k_ids bytea[], k_names text[], k_win bigint[], k_grace bigint[], k_min integer[], k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    nk integer := coalesce(cardinality(k_ids), 0);
    t_us bigint := {{.T}}micros(t);
    d_sent bigint := CASE WHEN p_outcome IN (1, 2) THEN 1 ELSE 0 END;
    d_pass bigint := CASE WHEN p_outcome = 2 THEN 1 ELSE 0 END;
    d_ver bigint := CASE WHEN p_outcome = 3 THEN 1 ELSE 0 END;
    v_key integer;
    v_s bigint;
    v_n integer;
    kb {{.T}}breakers;
    e record;
    judged boolean := false; -- the last breaker's
BEGIN
    IF p_outcome = 3 AND coalesce(cardinality(f_ids), 0) > 0 THEN
        FOR v_key IN SELECT DISTINCT {{.T}}lock_key(x) FROM unnest(f_ids) AS x ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock({{.LockB}}, v_key);
        END LOOP;
        FOR j IN 1..cardinality(f_ids) LOOP
            -- A token back, never beyond full: a bucket full again goes.
            UPDATE {{.T}}buckets AS b SET (tat_s, tat_n) =
                (SELECT p.s, p.n FROM {{.T}}plus(b.tat_s, b.tat_n, -f_int[j]) AS p)
            WHERE id = f_ids[j] AND (tat_s, tat_n) > (t.s, t.n)
            RETURNING tat_s, tat_n INTO v_s, v_n;
            IF FOUND AND (v_s, v_n) <= (t.s, t.n) THEN
                DELETE FROM {{.T}}buckets WHERE id = f_ids[j];
            END IF;
        END LOOP;
    END IF;
    IF nk = 0 THEN
        RETURN {{.T}}sreply(1, 0, 0);
    END IF;
    -- Each breaker is read, then written: its advisory lock keeps a
    -- concurrent record from creating its row in between.
    FOR v_key IN SELECT DISTINCT {{.T}}lock_key(x) FROM unnest(k_ids) AS x ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock({{.LockK}}, v_key);
    END LOOP;
    PERFORM 1 FROM {{.T}}breakers WHERE id = ANY (k_ids) ORDER BY id FOR UPDATE;
    FOR i IN 1..nk LOOP
        -- A breaker before it in the chain answers for a Fallback.
        CONTINUE WHEN k_fb[i] AND judged;
        SELECT * INTO kb FROM {{.T}}breakers WHERE id = k_ids[i];
        kb := {{.T}}rolled(kb, t_us, k_win[i], k_grace[i]);
        e := {{.T}}judge(kb, t_us, k_win[i], k_grace[i]);
        judged := e.demand >= k_min[i]::double precision;
        kb.sent := kb.sent + d_sent;
        kb.verified := kb.verified + d_ver;
        kb.passed := kb.passed + d_pass;
        kb.young_cur := kb.young_cur + d_sent;
        PERFORM {{.T}}put_breaker(kb, k_ids[i], k_names[i], k_win[i], k_grace[i]);
    END LOOP;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- get_allow is LimitingStore.GetAllow (and, without a spare and limits,
-- Store.Claim): another's claim answers 4; the live repeat inside its
-- cooldown (s_to, s_now_*, s_cd: the otp.Spare) is returned as it is;
-- otherwise the limits are decided and, when they pass, the key is claimed
-- for p_token until p_until_*. A claim on a row whose verification is
-- gone replaces the row: it keeps nothing of the verification.
CREATE FUNCTION {{.T}}get_allow(p_id bytea, p_s bigint, p_n integer, p_token text,
    p_until_s bigint, p_until_n integer, s_to text, s_now_s bigint, s_now_n integer, s_cd bigint[],
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_grace bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    k_fb boolean[], o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t {{.T}}instant;
    v {{.T}}reply;
    d {{.T}}reply;
    n integer := coalesce(cardinality(s_cd), 0);
    v_cd bigint := 0;
    v_end {{.T}}instant;
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    t := {{.T}}now(p_s, p_n);
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF {{.T}}claimed_by_other(r, p_token, t) THEN
        RETURN {{.T}}sreply(4, 0, 0);
    END IF;
    v := {{.T}}state(r, t);
    IF v.st = 1 THEN
        IF n > 0 THEN
            v_cd := s_cd[least(greatest(v.sends, 1), n)];
        END IF;
        v_end := {{.T}}plus(v.sent_s, v.sent_n, v_cd);
        IF v.ref_id <> '' AND v.dest = s_to AND (s_now_s, s_now_n) < (v_end.s, v_end.n) THEN
            RETURN v; -- the repeat: nothing taken, nothing claimed
        END IF;
    END IF;
    d := {{.T}}decide(t, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_grace, k_min, k_share, k_ro,
        k_fb, o_keys, o_soft);
    IF d.st <> 0 THEN
        RETURN d;
    END IF;
    IF v.st = 0 AND r.ref_id IS NOT NULL THEN
        DELETE FROM {{.T}}verifications WHERE id = p_id;
    END IF;
    PERFORM {{.T}}set_claim(p_id, p_token, p_until_s, p_until_n);
    IF v.st = 1 THEN
        RETURN v;
    END IF;
    RETURN {{.T}}sreply(0, 0, 0);
END
$$;

-- allow_add_attempt is LimitingStore.AllowAddAttempt (and, without
-- limits, Store.AddAttempt): the limits, then an attempt.
CREATE FUNCTION {{.T}}allow_add_attempt(p_id bytea, p_s bigint, p_n integer, p_max integer,
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_grace bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    k_fb boolean[], o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t {{.T}}instant := {{.T}}now(p_s, p_n);
    v {{.T}}reply;
    d {{.T}}reply;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF coalesce(cardinality(b_ids), 0) + coalesce(cardinality(k_ids), 0) + coalesce(cardinality(o_keys), 0) > 0 THEN
        d := {{.T}}decide(t, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_grace, k_min, k_share, k_ro,
            k_fb, o_keys, o_soft);
        IF d.st <> 0 THEN
            RETURN d;
        END IF;
    END IF;
    v := {{.T}}state(r, t);
    IF v.st <> 1 THEN
        -- Cheap, as the row is locked: a verification gone, under no live
        -- claim, goes now.
        IF r.id IS NOT NULL AND r.ref_id IS NOT NULL AND (t.s, t.n) >= (r.forget_s, r.forget_n)
            AND NOT coalesce((t.s, t.n) < (r.claim_until_s, r.claim_until_n), false) THEN
            DELETE FROM {{.T}}verifications WHERE id = p_id;
        END IF;
        RETURN v;
    END IF;
    IF r.attempts >= p_max THEN
        RETURN {{.T}}sreply(3, 0, 0);
    END IF;
    UPDATE {{.T}}verifications SET attempts = attempts + 1 WHERE id = p_id RETURNING * INTO r;
    RETURN {{.T}}vreply(1, r);
END
$$;

CREATE FUNCTION {{.T}}put_record(p_id bytea, p_s bigint, p_n integer, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created_s bigint, p_created_n integer, p_sent_s bigint, p_sent_n integer,
    p_expires_s bigint, p_expires_n integer,
    p_outcome integer, f_ids bytea[], f_int bigint[],
    k_ids bytea[], k_names text[], k_win bigint[], k_grace bigint[], k_min integer[], k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant;
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    t := {{.T}}now(p_s, p_n);
    PERFORM {{.T}}put_v(p_id, t, p_ret, p_provider, p_ref, p_dest, p_region, p_channel,
        p_challenged, p_sends, p_attempts, p_created_s, p_created_n, p_sent_s, p_sent_n, p_expires_s, p_expires_n);
    PERFORM {{.T}}record(t, p_outcome, f_ids, f_int, k_ids, k_names, k_win, k_grace, k_min, k_fb);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}delete_record(p_id bytea, p_s bigint, p_n integer, p_ref text, p_outcome integer,
    f_ids bytea[], f_int bigint[], k_ids bytea[], k_names text[], k_win bigint[], k_grace bigint[], k_min integer[],
    k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    IF {{.T}}delete_v(p_id, t, p_ref) = 0 THEN
        RETURN {{.T}}sreply(0, 0, 0);
    END IF;
    PERFORM {{.T}}record(t, p_outcome, f_ids, f_int, k_ids, k_names, k_win, k_grace, k_min, k_fb);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- set_override puts an override in force (p_action NULL removes it) and
-- drops the ones that have ended, this one too if it has.
CREATE FUNCTION {{.T}}set_override(p_s bigint, p_n integer, p_target text, p_action text,
    p_until_s bigint, p_until_n integer) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    IF p_action IS NULL THEN
        DELETE FROM {{.T}}overrides WHERE target = p_target;
    ELSE
        INSERT INTO {{.T}}overrides AS o (target, action, until_s, until_n, set_at)
        VALUES (p_target, p_action, p_until_s, p_until_n, now())
        ON CONFLICT (target) DO UPDATE SET action = excluded.action, until_s = excluded.until_s,
            until_n = excluded.until_n, set_at = excluded.set_at;
    END IF;
    DELETE FROM {{.T}}overrides WHERE (until_s, until_n) <= (t.s, t.n);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}overrides_in_force(p_s bigint, p_n integer)
RETURNS TABLE (target text, action text, until_s bigint, until_n integer) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    RETURN QUERY SELECT o.target, o.action, o.until_s, o.until_n FROM {{.T}}overrides AS o
        WHERE o.until_s IS NULL OR (t.s, t.n) < (o.until_s, o.until_n) ORDER BY o.target;
END
$$;

-- clean deletes at most p_batch rows of each table that no read can see
-- any more, skipping rows another call holds, and says how many went.
CREATE FUNCTION {{.T}}clean(p_s bigint, p_n integer, p_batch integer,
    OUT verifications integer, OUT buckets integer, OUT breakers integer, OUT overrides integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t {{.T}}instant := {{.T}}now(p_s, p_n);
BEGIN
    DELETE FROM {{.T}}verifications WHERE id IN (
        SELECT id FROM {{.T}}verifications WHERE (purge_s, purge_n) <= (t.s, t.n)
        LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS verifications = ROW_COUNT;
    DELETE FROM {{.T}}buckets WHERE id IN (
        SELECT id FROM {{.T}}buckets WHERE (tat_s, tat_n) <= (t.s, t.n) LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS buckets = ROW_COUNT;
    DELETE FROM {{.T}}breakers WHERE id IN (
        SELECT id FROM {{.T}}breakers WHERE idle_us <= {{.T}}micros(t) LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS breakers = ROW_COUNT;
    DELETE FROM {{.T}}overrides WHERE target IN (
        SELECT target FROM {{.T}}overrides WHERE (until_s, until_n) <= (t.s, t.n)
        LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS overrides = ROW_COUNT;
END
$$;
