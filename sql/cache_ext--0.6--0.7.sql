/* cache_ext--0.6--0.7.sql: application values and sessions (issue 15), single flight and large results (issue 14) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.7'" to load this file. \quit

-- ===========================================================================
-- Application values (issue 15): cache_set, cache_get, cache_delete,
-- cache_delete_namespace
-- ===========================================================================

-- (end of application values)


-- ===========================================================================
-- Sessions (issue 15): cache_session_*
-- ===========================================================================

-- Who may call: roles granted cache_ext_sessions (and superusers).  The
-- role is created here when it does not exist; like every role it belongs
-- to the cluster, not to the extension, and DROP EXTENSION leaves it.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cache_ext_sessions') THEN
		CREATE ROLE cache_ext_sessions NOLOGIN;
	END IF;
END
$$;

CREATE FUNCTION cache_session_create(user_id text, data jsonb,
	idle_timeout interval DEFAULT '30 min',
	max_lifetime interval DEFAULT '12 hours')
RETURNS text
AS 'MODULE_PATHNAME', 'cache_session_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION cache_session_get(id text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_session_get'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION cache_session_update(id text, data jsonb,
	expected_version int DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'cache_session_update'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION cache_session_rotate(id text)
RETURNS text
AS 'MODULE_PATHNAME', 'cache_session_rotate'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION cache_session_destroy(id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cache_session_destroy'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION cache_session_destroy_all(user_id text)
RETURNS integer
AS 'MODULE_PATHNAME', 'cache_session_destroy_all'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION cache_sessions(user_id text)
RETURNS TABLE (id_prefix text, created timestamptz, last_seen timestamptz,
	expires timestamptz, version int)
AS 'MODULE_PATHNAME', 'cache_sessions'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 10;

CREATE FUNCTION cache_session_status()
RETURNS text
AS 'MODULE_PATHNAME', 'cache_session_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE EXECUTE ON FUNCTION
	cache_session_create(text, jsonb, interval, interval),
	cache_session_get(text),
	cache_session_update(text, jsonb, int),
	cache_session_rotate(text),
	cache_session_destroy(text),
	cache_session_destroy_all(text),
	cache_sessions(text),
	cache_session_status()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	cache_session_create(text, jsonb, interval, interval),
	cache_session_get(text),
	cache_session_update(text, jsonb, int),
	cache_session_rotate(text),
	cache_session_destroy(text),
	cache_session_destroy_all(text),
	cache_sessions(text),
	cache_session_status()
TO cache_ext_sessions;

-- (end of sessions)


-- ===========================================================================
-- Single flight (issue 14)
-- ===========================================================================

-- (end of single flight)


-- ===========================================================================
-- Compression and large results (issue 14)
-- ===========================================================================

-- (end of compression and large results)
