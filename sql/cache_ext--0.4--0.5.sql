/* cache_ext--0.4--0.5.sql: the local tier in shared memory (issue 12) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.5'" to load this file. \quit

-- Statistics gain the local tier's: hits it served (also counted in hits),
-- entries it took, entries it evicted to make room, and the bytes in use.
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
    OUT l1_bytes bigint
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW cache_stats AS SELECT * FROM cache_stats();

-- cache_health gains the local tier: whether it is on (or why not), its
-- size, the bytes and entries in use.
DROP FUNCTION cache_health();

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
    OUT warnings text[],
    OUT last_error_kind text,
    OUT local_cache text,
    OUT local_cache_size bigint,
    OUT local_cache_used bigint,
    OUT local_cache_entries bigint
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_health'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_health() IS
'this session''s Redis connection and circuit breaker, PING round trip, Redis memory and eviction settings, pending invalidations, warnings, the kind of the last failure, the local tier (state, size, bytes and entries in use)';
