# test/t/213_commit_interrupt.pl - interrupts during the commit-time bump and
# during outbox delivery
#
# The bumps of a commit are sent after the commit is visible, with
# interrupts held (PostgreSQL's CommitTransaction), for up to
# cache_ext.invalidation_timeout.  A cancel or terminate there cannot abort
# the committed transaction; it now ends the wait at once, and the keys go
# to the outbox (never lost).  A backend terminated while it delivers the
# outbox (FATAL skips PG_FINALLY) no longer leaves the outbox marked as
# "being delivered" forever: another backend (or the background worker)
# delivers it.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# In run-tests.sh's l1 pass (CE_L1) the local tier is on: the hits are
# local ones, and the first call after the interrupted commits must not be
# one (their keys went to the outbox, and the local counters were bumped
# all the same).
my $HIT = $ENV{CE_L1} ? qr/^HIT \(local\)$/ : qr/^HIT$/;

my $BOUND = 10;    # seconds: "it did not wait out the 60 s timeout"

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.retry_interval = 0"));
my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 3);
my $before = direct_rows($node, $Q, [3]);
call_is($node, $call, qr/^MISS/, $before, 'first call');
call_is($node, $call, $HIT, $before, 'second call');

# Wait until backend $pid waits on Redis (wait event Extension).
sub wait_on_redis
{
	my $pid = shift;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE pid = $pid AND wait_event_type = 'Extension'});
}

$redis->pause;

# ---- pg_cancel_backend during the commit-time bump
my $s = CacheExt::Session->new($node, timeout => 90);
my $pid = $s->backend_pid;
# the commit-time wait is the synchronous path (0.5 queues by default)
$s->query_ok("SET cache_ext.async_invalidation = off");
$s->query_ok("SET cache_ext.invalidation_timeout = '60s'");
$s->query_ok("SET cache_ext.connect_timeout = '60s'");
my $tag = $s->send('UPDATE sales SET amount = amount + 1 WHERE region = 3');
ok(wait_on_redis($pid), 'the committing UPDATE waits on the hung Redis');
sleep(0.5);
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"), 't', 'pg_cancel_backend');
my ($out, $err, $secs) = $s->wait($tag, 90);
ok(defined $out, 'the UPDATE returned');
cmp_ok($secs // 999, '<', $BOUND, "within ${BOUND}s of the cancel, not after the 60 s timeout");
note "stderr of the cancelled commit: " . ($err // '');
my $after = direct_rows($node, $Q, [3]);
isnt($after, $before, 'the transaction is committed');
like($node->safe_psql('postgres', 'SELECT pending_invalidations FROM cache_stats'),
	qr/^[1-9]/, 'its bump went to the outbox');
is($s->query('SELECT 1'), '1', 'the session is usable');
$s->quit;

# ---- pg_terminate_backend during the commit-time bump
my $t = CacheExt::Session->new($node, timeout => 90);
my $tpid = $t->backend_pid;
$t->query_ok("SET cache_ext.async_invalidation = off");
$t->query_ok("SET cache_ext.invalidation_timeout = '60s'");
$t->query_ok("SET cache_ext.connect_timeout = '60s'");
$t->send('UPDATE sales SET amount = amount + 1 WHERE region = 3');
ok(wait_on_redis($tpid), 'a second committing UPDATE waits on the hung Redis');
sleep(0.5);
my $t0 = time();
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($tpid)"), 't', 'pg_terminate_backend');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $tpid"), 'the backend exited');
cmp_ok(time() - $t0, '<', $BOUND, "within ${BOUND}s");
$t->quit;
my $after2 = direct_rows($node, $Q, [3]);
isnt($after2, $after, 'the terminated transaction is committed');

# ---- pg_terminate_backend while a backend delivers the outbox
my $d = CacheExt::Session->new($node, timeout => 90);
my $dpid = $d->backend_pid;
$d->query_ok("SET cache_ext.command_timeout = '60s'");
$d->query_ok("SET cache_ext.connect_timeout = '60s'");
$d->send($call);
if (wait_on_redis($dpid))
{
	pass('a cached_query call waits on the hung Redis (delivering, or looking up)');
	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($dpid)"), 't',
		'pg_terminate_backend');
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $dpid"), 'the backend exited');
}
else
{
	pass('the call did not wait (another process was delivering)');
}
$d->quit;

# ---- Redis back: the outbox is delivered, nothing was lost
$redis->resume;
my $r;
for (1 .. 50)
{
	$r = cache_call($node, $call);
	last if ($r->{status} // '') !~ /^BYPASS/;
	sleep(0.2);
}
like($r->{status} // '', qr/^MISS \(invalidated\)$/,
	'Redis back: the bumps kept in the outbox were delivered, the old entry is not served');
is($r->{rows}, $after2, 'with the committed rows');
is($node->safe_psql('postgres', 'SELECT pending_invalidations FROM cache_stats'), '0',
	'the outbox is empty');
call_is($node, $call, $HIT, $after2, 'hits resume');

ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
$node->stop;
done_testing();
