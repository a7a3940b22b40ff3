-- Warming: cache_warm makes the cached_query call and returns its status;
-- cache_warm_list warms a list, each query in its own subtransaction.
SET client_min_messages = warning;
CREATE TABLE warm_t (id int PRIMARY KEY, grp int NOT NULL);
INSERT INTO warm_t SELECT g, g % 5 FROM generate_series(1, 500) g;
SELECT cache_track('warm_t');
RESET client_min_messages;

-- the first call stores, the second finds it; a cached_query call hits it
SELECT cache_warm('SELECT grp, count(*) FROM warm_t GROUP BY 1 ORDER BY 1');
SELECT cache_warm('SELECT grp, count(*) FROM warm_t GROUP BY 1 ORDER BY 1');
SELECT * FROM cached_query('SELECT grp, count(*) FROM warm_t GROUP BY 1 ORDER BY 1')
  AS t(grp int, n bigint);
SELECT cache_status();

-- parameters, and the options of cached_query_with: each its own key
SELECT cache_warm('SELECT count(*) FROM warm_t WHERE grp = $1', 3);
SELECT * FROM cached_query('SELECT count(*) FROM warm_t WHERE grp = $1', 3) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT count(*) FROM warm_t WHERE grp = $1', 4) AS t(n bigint);
SELECT cache_status();
SELECT cache_warm_with(cache_opts(namespace => 'warm_ns'), 'SELECT max(id) FROM warm_t');
SELECT * FROM cached_query_with(cache_opts(namespace => 'warm_ns'), 'SELECT max(id) FROM warm_t')
  AS t(m int);
SELECT cache_status();
-- (without the namespace: another key)
SELECT * FROM cached_query('SELECT max(id) FROM warm_t') AS t(m int);
SELECT cache_status();

-- a write invalidates what was warmed, as any entry
INSERT INTO warm_t VALUES (501, 1);
SELECT * FROM cached_query('SELECT grp, count(*) FROM warm_t GROUP BY 1 ORDER BY 1')
  AS t(grp int, n bigint);
SELECT cache_status();

-- the bypass rules are the same: a volatile query is not stored
SELECT cache_warm('SELECT random() > 2 AS never');

-- a list: each query in order, errors and parameters do not stop the rest
SELECT * FROM cache_warm_list(ARRAY[
  'SELECT min(id) FROM warm_t',
  'SELECT min(id) FROM warm_t',
  'SELECT * FROM no_such_table',
  'SELECT count(*) FROM warm_t WHERE grp = $1',
  NULL,
  'SELECT sum(id) FROM warm_t']);
SELECT * FROM cached_query('SELECT sum(id) FROM warm_t') AS t(s bigint);
SELECT cache_status();
-- the subtransactions left the caller's transaction usable
BEGIN;
SELECT count(*) FROM cache_warm_list(ARRAY['SELECT 1/0', 'SELECT count(*) FROM warm_t']);
SELECT count(*) FROM warm_t;
COMMIT;

-- a list with options warms the keys of cached_query_with
SELECT * FROM cache_warm_list(ARRAY['SELECT min(grp) FROM warm_t'], cache_opts(namespace => 'warm_ns'));
SELECT * FROM cached_query_with(cache_opts(namespace => 'warm_ns'), 'SELECT min(grp) FROM warm_t')
  AS t(m int);
SELECT cache_status();

-- the hottest queries of cache_query_stats
SELECT cache_query_stats_reset();
SELECT * FROM cached_query('SELECT count(DISTINCT grp) FROM warm_t') AS t(n bigint);
SELECT * FROM cached_query('SELECT count(DISTINCT grp) FROM warm_t') AS t(n bigint);
SELECT * FROM cache_warm_top(5) WHERE query LIKE '%DISTINCT grp%';

-- errors
SELECT cache_warm(NULL);
SELECT * FROM cache_warm_list(NULL);
SELECT * FROM cache_warm_list(ARRAY[['SELECT 1'], ['SELECT 2']]);
SELECT cache_warm('SELECT 1; SELECT 2');

-- privileges are the caller's: a role that cannot read the table cannot warm it
CREATE ROLE regress_warm_nobody;
SET ROLE regress_warm_nobody;
SELECT cache_warm('SELECT count(*) FROM warm_t');
SELECT * FROM cache_warm_list(ARRAY['SELECT count(*) FROM warm_t']);
RESET ROLE;
DROP ROLE regress_warm_nobody;

SET client_min_messages = warning;
SELECT cache_untrack('warm_t');
DROP TABLE warm_t;
