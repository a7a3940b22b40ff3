-- The backend's statement cache never outlives a definition, and never
-- lets one role use what another's privileges resolved (issue 10, breaks 8,
-- 12, 13, 25, 26).  Every check compares cached_query with the direct
-- statement at that moment.
SET cache_ext.untracked = allow;

-- Break 12: a new, better-matching overload changes what the text means.
CREATE FUNCTION st_ov(numeric) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'numeric' $$;
SELECT * FROM cached_query('SELECT st_ov(1)') AS t(v text);
CREATE FUNCTION st_ov(int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'integer' $$;
SELECT st_ov(1) AS direct;
SELECT * FROM cached_query('SELECT st_ov(1)') AS t(v text);

-- Break 12: a column dropped from the row type a function returns.
CREATE TABLE st_rt (a int, b int, c int);
INSERT INTO st_rt VALUES (1, 2, 3);
CREATE FUNCTION st_rows() RETURNS SETOF st_rt LANGUAGE plpgsql STABLE AS $$
BEGIN RETURN QUERY SELECT * FROM st_rt; END $$;
SELECT * FROM cached_query('SELECT * FROM st_rows()') AS t(a int, b int, c int);
ALTER TABLE st_rt DROP COLUMN b;
SELECT * FROM st_rows() AS direct;
SELECT * FROM cached_query('SELECT * FROM st_rows()') AS t(a int, c int);

-- Break 12: a type dropped and created again under the same name.
CREATE TYPE st_mood AS ENUM ('happy', 'sad');
SELECT * FROM cached_query('SELECT ''sad''::st_mood::text, ''sad''::st_mood > ''happy''') AS t(v text, later bool);
DROP TYPE st_mood;
CREATE TYPE st_mood AS ENUM ('sad', 'happy');
SELECT 'sad'::st_mood::text AS direct, 'sad'::st_mood > 'happy' AS later;
SELECT * FROM cached_query('SELECT ''sad''::st_mood::text, ''sad''::st_mood > ''happy''') AS t(v text, later bool);

-- Break 8: after SET ROLE, the schema USAGE check of the direct statement.
CREATE ROLE regress_st_reader;
CREATE SCHEMA st_private;
CREATE TABLE st_private.t (x int);
INSERT INTO st_private.t VALUES (7);
GRANT SELECT ON st_private.t TO regress_st_reader;
SELECT * FROM cached_query('SELECT x FROM st_private.t') AS t(x int);
SELECT * FROM cached_query('SELECT x FROM st_private.t') AS t(x int);
SET ROLE regress_st_reader;
\set VERBOSITY terse
SELECT x FROM st_private.t;
SELECT * FROM cached_query('SELECT x FROM st_private.t') AS t(x int);
\set VERBOSITY default

-- Break 25: EXECUTE is checked on what the plan runs, as the executor does:
-- an unreferenced CTE and a branch the planner folds away run nothing.
WITH u AS (SELECT pg_reload_conf()) SELECT 1 AS direct;
SELECT * FROM cached_query('WITH u AS (SELECT pg_reload_conf()) SELECT 1') AS t(v int);
SELECT * FROM cached_query('SELECT 1 WHERE true OR pg_reload_conf()') AS t(v int);
-- ... and still on what it does run
\set VERBOSITY terse
SELECT * FROM cached_query('SELECT pg_reload_conf()') AS t(v bool);
\set VERBOSITY default
RESET ROLE;

-- Break 13: a nested call with a 'now' literal sees its own transaction's
-- time, not the time it was first prepared.
CREATE FUNCTION st_now() RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE r timestamptz;
BEGIN
    SELECT v INTO r FROM cached_query('SELECT ''now''::timestamptz') AS t(v timestamptz);
    RETURN r;
END $$;
SELECT v = now() AS fresh FROM cached_query('SELECT st_now()') AS t(v timestamptz);
SELECT pg_sleep(0.02);
SELECT v = now() AS fresh FROM cached_query('SELECT st_now()') AS t(v timestamptz);
SELECT cache_status() LIKE 'BYPASS: opaque function st_now()%' AS outer_bypassed;

-- Break 26: disabled means exactly the direct statement (no analysis of
-- ours can fail it).
SET cache_ext.enabled = off;
SELECT * FROM cached_query('SELECT makeaclitem(10, 10, ''SELECT'', false)::text') AS t(v text);
SELECT * FROM cached_query('SELECT 42') AS t(v int);
SELECT cache_status();
RESET cache_ext.enabled;

-- cache_ext.max_ttl: a superuser's ceiling on every entry's TTL
SET cache_ext.max_ttl = '10s';
SELECT cache_explain_with(cache_opts(ttl => '1 day'), 'SELECT 1')->'ttl_seconds' AS ttl_seconds;
SELECT cache_explain('SELECT 1')->'ttl_seconds' AS default_ttl_seconds;
RESET cache_ext.max_ttl;
SET ROLE regress_st_reader;
SET cache_ext.max_ttl = '1h';
RESET ROLE;

-- cache_ext.verify_rate: hits re-run and compared
SET cache_ext.verify_rate = 1;
CREATE TABLE st_v (x int);
SELECT cache_track('st_v');
INSERT INTO st_v VALUES (1), (2);
SELECT verified AS verified_before, verify_mismatches AS mismatches_before FROM cache_stats \gset
SELECT * FROM cached_query('SELECT sum(x) FROM st_v') AS t(s bigint);
SELECT * FROM cached_query('SELECT sum(x) FROM st_v') AS t(s bigint);
SELECT cache_status();
SELECT verified - :verified_before AS verified, verify_mismatches - :mismatches_before AS mismatches FROM cache_stats;
RESET cache_ext.verify_rate;

-- Review F3: the support function of a user aggregate replaced: a new key
CREATE TABLE st_ag (a int);
INSERT INTO st_ag VALUES (1), (2), (3);
SELECT cache_track('st_ag');
CREATE FUNCTION st_sfunc(int, int) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 + $2';
CREATE AGGREGATE st_sum(int) (sfunc = st_sfunc, stype = int, initcond = '0');
SELECT * FROM cached_query('SELECT st_sum(a) FROM st_ag') AS t(s int);
SELECT * FROM cached_query('SELECT st_sum(a) FROM st_ag') AS t(s int);
CREATE OR REPLACE FUNCTION st_sfunc(int, int) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 + $2 * 10';
SELECT st_sum(a) AS direct FROM st_ag;
SELECT * FROM cached_query('SELECT st_sum(a) FROM st_ag') AS t(s int);

-- Review F1: xmin/xmax change with row locks, which no trigger sees
SELECT * FROM cached_query('SELECT a, xmax::text <> '''' AS x FROM st_ag ORDER BY a LIMIT 1') AS t(a int, x bool);
SELECT cache_status();
SELECT * FROM cached_query('SELECT a, ctid IS NOT NULL AS c, tableoid = ''st_ag''::regclass AS o FROM st_ag ORDER BY a LIMIT 1') AS t(a int, c bool, o bool);
SELECT * FROM cached_query('SELECT a, ctid IS NOT NULL AS c, tableoid = ''st_ag''::regclass AS o FROM st_ag ORDER BY a LIMIT 1') AS t(a int, c bool, o bool);
SELECT cache_status();

-- Review F2: an IMMUTABLE-declared SQL function reading a setting is not
-- inlined but run while planning (folded): one pooled role, two tenants
CREATE TABLE st_tenant (tenant int, secret text);
INSERT INTO st_tenant VALUES (1, 't1-secret'), (2, 't2-secret');
SELECT cache_track('st_tenant');
CREATE FUNCTION st_app_tenant() RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT current_setting('app.tenant')::int $$;
ALTER TABLE st_tenant ENABLE ROW LEVEL SECURITY;
CREATE POLICY st_p ON st_tenant USING (tenant = st_app_tenant());
CREATE ROLE regress_st_app;
GRANT SELECT ON st_tenant TO regress_st_app;
SET ROLE regress_st_app;
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT secret FROM st_tenant') AS t(s text);
SELECT * FROM cached_query('SELECT secret FROM st_tenant') AS t(s text);
SELECT cache_status();
SET app.tenant = '2';
SELECT secret AS direct FROM st_tenant;
SELECT * FROM cached_query('SELECT secret FROM st_tenant') AS t(s text);
SELECT * FROM cached_query('SELECT secret FROM st_tenant') AS t(s text);
SELECT cache_status();
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT secret FROM st_tenant') AS t(s text);
RESET ROLE;
RESET app.tenant;
DROP TABLE st_tenant, st_ag;
DROP AGGREGATE st_sum(int);
DROP FUNCTION st_sfunc(int, int), st_app_tenant();
DROP ROLE regress_st_app;

-- Review F5: the configuration default_text_search_config names, dropped
-- and created again under that name
CREATE TEXT SEARCH CONFIGURATION st_conf (COPY = english);
SET default_text_search_config = 'public.st_conf';
SELECT * FROM cached_query('SELECT to_tsvector(''The fat cats'')::text') AS t(v text);
DROP TEXT SEARCH CONFIGURATION st_conf;
CREATE TEXT SEARCH CONFIGURATION st_conf (COPY = simple);
SELECT to_tsvector('The fat cats')::text AS direct;
SELECT * FROM cached_query('SELECT to_tsvector(''The fat cats'')::text') AS t(v text);
RESET default_text_search_config;
DROP TEXT SEARCH CONFIGURATION st_conf;

-- Review F7: 'now' in the body of an inlined SQL function
CREATE FUNCTION st_cur() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT 'now'::timestamptz $$;
SELECT v = now() AS fresh FROM cached_query('SELECT st_cur()') AS t(v timestamptz);
SELECT pg_sleep(0.02);
SELECT v = now() AS fresh FROM cached_query('SELECT st_cur()') AS t(v timestamptz);
SELECT cache_status();
DROP FUNCTION st_cur();

-- Review F8: a reg* constant in the body of an inlined SQL function
CREATE TABLE st_x3 (a int);
CREATE FUNCTION st_reg_of() RETURNS oid LANGUAGE sql STABLE AS $$ SELECT 'st_x3'::regclass::oid $$;
SELECT (SELECT v FROM cached_query('SELECT st_reg_of()') AS t(v oid)) = 'st_x3'::regclass AS same;
DROP TABLE st_x3;
CREATE TABLE st_x3 (a int);
SELECT (SELECT v FROM cached_query('SELECT st_reg_of()') AS t(v oid)) = 'st_x3'::regclass AS same;
DROP FUNCTION st_reg_of();
DROP TABLE st_x3;

-- Review F9: a column of a row type dropped and added again
CREATE TABLE st_rt2 (a int, b text);
CREATE TABLE st_ot2 (id int, c st_rt2);
INSERT INTO st_ot2 VALUES (1, ROW(1, 'secret-x'));
SELECT cache_track('st_ot2');
SELECT * FROM cached_query('SELECT c FROM st_ot2') AS t(c st_rt2);
SELECT * FROM cached_query('SELECT c FROM st_ot2') AS t(c st_rt2);
ALTER TABLE st_rt2 DROP COLUMN b;
ALTER TABLE st_rt2 ADD COLUMN b text;
SELECT c AS direct FROM st_ot2;
SELECT * FROM cached_query('SELECT c FROM st_ot2') AS t(c st_rt2);
DROP TABLE st_ot2, st_rt2;

-- Review F10: an IMMUTABLE function reading a table, run while planning
-- (constant arguments), in a policy per role
CREATE TABLE st_rl (id int, owner text);
INSERT INTO st_rl VALUES (1, 'regress_st_alice'), (2, 'regress_st_bob');
CREATE FUNCTION st_my_rows() RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT string_agg(id::text || ':' || owner, ',') FROM st_rl $$;
CREATE ROLE regress_st_alice;
CREATE ROLE regress_st_bob;
ALTER TABLE st_rl ENABLE ROW LEVEL SECURITY;
CREATE POLICY st_own ON st_rl USING (owner = current_user);
GRANT SELECT ON st_rl TO regress_st_alice, regress_st_bob;
SET ROLE regress_st_alice;
SELECT * FROM cached_query('SELECT st_my_rows()') AS t(r text);
SELECT cache_status();
SET ROLE regress_st_bob;
SELECT st_my_rows() AS direct;
SELECT * FROM cached_query('SELECT st_my_rows()') AS t(r text);
RESET ROLE;
-- a clean IMMUTABLE SQL function (inlined) stays cacheable
CREATE FUNCTION st_twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT $1 * 2 $$;
SELECT * FROM cached_query('SELECT st_twice(id) FROM st_rl ORDER BY id') AS t(v int);
SELECT * FROM cached_query('SELECT st_twice(id) FROM st_rl ORDER BY id') AS t(v int);
SELECT cache_status();
DROP TABLE st_rl;
DROP FUNCTION st_my_rows(), st_twice(int);
DROP ROLE regress_st_alice, regress_st_bob;

-- SELECT ... FOR UPDATE runs as the direct statement does (bypass, rows locked)
CREATE TABLE st_lock (id int);
INSERT INTO st_lock VALUES (1);
SELECT * FROM cached_query('SELECT id FROM st_lock FOR UPDATE') AS t(id int);
SELECT cache_status();
DROP TABLE st_lock;

-- planner settings: a statement planned under other ones is planned again
CREATE TABLE st_pt (f1 point);
INSERT INTO st_pt VALUES ('(0,0)'), ('(-10,0)'), ('(-3,4)'), ('(5.1,34.5)'), ('(-5,-12)'),
  ('(1e-300,-1e-300)'), ('(1e+300,Inf)'), ('(Inf,1e+300)'), ('(NaN,NaN)'), ('(10,10)'), (NULL);
CREATE INDEX ON st_pt USING gist (f1);
SELECT * FROM cached_query('SELECT count(*) FROM st_pt WHERE f1 <@ polygon ''(0,0),(0,100),(100,100),(50,50),(100,0),(0,0)''') AS t(n bigint);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS direct FROM st_pt WHERE f1 <@ polygon '(0,0),(0,100),(100,100),(50,50),(100,0),(0,0)';
SELECT * FROM cached_query('SELECT count(*) FROM st_pt WHERE f1 <@ polygon ''(0,0),(0,100),(100,100),(50,50),(100,0),(0,0)''') AS t(n bigint);
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP TABLE st_pt;

-- Review F12: ALTER TEXT SEARCH CONFIGURATION: to_tsvector(regconfig, text)
-- with constant arguments is folded into the plan, which must go too
CREATE TEXT SEARCH CONFIGURATION st_conf3 (COPY = english);
SELECT * FROM cached_query('SELECT to_tsvector(''st_conf3'', ''The fat cats'')::text') AS t(v text);
ALTER TEXT SEARCH CONFIGURATION st_conf3 ALTER MAPPING FOR asciiword WITH simple;
SELECT to_tsvector('st_conf3', 'The fat cats')::text AS direct;
SELECT * FROM cached_query('SELECT to_tsvector(''st_conf3'', ''The fat cats'')::text') AS t(v text);
SELECT * FROM cached_query('SELECT to_tsvector(''st_conf3'', ''The fat cats'')::text') AS t(v text);
DROP TEXT SEARCH CONFIGURATION st_conf3;

-- Review F6: a tracked partition or inheritance child written through its
-- untracked parent
CREATE TABLE st_rp (k int, v int) PARTITION BY LIST (k);
CREATE TABLE st_rp1 PARTITION OF st_rp FOR VALUES IN (1);
INSERT INTO st_rp VALUES (1, 1);
SELECT cache_track('st_rp1');
SELECT * FROM cached_query('SELECT v FROM st_rp1') AS t(v int);
SELECT * FROM cached_query('SELECT v FROM st_rp1') AS t(v int);
UPDATE st_rp SET v = 2;
SELECT * FROM cached_query('SELECT v FROM st_rp1') AS t(v int);
SELECT cache_status();
-- ... and inside the writing transaction: read-your-own-writes
BEGIN;
UPDATE st_rp SET v = 42;
SELECT * FROM cached_query('SELECT v FROM st_rp1') AS t(v int);
SELECT cache_status();
ROLLBACK;
SELECT * FROM cached_query('SELECT v FROM st_rp1') AS t(v int);
CREATE TABLE st_ihp (v int);
CREATE TABLE st_ihc () INHERITS (st_ihp);
INSERT INTO st_ihc VALUES (1);
SELECT cache_track('st_ihc');
SELECT * FROM cached_query('SELECT v FROM st_ihc') AS t(v int);
DELETE FROM st_ihp;
SELECT * FROM cached_query('SELECT count(*) FROM st_ihc') AS t(n bigint);
SELECT * FROM cached_query('SELECT v FROM st_ihc') AS t(v int);
-- a tracked table that becomes a child later
CREATE TABLE st_late (v int);
SELECT cache_track('st_late');
INSERT INTO st_late VALUES (5);
SELECT * FROM cached_query('SELECT v FROM st_late') AS t(v int);
ALTER TABLE st_late INHERIT st_ihp;
UPDATE st_ihp SET v = 6;
SELECT * FROM cached_query('SELECT v FROM st_late') AS t(v int);
SELECT relation, covered FROM cache_tracked WHERE relation::text LIKE 'st_%' ORDER BY 1;
DROP TABLE st_rp, st_ihp CASCADE;

-- A value its own type cannot encode (a relabelled empty array is not a
-- valid oidvector: its output function refuses it): a statement that works
-- directly works through the cache, and nothing is stored
SELECT count(*) AS direct FROM (SELECT array[]::oidvector) s;
SELECT count(*) FROM cached_query('SELECT array[]::oidvector') AS t(v oidvector);
SELECT cache_status() LIKE 'MISS (not stored: a value could not be encoded (array is not a valid oidvector)%' AS not_stored;

-- Break 15: key-level tracking of an inheritance child, its parent tracked
-- later: this session's analysis of the child's query follows (the child's
-- relcache entry did not change, so its plan was not rebuilt)
CREATE TABLE st_kp (id int, v int);
CREATE TABLE st_kc () INHERITS (st_kp);
SELECT cache_track('st_kc', key_columns => ARRAY['id']);
INSERT INTO st_kc VALUES (1, 1), (2, 2);
SELECT * FROM cached_query('SELECT v FROM st_kc WHERE id = 1') AS t(v int);
SELECT * FROM cached_query('SELECT v FROM st_kc WHERE id = 1') AS t(v int);
SELECT cache_status();
SELECT cache_track('st_kp', key_columns => ARRAY['id']);
SELECT * FROM cached_query('SELECT v FROM st_kc WHERE id = 1') AS t(v int);
SELECT * FROM cached_query('SELECT v FROM st_kc WHERE id = 1') AS t(v int);
UPDATE st_kc SET v = 10 WHERE id = 1;
SELECT v AS direct FROM st_kc WHERE id = 1;
SELECT * FROM cached_query('SELECT v FROM st_kc WHERE id = 1') AS t(v int);
SELECT cache_status();
DROP TABLE st_kp CASCADE;

-- Review 2, N8: a SQL function inlined inside another inlined SQL function,
-- replaced: a new key
CREATE TABLE st_nt (id int);
INSERT INTO st_nt VALUES (10), (20);
SELECT cache_track('st_nt');
CREATE FUNCTION st_in1(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x - 1';
CREATE FUNCTION st_out1(x int) RETURNS int LANGUAGE sql STABLE AS 'SELECT st_in1(x)';
SELECT * FROM cached_query('SELECT st_out1(id) FROM st_nt ORDER BY id') AS t(v int);
SELECT * FROM cached_query('SELECT st_out1(id) FROM st_nt ORDER BY id') AS t(v int);
CREATE OR REPLACE FUNCTION st_in1(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1';
SELECT st_out1(id) AS direct FROM st_nt ORDER BY id;
SELECT * FROM cached_query('SELECT st_out1(id) FROM st_nt ORDER BY id') AS t(v int);

-- N3: 'now' in a SQL function called by an inlined SQL function
CREATE FUNCTION st_now_inner() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT 'now'::timestamptz $$;
CREATE FUNCTION st_now_outer() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT st_now_inner() $$;
SELECT v = now() AS fresh FROM cached_query('SELECT st_now_outer()') AS t(v timestamptz);
SELECT pg_sleep(0.02);
SELECT v = now() AS fresh FROM cached_query('SELECT st_now_outer()') AS t(v timestamptz);
SELECT cache_status();

-- N1: an IMMUTABLE PL/pgSQL function inside an inlined body, reading a setting
CREATE FUNCTION st_inner_tenant() RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN current_setting('app.tenant')::int; END $$;
CREATE FUNCTION st_outer_clean(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT st_inner_tenant() + x $$;
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT st_outer_clean(0)') AS t(v int);
SET app.tenant = '2';
SELECT st_outer_clean(0) AS direct;
SELECT * FROM cached_query('SELECT st_outer_clean(0)') AS t(v int);
SELECT cache_status() LIKE 'BYPASS: opaque function st_inner_tenant()%' AS opaque;
RESET app.tenant;

-- N2: an IMMUTABLE SQL function reading a table, run while planning: each
-- call plans again, so even a bypass returns the current value
CREATE TABLE st_it (v int);
INSERT INTO st_it VALUES (1);
SELECT cache_track('st_it');
CREATE FUNCTION st_it_sum() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT sum(v) FROM st_it';
SELECT * FROM cached_query('SELECT st_it_sum()') AS t(s bigint);
INSERT INTO st_it VALUES (10);
SELECT st_it_sum() AS direct;
SELECT * FROM cached_query('SELECT st_it_sum()') AS t(s bigint);
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['st_it'::regclass]), 'SELECT st_it_sum()') AS t(s bigint);
INSERT INTO st_it VALUES (100);
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['st_it'::regclass]), 'SELECT st_it_sum()') AS t(s bigint);

-- N5: a function in a branch the planner removes is never parsed, directly
-- or through the cache
SET check_function_bodies = off;
CREATE FUNCTION st_broken() RETURNS int LANGUAGE sql STABLE AS 'SELECT a FROM st_missing_tbl';
RESET check_function_bodies;
WITH u AS (SELECT st_broken()) SELECT 1 AS direct;
SELECT * FROM cached_query('WITH u AS (SELECT st_broken()) SELECT 1') AS t(v int);
SELECT * FROM cached_query('SELECT CASE WHEN false THEN st_broken() ELSE 1 END') AS t(v int);

-- N4: a parameter whose type has no binary output function
SELECT * FROM cached_query('SELECT 1 WHERE $1 IS NOT NULL', makeaclitem(10, 10, 'SELECT', false)) AS t(a int);

-- N7: the call functions are never run inside a parallel operation
SELECT proname, proparallel FROM pg_proc
 WHERE proname IN ('cached_query', 'cached_query_json', 'cached_query_with',
                   'cached_query_json_with', 'cache_explain', 'cache_explain_with')
 GROUP BY 1, 2 ORDER BY 1;

DROP FUNCTION st_out1(int), st_in1(int), st_now_outer(), st_now_inner(),
    st_outer_clean(int), st_inner_tenant(), st_it_sum(), st_broken();
DROP TABLE st_nt, st_it;

-- Review 2, N6: a row type used inside the query (cast, field, row_to_json),
-- its table altered: every result may change
CREATE TABLE st_rt5 (a int, b text);
CREATE TABLE st_ot5 (id int, c st_rt5);
INSERT INTO st_ot5 VALUES (1, ROW(1, 'secret-x'));
SELECT cache_track('st_ot5');
SELECT * FROM cached_query('SELECT c::text, (c).b, row_to_json(c)::text FROM st_ot5') AS t(t text, b text, j text);
SELECT * FROM cached_query('SELECT c::text, (c).b, row_to_json(c)::text FROM st_ot5') AS t(t text, b text, j text);
ALTER TABLE st_rt5 DROP COLUMN b;
ALTER TABLE st_rt5 ADD COLUMN b text;
SELECT c::text, (c).b, row_to_json(c)::text FROM st_ot5;
SELECT * FROM cached_query('SELECT c::text, (c).b, row_to_json(c)::text FROM st_ot5') AS t(t text, b text, j text);
DROP TABLE st_ot5, st_rt5;

-- Review 2, N13: an IMMUTABLE PL/pgSQL function the plan calls through an
-- inlined wrapper (column argument): opaque
CREATE FUNCTION st_t13(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN x + current_setting('app.tenant')::int; END $$;
CREATE FUNCTION st_w13(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT st_t13(x) $$;
CREATE TABLE st_t13t (id int);
INSERT INTO st_t13t VALUES (1);
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT st_w13(id) FROM st_t13t') AS t(v int);
SET app.tenant = '2';
SELECT st_w13(id) AS direct FROM st_t13t;
SELECT * FROM cached_query('SELECT st_w13(id) FROM st_t13t') AS t(v int);
SELECT cache_status() LIKE 'BYPASS: opaque function st_t13()%' AS opaque;

-- N12: an opted-in call in a transaction that has written: never stored
SELECT cache_track('st_t13t');
BEGIN;
UPDATE st_t13t SET id = 5;
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT st_w13(1)') AS t(v int);
SELECT cache_status();
ROLLBACK;
RESET app.tenant;

-- N15: depends_on naming a view is refused
CREATE VIEW st_v15 AS SELECT id FROM st_t13t;
\set VERBOSITY terse
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['st_v15'::regclass]), 'SELECT 1') AS t(v int);
\set VERBOSITY default
DROP VIEW st_v15;
DROP TABLE st_t13t;
DROP FUNCTION st_w13(int), st_t13(int);

-- Review 3, R1: an inlined wrapper whose body cannot be read here (BEGIN
-- ATOMIC) calling an IMMUTABLE PL/pgSQL function that reads a setting
CREATE FUNCTION st_r1_inner() RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN current_setting('app.tenant')::int; END $$;
CREATE FUNCTION st_r1_outer(x int) RETURNS int LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT st_r1_inner() + x; END;
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT st_r1_outer(0)') AS t(v int);
SET app.tenant = '2';
SELECT st_r1_outer(0) AS direct;
SELECT * FROM cached_query('SELECT st_r1_outer(0)') AS t(v int);
-- ... and through a default argument
CREATE FUNCTION st_r1_def(x int DEFAULT st_r1_inner()) RETURNS int LANGUAGE sql STABLE AS $$ SELECT x $$;
SELECT * FROM cached_query('SELECT st_r1_def()') AS t(v int);
SET app.tenant = '3';
SELECT st_r1_def() AS direct;
SELECT * FROM cached_query('SELECT st_r1_def()') AS t(v int);
RESET app.tenant;

-- R0b: a user's cast to json, called by to_json behind the plan's back
CREATE TYPE st_mood2 AS ENUM ('happy', 'sad');
CREATE FUNCTION st_mood_json(m st_mood2) RETURNS json LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN to_json(m::text || '-' || current_setting('app.tenant')); END $$;
CREATE CAST (st_mood2 AS json) WITH FUNCTION st_mood_json(st_mood2);
SET app.tenant = '1';
SELECT * FROM cached_query('SELECT to_json(''happy''::st_mood2)::text') AS t(v text);
SET app.tenant = '2';
SELECT to_json('happy'::st_mood2)::text AS direct;
SELECT * FROM cached_query('SELECT to_json(''happy''::st_mood2)::text') AS t(v text);
SELECT cache_status() LIKE 'BYPASS: opaque function st_mood_json()%' AS opaque;
RESET app.tenant;
DROP CAST (st_mood2 AS json);
DROP FUNCTION st_mood_json(st_mood2), st_r1_def(int), st_r1_outer(int), st_r1_inner();
DROP TYPE st_mood2;

DROP FUNCTION st_ov(numeric), st_ov(int), st_rows(), st_now();
DROP TABLE st_v, st_rt, st_private.t;
DROP SCHEMA st_private;
DROP TYPE st_mood;
DROP ROLE regress_st_reader;
