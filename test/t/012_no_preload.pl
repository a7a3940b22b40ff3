# test/t/012_no_preload.pl - cache_ext loaded without shared_preload_libraries
#
# CREATE EXTENSION in a server that does not preload cache_ext loads the
# library into that backend.  Settings read once at server start used to be
# defined there as PGC_POSTMASTER, which PostgreSQL refuses after startup by
# ending the session (FATAL): the extension could not be created at all.
# They are reloadable settings there now (CE_PGC_POSTMASTER), and the calls
# work as docs/reference.md describes for a server without the preload.

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
my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->append_conf('postgresql.conf', join("\n",
	"cache_ext.redis_url = '" . $redis->url . "'",
	"cache_ext.default_ttl = 300",
	"cache_ext.local_cache_size = '8MB'",
	"cache_ext.query_stats_max = 500",
	"cache_ext.backend_memory_keep = '4MB'"));
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

$node->stop;
done_testing();
