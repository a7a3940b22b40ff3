# test/t/212_standby_lease.pl - a hot standby serves no hit the primary could not
#
# Break 16 of issue 10: standbys cannot see the primary's outbox, so a
# standby served stale hits while the primary held undelivered
# invalidations.  Now the primary's background worker keeps a lease key in
# Redis (PX cache_ext.standby_lease) only while it holds nothing undelivered,
# and a standby serves hits only while the lease is alive.  Here the
# primary's Redis user loses the right to write, so its bumps (and lease
# renewals) fail while the standby can still read: after the lease runs out
# the standby bypasses, with a reason; once the primary delivers, the
# standby's hits resume.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# In run-tests.sh's l1 pass (CE_L1) the local tier is on for the primary
# (a standby keeps it off): its second call is a local hit, and after its
# write (bumps undelivered) it must not serve one.
my $HIT = $ENV{CE_L1} ? qr/^HIT \(local\)$/ : qr/^HIT$/;

my $redis = CacheExt::Redis->new;
my $port = $redis->port;
is($redis->cli('ACL', 'SETUSER', 'primary', 'on', '>pw', '~*', '&*', '+@all'), 'OK',
	'a Redis user for the primary');
my $primary_url = "redis://primary:pw\@127.0.0.1:$port/0";
my $primary = cache_ext_node('primary', $redis, extra_conf => join("\n",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on',
	"cache_ext.redis_url = '$primary_url'",
	"cache_ext.standby_lease = '1s'",
	"cache_ext.retry_interval = 0",
	"cache_ext.invalidation_timeout = '300ms'"));
my ($Q, $COLS) = sales_fixture($primary);
$primary->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 6);
my $rows = direct_rows($primary, $Q, [6]);

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "cache_ext.redis_url = '" . $redis->url . "'");
$standby->start;
$primary->wait_for_catchup($standby);

call_is($primary, $call, qr/^MISS/, $rows, 'primary: first call');
call_is($primary, $call, $HIT, $rows, 'primary: stored');

# the primary's worker renews the lease every quarter of standby_lease
my $lease_seen = 0;
for (1 .. 100)
{
	if (scalar $redis->scan_keys('*:lease')) { $lease_seen = 1; last; }
	sleep(0.1);
}
ok($lease_seen, "the primary's lease is in Redis");
call_is($standby, $call, qr/^HIT$/, $rows, 'standby: served while the lease is alive');

# ---- the primary can no longer write to Redis: its bump waits in its outbox
is($redis->cli('ACL', 'SETUSER', 'primary', '-set', '-mset'), 'OK',
	"the primary's Redis user loses SET and MSET");
$primary->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 6');
my $after = direct_rows($primary, $Q, [6]);
isnt($after, $rows, 'the update changed the result');
like($primary->safe_psql('postgres', 'SELECT pending_invalidations FROM cache_stats'),
	qr/^[1-9]/, 'the primary holds the bump in its outbox');
$primary->wait_for_catchup($standby);
is(direct_rows($standby, $Q, [6]), $after, 'the standby has replayed the update');

# setup: let the lease (1 s) run out; the window is documented in docs/invalidation.md
sleep(1.5);
note 'lease keys and PTTL: '
  . join(', ', map { "$_ " . $redis->cli('PTTL', $_) } $redis->scan_keys('*:lease'));
call_is($standby, $call, qr/^BYPASS: pending invalidations \(hot standby: the primary's lease/, $after,
	'standby: after the lease ran out, no stale hit (BYPASS with the reason)');
call_is($standby, $call, qr/^BYPASS: pending invalidations \(hot standby: the primary's lease/, $after,
	'standby: still bypassing while the primary holds the bump');

# ---- the primary may write again: its worker delivers and renews the lease
is($redis->cli('ACL', 'SETUSER', 'primary', '+set', '+mset'), 'OK',
	"the primary's Redis user may write again");
my $r;
for (1 .. 100)
{
	$r = cache_call($standby, $call);
	last if ($r->{status} // '') !~ /^BYPASS/;
	sleep(0.1);
}
like($r->{status} // '', qr/^MISS \(invalidated/,
	'standby: once the primary delivered, the old entry is found invalidated');
is($r->{rows}, $after, 'with the new rows');
is($primary->safe_psql('postgres', 'SELECT pending_invalidations FROM cache_stats'), '0',
	"the primary's worker delivered the outbox without any cached_query call");
call_is($primary, $call, qr/^MISS \(invalidated\)$/, $after, 'primary: stores the new result');
call_is($standby, $call, qr/^HIT$/, $after, 'standby: hits resume');

$standby->stop;
$primary->stop;
done_testing();
