-- Tracking never breaks a user's DDL, and counts as covered only what
-- really fires (issue 10, breaks 21 and 27, and hand-made triggers).
\set tracked 'SELECT relation, kind, tracked_as, key_columns, triggers, covered, problem FROM cache_tracked WHERE relation::text LIKE ''cov\\_%'' ORDER BY relation::text'

-- break 27: anyone may read cache_tracked
CREATE ROLE ce_cov_plain;
SET ROLE ce_cov_plain;
SELECT count(*) >= 0 AS readable FROM cache_tracked;
RESET ROLE;
DROP ROLE ce_cov_plain;

-- break 21: ATTACH PARTITION of a tracked partitioned table onto a tracked
-- partitioned table (both have their own cache_ext_row)
CREATE TABLE cov_p (id int, k int, v int) PARTITION BY RANGE (id);
CREATE TABLE cov_p1 PARTITION OF cov_p FOR VALUES FROM (0) TO (100);
SELECT cache_track('cov_p', key_columns => ARRAY['k']);
CREATE TABLE cov_q (id int, k int, v int) PARTITION BY RANGE (id);
CREATE TABLE cov_q1 PARTITION OF cov_q FOR VALUES FROM (100) TO (150);
CREATE TABLE cov_q2 PARTITION OF cov_q FOR VALUES FROM (150) TO (200);
SELECT cache_track('cov_q', key_columns => ARRAY['v']);
INSERT INTO cov_p VALUES (1, 1, 1);
INSERT INTO cov_q VALUES (120, 2, 2), (160, 3, 3);
ALTER TABLE cov_p ATTACH PARTITION cov_q FOR VALUES FROM (100) TO (200);
-- covered: the parent's clone replaced cov_q's own row trigger, and cov_p
-- (with its key column) stands for the whole tree
:tracked;
\set probe 'SELECT n, cache_status() FROM cached_query(''SELECT count(*) FROM cov_p'') AS t(n bigint)'
:probe;
:probe;
INSERT INTO cov_q1 VALUES (130, 4, 4);
:probe;
:probe;
-- a tracked plain table attached to a tracked partitioned table
CREATE TABLE cov_r (id int, k int, v int);
SELECT cache_track('cov_r');
INSERT INTO cov_r VALUES (250, 5, 5);
ALTER TABLE cov_p ATTACH PARTITION cov_r FOR VALUES FROM (200) TO (300);
:tracked;
:probe;
:probe;
UPDATE cov_r SET v = 6;
DELETE FROM cov_r;
:probe;
-- DETACH and ATTACH again
ALTER TABLE cov_p DETACH PARTITION cov_q;
ALTER TABLE cov_p ATTACH PARTITION cov_q FOR VALUES FROM (100) TO (200);
SELECT relation, covered FROM cache_tracked WHERE relation::text LIKE 'cov\_q%' ORDER BY 1;
-- tracking the parent again, and a tracked sub-partition under a new partition
SELECT cache_track('cov_p', key_columns => ARRAY['k']);
CREATE TABLE cov_s (id int, k int, v int) PARTITION BY RANGE (id);
CREATE TABLE cov_s1 (id int, k int, v int) PARTITION BY RANGE (id);
CREATE TABLE cov_s1a PARTITION OF cov_s1 FOR VALUES FROM (300) TO (350);
SELECT cache_track('cov_s1');
ALTER TABLE cov_s ATTACH PARTITION cov_s1 FOR VALUES FROM (300) TO (400);
ALTER TABLE cov_p ATTACH PARTITION cov_s FOR VALUES FROM (300) TO (400);
SELECT relation, tracked_as, key_columns, covered FROM cache_tracked
 WHERE relation::text LIKE 'cov\_s%' ORDER BY 1;

-- inheritance: a tracked child inheriting from a tracked parent
CREATE TABLE cov_i (id int, v int);
CREATE TABLE cov_ic (id int, v int);
SELECT cache_track('cov_i');
SELECT cache_track('cov_ic');
ALTER TABLE cov_ic INHERIT cov_i;
SELECT relation, kind, tracked_as, covered FROM cache_tracked
 WHERE relation::text LIKE 'cov\_i%' ORDER BY 1;
\set iprobe 'SELECT n, cache_status() FROM cached_query(''SELECT count(*) FROM cov_i'') AS t(n bigint)'
:iprobe;
:iprobe;
INSERT INTO cov_ic VALUES (1, 1);
:iprobe;

-- a name cache_ext needs taken by a trigger of the user's: the DDL still
-- succeeds (with a warning), and the table is reported as not covered
CREATE TABLE cov_u (id int, k int, v int);
CREATE FUNCTION cov_noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER cache_ext_truncate AFTER TRUNCATE ON cov_u
    FOR EACH STATEMENT EXECUTE FUNCTION cov_noop();
ALTER TABLE cov_p ATTACH PARTITION cov_u FOR VALUES FROM (400) TO (500);
SELECT relation, covered, problem FROM cache_tracked WHERE relation = 'cov_u'::regclass;
SELECT count(*) AS attached FROM pg_inherits WHERE inhrelid = 'cov_u'::regclass;

-- hand-made triggers on the extension's function count only when they fire
-- on every row or statement
CREATE TABLE cov_w (id int, v int);
SELECT cache_track('cov_w');
SELECT covered, problem FROM cache_tracked WHERE relation = 'cov_w'::regclass;
DROP TRIGGER cache_ext_stmt ON cov_w;
CREATE TRIGGER cache_ext_stmt AFTER INSERT OR UPDATE OR DELETE ON cov_w
    FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION cache_ext_trigger();
SELECT covered, problem FROM cache_tracked WHERE relation = 'cov_w'::regclass;
SELECT * FROM cached_query('SELECT count(*) FROM cov_w') AS t(n bigint);
SELECT cache_status();
-- tracking again replaces it with one that always fires
SELECT cache_track('cov_w');
SELECT covered, problem FROM cache_tracked WHERE relation = 'cov_w'::regclass;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'cov_w'::regclass AND tgqual IS NOT NULL;
-- UPDATE OF a column list
DROP TRIGGER cache_ext_stmt ON cov_w;
CREATE TRIGGER cache_ext_stmt AFTER INSERT OR UPDATE OF v OR DELETE ON cov_w
    FOR EACH STATEMENT EXECUTE FUNCTION cache_ext_trigger();
SELECT covered, problem FROM cache_tracked WHERE relation = 'cov_w'::regclass;
SELECT cache_track('cov_w');
-- a row-level one with WHEN on a partitioned table
CREATE TABLE cov_x (id int, v int) PARTITION BY LIST (id);
CREATE TABLE cov_x1 PARTITION OF cov_x FOR VALUES IN (1);
SELECT cache_track('cov_x');
DROP TRIGGER cache_ext_row ON cov_x;
CREATE TRIGGER cache_ext_row AFTER INSERT OR UPDATE OR DELETE ON cov_x
    FOR EACH ROW WHEN (false) EXECUTE FUNCTION cache_ext_trigger();
SELECT relation, covered, problem FROM cache_tracked
 WHERE relation::text LIKE 'cov\_x%' ORDER BY 1;

DROP TABLE cov_p, cov_i, cov_ic, cov_w, cov_x;
DROP FUNCTION cov_noop();
