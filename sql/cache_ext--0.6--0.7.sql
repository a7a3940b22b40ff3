/* cache_ext--0.6--0.7.sql: application values and sessions (issue 15), single flight, large results and warming (issue 14), cache rules (issue 16) */

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

-- Statistics gain single flight's: calls that waited for another session's
-- fill of the same entry, those of them that then hit, and the time spent
-- waiting.  New columns at the end, so the view is recreated.
DROP VIEW cache_stats;
DROP FUNCTION cache_stats();

CREATE FUNCTION cache_stats(
    OUT hits bigint,
    OUT misses bigint,
    OUT bypasses bigint,
    OUT errors bigint,
    OUT stores bigint,
    OUT store_skipped bigint,
    OUT corrupt bigint,
    OUT bytes_stored bigint,
    OUT bytes_read bigint,
    OUT hit_time_ms double precision,
    OUT miss_time_ms double precision,
    OUT bypass_time_ms double precision,
    OUT invalidated bigint,
    OUT ttl_only bigint,
    OUT invalidations_sent bigint,
    OUT invalidations_deferred bigint,
    OUT outbox_overflows bigint,
    OUT verified bigint,
    OUT verify_mismatches bigint,
    OUT round_trips bigint,
    OUT plans_built bigint,
    OUT pending_invalidations bigint,
    OUT stats_reset timestamptz,
    OUT server_wide boolean,
    OUT l1_hits bigint,
    OUT l1_stores bigint,
    OUT l1_evictions bigint,
    OUT l1_bytes bigint,
    OUT fill_waits bigint,
    OUT fill_wait_hits bigint,
    OUT fill_wait_time_ms double precision
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW cache_stats AS SELECT * FROM cache_stats();
GRANT SELECT ON cache_stats TO PUBLIC;

-- (end of single flight)


-- ===========================================================================
-- Compression and large results (issue 14)
-- ===========================================================================

-- (end of compression and large results)


-- ===========================================================================
-- Cache rules and per-table policies (issue 16)
-- ===========================================================================

-- Members of this role may create cache rules on any table and drop any
-- rule.  Roles are cluster-wide: it is created once, kept by DROP
-- EXTENSION, and has no privileges of its own (docs/rules.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cache_ext_rules_admin') THEN
        CREATE ROLE cache_ext_rules_admin NOLOGIN;
    END IF;
END
$$;

-- The rules: written only by cache_rule_create and cache_rule_drop (as the
-- table's owner), read by every backend with direct heap access.  The query
-- ids are those at creation: each backend computes them again from the text
-- (as owner, under search_path), so a restore into other OIDs still works.
CREATE TABLE cache_ext_rules (
    name text PRIMARY KEY,
    query text NOT NULL,
    shape text NOT NULL,
    queryid bigint NOT NULL,
    param_queryid bigint,
    ttl interval,
    tags text[],
    owner regrole NOT NULL,
    search_path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON cache_ext_rules FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('cache_ext_rules', '');

CREATE FUNCTION cache_ext_rules_changed() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cache_ext_rules_changed';
CREATE TRIGGER cache_ext_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cache_ext_rules
    FOR EACH STATEMENT EXECUTE FUNCTION cache_ext_rules_changed();
REVOKE ALL ON FUNCTION cache_ext_rules_changed() FROM PUBLIC;

CREATE FUNCTION cache_rule_create(query text, ttl interval DEFAULT NULL,
                                  tags text[] DEFAULT NULL, name text DEFAULT NULL)
    RETURNS text
    LANGUAGE C CALLED ON NULL INPUT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_rule_create';
COMMENT ON FUNCTION cache_rule_create(text, interval, text[], text) IS
'serve every statement of this shape through the cache, as cached_query would; returns the rule''s name';

CREATE FUNCTION cache_rule_drop(name text) RETURNS void
    LANGUAGE C STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_rule_drop';
COMMENT ON FUNCTION cache_rule_drop(text) IS 'drop a cache rule';

CREATE FUNCTION cache_rule_for(query text) RETURNS text
    LANGUAGE C STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_rule_for';
COMMENT ON FUNCTION cache_rule_for(text) IS
'the name of the cache rule that would serve this statement sent as it is, or NULL';

CREATE FUNCTION cache_rules_stats(OUT name text, OUT hits bigint, OUT misses bigint,
                                  OUT bypasses bigint, OUT hit_ms float8, OUT miss_ms float8)
    RETURNS SETOF record
    LANGUAGE C STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_rules_stats';

-- A role sees the rules it has the privileges of the owner of; members of
-- cache_ext_rules_admin see all (a dropped owner or admin role hides rows,
-- never fails the view).
CREATE VIEW cache_rules AS
SELECT r.name, r.shape, r.query, r.queryid, r.ttl, r.tags, r.owner,
       coalesce(s.hits, 0) AS hits, coalesce(s.misses, 0) AS misses,
       coalesce(s.bypasses, 0) AS bypasses,
       CASE WHEN s.hits > 0 AND s.misses > 0
            THEN round((s.hits * greatest(s.miss_ms / s.misses - s.hit_ms / s.hits, 0))::numeric, 3)
            ELSE 0 END AS time_saved_ms,
       r.created_at
  FROM cache_ext_rules r
  LEFT JOIN cache_rules_stats() s ON s.name = r.name
 WHERE CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles o WHERE o.oid = r.owner)
            THEN pg_catalog.pg_has_role(current_user, r.owner, 'USAGE') END
    OR CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles a WHERE a.rolname = 'cache_ext_rules_admin')
            THEN pg_catalog.pg_has_role(current_user, 'cache_ext_rules_admin', 'USAGE') END;
GRANT SELECT ON cache_rules TO PUBLIC;

CREATE FUNCTION cache_rule_verdict(query text, OUT verdict text, OUT queryid bigint)
    LANGUAGE C STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_rule_verdict';
COMMENT ON FUNCTION cache_rule_verdict(text) IS
'what cache_rule_create would say of this statement for the current role: cacheable, or why not';

-- The read-only statements pg_stat_statements saw in this database, most
-- total execution time first, with cache_rule_verdict's answer and the call
-- that would create their rule.  Needs pg_stat_statements (55000 otherwise).
-- The statements are analysed under the caller's search_path (as they ran),
-- so every name here is qualified.
CREATE FUNCTION cache_candidates(max_rows integer DEFAULT 20)
    RETURNS TABLE (queryid bigint, calls bigint, mean_ms double precision,
                   total_ms double precision, query text, verdict text,
                   rule_call text)
    LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    pgss_schema text;
    r record;
    v record;
    ext_schema text;
BEGIN
    SELECT n.nspname INTO pgss_schema
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements';
    IF pgss_schema IS NULL THEN
        RAISE EXCEPTION 'cache_candidates needs the extension pg_stat_statements in this database'
            USING ERRCODE = '55000',
                  HINT = 'Add pg_stat_statements to shared_preload_libraries, restart, and run CREATE EXTENSION pg_stat_statements.';
    END IF;
    SELECT n.nspname INTO ext_schema
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'cache_ext';
    FOR r IN EXECUTE pg_catalog.format(
        $q$SELECT s.queryid, s.calls, s.mean_exec_time, s.total_exec_time, s.query
             FROM %I.pg_stat_statements s
            WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d
                             WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
              AND s.toplevel
              AND s.query OPERATOR(pg_catalog.~*) '^\s*(select|with|values|table)\M'
              AND s.query OPERATOR(pg_catalog.!~*) 'cache_(candidates|rule)'
            ORDER BY s.total_exec_time DESC
            LIMIT $1$q$, pgss_schema) USING max_rows
    LOOP
        queryid := r.queryid;
        calls := r.calls;
        mean_ms := r.mean_exec_time;
        total_ms := r.total_exec_time;
        query := r.query;
        rule_call := NULL;
        BEGIN
            EXECUTE pg_catalog.format('SELECT * FROM %I.cache_rule_verdict($1)', ext_schema) INTO v USING r.query;
            verdict := v.verdict;
            IF v.verdict OPERATOR(pg_catalog.=) 'cacheable' THEN
                IF v.queryid IS DISTINCT FROM r.queryid THEN
                    verdict := 'cacheable; sent with constants: create the rule from the statement with one of its constants in place of each $n';
                END IF;
                rule_call := pg_catalog.format('SELECT %I.cache_rule_create(%L);', ext_schema, r.query);
            END IF;
        EXCEPTION WHEN query_canceled OR admin_shutdown THEN
            RAISE;
        WHEN OTHERS THEN
            verdict := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- A function, not a view: a view that fails without pg_stat_statements
-- would fail whatever reads every view (database_to_xml, say).

-- Per-table TTL policies: results that read a table get at most its
-- policy's TTL (docs/rules.md, "Policies per table").  Written only by
-- cache_policy (as this table's owner), read by every backend with direct
-- heap access.  The relation is a regclass: a dump holds its qualified
-- name, so a restore into other OIDs finds it.  The statement trigger makes
-- every backend load the policies again after a change commits; the event
-- trigger drops the policy of a dropped relation (an OID used again never
-- inherits one).
CREATE TABLE cache_ext_policies (
    rel regclass PRIMARY KEY,
    ttl interval NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON cache_ext_policies FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('cache_ext_policies', '');
CREATE TRIGGER cache_ext_policies_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cache_ext_policies
    FOR EACH STATEMENT EXECUTE FUNCTION cache_ext_rules_changed();

-- Deletes only when a dropped relation has a policy: most drops write
-- nothing (and make no backend load the policies again).  No EXCEPTION
-- block: a subtransaction cannot start while the dropping command's own
-- invalidations are unprocessed (ALTER DOMAIN ... DROP CONSTRAINT, say).
CREATE FUNCTION cache_ext_policies_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF EXISTS (SELECT FROM @extschema@.cache_ext_policies p
                 JOIN pg_event_trigger_dropped_objects() d
                   ON d.classid = 'pg_class'::regclass AND d.objsubid = 0
                  AND p.rel = d.objid::regclass) THEN
        DELETE FROM @extschema@.cache_ext_policies p
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
           AND p.rel = d.objid::regclass;
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION cache_ext_policies_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER cache_ext_policies_dropped ON sql_drop
    EXECUTE FUNCTION cache_ext_policies_dropped();
ALTER EVENT TRIGGER cache_ext_policies_dropped ENABLE ALWAYS;

CREATE FUNCTION cache_policy(rel regclass, ttl interval DEFAULT NULL) RETURNS void
    LANGUAGE C CALLED ON NULL INPUT VOLATILE
    AS 'MODULE_PATHNAME', 'cache_policy';
COMMENT ON FUNCTION cache_policy(regclass, interval) IS
'results that read this table get at most this TTL (the smallest over the tables they read); NULL removes the policy';

CREATE VIEW cache_policies AS
SELECT p.rel AS relation, p.ttl, c.relowner::regrole AS owner, p.set_at
  FROM cache_ext_policies p
  JOIN pg_catalog.pg_class c ON c.oid = p.rel;
GRANT SELECT ON cache_policies TO PUBLIC;

-- (end of cache rules)


-- ===========================================================================
-- Warming and refresh-ahead (issue 14)
-- ===========================================================================

-- A warming call is a cached_query call that returns its status, not rows:
-- same analysis, privileges, bypass rules and key (under the caller's role,
-- search_path and settings).
CREATE FUNCTION cache_warm(query text)
RETURNS text
AS 'MODULE_PATHNAME', 'cache_warm'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION cache_warm(query text, VARIADIC params "any")
RETURNS text
AS 'MODULE_PATHNAME', 'cache_warm'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION cache_warm_with(options cache_options, query text)
RETURNS text
AS 'MODULE_PATHNAME', 'cache_warm_with'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION cache_warm_with(options cache_options, query text,
                                VARIADIC params "any")
RETURNS text
AS 'MODULE_PATHNAME', 'cache_warm_with'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION cache_warm(text) IS
'make the cached_query call for this query (storing its result unless it is cached already or bypassed) and return its status instead of its rows';
COMMENT ON FUNCTION cache_warm(text, "any") IS
'make the cached_query call for this query and parameters and return its status instead of its rows';
COMMENT ON FUNCTION cache_warm_with(cache_options, text) IS
'cache_warm for a cached_query_with call (its TTL, tags, namespace and depends_on)';
COMMENT ON FUNCTION cache_warm_with(cache_options, text, "any") IS
'cache_warm for a cached_query_with call with parameters';

CREATE FUNCTION cache_warm_list(queries text[], options cache_options DEFAULT NULL,
                                OUT query text, OUT status text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_warm_list'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION cache_warm_list(text[], cache_options) IS
'warm each query of the list (without parameters) in its own subtransaction: one row per query with its status or error; a NOTICE every 5 seconds and a summary';

-- The queries of this database that cache_query_stats ranks hottest (time
-- saved, then calls), as the calling role sees them.
CREATE FUNCTION cache_warm_top(n integer DEFAULT 20,
                               OUT query text, OUT status text)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
SELECT w.query, w.status
  FROM @extschema@.cache_warm_list(ARRAY(
         SELECT s.query
           FROM @extschema@.cache_query_stats s
          WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d
                           WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
          ORDER BY s.time_saved_ms DESC NULLS LAST, s.calls DESC
          LIMIT n)) w
$$;

COMMENT ON FUNCTION cache_warm_top(integer) IS
'warm the n queries of this database that cache_query_stats ranks hottest (after a Redis flush or a restart); run it as the role and with the settings of the application';

-- Refresh-ahead (cache_ext.refresh_ahead): the registry and the worker's
-- counters; all NULL when cache_ext is not in shared_preload_libraries.
CREATE FUNCTION cache_refresh_stats(OUT registered_now integer,
                                    OUT registered bigint, OUT refused bigint,
                                    OUT refreshed bigint, OUT dropped bigint,
                                    OUT failed bigint, OUT expired bigint,
                                    OUT dbid oid, OUT worker_pid integer)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_refresh_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION cache_refresh_stats() IS
'refresh-ahead: entries registered now, counters since the server started (registered, refused, refreshed by the worker, dropped, failed, hot entries that expired before their turn), the database served and the worker''s pid';

-- (end of warming)
