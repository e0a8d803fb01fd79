-- pgstore schema, version 5.
--
-- A refusal beside a challenge bucket. An open breaker no longer counts
-- the refusal of a call that a bucket with Challenge (a range out of
-- tokens) refuses too: traffic the range budget already stops must not
-- hold the breaker open for everyone else, as otp.LimitBreaker says.
-- decide keeps its arguments and result, and no table changes.

-- decide is Limiter.Allow, as otp.MemoryLimiter decides it, at t (the
-- Store calls it with now()):
-- overrides (o_*: target key, Challenge), buckets (b_*: id, scope,
-- emission interval and burst tolerance in ns, Challenge) and breakers
-- (k_*: id, window and grace in µs, MinSends, MinShare, RecordOnly,
-- Fallback; a grace of 0 is none). It
-- returns st 0 and takes one token from each bucket, or a denial (see
-- reply) and takes nothing; an open breaker that is not RecordOnly counts
-- its refusal, unless a bucket with Challenge refuses the call too. A Fallback breaker is judged only when the
-- breaker before it was not (too little demand, or no row).
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
            IF k_fb[i] AND judged OR kb.id IS NULL THEN
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
