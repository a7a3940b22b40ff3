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
