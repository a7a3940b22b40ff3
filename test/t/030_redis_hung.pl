# test/t/030_redis_hung.pl - Redis hung (SIGSTOP): timeouts, cancel, statement_timeout, terminate
#
# A stopped redis-server still completes TCP handshakes (the kernel does)
# but never answers.  Every wait of cached_query() must be bounded by
# cache_ext.command_timeout and interruptible.  Time bounds here are loose on
# purpose (the failure they catch is a hang, not slowness).

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
# every call must wait on the hung Redis (timeouts, cancel,
# statement_timeout, terminate); an L1 hit waits on nothing (220 covers L1
# hits with Redis stopped).
delete $ENV{CE_L1};

my $BOUND = 10;    # seconds: "it did not hang"

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.retry_interval = 0"));

my ($Q, $COLS) = sales_fixture($node);
my %expected = map { $_ => direct_rows($node, $Q, [$_]) } (3, 4);
my $LONG = "SET cache_ext.command_timeout = '60s';\nSET cache_ext.connect_timeout = '60s';\n";
my $SHORT = "SET cache_ext.command_timeout = '200ms';\n";

call_is($node, cq($Q, $COLS, 3), qr/^MISS/, $expected{3}, 'Redis up: MISS');
call_is($node, cq($Q, $COLS, 3), qr/^HIT/, $expected{3}, 'Redis up: HIT');

# Wait until backend $pid is running a cached_query() call; true if it is.
sub wait_active
{
	my $pid = shift;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE pid = $pid AND state = 'active' AND query LIKE '%cached_query%'});
}

$redis->pause;

# ---- command_timeout --------------------------------------------------------

my $r = call_is($node, "SET client_min_messages = debug1;\n" . $SHORT . cq($Q, $COLS, 3),
	qr/^BYPASS/, $expected{3}, 'Redis hung, command_timeout 200ms');
cmp_ok($r->{elapsed}, '<', $BOUND, "and it returned within ${BOUND}s");
like($r->{err}, qr/Redis failure of kind timeout:/, 'and the failure is of kind timeout');
note sprintf('the call took %.3f s', $r->{elapsed});

# ---- pg_cancel_backend ------------------------------------------------------

my $s = CacheExt::Session->new($node, timeout => 60);
my $pid = $s->backend_pid;
$s->query_ok($LONG);
my $tag = $s->send(cq($Q, $COLS, 3));
ok(wait_active($pid), 'command_timeout 60s: the call is running');
sleep(1);
my @early = $s->wait($tag, 0.5);
ok(!@early, 'and still waiting on the hung Redis after 1 s');

is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"), 't',
	'pg_cancel_backend');
my ($out, $err, $secs) = $s->wait($tag, 60);
ok(defined $out, 'the cancelled call returned');
like($err // '', qr/canceling statement due to user request/,
	'with "canceling statement due to user request"');
cmp_ok($secs // 999, '<', $BOUND, "within ${BOUND}s of the cancel");
is($s->query('SELECT 1'), '1', 'the session is usable after the cancel');

# Still hung: the same backend, short timeout, after a cancelled command.
call_is($s, $SHORT . cq($Q, $COLS, 3), qr/^BYPASS/, $expected{3},
	'the cancelled session, Redis still hung: BYPASS');

# ---- statement_timeout ------------------------------------------------------

$r = cache_call($node,
	"SET statement_timeout = '500ms';\n" . $LONG . cq($Q, $COLS, 3),
	timeout => 60);
ok(!$r->{timed_out}, 'statement_timeout 500ms, command_timeout 60s: the call returned');
like($r->{err}, qr/canceling statement due to statement timeout/,
	'with a statement timeout error');
cmp_ok($r->{elapsed}, '<', $BOUND, "within ${BOUND}s");

# ---- pg_terminate_backend ---------------------------------------------------

my $t = CacheExt::Session->new($node, timeout => 60);
my $tpid = $t->backend_pid;
$t->query_ok($LONG);
$t->send(cq($Q, $COLS, 3));
ok(wait_active($tpid), 'a second hung call is running');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($tpid)"), 't',
	'pg_terminate_backend');
my $gone = $t->wait_stderr(qr/terminating connection|server closed the connection/, 60);
ok(defined $gone && $gone < $BOUND, "the hung backend exits within ${BOUND}s");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $tpid"),
	'and is gone from pg_stat_activity');
$t->quit;

# ---- Redis resumed ----------------------------------------------------------

$redis->resume;
# The cancelled/timed-out session must not read replies meant for commands it
# gave up on: ask for an entry that does not exist yet.
call_is($s, cq($Q, $COLS, 4), qr/^MISS/, $expected{4},
	'Redis resumed, cancelled session: a new entry is a MISS with its own rows');
call_is($s, cq($Q, $COLS, 3), qr/^HIT/, $expected{3},
	'the old entry is a HIT with its own rows');
call_is($s, cq($Q, $COLS, 4), qr/^HIT/, $expected{4}, 'the new entry is a HIT');
call_is($node, cq($Q, $COLS, 3), qr/^HIT/, $expected{3}, 'a new session: HIT');
$s->quit;

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
$redis->stop;
done_testing();
