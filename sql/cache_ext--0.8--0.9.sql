/* cache_ext--0.8--0.9.sql: refresh-ahead in every database and large results (issue 14), the local tier and commits (issue 12), Redis Cluster (issue 13) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.9'" to load this file. \quit

-- ===========================================================================
-- Refresh-ahead in every database, large results (issue 14)
-- ===========================================================================

-- Refresh-ahead in every database: one worker per database with hot
-- entries, at most cache_ext.refresh_max_workers at once.  One row per
-- database that has registered entries or a worker; none when cache_ext
-- is not in shared_preload_libraries.
CREATE FUNCTION cache_refresh_workers(OUT dbid oid, OUT registered integer,
                                      OUT due_soon integer, OUT worker_pid integer,
                                      OUT waiting boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_refresh_workers'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION cache_refresh_workers() IS
'refresh-ahead per database: entries registered, those hit and due soon, the worker''s pid (NULL when none runs), and whether the database waits for a worker (the cap cache_ext.refresh_max_workers is reached, or a start failed and is retried)';

COMMENT ON FUNCTION cache_refresh_stats() IS
'refresh-ahead: entries registered now, counters since the server started (registered, refused, refreshed by the worker, dropped, failed, hot entries that expired before their turn), the database served when only one has entries or a worker (else NULL: see cache_refresh_workers()) and the pid of this database''s worker';

-- (end of refresh-ahead and large results)

-- ===========================================================================
-- The local tier and commits (issue 12)
-- ===========================================================================

-- (end of the local tier and commits)

-- ===========================================================================
-- Redis Cluster (issue 13)
-- ===========================================================================

-- (end of Redis Cluster)
