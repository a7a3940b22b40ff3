# test/t/020_redis_down.pl - Redis down: correct rows, BYPASS, circuit breaker, reconnection
#
# The circuit breaker is per backend, so its checks run in one long-lived
# session.  Whether a backend "tried" Redis is observed on the Redis side
# (total_connections_received) rather than by timing.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# its calls must reach Redis: it checks BYPASS, the circuit breaker and
# reconnection while Redis is down, which valid L1 entries would answer
# (L1 through an outage: 220_local_tier.pl).
delete $ENV{CE_L1};

my $RETRY = 2;    # seconds: cache_ext.retry_interval in this test

my $redis = CacheExt::Redis->new;
# The background worker passes every standby_lease / 4: made rare here, so
# that its connections do not count as the backend's.
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '1s'",
	"cache_ext.standby_lease = '10min'"));

my ($Q, $COLS) = sales_fixture($node);
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);

# Connections Redis has accepted so far (this redis-cli's own included).
sub redis_connections
{
	my $info = $redis->cli('INFO', 'stats');
	return $info =~ /^total_connections_received:(\d+)/m ? $1 : die "no stats in: $info";
}

my $s = CacheExt::Session->new($node, timeout => 60);
$s->query_ok("SET cache_ext.retry_interval = '${RETRY}s'");

call_is($s, $call, qr/^MISS/, $expected, 'Redis up: first call');
call_is($s, $call, qr/^HIT/, $expected, 'Redis up: second call');

# ---- Redis killed -----------------------------------------------------------

$redis->kill9;
my $st0 = cache_stats($s);
my $t_fail = time();
call_is($s, $call, qr/^BYPASS: redis unavailable/, $expected,
	'Redis killed: the query still runs');
my $st1 = cache_stats($s);
is(stats_delta($st0, $st1)->{bypasses}, 1, 'the bypass is counted');
cmp_ok(stats_delta($st0, $st1)->{errors}, '>=', 1, 'the Redis failure is counted in errors');

# Within retry_interval the backend does not try Redis at all.
my $N = 20;
my ($bad, $t0, $tried) = (0, time(), 0);
for my $i (1 .. $N)
{
	my $r = cache_call($s, $call);
	# the breaker's own reason: the call did not try Redis
	$tried++ unless ($r->{status} // '') =~ /circuit open after a failure/;
	if ($r->{timed_out} || $r->{err} =~ /ERROR/
		|| ($r->{status} // '') !~ /^BYPASS/ || $r->{rows} ne $expected)
	{
		$bad++;
		diag "call $i: status " . ($r->{status} // 'none') . " stderr $r->{err}";
	}
}
my $loop_secs = time() - $t0;
is($bad, 0, "$N more calls with Redis down: all BYPASS with the right rows");
note sprintf('%d calls with Redis down took %.3f s', $N, $loop_secs);
my $st2 = cache_stats($s);
my $in_window = time() - $t_fail < $RETRY * 0.8;
is(stats_delta($st1, $st2)->{bypasses}, $N, "the $N bypasses are counted");
SKIP:
{
	skip 'this machine is too slow to stay within retry_interval', 1 unless $in_window;
	# (not cache_stats.errors: it is server-wide, and a background worker
	# finds Redis gone in its own time)
	is($tried, 0, 'within retry_interval every call says the circuit is open: the backend did not try');
	note 'errors counted meanwhile, server-wide: ' . stats_delta($st1, $st2)->{errors};
}

# Redis back (empty) while the breaker is still open: still no attempt.
$redis->restart;
my $c0 = redis_connections();
my $r = cache_call($s, $call);
my $c1 = redis_connections();
SKIP:
{
	skip 'this machine is too slow to stay within retry_interval', 2
	  unless time() - $t_fail < $RETRY * 0.8;
	like($r->{status} // '', qr/^BYPASS/,
		'Redis back within retry_interval: still BYPASS (breaker open)');
	is($c1 - $c0, 1, 'and the backend did not even connect to Redis');
}
is($r->{rows}, $expected, 'rows are right while the breaker is open');

# Past retry_interval the backend reconnects.  (On a machine too slow to
# stay within retry_interval, the call above already reconnected and stored
# the entry: then this one is its HIT.)
my $stored_early = ($r->{status} // '') =~ /^MISS/;
my $wait = $t_fail + $RETRY + 0.5 - time();
sleep($wait) if $wait > 0;
call_is($s, $call, $stored_early ? qr/^HIT/ : qr/^MISS/, $expected,
	'past retry_interval: reconnected, MISS' . ($stored_early ? ' (stored by the call before: HIT)' : ''));
call_is($s, $call, qr/^HIT/, $expected, 'then HIT');

# ---- A new session while Redis is down --------------------------------------

$redis->kill9;
my $r_down = call_is($node, "SET client_min_messages = debug1;\n$call",
	qr/^BYPASS: redis unavailable/, $expected, 'new session, Redis down from the start');
like($r_down->{err}, qr/Redis failure of kind refused:/,
	'nobody listens on the port: a failure of kind refused (from errno, whatever the language)');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM cached_query('SELECT 1') AS t(x int); SELECT last_error_kind FROM cache_health()"),
	'1' . "\n" . 'refused', 'cache_health() names the kind of the last failure: refused');
$redis->restart;
call_is($node, $call, qr/^MISS/, $expected, 'new session, Redis back');
call_is($node, $call, qr/^HIT/, $expected, 'new session, HIT again');

# ---- Redis stopped cleanly (SIGTERM) under an open connection ---------------

$redis->stop;
call_is($s, "SET cache_ext.retry_interval = 0;\n$call", qr/^BYPASS: redis unavailable/,
	$expected, 'Redis shut down: BYPASS');
$redis->start;
call_is($s, $call, qr/^MISS/, $expected, 'retry_interval = 0: reconnects at once');

$s->quit;
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
$redis->stop;
done_testing();
