-- pgstore schema, version 1: the tables and the functions every Store call
-- runs, each as one statement.
--
-- This file is a template: {{.T}} is the schema-qualified table prefix
-- ("public".otp_), {{.P}} the bare prefix (otp_, for index names),
-- {{.LockV}} and {{.LockB}} the classes of the advisory locks on
-- verification keys and on limit buckets (see Locks below).
--
-- Times are Unix nanoseconds in bigint, exact to the nanosecond, as the
-- otp.Store contract needs; breaker windows count in microseconds, as
-- otp.MemoryLimiter's do.
--
-- Locks. Every function takes its locks in one order, so that no two calls
-- can wait for each other in a circle:
--   1. the advisory lock on the verification key (functions that may
--      create its row: put, put_record, get_allow);
--   2. the verification row (SELECT ... FOR UPDATE, UPDATE, DELETE);
--   3. the advisory locks on the limit buckets, in ascending lock key;
--   4. the breaker rows, in ascending id;
--   5. the bucket rows, written only by holders of their advisory locks.
-- The advisory locks lock keys whose rows may not exist yet: a call
-- decides on a bucket or a claim that nobody has written, and a denial
-- writes nothing. They are transaction locks, gone when the statement's
-- transaction ends. The cleaner takes row locks with SKIP LOCKED and never
-- waits. Under REPEATABLE READ or SERIALIZABLE (a default_transaction_
-- isolation of the server's or the role's), a row written after the
-- statement's snapshot raises SQLSTATE 40001, which the Store retries.

CREATE TABLE {{.T}}verifications (
    id          bytea PRIMARY KEY, -- HMAC-SHA256 of the caller's key, 16 bytes
    provider    text,              -- NULL with ref_id: the row holds a claim only
    ref_id      text,
    dest        text,              -- the E.164 number or email address, as the Verifier gave it
    region      text,
    channel     text,
    challenged  boolean NOT NULL DEFAULT false,
    sends       integer NOT NULL DEFAULT 0,
    attempts    integer NOT NULL DEFAULT 0,
    created_at  bigint,
    sent_at     bigint,
    expires_at  bigint,            -- from here on: expired
    forget_at   bigint,            -- expires_at + retention: from here on, gone
    claim_token text,              -- a send in flight (otp.Claim)
    claim_until bigint,
    purge_at    bigint GENERATED ALWAYS AS (greatest(forget_at, claim_until)) STORED
) WITH (fillfactor = 80);
CREATE INDEX {{.P}}verifications_purge_at ON {{.T}}verifications (purge_at);

-- A GCRA bucket: full (and deletable) from tat on. No index on tat, so
-- that taking a token is a HOT update; the cleaner scans.
CREATE TABLE {{.T}}buckets (
    id    bytea PRIMARY KEY, -- HMAC-SHA256 of the scope and the key, 16 bytes
    scope text NOT NULL,     -- readable, for operators
    tat   bigint NOT NULL    -- theoretical arrival time
) WITH (fillfactor = 70);

-- A conversion breaker's counts for window win (Unix µs / window_us) and
-- the one before; a row past idle_at reads as zeros and may go.
CREATE TABLE {{.T}}breakers (
    id            bytea PRIMARY KEY, -- HMAC-SHA256 of the key and the window, 16 bytes
    name          text NOT NULL,     -- the region or calling-code group, for operators
    window_us     bigint NOT NULL,
    win           bigint NOT NULL,
    sent          bigint NOT NULL DEFAULT 0,
    verified      bigint NOT NULL DEFAULT 0,
    refused       bigint NOT NULL DEFAULT 0,
    passed        bigint NOT NULL DEFAULT 0,
    prev_sent     bigint NOT NULL DEFAULT 0,
    prev_verified bigint NOT NULL DEFAULT 0,
    prev_refused  bigint NOT NULL DEFAULT 0,
    prev_passed   bigint NOT NULL DEFAULT 0,
    idle_at       bigint NOT NULL
) WITH (fillfactor = 70);

CREATE TABLE {{.T}}overrides (
    target   text PRIMARY KEY, -- otp.Target.Key: region:GB, code:44, range:+44740012
    action   text NOT NULL CHECK (action IN ('block', 'challenge', 'allow')),
    until_ns bigint,           -- NULL: until removed
    set_at   timestamptz NOT NULL DEFAULT now()
);

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
    created_at bigint, sent_at bigint, expires_at bigint
);

CREATE FUNCTION {{.T}}now(p_now bigint) RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(p_now, (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint)
$$;

CREATE FUNCTION {{.T}}lock_key(p_id bytea) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || encode(substring(p_id FROM 1 FOR 4), 'hex'))::bit(32)::integer
$$;

-- a + b, saturating at the ends of bigint.
CREATE FUNCTION {{.T}}sat_add(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN b > 0 AND a > 9223372036854775807 - b THEN 9223372036854775807
        WHEN b < 0 AND a < -9223372036854775808 - b THEN -9223372036854775808
        ELSE a + b END
$$;

CREATE FUNCTION {{.T}}sreply(p_st integer, p_idx integer, p_wait bigint) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_st, p_idx, p_wait, '', '', '', '', '', false, 0, 0, 0, 0, 0)::{{.T}}reply
$$;

CREATE FUNCTION {{.T}}vreply(p_st integer, r {{.T}}verifications) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_st, 0, 0::bigint, coalesce(r.provider, ''), coalesce(r.ref_id, ''), coalesce(r.dest, ''),
               coalesce(r.region, ''), coalesce(r.channel, ''), r.challenged, r.sends, r.attempts,
               coalesce(r.created_at, 0), coalesce(r.sent_at, 0), coalesce(r.expires_at, 0))::{{.T}}reply
$$;

-- state is what a read of row r answers at t_now: none, expired, or the
-- live verification.
CREATE FUNCTION {{.T}}state(r {{.T}}verifications, t_now bigint) RETURNS {{.T}}reply
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN r.id IS NULL OR r.ref_id IS NULL OR t_now >= r.forget_at THEN {{.T}}sreply(0, 0, 0)
        WHEN t_now >= r.expires_at THEN {{.T}}sreply(2, 0, 0)
        ELSE {{.T}}vreply(1, r) END
$$;

-- claimed_by_other reports whether another token's claim holds r at t_now.
CREATE FUNCTION {{.T}}claimed_by_other(r {{.T}}verifications, p_token text, t_now bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(r.claim_token <> p_token AND t_now < r.claim_until, false)
$$;

CREATE FUNCTION {{.T}}set_claim(p_id bytea, p_token text, p_until bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO {{.T}}verifications AS v (id, claim_token, claim_until) VALUES (p_id, p_token, p_until)
    ON CONFLICT (id) DO UPDATE SET claim_token = excluded.claim_token, claim_until = excluded.claim_until
$$;

CREATE FUNCTION {{.T}}get(p_id bytea, p_now bigint) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id;
    RETURN {{.T}}state(r, {{.T}}now(p_now));
END
$$;

-- put_v stores a verification, replacing the row (and its claim). One
-- already gone at t_now is not kept.
CREATE FUNCTION {{.T}}put_v(p_id bytea, t_now bigint, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created bigint, p_sent bigint, p_expires bigint) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_forget bigint := {{.T}}sat_add(p_expires, p_ret);
BEGIN
    IF v_forget <= t_now THEN
        DELETE FROM {{.T}}verifications WHERE id = p_id;
        RETURN;
    END IF;
    INSERT INTO {{.T}}verifications AS v (id, provider, ref_id, dest, region, channel, challenged, sends,
        attempts, created_at, sent_at, expires_at, forget_at, claim_token, claim_until)
    VALUES (p_id, p_provider, p_ref, p_dest, p_region, p_channel, p_challenged, p_sends, p_attempts,
        p_created, p_sent, p_expires, v_forget, NULL, NULL)
    ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, ref_id = excluded.ref_id,
        dest = excluded.dest, region = excluded.region, channel = excluded.channel,
        challenged = excluded.challenged, sends = excluded.sends, attempts = excluded.attempts,
        created_at = excluded.created_at, sent_at = excluded.sent_at, expires_at = excluded.expires_at,
        forget_at = excluded.forget_at, claim_token = NULL, claim_until = NULL;
END
$$;

CREATE FUNCTION {{.T}}put(p_id bytea, p_now bigint, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created bigint, p_sent bigint, p_expires bigint) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    PERFORM {{.T}}put_v(p_id, {{.T}}now(p_now), p_ret, p_provider, p_ref, p_dest, p_region, p_channel,
        p_challenged, p_sends, p_attempts, p_created, p_sent, p_expires);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- release drops token's claim; a row left with nothing live goes.
CREATE FUNCTION {{.T}}release(p_id bytea, p_now bigint, p_token text) RETURNS {{.T}}reply
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    DELETE FROM {{.T}}verifications
    WHERE id = p_id AND claim_token = p_token AND (ref_id IS NULL OR forget_at <= t_now);
    IF NOT FOUND THEN
        UPDATE {{.T}}verifications SET claim_token = NULL, claim_until = NULL
        WHERE id = p_id AND claim_token = p_token;
    END IF;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}mark_sent(p_id bytea, p_now bigint, p_ref text, p_at bigint) RETURNS {{.T}}reply
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t_now bigint := {{.T}}now(p_now);
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF r.id IS NULL OR r.ref_id IS DISTINCT FROM p_ref OR t_now >= r.forget_at THEN
        RETURN {{.T}}sreply(0, 0, 0);
    ELSIF t_now >= r.expires_at THEN
        RETURN {{.T}}sreply(2, 0, 0);
    END IF;
    UPDATE {{.T}}verifications SET sent_at = p_at, sends = sends + 1 WHERE id = p_id;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- delete_v removes the verification under p_id with Ref.ID p_ref, expired
-- or not, and returns 1, or 0 if there is none. A live claim on the row
-- stays.
CREATE FUNCTION {{.T}}delete_v(p_id bytea, t_now bigint, p_ref text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF r.id IS NULL OR r.ref_id IS DISTINCT FROM p_ref OR t_now >= r.forget_at THEN
        RETURN 0;
    END IF;
    IF t_now < r.claim_until THEN
        UPDATE {{.T}}verifications SET provider = NULL, ref_id = NULL, dest = NULL, region = NULL,
            channel = NULL, challenged = false, sends = 0, attempts = 0, created_at = NULL, sent_at = NULL,
            expires_at = NULL, forget_at = NULL
        WHERE id = p_id;
    ELSE
        DELETE FROM {{.T}}verifications WHERE id = p_id;
    END IF;
    RETURN 1;
END
$$;

CREATE FUNCTION {{.T}}delete(p_id bytea, p_now bigint, p_ref text) RETURNS {{.T}}reply
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN {{.T}}sreply({{.T}}delete_v(p_id, {{.T}}now(p_now), p_ref), 0, 0);
END
$$;

-- decide is Limiter.Allow, as otp.MemoryLimiter decides it, at t_now (the
-- Store calls it with now()):
-- overrides (o_keys), buckets (b_*: id, scope, emission interval and
-- burst tolerance in ns, Challenge) and breakers (k_*: id, window in µs,
-- MinSends, MinShare, RecordOnly). It returns st 0 and takes one token
-- from each bucket, or a denial (see reply) and takes nothing; an open
-- breaker that is not RecordOnly counts its refusal either way.
CREATE FUNCTION {{.T}}decide(t_now bigint,
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    o_keys text[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    nb integer := coalesce(cardinality(b_ids), 0);
    nk integer := coalesce(cardinality(k_ids), 0);
    t_us bigint := t_now / 1000 - CASE WHEN t_now % 1000 < 0 THEN 1 ELSE 0 END;
    v_allow boolean := false;
    v_chal integer := 0;
    v_action text;
    v_tats bigint[];
    v_t bigint;
    v_w bigint;
    v_hard integer := -1;
    v_hard_w bigint := 0;
    v_soft integer := -1;
    v_soft_w bigint := 0;
    v_key integer;
    kb {{.T}}breakers;
    w bigint;
    f double precision;
    c_sent bigint; c_ver bigint; c_ref bigint; c_pass bigint;
    p_sent bigint; p_ver bigint; p_ref bigint; p_pass bigint;
    demand double precision;
BEGIN
    FOR i IN 1..coalesce(cardinality(o_keys), 0) LOOP
        SELECT action INTO v_action FROM {{.T}}overrides
        WHERE target = o_keys[i] AND (until_ns IS NULL OR t_now < until_ns);
        IF v_action = 'block' THEN
            RETURN {{.T}}sreply(14, i - 1, 0);
        ELSIF v_action = 'allow' THEN
            v_allow := true;
        ELSIF v_action = 'challenge' THEN
            v_chal := 12;
        END IF;
    END LOOP;

    IF nb > 0 THEN
        FOR v_key IN SELECT DISTINCT {{.T}}lock_key(x) FROM unnest(b_ids) AS x ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock({{.LockB}}, v_key);
        END LOOP;
        v_tats := array_fill(NULL::bigint, ARRAY[nb]);
        FOR i IN 1..nb LOOP
            -- An allowed destination skips the buckets with Challenge.
            CONTINUE WHEN b_soft[i] AND v_allow;
            -- A bucket named twice sees its first token taken.
            v_t := NULL;
            FOR j IN REVERSE i - 1..1 LOOP
                IF b_ids[j] = b_ids[i] AND v_tats[j] IS NOT NULL THEN
                    v_t := v_tats[j];
                    EXIT;
                END IF;
            END LOOP;
            IF v_t IS NULL THEN
                SELECT tat INTO v_t FROM {{.T}}buckets WHERE id = b_ids[i];
            END IF;
            v_t := greatest(coalesce(v_t, t_now), t_now);
            v_w := v_t - t_now - b_tol[i];
            IF v_w <= 0 THEN
                v_tats[i] := v_t + b_int[i];
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
            CONTINUE WHEN kb.id IS NULL;
            -- Roll the counts to the window holding t_us, as
            -- breakerState.roll does, then estimate the sliding window.
            w := t_us / k_win[i];
            IF w = kb.win THEN
                c_sent := kb.sent; c_ver := kb.verified; c_ref := kb.refused; c_pass := kb.passed;
                p_sent := kb.prev_sent; p_ver := kb.prev_verified; p_ref := kb.prev_refused; p_pass := kb.prev_passed;
            ELSIF w = kb.win + 1 THEN
                c_sent := 0; c_ver := 0; c_ref := 0; c_pass := 0;
                p_sent := kb.sent; p_ver := kb.verified; p_ref := kb.refused; p_pass := kb.passed;
            ELSE
                c_sent := 0; c_ver := 0; c_ref := 0; c_pass := 0;
                p_sent := 0; p_ver := 0; p_ref := 0; p_pass := 0;
            END IF;
            f := (t_us - w * k_win[i])::double precision / k_win[i]::double precision;
            demand := (p_sent::double precision * (1 - f) + c_sent::double precision)
                + greatest(0::double precision,
                    (p_ref::double precision * (1 - f) + c_ref::double precision)
                    - (p_pass::double precision * (1 - f) + c_pass::double precision));
            IF demand >= k_min[i]::double precision
                AND p_ver::double precision * (1 - f) + c_ver::double precision < k_share[i] * demand THEN
                v_chal := 13;
                IF NOT k_ro[i] THEN
                    UPDATE {{.T}}breakers SET win = w,
                        sent = c_sent, verified = c_ver, refused = c_ref + 1, passed = c_pass,
                        prev_sent = p_sent, prev_verified = p_ver, prev_refused = p_ref, prev_passed = p_pass,
                        idle_at = least((w + 2)::numeric * k_win[i] * 1000, 9223372036854775807)::bigint
                    WHERE id = k_ids[i];
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
        CONTINUE WHEN v_tats[i] IS NULL;
        INSERT INTO {{.T}}buckets AS b (id, scope, tat) VALUES (b_ids[i], b_scopes[i], v_tats[i])
        ON CONFLICT (id) DO UPDATE SET tat = excluded.tat;
    END LOOP;
    RETURN {{.T}}sreply(0, 0, 0);
END
$$;

-- record is Limiter.Record at t_now (the Store calls it with now()): outcome 1 (sent), 2 (sent after a
-- challenge) or 3 (verified); f_* the buckets that get their token back on
-- a verified outcome (id, emission interval); k_* the breakers (id, name,
-- window in µs).
CREATE FUNCTION {{.T}}record(t_now bigint, p_outcome integer, f_ids bytea[], f_int bigint[],
    k_ids bytea[], k_names text[], k_win bigint[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_us bigint := t_now / 1000 - CASE WHEN t_now % 1000 < 0 THEN 1 ELSE 0 END;
    d_sent bigint := CASE WHEN p_outcome IN (1, 2) THEN 1 ELSE 0 END;
    d_pass bigint := CASE WHEN p_outcome = 2 THEN 1 ELSE 0 END;
    d_ver bigint := CASE WHEN p_outcome = 3 THEN 1 ELSE 0 END;
    v_key integer;
    v_t bigint;
    w bigint;
    i bigint;
BEGIN
    IF p_outcome = 3 AND coalesce(cardinality(f_ids), 0) > 0 THEN
        FOR v_key IN SELECT DISTINCT {{.T}}lock_key(x) FROM unnest(f_ids) AS x ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock({{.LockB}}, v_key);
        END LOOP;
        FOR j IN 1..cardinality(f_ids) LOOP
            -- A token back, never beyond full: a bucket full again goes.
            UPDATE {{.T}}buckets SET tat = tat - f_int[j] WHERE id = f_ids[j] AND tat > t_now
            RETURNING tat INTO v_t;
            IF FOUND AND v_t <= t_now THEN
                DELETE FROM {{.T}}buckets WHERE id = f_ids[j];
            END IF;
        END LOOP;
    END IF;
    FOR i IN SELECT u.ord FROM unnest(k_ids) WITH ORDINALITY AS u(x, ord) ORDER BY u.x, u.ord LOOP
        w := t_us / k_win[i];
        INSERT INTO {{.T}}breakers AS b (id, name, window_us, win, sent, verified, refused, passed, idle_at)
        VALUES (k_ids[i], k_names[i], k_win[i], w, d_sent, d_ver, 0, d_pass,
            least((w + 2)::numeric * k_win[i] * 1000, 9223372036854775807)::bigint)
        ON CONFLICT (id) DO UPDATE SET
            prev_sent = CASE WHEN b.win = excluded.win THEN b.prev_sent WHEN b.win + 1 = excluded.win THEN b.sent ELSE 0 END,
            prev_verified = CASE WHEN b.win = excluded.win THEN b.prev_verified WHEN b.win + 1 = excluded.win THEN b.verified ELSE 0 END,
            prev_refused = CASE WHEN b.win = excluded.win THEN b.prev_refused WHEN b.win + 1 = excluded.win THEN b.refused ELSE 0 END,
            prev_passed = CASE WHEN b.win = excluded.win THEN b.prev_passed WHEN b.win + 1 = excluded.win THEN b.passed ELSE 0 END,
            sent = CASE WHEN b.win = excluded.win THEN b.sent ELSE 0 END + excluded.sent,
            verified = CASE WHEN b.win = excluded.win THEN b.verified ELSE 0 END + excluded.verified,
            refused = CASE WHEN b.win = excluded.win THEN b.refused ELSE 0 END,
            passed = CASE WHEN b.win = excluded.win THEN b.passed ELSE 0 END + excluded.passed,
            win = excluded.win, idle_at = excluded.idle_at, name = excluded.name;
    END LOOP;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- get_allow is LimitingStore.GetAllow (and, without a spare and limits,
-- Store.Claim): another's claim answers 4; the live repeat inside its
-- cooldown (s_to, s_now, s_cd: the otp.Spare) is returned as it is;
-- otherwise the limits are decided and, when they pass, the key is claimed
-- for p_token until p_until.
CREATE FUNCTION {{.T}}get_allow(p_id bytea, p_now bigint, p_token text, p_until bigint,
    s_to text, s_now bigint, s_cd bigint[],
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    o_keys text[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t_now bigint;
    v {{.T}}reply;
    d {{.T}}reply;
    n integer := coalesce(cardinality(s_cd), 0);
    v_cd bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    t_now := {{.T}}now(p_now);
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF {{.T}}claimed_by_other(r, p_token, t_now) THEN
        RETURN {{.T}}sreply(4, 0, 0);
    END IF;
    v := {{.T}}state(r, t_now);
    IF v.st = 1 THEN
        IF n > 0 THEN
            v_cd := s_cd[least(greatest(v.sends, 1), n)];
        END IF;
        IF v.ref_id <> '' AND v.dest = s_to AND s_now::numeric < v.sent_at::numeric + v_cd THEN
            RETURN v; -- the repeat: nothing taken, nothing claimed
        END IF;
    END IF;
    d := {{.T}}decide(t_now, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_min, k_share, k_ro, o_keys);
    IF d.st <> 0 THEN
        RETURN d;
    END IF;
    PERFORM {{.T}}set_claim(p_id, p_token, p_until);
    IF v.st = 1 THEN
        RETURN v;
    END IF;
    RETURN {{.T}}sreply(0, 0, 0);
END
$$;

-- allow_add_attempt is LimitingStore.AllowAddAttempt (and, without
-- limits, Store.AddAttempt): the limits, then an attempt.
CREATE FUNCTION {{.T}}allow_add_attempt(p_id bytea, p_now bigint, p_max integer,
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[],
    o_keys text[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t_now bigint := {{.T}}now(p_now);
    v {{.T}}reply;
    d {{.T}}reply;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF coalesce(cardinality(b_ids), 0) + coalesce(cardinality(k_ids), 0) + coalesce(cardinality(o_keys), 0) > 0 THEN
        d := {{.T}}decide(t_now, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_min, k_share, k_ro, o_keys);
        IF d.st <> 0 THEN
            RETURN d;
        END IF;
    END IF;
    v := {{.T}}state(r, t_now);
    IF v.st <> 1 THEN
        -- Cheap, as the row is locked: a verification gone, under no live
        -- claim, goes now.
        IF r.id IS NOT NULL AND r.ref_id IS NOT NULL AND t_now >= r.forget_at
            AND NOT coalesce(t_now < r.claim_until, false) THEN
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

CREATE FUNCTION {{.T}}put_record(p_id bytea, p_now bigint, p_ret bigint, p_provider text, p_ref text,
    p_dest text, p_region text, p_channel text, p_challenged boolean, p_sends integer, p_attempts integer,
    p_created bigint, p_sent bigint, p_expires bigint,
    p_outcome integer, f_ids bytea[], f_int bigint[], k_ids bytea[], k_names text[], k_win bigint[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    t_now := {{.T}}now(p_now);
    PERFORM {{.T}}put_v(p_id, t_now, p_ret, p_provider, p_ref, p_dest, p_region, p_channel,
        p_challenged, p_sends, p_attempts, p_created, p_sent, p_expires);
    PERFORM {{.T}}record(t_now, p_outcome, f_ids, f_int, k_ids, k_names, k_win);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}delete_record(p_id bytea, p_now bigint, p_ref text,
    p_outcome integer, f_ids bytea[], f_int bigint[], k_ids bytea[], k_names text[], k_win bigint[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    IF {{.T}}delete_v(p_id, t_now, p_ref) = 0 THEN
        RETURN {{.T}}sreply(0, 0, 0);
    END IF;
    PERFORM {{.T}}record(t_now, p_outcome, f_ids, f_int, k_ids, k_names, k_win);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

-- set_override puts an override in force (p_action NULL removes it) and
-- drops the ones that have ended, this one too if it has.
CREATE FUNCTION {{.T}}set_override(p_now bigint, p_target text, p_action text, p_until bigint)
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    IF p_action IS NULL THEN
        DELETE FROM {{.T}}overrides WHERE target = p_target;
    ELSE
        INSERT INTO {{.T}}overrides AS o (target, action, until_ns, set_at) VALUES (p_target, p_action, p_until, now())
        ON CONFLICT (target) DO UPDATE SET action = excluded.action, until_ns = excluded.until_ns, set_at = excluded.set_at;
    END IF;
    DELETE FROM {{.T}}overrides WHERE until_ns <= t_now;
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}overrides_in_force(p_now bigint)
RETURNS TABLE (target text, action text, until_ns bigint) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    RETURN QUERY SELECT o.target, o.action, o.until_ns FROM {{.T}}overrides AS o
        WHERE o.until_ns IS NULL OR t_now < o.until_ns ORDER BY o.target;
END
$$;

-- clean deletes at most p_batch rows of each table that no read can see
-- any more, skipping rows another call holds, and says how many went.
CREATE FUNCTION {{.T}}clean(p_now bigint, p_batch integer,
    OUT verifications integer, OUT buckets integer, OUT breakers integer, OUT overrides integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    DELETE FROM {{.T}}verifications WHERE id IN (
        SELECT id FROM {{.T}}verifications WHERE purge_at <= t_now LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS verifications = ROW_COUNT;
    DELETE FROM {{.T}}buckets WHERE id IN (
        SELECT id FROM {{.T}}buckets WHERE tat <= t_now LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS buckets = ROW_COUNT;
    DELETE FROM {{.T}}breakers WHERE id IN (
        SELECT id FROM {{.T}}breakers WHERE idle_at <= t_now LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS breakers = ROW_COUNT;
    DELETE FROM {{.T}}overrides WHERE target IN (
        SELECT target FROM {{.T}}overrides WHERE until_ns <= t_now LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS overrides = ROW_COUNT;
END
$$;
