-- The cached read path: MISS then HIT, parameters, the jsonb form,
-- per-call options, and what goes into the key.
SET client_min_messages = warning;
CREATE TABLE sales (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2));
INSERT INTO sales SELECT g, g % 10, (g * 37 % 1000) / 4.0 FROM generate_series(1, 5000) g;

-- no call yet in this session
SELECT cache_status() IS NULL AS no_status_yet;

SELECT * FROM cached_query('SELECT region, count(*), sum(amount) FROM sales GROUP BY 1 ORDER BY 1')
  AS t(region int, n bigint, total numeric);
SELECT cache_status();
SELECT * FROM cached_query('SELECT region, count(*), sum(amount) FROM sales GROUP BY 1 ORDER BY 1')
  AS t(region int, n bigint, total numeric);
SELECT cache_status();

-- a hit returns exactly what the query returns
SELECT (SELECT array_agg(t::text) FROM cached_query('SELECT region, count(*), sum(amount) FROM sales GROUP BY 1 ORDER BY 1')
          AS t(region int, n bigint, total numeric))
     = (SELECT array_agg(q::text) FROM (SELECT region, count(*), sum(amount) FROM sales GROUP BY 1 ORDER BY 1) q)
  AS hit_equals_direct, cache_status();

-- parameters: typed from the arguments, each value its own entry
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', 4) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
-- the same value with another type is another prepared statement and key
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', 3::bigint) AS t(n bigint);
SELECT cache_status();
-- an unknown literal is text
SELECT * FROM cached_query('SELECT $1 || ''!'', pg_typeof($1)::text', 'abc') AS t(s text, typ text);
-- NULL parameters
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', NULL::int) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', NULL::int) AS t(n bigint);
SELECT cache_status();
-- explicit VARIADIC array
SELECT * FROM cached_query('SELECT $1 + $2', VARIADIC ARRAY[40, 2]) AS t(s int);
SELECT * FROM cached_query('SELECT $1 + $2', 40, 2) AS t(s int);
SELECT cache_status();

-- the jsonb form shares the entries
SELECT cached_query_json('SELECT count(*) FROM sales WHERE region = $1', 4);
SELECT cache_status();
SELECT cached_query_json('SELECT id, amount FROM sales WHERE id <= $1 ORDER BY id', 3);
SELECT cache_status();
SELECT cached_query_json('SELECT id FROM sales WHERE false');

-- empty results are cached too
SELECT * FROM cached_query('SELECT id FROM sales WHERE id < 0') AS t(id int);
SELECT cache_status();
SELECT * FROM cached_query('SELECT id FROM sales WHERE id < 0') AS t(id int);
SELECT cache_status();

-- VALUES, TABLE and WITH are read-only queries
SELECT * FROM cached_query('VALUES (1, ''a''), (2, ''b'')') AS t(i int, s text);
SELECT * FROM cached_query('WITH r AS (SELECT DISTINCT region FROM sales) SELECT count(*) FROM r') AS t(n bigint);
CREATE TABLE tiny (x int);
INSERT INTO tiny VALUES (1), (2);
SELECT * FROM cached_query('TABLE tiny') AS t(x int);

-- per-call options: namespace separates entries, ttl applies to one call
SELECT * FROM cached_query_with(cache_opts(namespace => 'reports'),
    'SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query_with(cache_opts(namespace => 'reports', ttl => '1 minute'),
    'SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
SELECT * FROM cached_query_with(NULL, 'SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
SELECT cached_query_json_with(cache_opts(tags => ARRAY['sales']), 'SELECT 1 AS one');

-- settings that change results are part of the key
CREATE TABLE stamps (ts timestamptz);
INSERT INTO stamps VALUES ('2024-01-01 12:00:00+00');
SET TimeZone = 'UTC';
SELECT * FROM cached_query('SELECT ts::text FROM stamps') AS t(s text);
SELECT cache_status();
SET TimeZone = 'Asia/Tokyo';
SELECT * FROM cached_query('SELECT ts::text FROM stamps') AS t(s text);
SELECT cache_status();
SET TimeZone = 'UTC';
SELECT * FROM cached_query('SELECT ts::text FROM stamps') AS t(s text);
SELECT cache_status();
RESET TimeZone;
-- every setting of the list counts, not only the first
SELECT * FROM cached_query('SELECT (1/3.0::float8)::text') AS t(s text);
SET extra_float_digits = -3;
SELECT * FROM cached_query('SELECT (1/3.0::float8)::text') AS t(s text);
SELECT cache_status();
RESET extra_float_digits;
SET DateStyle = 'German';
SELECT * FROM cached_query('SELECT ts::text FROM stamps') AS t(s text);
SELECT cache_status();
RESET DateStyle;

-- search_path decides which table a name means: entries are not shared
CREATE SCHEMA a;
CREATE SCHEMA b;
CREATE TABLE a.thing (v text);
CREATE TABLE b.thing (v text);
INSERT INTO a.thing VALUES ('from a');
INSERT INTO b.thing VALUES ('from b');
SET search_path = a, public;
SELECT * FROM cached_query('SELECT v FROM thing') AS t(v text);
SELECT * FROM cached_query('SELECT v FROM thing') AS t(v text);
SELECT cache_status();
SET search_path = b, public;
SELECT * FROM cached_query('SELECT v FROM thing') AS t(v text);
SELECT cache_status();
RESET search_path;

-- a table dropped and created again with the same name is a new key
CREATE TABLE phoenix (v int);
INSERT INTO phoenix VALUES (1);
SELECT * FROM cached_query('SELECT v FROM phoenix') AS t(v int);
DROP TABLE phoenix;
CREATE TABLE phoenix (v int);
INSERT INTO phoenix VALUES (2);
SELECT * FROM cached_query('SELECT v FROM phoenix') AS t(v int);
SELECT cache_status();

-- a changed row type is prepared again, never decoded with the old type
CREATE TABLE shape (v int);
INSERT INTO shape VALUES (7);
SELECT * FROM cached_query('SELECT * FROM shape') AS t(v int);
ALTER TABLE shape ALTER COLUMN v TYPE bigint;
SELECT * FROM cached_query('SELECT * FROM shape') AS t(v int);
SELECT * FROM cached_query('SELECT * FROM shape') AS t(v bigint);
SELECT cache_status();

-- the usual way: a SQL function wraps the expensive query
CREATE FUNCTION region_total(r int) RETURNS numeric
LANGUAGE sql
SET cache_ext.default_ttl = '10min'
AS $$ SELECT total FROM cached_query('SELECT sum(amount) FROM sales WHERE region = $1', r) AS t(total numeric) $$;
SELECT region_total(5);
SELECT cache_status();
SELECT region_total(5);
SELECT cache_status();

-- disabled: the query runs directly
SET cache_ext.enabled = off;
SELECT * FROM cached_query('SELECT count(*) FROM sales WHERE region = $1', 3) AS t(n bigint);
SELECT cache_status();
RESET cache_ext.enabled;
