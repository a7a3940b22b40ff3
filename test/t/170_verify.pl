# test/t/170_verify.pl - cache_ext.verify_rate catches a stale hit
#
# Redis is rolled back behind cache_ext's back (every key copied aside, a
# tracked table changed and the new result stored, then the copies put
# back), so the old entry matches the old generations again: nothing
# cache_ext could notice.  With cache_ext.verify_rate = 1 the hit is run
# directly as well: the difference is counted, logged with the query id and
# the scopes, the entry deleted, and the direct rows returned.  With it at 0
# the stale hit is served (which is what proves the rollback worked).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it rolls Redis back behind cache_ext's back, which an L1 hit does
# not read (verify_rate with local hits: 220).
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

$node->safe_psql('postgres', q{
CREATE TABLE v_t (x int);
SELECT cache_track('v_t');
INSERT INTO v_t VALUES (1), (2);
});

my $Q = q{SELECT * FROM cached_query('SELECT sum(x) FROM v_t') AS t(s bigint)};

sub call
{
	my ($setup) = @_;
	my $out = $node->safe_psql('postgres', "$setup; $Q; SELECT cache_status();");
	my ($rows, $status) = split /\n/, $out, 2;
	return ($rows, $status);
}

sub roll_back_redis
{
	my ($change) = @_;
	$redis->lua(q{
local ks = redis.call('KEYS', 'cache_ext:*')
for _, k in ipairs(ks) do redis.call('COPY', k, 'v_backup:' .. k, 'REPLACE') end
return #ks}, []);
	$node->safe_psql('postgres', $change);
	my (undef, $st) = call('SET cache_ext.verify_rate = 0');
	like($st, qr/^MISS/, "after '$change' the next call is a MISS");
	$redis->lua(q{
local ks = redis.call('KEYS', 'v_backup:*')
for _, k in ipairs(ks) do
  redis.call('COPY', k, string.sub(k, 10), 'REPLACE')
  redis.call('DEL', k)
end
return #ks}, []);
	return;
}

sub stats
{
	my ($v, $m) = split /\|/, $node->safe_psql('postgres',
		'SELECT verified, verify_mismatches FROM cache_stats');
	return ($v, $m);
}

# stored, then a HIT that verifies fine
my ($rows, $st) = call('SET cache_ext.verify_rate = 1');
is($rows, '3', 'first call: the rows');
($rows, $st) = call('SET cache_ext.verify_rate = 1');
is($st, 'HIT', 'second call: HIT');
my ($v0, $m0) = stats();
is($m0, 0, 'a hit that matches is no mismatch');
cmp_ok($v0, '>=', 1, 'and it was verified');

# without verification, the rollback serves the stale result: the setup works
roll_back_redis('INSERT INTO v_t VALUES (10)');
($rows, $st) = call('SET cache_ext.verify_rate = 0');
is($st, 'HIT', 'rolled back, verify_rate = 0: a HIT');
is($rows, '3', 'rolled back, verify_rate = 0: the stale rows (the rollback worked)');

# with verification, the stale hit is caught
roll_back_redis('INSERT INTO v_t VALUES (100)');
my $log_offset = -s $node->logfile;
($rows, $st) = call('SET cache_ext.verify_rate = 1');
is($rows, '113', 'rolled back, verify_rate = 1: the direct rows are returned');
like($st, qr/^MISS \(cache_ext\.verify_rate: the stored result differed/, 'status says why');
my ($v1, $m1) = stats();
is($m1, $m0 + 1, 'one mismatch counted in cache_stats');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/a stored result differed from the direct result of its query/, 'logged');
like($log, qr/Query id -?\d+, key cache_ext:\S+, 1 stored rows, 1 direct rows, scopes: cache_ext:/,
	'with the query id, the key and the scopes');

# the entry was deleted: the next call stores the right result afresh
($rows, $st) = call('SET cache_ext.verify_rate = 1');
is($st, 'MISS', 'the stale entry was deleted');
is($rows, '113', 'and the right rows stored');
($rows, $st) = call('SET cache_ext.verify_rate = 1');
is($st, 'HIT', 'then a HIT again');
my ($v2, $m2) = stats();
is($m2, $m1, 'no further mismatch');

# only superusers set it
$node->safe_psql('postgres', 'CREATE ROLE v_plain LOGIN');
my ($rc, $out, $err) = $node->psql('postgres', 'SET ROLE v_plain; SET cache_ext.verify_rate = 1');
like($err, qr/permission denied to set parameter "cache_ext.verify_rate"/, 'verify_rate is superuser-only');

$node->stop;
$redis->stop;
done_testing();
