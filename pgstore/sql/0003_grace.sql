-- pgstore schema, version 3.
--
-- Grace. A breaker also counts its sends as young, in windows of the
-- breaker's Grace (otp.Conversion.Grace: Unix µs / grace), the current one
-- and the one before, estimated as its other counts are (prev * (1 - f) +
-- cur), and its demand is max(0, sent - young) + max(0, refused - passed),
-- with the arithmetic of otp.LimitBreaker: a code still being typed is not
-- a failed verification. A grace of 0 is none: young reads 0, and a send
-- still counts in young_cur, unrolled, as MemoryLimiter counts it.
--
-- The breakers table gets the young counts; existing rows start at 0 young
-- sends, so the sends they counted are past their grace. A breaker is idle
-- (and may go) once both its window and its grace's have ended twice over
-- since its last write. The functions that judge or record breakers take
-- the grace of each breaker (k_grace, µs) and are dropped and made again,
-- and so are those that call them with their arguments; locks are taken
-- as in version 2.

DROP FUNCTION {{.T}}delete_record(bytea, bigint, integer, text, integer,
    bytea[], bigint[], bytea[], text[], bigint[], integer[], boolean[]);
DROP FUNCTION {{.T}}put_record(bytea, bigint, integer, bigint, text, text, text, text, text, boolean, integer, integer,
    bigint, integer, bigint, integer, bigint, integer, integer,
    bytea[], bigint[], bytea[], text[], bigint[], integer[], boolean[]);
DROP FUNCTION {{.T}}allow_add_attempt(bytea, bigint, integer, integer,
    bytea[], text[], bigint[], bigint[], boolean[],
    bytea[], bigint[], integer[], double precision[], boolean[], boolean[], text[], boolean[]);
DROP FUNCTION {{.T}}get_allow(bytea, bigint, integer, text, bigint, integer, text, bigint, integer, bigint[],
    bytea[], text[], bigint[], bigint[], boolean[],
    bytea[], bigint[], integer[], double precision[], boolean[], boolean[], text[], boolean[]);
DROP FUNCTION {{.T}}record({{.T}}instant, integer, bytea[], bigint[], bytea[], text[], bigint[], integer[], boolean[]);
DROP FUNCTION {{.T}}decide({{.T}}instant, bytea[], text[], bigint[], bigint[], boolean[],
    bytea[], bigint[], integer[], double precision[], boolean[], boolean[], text[], boolean[]);
DROP FUNCTION {{.T}}put_breaker({{.T}}breakers, bytea, text, bigint);
DROP FUNCTION {{.T}}judge({{.T}}breakers, bigint, bigint);
DROP FUNCTION {{.T}}rolled({{.T}}breakers, bigint);

-- young_win is the index of the current window of the breaker's grace
-- (Unix µs / grace), young_cur and young_prev the sends of that window and
-- of the one before.
ALTER TABLE {{.T}}breakers
    ADD COLUMN young_win bigint NOT NULL DEFAULT 0,
    ADD COLUMN young_cur bigint NOT NULL DEFAULT 0,
    ADD COLUMN young_prev bigint NOT NULL DEFAULT 0;

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

-- judge returns the demand and the verified count of breaker b (rolled to
-- t_us) over the sliding window of win_us ending at t_us, less its sends
-- still in their grace of grace_us, with the arithmetic of
-- breakerState.estimate, young and judge.
CREATE FUNCTION {{.T}}judge(b {{.T}}breakers, t_us bigint, win_us bigint, grace_us bigint,
    OUT demand double precision, OUT verified double precision) LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f double precision := (t_us - b.win * win_us)::double precision / win_us::double precision;
    fy double precision;
    young double precision := 0;
BEGIN
    IF grace_us > 0 THEN
        fy := (t_us - b.young_win * grace_us)::double precision / grace_us::double precision;
        young := b.young_prev::double precision * (1 - fy) + b.young_cur::double precision;
    END IF;
    demand := greatest(0::double precision,
            (b.prev_sent::double precision * (1 - f) + b.sent::double precision) - young)
        + greatest(0::double precision,
            (b.prev_refused::double precision * (1 - f) + b.refused::double precision)
            - (b.prev_passed::double precision * (1 - f) + b.passed::double precision));
    verified := b.prev_verified::double precision * (1 - f) + b.verified::double precision;
END
$$;

-- put_breaker writes breaker b (rolled) under id, name and window. It is
-- idle from the end of the window after next on, or, for a grace_us over
-- 0, from the end of the grace window after next, if that is later.
CREATE FUNCTION {{.T}}put_breaker(b {{.T}}breakers, p_id bytea, p_name text, win_us bigint, grace_us bigint)
RETURNS void LANGUAGE sql VOLATILE AS $$
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
        idle_us = excluded.idle_us
$$;

-- decide is Limiter.Allow, as otp.MemoryLimiter decides it, at t (the
-- Store calls it with now()):
-- overrides (o_*: target key, Challenge), buckets (b_*: id, scope,
-- emission interval and burst tolerance in ns, Challenge) and breakers
-- (k_*: id, window and grace in µs, MinSends, MinShare, RecordOnly,
-- Fallback; a grace of 0 is none). It
-- returns st 0 and takes one token from each bucket, or a denial (see
-- reply) and takes nothing; an open breaker that is not RecordOnly counts
-- its refusal either way. A Fallback breaker is judged only when the
-- breaker before it was not (too little demand, or no row).
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
            IF k_fb[i] AND judged OR kb.id IS NULL THEN
                judged := false;
                CONTINUE;
            END IF;
            kb := {{.T}}rolled(kb, t_us, k_win[i], k_grace[i]);
            e := {{.T}}judge(kb, t_us, k_win[i], k_grace[i]);
            judged := e.demand >= k_min[i]::double precision;
            IF judged AND e.verified < k_share[i] * e.demand THEN
                v_chal := 13;
                IF NOT k_ro[i] THEN
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
        IF k_fb[i] AND judged THEN
            judged := false;
            CONTINUE;
        END IF;
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

