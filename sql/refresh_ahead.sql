-- Refresh-ahead: a call stored with cache_ext.refresh_ahead on is
-- registered (the worker and its refreshes are TAP 312's); a call with
-- depends_on is not (its results are keyed to the session).  The worker's
-- settings are server-wide.
SET client_min_messages = warning;
CREATE TABLE refresh_t (v int);
INSERT INTO refresh_t SELECT generate_series(1, 10);
SELECT cache_track('refresh_t');
RESET client_min_messages;

SET cache_ext.refresh_ahead = on;
SELECT * FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM refresh_t WHERE v > $1', 2)
  AS t(s bigint);
SELECT cache_status();
SELECT * FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM refresh_t WHERE v > $1', 2)
  AS t(s bigint);
SELECT cache_status();
SELECT registered_now, registered, refused, failed,
       dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS this_db
  FROM cache_refresh_stats();
-- (0.9) per database: this one's entry, hit and due soon (a 4 s TTL):
-- the hit started this database's worker, so it does not wait for one
SELECT registered, due_soon, waiting,
       dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS this_db
  FROM cache_refresh_workers();
SELECT * FROM cached_query_with(cache_opts(ttl => '4 s', depends_on => ARRAY['refresh_t'::regclass]),
                                'SELECT count(*) AS n FROM refresh_t') AS t(n bigint);
SELECT cache_status();
SELECT registered_now, registered, refused FROM cache_refresh_stats();
RESET cache_ext.refresh_ahead;

-- server-wide settings
SET cache_ext.refresh_budget = 0.5;
SET cache_ext.refresh_max_per_pass = 4;
SET cache_ext.refresh_max_workers = 4;
SHOW cache_ext.refresh_budget;
SHOW cache_ext.refresh_max_per_pass;
SHOW cache_ext.refresh_max_workers;
SET cache_ext.refresh_ahead = maybe;

DROP TABLE refresh_t;
