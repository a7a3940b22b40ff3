-- Sessions (docs/sessions.md): the API and its errors.  pg_regress runs
-- without cache_ext.encryption_key_file, so the sessions here are stored
-- unsealed (cache_ext.sessions_allow_unsealed); TAP 270 covers sealing.
-- Session ids are random: they are kept in psql variables, never shown.

-- without an encryption key, sessions are refused unless allowed
SELECT cache_session_create('alice', '{}');
SELECT cache_session_get('x');
SET cache_ext.sessions_allow_unsealed = on;

-- arguments
SELECT cache_session_create(NULL, '{}');
SELECT cache_session_create('alice', NULL);
SELECT cache_session_create('alice', '{}', NULL);
SELECT cache_session_create('', '{}');
SELECT cache_session_create(repeat('u', 1025), '{}');
SELECT cache_session_create('alice', '{}', '0 s');
SELECT cache_session_create('alice', '{}', '-1 min');
SELECT cache_session_create('alice', '{}', '30 min', '11 years');

-- create, read
SELECT cache_session_create('alice', '{"cart": [1, 2], "name": "Älice"}') AS id \gset
SELECT :'id' ~ '^[A-Za-z0-9_-]{43}$' AS url_safe_256_bits, cache_session_status();
SELECT cache_session_get(:'id'), cache_session_status();
-- a fresh session is not touched on read (its idle timeout is whole)
SELECT cache_session_get(:'id') IS NOT NULL, cache_session_status();

-- texts that are not session ids are not looked up
SELECT cache_session_get('') IS NULL AS empty,
	cache_session_get(left(:'id', 42)) IS NULL AS short,
	cache_session_get(:'id' || 'A') IS NULL AS long,
	cache_session_get(repeat('+', 43)) IS NULL AS not_base64url,
	cache_session_get(repeat('A', 42) || 'B') IS NULL AS not_canonical;
SELECT cache_session_status();
-- an id of the right form that was never issued
SELECT cache_session_get(repeat('A', 43)), cache_session_status();

-- update: versions, optimistic concurrency
SELECT cache_session_update(:'id', '{"cart": [3]}', 1);
SELECT cache_session_update(:'id', '{"cart": [4]}', 1);
SELECT cache_session_status();
SELECT cache_session_update(:'id', '{"cart": [5]}');
SELECT cache_session_update(:'id', '{"cart": [6]}', 3), cache_session_status();
SELECT cache_session_get(:'id');
SELECT cache_session_update(:'id', NULL);
SELECT cache_session_update(NULL, '{}');
SELECT cache_session_update(repeat('A', 43), '{}'), cache_session_status();

-- listing: no ids, only their first characters
SELECT id_prefix = left(:'id', 8) AS prefix_matches,
	created <= last_seen AND last_seen < expires AS ordered,
	expires - last_seen = interval '30 min' AS idle_left,
	version
FROM cache_sessions('alice');
SELECT count(*) FROM cache_sessions('nobody');

-- rotation: a new id, the data kept, the old id dead
SELECT cache_session_rotate(:'id') AS id2 \gset
SELECT :'id2' <> :'id' AS new_id, :'id2' ~ '^[A-Za-z0-9_-]{43}$' AS url_safe;
SELECT cache_session_get(:'id') AS old, cache_session_get(:'id2') AS new;
SELECT id_prefix = left(:'id2', 8) AS prefix_matches, version FROM cache_sessions('alice');
SELECT cache_session_rotate(:'id'), cache_session_status();
SELECT cache_session_update(:'id', '{}'), cache_session_status();

-- logout
SELECT cache_session_create('alice', '{"device": 2}', '5 min', '1 hour') AS id3 \gset
SELECT count(*) FROM cache_sessions('alice');
SELECT cache_session_destroy(:'id3'), cache_session_destroy(:'id3'), cache_session_destroy('nope');
SELECT cache_session_get(:'id3');
-- the index forgets the destroyed session as it is read
SELECT count(*) FROM cache_sessions('alice');
SELECT cache_session_status();

-- logout everywhere, other users untouched
SELECT cache_session_create('alice', '{"device": 3}') AS id4 \gset
SELECT cache_session_create('bob', '"b"') AS bob \gset
SELECT cache_session_destroy_all('alice');
SELECT cache_session_get(:'id2') AS alice2, cache_session_get(:'id4') AS alice4,
	cache_session_get(:'bob') AS bob;
SELECT cache_session_destroy_all('alice'), cache_session_destroy_all('nobody');

-- short timeouts: the TTL is the smaller of idle and lifetime
SELECT cache_session_create('carol', '[]', '10 min', '2 s') AS carol \gset
SELECT expires - created < interval '3 s' AS capped_by_lifetime FROM cache_sessions('carol');
SELECT cache_session_destroy_all('carol');

-- data too large for cache_ext.max_entry_size
SET cache_ext.max_entry_size = 1024;
SELECT cache_session_create('carol', jsonb_build_object('x', repeat('y', 2000)));
SELECT cache_session_update(:'bob', jsonb_build_object('x', repeat('y', 2000)));
RESET cache_ext.max_entry_size;

-- who may call: roles granted cache_ext_sessions
CREATE ROLE regress_sess_app;
SET ROLE regress_sess_app;
SELECT cache_session_get(:'bob');
SELECT cache_session_create('mallory', '{}');
SELECT * FROM cache_sessions('bob');
RESET ROLE;
GRANT cache_ext_sessions TO regress_sess_app;
SET ROLE regress_sess_app;
SELECT cache_session_get(:'bob');
RESET ROLE;
SELECT rolcanlogin FROM pg_roles WHERE rolname = 'cache_ext_sessions';
SELECT count(*) AS public_can_execute FROM pg_proc p
WHERE proname LIKE 'cache_session%' AND has_function_privilege('public', p.oid, 'EXECUTE');
DROP ROLE regress_sess_app;

-- Redis unavailable: reads NULL with a status (an error when strict),
-- writes raise
SET cache_ext.redis_url = 'redis://127.0.0.1:1/0';
SET cache_ext.retry_interval = 0;
SELECT cache_session_get(:'bob'), cache_session_status();
SET cache_ext.sessions_strict = on;
SELECT cache_session_get(:'bob');
RESET cache_ext.sessions_strict;
SELECT cache_session_create('bob', '{}');
SELECT cache_session_update(:'bob', '{}');
SELECT cache_session_rotate(:'bob');
SELECT cache_session_destroy(:'bob');
SELECT cache_session_destroy_all('bob');
SELECT * FROM cache_sessions('bob');
RESET cache_ext.redis_url;
RESET cache_ext.retry_interval;
SELECT cache_session_get(:'bob');
SELECT cache_session_destroy_all('bob');
