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

-- (end of cache rules)


-- ===========================================================================
-- Warming and refresh-ahead (issue 14)
-- ===========================================================================

-- (end of warming)
