/* cache_ext--0.8--0.9.sql: refresh-ahead in every database and large results (issue 14), the local tier and commits (issue 12), Redis Cluster (issue 13) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.9'" to load this file. \quit

-- ===========================================================================
-- Refresh-ahead in every database, large results (issue 14)
-- ===========================================================================

-- (end of refresh-ahead and large results)

-- ===========================================================================
-- The local tier and commits (issue 12)
-- ===========================================================================

-- (end of the local tier and commits)

-- ===========================================================================
-- Redis Cluster (issue 13)
-- ===========================================================================

-- (end of Redis Cluster)
