/* cache_ext--0.7--0.8.sql: cache rules served for every protocol (issue 16), refresh-ahead and warming (issue 14), Redis Cluster (issue 13) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.8'" to load this file. \quit

-- ===========================================================================
-- Cache rules (issue 16)
-- ===========================================================================

-- (end of cache rules)

-- ===========================================================================
-- Refresh-ahead and warming (issue 14)
-- ===========================================================================

-- (end of refresh-ahead and warming)

-- ===========================================================================
-- Redis Cluster (issue 13)
-- ===========================================================================

-- (end of Redis Cluster)
