# test/t/233_review_gather.pl - review of 0.9's gathering commit queue
#
# Adversarial review of 008e38b (cache_ext.commit_queue_delay: after an MSET
# that carried keys the commit queue's worker lets commits gather, commits
# queue without waking it, a reader that waits for a bump wakes it; the
# connection-settings hash cached per backend).  docs/invalidation.md,
# "Commit: no round trip".  One block per finding or probe:
#
#   G1  (finding, C2/C5) the queue fills while the worker gathers: nobody
#       wakes it (a commit that finds the queue full, or nearly full, does
#       not set the latch), so the commits that follow take the round trip
#       at commit (a backend's own MSET) until the delay ends; with the
#       delay at 0 the same burst is queued.
#   G2  (probe, found nothing) readers and writers at once, delay 100 ms:
#       no read waits for the delay (a lost wake-up would show as reads of
#       ~100 ms), and every read is the committed row or newer (the
#       checker's rule: never older than a commit that returned before).
#   G3  (probe, found nothing) the cached connection-settings hash: a
#       session whose redis_password_file differs from the worker's (ALTER
#       ROLE ... SET, or SET in the session and back) takes the round trip
#       itself; once equal again, it queues.
#   G4  (probe, found nothing) commit_queue_delay's bounds.
#   G5  (probe, found nothing) CacheExt::Checker (C1) with the delay at
#       100 ms against 0, and the reads that wait the delay out.
#   G6  (probe, found nothing) a hot standby's monotonic rounds (230's
#       4c) while the primary's worker gathers for 100 ms
#       (30 commits/s, a primary session storing the entries).
#   G7  (probe, found nothing) a fast shutdown while the worker gathers
#       sends what was queued meanwhile.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Checker;
use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('gather', $redis, extra_conf => join("\n",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on',
	'cache_ext.local_cache_size = 0',
	'cache_ext.retry_interval = 0',
	"cache_ext.invalidation_timeout = '5s'"));
$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO t VALUES (1, 0);
SELECT cache_track('t');
});
my $call_t = q{SELECT * FROM cached_query('SELECT v FROM t') AS x(v int)};

# wait_until: CacheExt::Util's
sub wait_until { return CacheExt::Util::wait_until(@_); }

sub set_delay
{
	my ($d) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET cache_ext.commit_queue_delay = '$d'; SELECT pg_reload_conf()");
	return wait_until(sub { $node->safe_psql('postgres', 'SHOW cache_ext.commit_queue_delay') eq $d }, 10);
}

# The Redis clients connected now (the redis-cli asking counts once, always).
sub redis_clients
{
	my $info = $redis->cli('INFO', 'clients');
	return $info =~ /connected_clients:(\d+)/ ? $1 : -1;
}

# make the server's Redis target known (until then commits take the round trip)
cache_call($node, $call_t);
ok(wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 10), 'setup: nothing pending');

# ---- G1. the queue fills while the worker gathers ------------------------------
# Each transaction invalidates 900 tags (900 generation keys, under the 1,024
# a commit may queue); the queue holds 4,096.  The first transaction's MSET
# starts a gathering; five more within it need 4,500 places: the sixth does
# not fit.  A writer session that never looked anything up has no Redis
# connection of its own: a new Redis client after the burst is that
# session's round trip at commit.
my $tx = join(' ', map {
	"BEGIN; SELECT count(cache_invalidate_tag('g1_${_}_' || i)) FROM generate_series(1, 900) i; COMMIT;"
} 1 .. 6);
for my $run ([ '0', 'control' ], [ '100ms', 'gathering' ])
{
	my ($delay, $label) = @$run;
	ok(set_delay($delay), "G1 ($label): commit_queue_delay is $delay");
	my $w = CacheExt::Session->new($node);
	$w->query_ok("SET cache_ext.invalidation_timeout = '5s'");
	sleep(0.2);
	my $c0 = redis_clients();
	# one commit delivered: with the delay, the worker now gathers
	$w->query_ok("SELECT cache_invalidate_tag('g1_start')");
	my ($out, $err, $elapsed) = $w->query($tx =~ s/g1_/g1_${label}_/gr, 60);
	unlike($err // '', qr/ERROR|WARNING/, "G1 ($label): the burst committed");
	my $c1 = redis_clients();
	note "G1 ($label): CLIENT LIST after the burst:\n" . $redis->cli('CLIENT', 'LIST') if $c1 != $c0;
	note sprintf('G1 (%s): six commits of 900 keys in %.3f s, Redis clients %d -> %d',
		$label, $elapsed, $c0, $c1);
	is($c1 - $c0, 0,
		"G1 ($label): no commit of the burst took the round trip itself (the queue had room, or the worker was woken to make it)");
	ok(wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 10),
		"G1 ($label): the burst is delivered");
	$w->quit;
}
ok(set_delay('1ms'), 'G1: commit_queue_delay back to 1ms');

sub mset_calls
{
	my $info = $redis->cli('INFO', 'commandstats');
	return $info =~ /cmdstat_mset:calls=(\d+)/ ? $1 : 0;
}

# A burst of 20 commits with the delay at 100 ms: how many MSETs carried it
# (about one per 100 ms when the worker gathers, one per commit when not).
sub burst_msets
{
	my ($w) = @_;
	$w->query_ok('UPDATE t SET v = v + 1 WHERE id = 1');
	sleep(0.01);
	my $m0 = mset_calls();
	my $t0 = time();
	$w->query_ok('UPDATE t SET v = v + 1 WHERE id = 1') for 1 .. 20;
	my $secs = time() - $t0;
	wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 10);
	sleep(0.15);
	return (mset_calls() - $m0, $secs);
}

# ---- G2. readers that give up leave the count ------------------------------------
# A reader waiting for a bump counts itself; one that is cancelled
# (statement_timeout) or terminated while it waits must leave the count,
# else the worker never gathers again.  The bump is held with Redis hung
# (the worker in its round trip); the reader waits, gives up; Redis
# resumes; then a burst must still gather.
ok(set_delay('100ms'), 'G2: commit_queue_delay is 100ms');
{
	my $w = CacheExt::Session->new($node);
	my ($n, $secs) = burst_msets($w);
	note sprintf('G2: before: 20 commits in %.3f s, %d MSETs', $secs, $n);
	cmp_ok($n, '<=', 3 + int($secs / 0.1), 'G2: before: the burst gathers (the probe is not vacuous)');

	my $rc = CacheExt::Session->new($node);    # cancelled while it waits
	my $rt = CacheExt::Session->new($node);    # terminated while it waits
	cache_call($rc, $call_t);
	$redis->pause;
	$w->query_ok('UPDATE t SET v = v + 1 WHERE id = 1');
	my ($out, $err, $el) = $rc->query("SET statement_timeout = '300ms'; $call_t; RESET statement_timeout", 30);
	like($err, qr/canceling statement due to statement timeout/, 'G2: a waiting reader was cancelled');
	my $tag = $rt->send($call_t);
	sleep(0.3);
	$node->safe_psql('postgres', 'SELECT pg_terminate_backend(' . $rt->backend_pid . ')');
	ok(defined $rt->wait_stderr(qr/terminat/, 10), 'G2: a waiting reader was terminated');
	$redis->resume;
	ok(wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 15), 'G2: the held bump is delivered');
	($n, $secs) = burst_msets($w);
	note sprintf('G2: after: 20 commits in %.3f s, %d MSETs', $secs, $n);
	cmp_ok($n, '<=', 3 + int($secs / 0.1),
		'G2: after readers gave up while waiting, the worker still gathers (the count went back to 0)');

	# a reader right after each commit: the new row, and no wait for the delay
	my $r = CacheExt::Session->new($node);
	my ($bad, $slow, $maxel) = (0, 0, 0);
	for my $i (1 .. 30)
	{
		my $val = 7000 + $i;
		$w->query_ok("UPDATE t SET v = $val WHERE id = 1");
		my $c = cache_call($r, $call_t);
		$bad++ if ($c->{status} // '') !~ /^MISS \(invalidated/ || $c->{rows} ne $val;
		$slow++ if $c->{elapsed} >= 0.09;
		$maxel = $c->{elapsed} if $c->{elapsed} > $maxel;
	}
	note sprintf('G2: slowest of 30 reads after a commit: %.3f s', $maxel);
	is($bad, 0, 'G2: after that, each read after a commit is MISS (invalidated) with the new row');
	cmp_ok($slow, '<=', 2, 'G2: and waits no gathering out (at most 2 of 30 reads of 90 ms or more)');
	$_->quit for ($w, $rc, $r);
}

# ---- G3. the cached connection-settings hash ------------------------------------------
# A session whose cache_ext.redis_password_file is not the worker's must
# send its own bumps (the worker would use other credentials).  Here Redis
# has no password, so the session's own round trip fails on AUTH and the
# bump goes to the outbox (invalidations_deferred): that counter tells the
# two paths apart.  Each step follows a change of the setting, in the
# session (SET, RESET) and per role (ALTER ROLE ... SET).
{
	my $pwfile = $node->basedir . '/wrong_password';
	PostgreSQL::Test::Utils::append_to_file($pwfile, "not-the-password\n");
	chmod 0600, $pwfile;
	ok(set_delay('1ms'), 'G3: commit_queue_delay is 1ms');
	my $s = CacheExt::Session->new($node);
	my $step = sub {
		my ($sql, $want, $what) = @_;
		ok(wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 15), "G3 $what: nothing pending before");
		my $s0 = cache_stats($node);
		my (undef, $err) = $s->query("$sql; UPDATE t SET v = v + 1 WHERE id = 1", 30);
		my $d = stats_delta($s0, cache_stats($node));
		note "G3 $what: deferred $d->{invalidations_deferred}; $err";
		if ($want eq 'own')
		{
			cmp_ok($d->{invalidations_deferred}, '>=', 1, "G3 $what: the session sent its own bump (with its settings)");
		}
		else
		{
			is($d->{invalidations_deferred}, 0, "G3 $what: the bump was queued for the worker");
		}
	};
	$step->('SELECT 1', 'queue', 'same settings');
	$step->("SET cache_ext.redis_password_file = '$pwfile'", 'own', 'after SET redis_password_file');
	$step->('RESET cache_ext.redis_password_file', 'queue', 'after RESET');
	$step->("SET cache_ext.redis_password_file = '$pwfile'", 'own', 'after SET again');
	$step->("SET cache_ext.tls_verify = off; RESET cache_ext.redis_password_file", 'queue', 'tls_verify off, no TLS in use');
	$s->quit;

	$node->safe_psql('postgres', qq{
CREATE ROLE g3 LOGIN;
GRANT SELECT, UPDATE ON t TO g3;
ALTER ROLE g3 SET cache_ext.redis_password_file = '$pwfile';
});
	wait_until(sub { cache_stats($node)->{pending_invalidations} == 0 }, 15);
	my $s0 = cache_stats($node);
	$node->psql('postgres', 'UPDATE t SET v = v + 1 WHERE id = 1', extra_params => [ '-U', 'g3' ]);
	my $d = stats_delta($s0, cache_stats($node));
	cmp_ok($d->{invalidations_deferred}, '>=', 1,
		'G3 ALTER ROLE ... SET redis_password_file: that role sends its own bump');
}

# ---- G4. the setting's bounds -------------------------------------------------------------
{
	my ($rc, $out, $err) = $node->psql('postgres', 'ALTER SYSTEM SET cache_ext.commit_queue_delay = -1');
	like($err, qr/outside the valid range/, 'G4: a negative delay is refused');
	($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET cache_ext.commit_queue_delay = '1s'");
	like($err, qr/outside the valid range/, 'G4: more than 100 ms is refused');
	($rc, $out, $err) = $node->psql('postgres', "SET cache_ext.commit_queue_delay = '5ms'");
	like($err, qr/cannot be changed now/, 'G4: not a session setting');
}

# ---- G5. the history checker with the delay at 100 ms --------------------------------
# CacheExt::Checker (070's): 3 writers, 3 readers; no read returns a value
# older than a COMMIT that returned before it started.  Widened: the delay
# at 100 ms (the maximum), against a control phase at 0.  A lost wake-up
# shows as reads that wait out the gathering (~100 ms): counted in both
# phases.
{
	my $c = CacheExt::Checker->new(node => $node, writers => 3, readers => 3, rows => 8);
	$c->setup;
	my %slow;
	for my $run ([ '0', 'g5_control' ], [ '100ms', 'g5_gather' ])
	{
		my ($delay, $phase) = @$run;
		ok(set_delay($delay), "G5: commit_queue_delay is $delay");
		$c->run_phase($phase, 5);
		my @reads = $c->reads(phase => $phase);
		# a read that waited for a bump ends MISS (invalidated): a lost
		# wake-up makes such reads last the delay; other slow reads are
		# the machine's load
		my @inval = grep { $_->{status} =~ /^MISS \(invalidated/ } @reads;
		$slow{$phase} = scalar(grep { $_->{end} - $_->{start} >= 0.09 } @inval);
		$slow{"${phase}_n"} = scalar(@inval);
		note sprintf('G5 %s: %d reads, %d invalidated, %d of those 90 ms or more (all reads: %d)',
			$phase, scalar(@reads), scalar(@inval), $slow{$phase},
			scalar(grep { $_->{end} - $_->{start} >= 0.09 } @reads));
	}
	my $r = $c->check;
	$c->stop;
	for my $phase ('g5_control', 'g5_gather')
	{
		my $h = $r->{phases}{$phase};
		note sprintf('G5 %s: %d reads, %d hits, %d invalidated, %d commits, %d pending bypasses',
			$phase, $h->{reads}, $h->{hits}, $h->{invalidated}, $h->{commits}, $h->{pending_bypasses});
		cmp_ok($h->{commits}, '>=', 50, "G5 $phase: the writers committed");
		cmp_ok($h->{hits}, '>', 0, "G5 $phase: with hits (the check is not vacuous)");
		is($h->{violations}, 0, "G5 $phase: no read older than a COMMIT that returned before it started");
		diag join("\n", @{ $r->{violations}{$phase} }[ 0 .. 4 ]) if $h->{violations};
	}
	cmp_ok($slow{g5_gather}, '<=', 5 + $slow{g5_gather_n} / 200,
		'G5: with the delay at 100 ms, the reads that waited for a bump did not wait it out (at most 5 + 0.5% of 90 ms or more)');
}

# ---- G6. a hot standby while the worker gathers (100 ms) ---------------------------
# 230's monotonic rounds on a standby (direct d1, cached c, direct d2; a
# hit older than d1 is stale) while a writer commits 100 times a second
# on the primary: the watermark must still cover only bumps in Redis.
{
	ok(set_delay('100ms'), 'G6: commit_queue_delay is 100ms');
	$node->backup('b');
	my $standby = PostgreSQL::Test::Cluster->new('g6_standby');
	$standby->init_from_backup($node, 'b', has_streaming => 1);
	$standby->append_conf('postgresql.conf', join("\n",
		"cache_ext.redis_url = '" . $redis->url . "'", 'cache_ext.retry_interval = 0',
		'cache_ext.local_cache_size = 0'));
	$standby->start;
	$node->wait_for_catchup($standby);
	my $wfile = $node->basedir . '/g6_writer.sql';
	PostgreSQL::Test::Utils::append_to_file($wfile, "UPDATE t SET v = v + 1 WHERE id = 1;\n");
	my $round = join("\n",
		q{SELECT 'd1|' || v FROM t;},
		"SELECT 'c|' || x.v FROM cached_query('SELECT v FROM t') AS x(v int);",
		q{SELECT 's|' || cache_status();},
		q{SELECT 'd2|' || v FROM t;});
	my $chunk = join("\n", ($round) x 25);
	my $rs = CacheExt::Session->new($standby);
	my $rp = CacheExt::Session->new($node);    # stores the entries the standby serves
	my ($pout, $perr) = ('', '');
	my $pg = IPC::Run::start(
		[ $node->installed_command('pgbench'), '-n', '-c', '1', '-T', 4, '-R', 30,
		  '-f', $wfile, $node->connstr('postgres') ],
		'>', \$pout, '2>', \$perr);
	my %acc = (rounds => 0, hits => 0, violations => 0, errors => 0);
	while ($pg->pumpable)
	{
		my $ptag = $rp->send(join("\n", ("$call_t;") x 10));
		my ($o, $e) = $rs->wait($rs->send($chunk), 60);
		$rp->wait($ptag, 60);
		$acc{errors}++ if !defined $o || $e =~ /ERROR|FATAL/;
		my %cur;
		for my $line (split /\n/, $o // '')
		{
			my ($k, $val) = split /\|/, $line, 2;
			next unless defined $val;
			$cur{$k} = $val;
			next unless $k eq 'd2';
			if (defined $cur{d1} && defined $cur{c} && defined $cur{s})
			{
				$acc{rounds}++;
				$acc{hits}++ if $cur{s} eq 'HIT';
				$acc{status}{ substr($cur{s}, 0, 60) }++;
				if ($cur{c} < $cur{d1})
				{
					$acc{violations}++;
					$acc{first} //= "d1=$cur{d1} c=$cur{c} ($cur{s}) d2=$cur{d2}";
				}
			}
			%cur = ();
		}
		$pg->pump_nb;
	}
	$pg->finish;
	my ($commits) = $pout =~ /number of transactions actually processed: (\d+)/;
	note sprintf('G6: %d commits, %d rounds, %d hits, statuses %s', $commits // 0, $acc{rounds},
		$acc{hits}, join(', ', map { "$_: $acc{status}{$_}" } sort keys %{ $acc{status} // {} }));
	diag("G6: first violation: $acc{first}") if $acc{first};
	cmp_ok($commits // 0, '>=', 60, 'G6: the writer committed');
	cmp_ok($acc{hits}, '>', 0, 'G6: the standby had hits (the check is not vacuous)');
	cmp_ok($acc{rounds}, '>=', 50, 'G6: the standby reader ran');
	is($acc{errors}, 0, 'G6: no errors');
	is($acc{violations}, 0, 'G6: the standby never served older than what it had replayed');
	$rs->quit;
	$rp->quit;
	$standby->stop;
}

# ---- G7. a fast shutdown while the worker gathers ---------------------------------------
# A commit's MSET starts a 100 ms gathering; a second commit queues without
# waking the worker; the fast shutdown begins at once: the worker must
# send the second bump before it exits, and the next start trust the
# shutdown.
{
	ok(set_delay('100ms'), 'G7: commit_queue_delay is 100ms');
	my $oid = $node->safe_psql('postgres', "SELECT 't'::regclass::oid");
	my ($gk) = $redis->scan_keys("*:g:t:$oid");
	ok(defined $gk, 'G7: the generation key of t');
	my $w = CacheExt::Session->new($node);
	$w->query_ok('UPDATE t SET v = v + 1 WHERE id = 1');
	sleep(0.01);
	my $g0 = $redis->cli('GET', $gk);
	$w->query_ok('UPDATE t SET v = v + 1 WHERE id = 1');
	my $g1 = $redis->cli('GET', $gk);
	$w->quit;
	$node->stop('fast');
	my $g2 = $redis->cli('GET', $gk);
	note "G7: generation $g0, after the second commit $g1, after the shutdown $g2";
	isnt($g2, $g0, 'G7: the bump queued while gathering reached Redis before the exit');
	my $off = -s $node->logfile;
	$node->start;
	unlike(slurp_file($node->logfile, $off), qr/did not shut down cleanly/, 'G7: the shutdown was clean');
}

$node->stop;
done_testing();
