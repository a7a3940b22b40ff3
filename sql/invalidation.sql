-- Tracking: cache_track installs triggers, writes bump generations at
-- commit, and the next read is a MISS with the new data.
CREATE TABLE inv_t (id int PRIMARY KEY, v int);
INSERT INTO inv_t SELECT g, g FROM generate_series(1, 10) g;

-- untracked: cached under the TTL only, and said so
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
SELECT cache_track('inv_t');
SELECT cache_track('inv_t');	-- idempotent
SELECT relation, kind, tracked_as, triggers, covered, problem FROM cache_tracked;
-- tracking bumped the table's generation: the old entry is stale
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
UPDATE inv_t SET v = v + 1 WHERE id = 1;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();

-- own writes bypass; a rolled-back transaction changes nothing
BEGIN;
INSERT INTO inv_t VALUES (11, 100);
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
ROLLBACK;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();

-- a rolled-back savepoint bumps nothing; a released one does
BEGIN;
SAVEPOINT a;
DELETE FROM inv_t WHERE id = 2;
ROLLBACK TO SAVEPOINT a;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
COMMIT;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
BEGIN;
SAVEPOINT b;
DELETE FROM inv_t WHERE id = 2;
RELEASE SAVEPOINT b;
COMMIT;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();

-- reads of other tables in a writing transaction still use the cache
CREATE TABLE inv_other (x int);
SELECT cache_track('inv_other');
INSERT INTO inv_other VALUES (1);
SELECT * FROM cached_query('SELECT count(*) FROM inv_other') AS t(n bigint);
BEGIN;
UPDATE inv_t SET v = v WHERE id = 3;
SELECT * FROM cached_query('SELECT count(*) FROM inv_other') AS t(n bigint);
SELECT cache_status();
COMMIT;

-- REPEATABLE READ and SERIALIZABLE bypass
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
COMMIT;

-- views expand to their tables; a view cannot be tracked
CREATE VIEW inv_v AS SELECT id, v FROM inv_t WHERE v > 5;
SELECT * FROM cached_query('SELECT count(*) FROM inv_v') AS t(n bigint);
SELECT * FROM cached_query('SELECT count(*) FROM inv_v') AS t(n bigint);
SELECT cache_status();
UPDATE inv_t SET v = 0 WHERE id = 10;
SELECT * FROM cached_query('SELECT count(*) FROM inv_v') AS t(n bigint);
SELECT cache_status();
SELECT cache_track('inv_v');

-- TRUNCATE and ALTER TABLE invalidate
SELECT * FROM cached_query('SELECT count(*) FROM inv_other') AS t(n bigint);
TRUNCATE inv_other;
SELECT * FROM cached_query('SELECT count(*) FROM inv_other') AS t(n bigint);
SELECT cache_status();
INSERT INTO inv_other VALUES (5);
SELECT * FROM cached_query('SELECT sum(x) FROM inv_other') AS t(n bigint);
-- same type, same query tree, new data
ALTER TABLE inv_other ALTER COLUMN x TYPE int USING x * 10;
SELECT * FROM cached_query('SELECT sum(x) FROM inv_other') AS t(n bigint);
SELECT cache_status();

-- a disabled tracking trigger makes the table untracked
ALTER TABLE inv_other DISABLE TRIGGER cache_ext_truncate;
SELECT covered, problem FROM cache_tracked WHERE relation = 'inv_other'::regclass;
SELECT * FROM cached_query('SELECT count(*) FROM inv_other') AS t(n bigint);
SELECT cache_status();
SELECT cache_track('inv_other');	-- re-enables it
SELECT covered, problem FROM cache_tracked WHERE relation = 'inv_other'::regclass;

-- tags, cache_invalidate and cache_flush take effect at commit
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['report']), 'SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['report']), 'SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT cache_status();
SELECT cache_invalidate_tag('report');
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['report']), 'SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT cache_status();
BEGIN;
SELECT cache_invalidate_tag('report');
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['report']), 'SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT cache_status();
ROLLBACK;
SELECT * FROM cached_query_with(cache_opts(tags => ARRAY['report']), 'SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT cache_status();
SELECT cache_invalidate('inv_t');
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_flush();
SELECT * FROM cached_query('SELECT sum(v) FROM inv_t') AS t(s bigint);
SELECT cache_status();

-- user functions whose reads are unseen are TTL-only unless named
CREATE FUNCTION inv_fn() RETURNS bigint LANGUAGE plpgsql STABLE
AS $$ BEGIN RETURN (SELECT sum(v) FROM inv_t); END $$;
SELECT * FROM cached_query('SELECT inv_fn()') AS t(s bigint);
SELECT cache_status();
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['inv_t'::regclass]), 'SELECT inv_fn()') AS t(s bigint);
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['inv_t'::regclass]), 'SELECT inv_fn()') AS t(s bigint);
SELECT cache_status();
UPDATE inv_t SET v = v + 1000 WHERE id = 1;
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['inv_t'::regclass]), 'SELECT inv_fn()') AS t(s bigint);
SELECT cache_status();

-- cache_ext.untracked
CREATE TABLE inv_plain (x int);
SET cache_ext.untracked = bypass;
SELECT * FROM cached_query('SELECT count(*) FROM inv_plain') AS t(n bigint);
SELECT cache_status();
SET cache_ext.untracked = error;
SELECT * FROM cached_query('SELECT count(*) FROM inv_plain') AS t(n bigint);
SELECT * FROM cached_query('SELECT inv_fn()') AS t(s bigint);
-- tracked tables are unaffected
SELECT * FROM cached_query('SELECT count(*) FROM inv_t') AS t(n bigint);
SET cache_ext.untracked = nonsense;
RESET cache_ext.untracked;

-- errors
SELECT cache_track('inv_missing');
CREATE TEMP TABLE inv_temp (x int);
SELECT cache_track('inv_temp');
CREATE SEQUENCE inv_seq;
SELECT cache_track('inv_seq');
CREATE TABLE inv_clash (x int);
CREATE FUNCTION inv_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER cache_ext_stmt AFTER INSERT ON inv_clash FOR EACH STATEMENT EXECUTE FUNCTION inv_noop();
SELECT cache_track('inv_clash');
SELECT cache_invalidate_tag('');
SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY[NULL::regclass]), 'SELECT 1') AS t(x int);
SELECT cache_ext_trigger();
CREATE ROLE inv_nobody;
SET ROLE inv_nobody;
SELECT cache_track('inv_t');
SELECT cache_untrack('inv_t');
SELECT cache_invalidate('inv_t');
SELECT cache_flush();
SELECT cache_purge();
RESET ROLE;
GRANT UPDATE ON inv_t TO inv_nobody;
SET ROLE inv_nobody;
SELECT cache_invalidate('inv_t');	-- a writer may invalidate
RESET ROLE;

-- a cached_query inside the very statement that writes bypasses
BEGIN;
WITH ins AS (INSERT INTO inv_t VALUES (100, 1) RETURNING id)
SELECT r.n FROM (SELECT count(*) AS c FROM ins) x,
     LATERAL cached_query('SELECT count(*) FROM inv_t' || repeat(' ', 0 * x.c::int)) AS r(n bigint);
SELECT cache_status();
ROLLBACK;
SELECT * FROM cached_query('SELECT count(*) FROM inv_t') AS t(n bigint);

-- renaming an enum label changes what rows show: everything is invalidated
CREATE TYPE inv_mood AS ENUM ('sad', 'ok');
CREATE TABLE inv_ty (id int, m inv_mood);
INSERT INTO inv_ty VALUES (1, 'sad');
SELECT cache_track('inv_ty');
SELECT * FROM cached_query('SELECT m::text FROM inv_ty') AS t(m text);
SELECT * FROM cached_query('SELECT m::text FROM inv_ty') AS t(m text);
SELECT cache_status();
ALTER TYPE inv_mood RENAME VALUE 'sad' TO 'glum';
SELECT * FROM cached_query('SELECT m::text FROM inv_ty') AS t(m text);
SELECT cache_status();

-- untracking: results become TTL-only again
SELECT cache_untrack('inv_t');
SELECT count(*) FROM cache_tracked WHERE relation = 'inv_t'::regclass;
SELECT * FROM cached_query('SELECT count(*) FROM inv_t') AS t(n bigint);
SELECT cache_status();
SELECT cache_purge() > 0 AS purged;
SELECT cache_purge();
