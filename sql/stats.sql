-- The counters behind cache_stats move once per call, by kind.
SELECT cache_stats_reset();
CREATE TABLE st (v int);
INSERT INTO st SELECT generate_series(1, 10);
SELECT hits, misses, bypasses, stores FROM cache_stats;

SELECT * FROM cached_query('SELECT sum(v) FROM st') AS t(s bigint);
SELECT hits, misses, bypasses, stores, bytes_stored > 0 AS stored_bytes FROM cache_stats;
SELECT * FROM cached_query('SELECT sum(v) FROM st') AS t(s bigint);
SELECT hits, misses, bypasses, stores, bytes_read > 0 AS read_bytes FROM cache_stats;
SELECT * FROM cached_query('SELECT sum(v) + random() * 0 FROM st') AS t(s float8);
SELECT hits, misses, bypasses, stores FROM cache_stats;
SELECT hit_time_ms > 0 AS hit_time, miss_time_ms > 0 AS miss_time, bypass_time_ms > 0 AS bypass_time,
       corrupt, store_skipped, server_wide FROM cache_stats;

SELECT cache_stats_reset();
SELECT hits, misses, bypasses, stores, bytes_read, stats_reset > now() - interval '1 minute' AS recent FROM cache_stats;
