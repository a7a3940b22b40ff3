-- A hit returns exactly the rows of the direct query: NULLs, values larger
-- than the decoder's scratch memory (8 kB), many rows, mixed types.  With
-- the local tier on (CE_L1), the second call is served from L1's own form
-- of the rows (minimal tuples decoded once); without it, from Redis.
CREATE TABLE hr (id int PRIMARY KEY, t text, n numeric, b bytea, f float8, d date, a int[]);
INSERT INTO hr SELECT g,
       CASE WHEN g % 7 = 0 THEN NULL WHEN g % 100 = 1 THEN repeat('x', 20000 + g) ELSE 'v' || g END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.25 END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
       g / 3.0, date '2024-01-01' + g,
       CASE WHEN g % 11 = 0 THEN NULL ELSE ARRAY[g, NULL, g + 1] END
  FROM generate_series(1, 1000) g;
SELECT cache_track('hr');
\set q 'SELECT * FROM hr ORDER BY id'
\set cols 'id int, t text, n numeric, b bytea, f float8, d date, a int[]'
SELECT md5(string_agg(x::text, '|')) AS direct FROM (SELECT * FROM hr ORDER BY id) x \gset
SELECT md5(string_agg(x::text, '|')) = :'direct' AS same
  FROM cached_query(:'q') AS x(:cols);
SELECT cache_status() LIKE 'MISS%' AS miss;
SELECT md5(string_agg(x::text, '|')) = :'direct' AS same
  FROM cached_query(:'q') AS x(:cols);
SELECT cache_status() LIKE 'HIT%' AS hit;
SELECT count(*), count(t), sum(length(t)), count(n), count(b), count(a)
  FROM cached_query(:'q') AS x(:cols);
SELECT cache_status() LIKE 'HIT%' AS hit;
-- a write is seen at once
UPDATE hr SET t = 'changed' WHERE id = 500;
SELECT t FROM cached_query(:'q') AS x(:cols) WHERE id = 500;
SELECT cache_status() LIKE 'MISS%' AS miss;
SELECT t FROM cached_query(:'q') AS x(:cols) WHERE id = 500;
SELECT cache_status() LIKE 'HIT%' AS hit;
SELECT cache_untrack('hr');
DROP TABLE hr;
