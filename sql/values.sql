-- Application values: cache_set, cache_get, cache_delete,
-- cache_delete_namespace, their bytea forms, restricted namespaces, and
-- every error with its SQLSTATE.
\set VERBOSITY sqlstate

-- set and get; the status of each call
SELECT cache_set('rv_app', 'k1', '{"a": 1, "b": [true, null, "x"]}');
SELECT cache_status();
SELECT cache_get('rv_app', 'k1');
SELECT cache_status();
SELECT cache_get('rv_app', 'absent');
SELECT cache_status();
-- every jsonb round trips, a JSON null too
SELECT cache_set('rv_app', 'k2', v) AND cache_get('rv_app', 'k2') = v AS same
FROM (VALUES ('null'::jsonb), ('0'), ('"é ü 日本"'), ('[]'), ('{}'),
			 ('1.50000000000000000001'), ('{"deep": [[[[{"x": -1e-30}]]]]}')) AS t(v);
-- the key is an exact string; the namespace separates keys
SELECT cache_set('rv_app', '', '"empty key"');
SELECT cache_get('rv_app', ''), cache_get('rv_app', ' '), cache_get('rv_other', '');
-- overwrite
SELECT cache_set('rv_app', 'k1', '2');
SELECT cache_get('rv_app', 'k1');

-- delete: true when Redis held the value
SELECT cache_delete('rv_app', 'k1');
SELECT cache_status();
SELECT cache_get('rv_app', 'k1');
SELECT cache_delete('rv_app', 'k1');
SELECT cache_status();

-- delete_namespace: every value of the namespace, none of another
SELECT cache_set('rv_ns', 'a', '1'), cache_set('rv_ns', 'b', '2'), cache_set('rv_ns2', 'a', '3');
SELECT cache_delete_namespace('rv_ns');
SELECT cache_status();
SELECT cache_get('rv_ns', 'a'), cache_get('rv_ns', 'b'), cache_get('rv_ns2', 'a');
SELECT cache_status();
-- the namespace is usable again at once
SELECT cache_set('rv_ns', 'a', '4');
SELECT cache_get('rv_ns', 'a');

-- not transactional: a rolled back cache_set and delete_namespace stay done
BEGIN;
SELECT cache_set('rv_tx', 'k', '"kept"');
ROLLBACK;
SELECT cache_get('rv_tx', 'k');
BEGIN;
SELECT cache_delete_namespace('rv_tx');
ROLLBACK;
SELECT cache_get('rv_tx', 'k');

-- tags: cache_invalidate_tag invalidates the values that carry the tag
SELECT cache_set('rv_tags', 't1', '"one"', tags => ARRAY['rv_red', 'rv_blue']);
SELECT cache_set('rv_tags', 't2', '"two"', tags => ARRAY['rv_blue', 'rv_blue']);
SELECT cache_set('rv_tags', 't3', '"three"', tags => ARRAY['rv_green']);
SELECT cache_get('rv_tags', 't1'), cache_get('rv_tags', 't2'), cache_get('rv_tags', 't3');
SELECT cache_invalidate_tag('rv_blue');
SELECT cache_get('rv_tags', 't1');
SELECT cache_status();
SELECT cache_get('rv_tags', 't2'), cache_get('rv_tags', 't3');
-- inside a transaction the tag is bumped at commit, as for query results
BEGIN;
SELECT cache_invalidate_tag('rv_green');
SELECT cache_get('rv_tags', 't3');
COMMIT;
SELECT cache_get('rv_tags', 't3');
SELECT cache_status();
-- cache_flush empties values too (they depend on the database generation)
SELECT cache_set('rv_app', 'f', '1');
SELECT cache_flush();
SELECT cache_get('rv_app', 'f');
SELECT cache_status();

-- ttl: NULL is cache_ext.default_ttl; bounds as cached_query's
SELECT cache_set('rv_ttl', 'k', '1', ttl => '1 hour');
SELECT cache_set('rv_ttl', 'k', '1', ttl => NULL);
SELECT cache_set('rv_ttl', 'k', '1', ttl => '0');
SELECT cache_set('rv_ttl', 'k', '1', ttl => '-1 s');
SELECT cache_set('rv_ttl', 'k', '1', ttl => '0.5 ms');
SELECT cache_set('rv_ttl', 'k', '1', ttl => '366 days');
SELECT cache_set('rv_ttl', 'k', '1', ttl => '2 years');

-- bytea values, and a kind read with the other function
SELECT cache_set_bytea('rv_bin', 'b', '\x00ff0001');
SELECT cache_get_bytea('rv_bin', 'b');
SELECT cache_get('rv_bin', 'b');
SELECT cache_status();
SELECT cache_set('rv_bin', 'j', '[1]');
SELECT cache_get_bytea('rv_bin', 'j');
SELECT cache_status();
SELECT cache_set_bytea('rv_bin', 'empty', '');
SELECT cache_get_bytea('rv_bin', 'empty');

-- errors: NULL and empty arguments
SELECT cache_set(NULL, 'k', '1');
SELECT cache_set('', 'k', '1');
SELECT cache_set('rv_app', NULL, '1');
SELECT cache_set('rv_app', 'k', NULL);
SELECT cache_set_bytea('rv_app', 'k', NULL);
SELECT cache_get(NULL, 'k');
SELECT cache_get('rv_app', NULL);
SELECT cache_get('', 'k');
SELECT cache_delete(NULL, 'k');
SELECT cache_delete('rv_app', NULL);
SELECT cache_delete_namespace(NULL);
SELECT cache_delete_namespace('');
-- tags: null, empty, too many
SELECT cache_set('rv_app', 'k', '1', tags => ARRAY[NULL]::text[]);
SELECT cache_set('rv_app', 'k', '1', tags => ARRAY['']);
SELECT cache_set('rv_app', 'k', '1', tags => (SELECT array_agg('t' || g) FROM generate_series(1, 65) g));
SELECT cache_set('rv_app', 'k', '1', tags => (SELECT array_agg('t' || g) FROM generate_series(1, 64) g));
-- too large for cache_ext.max_entry_size: an error, nothing stored
SET cache_ext.max_entry_size = '2kB';
SELECT cache_set('rv_app', 'big', to_jsonb(repeat('x', 3000)));
SELECT cache_set_bytea('rv_app', 'big', convert_to(repeat('x', 3000), 'UTF8'));
SELECT cache_set('rv_app', 'big', to_jsonb(repeat('x', 1000)));
RESET cache_ext.max_entry_size;
SELECT cache_get('rv_app', 'big') IS NOT NULL AS stored;

-- Redis unreachable: NULL and false with a status; strictness raises
\set VERBOSITY terse
SET cache_ext.redis_url = 'redis://127.0.0.1:1/0';
SET cache_ext.retry_interval = 0;
SELECT cache_get('rv_app', 'big') IS NULL AS is_null;
SELECT cache_status();
SELECT cache_set('rv_app', 'k', '1');
SELECT cache_status();
SELECT cache_delete('rv_app', 'k');
SELECT cache_status();
SELECT cache_delete_namespace('rv_app');
SELECT cache_status();
SET cache_ext.values_strict = on;
\set VERBOSITY sqlstate
SELECT cache_get('rv_app', 'big');
SELECT cache_set('rv_app', 'k', '1');
SELECT cache_delete('rv_app', 'k');
SELECT cache_delete_namespace('rv_app');
-- argument errors come first, whatever Redis does
SELECT cache_get(NULL, 'k');
RESET cache_ext.values_strict;
RESET cache_ext.redis_url;
RESET cache_ext.retry_interval;
\set VERBOSITY sqlstate
SELECT cache_get('rv_app', 'big') IS NOT NULL AS back;

-- who may call: not PUBLIC; members of cache_ext_values
CREATE ROLE regress_rv_plain;
CREATE ROLE regress_rv_app IN ROLE cache_ext_values;
CREATE ROLE regress_rv_secret_readers;
CREATE ROLE regress_rv_reader IN ROLE cache_ext_values, regress_rv_secret_readers;
-- role changes bump the server generation: every value is invalidated, as
-- every cached query result is (docs/values.md)
SELECT cache_get('rv_app', 'big');
SELECT cache_status();
SELECT cache_set('rv_app', 'big', '"big"');
SET ROLE regress_rv_plain;
SELECT cache_get('rv_app', 'big');
SELECT cache_set('rv_app', 'k', '1');
SELECT cache_delete_namespace('rv_app');
SELECT * FROM cache_ext_value_namespaces;
SELECT cache_namespace_restrict('rv_secret', 'regress_rv_plain');
RESET ROLE;
SET ROLE regress_rv_app;
SELECT cache_get('rv_app', 'big') IS NOT NULL AS member_reads;
SELECT cache_namespace_restrict('rv_secret', 'regress_rv_app');
RESET ROLE;

-- a namespace restricted to a role: only its members may use it
SELECT cache_set('rv_secret', 'k', '"before"');
SELECT cache_namespace_restrict('rv_secret', 'regress_rv_secret_readers');
SELECT * FROM cache_value_namespaces;
SET ROLE regress_rv_app;
SELECT cache_get('rv_secret', 'k');
SELECT cache_set('rv_secret', 'k', '"forged"');
SELECT cache_delete('rv_secret', 'k');
SELECT cache_delete_namespace('rv_secret');
SELECT cache_set_bytea('rv_secret', 'k', '\x00');
SELECT cache_get_bytea('rv_secret', 'k');
-- the restriction is by exact name
SELECT cache_set('rv_Secret', 'k', '"other namespace"');
SELECT cache_get('rv_Secret', 'k');
RESET ROLE;
SET ROLE regress_rv_reader;
SELECT cache_get('rv_secret', 'k');
SELECT cache_set('rv_secret', 'k', '"after"');
SELECT cache_get('rv_secret', 'k');
RESET ROLE;
-- a superuser is a member of every role
SELECT cache_get('rv_secret', 'k');
-- the restriction moves to another role, then goes
SELECT cache_namespace_restrict('rv_secret', 'regress_rv_app');
SET ROLE regress_rv_reader;
SELECT cache_get('rv_secret', 'k');
RESET ROLE;
SELECT cache_namespace_unrestrict('rv_secret');
SELECT cache_namespace_unrestrict('rv_secret');
SET ROLE regress_rv_app;
SELECT cache_get('rv_secret', 'k');
RESET ROLE;
-- a restriction made in an open transaction holds in it at once
BEGIN;
SELECT cache_namespace_restrict('rv_secret', 'regress_rv_secret_readers');
SET LOCAL ROLE regress_rv_app;
SELECT cache_get('rv_secret', 'k');
ROLLBACK;
-- a rule whose role was dropped admits only superusers
CREATE ROLE regress_rv_gone;
SELECT cache_namespace_restrict('rv_gone', 'regress_rv_gone');
DROP ROLE regress_rv_gone;
SET ROLE regress_rv_reader;
SELECT cache_get('rv_gone', 'k');
RESET ROLE;
SELECT cache_get('rv_gone', 'k');
SELECT cache_namespace_unrestrict('rv_gone');
-- bad rules
SELECT cache_namespace_restrict('', 'regress_rv_app');
SELECT cache_namespace_restrict('rv_x', 'regress_rv_nobody');

-- cache_stats counts no value call as a query hit or miss
SELECT cache_set('rv_app', 'big', '"big"');
SELECT hits AS h0, misses AS m0 FROM cache_stats \gset
SELECT cache_get('rv_app', 'big') IS NOT NULL AS hit, cache_get('rv_app', 'nothing') AS miss;
SELECT hits - :h0 AS hits, misses - :m0 AS misses FROM cache_stats;

DROP ROLE regress_rv_plain;
DROP ROLE regress_rv_app;
DROP ROLE regress_rv_reader;
DROP ROLE regress_rv_secret_readers;
