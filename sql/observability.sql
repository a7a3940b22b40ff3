-- cache_query_stats: each outcome counted once, per query text
SELECT cache_query_stats_reset();
CREATE TABLE obs_t (x int);
INSERT INTO obs_t VALUES (1), (2), (3);
SELECT cache_track('obs_t');
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
SELECT count(*) FROM cached_query('SELECT random()') AS t(r float8);
BEGIN;
UPDATE obs_t SET x = x + 1 WHERE x = 1;
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
COMMIT;
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
SELECT query, calls, hits, misses, bypasses, bypass_reasons, stores, store_skipped,
       invalidated, bytes_stored > 0 AS stored, bytes_read = 2 * (bytes_stored / 2) AS read_two,
       mean_hit_ms > 0 AS hit_ms, max_hit_ms >= mean_hit_ms AS max_ok, mean_miss_ms > 0 AS miss_ms,
       abs(time_saved_ms - (hits * mean_miss_ms - hits * mean_hit_ms)) < 1e-6 AS saved_ok,
       last_invalidation IS NOT NULL AS last_inv, dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS db
  FROM cache_query_stats ORDER BY query;

-- off: nothing counted
SET cache_ext.query_stats = off;
SELECT * FROM cached_query('SELECT sum(x) FROM obs_t') AS t(s bigint);
RESET cache_ext.query_stats;
SELECT calls FROM cache_query_stats WHERE query = 'SELECT sum(x) FROM obs_t';

-- query text is for pg_read_all_stats, resetting for whoever is granted it
CREATE ROLE obs_reader;
SET ROLE obs_reader;
SELECT count(*) FROM cache_query_stats;
SELECT cache_query_stats_reset();
RESET ROLE;
GRANT pg_read_all_stats TO obs_reader;
SET ROLE obs_reader;
SELECT count(*) > 0 AS visible FROM cache_query_stats;
SELECT cache_query_stats_reset();
RESET ROLE;
SELECT cache_query_stats_reset();
SELECT count(*) FROM cache_query_stats;

-- cache_health: the parts that do not depend on timing (the GRANT above
-- asked for a server bump on every target: a call delivers it first)
SELECT count(*) FROM cached_query('SELECT 1') AS t(x int);
SELECT connected, circuit, circuit_retry_ms, redis_role, outbox_depth, pending_invalidations,
       rtt_ms > 0 AS rtt, redis_version ~ '^\d+\.\d+' AS version, used_memory > 0 AS used,
       maxmemory_policy IS NOT NULL AS policy, evicted_keys >= 0 AS evicted,
       warnings IS NOT NULL AS warnings
  FROM cache_health();

-- logging settings
SHOW cache_ext.log_calls;
SHOW cache_ext.log_calls_level;
SET cache_ext.log_calls = 'everything';
SET cache_ext.log_calls = 'all';
SET cache_ext.log_calls_level = 'debug1';
RESET cache_ext.log_calls;
RESET cache_ext.log_calls_level;
SET cache_ext.query_stats_max = 5;

-- Outcomes are values: a bypass is counted by its kind, never by its words,
-- and a status is never cut short (0.3 kept 255 bytes of it).
SELECT cache_query_stats_reset();
CREATE TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 (x int);
CREATE TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2 (x int);
CREATE TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3 (x int);
CREATE TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4 (x int);
CREATE TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5 (x int);
SELECT count(*) FROM cached_query('SELECT 1 FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5') AS t(x int);
SELECT length(cache_status()) > 300 AS long,
       cache_status() LIKE 'MISS (ttl-only: %aaaaaa5 untracked)' AS whole;
SET cache_ext.untracked = bypass;
SELECT count(*) FROM cached_query('SELECT 1 FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1') AS t(x int);
RESET cache_ext.untracked;
SET cache_ext.enabled = off;
SELECT count(*) FROM cached_query('SELECT 1 FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1') AS t(x int);
RESET cache_ext.enabled;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM cached_query('SELECT 1 FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1') AS t(x int);
COMMIT;
BEGIN;
INSERT INTO obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 VALUES (1);
SELECT count(*) FROM cached_query('SELECT 1 FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1') AS t(x int);
ROLLBACK;
SELECT count(*) FROM cached_query('SELECT random() FROM obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1') AS t(x float8);
SELECT left(query, 30) AS query, calls, bypasses, bypass_reasons FROM cache_query_stats ORDER BY query;
DROP TABLE obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2,
  obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3, obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4,
  obs_untracked_with_a_long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5;
