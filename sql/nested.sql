-- cached_query inside a function that a cached query calls: the inner calls
-- may fill the per-backend statement cache (1000 entries) while the outer
-- call still holds its statement.  inner_q() reads no table, which the
-- outer calls say with depends_on => '{}' (else they bypass: a PL/pgSQL
-- function's reads are not visible in the plan).
CREATE FUNCTION inner_q(i int) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE r bigint;
BEGIN
    SELECT v INTO r FROM cached_query(format('SELECT %s::bigint + 0', i)) AS t(v bigint);
    RETURN r;
END $$;
SELECT count(*), sum(i), sum(v) FROM cached_query_with(cache_opts(depends_on => '{}'),
    'SELECT i, inner_q(i), i::numeric FROM generate_series(1, 1200) i') AS t(i int, v bigint, n numeric);
SELECT jsonb_array_length(cached_query_json_with(cache_opts(depends_on => '{}'),
    'SELECT i, inner_q(i) AS v, i::numeric AS n FROM generate_series(1, 1200) i'));
-- the outer entries are intact
SELECT count(*), sum(i), sum(v) FROM cached_query_with(cache_opts(depends_on => '{}'),
    'SELECT i, inner_q(i), i::numeric FROM generate_series(1, 1200) i') AS t(i int, v bigint, n numeric);
SELECT cache_status();
-- without depends_on the outer call bypasses, and reports its own status
-- (not that of the last inner call)
SELECT count(*) FROM cached_query(
    'SELECT i, inner_q(i), i::numeric FROM generate_series(1, 3) i') AS t(i int, v bigint, n numeric);
SELECT cache_status() LIKE 'BYPASS: function inner_q()%' AS outer_status;
SELECT 1 AS still_connected;
