# test/t/080_recovery.pl - no stale hit after PostgreSQL or Redis loses invalidations
#
# C3: when bumps may have been lost, the server generation is bumped before
# hits are served again.  The cases:
#   - clean restart of PostgreSQL: nothing lost, the cache survives (HIT);
#   - immediate shutdown (as a crash): server generation bumped (MISS);
#   - Redis restarted from an RDB snapshot taken before a bump: the old
#     generation and the old entry come back together; the new run_id makes
#     cache_ext bump the server generation, so the old entry is not served;
#   - Redis unreachable at commit: the bump waits in the outbox, hits stop
#     (BYPASS: pending invalidations), then it is delivered and the next read
#     is a MISS with the new data.
# And the retry of a connection lost while idle: closed by Redis's idle
# timeout (end of stream) or reset on the way (ECONNRESET, through
# CacheExt::ResetProxy), the next call reconnects at once, with no bypass
# and no warning; the reset case also with lc_messages in German when such a
# locale can be had (CacheExt::Locale), since strerror() then speaks German
# and the client must judge the failure by errno, not by its text.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CacheExt::Locale;
use CacheExt::Redis qw(cache_ext_node);
use CacheExt::ResetProxy;
use CacheExt::Session;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it checks what the Redis side notices (a restarted Redis's run
# id, idle connections closed or reset) by calls that must make a round
# trip, and HIT from Redis after each recovery step; L1's side of these
# server bumps is tested in 220 and 221.
delete $ENV{CE_L1};

# before the server starts: it must find the locale
my ($foreign, $locpath) = CacheExt::Locale::foreign_messages_locale();
$ENV{LOCPATH} = $locpath if $locpath;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.retry_interval = 0",
	"max_prepared_transactions = 5",
	"cache_ext.invalidation_timeout = '300ms'",
	# the background worker passes every standby_lease / 4: made rare, so
	# that its connection idles like the others (Redis's idle timeout below)
	"cache_ext.standby_lease = '10min'"));

my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 3);
my $total = sub { direct_rows($node, $Q, [3]) };

my $before = $total->();
call_is($node, $call, qr/^MISS/, $before, 'tracked: first call');
call_is($node, $call, qr/^HIT$/, $before, 'tracked: second call');

# ---- clean restart: nothing lost, nothing flushed
my $log_offset = -s $node->logfile;
$node->restart;
call_is($node, $call, qr/^HIT$/, $before, 'after a clean restart the entry is still served');
unlike(slurp_file($node->logfile, $log_offset),
	qr/will invalidate every cached result/, 'a clean restart does not flush');

# ---- immediate shutdown: bumps may have been lost
$log_offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
like(slurp_file($node->logfile, $log_offset),
	qr/will invalidate every cached result.*\n.*did not shut down cleanly/,
	'an unclean shutdown is noticed');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $before,
	'after an unclean shutdown the old entry is not served');
call_is($node, $call, qr/^HIT$/, $before, 'and the cache works again');

# ---- Redis restarted from an older snapshot
is($redis->cli('SAVE'), 'OK', 'snapshot taken (entry and generations)');
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $after = $total->();
isnt($after, $before, 'the update changed the result');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after, 'the update invalidated the entry');
call_is($node, $call, qr/^HIT$/, $after, 'new entry served');

# the log from before the restart: the commit queue's worker may be the
# first to connect to the restarted Redis (and log it), before this call
$log_offset = -s $node->logfile;
$redis->kill9;
$redis->start;    # loads the snapshot: the old generation and the old entry
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after,
	'after Redis restarted from an old snapshot, the old entry is not served');
like(slurp_file($node->logfile, $log_offset), qr/The Redis server restarted/,
	'the restart is logged');
call_is($node, $call, qr/^HIT$/, $after, 'and the cache works again');

# ---- Redis unreachable at commit: the outbox
my $stats0 = cache_stats($node);
$redis->pause;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $after2 = $total->();
my $stats1 = cache_stats($node);
is($stats1->{pending_invalidations}, 1, 'the bump waits (queued, then in the outbox)');
# the background worker sends the queue: deferred once its MSET timed out
ok($node->poll_query_until('postgres',
		"SELECT invalidations_deferred > $stats0->{invalidations_deferred} FROM cache_stats"),
	'counted as deferred');
# Redis is still hung: the call must not wait longer than its timeouts, and must
# return the new rows uncached
call_is($node, $call, qr/^BYPASS: /, $after2, 'while Redis is hung: correct rows, bypass');
$redis->resume;
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after2,
	'once Redis is back the bump is delivered first, and the old entry is not served');
is(cache_stats($node)->{pending_invalidations}, 0, 'outbox empty');
call_is($node, $call, qr/^HIT$/, $after2, 'hits resume');

# ---- a bump pending in the outbox at shutdown is not forgotten
$redis->pause;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $after3 = $total->();
is(cache_stats($node)->{pending_invalidations}, 1, 'pending at shutdown');
# still hung while the server stops: the background worker cannot deliver
# the bump before the shutdown
$log_offset = -s $node->logfile;
$node->restart;
$redis->resume;
like(slurp_file($node->logfile, $log_offset), qr/will invalidate every cached result/,
	'a shutdown with invalidations pending counts as unclean');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after3, 'no stale hit after that restart');

# ---- Redis closes an idle connection: the next call reconnects, no bypass
is($redis->cli('CONFIG', 'SET', 'timeout', '1'), 'OK', 'Redis closes connections idle for 1 s');
my $idle = CacheExt::Session->new($node, timeout => 30);
call_is($idle, $call, qr/^(HIT|MISS)/, $after3, 'a session uses Redis');
my $list = $redis->cli('CLIENT', 'LIST');
my $clients_before = () = $list =~ /^id=/mg;
# setup: wait until Redis has closed every connection it had (the
# session's among them; not the one that listed them), which it does once
# they are idle for 1 s: at most 10 s (not an assertion on time)
my @before_ids = map { /^id=(\d+) .* cmd=(\S+)/ && $2 ne 'client|list' ? $1 : () } split /\n/, $list;
for (1 .. 100)
{
	$list = $redis->cli('CLIENT', 'LIST');
	last unless grep { $list =~ /^id=$_ /m } @before_ids;
	usleep(100_000);
}
my $clients_after = () = $redis->cli('CLIENT', 'LIST') =~ /^id=/mg;
cmp_ok($clients_after, '<', $clients_before, 'Redis closed the idle connection');
call_is($idle, $call, qr/^HIT$/, $after3, 'the next call reconnected at once: HIT');
is($redis->cli('CONFIG', 'SET', 'timeout', '0'), 'OK', 'idle timeout off again');
$idle->quit;

# ---- an idle connection reset on the way: the next call reconnects, no
# bypass, whatever language strerror() speaks
my $proxy = CacheExt::ResetProxy->new($redis->port);
$proxy->start;
my $redis_clients = sub { scalar(() = $redis->cli('CLIENT', 'LIST') =~ /^id=/mg) };
my @langs = ('C');
if ($foreign) { push @langs, $foreign; }
else { note 'no non-English locale available: the reset is tested with lc_messages = C only'; }
for my $lang (@langs)
{
	my $s = CacheExt::Session->new($node, timeout => 30);
	$s->query_ok("SET lc_messages = '$lang'");
	$s->query_ok("SET cache_ext.redis_url = '" . $proxy->url . "'");
	if ($lang ne 'C')
	{
		my (undef, $err) = $s->query("SELECT pg_read_file('/nonexistent/cache_ext')");
		unlike($err, qr/No such file/, "lc_messages = $lang: strerror() is not English")
		  or diag $err;
	}
	call_is($s, $call, qr/^(HIT|MISS)/, $after3, "lc_messages = $lang: a session uses Redis through the proxy");
	my $n_before = $redis_clients->();
	$proxy->reset_all;
	my $n_after = $n_before;
	for (1 .. 100)
	{
		$n_after = $redis_clients->();
		last if $n_after < $n_before;
		usleep(50_000);
	}
	cmp_ok($n_after, '<', $n_before, "lc_messages = $lang: the proxy reset the idle connection");
	my $r = call_is($s, $call, qr/^HIT$/, $after3,
		"lc_messages = $lang: the next call reconnected at once: HIT");
	unlike($r->{err}, qr/WARNING/, "lc_messages = $lang: no warning") or diag $r->{err};
	$s->quit;
}
$proxy->stop;

# ---- 2PC: what PREPARE recorded survives Redis losing everything
$node->safe_psql('postgres', q{
BEGIN;
UPDATE sales SET amount = amount + 1 WHERE region = 3;
PREPARE TRANSACTION 'ce_2pc';
});
is($redis->cli('FLUSHALL'), 'OK', 'Redis flushed between PREPARE and COMMIT PREPARED');
my $before_commit = $total->();
is($before_commit, $after3, 'the prepared update is not visible yet');
call_is($node, $call, qr/^MISS/, $before_commit, 'filled again while prepared');
call_is($node, $call, qr/^HIT$/, $before_commit, 'and served');
$node->safe_psql('postgres', "COMMIT PREPARED 'ce_2pc'");
my $after_commit = $total->();
isnt($after_commit, $before_commit, 'COMMIT PREPARED changed the result');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after_commit,
	'COMMIT PREPARED invalidated the entry filled after Redis lost the PREPARE-time state');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cache_ext_prepared'), '0',
	'its record is gone');

$node->stop;
done_testing();
