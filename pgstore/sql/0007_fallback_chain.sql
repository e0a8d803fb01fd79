-- pgstore schema, version 7.
--
-- The fallback chain. Once a breaker of a chain is judged, every Fallback
-- after it is skipped (the region, then its calling code's group, then
-- the quiet breaker): before, a skipped group handed the chain on, so a
-- busy member region (Canada in +1) was judged by, and counted in, the
-- quiet breaker too. decide and record keep their arguments and results,
-- and no table changes.

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
CREATE OR REPLACE FUNCTION {{.T}}decide(t {{.T}}instant,
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
CREATE OR REPLACE FUNCTION {{.T}}record(t {{.T}}instant, p_outcome integer, f_ids bytea[], f_int bigint[],
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
