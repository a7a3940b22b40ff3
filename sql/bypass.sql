-- Queries that must not be stored run directly, and cache_status() says why.
CREATE TABLE by_t (id int, v text, at timestamptz);
INSERT INTO by_t SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 day' FROM generate_series(1, 100) g;

SELECT count(*) > 0 AS ok FROM cached_query('SELECT random()') AS t(x float8);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE random() < 2') AS t(id int);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT now()') AS t(x timestamptz);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE at < now()') AS t(id int);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT CURRENT_DATE') AS t(x date);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT LOCALTIMESTAMP') AS t(x timestamp);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT statement_timestamp()') AS t(x timestamptz);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT clock_timestamp()') AS t(x timestamptz);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT $1::timestamptz', 'now') AS t(x timestamptz);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT current_setting(''work_mem'')') AS t(x text);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT pg_backend_pid()') AS t(x int);
SELECT cache_status();
CREATE SEQUENCE by_seq;
SELECT count(*) FROM cached_query('SELECT nextval(''by_seq'')') AS t(x bigint);
SELECT cache_status();

-- a volatile function hidden in an inlined SQL function is still seen
CREATE FUNCTION by_hidden() RETURNS float8 LANGUAGE sql AS 'SELECT random()';
SELECT count(*) FROM cached_query('SELECT by_hidden()') AS t(x float8);
SELECT cache_status();
CREATE FUNCTION by_stable_now() RETURNS timestamptz LANGUAGE sql STABLE AS 'SELECT now()';
SELECT count(*) FROM cached_query('SELECT by_stable_now()') AS t(x timestamptz);
SELECT cache_status();
-- and in a view
CREATE VIEW by_view AS SELECT id, random() AS r FROM by_t;
SELECT count(*) FROM cached_query('SELECT id FROM by_view WHERE r >= 0') AS t(id int);
SELECT cache_status();

-- temporary tables belong to one session
CREATE TEMP TABLE by_temp (x int);
INSERT INTO by_temp VALUES (1);
SELECT * FROM cached_query('SELECT x FROM by_temp') AS t(x int);
SELECT cache_status();

-- system catalogs change without triggers
SELECT count(*) > 0 AS ok FROM cached_query('SELECT relname FROM pg_class') AS t(relname name);
SELECT cache_status();
SELECT count(*) > 0 AS ok FROM cached_query('SELECT table_name::text FROM information_schema.tables') AS t(n text);
SELECT cache_status();

-- TABLESAMPLE: only a repeatable seed with a repeatable method is stored
SELECT count(*) >= 0 AS ok FROM cached_query('SELECT id FROM by_t TABLESAMPLE BERNOULLI (50)') AS t(id int);
SELECT cache_status();
SELECT count(*) >= 0 AS ok FROM cached_query('SELECT id FROM by_t TABLESAMPLE BERNOULLI (50) REPEATABLE (7)') AS t(id int);
SELECT cache_status();

-- the role appears in the key for current_user, not a bypass; privilege
-- functions bypass (a GRANT or REVOKE would not invalidate them)
SELECT * FROM cached_query('SELECT current_user::text') AS t(u text);
SELECT cache_status();
SELECT * FROM cached_query('SELECT has_table_privilege(''by_t'', ''SELECT'')') AS t(b bool);
SELECT cache_status();

-- anonymous record columns cannot be decoded again
SELECT count(*) FROM cached_query_json('SELECT ROW(1, 2) AS r');
SELECT cache_status();

-- snapshots that predate the generations are not stored
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM cached_query('SELECT count(*) FROM by_t') AS t(n bigint);
SELECT cache_status();
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM cached_query('SELECT count(*) FROM by_t') AS t(n bigint);
SELECT cache_status();
COMMIT;
BEGIN;
SELECT * FROM cached_query('SELECT count(*) FROM by_t') AS t(n bigint);
SELECT cache_status();
COMMIT;

-- Redis unreachable: the query runs, BYPASS, a WARNING once per outage
\set VERBOSITY terse
SET cache_ext.redis_url = 'redis://127.0.0.1:1/0';
SET cache_ext.retry_interval = 0;
SELECT * FROM cached_query('SELECT count(*) FROM by_t WHERE id < $1', 50) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT count(*) FROM by_t WHERE id < $1', 50) AS t(n bigint);
SELECT cache_status();
-- while the breaker is open, Redis is not even tried
SET cache_ext.retry_interval = '1h';
SELECT * FROM cached_query('SELECT count(*) FROM by_t WHERE id < $1', 50) AS t(n bigint);
SELECT * FROM cached_query('SELECT count(*) FROM by_t WHERE id < $1', 50) AS t(n bigint);
SELECT cache_status();
RESET cache_ext.redis_url;
-- a new URL is tried at once: the breaker was for the failed server
SELECT * FROM cached_query('SELECT count(*) FROM by_t WHERE id < $1', 50) AS t(n bigint);
SELECT cache_status();
RESET cache_ext.retry_interval;

-- relative date/time literals are converted when a statement is prepared:
-- such statements are prepared again for every call and never stored
SELECT count(*) FROM cached_query('SELECT ''now''::timestamptz') AS t(x timestamptz);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE at > timestamptz ''Today''') AS t(id int);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE at::date > ''yesterday''') AS t(id int);
SELECT cache_status();
SELECT x AS first_now FROM cached_query('SELECT ''now''::timestamptz') AS t(x timestamptz) \gset
SELECT pg_sleep(0.01);
SELECT x > :'first_now' AS not_frozen FROM cached_query('SELECT ''now''::timestamptz') AS t(x timestamptz);
-- ordinary literals of those types are fine
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE at > ''2024-02-01''') AS t(id int);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT id FROM by_t WHERE at::date > E''today''') AS t(id int);
SELECT cache_status();

-- transaction state is not in the key
SELECT count(*) FROM cached_query('SELECT txid_current()') AS t(x bigint);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT pg_current_snapshot()::text') AS t(x text);
SELECT cache_status();
