-- The keyed settings follow every change within one session: the backend
-- keeps the settings' digest from call to call and recomputes it only when
-- a value differs, so each kind of setting (string, integer, enum, bool,
-- real) is changed here and set back, in one session.
\set q 'SELECT 1'
SELECT cache_explain(:'q')->>'key' AS k0 \gset
SET DateStyle = 'SQL, DMY';
SELECT cache_explain(:'q')->>'key' <> :'k0' AS datestyle_changes_key;
RESET DateStyle;
SELECT cache_explain(:'q')->>'key' = :'k0' AS back_again;
SET extra_float_digits = 2;
SELECT cache_explain(:'q')->>'key' <> :'k0' AS int_changes_key;
RESET extra_float_digits;
SET bytea_output = 'escape';
SELECT cache_explain(:'q')->>'key' <> :'k0' AS enum_changes_key;
RESET bytea_output;
SET enable_seqscan = off;
SELECT cache_explain(:'q')->>'key' <> :'k0' AS bool_changes_key;
RESET enable_seqscan;
SET cpu_tuple_cost = 0.02;
SELECT cache_explain(:'q')->>'key' <> :'k0' AS real_changes_key;
RESET cpu_tuple_cost;
BEGIN;
SET LOCAL TimeZone = 'UTC+3';
SELECT cache_explain(:'q')->>'key' <> :'k0' AS set_local_changes_key;
ROLLBACK;
SELECT cache_explain(:'q')->>'key' = :'k0' AS back_after_rollback;
SET search_path = pg_catalog, public;
SELECT cache_explain(:'q')->>'key' <> :'k0' AS search_path_changes_key;
RESET search_path;
SELECT cache_explain(:'q')->>'key' = :'k0' AS back_at_the_end;

-- A result that depends on a setting is never served under another value
-- of it in the same session, and is served again when the value returns.
\set d 'SELECT d::text FROM (VALUES (date ''2024-03-04'')) v(d)'
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT cache_status() LIKE 'HIT%' AS hit;
SET DateStyle = 'SQL, DMY';
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT cache_status() LIKE 'MISS%' AS miss;
SET DateStyle = 'German';
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT cache_status() LIKE 'MISS%' AS miss;
RESET DateStyle;
SELECT * FROM cached_query(:'d') AS t(s text);
SELECT cache_status() LIKE 'HIT%' AS hit;
