-- Statements that change what a cached result would be, without changing
-- a tracked table's rows, bump a generation (issue 10, breaks 6, 14 and
-- "privilege-sensitive DDL"): GRANT/REVOKE on objects and ALTER DOMAIN,
-- ALTER TEXT SEARCH, ALTER COLLATION bump the database's generation; role
-- changes the server's; VACUUM FULL and CLUSTER the tables they rewrite.
-- Each: a result is cached (HIT), the statement runs, the next call is a
-- MISS with the direct result, never a stale HIT.
CREATE TABLE ddl_t (id int PRIMARY KEY, v int);
INSERT INTO ddl_t SELECT g, g FROM generate_series(1, 10) g;
SELECT cache_track('ddl_t');
\set probe 'SELECT n, cache_status() FROM cached_query(''SELECT count(*) FROM ddl_t'') AS t(n bigint)'
:probe;
:probe;

-- GRANT and REVOKE on objects: the database's generation
GRANT SELECT ON ddl_t TO PUBLIC;
:probe;
:probe;
REVOKE SELECT ON ddl_t FROM PUBLIC;
:probe;
CREATE FUNCTION ddl_f() RETURNS int LANGUAGE sql AS 'SELECT 1';
:probe;
REVOKE EXECUTE ON FUNCTION ddl_f() FROM PUBLIC;
:probe;
:probe;

-- roles: the server's generation (shared catalogs, every database)
CREATE ROLE ce_ddl_grp;	-- no membership: nothing to invalidate
:probe;
CREATE ROLE ce_ddl_user IN ROLE ce_ddl_grp;
:probe;
:probe;
ALTER ROLE ce_ddl_user PASSWORD 'secret' CONNECTION LIMIT 5;	-- changes no result
:probe;
ALTER GROUP ce_ddl_grp DROP USER ce_ddl_user;
:probe;
:probe;
GRANT ce_ddl_grp TO ce_ddl_user;
:probe;
:probe;
REVOKE ce_ddl_grp FROM ce_ddl_user;
:probe;
:probe;
ALTER ROLE ce_ddl_user BYPASSRLS;
:probe;
:probe;
ALTER ROLE ce_ddl_user RENAME TO ce_ddl_user2;
:probe;
:probe;
DROP ROLE ce_ddl_user2;
:probe;
:probe;

-- break 6: a policy that asks pg_has_role; REVOKE of the membership is
-- seen by the next call (never the rows the role could read before)
CREATE ROLE ce_ddl_member;
GRANT ce_ddl_grp TO ce_ddl_member;
CREATE TABLE ddl_rls (id int, secret text);
INSERT INTO ddl_rls VALUES (1, 'a'), (2, 'b'), (3, 'c');
ALTER TABLE ddl_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY ddl_rls_grp ON ddl_rls
    USING (pg_has_role(current_user, 'ce_ddl_grp', 'member'));
GRANT SELECT ON ddl_rls TO ce_ddl_member;
SELECT cache_track('ddl_rls');
SET ROLE ce_ddl_member;
SELECT * FROM cached_query('SELECT count(*) FROM ddl_rls') AS t(n bigint);
SELECT * FROM cached_query('SELECT count(*) FROM ddl_rls') AS t(n bigint);
RESET ROLE;
REVOKE ce_ddl_grp FROM ce_ddl_member;
SET ROLE ce_ddl_member;
SELECT count(*) FROM ddl_rls;	-- directly
SELECT n, cache_status() LIKE 'HIT%' AS stale_hit
  FROM cached_query('SELECT count(*) FROM ddl_rls') AS t(n bigint);
RESET ROLE;

-- ALTER DOMAIN: constraints, NOT NULL, defaults
CREATE DOMAIN ddl_dom AS int;
:probe;
:probe;
ALTER DOMAIN ddl_dom ADD CONSTRAINT ddl_dom_pos CHECK (VALUE > 0);
:probe;
:probe;
ALTER DOMAIN ddl_dom DROP CONSTRAINT ddl_dom_pos;
:probe;
:probe;
ALTER DOMAIN ddl_dom SET NOT NULL;
:probe;
:probe;
ALTER DOMAIN ddl_dom DROP NOT NULL;
:probe;
:probe;
ALTER DOMAIN ddl_dom SET DEFAULT 7;
:probe;
:probe;

-- text search configurations and dictionaries
CREATE TEXT SEARCH DICTIONARY ddl_dict (TEMPLATE = simple);
CREATE TEXT SEARCH CONFIGURATION ddl_cfg (COPY = simple);
:probe;
:probe;
ALTER TEXT SEARCH CONFIGURATION ddl_cfg ALTER MAPPING FOR asciiword WITH ddl_dict;
:probe;
:probe;
ALTER TEXT SEARCH DICTIONARY ddl_dict (StopWords = english);
:probe;
:probe;

-- collations
CREATE COLLATION ddl_coll FROM "C";
:probe;
:probe;
ALTER COLLATION ddl_coll REFRESH VERSION;
:probe;
:probe;

-- break 14: VACUUM FULL and CLUSTER move rows (ctid)
\set ctid_probe 'SELECT c, cache_status() FROM cached_query(''SELECT max(ctid::text) FROM ddl_t'') AS t(c text)'
DELETE FROM ddl_t WHERE id <= 5;
:ctid_probe;
:ctid_probe;
VACUUM ddl_t;	-- moves no live row: still a HIT
:ctid_probe;
VACUUM FULL ddl_t;
SELECT max(ctid::text) FROM ddl_t;	-- directly
:ctid_probe;
:ctid_probe;
UPDATE ddl_t SET v = v + 1 WHERE id = 6;
:ctid_probe;
:ctid_probe;
CLUSTER ddl_t USING ddl_t_pkey;
SELECT max(ctid::text) FROM ddl_t;	-- directly
:ctid_probe;
:ctid_probe;
-- CLUSTER without a table (every table clustered before): the database
CLUSTER;
:ctid_probe;
:probe;

DROP TABLE ddl_t, ddl_rls;
DROP FUNCTION ddl_f();
DROP DOMAIN ddl_dom;
DROP TEXT SEARCH CONFIGURATION ddl_cfg;
DROP TEXT SEARCH DICTIONARY ddl_dict;
DROP COLLATION ddl_coll;
DROP ROLE ce_ddl_member;
DROP ROLE ce_ddl_grp;
