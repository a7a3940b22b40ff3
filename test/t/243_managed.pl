# test/t/243_managed.pl - a Redis restricted like a managed service (issue 13)
#
# CONFIG and KEYS renamed away, and an ACL user allowed only cache_ext's
# keys, without SCAN, UNLINK and the @dangerous commands but with INFO (as
# a managed service's restricted user may be): the cache still works
# (misses, hits, invalidations), cache_purge() fails with a clear error,
# and no call depends on the refused commands.  (Without INFO no hit is
# served: 150_acl.pl.)

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new(name => 'managed', extra_args => [
	'--rename-command', 'CONFIG', '',
	'--rename-command', 'KEYS', '',
	'--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru' ]);
$redis->cli('ACL', 'SETUSER', 'cx', 'on', '>cx-pw', '~cache_ext:*', '+@all',
	'-scan', '-unlink', '-@dangerous', '+info');
my $url = 'redis://cx:cx-pw@127.0.0.1:' . $redis->port . '/0';

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'cache_ext'",
	"cache_ext.redis_url = '$url'",
	"cache_ext.retry_interval = 0",
	($ENV{CE_L1} ? "cache_ext.local_cache_size = '$ENV{CE_L1}'" : '')));
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION cache_ext;
	CREATE TABLE m (k int PRIMARY KEY, v int);
	INSERT INTO m SELECT g, g FROM generate_series(1, 10) g;
	SELECT cache_track('m');
});
my $q = q{SELECT * FROM cached_query('SELECT sum(v)::int FROM m') AS t(s int)};

my $out = $node->safe_psql('postgres', "$q; SELECT cache_status(); $q; SELECT cache_status()");
like($out, qr/^55\nMISS\n55\nHIT( \(local\))?$/, 'restricted user: a miss, then a hit');

$node->safe_psql('postgres', 'UPDATE m SET v = v + 1 WHERE k = 1');
$out = $node->safe_psql('postgres', "$q; SELECT cache_status()");
like($out, qr/^56\nMISS \(invalidated\)$/, 'restricted user: a commit invalidates (MSET is allowed)');
$out = $node->safe_psql('postgres', "$q; SELECT cache_status()");
like($out, qr/^56\nHIT/, 'restricted user: and the new result hits');

my $w = $node->safe_psql('postgres', q{SELECT array_to_string(warnings, ' | ') FROM cache_health()});
unlike($w, qr/INFO refused/, 'cache_health: INFO answered');
is($node->safe_psql('postgres', 'SELECT connected, redis_version IS NOT NULL, maxmemory_policy FROM cache_health()'),
	't|t|volatile-lru', 'cache_health: connected, the INFO columns filled');

my ($rc, $stdout, $stderr) = $node->psql('postgres', 'SELECT cache_purge()');
isnt($rc, 0, 'cache_purge fails when SCAN is refused');
like($stderr, qr/ERROR:  .*(SCAN|scan|NOPERM|permission)/, 'with a clear error');
unlike($stderr, qr/cx-pw/, 'the password appears in no message');

# nothing cache_ext sent was a renamed or refused command
my $stats = $redis->cli('INFO', 'commandstats');
unlike($stats, qr/cmdstat_(config|keys)\b/, 'CONFIG and KEYS were never called');

$node->stop;
done_testing();
