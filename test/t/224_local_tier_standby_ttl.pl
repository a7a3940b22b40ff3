# test/t/224_local_tier_standby_ttl.pl - the local tier: invalidation
# functions refused on a hot standby, and the TTL of an entry copied from
# Redis
#
# Review 12 (issue 12's local tier), findings F1 and F5:
#  1. cache_invalidate(), cache_invalidate_tag() and cache_flush() on a hot
#     standby could bump the primary's generations in Redis only, never the
#     primary's local counters, which kept serving HIT (local).  They now
#     fail with SQLSTATE 25006 and a hint, and the primary's entry is
#     untouched (neither tier was bumped).
#  2. An entry copied into L1 from a Redis hit got the call's full TTL from
#     the copy, so it could be served for almost twice its TTL.  It now
#     expires when the Redis entry does (its creation time plus the TTL):
#     stored at t0 with a 4 s TTL, the server restarted (L1 empty), copied
#     from Redis at t0 + 2.5 s, it must be a MISS at t0 + 5 s.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# Each node here sets cache_ext.local_cache_size itself: run-tests.sh's l1
# pass (CE_L1) would only run this file again as the tap pass does.
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"cache_ext.local_cache_size = '4MB'",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));

$node->safe_psql('postgres', q{
CREATE TABLE st (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO st SELECT i, i FROM generate_series(1, 100) AS i;
SELECT cache_track('st');
});

my $QT = 'SELECT count(*) AS n, sum(v)::bigint AS total FROM st';
my $COLS = 'n bigint, total bigint';
my $T = cq($QT, $COLS);
my $TAG = 'SELECT * FROM cached_query_with(cache_opts(tags => ARRAY[\'stag\']), '
  . sql_literal($QT) . ") AS t($COLS)";
my $EX = 'SELECT cache_explain(' . sql_literal($QT) . ')';
my $rows = direct_rows($node, $QT, []);

# ---- 1. the invalidation functions on a hot standby ---------------------------

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);

cache_call($node, $TAG);
call_is($node, $TAG, qr/^HIT \(local\)$/, $rows, 'primary: the tagged result is a local hit');
cache_call($node, $T);
call_is($node, $T, qr/^HIT \(local\)$/, $rows, 'primary: the untagged result is a local hit');

for my $f ("cache_invalidate_tag('stag')", 'cache_flush()', "cache_invalidate('st')")
{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT $f");
	isnt($ret, 0, "standby: $f fails");
	like($err, qr/ERROR:  25006: cache invalidation cannot run on a hot standby/,
		"standby: $f: SQLSTATE 25006 and the message");
	like($err, qr/HINT:  Run it on the primary: it invalidates the primary's local tier and Redis for every server\./,
		"standby: $f: the hint says where to run it");
}
# nothing was bumped anywhere: both tiers still hold the entry, valid
call_is($node, $TAG, qr/^HIT \(local\)$/, $rows, 'primary after the refusals: still a local hit');
like($node->safe_psql('postgres', $EX), qr/"entry": \{[^}]*"valid": true/,
	'primary after the refusals: the Redis entry is still valid (no bump reached Redis)');

# on the primary they work, for both tiers
$node->safe_psql('postgres', "SELECT cache_invalidate_tag('stag')");
call_is($node, $TAG, qr/^MISS \(invalidated\)$/, $rows, 'primary: cache_invalidate_tag() there invalidates');
cache_call($node, $T);
$node->safe_psql('postgres', 'SELECT cache_flush()');
call_is($node, $T, qr/^MISS \(invalidated\)$/, $rows, 'primary: cache_flush() there invalidates');
$standby->stop;

# ---- 2. the TTL of an entry copied from Redis into L1 ---------------------------

my $QM = 'SELECT max(v) AS m FROM st';
my $TQ = 'SELECT * FROM cached_query_with(cache_opts(ttl => interval \'4 seconds\'), '
  . sql_literal($QM) . ") AS t(m int)";
my $max = direct_rows($node, $QM, []);
my $t0 = time();
call_is($node, $TQ, qr/^MISS$/, $max, 'ttl 4 s: stored');
sleep(2.5);
$node->restart;
call_is($node, $TQ, qr/^HIT$/, $max, 'after a restart (L1 empty): a Redis hit, copied into L1');
call_is($node, $TQ, qr/^HIT \(local\)$/, $max, 'then a local hit');
my $left = $t0 + 5 - time();
cmp_ok($left, '>', 0, 'the local hit came before t0 + 5 s (or this test proves nothing)');
sleep($left) if $left > 0;
like($node->safe_psql('postgres', 'SELECT cache_explain(' . sql_literal($QM) . ')'),
	qr/"entry": \{[^}]*"exists": false/, 'at t0 + 5 s: the Redis entry has expired');
call_is($node, $TQ, qr/^MISS$/, $max,
	'at t0 + 5 s: the copy in L1 has expired with it (not served past its TTL)');

$node->stop;
done_testing();
