-- Fail closed (issue 10): a result is stored only when it is proven to be the
-- same for every session and role that may receive it; everything else
-- bypasses with a reason, and no input crashes or fails.
-- fc_check(q) runs q directly and twice through the cache: 'same' when all
-- three agree, then cache_status() after each call.
CREATE FUNCTION fc_check(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	direct jsonb;
	c1 jsonb;
	c2 jsonb;
	s1 text;
	s2 text;
BEGIN
	EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(fc_row)), ''[]'') FROM (%s) fc_row', q) INTO direct;
	c1 := coalesce(cached_query_json(q), '[]');
	s1 := cache_status();
	c2 := coalesce(cached_query_json(q), '[]');
	s2 := cache_status();
	RETURN CASE WHEN direct = c1 AND direct = c2 THEN 'same'
		ELSE format('DIFFERENT: %s / %s / %s', direct, c1, c2) END
		|| ' | ' || s1 || ' | ' || s2;
END $$;
CREATE TABLE fc_t (id int PRIMARY KEY, tenant int, v text);
INSERT INTO fc_t VALUES (1, 1, 'one'), (2, 2, 'two'), (3, 1, 'three');
SELECT cache_track('fc_t');
CREATE ROLE regress_fc_a;
CREATE ROLE regress_fc_b;
GRANT SELECT ON fc_t TO regress_fc_a, regress_fc_b;

-- break 19: oid and reg* constants are not relations (crashed in 0.2)
SELECT fc_check('SELECT 0::oid AS o');
SELECT fc_check('SELECT ''int4''::regtype::oid AS o');
SELECT fc_check('SELECT r::oid AS o FROM (VALUES (''fc_t''::regclass), (0::regclass), (''pg_class''::regclass)) v(r)');
SELECT fc_check('SELECT 99999999::regclass::oid AS o');
SELECT * FROM cached_query('SELECT ''fc_t''::regclass::text') AS t(r text);
SELECT cache_status();

-- break 9: built-ins that read catalogs, privileges, statistics, session or
-- transaction state are not on the allow list
SELECT fc_check('SELECT pg_get_viewdef(''pg_roles''::regclass) IS NOT NULL AS d');
SELECT fc_check('SELECT has_table_privilege(''fc_t'', ''SELECT'') AS p');
SELECT fc_check('SELECT pg_has_role(''regress_fc_a'', ''MEMBER'') AS p');
SELECT fc_check('SELECT to_regclass(''fc_t'')::oid > 0 AS r');
SELECT fc_check('SELECT ''regress_fc_a''::regrole::oid > 0 AS r');
SELECT fc_check('SELECT pg_stat_get_numscans(''fc_t''::regclass) >= 0 AS s');
SELECT fc_check('SELECT count(*) FROM fc_t WHERE age(xmin) >= 0');
SELECT fc_check('SELECT count(*) >= 0 AS c FROM pg_settings');
SELECT fc_check('SELECT count(*) AS c FROM pg_cursor()');
SELECT fc_check('SELECT count(*) AS c FROM pg_prepared_statement()');
SELECT fc_check('SELECT count(*) AS c FROM pg_listening_channels()');
SELECT fc_check('SELECT current_database() IS NOT NULL AS d');
SELECT fc_check('SELECT current_catalog IS NOT NULL AS d');
SELECT fc_check('SELECT format_type(23, -1) AS t');
SELECT fc_check('SELECT length(current_setting(''application_name'')) >= 0 AS s');
-- an IMMUTABLE built-in that reads a catalog is on the deny list
SELECT fc_check('SELECT pg_partition_root(''fc_t''::regclass)::oid > 0 AS r');
-- ... and the output function of a catalog-reading type is a call too
SELECT fc_check('SELECT concat(''t:'', ''fc_t''::regclass) AS c');
SELECT fc_check('SELECT to_json(ARRAY[''fc_t''::regclass]) AS j');

-- on the allow list: STABLE, depending only on arguments and keyed settings
SELECT fc_check('SELECT to_char(''2024-05-06 07:08:09+00''::timestamptz, ''YYYY-MM-DD HH24'') AS c');
SELECT fc_check('SELECT concat(id, ''-'', v) AS c, ARRAY[id, tenant]::text AS a, to_json(t) AS j FROM fc_t t ORDER BY id');
SELECT fc_check('SELECT json_agg(v ORDER BY id) AS j, string_agg(v, '','' ORDER BY v) AS s FROM fc_t');

-- break 2: table_to_xml reads a table named by a regclass constant
SELECT fc_check('SELECT table_to_xml(''fc_t''::regclass, true, false, '''') IS NOT NULL AS x');
SELECT fc_check('SELECT database_to_xml(true, false, '''') IS NOT NULL AS x');

-- break 3: a non-inlined STABLE function reading a table the caller cannot read
CREATE TABLE fc_secret (s text);
INSERT INTO fc_secret VALUES ('classified');
CREATE FUNCTION fc_peek() RETURNS text LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN (SELECT string_agg(s, ',') FROM fc_secret); END $$;
SELECT fc_check('SELECT fc_peek() AS p');
SET ROLE regress_fc_a;
\set VERBOSITY terse
SELECT * FROM cached_query('SELECT fc_peek() AS p') AS t(p text);
\set VERBOSITY default
RESET ROLE;
-- ... also as a SECURITY DEFINER (any volatility) or with a SET clause
-- (with a column argument: a constant one is folded when the plan is made)
CREATE FUNCTION fc_definer(int) RETURNS text LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
	AS $$ BEGIN RETURN (SELECT string_agg(s, ',') FROM fc_secret); END $$;
SELECT fc_check('SELECT fc_definer(id) AS p FROM fc_t ORDER BY id');
CREATE FUNCTION fc_setting(int) RETURNS int LANGUAGE sql IMMUTABLE SET work_mem = '1MB'
	AS $$ SELECT $1 $$;
SELECT fc_check('SELECT fc_setting(id) AS p FROM fc_t ORDER BY id');

-- break 4: an RLS policy calling a PL/pgSQL function that reads a setting
CREATE FUNCTION fc_tenant() RETURNS int LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN current_setting('app.tenant')::int; END $$;
CREATE TABLE fc_rls (id int, tenant int);
INSERT INTO fc_rls VALUES (1, 1), (2, 2), (3, 1);
ALTER TABLE fc_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY fc_by_tenant ON fc_rls USING (tenant = fc_tenant());
GRANT SELECT ON fc_rls TO regress_fc_a;
SET ROLE regress_fc_a;
SET app.tenant = '1';
SELECT fc_check('SELECT id FROM fc_rls ORDER BY id');
SET app.tenant = '2';
SELECT fc_check('SELECT id FROM fc_rls ORDER BY id');
RESET app.tenant;
RESET ROLE;

-- IMMUTABLE user functions in a procedural language: the role is in the key
CREATE FUNCTION fc_imm(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RETURN $1 * 2; END $$;
SELECT fc_check('SELECT fc_imm(id) AS d FROM fc_t ORDER BY id');
SELECT cache_explain('SELECT fc_imm(id) FROM fc_t')->'role_in_key' AS role_in_key;
-- ... a VOLATILE one is refused
CREATE FUNCTION fc_vol(int) RETURNS int LANGUAGE plpgsql VOLATILE
	AS $$ BEGIN RETURN $1; END $$;
SELECT fc_check('SELECT fc_vol(id) AS d FROM fc_t ORDER BY id');

-- break 7: the function-call forms of current_user and session_user
SET ROLE regress_fc_a;
SELECT fc_check('SELECT pg_catalog."current_user"()::text AS u, count(*) AS n FROM fc_t');
RESET ROLE;
SET ROLE regress_fc_b;
SELECT fc_check('SELECT pg_catalog."current_user"()::text AS u, count(*) AS n FROM fc_t');
SELECT cache_explain('SELECT getpgusername()::text FROM fc_t')->'role_in_key' AS role_in_key;
SELECT cache_explain('SELECT pg_catalog."session_user"()::text FROM fc_t')->'session_user_in_key' AS session_user_in_key;
RESET ROLE;

-- break 11: every support function of an aggregate
CREATE FUNCTION fc_vol_sfunc(int, int) RETURNS int LANGUAGE plpgsql VOLATILE
	AS $$ BEGIN RETURN coalesce($1, 0) + $2; END $$;
CREATE AGGREGATE fc_vol_sum(int) (sfunc = fc_vol_sfunc, stype = int);
SELECT fc_check('SELECT fc_vol_sum(id) AS s FROM fc_t');
CREATE FUNCTION fc_read_sfunc(int, int) RETURNS int LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN coalesce($1, 0) + $2 + (SELECT count(*) FROM fc_secret); END $$;
CREATE AGGREGATE fc_read_sum(int) (sfunc = fc_read_sfunc, stype = int);
SELECT fc_check('SELECT fc_read_sum(id) AS s FROM fc_t');
CREATE FUNCTION fc_vol_final(int) RETURNS int LANGUAGE plpgsql VOLATILE
	AS $$ BEGIN RETURN $1; END $$;
CREATE AGGREGATE fc_final_sum(int) (sfunc = int4pl, stype = int, finalfunc = fc_vol_final);
SELECT fc_check('SELECT fc_final_sum(id) AS s FROM fc_t');
-- ... as a window function too
SELECT fc_check('SELECT id, fc_vol_sum(id) OVER (ORDER BY id) AS s FROM fc_t ORDER BY id');
-- an aggregate built from IMMUTABLE C functions is cached
CREATE AGGREGATE fc_plain_sum(int) (sfunc = int4pl, stype = int);
SELECT fc_check('SELECT fc_plain_sum(id) AS s FROM fc_t');

-- functions called implicitly: a domain's CHECK constraint
CREATE FUNCTION fc_check_vol(int) RETURNS bool LANGUAGE plpgsql VOLATILE
	AS $$ BEGIN RETURN $1 > 0; END $$;
CREATE DOMAIN fc_posint AS int CHECK (fc_check_vol(VALUE));
SELECT fc_check('SELECT id::fc_posint AS p FROM fc_t ORDER BY id');
CREATE DOMAIN fc_smallint AS int CHECK (VALUE < 100);
SELECT fc_check('SELECT id::fc_smallint AS p FROM fc_t ORDER BY id');

-- ... the operators a Sort node calls (not visible as expressions)
CREATE FUNCTION fc_gt(int, int) RETURNS bool LANGUAGE plpgsql VOLATILE
	AS $$ BEGIN RETURN $1 > $2; END $$;
CREATE FUNCTION fc_revcmp(int, int) RETURNS int LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RETURN CASE WHEN $1 > $2 THEN -1 WHEN $1 < $2 THEN 1 ELSE 0 END; END $$;
CREATE OPERATOR <<< (leftarg = int, rightarg = int, function = fc_gt);
CREATE OPERATOR CLASS fc_rev_ops FOR TYPE int USING btree AS
	OPERATOR 1 <<<, OPERATOR 3 =, FUNCTION 1 fc_revcmp(int, int);
SELECT fc_check('SELECT id FROM fc_t ORDER BY id USING <<<');

-- break 5: a foreign table answers with the caller's user mapping
CREATE EXTENSION file_fdw;
CREATE SERVER fc_files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE fc_ft (x int) SERVER fc_files OPTIONS (program 'echo 7');
SELECT fc_check('SELECT x FROM fc_ft');
SELECT fc_check('SELECT t.id FROM fc_t t JOIN fc_ft f ON f.x <> t.id ORDER BY 1');

-- break 25: functions PostgreSQL never runs are not checked for EXECUTE
SET ROLE regress_fc_a;
SELECT fc_check('WITH u AS (SELECT pg_reload_conf()) SELECT 1 AS one');
SELECT fc_check('SELECT 1 AS one WHERE true OR pg_reload_conf()');
RESET ROLE;

DROP FOREIGN TABLE fc_ft;
DROP SERVER fc_files;
DROP EXTENSION file_fdw;
SELECT cache_untrack('fc_t');
DROP TABLE fc_t, fc_secret, fc_rls;
DROP DOMAIN fc_posint, fc_smallint;
DROP OPERATOR CLASS fc_rev_ops USING btree;
DROP OPERATOR FAMILY fc_rev_ops USING btree;
DROP OPERATOR <<< (int, int);
DROP FUNCTION fc_gt(int, int), fc_revcmp(int, int);
DROP AGGREGATE fc_vol_sum(int), fc_read_sum(int), fc_final_sum(int), fc_plain_sum(int);
DROP FUNCTION fc_check(text), fc_peek(), fc_definer(int), fc_setting(int), fc_tenant(),
	fc_imm(int), fc_vol(int), fc_vol_sfunc(int, int), fc_read_sfunc(int, int),
	fc_vol_final(int), fc_check_vol(int);
DROP ROLE regress_fc_a, regress_fc_b;
