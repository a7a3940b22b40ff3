/* cache_ext--0.5--0.6.sql: Redis behind Sentinel (issue 13) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.6'" to load this file. \quit

-- cache_health gains how Redis is reached, the master in use and the
-- failovers seen (server-wide, for this session's Redis target).
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
    OUT local_cache_entries bigint,
    OUT redis_mode text,
    OUT redis_master text,
    OUT failovers bigint,
    OUT last_failover timestamptz
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_health'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_health() IS
'this session''s Redis connection and circuit breaker, PING round trip, Redis memory and eviction settings, pending invalidations, warnings, the kind of the last failure, the local tier (state, size, bytes and entries in use), how Redis is reached (single or sentinel), the master in use and the failovers seen';

-- cache_stats is readable by every role, as docs/operations.md has always
-- said; the view was created without the grant (0.1, and again in 0.5).
GRANT SELECT ON cache_stats TO PUBLIC;
