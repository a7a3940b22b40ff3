/* cache_ext--0.6--0.7.sql: application values and sessions (issue 15), single flight and large results (issue 14) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.7'" to load this file. \quit

-- ===========================================================================
-- Application values (issue 15): cache_set, cache_get, cache_delete,
-- cache_delete_namespace
-- ===========================================================================

-- Who may call the value functions: members of cache_ext_values (a role
-- without login, made once per server), superusers, and roles granted
-- EXECUTE on a function one by one.  Not PUBLIC: any role could otherwise
-- fill Redis or read what another application stored.
DO $values$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cache_ext_values') THEN
		CREATE ROLE cache_ext_values NOLOGIN;
	END IF;
END
$values$;

-- Namespaces restricted to a role: only roles with the privileges of that
-- role may set, get or delete in them.  Read by the C functions at every
-- call with a fresh snapshot; bytes compared (collation "C").
CREATE TABLE cache_ext_value_namespaces (
	namespace text COLLATE "C" PRIMARY KEY CHECK (namespace <> ''),
	role regrole NOT NULL
);
REVOKE ALL ON cache_ext_value_namespaces FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('cache_ext_value_namespaces', '');

CREATE FUNCTION cache_namespace_restrict(namespace text, role regrole)
RETURNS void
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO @extschema@.cache_ext_value_namespaces AS r (namespace, role)
	VALUES ($1, $2)
	ON CONFLICT (namespace) DO UPDATE SET role = excluded.role
$$;
COMMENT ON FUNCTION cache_namespace_restrict(text, regrole) IS
	'Restrict a value namespace to the members of a role';
REVOKE ALL ON FUNCTION cache_namespace_restrict(text, regrole) FROM PUBLIC;

CREATE FUNCTION cache_namespace_unrestrict(namespace text)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH d AS (DELETE FROM @extschema@.cache_ext_value_namespaces WHERE namespace = $1 RETURNING 1)
	SELECT count(*) > 0 FROM d
$$;
COMMENT ON FUNCTION cache_namespace_unrestrict(text) IS
	'Open a value namespace to every caller of the value functions again';
REVOKE ALL ON FUNCTION cache_namespace_unrestrict(text) FROM PUBLIC;

CREATE VIEW cache_value_namespaces AS
	SELECT namespace, role FROM cache_ext_value_namespaces;
REVOKE ALL ON cache_value_namespaces FROM PUBLIC;
GRANT SELECT ON cache_value_namespaces TO cache_ext_values;

CREATE FUNCTION cache_set(namespace text, key text, value jsonb,
						  ttl interval DEFAULT NULL, tags text[] DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cache_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_set(text, text, jsonb, interval, text[]) IS
	'Store an application value in Redis (immediately, not transactionally); false when Redis did not take it';

CREATE FUNCTION cache_get(namespace text, key text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_get(text, text) IS
	'The current application value, or NULL (cache_status() says why)';

CREATE FUNCTION cache_set_bytea(namespace text, key text, value bytea,
								ttl interval DEFAULT NULL, tags text[] DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cache_set_bytea'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_set_bytea(text, text, bytea, interval, text[]) IS
	'cache_set for bytea values';

CREATE FUNCTION cache_get_bytea(namespace text, key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'cache_get_bytea'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_get_bytea(text, text) IS
	'cache_get for values stored by cache_set_bytea';

CREATE FUNCTION cache_delete(namespace text, key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cache_delete'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_delete(text, text) IS
	'Delete an application value (immediately); true when Redis held one';

CREATE FUNCTION cache_delete_namespace(namespace text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cache_delete_namespace'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION cache_delete_namespace(text) IS
	'Invalidate every value of a namespace at once (immediately, one generation bump)';

REVOKE ALL ON FUNCTION cache_set(text, text, jsonb, interval, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_get(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_set_bytea(text, text, bytea, interval, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_get_bytea(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_delete(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_delete_namespace(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cache_set(text, text, jsonb, interval, text[]) TO cache_ext_values;
GRANT EXECUTE ON FUNCTION cache_get(text, text) TO cache_ext_values;
GRANT EXECUTE ON FUNCTION cache_set_bytea(text, text, bytea, interval, text[]) TO cache_ext_values;
GRANT EXECUTE ON FUNCTION cache_get_bytea(text, text) TO cache_ext_values;
GRANT EXECUTE ON FUNCTION cache_delete(text, text) TO cache_ext_values;
GRANT EXECUTE ON FUNCTION cache_delete_namespace(text) TO cache_ext_values;

-- (end of application values)


-- ===========================================================================
-- Sessions (issue 15): cache_session_*
-- ===========================================================================

-- (end of sessions)


-- ===========================================================================
-- Single flight (issue 14)
-- ===========================================================================

-- (end of single flight)


-- ===========================================================================
-- Compression and large results (issue 14)
-- ===========================================================================

-- (end of compression and large results)
