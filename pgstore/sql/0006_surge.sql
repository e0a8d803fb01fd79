-- pgstore schema, version 6.
--
-- A surge. A breaker's demand also counts its sends in their grace beyond
-- the larger of its sends past their grace and its verified sends, as
-- breakerState.judge does: a burst of thousands of sends inside the grace
-- meets the breaker before the grace is over, while the sends a busy
-- region always has in flight are no surge. Arguments, results and tables
-- are those of version 5.

CREATE OR REPLACE FUNCTION {{.T}}judge(b {{.T}}breakers, t_us bigint, win_us bigint, grace_us bigint,
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
