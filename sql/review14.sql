-- Review 14: the 0.5 hit path (settings' digest kept between calls, the
-- entry key's per-statement part hashed once per analysis, statements found
-- by a cheap hash, row values decoded into reused scratch memory) never
-- gives one call the result of another.  Everything here runs in one
-- backend, since the digest and the statements are per backend; every
-- cached result is compared with the direct statement's.
CREATE SCHEMA r14a;
CREATE SCHEMA r14b;
CREATE TABLE r14a.t (v text);
CREATE TABLE r14b.t (v text);
INSERT INTO r14a.t VALUES ('a');
INSERT INTO r14b.t VALUES ('b');
SELECT cache_track('r14a.t');
SELECT cache_track('r14b.t');

-- 1. The date literal is parsed under DateStyle: a function's SET clause,
-- set_config(.., true) rolled back, a savepoint rolled back, and an
-- exception block in PL/pgSQL all change it behind the digest's back.
\set d 'SELECT d::text AS s FROM (VALUES (date ''03/04/2024'')) v(d)'
CREATE FUNCTION r14_dmy(q text) RETURNS text LANGUAGE sql
    SET DateStyle = 'SQL, DMY'
    AS $$ SELECT s FROM cached_query(q) AS t(s text) $$;
CREATE FUNCTION r14_dmy_direct() RETURNS text LANGUAGE sql
    SET DateStyle = 'SQL, DMY'
    AS $$ SELECT d::text FROM (VALUES (date '03/04/2024')) v(d) $$;
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT cache_status() LIKE 'HIT%' AS hit;
SELECT r14_dmy(:'d') = r14_dmy_direct() AS function_set_clause_ok, r14_dmy(:'d');
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT r14_dmy(:'d') = r14_dmy_direct() AS function_set_clause_again;
BEGIN;
SELECT set_config('DateStyle', 'SQL, DMY', true) IS NOT NULL AS set;
SELECT * FROM cached_query(:'d') AS t(s text);
ROLLBACK;
SELECT * FROM cached_query(:'d') AS t(s text);
BEGIN;
SAVEPOINT s1;
SET LOCAL DateStyle = 'German, DMY';
SELECT * FROM cached_query(:'d') AS t(s text);
ROLLBACK TO s1;
SELECT * FROM cached_query(:'d') AS t(s text);
COMMIT;
DO $$
DECLARE r text;
BEGIN
    BEGIN
        PERFORM set_config('DateStyle', 'SQL, DMY', true);
        SELECT s INTO r FROM cached_query('SELECT d::text AS s FROM (VALUES (date ''03/04/2024'')) v(d)') AS t(s text);
        RAISE NOTICE 'inside: %', r;
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    SELECT s INTO r FROM cached_query('SELECT d::text AS s FROM (VALUES (date ''03/04/2024'')) v(d)') AS t(s text);
    RAISE NOTICE 'after: %', r;
END $$;

-- 2. Every kind of keyed setting, changed and set back, output compared
-- with the direct statement each time.
CREATE FUNCTION r14_check(q text, label text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c text; d text;
BEGIN
    EXECUTE format('SELECT string_agg(s, %L ORDER BY s) FROM cached_query(%L) AS t(s text)', '|', q) INTO c;
    EXECUTE format('SELECT string_agg(s, %L ORDER BY s) FROM (%s) x(s)', '|', q) INTO d;
    RETURN CASE WHEN c IS NOT DISTINCT FROM d THEN label || ': ok' ELSE label || ': WRONG cached=' || coalesce(c, 'NULL') || ' direct=' || coalesce(d, 'NULL') END;
END $$;
\set f 'SELECT (1.0::float8/3)::text UNION ALL SELECT ''\\x01''::bytea::text UNION ALL SELECT (interval ''1 day 2 hours'')::text UNION ALL SELECT (timestamptz ''2024-01-01 12:00:00+00'')::text UNION ALL SELECT (date ''2024-01-02'')::text'
SELECT r14_check(:'f', 'default');
SELECT r14_check(:'f', 'default again');
SET extra_float_digits = 0;
SELECT r14_check(:'f', 'extra_float_digits 0');
SET extra_float_digits = -3;
SELECT r14_check(:'f', 'extra_float_digits -3');
RESET extra_float_digits;
SELECT r14_check(:'f', 'reset');
SET bytea_output = escape;
SELECT r14_check(:'f', 'bytea escape');
RESET bytea_output;
SET IntervalStyle = iso_8601;
SELECT r14_check(:'f', 'iso_8601');
SET IntervalStyle = sql_standard;
SELECT r14_check(:'f', 'sql_standard');
RESET IntervalStyle;
SET TimeZone = 'Asia/Tokyo';
SELECT r14_check(:'f', 'Tokyo');
SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE;
SELECT r14_check(:'f', 'interval +05:30');
SET TIME ZONE INTERVAL '-05:30' HOUR TO MINUTE;
SELECT r14_check(:'f', 'interval -05:30');
SET TIME ZONE LOCAL;
SELECT r14_check(:'f', 'local');
SET TimeZone = 'UTC';
SELECT r14_check(:'f', 'UTC');
SET DateStyle = 'Postgres, YMD';
SELECT r14_check(:'f', 'Postgres YMD');
SET DateStyle = 'ISO, YMD';
SELECT r14_check(:'f', 'ISO YMD');
RESET DateStyle;
RESET TimeZone;
SELECT r14_check(:'f', 'all reset');

-- 3. search_path: the same text names another table; also through a
-- function's SET clause and a rolled-back SET LOCAL.
SET search_path = r14a, public;
SELECT r14_check('SELECT v FROM t', 'path a');
SET search_path = r14b, public;
SELECT r14_check('SELECT v FROM t', 'path b');
BEGIN;
SET LOCAL search_path = r14a, public;
SELECT r14_check('SELECT v FROM t', 'path a local');
ROLLBACK;
SELECT r14_check('SELECT v FROM t', 'path b after rollback');
CREATE FUNCTION r14_in_a() RETURNS text LANGUAGE sql SET search_path = r14a, public
    AS $$ SELECT v FROM cached_query('SELECT v FROM t') AS x(v text) $$;
SELECT r14_in_a() AS via_function_set_search_path;
SELECT r14_check('SELECT v FROM t', 'path b after function');
RESET search_path;

-- 4. A table dropped and made again under the same name; a view replaced;
-- a function replaced.
SET search_path = r14a, public;
SELECT r14_check('SELECT v FROM t', 'before drop');
DROP TABLE r14a.t;
CREATE TABLE r14a.t (v text);
INSERT INTO r14a.t VALUES ('a2');
SELECT cache_track('r14a.t');
SELECT r14_check('SELECT v FROM t', 'recreated');
CREATE VIEW r14a.vw AS SELECT v || '-1' AS v FROM r14a.t;
SELECT r14_check('SELECT v FROM vw', 'view 1');
CREATE OR REPLACE VIEW r14a.vw AS SELECT v || '-2' AS v FROM r14a.t;
SELECT r14_check('SELECT v FROM vw', 'view 2');
CREATE FUNCTION r14a.fn(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT x || '-f1' $$;
SELECT r14_check('SELECT fn(v) FROM t', 'function 1');
CREATE OR REPLACE FUNCTION r14a.fn(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT x || '-f2' $$;
SELECT r14_check('SELECT fn(v) FROM t', 'function 2');
RESET search_path;

-- 5. Roles: SET ROLE, and a SECURITY DEFINER function, with row-level
-- security; each role sees its own rows.
CREATE TABLE r14_rls (owner name, v text);
INSERT INTO r14_rls VALUES ('r14_alice', 'alice row'), ('r14_bob', 'bob row');
ALTER TABLE r14_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON r14_rls USING (owner = current_user);
SELECT cache_track('r14_rls');
CREATE ROLE r14_alice;
CREATE ROLE r14_bob;
GRANT SELECT ON r14_rls TO r14_alice, r14_bob;
GRANT USAGE ON SCHEMA public TO r14_alice, r14_bob;
GRANT EXECUTE ON FUNCTION r14_check(text, text) TO r14_alice, r14_bob;
CREATE FUNCTION r14_as_bob() RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT string_agg(v, ',') FROM cached_query('SELECT v FROM public.r14_rls') AS x(v text) $$;
ALTER FUNCTION r14_as_bob() OWNER TO r14_bob;
GRANT EXECUTE ON FUNCTION r14_as_bob() TO r14_alice;
SET ROLE r14_alice;
SELECT r14_check('SELECT v FROM public.r14_rls', 'alice');
SELECT r14_as_bob() AS definer_bob;
SELECT r14_check('SELECT v FROM public.r14_rls', 'alice after definer');
SET ROLE r14_bob;
SELECT r14_check('SELECT v FROM public.r14_rls', 'bob');
RESET ROLE;
SET ROLE r14_alice;
SELECT r14_check('SELECT v FROM public.r14_rls', 'alice again');
RESET ROLE;

-- 6. Parameters: the same text with values and types that differ.
SELECT * FROM cached_query('SELECT $1::text', 1) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', 1::bigint) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', '1'::text) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', 2) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', 1.0) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', 1.00) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', 1.0::float8) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', '-0'::float8) AS t(s text);
SELECT * FROM cached_query('SELECT $1::text', '0'::float8) AS t(s text);

-- 7. The parameter types' hash collides: (bool, name, bytea, text) and
-- ("char", int2, interval[], numeric[]) hash alike (hash_bytes of the OID
-- arrays, as hashoidvector computes it), with the same text, role and
-- settings: the prepared statement of the first must not serve the second.
SELECT hashoidvector('16 19 17 25'::oidvector) = hashoidvector('18 21 1187 1231'::oidvector) AS types_hash_collide;
\set c 'SELECT $1::text AS a, $2::text AS b, $3::text AS c, $4::text AS d'
SELECT * FROM cached_query(:'c', true, 'n'::name, '\x01'::bytea, 'txt'::text) AS t(a text, b text, c text, d text);
SELECT * FROM cached_query(:'c', true, 'n'::name, '\x01'::bytea, 'txt'::text) AS t(a text, b text, c text, d text);
SELECT cache_status() LIKE 'HIT%' AS first_hit;
SELECT * FROM cached_query(:'c', 'c'::"char", 2::int2, '{1 day}'::interval[], '{1.5}'::numeric[]) AS t(a text, b text, c text, d text);
SELECT * FROM cached_query(:'c', 'c'::"char", 2::int2, '{1 day}'::interval[], '{1.5}'::numeric[]) AS t(a text, b text, c text, d text);
SELECT cache_status() LIKE 'HIT%' AS second_hit;
SELECT * FROM cached_query(:'c', true, 'n'::name, '\x01'::bytea, 'txt'::text) AS t(a text, b text, c text, d text);
-- result types that differ too: the row type is the parameters'
\set c2 'SELECT $1 AS a, $2 AS b, $3 AS c, $4 AS d'
SELECT * FROM cached_query(:'c2', true, 'n'::name, '\x01'::bytea, 'txt'::text) AS t(a bool, b name, c bytea, d text);
SELECT * FROM cached_query(:'c2', 'c'::"char", 2::int2, '{1 day}'::interval[], '{1.5}'::numeric[]) AS t(a "char", b int2, c interval[], d numeric[]);
SELECT * FROM cached_query(:'c2', 'c'::"char", 2::int2, '{1 day}'::interval[], '{1.5}'::numeric[]) AS t(a "char", b int2, c interval[], d numeric[]);
SELECT * FROM cached_query(:'c2', true, 'n'::name, '\x01'::bytea, 'txt'::text) AS t(a bool, b name, c bytea, d text);

-- 8. Row values decoded into reused scratch memory: rows whose varlena
-- values together cross the 8 kB scratch in the middle of a row, values
-- that alone do not fit, NULLs between them, every row different; a hit
-- must give exactly the direct rows.
CREATE TABLE r14_wide (i int, a text, b bytea, n numeric, c text);
INSERT INTO r14_wide
SELECT i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE repeat(chr(65 + i % 26), 1000 + (i * 397) % 5000) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE convert_to(repeat(chr(97 + i % 26), 2000 + (i * 131) % 7000), 'UTF8') END,
       (i::numeric * 1000003) / 7,
       CASE WHEN i % 3 = 0 THEN repeat('z', 9000 + i) ELSE 'short' || i END
FROM generate_series(1, 60) i;
SELECT cache_track('r14_wide');
\set w 'SELECT i, a, b, n, c FROM r14_wide'
CREATE FUNCTION r14_wide_sum(hit bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    IF hit THEN
        SELECT md5(string_agg(concat_ws('/', i, a, encode(b, 'hex'), n, c, a IS NULL, b IS NULL), ';' ORDER BY i)) INTO r
        FROM cached_query('SELECT i, a, b, n, c FROM r14_wide') AS t(i int, a text, b bytea, n numeric, c text);
    ELSE
        SELECT md5(string_agg(concat_ws('/', i, a, encode(b, 'hex'), n, c, a IS NULL, b IS NULL), ';' ORDER BY i)) INTO r
        FROM r14_wide;
    END IF;
    RETURN r;
END $$;
SELECT r14_wide_sum(true) = r14_wide_sum(false) AS miss_equal;
SELECT r14_wide_sum(true) = r14_wide_sum(false) AS hit_equal;
SELECT cache_status() LIKE 'HIT%' AS was_hit;
SELECT count(*), sum(length(a)), sum(length(b)), sum(n), sum(length(c))
FROM cached_query(:'w') AS t(i int, a text, b bytea, n numeric, c text);
