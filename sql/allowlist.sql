-- The allow list of built-in functions (src/allowlist.c), checked against
-- the running server's pg_proc.

-- every allow entry is STABLE, every deny entry IMMUTABLE (if an entry
-- became IMMUTABLE, VOLATILE or disappeared, this lists it)
SELECT a.func, a.verdict, p.provolatile
FROM cache_ext_allowlist() a LEFT JOIN pg_proc p ON p.oid = a.func::oid
WHERE p.oid IS NULL
   OR (a.verdict LIKE 'allow%' AND p.provolatile <> 's')
   OR (a.verdict = 'deny' AND p.provolatile <> 'i');
SELECT count(*) FILTER (WHERE verdict LIKE 'allow%') > 100 AS allows,
       count(*) FILTER (WHERE verdict = 'deny') > 0 AS denies
FROM cache_ext_allowlist();

-- no function known to read catalogs, privileges, statistics, settings or
-- transaction state is allowed
SELECT a.func
FROM cache_ext_allowlist() a JOIN pg_proc p ON p.oid = a.func::oid
WHERE a.verdict LIKE 'allow%'
  AND (p.proname LIKE 'pg\_get\_%' OR p.proname LIKE 'has\_%privilege'
       OR p.proname LIKE '%\_to\_xml%' OR p.proname LIKE '%xmlschema%'
       OR p.proname ~ '^reg.*(in|out|recv|send)$' OR p.proname LIKE 'to\_reg%'
       OR p.proname LIKE 'pg\_stat\_%' OR p.proname LIKE 'pg\_%\_size'
       OR p.proname LIKE '%\_is\_visible' OR p.proname LIKE '%description'
       OR p.proname LIKE 'txid%' OR p.proname LIKE '%xact%'
       OR p.proname LIKE '%snapshot%' OR p.proname LIKE '%setting%'
       OR p.proname IN ('format_type', 'pg_has_role', 'row_security_active',
                        'current_database', 'current_schema', 'current_schemas',
                        'current_user', 'session_user', 'getpgusername',
                        'version', 'age', 'mxid_age', 'now', 'statement_timestamp',
                        'transaction_timestamp', 'timeofday', 'pg_backend_pid',
                        'pg_cursor', 'pg_prepared_statement', 'pg_listening_channels',
                        'pg_show_all_settings', 'pg_my_temp_schema',
                        'pg_trigger_depth', 'pg_describe_object', 'pg_identify_object',
                        'pg_identify_object_as_address', 'pg_get_object_address',
                        'pg_relation_filenode', 'pg_relation_filepath',
                        'pg_filenode_relation', 'pg_tablespace_location',
                        'pg_tablespace_databases', 'pg_sequence_parameters',
                        'pg_collation_for', 'oidvectortypes', 'domain_in',
                        'convert', 'convert_from', 'convert_to',
                        'date_in', 'time_in', 'timetz_in', 'timestamp_in', 'timestamptz_in')
       -- these read the current date (daylight saving time)
       OR a.func::text IN ('timetz(time without time zone)',
                           'timezone(text,time with time zone)'));

-- every STABLE built-in that is not on the allow list bypasses: a call of
-- each is generated from pg_proc with sample arguments of its declared
-- types (functions with an argument type that has no simple sample value
-- are skipped) and handed to cache_explain; IS NULL keeps the result
-- type out of the question (some types cannot be stored at all)
CREATE FUNCTION al_sample(t regtype) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE t
		WHEN 'int2'::regtype THEN '1::int2' WHEN 'int4'::regtype THEN '1::int4'
		WHEN 'int8'::regtype THEN '1::int8' WHEN 'oid'::regtype THEN '1259::oid'
		WHEN 'float4'::regtype THEN '1::float4' WHEN 'float8'::regtype THEN '1::float8'
		WHEN 'numeric'::regtype THEN '1::numeric' WHEN 'bool'::regtype THEN 'true'
		WHEN 'text'::regtype THEN '''x''::text' WHEN 'name'::regtype THEN '''x''::name'
		WHEN 'varchar'::regtype THEN '''x''::varchar' WHEN 'bpchar'::regtype THEN '''x''::bpchar'
		WHEN '"char"'::regtype THEN '''r''::"char"' WHEN 'bytea'::regtype THEN '''\x00''::bytea'
		WHEN 'date'::regtype THEN '''2020-01-02''::date'
		WHEN 'time'::regtype THEN '''01:02''::time'
		WHEN 'timetz'::regtype THEN '''01:02+00''::timetz'
		WHEN 'timestamp'::regtype THEN '''2020-01-02 03:04''::timestamp'
		WHEN 'timestamptz'::regtype THEN '''2020-01-02 03:04+00''::timestamptz'
		WHEN 'interval'::regtype THEN '''1 day''::interval'
		WHEN 'json'::regtype THEN '''{}''::json' WHEN 'jsonb'::regtype THEN '''{}''::jsonb'
		WHEN 'jsonpath'::regtype THEN '''$''::jsonpath'
		WHEN 'xid'::regtype THEN '''1''::xid' WHEN 'xid8'::regtype THEN '''1''::xid8'
		WHEN 'money'::regtype THEN '1::money' WHEN 'inet'::regtype THEN '''127.0.0.1''::inet'
		WHEN 'pg_lsn'::regtype THEN '''0/0''::pg_lsn'
		WHEN 'tsquery'::regtype THEN '''a''::tsquery' WHEN 'tsvector'::regtype THEN '''a''::tsvector'
		WHEN 'regclass'::regtype THEN '''pg_class''::regclass'
		WHEN 'regtype'::regtype THEN '''int4''::regtype'
		WHEN 'regconfig'::regtype THEN '''simple''::regconfig'
		WHEN 'regnamespace'::regtype THEN '''pg_catalog''::regnamespace'
		WHEN 'text[]'::regtype THEN '''{x}''::text[]'
		WHEN 'oidvector'::regtype THEN '''23''::oidvector'
		WHEN 'aclitem[]'::regtype THEN '''{}''::aclitem[]'
		WHEN '"any"'::regtype THEN '1::int4' WHEN 'anyelement'::regtype THEN '1::int4'
		WHEN 'anynonarray'::regtype THEN '1::int4'
		WHEN 'anyarray'::regtype THEN '''{1}''::int4[]'
		WHEN 'anycompatiblearray'::regtype THEN '''{1}''::int4[]'
		WHEN 'anyrange'::regtype THEN '''[1,2]''::int4range'
		WHEN 'anymultirange'::regtype THEN '''{[1,2]}''::int4multirange'
		WHEN 'anycompatiblerange'::regtype THEN '''[1,2]''::int4range'
		WHEN 'anycompatiblemultirange'::regtype THEN '''{[1,2]}''::int4multirange'
		WHEN 'record'::regtype THEN 'ROW(1, 2)'
		WHEN 'cstring'::regtype THEN '''x''::cstring'
		WHEN 'regproc'::regtype THEN '''now''::regproc'
		WHEN 'regprocedure'::regtype THEN '''now()''::regprocedure'
		WHEN 'regoper'::regtype THEN '''0''::regoper'
		WHEN 'regoperator'::regtype THEN '''=(integer,integer)''::regoperator'
		WHEN 'regdictionary'::regtype THEN '''simple''::regdictionary'
		WHEN 'regrole'::regtype THEN '''0''::regrole'
		WHEN 'regcollation'::regtype THEN '''"C"''::regcollation'
	END
$$;
-- a fresh server owes Redis a server-generation bump: deliver it first, so
-- that no verdict below depends on when the background worker does
SELECT * FROM cached_query('SELECT 1') AS t(x int);
CREATE TEMP TABLE al_result (func regprocedure, verdict text);
DO $$
DECLARE
	p record;
	args text[];
	sample text;
	ok boolean;
	v text;
BEGIN
	FOR p IN
		SELECT oid, pronamespace::regnamespace::text AS nsp, proname,
			(SELECT array_agg(t::regtype ORDER BY o)
			 FROM unnest(proargtypes::oid[]) WITH ORDINALITY u(t, o)) AS types
		FROM pg_proc
		WHERE oid < 16384 AND provolatile = 's' AND prokind = 'f'
		  AND oid NOT IN (SELECT func FROM cache_ext_allowlist())
		ORDER BY oid
	LOOP
		args := '{}';
		ok := true;
		FOR i IN 1 .. coalesce(array_length(p.types, 1), 0) LOOP
			sample := al_sample(p.types[i]);
			IF sample IS NULL THEN
				ok := false;
				EXIT;
			END IF;
			args := args || sample;
		END LOOP;
		IF NOT ok THEN
			INSERT INTO al_result VALUES (p.oid, 'skipped');
			CONTINUE;
		END IF;
		BEGIN
			v := cache_explain(format('SELECT %I.%I(%s) IS NULL', p.nsp, p.proname,
									  array_to_string(args, ', ')))->>'verdict';
		EXCEPTION WHEN OTHERS THEN
			v := 'error: ' || SQLERRM;
		END;
		INSERT INTO al_result VALUES (p.oid, v);
	END LOOP;
END $$;
-- how many were checked (the number is in docs/decisions.md), and each
-- call that did not bypass: only the role forms, which key by role
SELECT count(*) FILTER (WHERE verdict = 'bypass') >= 370 AS checked_enough,
       count(*) FILTER (WHERE verdict LIKE 'error%') AS errors
FROM al_result;
SELECT func, verdict FROM al_result
WHERE verdict NOT IN ('bypass', 'skipped') ORDER BY func::text;
SELECT cache_explain('SELECT pg_catalog."current_user"()')->'role_in_key' AS current_user_keyed,
       cache_explain('SELECT pg_catalog.getpgusername()')->'role_in_key' AS getpgusername_keyed,
       cache_explain('SELECT pg_catalog."session_user"()')->'session_user_in_key' AS session_user_keyed;
DROP FUNCTION al_sample(regtype);
