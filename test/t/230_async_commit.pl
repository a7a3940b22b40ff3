# test/t/230_async_commit.pl - commits that do not wait on Redis (0.5)
#
# docs/invalidation.md, "Commit: no round trip": a tracked commit queues its
# generation keys in shared memory and returns; the outbox worker sends
# them.  Readers on the primary wait (bounded) on in-flight counters, hot
# standbys compare the primary's LSN watermark with their replay position.
# What is checked here, each part able to fail:
#   1. a commit returns while Redis is hung, the bump is sent afterwards;
#   2. the call right after a commit, in another session, is never the old
#      hit (200 rounds); 2b. (0.9) with cache_ext.commit_queue_delay, a
#      burst of commits goes out in few MSETs, and a reader that waits for
#      a bump ends the gathering (it does not wait for the delay);
#   3. with the bump stuck, a reader of that table waits at most
#      invalidation_timeout and bypasses with the reason; a reader of
#      another table does not wait for it;
#   4. a hot standby sharing the primary's Redis: (a) with the worker
#      stopped, the standby bypasses once it replayed a commit whose bump is
#      not in Redis; (b) a commit held (gdb) between its commit record and
#      its queueing keeps the watermark below that record; (c) a monotonic
#      checker (direct, cached, direct) on the standby and the primary while
#      a writer commits in a loop, async on and off, and a self-test that
#      shows it catches a lying watermark; (d) the standby keeps its hits
#      while only untracked tables are written;
#   5. a fast shutdown with a bump queued sends it before exiting; one
#      that cannot send it is not trusted at the next start;
#   6. the worker killed with SIGKILL: the restart invalidates everything,
#      the first call is not the old hit.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# This file tests the Redis path: the local tier stays off here even in
# run-tests.sh's CE_L1 pass (test/t/220_local_tier.pl covers L1).
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $rport = $redis->port;
# the primary writes as its own Redis user, so that part 4's self-test can
# take its writes away while the standby (default user) still reads
is($redis->cli('ACL', 'SETUSER', 'primary', 'on', '>pw', '~*', '&*', '+@all'), 'OK',
	'a Redis user for the primary');
my $primary = cache_ext_node('primary', $redis, extra_conf => join("\n",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on',
	"cache_ext.redis_url = 'redis://primary:pw\@127.0.0.1:$rport/0'",
	'cache_ext.local_cache_size = 0',
	'cache_ext.retry_interval = 0',
	'restart_after_crash = on',    # part 6 (the test framework turns it off)
	# parts 4a and 4b hold commits back: only the watermark, not the lease
	# (not renewed meanwhile), may keep the standby from a stale hit
	"cache_ext.standby_lease = '8s'",
	# the worker's wait for Redis: longer than any pause below, so that a
	# stuck bump stays in the queue (not the outbox) while Redis is paused
	"cache_ext.invalidation_timeout = '5s'"));
$primary->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO t VALUES (1, 0);
CREATE TABLE u (id int PRIMARY KEY, w int NOT NULL);
INSERT INTO u VALUES (1, 42);
SELECT cache_track('t');
SELECT cache_track('u');
});
my $t_oid = $primary->safe_psql('postgres', "SELECT 't'::regclass::oid");
# cache_track's own bump goes through the queue too: wait for the worker
my @gk;
for (1 .. 100)
{
	@gk = $redis->scan_keys("*:g:t:$t_oid");
	last if @gk;
	select(undef, undef, undef, 0.05);
}
is(scalar(@gk), 1, 'the table generation key of t exists');
my $gen_key = $gk[0];

my $call_t = q{SELECT * FROM cached_query('SELECT v FROM t') AS x(v int)};
my $call_u = q{SELECT * FROM cached_query('SELECT w FROM u') AS x(w int)};
sub v_now { return $primary->safe_psql('postgres', 'SELECT v FROM t'); }

# wait_until: CacheExt::Util's
sub wait_until { return CacheExt::Util::wait_until(@_); }

# The commit queue worker's pid (it sends the queued bumps): it has no database connection, so it is not in
# pg_stat_activity; the postmaster's child whose title names it.
sub worker_pid
{
	my ($pm) = split /\n/, slurp_file($primary->data_dir . '/postmaster.pid');
	for my $dir (glob('/proc/[0-9]*'))
	{
		my $stat = eval { slurp_file("$dir/stat") } // next;
		next unless $stat =~ /\) \S+ (\d+) / && $1 == $pm;
		my $cmd = eval { slurp_file("$dir/cmdline") } // '';
		return $dir =~ s{.*/}{}r if $cmd =~ /cache_ext commit queue/;
	}
	return '';
}

my $w = CacheExt::Session->new($primary);    # the writer
my $r = CacheExt::Session->new($primary);    # a reader of t
my $r2 = CacheExt::Session->new($primary);   # a reader of u
$w->query_ok("SET cache_ext.invalidation_timeout = '20s'");

# ---- 1. a commit does not wait for Redis -------------------------------------
# a first call makes the server's Redis target known and checked (until
# then, a commit falls back to the round trip, as documented)
cache_call($r, $call_t);
my $gen0 = $redis->cli('GET', $gen_key);
my $s0 = cache_stats($primary);
$redis->pause;
my ($out, $err, $elapsed) = $w->query('UPDATE t SET v = v + 1 WHERE id = 1', 60);
unlike($err, qr/ERROR|WARNING/, '1: the UPDATE succeeded while Redis is hung');
cmp_ok($elapsed, '<', 10,
	'1: the commit returned without waiting for Redis (invalidation_timeout is 20s)');
note sprintf('1: the UPDATE took %.3f s with Redis paused', $elapsed);
my $d = stats_delta($s0, cache_stats($primary));
is($d->{invalidations_sent}, 0, '1: the bump is not sent yet');
is($d->{invalidations_deferred}, 0, '1: nor in the outbox: it is queued');
$redis->resume;
ok(wait_until(sub { $redis->cli('GET', $gen_key) ne $gen0 }, 10),
	'1: once Redis resumes, the worker delivers the bump');
cmp_ok(stats_delta($s0, cache_stats($primary))->{invalidations_sent}, '>=', 1,
	'1: counted as sent');

# ---- 2. the call right after a commit is never the old hit -------------------
cache_call($r, $call_t);
my $c = cache_call($r, $call_t);
is($c->{status}, 'HIT', '2: primed');
my ($bad_miss, $bad_hit, $first_bad) = (0, 0, undef);
for my $i (1 .. 200)
{
	my $val = 1000 + $i;
	$w->query_ok("UPDATE t SET v = $val WHERE id = 1");
	$c = cache_call($r, $call_t);
	if (($c->{status} // '') !~ /^MISS \(invalidated/ || $c->{rows} ne $val)
	{
		$bad_miss++;
		$first_bad //= "round $i after the commit: status "
		  . ($c->{status} // 'none') . ", rows '$c->{rows}', expected $val";
	}
	$c = cache_call($r, $call_t);
	if (($c->{status} // '') ne 'HIT' || $c->{rows} ne $val)
	{
		$bad_hit++;
		$first_bad //= "round $i, second call: status "
		  . ($c->{status} // 'none') . ", rows '$c->{rows}', expected $val";
	}
}
is($bad_miss, 0, '2: 200 commits: each next call in another session is MISS (invalidated) with the new row');
is($bad_hit, 0, '2: and the call after it is a HIT of the new row');
diag($first_bad) if defined $first_bad;

# ---- 2b. commits gather (0.9), a waiting reader ends the gathering ------------
# With cache_ext.commit_queue_delay at 100 ms, the worker waits 100 ms after
# each MSET that carried keys, and commits queued meanwhile do not wake it.
# (i) a burst of commits with no reader goes out in few MSETs; (ii) a reader
# right after each commit sees the new row and does not wait for the
# gathering to end (it wakes the worker): without that wake-up each read
# would wait up to 100 ms.
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET cache_ext.commit_queue_delay = '100ms'; SELECT pg_reload_conf()");
ok(wait_until(sub { $primary->safe_psql('postgres', 'SHOW cache_ext.commit_queue_delay') eq '100ms' }, 10),
	'2b: commit_queue_delay is 100ms');
sub mset_calls
{
	my $info = $redis->cli('INFO', 'commandstats');
	return $info =~ /cmdstat_mset:calls=(\d+)/ ? $1 : 0;
}
# an MSET that carries keys starts the gathering
$w->query_ok("UPDATE t SET v = v + 1 WHERE id = 1");
sleep(0.01);
my $m0 = mset_calls();
my $t0 = time();
$w->query_ok("UPDATE t SET v = v + 1 WHERE id = 1") for 1 .. 20;
my $burst = time() - $t0;
ok(wait_until(sub { cache_stats($primary)->{pending_invalidations} == 0
	  && (cache_call($r, $call_t)->{status} // '') =~ /^(HIT|MISS)/ }, 10),
	'2b: the burst is delivered');
my $msets = mset_calls() - $m0;
note sprintf('2b: 20 commits in %.3f s went out in %d MSET calls', $burst, $msets);
# one MSET per gathering begun (100 ms each) and the last; one per commit
# without it
cmp_ok($msets, '<=', 3 + int($burst / 0.1),
	'2b: the burst went out in about one MSET per 100 ms, not one per commit');
my ($bad2b, $waited) = (0, 0);
for my $i (1 .. 30)
{
	my $val = 5000 + $i;
	$w->query_ok("UPDATE t SET v = $val WHERE id = 1");
	$c = cache_call($r, $call_t);
	$bad2b++ if ($c->{status} // '') !~ /^MISS \(invalidated/ || $c->{rows} ne $val;
	$waited += $c->{elapsed};
}
is($bad2b, 0, '2b: 30 commits, each next call is MISS (invalidated) with the new row');
note sprintf('2b: those 30 calls took %.3f s in all', $waited);
cmp_ok($waited, '<', 1.5,
	'2b: the readers did not wait for the gathering to end (30 x 100 ms without the wake-up)');
$primary->safe_psql('postgres',
	'ALTER SYSTEM RESET cache_ext.commit_queue_delay; SELECT pg_reload_conf()');

# ---- 3. a stuck bump: bounded wait, only for readers of that table -----------
cache_call($r2, $call_u);
is(cache_call($r2, $call_u)->{status}, 'HIT', '3: u primed');
is(cache_call($r, $call_t)->{status}, 'HIT', '3: t primed');
$r->query_ok("SET cache_ext.invalidation_timeout = '1s'");
$redis->pause;
($out, $err, $elapsed) = $w->query('UPDATE t SET v = v + 1 WHERE id = 1', 60);
cmp_ok($elapsed, '<', 10, '3: the commit returned with Redis hung');
my $v3 = v_now();
$c = cache_call($r, $call_t);
like($c->{status} // '',
	qr/^BYPASS: pending invalidations \(a commit's invalidations of this result are still on their way to Redis\)$/,
	'3: a reader of t bypasses while the bump is on its way');
is($c->{rows}, $v3, '3: with the new row');
cmp_ok($c->{elapsed}, '>=', 0.9, '3: after waiting invalidation_timeout (1s)');
cmp_ok($c->{elapsed}, '<', 4, '3: and not much longer');
$c = cache_call($r2, $call_u);
unlike($c->{status} // '', qr/on their way/, '3: a reader of u is not held by the bump of t');
cmp_ok($c->{elapsed}, '<', 4, '3: nor waits for it (its invalidation_timeout is 5s)');
is($c->{rows}, '42', '3: u: right rows');
note "3: u while Redis is hung: " . ($c->{status} // 'none') . sprintf(' in %.3f s', $c->{elapsed});
$redis->resume;
ok(wait_until(sub { (cache_call($r, $call_t)->{status} // '') !~ /^BYPASS/ }, 10),
	'3: once delivered, t is served again');
$c = cache_call($r, $call_t);
is_deeply([ $c->{status}, $c->{rows} ], [ 'HIT', $v3 ], '3: a hit of the new row');
is(cache_stats($primary)->{pending_invalidations}, 0, '3: nothing went to the outbox');

# ---- 4. the monotonic checker: hot standby and primary -----------------------
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', join("\n",
	"cache_ext.redis_url = '" . $redis->url . "'", 'cache_ext.retry_interval = 0'));
$standby->start;
$primary->wait_for_catchup($standby);

my $wfile = $primary->basedir . '/writer.sql';
PostgreSQL::Test::Utils::append_to_file($wfile, "UPDATE t SET v = v + 1 WHERE id = 1;\n");

# One chunk of reader rounds: direct (d1), cached (c, then its status s),
# direct again (d2), four statements in autocommit.
my $round = join("\n",
	q{SELECT 'd1|' || v FROM t;},
	"SELECT 'c|' || x.v FROM cached_query('SELECT v FROM t') AS x(v int);",
	q{SELECT 's|' || cache_status();},
	q{SELECT 'd2|' || v FROM t;});
my $chunk = join("\n", ($round) x 25);

# Parse a chunk's output into $acc: rounds, hits, violations (c < d1),
# impossible (c > d2), malformed rounds.
sub tally
{
	my ($acc, $text, $err) = @_;
	my %cur;
	$acc->{errors}++ if $err =~ /ERROR|FATAL/;
	for my $line (split /\n/, $text)
	{
		my ($k, $val) = split /\|/, $line, 2;
		next unless defined $val;
		$cur{$k} = $val;
		next unless $k eq 'd2';
		if (!defined $cur{d1} || !defined $cur{c} || !defined $cur{s})
		{
			$acc->{malformed}++;
		}
		else
		{
			$acc->{rounds}++;
			$acc->{hits}++ if $cur{s} eq 'HIT';
			# the status, with the start of its reason
			$acc->{status}{ substr($cur{s}, 0, 70) }++;
			if ($cur{c} < $cur{d1})
			{
				$acc->{violations}++;
				$acc->{first} //= "d1=$cur{d1} c=$cur{c} ($cur{s}) d2=$cur{d2}";
			}
			$acc->{impossible}++ if $cur{c} > $cur{d2};
		}
		%cur = ();
	}
	return;
}

# Run the writer (pgbench, one client, $rate commits/s or as fast as it can
# when undef, $secs) and readers
# (sessions on the nodes in %$readers) in chunks until it ends; $each runs
# before every chunk; $file is the writer's script (default: v = v + 1).
# Returns the commits made and per-reader tallies.
sub checker
{
	my ($secs, $rate, $readers, $each, $file) = @_;
	my ($pout, $perr) = ('', '');
	my $pg = IPC::Run::start(
		[ $primary->installed_command('pgbench'), '-n', '-c', '1', '-T', $secs,
		  ($rate ? ('-R', $rate) : ()), '-f', $file // $wfile, $primary->connstr('postgres') ],
		'>', \$pout, '2>', \$perr);
	my %acc = map { $_ => { rounds => 0, hits => 0, violations => 0, impossible => 0,
				malformed => 0, errors => 0 } } keys %$readers;
	while ($pg->pumpable)
	{
		$each->() if $each;
		my %tag = map { $_ => $readers->{$_}->send($chunk) } keys %$readers;
		for my $n (keys %$readers)
		{
			my ($o, $e) = $readers->{$n}->wait($tag{$n}, 60);
			defined $o ? tally($acc{$n}, $o, $e) : $acc{$n}{malformed}++;
		}
		$pg->pump_nb;
	}
	$pg->finish;
	my ($commits) = $pout =~ /number of transactions actually processed: (\d+)/;
	note "pgbench: $pout$perr" unless defined $commits;
	return ($commits // 0, \%acc);
}

sub report
{
	my ($label, $commits, $acc) = @_;
	for my $n (sort keys %$acc)
	{
		my $a = $acc->{$n};
		note sprintf('%s, %s: %d commits, %d rounds, %d hits, %d violations, statuses %s',
			$label, $n, $commits, $a->{rounds}, $a->{hits}, $a->{violations},
			join(', ', map { "$_: $a->{status}{$_}" } sort keys %{ $a->{status} // {} }));
		diag("$label, $n: first violation: $a->{first}") if $a->{first};
	}
	return;
}

my ($wm_key) = $redis->scan_keys('*:wm');
ok(defined $wm_key, 'the watermark key is in Redis');
$wm_key //= 'none';
my $rs = CacheExt::Session->new($standby);
my $rp = CacheExt::Session->new($primary);
my $readers = { standby => $rs, primary => $rp };

# 4a. The watermark, step by step: with the worker stopped (SIGSTOP), a
# commit's bump stays queued and the watermark stays where it was; once the
# standby replayed the commit, it must not serve the entry stored before.
# Within cache_ext.standby_lease (8 s here), so that the lease still holds and
# only the watermark stands in the way.
cache_call($rp, $call_t);
is(cache_call($rp, $call_t)->{status}, 'HIT', '4a: stored by the primary');
$primary->wait_for_catchup($standby);
ok(wait_until(sub { (cache_call($rs, $call_t)->{status} // '') eq 'HIT' }, 10),
	'4a: the standby serves it');
my $wpid4 = worker_pid();
like($wpid4, qr/^\d+$/, '4a: the worker is running');
kill 'STOP', $wpid4;
my $t4 = time();
$primary->safe_psql('postgres', 'UPDATE t SET v = v + 1 WHERE id = 1');
my $v4 = v_now();
$primary->wait_for_catchup($standby);
$c = cache_call($rs, $call_t);
like($c->{status} // '', qr/^BYPASS: pending invalidations \(hot standby: the primary (publishes no invalidation watermark|has confirmed the invalidations of the WAL up to)/,
	'4a: the standby replayed the commit: it bypasses (the watermark is behind)');
is($c->{rows}, $v4, '4a: with the new row');
note sprintf('4a: checked %.2f s after the worker stopped', time() - $t4);
kill 'CONT', $wpid4;
ok(wait_until(sub { (cache_call($rs, $call_t)->{status} // '') !~ /^BYPASS/ }, 10),
	'4a: once the worker delivered, the standby no longer bypasses');
$c = cache_call($rs, $call_t);
is($c->{rows}, $v4, '4a: and has the new row');
unlike($c->{status} // '', qr/^BYPASS/, '4a: from the cache');

# 4b. The fence of a commit in flight: between its PRE_COMMIT and the
# moment its keys are queued, a commit holds the watermark below its commit
# record.  The writer's backend is held there with gdb (a breakpoint at
# CommitQueuePush: the commit is visible, its record in the WAL, its bump
# not queued); another commit makes the worker publish a watermark; the
# standby replays both and must not serve the old entry.
SKIP:
{
	my $gdb = `command -v gdb 2>/dev/null`;
	chomp $gdb;
	skip 'gdb is not installed', 8 unless $gdb;
	my $dir = PostgreSQL::Test::Utils::tempdir('gdb');
	my ($ready, $hit, $go) = ("$dir/ready", "$dir/hit", "$dir/go");
	cache_call($rp, $call_t);
	my $vb = v_now();
	ok(wait_until(sub { my $x = cache_call($rs, $call_t);
				($x->{status} // '') eq 'HIT' && $x->{rows} eq $vb }, 10),
		'4b: the standby serves the entry');
	my $wd = CacheExt::Session->new($primary);
	# a command file: an error (no ptrace, no symbol) ends it before "ready",
	# and "hit" is written only by the breakpoint itself
	PostgreSQL::Test::Utils::append_to_file("$dir/cmds", join("\n",
		'set pagination off', 'set confirm off',
		'break CommitQueuePush', 'commands', "shell touch $hit",
		"shell i=0; while [ ! -e $go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done",
		'delete', 'detach', 'quit', 'end',
		"shell touch $ready", 'continue', ''));
	my ($gout, $gerr) = ('', '');
	my $gh = IPC::Run::start(
		[ $gdb, '-nx', '-q', '-batch', '-p', $wd->backend_pid, '-x', "$dir/cmds" ],
		'<', \undef, '>', \$gout, '2>', \$gerr);
	my $release = sub {
		PostgreSQL::Test::Utils::append_to_file($go, '');
		for (1 .. 200) { last unless $gh->pumpable; $gh->pump_nb; sleep(0.05); }
		$gh->kill_kill if $gh->pumpable;
		eval { $gh->finish };
	};
	if (!wait_until(sub { $gh->pump_nb if $gh->pumpable; -e $ready }, 30))
	{
		$release->();
		note "gdb: $gout$gerr";
		skip 'gdb could not attach to the backend', 7;
	}
	my $tag = $wd->send('UPDATE t SET v = v + 1 WHERE id = 1');
	if (!wait_until(sub { $gh->pump_nb if $gh->pumpable; -e $hit }, 15))
	{
		$release->();
		note "gdb: $gout$gerr";
		skip 'the breakpoint was not reached', 7;
	}
	my $vn = v_now();
	is($vn, $vb + 1, '4b: held at CommitQueuePush, the commit is visible');
	# the watermark goes in the same MSET as this commit's bump
	my $u_oid = $primary->safe_psql('postgres', "SELECT 'u'::regclass::oid");
	my ($ugen) = $redis->scan_keys("*:g:t:$u_oid");
	my $ugen0 = $redis->cli('GET', $ugen);
	$primary->safe_psql('postgres', 'UPDATE u SET w = w WHERE id = 1');
	ok(wait_until(sub { $redis->cli('GET', $ugen) ne $ugen0 }, 5),
		'4b: another commit made the worker send its bump, and a watermark');
	$primary->wait_for_catchup($standby);
	my $wm = $redis->cli('GET', $wm_key);
	my $replay = $standby->safe_psql('postgres', q{SELECT pg_last_wal_replay_lsn() - '0/0'});
	cmp_ok($wm, '<', $replay, '4b: the watermark stays below what the standby replayed');
	$c = cache_call($rs, $call_t);
	like($c->{status} // '', qr/^BYPASS: pending invalidations \(hot standby: the primary (publishes no invalidation watermark|has confirmed the invalidations of the WAL up to)/,
		'4b: the standby does not serve the old entry');
	is($c->{rows}, $vn, '4b: it returns the new row');
	# The primary has no such fence before COMMIT returns: its counters go
	# up when the keys are queued (allowed by C1, reported, not asserted).
	my $cp = cache_call($rp, $call_t);
	note "4b: meanwhile on the primary: " . ($cp->{status} // 'none') . ", rows $cp->{rows} (direct: $vn)";
	$release->();
	my @done = $wd->wait($tag, 30);
	ok(@done && $done[1] !~ /ERROR/, "4b: the writer's COMMIT returned once released");
	$wd->quit;
	ok(wait_until(sub { my $x = cache_call($rs, $call_t);
				($x->{status} // '') !~ /^BYPASS/ && $x->{rows} eq $vn }, 10),
		'4b: then the standby serves the new row');
}

# 4c. The checker: async on (throttled, then as fast as the writer goes),
# async off.  On the primary, a commit is visible a few microseconds before
# its in-flight counters go up (they go up at RESOURCE_RELEASE_AFTER_LOCKS):
# C1 covers reads begun after COMMIT returned, so a violation there would be
# a writer preempted in that window; none was ever seen with async on.
for my $run ([ 'on', 8, 100 ], [ 'on, tight loop', 3, undef ], [ 'off', 5, 100 ])
{
	my ($mode, $secs, $rate) = @$run;
	if ($mode eq 'off')
	{
		$primary->safe_psql('postgres',
			'ALTER SYSTEM SET cache_ext.async_invalidation = off; SELECT pg_reload_conf()');
	}
	my ($commits, $acc) = checker($secs, $rate, $readers);
	report("async $mode", $commits, $acc);
	cmp_ok($commits, '>=', 200, "4c (async $mode): the writer made hundreds of commits");
	for my $n ('standby', 'primary')
	{
		my $a = $acc->{$n};
		my $what = "4c (async $mode), $n";
		cmp_ok($a->{rounds}, '>=', 100, "$what: the reader ran");
		is($a->{errors} + $a->{malformed}, 0, "$what: no errors");
		# unthrottled, a standby may see no hit at all (each commit
		# invalidates before the next round): counted, not required
		cmp_ok($a->{hits}, '>', 0, "$what: with hits (the check is not vacuous)")
		  if $rate;
	  TODO:
		{
			# On the primary the bump (0.4's round trip, or 0.5's queue and
			# its in-flight counters) follows the moment the commit became
			# visible (DESIGN.md 3): a reader that saw the new row may still
			# get the old hit until COMMIT returns.  The contract covers
			# reads begun after COMMIT returned, which this checker cannot
			# tell apart; 070_consistency.pl's checker can, and finds 0.
			# The standby's check has no such window: replay is fenced by
			# the watermark, which never covers a commit before its bumps.
			local $TODO = 'the old hit between visibility and COMMIT returning (allowed by C1; 070 checks the contract)'
			  if $n eq 'primary';
			is($a->{violations}, 0,
				"$what: the cache never served older than what was already visible");
		}
	  TODO:
		{
			# A standby serves entries the primary stored, computed from
			# snapshots newer than its replay: the call returns rows its
			# next direct read does not see yet (reads go back in time).
			local $TODO = 'a hot standby serves results newer than its replay'
			  if $n eq 'standby';
			is($a->{impossible}, 0, "$what: nor newer than what was visible after");
		}
	}
	if ($mode eq 'off')
	{
		$primary->safe_psql('postgres',
			'ALTER SYSTEM RESET cache_ext.async_invalidation; SELECT pg_reload_conf()');
	}
}

# 4d. The watermark while only untracked tables are written: the WAL moves,
# so the standby's replay position does; docs/invalidation.md says the
# worker publishes the watermark "while WAL is being written, at least
# every cache_ext.watermark_interval" (5 ms), so a standby reading t, which
# nobody changes, keeps its hits (at 100 commits/s, a watermark at most
# ~5 ms behind leaves more than half of the calls served).
$primary->safe_psql('postgres', 'CREATE TABLE z (i int)');
my $zfile = $primary->basedir . '/writer_z.sql';
PostgreSQL::Test::Utils::append_to_file($zfile, "INSERT INTO z VALUES (1);\n");
cache_call($rp, $call_t);
is(cache_call($rp, $call_t)->{status}, 'HIT', '4d: t stored by the primary');
{
	my ($commits, $acc) = checker(3, 100, { standby => $rs }, undef, $zfile);
	report('4d, untracked writes only', $commits, $acc);
	my $a = $acc->{standby};
	is($a->{violations}, 0, '4d: no violation');
	cmp_ok($a->{hits}, '>=', $a->{rounds} / 2,
		'4d: a standby keeps most of its hits of t while only untracked tables are written');
}

# Self-test: the checker does catch a watermark that lies.  The primary's
# Redis user loses its writes (its bumps go to its outbox, its watermark and
# lease are no longer written), and the watermark and the lease are forged
# as "everything is delivered"; the standby then serves the entry stored
# before, while it replays newer commits.
my @wm = $redis->scan_keys('*:wm');
is(scalar(@wm), 1, 'the watermark key is in Redis');
my @lease = $redis->scan_keys('*:lease');
SKIP:
{
	skip 'no watermark key: no self-test', 2 unless @wm == 1;
	cache_call($rp, $call_t);
	is(cache_call($rp, $call_t)->{status}, 'HIT', 'self-test: an entry stored by the primary');
	$redis->cli('ACL', 'SETUSER', 'primary', '-@write');
	my $forge = sub {
		$redis->cli('SET', $wm[0], '18446744073709551615');
		$redis->cli('SET', $_, '1', 'PX', '60000') for @lease;
	};
	my ($commits, $acc) = checker(3, 100, { standby => $rs }, $forge);
	report('self-test (forged watermark)', $commits, $acc);
	cmp_ok($acc->{standby}{violations}, '>', 0,
		'self-test: with a forged watermark, the checker finds stale hits on the standby');
	$redis->cli('ACL', 'SETUSER', 'primary', '+@all');
	ok(wait_until(sub { cache_stats($primary)->{pending_invalidations} == 0 }, 20),
		'self-test: the primary delivers its outbox once it may write again');
}
$rs->quit;
$rp->quit;
$standby->stop;

# ---- 5. a fast shutdown sends what is queued ---------------------------------
# The worker is stopped (SIGSTOP), so a commit's bump stays in the queue, not
# in a request already on its way; the fast shutdown begins, and the worker
# continues 1.5 s later: it must send the queue before it exits.
my $gen5 = $redis->cli('GET', $gen_key);
my $wpid = worker_pid();
like($wpid, qr/^\d+$/, '5: the worker is running');
kill 'STOP', $wpid;
($out, $err, $elapsed) = $w->query('UPDATE t SET v = v + 1 WHERE id = 1', 60);
cmp_ok($elapsed, '<', 10, '5: the commit returned with the worker stopped (its bump is queued)');
my $v5 = v_now();
is($redis->cli('GET', $gen_key), $gen5, '5: the bump is not in Redis yet');
$_->quit for ($w, $r, $r2);
my $child = fork();
die "fork: $!" unless defined $child;
if ($child == 0)
{
	sleep(1.5);
	kill 'CONT', $wpid;
	POSIX::_exit(0);
}
my $t5 = time();
$primary->stop('fast');
note sprintf('5: the fast shutdown took %.2f s', time() - $t5);
waitpid($child, 0);
isnt($redis->cli('GET', $gen_key), $gen5, '5: the queued bump reached Redis before the exit');
my $off5 = -s $primary->logfile;
$primary->start;
my $log5 = slurp_file($primary->logfile, $off5);
unlike($log5, qr/did not shut down cleanly/, '5: the shutdown was clean (nothing was lost)');
$c = cache_call($primary, $call_t);
is($c->{rows}, $v5, '5: after the restart, the new row');

# ---- 5b. a fast shutdown that cannot send the queued bump --------------------
# The primary's Redis user may not write: the worker cannot deliver before it
# exits, so the next start must not trust the shutdown, and bump the server
# generation before it serves the entry stored before.
cache_call($primary, $call_t);
$c = cache_call($primary, $call_t);
is_deeply([ $c->{status}, $c->{rows} ], [ 'HIT', $v5 ], '5b: primed');
my $gen5b = $redis->cli('GET', $gen_key);
$redis->cli('ACL', 'SETUSER', 'primary', '-@write');
$primary->safe_psql('postgres', 'UPDATE t SET v = v + 1 WHERE id = 1');
my $v5b = v_now();
$primary->stop('fast');
$redis->cli('ACL', 'SETUSER', 'primary', '+@all');
is($redis->cli('GET', $gen_key), $gen5b, '5b: the bump never reached Redis');
my $off5b = -s $primary->logfile;
$primary->start;
like(slurp_file($primary->logfile, $off5b), qr/did not shut down cleanly/,
	'5b: the next start does not trust the shutdown');
$c = cache_call($primary, $call_t);
is($c->{rows}, $v5b, '5b: the first call has the new row');
unlike($c->{status} // '', qr/^HIT/, '5b: not the old hit');
$v5 = $v5b;

# ---- 6. the worker killed ------------------------------------------------------
# Stopped first, so that the commit's bump is only in the queue when the
# worker dies (not in a request Redis would still read): lost with shared
# memory, and the restart must invalidate everything.
cache_call($primary, $call_t);
$c = cache_call($primary, $call_t);
is_deeply([ $c->{status}, $c->{rows} ], [ 'HIT', $v5 ], '6: primed');
my $gen6 = $redis->cli('GET', $gen_key);
$wpid = worker_pid();
like($wpid, qr/^\d+$/, '6: the worker is running');
kill 'STOP', $wpid;
$primary->safe_psql('postgres', 'UPDATE t SET v = v + 1 WHERE id = 1');
my $v6 = $v5 + 1;
is($redis->cli('GET', $gen_key), $gen6, '6: the bump is not in Redis');
my $off6 = -s $primary->logfile;
kill 'KILL', $wpid;
$primary->wait_for_log(qr/all server processes terminated; reinitializing/, $off6);
$primary->wait_for_log(qr/database system is ready to accept connections/, $off6);
$primary->poll_query_until('postgres', 'SELECT true');
is($redis->cli('GET', $gen_key), $gen6, '6: the lost bump was never sent (the test is not vacuous)');
$c = cache_call($primary, $call_t);
is($c->{rows}, $v6, '6: after the restart, the first call has the new row');
unlike($c->{status} // '', qr/^HIT/, '6: not the old hit');
like(slurp_file($primary->logfile, $off6),
	qr/cache_ext will invalidate every cached result before serving hits/,
	'6: the server generation bump is logged');

$primary->stop;
done_testing();
