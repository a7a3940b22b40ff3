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

-- (end of cache rules)


-- ===========================================================================
-- Warming and refresh-ahead (issue 14)
-- ===========================================================================

-- (end of warming)
