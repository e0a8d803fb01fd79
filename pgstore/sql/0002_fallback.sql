-- pgstore schema, version 2: the functions that decide limits and record
-- outcomes follow otp.LimitRequest.Fallback and, for an override,
-- otp.LimitRequest.Challenge. The tables are unchanged; the functions
-- whose arguments changed are dropped and made again.
--
-- Locks, in the order of version 1, with one more class: record takes the
-- advisory locks of its breakers ({{.LockK}}), in ascending lock key,
-- after those of its buckets and before the breaker rows, since it may
-- create breaker rows and now reads each before it writes it.

DROP FUNCTION {{.T}}get_allow(bytea, bigint, text, bigint, text, bigint, bigint[],
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}allow_add_attempt(bytea, bigint, integer,
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}decide(bigint,
    bytea[], text[], bigint[], bigint[], boolean[], bytea[], bigint[], integer[], double precision[], boolean[], text[]);
DROP FUNCTION {{.T}}put_record(bytea, bigint, bigint, text, text, text, text, text, boolean, integer, integer,
    bigint, bigint, bigint, integer, bytea[], bigint[], bytea[], text[], bigint[]);
DROP FUNCTION {{.T}}delete_record(bytea, bigint, text, integer, bytea[], bigint[], bytea[], text[], bigint[]);
DROP FUNCTION {{.T}}record(bigint, integer, bytea[], bigint[], bytea[], text[], bigint[]);

-- rolled returns breaker b's counts rolled to window w, as
-- breakerState.roll does: kept in w, moved to prev in the window after,
-- zeros after that or for no row.
CREATE FUNCTION {{.T}}rolled(b {{.T}}breakers, w bigint) RETURNS {{.T}}breakers LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF b.id IS NOT NULL AND w = b.win THEN
        RETURN b;
    ELSIF b.id IS NOT NULL AND w = b.win + 1 THEN
        b.prev_sent := b.sent; b.prev_verified := b.verified; b.prev_refused := b.refused; b.prev_passed := b.passed;
    ELSE
        b.prev_sent := 0; b.prev_verified := 0; b.prev_refused := 0; b.prev_passed := 0;
    END IF;
    b.win := w;
    b.sent := 0; b.verified := 0; b.refused := 0; b.passed := 0;
    RETURN b;
END
$$;

-- judge returns the demand and the verified count of breaker b (rolled to
-- the window holding t_us) over the sliding window of win_us ending at
-- t_us, with the arithmetic of breakerState.estimate and judge.
CREATE FUNCTION {{.T}}judge(b {{.T}}breakers, t_us bigint, win_us bigint,
    OUT demand double precision, OUT verified double precision) LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f double precision := (t_us - b.win * win_us)::double precision / win_us::double precision;
BEGIN
    demand := (b.prev_sent::double precision * (1 - f) + b.sent::double precision)
        + greatest(0::double precision,
            (b.prev_refused::double precision * (1 - f) + b.refused::double precision)
            - (b.prev_passed::double precision * (1 - f) + b.passed::double precision));
    verified := b.prev_verified::double precision * (1 - f) + b.verified::double precision;
END
$$;

-- put_breaker writes breaker b (rolled) under id, name and window.
CREATE FUNCTION {{.T}}put_breaker(b {{.T}}breakers, p_id bytea, p_name text, win_us bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO {{.T}}breakers AS k (id, name, window_us, win, sent, verified, refused, passed,
        prev_sent, prev_verified, prev_refused, prev_passed, idle_at)
    VALUES (p_id, p_name, win_us, b.win, b.sent, b.verified, b.refused, b.passed,
        b.prev_sent, b.prev_verified, b.prev_refused, b.prev_passed,
        least((b.win + 2)::numeric * win_us * 1000, 9223372036854775807)::bigint)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, window_us = excluded.window_us, win = excluded.win,
        sent = excluded.sent, verified = excluded.verified, refused = excluded.refused, passed = excluded.passed,
        prev_sent = excluded.prev_sent, prev_verified = excluded.prev_verified,
        prev_refused = excluded.prev_refused, prev_passed = excluded.prev_passed, idle_at = excluded.idle_at
$$;

-- decide is Limiter.Allow, as otp.MemoryLimiter decides it, at t_now (the
-- Store calls it with now()):
-- overrides (o_*: target key, Challenge), buckets (b_*: id, scope,
-- emission interval and burst tolerance in ns, Challenge) and breakers
-- (k_*: id, window in µs, MinSends, MinShare, RecordOnly, Fallback). It
-- returns st 0 and takes one token from each bucket, or a denial (see
-- reply) and takes nothing; an open breaker that is not RecordOnly counts
-- its refusal either way. A Fallback breaker is judged only when the
-- breaker before it was not (too little demand, or no row).
CREATE FUNCTION {{.T}}decide(t_now bigint,
    b_ids bytea[], b_scopes text[], b_int bigint[], b_tol bigint[], b_soft boolean[],
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[], k_fb boolean[],
    o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
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
    e record;
    judged boolean := false; -- the last breaker's
BEGIN
    FOR i IN 1..coalesce(cardinality(o_keys), 0) LOOP
        SELECT action INTO v_action FROM {{.T}}overrides
        WHERE target = o_keys[i] AND (until_ns IS NULL OR t_now < until_ns);
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
            IF k_fb[i] AND judged OR kb.id IS NULL THEN
                judged := false;
                CONTINUE;
            END IF;
            kb := {{.T}}rolled(kb, t_us / k_win[i]);
            e := {{.T}}judge(kb, t_us, k_win[i]);
            judged := e.demand >= k_min[i]::double precision;
            IF judged AND e.verified < k_share[i] * e.demand THEN
                v_chal := 13;
                IF NOT k_ro[i] THEN
                    kb.refused := kb.refused + 1;
                    PERFORM {{.T}}put_breaker(kb, kb.id, kb.name, k_win[i]);
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

-- record is Limiter.Record at t_now (the Store calls it with now()):
-- outcome 1 (sent), 2 (sent after a challenge) or 3 (verified); f_* the
-- buckets that get their token back on a verified outcome (id, emission
-- interval); k_* the breakers (id, name, window in µs, MinSends,
-- Fallback), fed in order: a Fallback breaker counts the outcome only when
-- the breaker before it has too little demand to be judged.
CREATE FUNCTION {{.T}}record(t_now bigint, p_outcome integer, f_ids bytea[], f_int bigint[],
    k_ids bytea[], k_names text[], k_win bigint[], k_min integer[], k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    nk integer := coalesce(cardinality(k_ids), 0);
    t_us bigint := t_now / 1000 - CASE WHEN t_now % 1000 < 0 THEN 1 ELSE 0 END;
    d_sent bigint := CASE WHEN p_outcome IN (1, 2) THEN 1 ELSE 0 END;
    d_pass bigint := CASE WHEN p_outcome = 2 THEN 1 ELSE 0 END;
    d_ver bigint := CASE WHEN p_outcome = 3 THEN 1 ELSE 0 END;
    v_key integer;
    v_t bigint;
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
            UPDATE {{.T}}buckets SET tat = tat - f_int[j] WHERE id = f_ids[j] AND tat > t_now
            RETURNING tat INTO v_t;
            IF FOUND AND v_t <= t_now THEN
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
        IF k_fb[i] AND judged THEN
            judged := false;
            CONTINUE;
        END IF;
        SELECT * INTO kb FROM {{.T}}breakers WHERE id = k_ids[i];
        kb := {{.T}}rolled(kb, t_us / k_win[i]);
        e := {{.T}}judge(kb, t_us, k_win[i]);
        judged := e.demand >= k_min[i]::double precision;
        kb.sent := kb.sent + d_sent;
        kb.verified := kb.verified + d_ver;
        kb.passed := kb.passed + d_pass;
        PERFORM {{.T}}put_breaker(kb, k_ids[i], k_names[i], k_win[i]);
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
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[], k_fb boolean[],
    o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
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
    d := {{.T}}decide(t_now, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_min, k_share, k_ro, k_fb,
        o_keys, o_soft);
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
    k_ids bytea[], k_win bigint[], k_min integer[], k_share double precision[], k_ro boolean[], k_fb boolean[],
    o_keys text[], o_soft boolean[]) RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r {{.T}}verifications;
    t_now bigint := {{.T}}now(p_now);
    v {{.T}}reply;
    d {{.T}}reply;
BEGIN
    SELECT * INTO r FROM {{.T}}verifications WHERE id = p_id FOR UPDATE;
    IF coalesce(cardinality(b_ids), 0) + coalesce(cardinality(k_ids), 0) + coalesce(cardinality(o_keys), 0) > 0 THEN
        d := {{.T}}decide(t_now, b_ids, b_scopes, b_int, b_tol, b_soft, k_ids, k_win, k_min, k_share, k_ro, k_fb,
            o_keys, o_soft);
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
    p_outcome integer, f_ids bytea[], f_int bigint[],
    k_ids bytea[], k_names text[], k_win bigint[], k_min integer[], k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({{.LockV}}, {{.T}}lock_key(p_id));
    t_now := {{.T}}now(p_now);
    PERFORM {{.T}}put_v(p_id, t_now, p_ret, p_provider, p_ref, p_dest, p_region, p_channel,
        p_challenged, p_sends, p_attempts, p_created, p_sent, p_expires);
    PERFORM {{.T}}record(t_now, p_outcome, f_ids, f_int, k_ids, k_names, k_win, k_min, k_fb);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;

CREATE FUNCTION {{.T}}delete_record(p_id bytea, p_now bigint, p_ref text, p_outcome integer,
    f_ids bytea[], f_int bigint[], k_ids bytea[], k_names text[], k_win bigint[], k_min integer[], k_fb boolean[])
RETURNS {{.T}}reply LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t_now bigint := {{.T}}now(p_now);
BEGIN
    IF {{.T}}delete_v(p_id, t_now, p_ref) = 0 THEN
        RETURN {{.T}}sreply(0, 0, 0);
    END IF;
    PERFORM {{.T}}record(t_now, p_outcome, f_ids, f_int, k_ids, k_names, k_win, k_min, k_fb);
    RETURN {{.T}}sreply(1, 0, 0);
END
$$;
