# test/t/246_review_spread.pl - adversarial review of ecff65c (issue 13):
# one database's entries spread over every master of a Redis Cluster.
#
# Three masters with a replica each (CacheExt::RedisCluster) on loopback.
#
#   A. cache_purge: deletes this database's entries on every master, the
#      old layout's too (the database's own tag), never another
#      database's entries
#   B. a side master paused (SIGSTOP): a lookup whose entry lives there
#      is bounded by command_timeout (BYPASS, right value); with a long
#      command_timeout, statement_timeout cancels it while the side reply
#      is in flight, and the same session then works (no crash, no leak)
#   E. a slow home group (a new connection whose handshake takes longer
#      than command_timeout but less than connect_timeout) must not fail a
#      healthy side nor mark it down
#   D. the consistency checker while an entry bucket's slot migrates (ASK,
#      MOVED on a side) and while a master holding entries (not the
#      database's) is killed and its replica promoted: 0 stale reads
#  A2. cache_purge after that failover (the dead master is still a node of
#      the cluster)
#   C. every master killed, replicas paused: calls bypass, bounded, right
#      values
#
#
# Assertions that fail on ecff65c are marked "FAILS on ecff65c" below:
# E (2, every run), A2 'cache_purge works after a failover' (every run; 'no
# entry left' when the dead node comes before live ones in the map), C
# 'circuit open' (every run) and C 'costs nothing' (1 run in 4: 250 ms a
# call; the others were gated by the outbox before any lookup).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use List::Util ();
use POSIX ();

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::RedisCluster;
use CacheExt::Checker;

my $t0 = time();

{
	package ClusterSeeds246;
	sub new { my ($c, @seeds) = @_; return bless { seeds => \@seeds }, $c; }
	sub url { my $s = shift; return 'redis-cluster://' . join(',', map { $_->address } @{ $s->{seeds} }); }
}

my $rc = CacheExt::RedisCluster->new(masters => 3, replicas => 1, node_timeout => 1500);
my $seeds = ClusterSeeds246->new($rc->masters);
my $node = cache_ext_node('main', $seeds, extra_conf => join("\n",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '500ms'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.invalidation_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

$node->safe_psql('postgres', 'CREATE DATABASE d2');
for my $db ('postgres', 'd2')
{
	$node->safe_psql($db, q{
		CREATE EXTENSION IF NOT EXISTS cache_ext;
		CREATE TABLE kv (k int PRIMARY KEY, v int);
		INSERT INTO kv SELECT g, 10 FROM generate_series(1, 10) g;
		SELECT cache_track('kv');
	});
}

my $qk = q{SELECT * FROM cached_query('SELECT v + $1 FROM kv WHERE k = 1', %d) AS t(s int)};
sub callk
{
	my ($i, $db) = @_;
	my $out = $node->safe_psql($db // 'postgres', sprintf($qk, $i) . '; SELECT cache_status()');
	$out =~ s/\n(MISS|BYPASS|HIT)(.*)/\n$1/s;
	return $out;
}
sub entry_key
{
	my ($i) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT cache_explain('SELECT v + \$1 FROM kv WHERE k = 1', $i)::jsonb->>'key'});
}
sub count_keys
{
	my ($pat) = @_;
	my $n = 0;
	$n += scalar(grep { length } $_->cli('KEYS', $pat)) for $rc->masters;
	return $n;
}

for my $db ('postgres', 'd2')
{
	callk($_, $db) for 1 .. 30;
}
my $ek1 = entry_key(1);
my ($tag1) = $ek1 =~ /^cache_ext:\{([0-9a-f]{16})\.\d+\}:e:/;
ok(defined $tag1, "entry keys carry the tag and a bucket ($ek1)");
my $home = $rc->node_for_slot($rc->keyslot("{$tag1}"));
my %k_on;    # master port => [k whose entry it holds]
for my $i (1 .. 30)
{
	push @{ $k_on{ $rc->node_for_slot($rc->keyslot(entry_key($i)))->port } }, $i;
}
my ($side) = grep { $_->port != $home->port && $k_on{ $_->port } } $rc->masters;
ok($side, 'a master other than the home master holds entries');
my $kside = $k_on{ $side->port }[0];

# ---- A. cache_purge: every master, old layout, never another database --------

my $d2_before = count_keys('*') - count_keys("cache_ext:{$tag1*");
# an entry of the layout before ecff65c (the database's tag alone)
$home->cli('SET', "cache_ext:{$tag1}:e:" . ('ab' x 32), 'x', 'PX', 600000);
my $mine = count_keys("cache_ext:{$tag1*:e:*");
my $purged = $node->safe_psql('postgres', 'SELECT cache_purge()');
is($purged, $mine, "A: cache_purge deletes every entry of the database ($mine, old layout included)");
is(count_keys("cache_ext:{$tag1*:e:*"), 0, 'A: none is left');
is(count_keys('*') - count_keys("cache_ext:{$tag1*"), $d2_before,
	'A: the other database keeps every key');
is(callk(1, 'd2'), "11\nHIT", 'A: the other database still hits');
callk($_) for 1 .. 30;
is(callk($kside), (10 + $kside) . "\nHIT", "A: refilled (k=$kside on a side master)");

# ---- B. a side master paused: bounded, interruptible ------------------------------

$rc->pause($side);
my $tb = time();
is(callk($kside), (10 + $kside) . "\nBYPASS", 'B: paused side: its entry bypasses, right value');
cmp_ok(time() - $tb, '<', 2.5, 'B: bounded by command_timeout');
my ($hk) = @{ $k_on{ $home->port } // [] };
is(callk($hk), (10 + $hk) . "\nHIT", "B: an entry on the home master still hits (k=$hk)") if defined $hk;

# a long command_timeout: statement_timeout fires while the side reply is
# awaited; the node resumes a little later, the session goes on
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	usleep(900_000);
	kill 'CONT', $side->pid;
	POSIX::_exit(0);
}
$tb = time();
my ($ret, $out, $err) = $node->psql('postgres', join(";\n",
	"SET cache_ext.command_timeout = '5s'",
	"SET cache_ext.retry_interval = '0'",
	"SET statement_timeout = '300ms'",
	sprintf($qk, $kside),
	'RESET statement_timeout',
	'SELECT pg_sleep(1.2)',
	(map { sprintf($qk, $_) } 1 .. 30),
	'SELECT cache_status()') . ';', on_error_stop => 0);
waitpid($pid, 0);
$rc->resume($side);
my $tcancel = time() - $tb;
like($err, qr/canceling statement due to statement timeout/, 'B: statement_timeout cancels the in-flight call');
cmp_ok($tcancel, '<', 4, "B: the session took ${\ sprintf('%.1f', $tcancel)} s");
my @vals = grep { /^\d+$/ } split /\n/, $out;
is_deeply([ @vals[ -30 .. -1 ] ], [ map { 10 + $_ } 1 .. 30 ],
	'B: the same session then returns right values') or diag "$out\n$err";
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pm_start,
	'B: no backend crashed (no restart)');
# the session reused after the cancel: the last call may bypass once
# (the pause may have cost the side its entry: a failover, a bypass that
# dropped it; then one miss stores it again)
my @again = map { callk($kside) } 1 .. 3;
ok(!(grep { !/^\Q@{[10 + $kside]}\E\n/ } @again) && (grep { /\nHIT$/ } @again),
	'B: the side entry hits again (right values)') or diag explain \@again;

# five calls cancelled while the side reply is awaited, in one session
# whose connections are open: the backend's descriptors do not grow (each
# cancel closes its side socket and its wait event set)
# (one session driven step by step: the side is stopped only once its
# connections are open, whatever the machine's speed; its replica does
# not take over meanwhile)
$_->cli('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes') for $rc->replicas_of($side);
# fresh results whose entries would live on the side: no local-tier
# entry, so each lookup waits for the side's reply
# (the master serving $kside's entry now: part B may have seen a failover)
$side = $rc->node_for_slot($rc->keyslot(entry_key($kside)));
my @kfresh;
for my $i (100 .. 200)
{
	last if @kfresh == 5;
	push @kfresh, $i
	  if $rc->node_for_slot($rc->keyslot(entry_key($i)))->port == $side->port;
}
is(scalar(@kfresh), 5, 'B: five fresh results whose entries the side would hold');
my $bs = $node->background_psql('postgres', on_error_stop => 0);
$bs->query_safe("SET cache_ext.command_timeout = '5s'");
$bs->query_safe(sprintf($qk, $kside));
$bs->query_safe(sprintf($qk, $hk)) if defined $hk;
my @fds = ($bs->query_safe("SELECT count(*) FROM pg_ls_dir('/proc/self/fd')"));
kill 'STOP', $side->pid;
my $ncancel = 0;
for my $i (1 .. 5)
{
	$bs->{stderr} = '';    # BackgroundPsql keeps it across queries
	$bs->query("SET statement_timeout = '80ms'; " . sprintf($qk, $kfresh[ $i - 1 ]) . '; RESET statement_timeout');
	$ncancel++ if ($bs->{stderr} // '') =~ /canceling statement due to statement timeout/;
}
kill 'CONT', $side->pid;
$bs->{stderr} = '';
push @fds, $bs->query_safe("SELECT count(*) FROM pg_ls_dir('/proc/self/fd')");
$bs->quit;
$_->cli('CONFIG', 'SET', 'cluster-replica-no-failover', 'no') for $rc->replicas_of($side);
is($ncancel, 5, 'B: five cancels');
cmp_ok($fds[-1] // 999, '<=', $fds[0] // 0, "B: no descriptor leaked over the cancels (@fds)");
$rc->wait_ok(timeout => 10);
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pm_start,
	'B: still no crash');
note sprintf('A+B: %.1f s', time() - $t0);

# ---- E. a slow home (a fresh connection) must not fail a healthy side --------
#
# The side replies are read against a deadline taken when the call began
# (command_timeout), while the home group has bounds of its own
# (connect_timeout for a new connection, then command_timeout, and a retry
# on a closed one).  Here the home connection was closed by the server and
# the home master answers its handshake after ~0.6 s, within connect_timeout
# (2 s): every node answered in time, yet the side's reply, waiting in its
# socket, is "timed out" and the healthy side is marked down.
my $te = time();
is(callk($kside), (10 + $kside) . "\nHIT", 'E: before');
my $sync = PostgreSQL::Test::Utils::tempdir('sync246');
$pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	# once the session's first call made its connections: close the
	# session's home connection, pause the home master for 1 s
	my $until = time() + 20;
	usleep(10_000) until -e "$sync/a" || time() > $until;
	$home->cli('CLIENT', 'KILL', 'TYPE', 'normal');
	kill 'STOP', $home->pid;
	{ open(my $fh, '>', "$sync/b") or die; close($fh); }
	usleep(1_000_000);
	kill 'CONT', $home->pid;
	POSIX::_exit(0);
}
my $wait_b = qq{DO \$\$ BEGIN FOR i IN 1 .. 2000 LOOP EXIT WHEN (pg_stat_file('$sync/b', true)).size IS NOT NULL; PERFORM pg_sleep(0.005); END LOOP; END \$\$;};
($ret, $out, $err) = $node->psql('postgres', join("\n",
	"SET cache_ext.connect_timeout = '2s';",
	"SET cache_ext.retry_interval = '10s';",
	sprintf($qk, $kside) . ';',
	'SELECT cache_status();',
	qq{COPY (SELECT 1) TO '$sync/a';},
	$wait_b,
	sprintf($qk, $kside) . ';',
	'SELECT cache_status();',
	sprintf($qk, $kside) . ';',
	'SELECT cache_status();'), on_error_stop => 0);
waitpid($pid, 0);
kill 'CONT', $home->pid;
my @est = grep { /^(HIT|MISS|BYPASS)/ } split /\n/, $out;
note "E: $_" for @est, split(/\n/, $err);
is(scalar(@est), 3, 'E: three calls');
# FAILS on ecff65c: BYPASS: redis unavailable (Redis Cluster node ...: timed out)
unlike($est[1] // '', qr/Redis Cluster node/,
	'E: a slow home handshake within connect_timeout does not fail the side');
# FAILS on ecff65c: the healthy side stays "down" for retry_interval
like($est[2] // '', qr/^HIT/, 'E: the side is not marked down afterwards');
note sprintf('E: %.1f s', time() - $te);


# ---- D. checker: an entry slot migrates, an entry master fails over ---------------

my $t4 = time();
my $c = CacheExt::Checker->new(node => $node, writers => 2, readers => 3, rows => 6);
note 'checker seed ' . $c->seed;
$c->setup;
$c->run_phase('normal', 2);
my ($mslot, $mfrom, $mto);
$c->run_phase('entry_migration', 2, tail => 1, steps => [
	{ at => 0.5, name => 'migrate an entry slot half-way', do => sub {
		# an entry on a master that is not the home master
		for my $m (grep { $_->port != $home->port } $rc->masters)
		{
			my ($k) = grep { /:e:/ } $m->cli('KEYS', "cache_ext:{$tag1.*");
			next unless $k;
			$mslot = $rc->keyslot($k);
			$mfrom = $m;
			last;
		}
		($mto) = grep { $_->port != $mfrom->port } $rc->masters;
		my $n = $mfrom->cli('CLUSTER', 'COUNTKEYSINSLOT', $mslot);
		$rc->migrate_slot($mslot, $mfrom, $mto, keys => int($n / 2) || 1);
	} },
	{ after => 1, name => 'finish it', do => sub { $rc->finish_migration($mslot, $mfrom, $mto); } },
]);
my ($killed, $promoted);
$c->run_phase('entry_failover', 2, tail => 2, steps => [
	{ at => 0.3, name => 'kill -9 an entry master', do => sub {
		($killed) = grep {
			my @r = $rc->replicas_of($_);
			$_->port != $home->port && @r
		} $rc->masters;
		($promoted) = $rc->replicas_of($killed);
		$rc->kill9($killed);
	} },
	{ after => 0, name => 'its replica promoted', timeout => 20, until => sub {
		return (eval { $rc->role($promoted, $promoted) } // '') eq 'master';
	} },
]);
$c->run_phase('after', 2);
$c->stop;
my $r = $c->check;
my @phases = qw(normal entry_migration entry_failover after);
for my $ph (@phases)
{
	my $h = $r->{phases}{$ph};
	note sprintf('%-16s reads %4d hits %4d misses %4d bypasses %4d commits %4d viol %d',
		$ph, $h->{reads}, $h->{hits}, $h->{misses}, $h->{bypasses}, $h->{commits}, $h->{violations});
}
my @viol = map { @{ $r->{violations}{$_} // [] } } @phases;
diag "violation: $_" for @viol[ 0 .. ($#viol < 9 ? $#viol : 9) ];
diag "failure: $_" for $c->failures;
is(scalar @viol, 0, 'D: no stale read across an entry-slot migration and an entry-master failover');
is(scalar($c->errors), 0, 'D: no failed statement');
cmp_ok($r->{phases}{after}{hits}, '>', 0, 'D: hits after the failover');
note sprintf('D: %.1f s', time() - $t4);

# ---- A2. cache_purge after a master failed over (its old self still a node) ----

$rc->wait_ok(timeout => 20);
callk($_) for 1 .. 30;
my ($pret, $pout, $perr) = $node->psql('postgres', 'SELECT cache_purge()');
# FAILS on ecff65c if the dead master is listed as a master to scan
is($perr, '', 'A2: cache_purge works after a failover (the dead master is not scanned)');
is(count_keys("cache_ext:{$tag1*:e:*"), 0, 'A2: no entry of the database is left');

# ---- C. every master down: the breaker opens ------------------------------------

callk($_) for 1 .. 30;
my @live = grep { $_->port != $killed->port } $rc->masters;
my @reps = map { $rc->replicas_of($_) } @live;
$rc->kill9($_) for @live;
$rc->pause($_) for @reps;
($ret, $out, $err) = $node->psql('postgres', join("\n",
	"SET cache_ext.retry_interval = '60s';",
	(map {
		("SELECT clock_timestamp() AS t0 \\gset",
		 sprintf($qk, $_) . ';',
		 "SELECT cache_status(), round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);")
	} 1 .. 8)));
my @st = grep { /\|/ } split /\n/, $out;
note "C: $_" for @st;
my @ms = map { (split /\|/)[-1] } @st;
my @cv = grep { /^\d+$/ } split /\n/, $out;
is(scalar(@st), 8, 'C: 8 calls, each answered (BYPASS)') or diag "$out\n$err";
is_deeply(\@cv, [ map { 10 + $_ } 1 .. 8 ], 'C: right values');
cmp_ok(List::Util::max(@ms), '<', 1500, 'C: each call bounded');
# FAILS on ecff65c: a side failure opens no breaker, and a failed map
# refresh neither, so every call tries the cluster again (here 250 ms a
# call: CLUSTER_ASK_MS on a paused node) however long retry_interval is.
# (In one run of six the calls were gated before any lookup instead: 0 ms,
# still no "circuit open".)
cmp_ok(scalar(grep { /circuit open/ } @st[ 2 .. $#st ]), '==', 6,
	'C: after the first failures, calls bypass with the circuit open');
cmp_ok(List::Util::sum(@ms[ 2 .. $#ms ]), '<', 300,
	'C: the outage costs the later calls nothing (ms)');
$rc->resume($_) for @reps;

$rc->stop_all;
note sprintf('total: %.1f s', time() - $t0);
done_testing();
