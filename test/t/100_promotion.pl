# test/t/100_promotion.pl - a hot standby reads but never stores; after its
# promotion, nothing cached before is served (the former primary may have
# died with invalidations undelivered)

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it tests the Redis path of a standby and of its promotion (L1 is
# off on a standby anyway; 220 covers that and the primary).
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $primary = cache_ext_node('primary', $redis, extra_conf => join("\n",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));
my ($Q, $COLS) = sales_fixture($primary);
$primary->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 4);
my $rows = direct_rows($primary, $Q, [4]);

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

call_is($primary, $call, qr/^MISS/, $rows, 'primary: first call');
call_is($primary, $call, qr/^HIT$/, $rows, 'primary: stored');
# the primary's background worker renews its lease every quarter of
# cache_ext.standby_lease; standbys serve hits only while it is alive, and
# only under the watermark, which the commit queue worker (another process,
# on its own schedule) writes: after a FLUSHALL either may come back first
sub wait_for_lease
{
	for (1 .. 100)
	{
		return 1 if scalar $redis->scan_keys('*:lease') && scalar $redis->scan_keys('*:wm');
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
ok(wait_for_lease(), "the primary's lease and watermark are in Redis");
call_is($standby, $call, qr/^HIT$/, $rows, 'standby: served the entry the primary stored');

# what the standby computes is never stored
$redis->cli('FLUSHALL');
ok(wait_for_lease(), "the primary's lease and watermark are back after the flush");
call_is($standby, $call, qr/^MISS \(.*not stored: hot standby/, $rows, 'standby: a miss is not stored');
call_is($standby, $call, qr/^MISS/, $rows, 'standby: still nothing stored');
call_is($primary, $call, qr/^MISS/, $rows, 'primary: stores it');
call_is($standby, $call, qr/^HIT$/, $rows, 'standby: reads it');

# promotion: the server generation is bumped before hits are served
my $log_offset = -s $standby->logfile;
$primary->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby not promoted';
call_is($standby, $call, qr/^MISS \(invalidated\)$/, $rows,
	'promoted: the entry stored before is not served');
like(slurp_file($standby->logfile, $log_offset), qr/This server was promoted/,
	'the promotion is logged');
call_is($standby, $call, qr/^HIT$/, $rows, 'promoted: stores and serves again');

$standby->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 4');
my $after = direct_rows($standby, $Q, [4]);
call_is($standby, $call, qr/^MISS \(invalidated\)$/, $after, 'promoted: its writes invalidate');

$standby->stop;
done_testing();
