-- A hit is served only to a role that could run the query itself.
CREATE TABLE priv_t (id int, secret text);
INSERT INTO priv_t VALUES (1, 'classified');
CREATE FUNCTION priv_fn() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN 'top secret'; END $$;
CREATE ROLE priv_reader;
GRANT SELECT (id) ON priv_t TO priv_reader;
REVOKE EXECUTE ON FUNCTION priv_fn() FROM PUBLIC;

-- the owner caches all three
SELECT * FROM cached_query('SELECT id, secret FROM priv_t') AS t(id int, secret text);
SELECT * FROM cached_query('SELECT id FROM priv_t') AS t(id int);
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT priv_fn()') AS t(s text);
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT priv_fn()') AS t(s text);
SELECT cache_status();

SET ROLE priv_reader;
\set VERBOSITY terse
-- a column it may not read, a function it may not execute: the executor's errors
SELECT * FROM cached_query('SELECT id, secret FROM priv_t') AS t(id int, secret text);
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT priv_fn()') AS t(s text);
-- what it may read is served
SELECT * FROM cached_query('SELECT id FROM priv_t') AS t(id int);
SELECT cache_status();
-- the statistics view is PUBLIC, as documented (0.6: it had never been granted)
SELECT count(*) FROM cache_stats;
RESET ROLE;
-- privileges revoked after the entry was stored
REVOKE SELECT (id) ON priv_t FROM priv_reader;
SET ROLE priv_reader;
SELECT * FROM cached_query('SELECT id FROM priv_t') AS t(id int);
RESET ROLE;
\set VERBOSITY default

-- read your own writes: a transaction that wrote bypasses the cache
SELECT * FROM cached_query('SELECT count(*) FROM priv_t') AS t(n bigint);
BEGIN;
INSERT INTO priv_t VALUES (2, 'new');
SELECT * FROM cached_query('SELECT count(*) FROM priv_t') AS t(n bigint);
SELECT cache_status();
ROLLBACK;

-- a new definition of a function or view is a new key
CREATE FUNCTION def_fn() RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN 1; END $$;
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT def_fn()') AS t(v int);
CREATE OR REPLACE FUNCTION def_fn() RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN 2; END $$;
SELECT * FROM cached_query_with(cache_opts(depends_on => '{}'), 'SELECT def_fn()') AS t(v int);
SELECT cache_status();
CREATE VIEW def_v AS SELECT 1 AS v;
SELECT * FROM cached_query('SELECT v FROM def_v') AS t(v int);
CREATE OR REPLACE VIEW def_v AS SELECT 2 AS v;
SELECT * FROM cached_query('SELECT v FROM def_v') AS t(v int);
SELECT cache_status();

-- the client encoding changes what send/receive functions produce
CREATE TABLE enc_t (doc jsonb, tags text[]);
INSERT INTO enc_t VALUES ('{"n": "café"}', '{crème}');
SELECT doc::text = '{"n": "café"}' AS same_doc, cache_status()
  FROM cached_query('SELECT doc, tags FROM enc_t') AS t(doc jsonb, tags text[]);
SET client_encoding = 'LATIN1';
SELECT doc = (SELECT doc FROM enc_t) AS same_doc, tags = (SELECT tags FROM enc_t) AS same_tags, cache_status()
  FROM cached_query('SELECT doc, tags FROM enc_t') AS t(doc jsonb, tags text[]);
SELECT doc = (SELECT doc FROM enc_t) AS same_doc, tags = (SELECT tags FROM enc_t) AS same_tags, cache_status()
  FROM cached_query('SELECT doc, tags FROM enc_t') AS t(doc jsonb, tags text[]);
RESET client_encoding;
SELECT doc::text = '{"n": "café"}' AS same_doc, cache_status()
  FROM cached_query('SELECT doc, tags FROM enc_t') AS t(doc jsonb, tags text[]);

DROP TABLE priv_t;
DROP ROLE priv_reader;
