-- Key-level tracking: a write invalidates only results about its key values.
CREATE TABLE k_orders (id int PRIMARY KEY, customer_id int, note text, amount int);
INSERT INTO k_orders SELECT g, g % 10, 'n' || (g % 3), g FROM generate_series(1, 100) g;
SELECT cache_track('k_orders', ARRAY['customer_id']);
SELECT relation, key_columns, covered FROM cache_tracked WHERE relation = 'k_orders'::regclass;

\set q 'SELECT count(*), sum(amount) FROM k_orders WHERE customer_id = $1'
SELECT * FROM cached_query(:'q', 7) AS t(n bigint, s bigint);
SELECT * FROM cached_query(:'q', 4) AS t(n bigint, s bigint);
UPDATE k_orders SET amount = amount + 1 WHERE id = 7;
-- key 7 changed, key 4 did not
SELECT * FROM cached_query(:'q', 7) AS t(n bigint, s bigint);
SELECT cache_status();
SELECT * FROM cached_query(:'q', 4) AS t(n bigint, s bigint);
SELECT cache_status();
-- a row moving from key 4 to key 7 invalidates both
UPDATE k_orders SET customer_id = 7 WHERE id = 4;
SELECT * FROM cached_query(:'q', 4) AS t(n bigint, s bigint);
SELECT cache_status();
SELECT * FROM cached_query(:'q', 7) AS t(n bigint, s bigint);
SELECT cache_status();
-- a bigint parameter is another entry, but the same key scope
SELECT * FROM cached_query(:'q', 7::bigint) AS t(n bigint, s bigint);
UPDATE k_orders SET amount = amount + 1 WHERE id = 17;
SELECT * FROM cached_query(:'q', 7::bigint) AS t(n bigint, s bigint);
SELECT cache_status();
-- NULL keys: a row going to NULL invalidates its old key only
SELECT * FROM cached_query(:'q', 5) AS t(n bigint, s bigint);
SELECT * FROM cached_query(:'q', 6) AS t(n bigint, s bigint);
UPDATE k_orders SET customer_id = NULL WHERE id = 5;
SELECT * FROM cached_query(:'q', 5) AS t(n bigint, s bigint);
SELECT cache_status();
SELECT * FROM cached_query(:'q', 6) AS t(n bigint, s bigint);
SELECT cache_status();
SELECT * FROM cached_query(:'q', NULL::int) AS t(n bigint, s bigint);
SELECT cache_status();
-- TRUNCATE reaches every key-level entry
SELECT * FROM cached_query(:'q', 6) AS t(n bigint, s bigint);
BEGIN;
TRUNCATE k_orders;
ROLLBACK;
SELECT * FROM cached_query(:'q', 6) AS t(n bigint, s bigint);
SELECT cache_status();
TRUNCATE k_orders;
SELECT * FROM cached_query(:'q', 6) AS t(n bigint, s bigint);
SELECT cache_status();
INSERT INTO k_orders SELECT g, g % 10, 'n' || (g % 3), g FROM generate_series(1, 100) g;

-- which queries are narrowed
SELECT cache_explain(:'q', 1)->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id IN (1, 2, 3)')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id = ANY($1)', ARRAY[1, 2])->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE 3 = customer_id AND amount > 5')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id = 1 OR amount = 3')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id > 1')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id = amount')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id = 1 AND amount > (SELECT avg(amount) FROM k_orders)')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders a JOIN k_orders b ON a.id = b.id WHERE a.customer_id = 1')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders a JOIN k_orders b ON a.id = b.id WHERE a.customer_id = 1 AND b.customer_id = 2')->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id = $1::int8', 1)->'scopes' AS scopes;
SELECT cache_explain('SELECT count(*) FROM k_orders WHERE customer_id::text = $1', '1')->'scopes' AS scopes;
CREATE TABLE k_cust (id int PRIMARY KEY, name text);
SELECT cache_track('k_cust');
SELECT cache_explain('SELECT c.name, sum(o.amount) FROM k_orders o JOIN k_cust c ON c.id = o.customer_id WHERE o.customer_id = $1 GROUP BY 1', 3)->'scopes' AS scopes;

-- text and uuid keys
CREATE TABLE k_docs (id uuid PRIMARY KEY, owner text, body text);
INSERT INTO k_docs VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ann', 'x'), ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'bob', 'y');
SELECT cache_track('k_docs', ARRAY['owner', 'id']);
SELECT * FROM cached_query('SELECT body FROM k_docs WHERE owner = $1', 'ann') AS t(b text);
SELECT * FROM cached_query('SELECT body FROM k_docs WHERE id = $1', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'::uuid) AS t(b text);
UPDATE k_docs SET body = 'x2' WHERE owner = 'ann';
SELECT * FROM cached_query('SELECT body FROM k_docs WHERE owner = $1', 'ann') AS t(b text);
SELECT cache_status();
SELECT * FROM cached_query('SELECT body FROM k_docs WHERE id = $1', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'::uuid) AS t(b text);
SELECT cache_status();

-- escalation: too many keys in one transaction reach every key-level entry
SET cache_ext.max_keys_per_xact = 3;
SELECT * FROM cached_query(:'q', 9) AS t(n bigint, s bigint);
UPDATE k_orders SET amount = amount + 1 WHERE customer_id IN (1, 2, 3, 4);
SELECT * FROM cached_query(:'q', 9) AS t(n bigint, s bigint);
SELECT cache_status();
RESET cache_ext.max_keys_per_xact;

-- back to table level
SELECT cache_track('k_orders');
SELECT relation, key_columns, covered FROM cache_tracked WHERE relation = 'k_orders'::regclass;
SELECT cache_explain(:'q', 1)->'scopes' AS scopes;

-- errors
SELECT cache_track('k_orders', ARRAY['nope']);
SELECT cache_track('k_orders', ARRAY['note', 'note']);
SELECT cache_track('k_orders', ARRAY['id', NULL]);
SELECT cache_track('k_orders', ARRAY['a', 'b', 'c', 'd', 'e']);
CREATE TABLE k_bad (n numeric, t text COLLATE "C", ts timestamptz);
SELECT cache_track('k_bad', ARRAY['n']);
SELECT cache_track('k_bad', ARRAY['ts']);
SELECT cache_track('k_bad', ARRAY['t']);
SELECT cache_track(NULL);
SELECT cache_untrack('k_orders');
SELECT cache_untrack('k_docs');
SELECT cache_untrack('k_cust');
SELECT cache_untrack('k_bad');
