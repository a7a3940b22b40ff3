# test/t/280_single_flight.pl - single flight: concurrent misses of one
# entry run the query once, the others wait and look up again
#
# Counting executions.  cached_query refuses volatile functions, so the
# query cannot count its own runs (nextval, an INSERT), and an opted-in
# opaque function's results are per session.  auto_explain counts them
# instead, outside cache_ext: with log_nested_statements it logs every
# execution of the inner statement that reaches ExecutorEnd, under the
# statement's own text ("Query Text: SELECT /*flight_exec*/ ..."), which
# the outer cached_query statements do not start with.  A cancelled or
# failed execution is not logged: those are counted from the sessions'
# errors.  cache_stats and cache_status() are checked too, but never as
# the only witness.
#
# The query is made slow by a sort of a cross join with generate_series
# (no pg_sleep: it is volatile), and its last step divides by a value of
# flight_gate, so that setting it to 0 makes a fill fail at its end.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# every hit run again would count as an execution: verify_rate stays 0
delete $ENV{CE_VERIFY_RATE};

my $FILL_WAIT = 10000;
my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"shared_preload_libraries = 'cache_ext,auto_explain'",
	'auto_explain.log_min_duration = 0',
	'auto_explain.log_nested_statements = on',
	'max_parallel_workers_per_gather = 0',
	'cache_ext.verify_rate = 0',
	"cache_ext.fill_wait = $FILL_WAIT",
	'cache_ext.fill_lock = on',
	'restart_after_crash = on',
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));

$node->safe_psql('postgres', q{
CREATE TABLE flight_src (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO flight_src SELECT i, i % 97 FROM generate_series(1, 1000) AS i;
CREATE TABLE flight_gate (id int PRIMARY KEY, g int NOT NULL);
INSERT INTO flight_gate VALUES (1, 1);
SELECT cache_track('flight_src');
SELECT cache_track('flight_gate');
});

my $N = $ENV{CE_FLIGHT_ROWS} // 1800;
my $Q = 'SELECT /*flight_exec*/ count(DISTINCT s.v * 100000 + g.i) AS d, '
  . 'sum(s.v::bigint * g.i) / (SELECT g FROM flight_gate WHERE id = 1) AS total '
  . "FROM flight_src s CROSS JOIN generate_series(1, $N) AS g(i)";
my $COLS = 'd bigint, total numeric';
my $CALL = "SELECT 'R:' || d || '/' || total FROM cached_query("
  . sql_literal($Q) . ") AS t($COLS);\nSELECT 'S:' || cache_status();";

# executions of the inner statement logged since $from (a log offset)
sub execs
{
	my ($n, $from) = @_;
	my $log = slurp_file($n->logfile);
	$log = substr($log, $from);
	my @m = $log =~ m{Query Text: SELECT /\*flight_exec\*/}g;
	return scalar @m;
}

sub log_pos { return -s $_[0]->logfile; }

# The query's result computed cheaply (the same types, so the same text):
# v * 100000 + i is distinct for each (v, i), and the sum factors.
my $CHEAP = "SELECT (count(DISTINCT v) * $N) || '/' || "
  . "((sum(v)::numeric * ($N * ($N + 1) / 2)) / (SELECT g FROM flight_gate WHERE id = 1)) "
  . 'FROM flight_src';
sub expected { return $_[0]->safe_psql('postgres', $CHEAP); }

# (rows, status, stderr, seconds since $t0) of a session's call
sub result
{
	my ($s, $tag, $t0) = @_;
	my ($out, $err) = $s->wait($tag, 60);
	my $secs = time() - ($t0 // time());
	return { r => '', st => '(no answer)', err => '', secs => $secs } unless defined $out;
	my ($r) = $out =~ /^R:(.*)$/m;
	my ($st) = $out =~ /^S:(.*)$/m;
	return { r => $r // '', st => $st // '', err => $err // '', secs => $secs };
}

# sessions whose cached_query sleeps in flight.c (wait event Extension)
# (polled from one open session: a new psql per poll took longer than a
# fill's window on a loaded machine, and the waiters were done unseen)
my $poller;
sub poll_waiting
{
	my ($n, $want) = @_;
	my $deadline = time() + 20;
	$poller //= CacheExt::Session->new($n);
	while (time() < $deadline)
	{
		my $out = $poller->query(q{
SELECT 'N:' || count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Extension' AND query LIKE '%cached_query%'
  AND pid <> pg_backend_pid();}, 20);
		return 1 if ($out =~ /^N:(\d+)$/m ? $1 : 0) >= $want;
		sleep(0.01);
	}
	return 0;
}

sub count_like
{
	my ($re, @res) = @_;
	return scalar grep { $_->{st} =~ $re } @res;
}

sub count_rows
{
	my ($want, @res) = @_;
	return scalar grep { $_->{r} eq $want } @res;
}

sub slowest { return (sort { $b <=> $a } map { $_->{secs} } @_)[0]; }

# a stale entry: stored, then its table changed
sub invalidate
{
	my ($what) = @_;
	$node->safe_psql('postgres', $what // 'UPDATE flight_src SET v = v + 1 WHERE id = 1');
}

# Sessions connected once (a connection costs more than the fill window).
my $K = 16;
my @pool = map { CacheExt::Session->new($node) } 0 .. $K;
my $gate = shift @pool;

# The call in the first $k sessions of the pool, started together (an
# advisory lock barrier).
sub stampede
{
	my ($k, $setup, $call) = @_;
	$call //= $CALL;
	my @s = @pool[ 0 .. $k - 1 ];
	$gate->query_ok('SELECT pg_advisory_lock(4242)');
	my @tags;
	for my $s (@s)
	{
		push @tags, $s->send(($setup // '') . "SELECT pg_advisory_lock_shared(4242);\n"
			  . "SELECT pg_advisory_unlock_shared(4242);\n$call");
	}
	my $deadline = time() + 20;
	while (time() < $deadline)
	{
		last if $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted})
		  >= $k;
		sleep(0.02);
	}
	my $t0 = time();
	$gate->query_ok('SELECT pg_advisory_unlock(4242)');
	return map { result($s[$_], $tags[$_], $t0) } 0 .. $k - 1;
}

# pool[0] fills (its call is running the query), then pool[1..$k] call and
# are seen waiting.  Returns the filler's tag, the waiters' tags, and
# whether all of them were seen waiting.
sub fill_with_waiters
{
	my ($k, $filler_setup) = @_;
	my $f = $pool[0];
	my $ftag = $f->send(($filler_setup // '') . $CALL);
	my $deadline = time() + 20;
	while (time() < $deadline)
	{
		last if $node->safe_psql('postgres',
			'SELECT count(*) FROM pg_stat_activity WHERE pid = ' . $f->backend_pid
			  . " AND state = 'active' AND query LIKE '%cached_query%'");
		sleep(0.01);
	}
	sleep(0.1);
	my @wtags = map { $pool[$_]->send($CALL) } 1 .. $k;
	return ($ftag, \@wtags, poll_waiting($node, $k));
}

sub waiters_results
{
	my ($wtags, $t0) = @_;
	return map { result($pool[ $_ + 1 ], $wtags->[$_], $t0) } 0 .. $#$wtags;
}

my $t = time();
is($node->safe_psql('postgres', "SELECT d || '/' || total FROM ($Q) q"), expected($node),
	'setup: the cheap expected result is the query\'s');
my $tq = time() - $t;
note sprintf('the query takes %.2f s directly', $tq);
$node->safe_psql('postgres', "SELECT * FROM cached_query(" . sql_literal($Q) . ") AS t($COLS)");

# ---- 1. many sessions, one invalidated result: one execution -----------------

invalidate();
my $expected = expected($node);
$node->safe_psql('postgres', 'SELECT cache_stats_reset()');
my $pos = log_pos($node);
my @res = stampede($K);
is(execs($node, $pos), 1, "$K concurrent sessions: the query ran once");
is(count_rows($expected, @res), $K, 'every session got the current result');
is(count_like(qr/^MISS \(invalidated\)$/, @res), 1, 'one session filled (MISS (invalidated))');
is(count_like(qr/^HIT/, @res), $K - 1, 'the others hit');
my $waited = count_like(qr/^HIT \(after waiting for a concurrent fill\)$/, @res);
cmp_ok($waited, '>=', $K / 2, "most of them after waiting for the fill ($waited)");
my $stats = cache_stats($node);
is($stats->{misses}, 1, 'cache_stats: one miss');
is($stats->{fill_waits}, $waited, 'cache_stats.fill_waits counts the waits');
is($stats->{fill_wait_hits}, $waited, 'cache_stats.fill_wait_hits: each wait ended in a hit');
cmp_ok($stats->{fill_wait_time_ms}, '>', 0, 'cache_stats.fill_wait_time_ms counted');
note sprintf('slowest session %.2f s', slowest(@res));

is(scalar($redis->scan_keys('*:f:*')), 0, 'fill_lock: the filler released its lock in Redis');

# ---- 1b. a Redis that refuses scripts: the lock is released by GET and DEL ----

$redis->cli('ACL', 'SETUSER', 'default', '-@scripting');
$redis->cli('ACL', 'LOG', 'RESET');
invalidate();
$expected = expected($node);
$pos = log_pos($node);
@res = stampede(4);
is(execs($node, $pos), 1, 'no EVAL: 4 concurrent sessions, the query ran once');
is(count_rows($expected, @res), 4, 'no EVAL: every session got the current result');
is(scalar($redis->scan_keys('*:f:*')), 0, 'no EVAL: the lock was released all the same');
like(join("\n", $redis->cli('ACL', 'LOG')), qr/\beval\b/i, 'no EVAL: Redis did refuse the script');
$redis->cli('ACL', 'SETUSER', 'default', '+@scripting');

# ---- 2. the filler cancelled: the waiters go on at once ----------------------

invalidate();
$expected = expected($node);
$pos = log_pos($node);
my ($ftag, $wtags, $all) = fill_with_waiters(8);
ok($all, 'cancel: 8 sessions wait for the fill');
my $EXPLAIN = 'SELECT cache_explain(' . sql_literal($Q) . ") ? 'fill_in_progress'";
is($node->safe_psql('postgres', $EXPLAIN), 't', 'cache_explain says a fill is in progress');
my $t0 = time();
$node->safe_psql('postgres', 'SELECT pg_cancel_backend(' . $pool[0]->backend_pid . ')');
my $fr = result($pool[0], $ftag);
like($fr->{err}, qr/canceling statement due to user request/, 'cancel: the filler was cancelled');
@res = waiters_results($wtags, $t0);
cmp_ok(slowest(@res), '<', $tq * 2 + 3,
	sprintf('cancel: the waiters finished %.2f s after the cancel (query %.2f s, fill_wait %d ms)',
		slowest(@res), $tq, $FILL_WAIT));
is(count_rows($expected, @res), 8, 'cancel: every waiter got the current result');
is(execs($node, $pos), 1, 'cancel: one waiter took the fill over, the query completed once');
is(count_like(qr/^MISS \(waited for a concurrent fill; invalidated\)$/, @res), 1,
	'cancel: the one that took over says MISS (waited for a concurrent fill; invalidated)');
is(count_like(qr/^HIT \(after waiting for a concurrent fill\)$/, @res), 7,
	'cancel: the others hit after waiting');
is($node->safe_psql('postgres', $EXPLAIN), 'f', 'cache_explain: no fill in progress now');

# ---- 2b. the filler terminated: its exit releases the waiters ----------------

invalidate();
$expected = expected($node);
($ftag, $wtags, $all) = fill_with_waiters(4);
ok($all, 'terminate: 4 sessions wait for the fill');
$t0 = time();
$node->safe_psql('postgres', 'SELECT pg_terminate_backend(' . $pool[0]->backend_pid . ')');
@res = waiters_results($wtags, $t0);
cmp_ok(slowest(@res), '<', $tq * 2 + 3,
	sprintf('terminate: the waiters finished %.2f s after the filler was terminated', slowest(@res)));
is(count_rows($expected, @res), 4, 'terminate: every waiter got the current result');
$pool[0]->quit;
$pool[0] = CacheExt::Session->new($node);

# ---- 3. the filler fails: the waiters are released and run it ----------------

# the gate at 0 makes the query fail at its end (division by zero); it is
# set back to 1 while the filler runs, which also invalidates its result
invalidate('UPDATE flight_gate SET g = 0');
($ftag, $wtags, $all) = fill_with_waiters(4);
ok($all, 'error: 4 sessions wait for the fill');
invalidate('UPDATE flight_gate SET g = 1');
$expected = expected($node);
$fr = result($pool[0], $ftag);
$t0 = time();
like($fr->{err}, qr/division by zero/, 'error: the filler failed');
@res = waiters_results($wtags, $t0);
cmp_ok(slowest(@res), '<', $tq * 2 + 3,
	sprintf('error: the waiters finished %.2f s after the error', slowest(@res)));
is(count_rows($expected, @res), 4, 'error: every waiter got the current result');
is(scalar(grep { $_->{err} ne '' } @res), 0, 'error: no waiter inherited the error');
is(count_like(qr/^(?:MISS \(waited for a concurrent fill; invalidated\)|HIT \(after waiting for a concurrent fill\))$/, @res), 4,
	'error: each waiter says it waited');

# ---- 4. invalidated during the fill: no waiter gets the old result -----------

invalidate();
my $old = expected($node);
$pos = log_pos($node);
($ftag, $wtags, $all) = fill_with_waiters(6);
ok($all, 'invalidation: 6 sessions wait for the fill');
invalidate('UPDATE flight_src SET v = v + 5 WHERE id = 2');
my $new = expected($node);
isnt($new, $old, 'invalidation: the result changed during the fill');
$fr = result($pool[0], $ftag);
is($fr->{r}, $old, "invalidation: the filler returns its snapshot's result");
@res = waiters_results($wtags);
is(count_rows($new, @res), 6, 'invalidation: every waiter got the new result, none the stale fill');
is(execs($node, $pos), 2, 'invalidation: the filler and one waiter ran the query');
is(count_like(qr/^MISS \(waited for a concurrent fill; invalidated\)$/, @res), 1,
	'invalidation: one waiter found the fill stale and ran it');

# ---- 5. bypasses and fill_wait = 0 never wait --------------------------------

invalidate();
$expected = expected($node);
my $before = cache_stats($node);
($ftag) = $pool[0]->send($CALL);
sleep(0.15);
my $rr = $pool[1]->send("BEGIN ISOLATION LEVEL REPEATABLE READ;\n$CALL\nCOMMIT;");
my $ow = $pool[2]->send("BEGIN;\nUPDATE flight_gate SET g = g;\n$CALL\nROLLBACK;");
my $f0 = $pool[3]->send("SET cache_ext.fill_wait = 0;\n$CALL\nRESET cache_ext.fill_wait;");
like(result($pool[1], $rr)->{st}, qr/^BYPASS: repeatable read transaction$/, 'repeatable read: bypasses');
like(result($pool[2], $ow)->{st}, qr/^BYPASS: .*(?:changed|written)/, 'own writes: bypass');
like(result($pool[3], $f0)->{st}, qr/^MISS \(invalidated\)$/, 'fill_wait = 0: runs at once');
is(result($pool[0], $ftag)->{r}, $expected, 'the fill went on');
my $after = cache_stats($node);
is($after->{fill_waits} - $before->{fill_waits}, 0, 'none of them waited');

# ---- 6. fill_wait = 0: no single flight ---------------------------------------

invalidate();
$pos = log_pos($node);
@res = stampede(3, "SET cache_ext.fill_wait = 0;\n");
is(execs($node, $pos), 3, 'fill_wait = 0: each of 3 concurrent sessions ran the query');
is(count_like(qr/waited|waiting/, @res), 0, 'fill_wait = 0: none waited');
$pool[$_]->query_ok('RESET cache_ext.fill_wait') for 0 .. 2;

# ---- 6b. a result that cannot be stored: its next fills are not waited for ---

# as slow as the main query, and 3 kB: above a max_entry_size of 1 kB
my $QB = 'SELECT /*flight_big*/ repeat(\'x\', 3000) || count(DISTINCT s.v * 100000 + g.i) AS r '
  . "FROM flight_src s CROSS JOIN generate_series(1, $N) AS g(i)";
my $big_len = $node->safe_psql('postgres', "SELECT length(r) FROM ($QB) q");
my $CALLB = "SELECT 'R:' || length(r) FROM cached_query(" . sql_literal($QB)
  . ") AS t(r text);\nSELECT 'S:' || cache_status();";
my $BIG = "SET cache_ext.max_entry_size = '1kB';\n";
like(result($pool[0], $pool[0]->send($BIG . $CALLB))->{st},
	qr/^MISS \(not stored: result larger than cache_ext.max_entry_size\)$/,
	'unstorable: the result is too large to store');
$before = cache_stats($node);
$pos = log_pos($node);
@res = stampede(3, $BIG, $CALLB);
my @big = substr(slurp_file($node->logfile), $pos) =~ m{Query Text: SELECT /\*flight_big\*/}g;
is(scalar(@big), 3, 'unstorable: each of 3 concurrent sessions ran it');
is(cache_stats($node)->{fill_waits} - $before->{fill_waits}, 0,
	'unstorable: none waited for another (its last fill could not store)');
is(count_rows($big_len, @res), 3, 'unstorable: each got the result');
$pool[$_]->query_ok('RESET cache_ext.max_entry_size') for 0 .. 2;

# ---- 7. across servers: a hot standby waits for the primary's fill -----------

# Entries are shared by servers of one system identifier: a primary and
# its hot standbys.  A standby never stores; with cache_ext.fill_lock it
# waits for the primary's fill instead of running the query.
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
my @ss = map { CacheExt::Session->new($standby) } 1 .. 4;

invalidate();
$node->wait_for_catchup($standby);
$expected = expected($node);
my $ppos = log_pos($node);
my $spos = log_pos($standby);
$ftag = $pool[0]->send($CALL);
sleep(0.15);
my @stags = map { $_->send($CALL) } @ss;
$fr = result($pool[0], $ftag);
@res = map { result($ss[$_], $stags[$_]) } 0 .. 3;
is($fr->{r}, $expected, 'fill_lock: the primary filled');
is(count_rows($expected, @res), 4, 'fill_lock: every standby session got the result');
is(execs($standby, $spos), 0, 'fill_lock: the standby never ran the query: it waited for the primary');
is(execs($node, $ppos), 1, 'fill_lock: the primary ran it once');
is(count_like(qr/^HIT \(after waiting for a concurrent fill\)$/, @res), 4,
	'fill_lock: the standby sessions say they waited');

# without the lock a standby cannot know: it runs the query
invalidate();
$node->wait_for_catchup($standby);
$spos = log_pos($standby);
$ftag = $pool[0]->send($CALL);
sleep(0.15);
my ($o1) = $ss[0]->query("SET cache_ext.fill_lock = off;\n$CALL", 60);
like($o1, qr/^S:MISS \((?!waited).*not stored: hot standby\)$/m, 'fill_lock off: the standby does not wait');
is(execs($standby, $spos), 1, 'fill_lock off: the standby runs the query itself');
result($pool[0], $ftag);
$_->quit for @ss;
$standby->stop;

# ---- 8. the filler killed: the server restarts, then serves again ------------

invalidate();
$expected = expected($node);
($ftag, $wtags, $all) = fill_with_waiters(4);
ok($all, 'kill: 4 sessions wait for the fill');
$t0 = time();
kill 'KILL', $pool[0]->backend_pid;
my $deadline = time() + 30;
sleep(0.05) while time() < $deadline && grep { $pool[$_]->alive } 1 .. 4;
cmp_ok(time() - $t0, '<', 10,
	'kill: the waiting sessions ended at once (the postmaster restarts the server)');
is(scalar(grep { $pool[$_]->alive } 1 .. 4), 0, 'kill: none of them is left waiting');
$_->quit for (@pool, $gate);
# the poller's backend died with the server: a new one if polled again
$poller = undef;
ok($node->poll_query_until('postgres', 'SELECT true'), 'kill: the server is back');
my $s = CacheExt::Session->new($node);
$t0 = time();
my ($o) = $s->query($CALL, 60);
# the killed filler's lock in Redis names this server: deleted, not waited for
cmp_ok(time() - $t0, '<', $tq * 2 + 3,
	sprintf('kill: the next fill did not wait for the dead filler\'s lock (%.2f s)', time() - $t0));
like($o, qr/^R:\Q$expected\E$/m, 'kill: a call after the restart gets the current result');
like($o, qr/^S:MISS/m, 'kill: it filled (the slot table is new)');
($o) = $s->query($CALL, 60);
like($o, qr/^S:HIT(?: \(local\))?$/m, 'kill: the next call hits');
$s->quit;

$node->stop;
$redis->stop;
done_testing();
