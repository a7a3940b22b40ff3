# test/t/012_no_preload.pl - cache_ext loaded without shared_preload_libraries
#
# CREATE EXTENSION in a server that does not preload cache_ext loads the
# library into that backend.  Settings read once at server start used to be
# defined there as PGC_POSTMASTER, which PostgreSQL refuses after startup by
# ending the session (FATAL): the extension could not be created at all.
# They are reloadable settings there now (CE_PGC_POSTMASTER), and the calls
# work as docs/reference.md describes for a server without the preload.
#
# Then the features, probed in that configuration (/work notes: findings
# N1..N7 of the no-preload probe): what cannot work without the preload
# says so, and nothing crashes or returns other rows than the query.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis;
use CacheExt::Util;

# its server sets its own settings (and without the preload the local tier
# is off): the l1 and verify passes would only repeat it
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $keyfile = PostgreSQL::Test::Utils::tempdir('secrets') . '/keys';
PostgreSQL::Test::Utils::append_to_file($keyfile, ('5c' x 32) . "\n");
chmod(0600, $keyfile);
my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', join("\n",
	"cache_ext.redis_url = '" . $redis->url . "'",
	"cache_ext.default_ttl = 300",
	"cache_ext.local_cache_size = '8MB'",
	"cache_ext.query_stats_max = 500",
	"cache_ext.backend_memory_keep = '4MB'",
	"cache_ext.encryption_key_file = '$keyfile'"));
$node->start;

my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION cache_ext; SELECT 1');
is($rc, 0, 'CREATE EXTENSION without the preload succeeds');
is($out, '1', 'the session that created it goes on');
unlike($err, qr/FATAL|PGC_POSTMASTER/, 'no FATAL') or diag($err);

# the settings read at start are there, with the values of postgresql.conf
is($node->safe_psql('postgres', q{LOAD 'cache_ext';
SELECT string_agg(name || '=' || setting || ':' || context, ' ' ORDER BY name)
  FROM pg_settings WHERE name IN ('cache_ext.local_cache_size', 'cache_ext.query_stats_max',
                                  'cache_ext.backend_memory_keep', 'cache_ext.secret_file')}),
	'cache_ext.backend_memory_keep=4096:sighup cache_ext.local_cache_size=8192:sighup '
	  . 'cache_ext.query_stats_max=500:sighup cache_ext.secret_file=:sighup',
	'settings read at start are reloadable without the preload, with their configured values');

$node->safe_psql('postgres', q{
CREATE TABLE np_t (id int PRIMARY KEY, v text);
INSERT INTO np_t SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT cache_track('np_t');
});
my $Q = 'SELECT count(*) AS n, max(v) AS m FROM np_t';
my $COLS = 'n bigint, m text';
my $direct = direct_rows($node, $Q, []);

# a tracked table is not served without the preload (no outbox, no DDL
# hook: docs/reference.md); the call runs the query and says why
my $r = cache_call($node, cq($Q, $COLS));
is($r->{rows}, $direct, 'a call on a tracked table returns the direct rows');
like($r->{status} // '', qr/^BYPASS: .*shared_preload_libraries/,
	'and bypasses, saying the preload is missing');

# a call with its own TTL and no tracked table is cached across sessions
my $TQ = 'SELECT 6 * 7 AS answer';
call_is($node, cq($TQ, 'answer int'), qr/^MISS/, '42', 'an untracked result: first call');
call_is($node, cq($TQ, 'answer int'), qr/^HIT$/, '42', 'an untracked result: second session');
is($node->safe_psql('postgres', "SELECT local_cache FROM cache_health()") =~ /preload/ ? 1 : 0, 1,
	'cache_health says the local tier is off for want of the preload');

# ---- rules --------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE np_u (id int PRIMARY KEY, v text);
INSERT INTO np_u SELECT g, 'u' || g FROM generate_series(1, 50) g;
CREATE TABLE np_k (id int PRIMARY KEY, v text);
INSERT INTO np_k SELECT g, 'k' || g FROM generate_series(1, 5) g;
SELECT cache_track('np_k', ARRAY['id']);
});
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT cache_rule_create('SELECT v FROM np_u WHERE id = 1', '5 min', NULL, 'np_r')});
is($out, 'np_r', 'a rule is created');
like($err, qr/NOTICE:  cache rules apply only in sessions that have loaded cache_ext/,
	'N3: creating a rule says where rules apply without the preload');

# N1: the counters of a rule, this backend's own, count its statements
is($node->safe_psql('postgres', q{LOAD 'cache_ext';
SELECT v FROM np_u WHERE id = 7;
SELECT v FROM np_u WHERE id = 7;
SELECT cache_status();
SELECT hits || '/' || misses || '/' || bypasses FROM cache_rules WHERE name = 'np_r'}),
	"u7\nu7\nHIT (ttl-only: public.np_u untracked)\n1/1/0",
	'N1: a ruled statement is served, and the backend counts it');

# pgbench -M prepared: a session that never loads the library runs its
# statements without the rules (the NOTICE above); one that loads it at
# start (session_preload_libraries) has them served
my $bench = $node->basedir . '/np_bench.sql';
PostgreSQL::Test::Utils::append_to_file($bench,
	"\\set id random(10, 19)\nSELECT v FROM np_u WHERE id = :id;\n");
my $entries = scalar($redis->scan_keys('*:e:*'));
$node->command_ok([ 'pgbench', '-n', '-M', 'prepared', '-t', '30', '-f', $bench, 'postgres' ],
	'pgbench -M prepared without the library loaded');
is(scalar($redis->scan_keys('*:e:*')), $entries, 'its statements ran without the rules');
{
	local $ENV{PGOPTIONS} = '-c session_preload_libraries=cache_ext';
	$node->command_ok([ 'pgbench', '-n', '-M', 'prepared', '-t', '30', '-f', $bench, 'postgres' ],
		'pgbench -M prepared with session_preload_libraries');
}
cmp_ok(scalar($redis->scan_keys('*:e:*')), '>', $entries,
	'with the library loaded at start its statements are stored under the rule');

# ---- what needs the preload says so ------------------------------------
# N2: naming a tracked table in depends_on bypasses as reading it does
my $FQ = 'SELECT count(*) AS n FROM np_u';
$r = cache_call($node, "SELECT * FROM cached_query_with(cache_opts(depends_on => ARRAY['np_t'::regclass]), "
	  . sql_literal($FQ) . ') AS t(n bigint)');
is($r->{rows}, '50', 'depends_on a tracked table: the direct rows');
like($r->{status} // '', qr/^BYPASS: .*shared_preload_libraries/,
	'N2: depends_on a tracked table bypasses without the preload');

# the key-tracked table likewise, and the commits to both go through
$r = cache_call($node, cq('SELECT v FROM np_k WHERE id = $1', 'v text', 2));
is($r->{rows}, 'k2', 'a key-tracked table: the direct rows');
like($r->{status} // '', qr/^BYPASS: .*shared_preload_libraries/, 'and a bypass');
($rc, $out, $err) = $node->psql('postgres',
	q{UPDATE np_k SET v = 'w' WHERE id = 2; UPDATE np_t SET v = 'w' WHERE id = 2;
	  ALTER TABLE np_t ADD COLUMN z int});
is($rc, 0, 'writes and DDL on tracked tables commit');
unlike($err, qr/WARNING|ERROR/, 'without a warning while Redis is up') or diag($err);

# N4: refresh_ahead has no worker: the first store says so, once
($rc, $out, $err) = $node->psql('postgres', q{SET cache_ext.refresh_ahead = on;}
	  . cq('SELECT count(*) FROM np_u WHERE id < 3', 'n bigint') . ';'
	  . cq('SELECT count(*) FROM np_u WHERE id < 4', 'n bigint'));
is($out, "2\n3", 'refresh_ahead on: the calls return their rows');
my @said = ($err =~ /refresh_ahead has no effect: cache_ext is not in shared_preload_libraries/g);
is(scalar(@said), 1, 'N4: refresh_ahead says once that it needs the preload');

# N5: cache_query_stats (and cache_warm_top over it) say why they are empty
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM cache_query_stats');
is($out, '0', 'cache_query_stats is empty');
like($err, qr/cache_query_stats is empty: cache_ext is not in shared_preload_libraries/,
	'N5: and says why');

# N6: a materialized view is not tracked without the utility hook
($rc, $out, $err) = $node->psql('postgres',
	q{CREATE MATERIALIZED VIEW np_mv AS SELECT count(*) AS n FROM np_u; SELECT cache_track('np_mv')});
like($err, qr/materialized view "np_mv" is not tracked: cache_ext is not in shared_preload_libraries/,
	'N6: cache_track on a materialized view says it is not tracked');

# N7: an undelivered invalidation names what may be served stale
($rc, $out, $err) = $node->psql('postgres',
	q{SET cache_ext.redis_url = 'redis://127.0.0.1:1/0'; UPDATE np_t SET v = 'x' WHERE id = 3});
like($err, qr/could not deliver the invalidations.*\n.*cache_flush\(\) may be served until its TTL ends/,
	'N7: an undelivered invalidation says what stays until its TTL');

# ---- what works: values, sessions, a regular user, the upgrade path ----
is($node->safe_psql('postgres', q{SELECT cache_set('np', 'a', '{"x": 1}', '1 min', ARRAY['np_tag']);
SELECT cache_get('np', 'a');
SELECT cache_invalidate_tag('np_tag');
SELECT cache_get('np', 'a') IS NULL}), "t\n{\"x\": 1}\n\nt", 'values, and a tag invalidates them');
is($node->safe_psql('postgres', q{SELECT cache_session_get(cache_session_create('np-user', '{"s": 2}'))->>'s'}),
	'2', 'a session is created and read (with an encryption key file)');
call_is($node, "SELECT cached_query_json('SELECT id FROM np_u WHERE id < 3 ORDER BY id')",
	qr/^MISS/, '[{"id": 1}, {"id": 2}]', 'cached_query_json on an untracked table');

$node->safe_psql('postgres', q{CREATE ROLE np_app LOGIN; GRANT SELECT ON np_u, np_t TO np_app;});
call_is($node, "SET ROLE np_app; " . cq('SELECT count(*) FROM np_u WHERE id > 40', 'n bigint'),
	qr/^MISS/, '10', 'a regular user: untracked');
$r = cache_call($node, "SET ROLE np_app; " . cq($Q, $COLS));
like($r->{status} // '', qr/^BYPASS: .*shared_preload_libraries/, 'a regular user: tracked');

$node->safe_psql('postgres', 'CREATE DATABASE np_upd');
is($node->safe_psql('np_upd', q{CREATE EXTENSION cache_ext VERSION '0.1';
ALTER EXTENSION cache_ext UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'cache_ext')
  FROM pg_extension WHERE extname = 'cache_ext'}), 't', 'ALTER EXTENSION UPDATE from 0.1');

# a session holding the hooks outlives DROP EXTENSION by another one
my $drop = join(' ', $node->config_data('--bindir') . '/psql', '-X', '-q', '-d', 'np_upd',
	'-h', $node->host, '-p', $node->port, '-c', "'DROP EXTENSION cache_ext CASCADE'");
is($node->safe_psql('np_upd', qq{LOAD 'cache_ext';
CREATE TABLE a (id int PRIMARY KEY);
SELECT cache_track('a');
\\! $drop 2>/dev/null
INSERT INTO a VALUES (1);
SELECT count(*) FROM a}), "\n1", 'a session goes on after DROP EXTENSION elsewhere');

# N12: a hot standby without the preload bypasses, saying why (it said
# "pending invalidations (this server holds invalidations ...)")
$node->backup('np_b');
my $standby = PostgreSQL::Test::Cluster->new('np_standby');
$standby->init_from_backup($node, 'np_b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
$r = cache_call($standby, cq('SELECT count(*) FROM np_u WHERE id > 45', 'n bigint'));
is($r->{rows}, '5', 'a standby: the direct rows');
like($r->{status} // '', qr/^BYPASS: a hot standby serves hits only when cache_ext is in shared_preload_libraries$/,
	'N12: a standby without the preload says why it bypasses');
$standby->stop;

$node->stop;
unlike(slurp_file($node->logfile) . slurp_file($standby->logfile), qr/terminated by signal|PANIC|TRAP:/,
	'no backend crashed');
done_testing();
