-- Compressed and chunked entries (docs/store.md, "Compression and chunks"):
-- every type that types.sql and codecs.sql round-trip comes back from a
-- hit exactly as the query returns it, with compression forced on (lz4 and
-- pglz), off, and with the stored value split into chunks.

-- the types of types.sql, twenty rows of them (compressible)
CREATE TYPE cz_pair AS (a int, b text);
CREATE DOMAIN cz_posint AS int CHECK (VALUE > 0);
CREATE TYPE cz_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE cz (
    id int, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
    n numeric, t text, vc varchar(10), bc char(5), nm name, by bytea,
    d date, tm time, ts timestamp, tstz timestamptz, iv interval,
    ia int[], ta text[], js jsonb, pair cz_pair, dom cz_posint, mood cz_mood,
    u uuid, ip inet, pt point, rng int4range, o oid);
INSERT INTO cz VALUES
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
INSERT INTO cz SELECT g * 10 + id, b, i2, i4, i8, f4, f8, n, t, vc, bc, nm, by, d, tm, ts, tstz,
       iv, ia, ta, js, pair, dom, mood, u, ip, pt, rng, o
  FROM cz, generate_series(1, 19) g;
SELECT cache_track('cz');

-- every built-in type with a castable sample, and an array of it, as in
-- codecs.sql, on twenty rows
CREATE TABLE cz_all (id int);
DO $$
DECLARE
    t record;
    c text;
    s text;
    cols text := '';
    cands text[] := ARRAY[
        '{"k": "ü \"q\" \\ é", "n": [1, null]}', 'ü "q" \ é', '1', 't', '(1,2)',
        '((1,2),(3,4))', '<(1,2),3>', '{1,2,3}', '[1,2)', '{[1,2)}',
        '[2024-01-01,2024-01-02)', '{[2024-01-01,2024-01-02)}',
        '08:00:2b:01:02:03', '192.168.0.1/24', '00000000-0000-0000-0000-000000000001',
        '0/16', '10:20:10,14,15', '2024-02-29', '12:34:56.789+02',
        '2024-02-29 12:34:56.789+02', 'postgres=r/postgres'];
BEGIN
    FOR t IN SELECT oid::regtype AS typ, typname FROM pg_type
              WHERE typnamespace = 'pg_catalog'::regnamespace
                AND typtype IN ('b', 'r', 'm') AND typisdefined
                AND typsubscript <> 'array_subscript_handler'::regproc
              ORDER BY typname
    LOOP
        s := NULL;
        FOREACH c IN ARRAY cands LOOP
            BEGIN
                EXECUTE format('SELECT %L::%s::text', c, t.typ);
                s := c;
                EXIT;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END LOOP;
        CONTINUE WHEN s IS NULL;
        EXECUTE format('ALTER TABLE cz_all ADD COLUMN %I %s, ADD COLUMN %I %s[]',
                       'c_' || t.typname, t.typ, 'a_' || t.typname, t.typ);
        cols := cols || format(', %L::%s, ARRAY[%L, NULL]::%s[]', s, t.typ, s, t.typ);
    END LOOP;
    EXECUTE format('INSERT INTO cz_all SELECT g%s FROM generate_series(1, 20) g', cols);
END $$;
SELECT cache_track('cz_all');
SELECT count(*) >= 140 AS enough_columns FROM pg_attribute
 WHERE attrelid = 'cz_all'::regclass AND attnum > 1;

-- One column of rel through cached_query twice (MISS, then HIT), tagged so
-- that every mode has its own entries; a row per column that fails.
CREATE FUNCTION cz_roundtrip(rel regclass, tag text)
RETURNS TABLE (col name, typ regtype, problem text)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    direct text;
    got text;
    st text;
BEGIN
    FOR a IN SELECT attname, atttypid::regtype AS t, format_type(atttypid, atttypmod) AS ft
               FROM pg_attribute
              WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped ORDER BY attnum
    LOOP
        EXECUTE format('SELECT string_agg(%I::text, %L ORDER BY id) FROM %s', a.attname, '|', rel)
           INTO direct;
        FOR pass IN 1..2 LOOP
            BEGIN
                EXECUTE format('SELECT string_agg(x::text, %L ORDER BY i) FROM cached_query(%L) AS t(i int, x %s)',
                               '|', format('SELECT /* %s */ id, %I FROM %s', tag, a.attname, rel), a.ft)
                   INTO got;
                st := cache_status();
            EXCEPTION WHEN OTHERS THEN
                got := NULL;
                st := 'ERROR: ' || SQLERRM;
            END;
            IF got IS DISTINCT FROM direct OR (pass = 2 AND st NOT IN ('HIT', 'HIT (local)'))
               OR (pass = 1 AND st NOT LIKE 'MISS%') THEN
                col := a.attname;
                typ := a.t;
                problem := format('pass %s: %s (%s)', pass, st,
                                  CASE WHEN got IS DISTINCT FROM direct THEN 'differs' ELSE 'equal' END);
                RETURN NEXT;
                EXIT;
            END IF;
        END LOOP;
    END LOOP;
END $$;

-- The whole of rel in one entry, MISS then HIT, compared with the direct
-- result row by row as text; and what cache_explain says of the entry.
CREATE FUNCTION cz_whole(rel regclass, tag text)
RETURNS TABLE (miss_equal bool, hit_equal bool, statuses text, compression text,
               chunked bool, bytes int)
LANGUAGE plpgsql AS $$
DECLARE
    q text := format('SELECT /* %s */ * FROM %s ORDER BY id', tag, rel);
    cols text;
    direct text;
    got text;
    e jsonb;
BEGIN
    SELECT string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum)
      INTO cols FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('SELECT string_agg(r::text, %L ORDER BY id) FROM %s r', E'\n', rel) INTO direct;
    EXECUTE format('SELECT string_agg(c::text, %L) FROM cached_query(%L) AS c(%s)', E'\n', q, cols) INTO got;
    miss_equal := got = direct;
    statuses := cache_status();
    EXECUTE format('SELECT string_agg(c::text, %L) FROM cached_query(%L) AS c(%s)', E'\n', q, cols) INTO got;
    hit_equal := got = direct;
    statuses := statuses || ', ' || cache_status();
    e := cache_explain(q)->'entry';
    compression := coalesce(e->>'compression', 'none');
    chunked := coalesce((e->>'chunked')::bool, false);
    bytes := (e->>'bytes')::int;
    RETURN NEXT;
END $$;

-- default settings: lz4 where PostgreSQL has it (this build does), 4 kB
SHOW cache_ext.compress_min_size;
SHOW cache_ext.chunk_size;
SELECT setting IN ('lz4', 'pglz') AS method_known FROM pg_settings WHERE name = 'cache_ext.compress_method';

-- 1. compression forced on for every entry that it shrinks: lz4, then pglz
-- (column by column for lz4 and chunks only: pglz and raw entries go
-- through the same decoding once decompressed, and the whole rows below
-- hold every type)
SET cache_ext.compress_min_size = 0;
SET cache_ext.compress_method = 'lz4';
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz', 'lz4');
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'lz4');
SELECT * FROM cz_roundtrip('cz', 'lz4');
SELECT * FROM cz_roundtrip('cz_all', 'lz4');
SET cache_ext.compress_method = 'pglz';
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz', 'pglz');
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'pglz');
-- an entry stored with lz4 reads back whatever the method now is
SELECT miss_equal, hit_equal, statuses, compression FROM cz_whole('cz', 'lz4');

-- 2. compression off
SET cache_ext.compress_min_size = -1;
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz', 'off');
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'off');
-- compressed entries are smaller than the same entries stored raw
SELECT (SELECT bytes FROM cz_whole('cz', 'lz4')) * 4 < (SELECT bytes FROM cz_whole('cz', 'off')) AS lz4_smaller,
       (SELECT bytes FROM cz_whole('cz', 'pglz')) * 4 < (SELECT bytes FROM cz_whole('cz', 'off')) AS pglz_smaller;
-- entries below the threshold are stored raw
SET cache_ext.compress_min_size = '1MB';
SELECT miss_equal, hit_equal, statuses, compression FROM cz_whole('cz', 'threshold');
RESET cache_ext.compress_min_size;

-- 3. chunks: values longer than cache_ext.chunk_size (superuser only)
SET cache_ext.chunk_size = 1024;
SET cache_ext.compress_min_size = -1;
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz', 'chunks');
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'chunks');
SELECT * FROM cz_roundtrip('cz', 'chunks');
SELECT * FROM cz_roundtrip('cz_all', 'chunks');
-- compressed and chunked
SET cache_ext.compress_min_size = 0;
SET cache_ext.compress_method = 'lz4';
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'chunks lz4');
SET cache_ext.compress_method = 'pglz';
SELECT miss_equal, hit_equal, statuses, compression, chunked FROM cz_whole('cz_all', 'chunks pglz');
-- still bounded by cache_ext.max_entry_size as a whole
SET cache_ext.max_entry_size = '16kB';
SET cache_ext.compress_min_size = -1;
SELECT count(*) FROM cached_query('SELECT /* too big */ * FROM cz') AS c(id int, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
    n numeric, t text, vc varchar(10), bc char(5), nm name, by bytea,
    d date, tm time, ts timestamp, tstz timestamptz, iv interval,
    ia int[], ta text[], js jsonb, pair cz_pair, dom cz_posint, mood cz_mood,
    u uuid, ip inet, pt point, rng int4range, o oid);
SELECT cache_status();
RESET cache_ext.max_entry_size;
RESET cache_ext.compress_min_size;
RESET cache_ext.compress_method;
RESET cache_ext.chunk_size;

-- the settings: superuser only, and their bounds
SET cache_ext.chunk_size = 100;
SET cache_ext.compress_min_size = -2;
SET cache_ext.compress_method = 'zstd';
CREATE ROLE cz_user;
SET ROLE cz_user;
SET cache_ext.chunk_size = 4096;
SET cache_ext.compress_min_size = 0;
RESET ROLE;
DROP ROLE cz_user;

-- clean up, for the tests after this one
SELECT cache_untrack('cz'), cache_untrack('cz_all');
DROP TABLE cz, cz_all;
DROP FUNCTION cz_roundtrip(regclass, text), cz_whole(regclass, text);
DROP TYPE cz_pair, cz_mood;
DROP DOMAIN cz_posint;
