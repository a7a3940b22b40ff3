-- Cache rules: statements sent as plain SQL are served through the cache
-- as cached_query would serve them (docs/rules.md).
CREATE TABLE rules_t (id int PRIMARY KEY, region int NOT NULL, amount numeric NOT NULL, secret text);
INSERT INTO rules_t SELECT g, g % 10, g * 1.5, 's' || g FROM generate_series(1, 1000) g;
SELECT cache_track('rules_t');
-- errors as SQLSTATE: message
CREATE FUNCTION rules_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- ---- the API ---------------------------------------------------------------
SELECT cache_rule_create('SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region',
                         name => 'by_region');
SELECT cache_rule_create('SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id', ttl => '10 min',
                         tags => ARRAY['rules_tag'], name => 'first_ids');
-- the default name holds the query id
SELECT cache_rule_create('SELECT amount FROM rules_t WHERE id = $1') ~ '^rule_[0-9a-f]{16}$' AS named;
SELECT regexp_replace(name, '^rule_[0-9a-f]{16}$', 'rule_<queryid>') AS name, shape, ttl, tags,
       owner::text = current_user AS mine, hits, misses, bypasses
  FROM cache_rules ORDER BY name;
-- which rule a statement would be served under
SELECT cache_rule_for('SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 42 GROUP BY region') AS constant,
       cache_rule_for('SELECT region, count(*), sum(amount) FROM rules_t WHERE region = $1 GROUP BY region') AS parameter,
       cache_rule_for('SELECT region, count(*) FROM rules_t WHERE region = 42 GROUP BY region') AS other_shape;
-- what cache_rule_create would say, without creating
SELECT verdict FROM cache_rule_verdict('SELECT id FROM rules_t WHERE id = $1');
SELECT verdict FROM cache_rule_verdict('SELECT random() FROM rules_t');
-- candidates come from pg_stat_statements, not installed here
SELECT rules_err($$SELECT * FROM cache_candidates()$$);
SELECT rules_err($$SELECT cache_rule_create(NULL)$$);
SELECT rules_err($$SELECT cache_rule_create('INSERT INTO rules_t VALUES (0, 0, 0)')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT 1; SELECT 2')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT random() FROM rules_t')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT * FROM rules_t FOR UPDATE')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT 1 FROM rules_nosuch')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 7', ttl => '0')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 7', name => '')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 7', name => 'by_region')$$);
SELECT rules_err($$SELECT cache_rule_create('SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 9 GROUP BY region')$$);
SELECT rules_err($$SELECT cache_rule_drop('rules_nosuch')$$);
SET compute_query_id = off;
SELECT rules_err($$SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 7')$$);
RESET compute_query_id;

-- ---- MISS, then HIT with the same rows -------------------------------------
SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
SELECT cache_status();
SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
SELECT cache_status();
-- other constants, same shape: an entry of their own
SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 4 GROUP BY region;
SELECT cache_status();
-- PREPARE / EXECUTE: served when the text parsed now is the query the
-- plan was made from (src/meaning.c); rows as the direct statement
PREPARE rules_q(int) AS SELECT region, count(*), sum(amount) FROM rules_t WHERE region = $1 GROUP BY region;
EXECUTE rules_q(5);
SELECT cache_status();
EXECUTE rules_q(5);
SELECT cache_status();
EXECUTE rules_q(6);
SELECT cache_status();
-- several statements in one query string: each is served when its text
-- parsed now is what was planned (the others were read before the
-- statements before them ran: review-rules RR2, and src/meaning.c)
SELECT 1 AS one \; SELECT region, count(*) FROM rules_t WHERE region = 3 GROUP BY region \; SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
SELECT cache_status();

-- ---- invalidation ----------------------------------------------------------
INSERT INTO rules_t VALUES (1001, 5, 100, 's1001');
EXECUTE rules_q(5);
SELECT cache_status();
EXECUTE rules_q(5);
SELECT cache_status();

-- ---- bypasses: own writes, isolation, FOR UPDATE, disabled --------------------
BEGIN;
INSERT INTO rules_t VALUES (1002, 5, 100, 's1002');
EXECUTE rules_q(5);
SELECT cache_status();
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
EXECUTE rules_q(5);
SELECT cache_status();
COMMIT;
SET cache_ext.enabled = off;
EXECUTE rules_q(5);
SELECT cache_status();
RESET cache_ext.enabled;

-- ---- NO SCROLL cursors are served (their rows are computed at DECLARE) -------
SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
SELECT cache_status();
-- psql's FETCH_COUNT: a NO SCROLL cursor read in batches
\set FETCH_COUNT 7
SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
\unset FETCH_COUNT
SELECT cache_status();
BEGIN;
DECLARE rules_c NO SCROLL CURSOR FOR SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
SELECT cache_status();
FETCH 4 FROM rules_c;
FETCH 4 FROM rules_c;
FETCH ALL FROM rules_c;
FETCH 1 FROM rules_c;
CLOSE rules_c;
SELECT hits AS hits_before FROM cache_rules WHERE name = 'first_ids' \gset
-- a cursor that may scroll (SCROLL, or by default when the plan can) or
-- be held runs its plan
DECLARE rules_s SCROLL CURSOR FOR SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
FETCH LAST FROM rules_s;
FETCH BACKWARD 2 FROM rules_s;
CLOSE rules_s;
DECLARE rules_d CURSOR FOR SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
FETCH 2 FROM rules_d;
CLOSE rules_d;
DECLARE rules_h NO SCROLL CURSOR WITH HOLD FOR SELECT id, amount FROM rules_t WHERE id < 20 ORDER BY id;
COMMIT;
FETCH 2 FROM rules_h;
CLOSE rules_h;
SELECT hits = :hits_before AS not_served FROM cache_rules WHERE name = 'first_ids';

-- ---- the statement's own text, wherever it sits ------------------------------
/* a comment first */ SELECT id, amount FROM rules_t WHERE id < 3 ORDER BY id;
SELECT cache_status();
PREPARE rules_p2(int) AS SELECT id, amount FROM rules_t WHERE id < $1 ORDER BY id \; EXECUTE rules_p2(3);
SELECT cache_status();
-- two cursors declared in one string: PostgreSQL does not locate their
-- queries, but each DECLARE is located: each cursor is served
BEGIN;
DECLARE rules_a NO SCROLL CURSOR FOR SELECT id, amount FROM rules_t WHERE id < 3 ORDER BY id \; DECLARE rules_b NO SCROLL CURSOR FOR SELECT id, amount FROM rules_t WHERE id < 5 ORDER BY id;
SELECT cache_status() NOT LIKE 'BYPASS:%' AS served;
FETCH ALL FROM rules_a;
FETCH ALL FROM rules_b;
COMMIT;

-- ---- EXPLAIN, COPY and functions run the plan -------------------------------
SELECT hits AS hits_before FROM cache_rules WHERE name = 'by_region' \gset
EXPLAIN (COSTS OFF) SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
COPY (SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region) TO STDOUT;
CREATE FUNCTION rules_fn() RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM rules_t WHERE region = 3 GROUP BY region $$;
SELECT rules_fn();
SELECT hits = :hits_before AS not_served FROM cache_rules WHERE name = 'by_region';

-- ---- privileges: the executor's own error, rule or not ----------------------
CREATE ROLE regress_rules_reader;
GRANT SELECT (id, region, amount) ON rules_t TO regress_rules_reader;
SELECT cache_rule_create('SELECT id, secret FROM rules_t WHERE id = 1', name => 'secret');
SELECT id, secret FROM rules_t WHERE id = 1;
SET ROLE regress_rules_reader;
SELECT rules_err($$SELECT id, secret FROM rules_t WHERE id = 1$$);
\set VERBOSITY terse
SELECT id, secret FROM rules_t WHERE id = 1;
\set VERBOSITY default
-- what it may read is served
SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
SELECT cache_status();
-- who may create or drop a rule: owners of what it reads, admins
SELECT rules_err($$SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 8')$$);
SELECT rules_err($$SELECT cache_rule_drop('by_region')$$);
SELECT count(*) AS rules_it_sees FROM cache_rules;
RESET ROLE;
GRANT cache_ext_rules_admin TO regress_rules_reader;
SET ROLE regress_rules_reader;
SELECT cache_rule_create('SELECT id FROM rules_t WHERE id = 8', name => 'by_admin');
RESET ROLE;
SELECT cache_rule_drop('by_admin');

-- ---- row-level security: as cached_query decides ---------------------------
CREATE TABLE rules_rls (id int, owner text);
INSERT INTO rules_rls VALUES (1, 'regress_rules_reader'), (2, 'someone');
ALTER TABLE rules_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY rules_own ON rules_rls USING (owner = current_user);
GRANT SELECT ON rules_rls TO regress_rules_reader;
SELECT cache_track('rules_rls');
SELECT cache_rule_create('SELECT id, owner FROM rules_rls ORDER BY id', name => 'rls');
SELECT id, owner FROM rules_rls ORDER BY id;
SELECT id, owner FROM rules_rls ORDER BY id;
SELECT cache_status();
SET ROLE regress_rules_reader;
SELECT id, owner FROM rules_rls ORDER BY id;
SELECT cache_status();
SELECT id, owner FROM rules_rls ORDER BY id;
SELECT cache_status();
RESET ROLE;

-- ---- a dropped rule stops serving ------------------------------------------
SELECT cache_rule_drop('by_region');
SELECT hits AS h, misses AS m FROM cache_stats \gset
SELECT region, count(*), sum(amount) FROM rules_t WHERE region = 3 GROUP BY region;
SELECT hits = :h AND misses = :m AS not_served FROM cache_stats;
SELECT name FROM cache_rules WHERE name NOT LIKE 'rule%' ORDER BY name;
SELECT name, hits, misses, bypasses FROM cache_rules WHERE name NOT LIKE 'rule%' ORDER BY name;

-- ---- a table dropped and created again: the rule follows its name ----------
CREATE TABLE rules_re (x int);
SELECT cache_rule_create('SELECT x FROM rules_re ORDER BY x', name => 're');
DROP TABLE rules_re;
SELECT cache_rule_for('SELECT 1') IS NULL AS loaded_without_it;
CREATE TABLE rules_re (x int);
INSERT INTO rules_re VALUES (3), (1);
SELECT cache_track('rules_re');
SELECT x FROM rules_re ORDER BY x;
SELECT cache_status();
SELECT x FROM rules_re ORDER BY x;
SELECT cache_status();
SELECT cache_rule_drop('re');
DROP TABLE rules_re;

-- ---- the cached path failing leaves the statement to run directly ----------
CREATE TABLE rules_untracked (x int);
INSERT INTO rules_untracked VALUES (1), (2);
SELECT cache_rule_create('SELECT x FROM rules_untracked ORDER BY x', name => 'untracked');
SET cache_ext.untracked = 'error';
-- cached_query raises here; the plain statement runs as if it had no rule
SELECT x FROM rules_untracked ORDER BY x;
SELECT cache_status();
RESET cache_ext.untracked;
SELECT x FROM rules_untracked ORDER BY x;
SELECT cache_status();
SELECT cache_rule_drop('untracked');
DROP TABLE rules_untracked;

-- ---- a rule whose owner role was dropped: listed, never an error -----------
CREATE ROLE regress_rules_owner;
GRANT CREATE ON SCHEMA public TO regress_rules_owner;
SET ROLE regress_rules_owner;
CREATE TABLE rules_own (x int);
SELECT cache_rule_create('SELECT x FROM rules_own', name => 'orphan');
RESET ROLE;
DROP TABLE rules_own;
REVOKE CREATE ON SCHEMA public FROM regress_rules_owner;
DROP ROLE regress_rules_owner;
SELECT name, owner::text ~ '^[0-9]+$' AS owner_gone FROM cache_rules WHERE name = 'orphan';
SELECT 1 AS still_runs;

-- ---- clean up --------------------------------------------------------------
SELECT cache_rule_drop(name) FROM cache_rules ORDER BY name;
DROP TABLE rules_rls;
REVOKE cache_ext_rules_admin FROM regress_rules_reader;
REVOKE ALL ON rules_t FROM regress_rules_reader;
DROP ROLE regress_rules_reader;
DROP FUNCTION rules_fn();
DROP FUNCTION rules_err(text);
DROP TABLE rules_t;
