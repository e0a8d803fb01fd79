-- pgstore schema, version 4.
--
-- Cached plans. A LANGUAGE sql function that cannot be inlined is planned
-- again on every call, which cost now, set_claim and put_breaker about
-- 100 µs a call, most of a Start's time in the database. As PL/pgSQL their
-- statements are planned once a session. Their arguments, results and
-- what they do are those of version 3: no table changes, and instances of
-- version 3 keep working on this schema.

CREATE OR REPLACE FUNCTION {{.T}}now(p_s bigint, p_n integer) RETURNS {{.T}}instant
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

CREATE OR REPLACE FUNCTION {{.T}}set_claim(p_id bytea, p_token text, p_until_s bigint, p_until_n integer)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO {{.T}}verifications AS v (id, claim_token, claim_until_s, claim_until_n)
    VALUES (p_id, p_token, p_until_s, p_until_n)
    ON CONFLICT (id) DO UPDATE SET claim_token = excluded.claim_token,
        claim_until_s = excluded.claim_until_s, claim_until_n = excluded.claim_until_n;
END
$$;

CREATE OR REPLACE FUNCTION {{.T}}put_breaker(b {{.T}}breakers, p_id bytea, p_name text, win_us bigint, grace_us bigint)
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
