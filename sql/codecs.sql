-- Every value a query can return comes back from a hit as the query returns
-- it, whatever its type, or the call bypasses with a reason: no error, no
-- entry re-stored as "corrupt" on every call.

-- 1. Every built-in type of pg_catalog with a castable sample value, and an
-- array of it, goes through cached_query twice (MISS, then HIT); both equal
-- the direct result.  Types for which no sample can be cast are listed: their
-- input always raises, and results holding them must bypass (checked below).
CREATE TABLE rt_all (id int);
CREATE TABLE rt_nosample (typ regtype);
CREATE TABLE rt_samples (typname name, typ regtype, sample text);
DO $$
DECLARE
    t record;
    c text;
    s text;
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
        IF s IS NULL THEN
            INSERT INTO rt_nosample VALUES (t.typ);
        ELSE
            INSERT INTO rt_samples VALUES (t.typname, t.typ, s);
            EXECUTE format('ALTER TABLE rt_all ADD COLUMN %I %s, ADD COLUMN %I %s[]',
                           'c_' || t.typname, t.typ, 'a_' || t.typname, t.typ);
        END IF;
    END LOOP;
    EXECUTE format('INSERT INTO rt_all VALUES (1%s)',
                   (SELECT string_agg(format(', %L::%s, ARRAY[%L, NULL]::%s[]',
                                             sample, typ, sample, typ), '' ORDER BY typname)
                      FROM rt_samples));
END $$;
SELECT cache_track('rt_all');
SELECT count(*) >= 140 AS enough_columns FROM pg_attribute
 WHERE attrelid = 'rt_all'::regclass AND attnum > 1;

CREATE FUNCTION rt_roundtrip(rel regclass)
RETURNS TABLE (col name, typ regtype, problem text)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    direct text;
    got text;
    st text;
BEGIN
    FOR a IN SELECT attname, atttypid::regtype AS t FROM pg_attribute
              WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped ORDER BY attnum
    LOOP
        EXECUTE format('SELECT %I::text FROM %s', a.attname, rel) INTO direct;
        FOR pass IN 1..2 LOOP
            BEGIN
                EXECUTE format('SELECT x::text FROM cached_query(%L) AS t(x %s)',
                               format('SELECT %I FROM %s', a.attname, rel), a.t) INTO got;
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

-- no type fails (an empty result)
SELECT * FROM rt_roundtrip('rt_all');
-- the types no sample casts to: exactly those whose input always raises
SELECT typ FROM rt_nosample ORDER BY typ::text;
-- and each of them (and arrays of them) bypasses with a reason, never errors
CREATE FUNCTION rt_bypass_reason(t regtype, arr bool) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF arr THEN
        t := (SELECT nullif(typarray, 0) FROM pg_type WHERE oid = t);
        IF t IS NULL THEN
            RETURN '(no array type)';
        END IF;
    END IF;
    EXECUTE format('SELECT count(*) FROM cached_query(%L) AS x(v %s)',
                   format('SELECT NULL::%s FROM rt_all', t), t);
    RETURN cache_status();
END $$;
SELECT typ, rt_bypass_reason(typ, false) AS plain, rt_bypass_reason(typ, true) AS arr
  FROM rt_nosample ORDER BY typ::text;

-- 2. pg_node_tree values (made from a catalog, stored in a user table):
-- bypass with a reason instead of an error on every hit
CREATE TABLE rt_nodes (id int, n pg_node_tree);
INSERT INTO rt_nodes SELECT 1, ev_action FROM pg_rewrite LIMIT 1;
SELECT cache_track('rt_nodes');
SELECT count(*) FROM cached_query('SELECT n FROM rt_nodes') AS t(n pg_node_tree);
SELECT cache_status();
SELECT count(*) FROM cached_query('SELECT n FROM rt_nodes') AS t(n pg_node_tree);
SELECT cache_status();
-- nested in a composite too
CREATE TYPE rt_with_node AS (id int, n pg_node_tree);
SELECT count(*) FROM cached_query('SELECT ROW(id, n)::rt_with_node FROM rt_nodes') AS t(r rt_with_node);
SELECT cache_status();

-- 3. types with text I/O only: aclitem, and a user type made as PostgreSQL's
-- regression suite makes casttesttype
CREATE FUNCTION rt_casttesttype_in(cstring) RETURNS rt_casttesttype
  LANGUAGE internal STRICT IMMUTABLE AS 'textin';
CREATE FUNCTION rt_casttesttype_out(rt_casttesttype) RETURNS cstring
  LANGUAGE internal STRICT IMMUTABLE AS 'textout';
CREATE TYPE rt_casttesttype (internallength = variable, input = rt_casttesttype_in,
                             output = rt_casttesttype_out, alignment = int4);
CREATE TYPE rt_acl_pair AS (a aclitem, c rt_casttesttype);
CREATE TABLE rt_textio (id int, a aclitem, aa aclitem[], c rt_casttesttype,
                        p rt_acl_pair, v int2vector, o oidvector, va int2vector[]);
-- empty int2vector / oidvector: their send functions write what their
-- receive functions reject
INSERT INTO rt_textio VALUES
  (1, 'postgres=r/postgres', '{postgres=arw/postgres}', 'casttest ü',
   ROW('postgres=r/postgres', 'x'), '1 2', '3 4', '{"1 2",""}'),
  (2, NULL, '{}', '', ROW(NULL, ''), '', '', '{""}');
SELECT cache_track('rt_textio');
SELECT * FROM rt_roundtrip('rt_textio');
SELECT id, c, p, v, o, va FROM cached_query('SELECT id, c, p, v, o, va FROM rt_textio ORDER BY id')
    AS t(id int, c rt_casttesttype, p rt_acl_pair, v int2vector, o oidvector, va int2vector[]);
SELECT cache_status();
SELECT id, c, p, v, o, va FROM cached_query('SELECT id, c, p, v, o, va FROM rt_textio ORDER BY id')
    AS t(id int, c rt_casttesttype, p rt_acl_pair, v int2vector, o oidvector, va int2vector[]);
SELECT cache_status();

-- 4. client_encoding does not reach the entry: a UTF8 database, a LATIN1
-- client, values LATIN1 lacks, consumed inside SQL.  Send functions of json,
-- xml and text arrays convert to the client encoding; the cache must not.
CREATE TYPE rt_pair_enc AS (a int, t text);
CREATE TABLE rt_enc (id int, ta text[], j json, x xml, r rt_pair_enc, t text);
INSERT INTO rt_enc VALUES
  (1, '{"日本 €", "ü"}', '{"k": "日本 €"}', '<a>日本 €</a>', ROW(1, '日本 €'), '日本 €');
SELECT cache_track('rt_enc');
SET client_encoding = LATIN1;
-- MISS: the writer may not convert to LATIN1 (it would fail on the CJK characters)
SELECT count(*) FROM cached_query('SELECT ta, j, x, r, t FROM rt_enc')
    AS c(ta text[], j json, x xml, r rt_pair_enc, t text)
  JOIN rt_enc e ON c.ta = e.ta AND c.j::text = e.j::text AND c.x::text = e.x::text
               AND c.r = e.r AND c.t = e.t;
SELECT cache_status();
-- HIT: equal to the table, consumed inside SQL
SELECT count(*) FROM cached_query('SELECT ta, j, x, r, t FROM rt_enc')
    AS c(ta text[], j json, x xml, r rt_pair_enc, t text)
  JOIN rt_enc e ON c.ta = e.ta AND c.j::text = e.j::text AND c.x::text = e.x::text
               AND c.r = e.r AND c.t = e.t;
SELECT cache_status();
RESET client_encoding;

-- 5. An authentic entry a type cannot read back (its receive function does
-- not read what its send function wrote) is told apart from a corrupt one,
-- and names the type (EntryLoad's ENTRY_UNDECODABLE).  Until lookup.c stops
-- storing such a query, it is replaced on every call.
CREATE FUNCTION rt_broken_in(cstring) RETURNS rt_broken
  LANGUAGE internal STRICT IMMUTABLE AS 'int4in';
CREATE FUNCTION rt_broken_out(rt_broken) RETURNS cstring
  LANGUAGE internal STRICT IMMUTABLE AS 'int4out';
CREATE FUNCTION rt_broken_recv(internal) RETURNS rt_broken
  LANGUAGE internal STRICT IMMUTABLE AS 'int4recv';
CREATE FUNCTION rt_broken_send(rt_broken) RETURNS bytea
  LANGUAGE internal STRICT IMMUTABLE AS 'int2send';
CREATE TYPE rt_broken (input = rt_broken_in, output = rt_broken_out,
                       receive = rt_broken_recv, send = rt_broken_send,
                       internallength = 4, passedbyvalue, alignment = int4);
CREATE TABLE rt_broken_t (v rt_broken);
INSERT INTO rt_broken_t VALUES ('7');
SELECT cache_track('rt_broken_t');
SELECT v FROM cached_query('SELECT v FROM rt_broken_t') AS t(v rt_broken);
SELECT cache_status();
SELECT v FROM cached_query('SELECT v FROM rt_broken_t') AS t(v rt_broken);
SELECT cache_status();
DROP TABLE rt_broken_t;
DROP TYPE rt_broken CASCADE;

DROP TABLE rt_all, rt_nosample, rt_samples, rt_nodes, rt_textio, rt_enc;
DROP FUNCTION rt_roundtrip(regclass), rt_bypass_reason(regtype, bool);
DROP TYPE rt_with_node, rt_acl_pair, rt_pair_enc;
DROP TYPE rt_casttesttype CASCADE;
