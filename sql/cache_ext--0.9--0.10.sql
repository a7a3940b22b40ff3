/* cache_ext--0.9--0.10.sql: Redis Cluster nodes' health (issue 13) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.10'" to load this file. \quit

-- ===========================================================================
-- Redis Cluster (issue 13)
-- ===========================================================================

-- The health of each node of a Redis Cluster: one row per node of a fresh
-- slot map, each master asked PING.  No rows without a cluster URL.
CREATE FUNCTION cache_redis_nodes(OUT address text, OUT role text,
                                  OUT master text, OUT slots integer,
                                  OUT online boolean, OUT used text,
                                  OUT ping_ms double precision, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_redis_nodes'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_redis_nodes() IS
'Redis Cluster nodes: address, master or replica, a replica''s master, slots served, online (the map says so and a master answered PING), how this session uses it (home: the database''s generations; side: entries; down: failed recently, its entries bypassed), PING time, and why PING failed';

-- (end of Redis Cluster)
