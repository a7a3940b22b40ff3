# test/t/241_sentinel.pl - Redis behind Sentinel: discovery, failovers, and
# no stale read across them (issue 13)
#
# Three data nodes (a master and two replicas) and three sentinels on
# loopback (CacheExt::Sentinel); cache_ext.redis_url is the Sentinel URL.
#
#   1. discovery: the master is found through the sentinels (the first of
#      which is down), cache_health() says sentinel and names it
#   2. under the consistency checker (writers and readers running):
#        sentinel_failover   SENTINEL FAILOVER
#        master_killed       the master killed (SIGKILL), restarted later:
#                            the sentinels make it a replica
#        master_paused       the master stopped (SIGSTOP) past the failover,
#                            then resumed: it comes back as a replica
#        lagged_promoted     the only promotable replica is stopped while
#                            writers commit (it misses their bumps), the
#                            master is killed, the replica resumed and
#                            promoted: bumps the old master acknowledged
#                            are lost, and no read may be stale
#      0 stale reads, 0 failed statements, every call bounded; one WARNING
#      per failover and cache_health().failovers counting them
#   3. a demoted master answers reads: a session whose connection still
#      points at it must not be served from it
#
#   4. cache_ext.redis_wait_replicas (WAIT)
#   5. passwords: the sentinels' own, and a rotated one
#   6. TLS: rediss-sentinel://, through a failover
#
# CE_CHECKER_SECONDS: seconds of load per phase (default 4).  With CE_L1
# (run-tests.sh's l1 pass) only sections 1 to 3 run, at 3 s per phase.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use List::Util qw(max sum0);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Sentinel;
use CacheExt::TLS;
use CacheExt::Checker;
use CacheExt::Util;

my $S = $ENV{CE_CHECKER_SECONDS} // ($ENV{CE_L1} ? 3 : 4);
$S = 3 if $S < 3;

my $g = CacheExt::Sentinel->new;
my $node = cache_ext_node('main', $g, extra_conf => join("\n",
	"max_connections = 40",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));

# ---- 1. discovery -------------------------------------------------------------

$node->safe_psql('postgres', q{
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
my $q = q{SELECT * FROM cached_query('SELECT sum(v)::int FROM kv') AS t(s int)};
my ($first, $second) = map {
	$node->safe_psql('postgres', "$q; SELECT cache_status()")
} 1 .. 2;
like($first, qr/MISS/, 'discovery: a miss through the master the sentinels name');
like($second, qr/HIT/, 'discovery: then a hit');
my $m0 = $g->master;
is($node->safe_psql('postgres', 'SELECT redis_mode, redis_master, failovers FROM cache_health()'),
	"sentinel|127.0.0.1:" . $m0->port . "|0", 'cache_health: sentinel mode, the master, no failover yet');

# the first sentinel listed is down: the others are asked
{
	my $s0 = ($g->sentinels)[0];
	$s0->stop;
	my $out = $node->safe_psql('postgres', "$q; SELECT cache_status()");
	like($out, qr/HIT/, 'a hit with the first sentinel down (a new session asks the others)');
	$s0->start;
}

# ---- 2. the checker across failovers -------------------------------------------------

my $c = CacheExt::Checker->new(node => $node, writers => 3, readers => 3, rows => 8);
note 'seed ' . $c->seed;
$c->setup;

my $log_offset = -s $node->logfile;
my $failovers = 0;

$c->run_phase('normal', $S);

$c->run_phase('sentinel_failover', $S, tail => $S, steps => [
	{ at => $S / 2, name => 'SENTINEL FAILOVER', do => sub {
		$c->mark('failover_begin');
		$g->failover;
		$failovers++;
		$c->mark('failover_done');
	} },
]);

my $killed;
$c->run_phase('master_killed', $S, tail => $S, steps => [
	{ at => $S / 2, name => 'kill -9 the master', do => sub {
		$killed = $g->master;
		$c->mark('kill');
		$killed->kill9;
	} },
	{ after => 0, name => 'a new master', do => sub {
		$g->wait_new_master($killed, 60);
		$failovers++;
		$c->mark('new_master');
	} },
	{ after => 1, name => 'the old master restarts', do => sub {
		$killed->start;
		$g->wait_healthy(90);
		$c->mark('old_is_replica');
	} },
]);

my $paused;
$c->run_phase('master_paused', $S, tail => $S, steps => [
	{ at => $S / 2, name => 'SIGSTOP the master', do => sub {
		$paused = $g->master;
		$c->mark('pause');
		$paused->pause;
	} },
	{ after => 0, name => 'a new master', do => sub {
		$g->wait_new_master($paused, 60);
		$failovers++;
		$c->mark('new_master');
	} },
	{ after => 1, name => 'SIGCONT the old master', do => sub {
		$paused->resume;
		$g->wait_healthy(90);
		$c->mark('old_is_replica');
	} },
]);

# Only one replica may be promoted (the other gets replica-priority 0); it
# is stopped while writers commit, and its replication link is cut (a
# stopped replica would otherwise still find the stream in its socket
# buffers), so it misses what the master acknowledges: a marker written
# after the cut must be missing on the new master.
my ($lag_master, $lagger, $other);
my $lost_marker;
$c->run_phase('lagged_promoted', $S, tail => $S, steps => [
	{ at => $S / 3, name => 'stop the promotable replica', do => sub {
		$lag_master = $g->master;
		($lagger, $other) = grep { $_->port != $lag_master->port } $g->nodes;
		$other->cli('CONFIG', 'SET', 'replica-priority', '0');
		$lagger->cli('CONFIG', 'SET', 'replica-priority', '100');
		$lagger->pause;
		$lag_master->cli('CLIENT', 'KILL', 'TYPE', 'replica');
		$lag_master->cli('SET', 'r241_cut_marker', '1');
		$c->mark('lagger_paused');
	} },
	{ after => 2, name => 'kill -9 the master, resume the replica', do => sub {
		$c->mark('kill');
		$lag_master->kill9;
		$lagger->resume;
	} },
	{ after => 0, name => 'the lagging replica is promoted', do => sub {
		my $new = $g->wait_new_master($lag_master, 60);
		$failovers++;
		$c->mark('new_master');
		$lost_marker = $new->port == $lagger->port && $new->cli('EXISTS', 'r241_cut_marker') eq '0';
		$lag_master->start;
		$g->wait_healthy(90);
		$other->cli('CONFIG', 'SET', 'replica-priority', '100');
	} },
]);
$c->run_phase('after', $S);
$c->stop;

my $r = $c->check;
my $P = $r->{phases};
my @phases = qw(normal sentinel_failover master_killed master_paused lagged_promoted after);
for my $ph (@phases)
{
	my $h = $P->{$ph};
	note sprintf('%-18s reads %5d hits %5d misses %5d bypasses %5d commits %5d viol %d errs %d lost %d',
		$ph, $h->{reads}, $h->{hits}, $h->{misses}, $h->{bypasses}, $h->{commits},
		$h->{violations}, $h->{sql_errors_reader} + $h->{sql_errors_writer} + $h->{sql_errors_monitor},
		$h->{lost_reader} + $h->{lost_writer} + $h->{lost_monitor});
}
my @viol = map { @{ $r->{violations}{$_} // [] } } @phases;
diag "violation: $_" for @viol[ 0 .. ($#viol < 19 ? $#viol : 19) ];
for my $e (($c->errors)[ 0 .. 9 ])
{
	last unless $e;
	diag "SQL error ($e->{phase}, $e->{role}): $e->{sql}\n$e->{out}";
}
diag "failure: $_" for $c->failures;
note $_ for $c->events;

is(scalar($c->failures), 0, 'every scripted step ran in time');
is(scalar @viol, 0, 'no stale read across the failovers');
for my $ph (@phases)
{
	my $h = $P->{$ph};
	cmp_ok($h->{reads}, '>', 0, "$ph: reads were checked");
	is($h->{sql_errors_reader} + $h->{sql_errors_writer} + $h->{sql_errors_monitor}, 0,
		"$ph: no statement failed");
	is($h->{lost_reader} + $h->{lost_writer} + $h->{lost_monitor}, 0, "$ph: no connection lost");
}
ok($lost_marker, 'lagged_promoted: the promoted replica lacks a write the old master acknowledged (the phase loses bumps)');
cmp_ok($P->{normal}{hits}, '>', 0, 'normal: hits');
# Under load the sentinels may fail over once more on their own (a master
# that looked down to them a moment) during the short "after" phase: then
# wait, bounded, for an agreed master and for a hit through it.
my $hit = $P->{after}{hits} > 0;
my $now;
my $settle = time() + 40;
while (time() < $settle)
{
	$now = $g->master;
	if ($now)
	{
		last if $hit;
		if ($node->safe_psql('postgres', "$q; SELECT cache_status()") =~ /\nHIT$/)
		{
			$hit = 1;
			last;
		}
	}
	usleep(200_000);
}
ok($hit, "after the failovers: hits again ($P->{after}{hits} in the phase)");

my $h = $node->safe_psql('postgres', 'SELECT redis_master, failovers FROM cache_health()');
my ($hm, $hf) = split /\|/, $h;
is($hm, '127.0.0.1:' . ($now ? $now->port : '(no master agreed)'),
	'cache_health names the current master');
# the sentinels may fail over again on their own (a master that looked
# down to them a moment), so only a lower bound is known
cmp_ok($hf, '>=', 1, "cache_health counts failovers ($hf seen, $failovers made by the test)");
my $log = slurp_file($node->logfile, $log_offset);
my $warnings = () = $log =~ /WARNING:  cache_ext found a new Redis master/g;
is($warnings, $hf, 'one WARNING per failover seen');

# ---- 3. a demoted master keeps answering reads ---------------------------------------

# A session connected before a failover keeps its connection to the old
# master, now a replica that answers GET happily.  Its next call must not
# be served from there.
{
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $out = $b->query_safe("$q; SELECT cache_status()");
	like($out, qr/HIT|MISS/, 'demoted: a session with a connection to the master');
	my $old = $g->master;
	$g->failover;
	# a write through another session bumps the new master only
	$node->safe_psql('postgres', 'UPDATE kv SET v = v + 1 WHERE k = 1');
	my $want = $node->safe_psql('postgres', 'SELECT sum(v)::int FROM kv');
	$out = $b->query_safe("$q; SELECT cache_status()");
	my ($got) = split /\n/, $out;
	is($got, $want, 'demoted: the old session reads the new value, not the old master\'s entry');
	$b->quit;
}

# Sections 4 to 6 test the connection layer, not the local tier: the l1
# pass (CE_L1) runs sections 1 to 3 only.
if ($ENV{CE_L1})
{
	note 'CE_L1: sections 4 to 6 are run by the tap pass';
	$node->stop;
	done_testing();
	exit 0;
}

# ---- 4. WAIT: invalidations confirmed by replicas -------------------------------------

# Whether $q hits (with the value $want, if given) within $secs seconds.
sub hit_within
{
	my ($secs, $want) = @_;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		$node->safe_psql('postgres', $q);
		my $out = $node->safe_psql('postgres', "$q; SELECT cache_status()");
		return 1 if $out =~ /\nHIT$/ && (!defined $want || $out =~ /^$want\n/);
		usleep(100_000);
	}
	return 0;
}

# cache_ext.redis_wait_replicas = 2: a bump counts once both replicas have
# it.  With the replicas stopped, a commit's bump stays in the outbox and
# reads of its table bypass; once they are back, it is delivered and hits
# return.
{
	$node->safe_psql('postgres', 'ALTER SYSTEM SET cache_ext.redis_wait_replicas = 2; SELECT pg_reload_conf()');
	usleep(300_000);
	my $m = $g->master;
	$m = $g->wait_healthy(90);
	my @replicas = grep { $_->port != $m->port } $g->nodes;
	$node->safe_psql('postgres', 'UPDATE kv SET v = v + 1 WHERE k = 2');
	# (a replica may still be syncing after section 3's failover)
	ok(hit_within(10), 'wait: with the replicas confirming, commits and hits as usual');
	$_->pause for @replicas;
	$node->safe_psql('postgres', 'UPDATE kv SET v = v + 1 WHERE k = 2');
	my $want = $node->safe_psql('postgres', 'SELECT sum(v)::int FROM kv');
	my $out = $node->safe_psql('postgres', "$q; SELECT cache_status()");
	like($out, qr/^$want\nBYPASS: pending invalidations/,
		'wait: replicas that do not confirm keep the bump in the outbox, reads bypass');
	$_->resume for @replicas;
	ok(hit_within(10, $want), 'wait: once the replicas are back, the bump is delivered and hits return');
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET cache_ext.redis_wait_replicas; SELECT pg_reload_conf()');
}

# ---- 5. passwords: the sentinels' own, and a rotated one ----------------------------

sub pwfile
{
	my ($name, $pw) = @_;
	my $f = $node->basedir . "/$name";
	open(my $fh, '>', $f) or die "$f: $!";
	print $fh "$pw\n";
	close $fh;
	chmod 0600, $f;
	return $f;
}

sub session_sql
{
	my ($url, %files) = @_;
	return join('', "SET cache_ext.redis_url = '$url';",
		map { "SET cache_ext.$_ = '$files{$_}';" } sort keys %files);
}

{
	my $ga = CacheExt::Sentinel->new(password => 'data-pw', sentinel_password => 'sentinel-pw');
	my %files = (redis_password_file => pwfile('data.pw', 'data-pw'),
		sentinel_password_file => pwfile('sentinel.pw', 'sentinel-pw'));
	my $set = session_sql($ga->url, %files);
	my $out = $node->safe_psql('postgres', "$set $q; $q; SELECT cache_status(); SELECT redis_master FROM cache_health()");
	like($out, qr/HIT\n127\.0\.0\.1:\d+$/, 'passwords: sentinels and data nodes with their own passwords, a hit');

	$set = session_sql($ga->url, redis_password_file => $files{redis_password_file});
	$out = $node->safe_psql('postgres', "$set $q; SELECT cache_status(); SELECT last_error FROM cache_health()");
	like($out, qr/BYPASS.*\n.*sentinel 127\.0\.0\.1:\d+: AUTH|NOAUTH/s,
		'passwords: without the sentinels\' password, a bypass that says why');
	unlike($out, qr/sentinel-pw|data-pw/, 'passwords: never in a message');

	# (review15 F8) a sentinel user without the sentinels' password is a
	# configuration error, not an AUTH left out in silence
	my $url = $ga->url;
	$url =~ s{/([^/?]+)$}{/$1?sentinel_user=watcher} or die "url $url";
	$set = session_sql($url, redis_password_file => $files{redis_password_file});
	$out = $node->safe_psql('postgres', "$set $q; SELECT cache_status(); SELECT last_error FROM cache_health()");
	like($out, qr/BYPASS.*\n.*sentinel_user=watcher needs cache_ext\.sentinel_password_file/s,
		'passwords: sentinel_user without cache_ext.sentinel_password_file, a bypass that says so');
}

# A rotated password: the file is read again at each new connection.
{
	my $r = CacheExt::Redis->new(name => 'rotate', password => 'old-pw',
		extra_args => [ '--requirepass', 'old-pw' ]);
	my $f = pwfile('rotate.pw', 'old-pw');
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	$b->query_safe("SET cache_ext.redis_url = '" . $r->url . "'; SET cache_ext.redis_password_file = '$f'; SET cache_ext.retry_interval = 0");
	$b->query_safe($q);
	like($b->query_safe("$q; SELECT cache_status()"), qr/HIT/, 'rotation: a hit with the first password');
	$r->cli('CONFIG', 'SET', 'requirepass', 'new-pw');
	$r->{params}{password} = 'new-pw';
	pwfile('rotate.pw', 'new-pw');
	like($b->query_safe("$q; SELECT cache_status()"), qr/HIT/,
		'rotation: the open connection keeps working');
	$r->cli('CLIENT', 'KILL', 'TYPE', 'normal');
	like($b->query_safe("$q; SELECT cache_status()"), qr/HIT/,
		'rotation: a new connection reads the new password from the file');
	pwfile('rotate.pw', 'wrong-pw');
	$r->cli('CLIENT', 'KILL', 'TYPE', 'normal');
	# (query, not query_safe: the WARNING on stderr is expected)
	my $out = $b->query("$q; SELECT cache_status(); SELECT last_error_kind FROM cache_health()");
	like($out, qr/BYPASS.*\nauth$/s, 'rotation: a wrong password is an auth failure, a bypass');
	$b->quit;
	$r->stop;
}

# ---- 6. TLS: rediss-sentinel:// ----------------------------------------------------------

# TLS to the sentinels and to the data nodes, verified against the test CA
# (the nodes' certificates name 127.0.0.1, the address the sentinels
# announce), through a failover.
{
	my $pki = CacheExt::TLS::make_pki();
	my $gt = CacheExt::Sentinel->new(tls => $pki);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	$b->query_safe("SET cache_ext.redis_url = '" . $gt->url(tls => 1) . "'; "
		  . "SET cache_ext.tls_ca_file = '$pki->{ca_crt}'; SET cache_ext.retry_interval = 0");
	$b->query_safe($q);
	like($b->query_safe("$q; SELECT cache_status(); SELECT redis_mode FROM cache_health()"),
		qr/HIT\nsentinel$/, 'tls: a hit through rediss-sentinel://');
	my $old = $gt->master;
	$gt->failover;
	# the old master is a replica now (until then it still says master, and
	# this session, alone on this Redis, rightly keeps using it)
	$gt->wait_healthy(90);
	# (written through this session: its commits bump this Redis)
	$b->query('UPDATE kv SET v = v + 1 WHERE k = 3');    # (its WARNING: the failover found)
	my $want = $node->safe_psql('postgres', 'SELECT sum(v)::int FROM kv');
	my $seen = '';
	for (1 .. 50)
	{
		$b->query($q);
		$seen = $b->query("$q; SELECT cache_status(); SELECT redis_master FROM cache_health()");
		last if $seen =~ /^$want\nHIT\n127\.0\.0\.1:(\d+)$/ && $1 != $old->port;
		usleep(100_000);
	}
	like($seen, qr/^$want\nHIT\n127\.0\.0\.1:\d+$/, 'tls: after a failover, the new value hits on the new master');
	unlike($seen, qr/:@{[ $old->port ]}$/, 'tls: and cache_health names the new master');
	$b->quit;
}

$node->stop;
done_testing();
