/* cache_ext 0.1 -> 0.2: commit-ordered invalidation with generations */

\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.2'" to load this file. \quit

-- Per-call options gain depends_on: the tables the functions of a query
-- read, which the plan cannot show.
ALTER TYPE cache_options ADD ATTRIBUTE depends_on regclass[];

DROP FUNCTION cache_opts(interval, text[], text);

CREATE FUNCTION cache_opts(ttl interval DEFAULT NULL,
                           tags text[] DEFAULT NULL,
                           namespace text DEFAULT NULL,
                           depends_on regclass[] DEFAULT NULL)
RETURNS cache_options
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ROW(ttl, tags, namespace, depends_on)::@extschema@.cache_options $$;

COMMENT ON FUNCTION cache_opts(interval, text[], text, regclass[]) IS
'options for one cached_query_with() call: ttl, tags, namespace, depends_on';

-- Statistics gain the invalidation counters.
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
    OUT pending_invalidations bigint,
    OUT stats_reset timestamptz,
    OUT server_wide boolean
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW cache_stats AS SELECT * FROM cache_stats();

-- The trigger that notes writes to tracked tables.
CREATE FUNCTION cache_ext_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'cache_ext_trigger'
LANGUAGE C;

COMMENT ON FUNCTION cache_ext_trigger() IS
'notes writes to a tracked table; installed by cache_track()';

CREATE FUNCTION cache_track(rel regclass, key_columns text[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'cache_track'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION cache_track(regclass, text[]) IS
'invalidate cached results that read this table (and its partitions or children) when it changes; with key_columns, only those about the changed key values';

CREATE FUNCTION cache_untrack(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'cache_untrack'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION cache_untrack(regclass) IS
'stop tracking this table: results that read it become TTL-only';

CREATE FUNCTION cache_relation_tracking(rel regclass,
    OUT tracked_as regclass,
    OUT covered boolean,
    OUT problem text,
    OUT key_columns text[])
RETURNS record
AS 'MODULE_PATHNAME', 'cache_relation_tracking'
LANGUAGE C STRICT STABLE;

CREATE VIEW cache_tracked AS
SELECT c.oid::regclass AS relation,
       CASE c.relkind
           WHEN 'p' THEN 'partitioned table'
           WHEN 'r' THEN CASE WHEN c.relispartition THEN 'partition'
                              WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
                              THEN 'inheritance child'
                              ELSE 'table' END
           ELSE c.relkind::text
       END AS kind,
       t.tracked_as,
       t.key_columns,
       (SELECT string_agg(format('%s (%s, %s)', tg.tgname,
                                 CASE WHEN tg.tgtype & 1 = 1 THEN 'row' ELSE 'statement' END,
                                 CASE tg.tgenabled WHEN 'A' THEN 'always'
                                                   WHEN 'R' THEN 'replica'
                                                   WHEN 'O' THEN 'origin'
                                                   ELSE 'disabled' END),
                          ', ' ORDER BY tg.tgname)
          FROM pg_trigger tg
         WHERE tg.tgrelid = c.oid
           AND tg.tgfoid = '@extschema@.cache_ext_trigger()'::regprocedure) AS triggers,
       t.covered,
       t.problem
  FROM pg_class c
       CROSS JOIN LATERAL @extschema@.cache_relation_tracking(c.oid) t
 WHERE c.oid IN (SELECT tgrelid FROM pg_trigger
                  WHERE tgfoid = '@extschema@.cache_ext_trigger()'::regprocedure);

COMMENT ON VIEW cache_tracked IS
'relations with cache_ext triggers: which generation stands for them, their triggers, whether every write path is covered';

CREATE FUNCTION cache_invalidate(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'cache_invalidate'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION cache_invalidate(regclass) IS
'invalidate, when this transaction commits, every cached result that reads this relation';

CREATE FUNCTION cache_invalidate_tag(tag text)
RETURNS void
AS 'MODULE_PATHNAME', 'cache_invalidate_tag'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION cache_invalidate_tag(text) IS
'invalidate, when this transaction commits, every cached result stored with this tag';

CREATE FUNCTION cache_flush()
RETURNS void
AS 'MODULE_PATHNAME', 'cache_flush'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION cache_flush() IS
'invalidate, when this transaction commits, every cached result of this database';

CREATE FUNCTION cache_purge()
RETURNS bigint
AS 'MODULE_PATHNAME', 'cache_purge'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION cache_purge() IS
'delete this database''s cached entries from Redis now (SCAN + UNLINK in batches); returns how many';

-- flushing and purging are for administrators
REVOKE ALL ON FUNCTION cache_flush() FROM PUBLIC;
REVOKE ALL ON FUNCTION cache_purge() FROM PUBLIC;

-- Per-query statistics, like pg_stat_statements.  They show query text:
-- readable by pg_read_all_stats, not by PUBLIC.
CREATE FUNCTION cache_query_stats(
    OUT dbid oid,
    OUT queryid bigint,
    OUT query text,
    OUT calls bigint,
    OUT hits bigint,
    OUT misses bigint,
    OUT bypasses bigint,
    OUT bypass_reasons jsonb,
    OUT stores bigint,
    OUT store_skipped bigint,
    OUT invalidated bigint,
    OUT bytes_stored bigint,
    OUT bytes_read bigint,
    OUT mean_hit_ms double precision,
    OUT max_hit_ms double precision,
    OUT mean_miss_ms double precision,
    OUT time_saved_ms double precision,
    OUT last_invalidation timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_query_stats'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW cache_query_stats AS SELECT * FROM cache_query_stats();

COMMENT ON VIEW cache_query_stats IS
'per query text: calls, hits, misses, bypasses by reason, stores, bytes, hit and miss times, time saved';

REVOKE ALL ON FUNCTION cache_query_stats() FROM PUBLIC;
REVOKE ALL ON cache_query_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cache_query_stats() TO pg_read_all_stats;
GRANT SELECT ON cache_query_stats TO pg_read_all_stats;

CREATE FUNCTION cache_query_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'cache_query_stats_reset'
LANGUAGE C VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION cache_query_stats_reset() FROM PUBLIC;

-- Is Redis healthy, and set up so that cached results stay correct?
CREATE FUNCTION cache_health(
    OUT connected boolean,
    OUT circuit text,
    OUT circuit_retry_ms integer,
    OUT last_error text,
    OUT rtt_ms double precision,
    OUT redis_version text,
    OUT redis_role text,
    OUT used_memory bigint,
    OUT maxmemory bigint,
    OUT maxmemory_policy text,
    OUT evicted_keys bigint,
    OUT expired_keys bigint,
    OUT outbox_depth integer,
    OUT pending_invalidations bigint,
    OUT warnings text[]
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_health'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_health() IS
'this session''s Redis connection and circuit breaker, PING round trip, Redis memory and eviction settings, pending invalidations, warnings';

-- cache_explain with per-call options (ttl, tags, namespace, depends_on)
CREATE FUNCTION cache_explain_with(options cache_options, query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_explain_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cache_explain_with(options cache_options, query text,
                                   VARIADIC params "any")
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_explain_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_explain_with(cache_options, text) IS
'cache_explain for a cached_query_with call: the options'' TTL, tags and depends_on are taken into account';

-- The invalidations of prepared transactions: written by the transaction
-- itself at PREPARE TRANSACTION (so they commit, survive restarts and roll
-- back with it), read and deleted by COMMIT PREPARED.
CREATE TABLE cache_ext_prepared (
    gid text PRIMARY KEY,
    keys text[] NOT NULL
);
REVOKE ALL ON cache_ext_prepared FROM PUBLIC;
