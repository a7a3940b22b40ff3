-- ALTER EXTENSION UPDATE from 0.1 keeps working objects and adds 0.2's to 0.10's.
-- (earlier tests left tracked tables: their triggers go too)
SET client_min_messages = warning;
DROP EXTENSION cache_ext CASCADE;
RESET client_min_messages;
CREATE EXTENSION cache_ext VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'cache_ext';
SELECT cache_opts(ttl => '1 min');
ALTER EXTENSION cache_ext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cache_ext';
SELECT cache_opts(ttl => '1 min', depends_on => ARRAY['pg_class'::regclass]);
CREATE TABLE upg_t (x int);
SELECT cache_track('upg_t');
SELECT relation, covered FROM cache_tracked;
SELECT * FROM cached_query('SELECT count(*) FROM upg_t') AS t(n bigint);
SELECT * FROM cached_query('SELECT count(*) FROM upg_t') AS t(n bigint);
SELECT cache_status();
SELECT hits >= 1 AS counted FROM cache_stats;
-- tracked tables hold the extension; CASCADE drops the triggers, not the tables
DROP EXTENSION cache_ext;
DROP EXTENSION cache_ext CASCADE;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'upg_t'::regclass;
CREATE EXTENSION cache_ext;
DROP TABLE upg_t;
