/* cache_ext 0.1: install script (0.2 is this plus cache_ext--0.1--0.2.sql) */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION cache_ext" to load this file. \quit

-- Per-call options: cache_opts(ttl => '10 min', namespace => 'reports')
CREATE TYPE cache_options AS (
    ttl interval,
    tags text[],
    namespace text
);

CREATE FUNCTION cache_opts(ttl interval DEFAULT NULL,
                           tags text[] DEFAULT NULL,
                           namespace text DEFAULT NULL)
RETURNS cache_options
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ROW(ttl, tags, namespace)::@extschema@.cache_options $$;

COMMENT ON FUNCTION cache_opts(interval, text[], text) IS
'options for one cached_query_with() call: ttl, tags, namespace';

CREATE FUNCTION cached_query(query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cached_query'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query(query text, VARIADIC params "any")
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cached_query'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cached_query(text) IS
'run a read-only query through the Redis cache; needs a column definition list';

CREATE FUNCTION cached_query_with(options cache_options, query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cached_query_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query_with(options cache_options, query text,
                                  VARIADIC params "any")
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cached_query_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query_json(query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cached_query_json'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query_json(query text, VARIADIC params "any")
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cached_query_json'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query_json_with(options cache_options, query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cached_query_json_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cached_query_json_with(options cache_options, query text,
                                       VARIADIC params "any")
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cached_query_json_with'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cache_status()
RETURNS text
AS 'MODULE_PATHNAME', 'cache_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_status() IS
'HIT, MISS or BYPASS (with the reason) for the last cached_query call of this session';

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
    OUT stats_reset timestamptz,
    OUT server_wide boolean
)
RETURNS record
AS 'MODULE_PATHNAME', 'cache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW cache_stats AS SELECT * FROM cache_stats();

CREATE FUNCTION cache_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'cache_stats_reset'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- resetting is for administrators; reading counters reveals no data
REVOKE ALL ON FUNCTION cache_stats_reset() FROM PUBLIC;

CREATE FUNCTION cache_explain(query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_explain'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION cache_explain(query text, VARIADIC params "any")
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cache_explain'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION cache_explain(text) IS
'what cached_query would do with this query, without running it: key, dependencies, verdict and reasons, entry state';
