-- Per-table TTL policies (docs/rules.md, "Policies per table"): results
-- that read a table get at most its policy's TTL, the smallest over the
-- tables they read.  cache_ext.default_ttl is 300 s here.
CREATE TABLE pol_a (id int PRIMARY KEY, v int NOT NULL);
CREATE TABLE pol_b (id int PRIMARY KEY, w int NOT NULL);
INSERT INTO pol_a SELECT g, g FROM generate_series(1, 10) g;
INSERT INTO pol_b SELECT g, g * 2 FROM generate_series(1, 10) g;
SELECT cache_track('pol_a');
SELECT cache_track('pol_b');
-- errors as SQLSTATE: message
CREATE FUNCTION pol_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a call's TTL, the policy that capped it, the rule that would serve it
CREATE FUNCTION pol_ttl(q text, OUT ttl jsonb, OUT policy jsonb, OUT rule jsonb)
LANGUAGE sql AS $$
    SELECT e->'ttl_seconds', e->'ttl_policy', e->'rule' FROM cache_explain(q) e
$$;

-- ---- the API ---------------------------------------------------------------
SELECT cache_policy('pol_a', ttl => '2 min');
SELECT cache_policy('pol_b', '5 min');
SELECT relation, ttl, owner::text = current_user AS mine FROM cache_policies ORDER BY relation::text;
-- setting it again replaces it
SELECT cache_policy('pol_b', '1 min');
SELECT relation, ttl FROM cache_policies ORDER BY relation::text;

SELECT pol_err($$SELECT cache_policy(NULL, '1 min')$$);
SELECT pol_err($$SELECT cache_policy('pol_a', '-1 min')$$);
SELECT pol_err($$SELECT cache_policy('pol_a', '0')$$);
SELECT pol_err($$SELECT cache_policy('pol_a', '400 days')$$);
SELECT pol_err($$SELECT cache_policy('pol_nosuch', '1 min')$$);
SELECT pol_err($$SELECT cache_policy(4000000000::oid::regclass, '1 min')$$);
CREATE VIEW pol_v AS SELECT id, v FROM pol_a;
SELECT pol_err($$SELECT cache_policy('pol_v', '1 min')$$);
CREATE SEQUENCE pol_seq;
SELECT pol_err($$SELECT cache_policy('pol_seq', '1 min')$$);
CREATE TEMP TABLE pol_tmp (x int);
SELECT pol_err($$SELECT cache_policy('pol_tmp', '1 min')$$);
SELECT pol_err($$SELECT cache_policy('pg_class', '1 min')$$);
-- only the owner: privileges on the table are not enough
CREATE ROLE regress_pol_other;
GRANT SELECT, INSERT, UPDATE, DELETE ON pol_a TO regress_pol_other;
SET ROLE regress_pol_other;
SELECT pol_err($$SELECT cache_policy('pol_a', '1 min')$$);
SELECT pol_err($$SELECT cache_policy('pol_a', NULL)$$);
SELECT pol_err($$DELETE FROM cache_ext_policies$$);
-- every role sees the policies
SELECT relation, ttl FROM cache_policies ORDER BY relation::text;
RESET ROLE;
-- a member of the owning role may
CREATE ROLE regress_pol_owner;
CREATE TABLE pol_c (x int);
ALTER TABLE pol_c OWNER TO regress_pol_owner;
GRANT regress_pol_owner TO regress_pol_other;
SET ROLE regress_pol_other;
SELECT cache_policy('pol_c', '3 min');
RESET ROLE;
SELECT relation, ttl, owner FROM cache_policies WHERE relation = 'pol_c'::regclass;

-- ---- the smallest TTL over the tables a result reads ----------------------
-- a policy on a table the call does not read has no effect
SELECT * FROM pol_ttl('SELECT 1');
SELECT * FROM pol_ttl('SELECT sum(v) FROM pol_a');
SELECT * FROM pol_ttl('SELECT sum(w) FROM pol_b');
SELECT * FROM pol_ttl('SELECT sum(v + w) FROM pol_a JOIN pol_b USING (id)');
-- through a view: the tables it reads
SELECT * FROM pol_ttl('SELECT sum(v) FROM pol_v');
-- a call's own TTL below the policy's stays
SELECT e->'ttl_seconds' AS ttl, e->'ttl_policy' AS policy
  FROM cache_explain_with(cache_opts(ttl => '30 s'), 'SELECT sum(v) FROM pol_a') e;
-- the policy set by a member of the owning role applies; removed, it does not
SELECT * FROM pol_ttl('SELECT count(*) FROM pol_c');
SELECT cache_policy('pol_c', NULL);
SELECT count(*) FROM cache_policies WHERE relation = 'pol_c'::regclass;
SELECT * FROM pol_ttl('SELECT count(*) FROM pol_c');

-- a partitioned table's policy covers a partition read directly
CREATE TABLE pol_p (k int, x int) PARTITION BY RANGE (k);
CREATE TABLE pol_p1 PARTITION OF pol_p FOR VALUES FROM (0) TO (100);
CREATE TABLE pol_p2 PARTITION OF pol_p FOR VALUES FROM (100) TO (200);
SELECT cache_policy('pol_p', '45 s');
SELECT * FROM pol_ttl('SELECT count(*) FROM pol_p');
SELECT * FROM pol_ttl('SELECT count(*) FROM pol_p2');
SELECT cache_policy('pol_p2', '40 s');
SELECT * FROM pol_ttl('SELECT count(*) FROM pol_p');

-- ---- entries are stored with the effective TTL ----------------------------
SELECT * FROM cached_query('SELECT sum(v) FROM pol_a') AS t(s bigint);
SELECT cache_status();
SELECT (e->'entry'->>'ttl_ms')::bigint BETWEEN 100000 AND 120000 AS capped_in_redis
  FROM cache_explain('SELECT sum(v) FROM pol_a') e;
SELECT * FROM cached_query('SELECT sum(v) FROM pol_a') AS t(s bigint);
SELECT cache_status();
-- a raised policy keeps what is stored; a lowered one invalidates it
SELECT cache_policy('pol_a', '4 min');
SELECT * FROM cached_query('SELECT sum(v) FROM pol_a') AS t(s bigint);
SELECT cache_status();
SELECT cache_policy('pol_a', '90 s');
SELECT * FROM cached_query('SELECT sum(v) FROM pol_a') AS t(s bigint);
SELECT cache_status();
SELECT (e->'entry'->>'ttl_ms')::bigint BETWEEN 70000 AND 90000 AS capped_in_redis
  FROM cache_explain('SELECT sum(v) FROM pol_a') e;
-- the jsonb form and warming get it too
SELECT cached_query_json('SELECT sum(w) FROM pol_b');
SELECT (e->'entry'->>'ttl_ms')::bigint BETWEEN 40000 AND 60000 AS capped_in_redis
  FROM cache_explain('SELECT sum(w) FROM pol_b') e;
SELECT cache_warm('SELECT max(w) FROM pol_b');
SELECT (e->'entry'->>'ttl_ms')::bigint BETWEEN 40000 AND 60000 AS capped_in_redis
  FROM cache_explain('SELECT max(w) FROM pol_b') e;

-- ---- a statement served under a cache rule --------------------------------
SELECT cache_rule_create('SELECT id, v FROM pol_a WHERE id = 3', ttl => '10 min', name => 'pol_rule');
-- cache_explain names the rule and explains the statement as it serves it
SELECT * FROM pol_ttl('SELECT id, v FROM pol_a WHERE id = 7');
SELECT * FROM pol_ttl('SELECT id, v FROM pol_a WHERE id = 7 ORDER BY 1');
SELECT id, v FROM pol_a WHERE id = 7;
SELECT cache_status();
SELECT id, v FROM pol_a WHERE id = 7;
SELECT cache_status();
SELECT (e->'entry'->>'ttl_ms')::bigint BETWEEN 70000 AND 90000 AS capped_in_redis
  FROM cache_explain('SELECT id, v FROM pol_a WHERE id = 7') e;
-- without the policy the rule's own TTL
SELECT cache_policy('pol_a', NULL);
SELECT * FROM pol_ttl('SELECT id, v FROM pol_a WHERE id = 7');
SELECT cache_rule_drop('pol_rule');
SELECT * FROM pol_ttl('SELECT id, v FROM pol_a WHERE id = 7');

-- ---- dropped relations take their policy with them ------------------------
CREATE TABLE pol_d (x int);
CREATE SCHEMA pol_s;
CREATE TABLE pol_s.t (x int);
SELECT cache_policy('pol_d', '1 min'), cache_policy('pol_s.t', '1 min');
SELECT count(*) FROM cache_ext_policies;
DROP TABLE pol_d;
SET client_min_messages = warning;
DROP SCHEMA pol_s CASCADE;
RESET client_min_messages;
SELECT count(*) FROM cache_ext_policies;
-- drops of other objects keep them (and never fail: ALTER DOMAIN runs the
-- event trigger with its invalidations unprocessed)
CREATE DOMAIN pol_dom int CONSTRAINT pol_dom_pos CHECK (VALUE > 0);
ALTER DOMAIN pol_dom DROP CONSTRAINT pol_dom_pos;
DROP DOMAIN pol_dom;
ALTER TABLE pol_b ADD CONSTRAINT pol_b_pos CHECK (w > 0);
ALTER TABLE pol_b DROP CONSTRAINT pol_b_pos;
ALTER TABLE pol_b DROP CONSTRAINT pol_b_pkey;
SELECT count(*) FROM cache_ext_policies;
-- and so do the partitions of a dropped partitioned table
DROP TABLE pol_p;
SELECT relation, ttl FROM cache_policies ORDER BY relation::text;

-- ---- dump and restore -----------------------------------------------------
-- pg_dump dumps the table's rows (pg_extension_config_dump), and writes a
-- relation by its qualified name (search_path is empty), which a restore
-- resolves to the new OID
SELECT 'cache_ext_policies'::regclass::oid = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'cache_ext';
SET search_path = '';
SELECT rel::text AS as_dumped FROM public.cache_ext_policies ORDER BY 1;
RESET search_path;

-- ---- clean up ---------------------------------------------------------------
SELECT cache_policy('pol_b', NULL);
SELECT count(*) FROM cache_ext_policies;
DROP TABLE pol_c;
DROP ROLE regress_pol_owner;
REVOKE ALL ON pol_a FROM regress_pol_other;
DROP ROLE regress_pol_other;
DROP VIEW pol_v;
SELECT cache_untrack('pol_a');
SELECT cache_untrack('pol_b');
DROP TABLE pol_a, pol_b;
DROP SEQUENCE pol_seq;
DROP FUNCTION pol_err(text);
DROP FUNCTION pol_ttl(text);
