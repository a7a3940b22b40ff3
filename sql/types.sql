-- Every kind of value comes back from a hit exactly as the query returns it.
CREATE TYPE rt_pair AS (a int, b text);
CREATE DOMAIN rt_posint AS int CHECK (VALUE > 0);
CREATE TYPE rt_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE rt (
    id int, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
    n numeric, t text, vc varchar(10), bc char(5), nm name, by bytea,
    d date, tm time, ts timestamp, tstz timestamptz, iv interval,
    ia int[], ta text[], js jsonb, pair rt_pair, dom rt_posint, mood rt_mood,
    u uuid, ip inet, pt point, rng int4range, o oid);
INSERT INTO rt VALUES
  (1, true, 1, 2, 3, 1.5, 2.5, 3.14159265358979323846264338327950288, 'text', 'vc', 'bc',
   'name', '\x00ff00', '2024-02-29', '12:34:56.789', '2024-01-01 00:00:00.000001',
   '2024-01-01 00:00:00+05', '1 year 2 mons 3 days 04:05:06', '{1,NULL,3}', '{"a","b c",NULL}',
   '{"k": [1, 2, {"x": null}]}', ROW(1, 'x'), 5, 'happy',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '(1,2)', '[1,10)', 42),
  (2, false, -32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity',
   'NaN', '', '', '', '', '', '-infinity', '00:00', 'infinity', '-infinity', '-1 day',
   '{}', '{}', 'null', ROW(NULL, NULL), 1, 'sad', NULL, '::1', '(0,0)', 'empty', 0),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, true, 32767, 2147483647, 9223372036854775807, '-0', '1e308',
   '-0.000000000000000000001', 'ünïcödé ✓ 日本', 'abcdefghij', 'a', repeat('n', 63),
   decode(repeat('00ff', 1000), 'hex'), '4713-01-01 BC', '24:00', '294276-12-31 23:59:59.999999',
   '1999-12-31 23:59:59.999999+14', '178000000 years', '{{1,2},{3,4}}', '{"\"quoted\"","back\\slash"}',
   '"\u00e9"', ROW(-1, repeat('x', 3000)), 2147483647, 'ok', '00000000-0000-0000-0000-000000000000',
   '0.0.0.0/0', '(-1.5,1e10)', '(,5]', 4294967295);

\set q 'SELECT * FROM rt ORDER BY id'
\set cols 'id int, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, t text, vc varchar(10), bc char(5), nm name, by bytea, d date, tm time, ts timestamp, tstz timestamptz, iv interval, ia int[], ta text[], js jsonb, pair rt_pair, dom rt_posint, mood rt_mood, u uuid, ip inet, pt point, rng int4range, o oid'

-- MISS, then HIT; both equal the direct result, column by column as text
SELECT (SELECT array_agg(c::text) FROM cached_query(:'q') AS c(:cols))
     = (SELECT array_agg(r::text ORDER BY id) FROM rt r) AS miss_equal, cache_status();
SELECT (SELECT array_agg(c::text) FROM cached_query(:'q') AS c(:cols))
     = (SELECT array_agg(r::text ORDER BY id) FROM rt r) AS hit_equal, cache_status();
-- and as values, not only as text
SELECT count(*) AS same_rows FROM cached_query(:'q') AS c(:cols)
  JOIN rt r ON r.id = c.id
 WHERE (c.b, c.i2, c.i4, c.i8, c.n, c.t, c.vc, c.bc, c.nm, c.by, c.d, c.tm, c.ts, c.tstz, c.iv,
        c.ia, c.ta, c.js, c.pair, c.dom, c.mood, c.u, c.ip, c.rng, c.o)
       IS NOT DISTINCT FROM
       (r.b, r.i2, r.i4, r.i8, r.n, r.t, r.vc, r.bc, r.nm, r.by, r.d, r.tm, r.ts, r.tstz, r.iv,
        r.ia, r.ta, r.js, r.pair, r.dom, r.mood, r.u, r.ip, r.rng, r.o)
   AND c.f4::text IS NOT DISTINCT FROM r.f4::text AND c.f8::text IS NOT DISTINCT FROM r.f8::text
   AND c.pt::text IS NOT DISTINCT FROM r.pt::text;
SELECT cache_status();
-- NULLs come back as NULLs, not as empty values
SELECT count(*) FILTER (WHERE t IS NULL) AS null_t, count(*) FILTER (WHERE t = '') AS empty_t,
       count(*) FILTER (WHERE by IS NULL) AS null_by, count(*) FILTER (WHERE pair IS NULL) AS null_pair
  FROM cached_query(:'q') AS t(:cols);
SELECT cache_status();
-- -0 and NaN keep their bits
SELECT f4::text, f8::text, n::text FROM cached_query(:'q') AS t(:cols) WHERE id IN (2, 4);
-- the jsonb form from the same entry
SELECT jsonb_array_length(cached_query_json(:'q')), cache_status();
SELECT cached_query_json('SELECT id, b, n, ia, pair FROM rt WHERE id = 1');

-- wide rows: 200 columns
SELECT format('SELECT %s', string_agg(format('%s AS c%s', g, g), ', ')) AS wide_q,
       string_agg(format('c%s int', g), ', ') AS wide_cols
  FROM generate_series(1, 200) g \gset
SELECT c1, c100, c200 FROM cached_query(:'wide_q') AS t(:wide_cols);
SELECT c1, c100, c200 FROM cached_query(:'wide_q') AS t(:wide_cols);
SELECT cache_status();

-- large values: 300 kB of text and bytea
CREATE TABLE big (t text, b bytea);
INSERT INTO big VALUES (repeat('abcdefghij', 30000), decode(repeat('0102030405', 30000), 'hex'));
SELECT md5(t), md5(b), length(t), length(b) FROM cached_query('SELECT t, b FROM big') AS x(t text, b bytea);
SELECT md5(t), md5(b), length(t), length(b) FROM cached_query('SELECT t, b FROM big') AS x(t text, b bytea);
SELECT cache_status();

-- many rows
SELECT count(*), sum(g) FROM cached_query('SELECT g FROM generate_series(1, 100000) g') AS t(g int);
SELECT count(*), sum(g) FROM cached_query('SELECT g FROM generate_series(1, 100000) g') AS t(g int);
SELECT cache_status();

-- results larger than cache_ext.max_entry_size are returned, not stored
SET cache_ext.max_entry_size = '64kB';
SELECT length(t) FROM cached_query('SELECT t FROM big WHERE true') AS x(t text);
SELECT cache_status();
SELECT length(t) FROM cached_query('SELECT t FROM big WHERE true') AS x(t text);
SELECT cache_status();
-- an entry stored under a larger limit is not read whole when the limit shrinks
RESET cache_ext.max_entry_size;
SELECT length(t) FROM cached_query('SELECT t FROM big WHERE 1 = 1') AS x(t text);
SELECT cache_status();
SET cache_ext.max_entry_size = '64kB';
SELECT length(t) FROM cached_query('SELECT t FROM big WHERE 1 = 1') AS x(t text);
SELECT cache_status();
RESET cache_ext.max_entry_size;

-- domains are checked again when decoded
SELECT dom FROM cached_query('SELECT dom FROM rt WHERE dom IS NOT NULL ORDER BY id') AS t(dom rt_posint);
SELECT dom FROM cached_query('SELECT dom FROM rt WHERE dom IS NOT NULL ORDER BY id') AS t(dom rt_posint);
SELECT cache_status();

-- numeric is stored in its own form and validated when read back
CREATE TABLE nums (n numeric);
INSERT INTO nums VALUES ('Infinity'), ('-Infinity'), ('NaN'), (0), (-0.0), (1e-300), (-123456789012345678901234567890.123456789),
  (power(10::numeric, 300)), (0.1), (99999999), (1.000000000000000000000000000000000001), (-1);
SELECT (SELECT array_agg(n::text) FROM cached_query('SELECT n FROM nums') AS t(n numeric))
     = (SELECT array_agg(n::text) FROM nums) AS miss_equal, cache_status();
SELECT (SELECT array_agg(n::text) FROM cached_query('SELECT n FROM nums') AS t(n numeric))
     = (SELECT array_agg(n::text) FROM nums) AS hit_equal, cache_status();
SELECT sum(n) FILTER (WHERE n > -1e40 AND n < 1e40) FROM cached_query('SELECT n FROM nums') AS t(n numeric);
