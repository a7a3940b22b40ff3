/* cache_ext 0.2 -> 0.3: fail closed (issue 10) */

\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.3'" to load this file. \quit

-- ===========================================================================
-- Section: catalog-free prepared transactions, grants (invalidation side)
-- ===========================================================================

-- cache_tracked is documented as readable by anyone.
GRANT SELECT ON cache_tracked TO PUBLIC;

-- cache_ext_prepared is written and read by C code with direct heap access
-- (no SQL, no operator, nothing resolved through search_path).  It has no
-- index: a unique index made PREPARE TRANSACTION with a GID already in use
-- wait forever on the other prepared transaction's entry, where PostgreSQL
-- itself raises 42710 once the row is inserted.  Only the extension's code
-- touches it: no role has any privilege on it.
ALTER TABLE cache_ext_prepared DROP CONSTRAINT cache_ext_prepared_pkey;
REVOKE ALL ON cache_ext_prepared FROM PUBLIC;


-- ===========================================================================
-- Section: cacheability allow-list (analysis side)
-- ===========================================================================

-- The reviewed built-in functions the analysis trusts (verdict 'allow...')
-- or refuses although IMMUTABLE ('deny'); see src/allowlist.c.
CREATE FUNCTION cache_ext_allowlist(OUT func regprocedure, OUT verdict text, OUT note text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_ext_allowlist'
LANGUAGE C STRICT STABLE PARALLEL SAFE;


-- ===========================================================================
-- Section: outbox, standby fence, restore detection (recovery side)
-- ===========================================================================


-- ===========================================================================
-- Section: codecs, stats (entry and stats side)
-- ===========================================================================


-- ===========================================================================
-- Section: call pipeline (verification sampler, settings)
-- ===========================================================================

-- Statistics gain the online verification counters (cache_ext.verify_rate).
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
    OUT pending_invalidations bigint,
    OUT stats_reset timestamptz,
    OUT server_wide boolean
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW cache_stats AS SELECT * FROM cache_stats();

-- The call functions run queries, talk to Redis, may start subtransactions
-- and keep backend state: never inside a parallel operation.
ALTER FUNCTION cached_query(text) PARALLEL UNSAFE;
ALTER FUNCTION cached_query(text, VARIADIC "any") PARALLEL UNSAFE;
ALTER FUNCTION cached_query_with(cache_options, text) PARALLEL UNSAFE;
ALTER FUNCTION cached_query_with(cache_options, text, VARIADIC "any") PARALLEL UNSAFE;
ALTER FUNCTION cached_query_json(text) PARALLEL UNSAFE;
ALTER FUNCTION cached_query_json(text, VARIADIC "any") PARALLEL UNSAFE;
ALTER FUNCTION cached_query_json_with(cache_options, text) PARALLEL UNSAFE;
ALTER FUNCTION cached_query_json_with(cache_options, text, VARIADIC "any") PARALLEL UNSAFE;
ALTER FUNCTION cache_explain(text) PARALLEL UNSAFE;
ALTER FUNCTION cache_explain(text, VARIADIC "any") PARALLEL UNSAFE;
ALTER FUNCTION cache_explain_with(cache_options, text) PARALLEL UNSAFE;
ALTER FUNCTION cache_explain_with(cache_options, text, VARIADIC "any") PARALLEL UNSAFE;
