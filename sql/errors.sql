-- What cached_query refuses, with the SQLSTATE of each error.
\set VERBOSITY sqlstate
CREATE TABLE err_t (id int, v text);
INSERT INTO err_t VALUES (1, 'one');

-- statements that are not read-only queries: nothing runs
SELECT * FROM cached_query('INSERT INTO err_t VALUES (2, ''two'')') AS t(x int);
SELECT * FROM cached_query('UPDATE err_t SET v = ''x''') AS t(x int);
SELECT * FROM cached_query('DELETE FROM err_t') AS t(x int);
SELECT * FROM cached_query('MERGE INTO err_t USING err_t s ON false WHEN NOT MATCHED THEN DO NOTHING') AS t(x int);
SELECT * FROM cached_query('CREATE TABLE err_new (x int)') AS t(x int);
SELECT * FROM cached_query('SELECT * INTO err_new FROM err_t') AS t(x int);
SELECT * FROM cached_query('SELECT * FROM err_t FOR UPDATE') AS t(id int, v text);
SELECT * FROM cached_query('SELECT * FROM (SELECT * FROM err_t FOR SHARE) s') AS t(id int, v text);
SELECT * FROM cached_query('WITH d AS (DELETE FROM err_t RETURNING id) SELECT id FROM d') AS t(id int);
SELECT * FROM cached_query('SELECT 1; DELETE FROM err_t') AS t(x int);
SELECT * FROM cached_query('') AS t(x int);
SELECT * FROM cached_query('EXPLAIN SELECT 1') AS t(x text);
SELECT count(*) AS still_one_row, min(v) AS unchanged FROM err_t;
SELECT to_regclass('err_new') IS NULL AS not_created;

-- the column definition list must match the result
\set VERBOSITY default
SELECT * FROM cached_query('SELECT id, v FROM err_t') AS t(id int);
SELECT * FROM cached_query('SELECT id, v FROM err_t') AS t(id int, v int);
SELECT * FROM cached_query('SELECT count(*) FROM err_t') AS t(n int);
SELECT * FROM cached_query('SELECT 1.5::numeric(4,2)') AS t(n numeric(5,1));
\set VERBOSITY sqlstate
SELECT * FROM cached_query('SELECT id FROM err_t');

-- bad input
SELECT * FROM cached_query(NULL) AS t(x int);
SELECT * FROM cached_query('SELECT id FROM nosuchtable') AS t(x int);
SELECT * FROM cached_query('SELEC 1') AS t(x int);
SELECT * FROM cached_query('SELECT $1', ROW(1, 2)) AS t(x int);
SELECT * FROM cached_query('SELECT $2::int', 1) AS t(x int);
SELECT * FROM cached_query_with(cache_opts(ttl => '0 seconds'), 'SELECT 1') AS t(x int);
SELECT * FROM cached_query_with(cache_opts(ttl => '-1 hour'), 'SELECT 1') AS t(x int);
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['ok', NULL]), 'SELECT 1') AS t(x int);
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['']), 'SELECT 1') AS t(x int);
SELECT cached_query('SELECT 1');
-- after an error there is no status to report
SELECT cache_status() IS NULL AS no_status;

-- errors raised by the query itself are the query's errors
SELECT * FROM cached_query('SELECT 1 / 0') AS t(x int);
SELECT * FROM cached_query('SELECT 1 / $1', 0) AS t(x int);
