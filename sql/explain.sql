-- cache_explain: the verdict, every reason, dependencies and the entry,
-- without running the query.
CREATE TABLE ex_sales (id int, region int, amount numeric);
INSERT INTO ex_sales SELECT g, g % 5, g FROM generate_series(1, 100) g;
CREATE VIEW ex_view AS SELECT region, sum(amount) AS total FROM ex_sales GROUP BY region;
CREATE TEMP TABLE ex_temp (x int);

SELECT hits + misses + bypasses AS calls_before FROM cache_stats \gset
-- keys have a fixed shape; the rest is shown as is
SELECT cache_explain('SELECT count(*) FROM ex_sales WHERE region = $1', 2)->>'key'
       ~ '^cache_ext:[0-9a-f]{16}:e:[0-9a-f]{64}$' AS key_shape;
SELECT jsonb_pretty(cache_explain('SELECT count(*) FROM ex_sales WHERE region = $1', 2) - 'key');
-- explaining ran nothing and stored nothing
SELECT hits + misses + bypasses - :calls_before AS calls FROM cache_stats;

-- after a call the entry exists and is valid; the key is the call's key
SELECT * FROM cached_query('SELECT count(*) FROM ex_sales WHERE region = $1', 2) AS t(n bigint);
SELECT e->'entry'->'exists' AS exists, e->'entry'->'valid' AS valid, e->'entry'->'rows' AS rows,
       (e->'entry'->>'ttl_ms')::int BETWEEN 1 AND 300000 AS ttl_set, (e->'entry'->>'bytes')::int > 48 AS has_bytes
  FROM cache_explain('SELECT count(*) FROM ex_sales WHERE region = $1', 2) e;
-- other parameter values are other keys
SELECT cache_explain('SELECT count(*) FROM ex_sales WHERE region = $1', 3)->'entry'->'exists' AS other_value_exists;

-- a view: its base tables are dependencies too
SELECT jsonb_pretty(cache_explain('SELECT * FROM ex_view')->'dependencies');

-- every reason, not only the first
SELECT jsonb_pretty(cache_explain('SELECT random(), now(), relname FROM pg_class LIMIT 1') - 'key' - 'entry');
SELECT cache_explain('SELECT x FROM ex_temp')->'reasons';
SET cache_ext.enabled = off;
SELECT cache_explain('SELECT 1')->'reasons';
RESET cache_ext.enabled;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT cache_explain('SELECT 1')->'reasons';
COMMIT;
SELECT cache_explain('SELECT ''today''::date')->'reasons';
SELECT cache_explain('SELECT current_user::text')->'role_in_key';

-- Redis unreachable: said so, no error
\set VERBOSITY terse
SET cache_ext.redis_url = 'redis://127.0.0.1:1/0';
SELECT cache_explain('SELECT 1')->>'redis' LIKE '%unavailable%' AS redis_unavailable;
RESET cache_ext.redis_url;
\set VERBOSITY default

-- the caller must be allowed to run the query
CREATE ROLE ex_nobody;
SET ROLE ex_nobody;
SELECT cache_explain('SELECT count(*) FROM ex_sales');
RESET ROLE;
DROP ROLE ex_nobody;
-- statements cached_query refuses are refused here too
SELECT cache_explain('DELETE FROM ex_sales');

-- with per-call options: their TTL, tags and depends_on
SELECT cache_track('ex_sales');
SELECT e->'ttl_seconds' AS ttl, e->'scopes' AS scopes, e->'freshness' AS freshness, e->'verdict' AS verdict
  FROM cache_explain_with(cache_opts(ttl => '90 s', tags => ARRAY['daily']),
                          'SELECT count(*) FROM ex_sales WHERE region = $1', 3) AS e;
SELECT cache_untrack('ex_sales');
