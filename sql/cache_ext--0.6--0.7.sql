/* cache_ext--0.6--0.7.sql: application values and sessions (issue 15), single flight, large results and warming (issue 14), cache rules (issue 16) */

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

-- (end of sessions)


-- ===========================================================================
-- Single flight (issue 14)
-- ===========================================================================

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

-- (end of cache rules)


-- ===========================================================================
-- Warming and refresh-ahead (issue 14)
-- ===========================================================================

-- (end of warming)
