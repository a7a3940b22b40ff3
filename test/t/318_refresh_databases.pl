# test/t/318_refresh_databases.pl - refresh-ahead in every database (0.9)
#
# 1. Two databases register and hit an entry each in the same window
#    (cache_ext.refresh_max_workers = 2, the default): each gets its own
#    worker, both at once, and both entries are still hit after their
#    original TTL; cache_refresh_stats() names no single database.
# 2. With refresh_max_workers = 1 (a reload): never more than one worker
#    at once; the second database waits (cache_refresh_workers() says so)
#    and is handed the worker when the first one's turn ends, so that both
#    entries are refreshed before their TTL ends, one after the other.
# 3. One database holds at most 48 of the 64 slots (two roles, under the
#    per-role cap of 32, register 30 each: 12 refused); another database
#    still registers; once that database is dropped, its slots are freed
#    by the next registration elsewhere, or by any worker's next pass.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => "log_statement = 'none'");

for my $db (qw(d1 d2 d3))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
CREATE EXTENSION cache_ext;
CREATE TABLE t (v int);
INSERT INTO t SELECT generate_series(1, 10);
SELECT cache_track('t');
});
}
$node->safe_psql('d3', q{
CREATE ROLE r1;
CREATE ROLE r2;
GRANT SELECT ON t TO r1, r2;
});

sub q_ttl
{
	my ($ttl, $sql) = @_;
	return "SELECT * FROM cached_query_with(cache_opts(ttl => '$ttl'), '$sql') AS x(n bigint)";
}

# store and hit $q in $db with refresh-ahead on: "n\nMISS\nn\nHIT"
sub store_hit
{
	my ($db, $q) = @_;
	return $node->safe_psql($db, join("\n", 'SET cache_ext.refresh_ahead = on;',
		"$q;", 'SELECT cache_status();', "$q;", 'SELECT cache_status();'));
}

sub call
{
	my ($db, $q) = @_;
	return $node->safe_psql($db, "$q; SELECT cache_status();");
}

# datname => { registered, due_soon, pid, waiting }
sub workers
{
	my %w;
	for my $line (split /\n/, $node->safe_psql('postgres', q{
SELECT coalesce(d.datname, w.dbid::text), w.registered, w.due_soon,
       coalesce(w.worker_pid, 0), w.waiting
  FROM cache_refresh_workers() w LEFT JOIN pg_database d ON d.oid = w.dbid}))
	{
		my @f = split /\|/, $line;
		$w{ $f[0] } = { registered => $f[1], due_soon => $f[2], pid => $f[3], waiting => $f[4] };
	}
	return \%w;
}

sub stats
{
	my $row = $node->safe_psql('postgres',
		'SELECT registered_now, refused, refreshed, coalesce(dbid, 0) FROM cache_refresh_stats()');
	my %h;
	@h{qw(now refused refreshed dbid)} = split /\|/, $row;
	return \%h;
}

sub running { return scalar grep { $_->{pid} } values %{ workers() }; }

# what the workers do, for a failure's diagnostics
sub show_workers
{
	diag(explain(workers()));
	diag($node->safe_psql('postgres', q{
SELECT pid, datname, wait_event_type, wait_event, backend_start, now()
  FROM pg_stat_activity WHERE backend_type = 'cache_ext refresh'}));
	return;
}

# ---- 1. two databases, two workers at once ----------------------------------
my $Q1 = q_ttl('4 s', 'SELECT sum(v) AS n FROM t');
my $refreshed0 = stats()->{refreshed};
my $t0 = time();
like(store_hit('d1', $Q1), qr/^55\nMISS\n55\nHIT(?: \(local\))?$/, '1: d1 stored and hit');
like(store_hit('d2', $Q1), qr/^55\nMISS\n55\nHIT(?: \(local\))?$/, '1: d2 stored and hit in the same window');
my $both = 0;
for (1 .. 30)
{
	my $w = workers();
	$both = $w->{d1} && $w->{d1}{pid} && $w->{d2} && $w->{d2}{pid} && $w->{d1}{pid} != $w->{d2}{pid};
	last if $both;
	sleep(0.1);
}
ok($both, '1: each database has its own worker, both at once');
is(stats()->{dbid}, 0, '1: cache_refresh_stats() names no single database when several are served');
sleep(4.6 - (time() - $t0)) if time() - $t0 < 4.6;
like(call('d1', $Q1), qr/^55\nHIT(?: \(local\))?$/, '1: d1 hit after the original TTL (refreshed)');
like(call('d2', $Q1), qr/^55\nHIT(?: \(local\))?$/, '1: d2 hit after the original TTL (refreshed)');
cmp_ok(stats()->{refreshed} - $refreshed0, '>=', 2, '1: both refreshes counted');

# ---- 2. refresh_max_workers = 1: one after the other ------------------------
$node->safe_psql('postgres', 'ALTER SYSTEM SET cache_ext.refresh_max_workers = 1; SELECT pg_reload_conf()');
for (1 .. 300)
{
	last if !running();
	sleep(0.1);
}
is(running(), 0, '2: the workers of part 1 went idle and exited') or show_workers();
my $Q2 = q_ttl('4 s', 'SELECT count(*) AS n FROM t WHERE v > 2');
$refreshed0 = stats()->{refreshed};
my $t1 = time();
like(store_hit('d1', $Q2), qr/^8\nMISS\n8\nHIT(?: \(local\))?$/, '2: d1 stored and hit');
like(store_hit('d2', $Q2), qr/^8\nMISS\n8\nHIT(?: \(local\))?$/, '2: d2 stored and hit');
my ($most, $waited) = (0, '');
my %served;
while (time() - $t1 < 4.0)
{
	my $w = workers();
	my $n = grep { $_->{pid} } values %$w;
	$most = $n if $n > $most;
	for my $db (qw(d1 d2))
	{
		next if !$w->{$db};
		$served{$db} = 1 if $w->{$db}{pid};
		$waited = $db if $w->{$db}{waiting} eq 't' && $w->{ $db eq 'd1' ? 'd2' : 'd1' }{pid};
	}
	sleep(0.05);
}
is($most, 1, '2: never more than one worker at once');
isnt($waited, '', "2: one database waited while the other's worker ran ($waited)");
ok($served{d1} && $served{d2}, '2: each database had its worker in turn');
sleep(4.6 - (time() - $t1)) if time() - $t1 < 4.6;
like(call('d1', $Q2), qr/^8\nHIT(?: \(local\))?$/, '2: d1 hit after the original TTL');
like(call('d2', $Q2), qr/^8\nHIT(?: \(local\))?$/, '2: d2 hit after the original TTL');
cmp_ok(stats()->{refreshed} - $refreshed0, '>=', 2, '2: both refreshed by one worker slot, one after the other');

# ---- 3. the per-database cap, and a dropped database's slots -----------------
my $st = stats();
my @calls;
for my $role (qw(r1 r2))
{
	push @calls, "SET ROLE $role;";
	push @calls, map { q_ttl('1 hour', "SELECT count(*) + $_ AS n FROM t") . ';' }
	  ($role eq 'r1' ? (1 .. 30) : (31 .. 60));
	push @calls, 'RESET ROLE;';
}
$node->safe_psql('d3', join("\n", 'SET cache_ext.refresh_ahead = on;', @calls));
is(workers()->{d3}{registered}, 48, '3: one database registers at most 48 of the 64 slots');
is(stats()->{refused} - $st->{refused}, 12, '3: its other registrations are refused and counted');
$st = stats();
$node->safe_psql('d1', join("\n", 'SET cache_ext.refresh_ahead = on;',
	q_ttl('1 hour', 'SELECT count(*) + 100 AS n FROM t') . ';'));
is(stats()->{refused}, $st->{refused}, '3: another database still registers');
# (no worker: only a registration elsewhere can find the dropped database)
for (1 .. 300)
{
	last if !running();
	sleep(0.1);
}
is(running(), 0, '3: no worker runs') or show_workers();
my $d3 = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'd3'});
$node->safe_psql('postgres', 'DROP DATABASE d3');
is(workers()->{$d3}{registered}, 48, '3: the dropped database still holds its slots');
$node->safe_psql('d2', join("\n", 'SET cache_ext.refresh_ahead = on;',
	q_ttl('1 hour', 'SELECT count(*) + 100 AS n FROM t') . ';'));
ok(!workers()->{$d3}, '3: a registration in another database frees all of the dropped database\'s slots');

# a worker's pass frees them too: d4 registers two entries nobody hits, a
# hit in d1 starts d1's worker, d4 is dropped
$node->safe_psql('postgres', 'CREATE DATABASE d4 TEMPLATE d2');
$node->safe_psql('d4', join("\n", 'SET cache_ext.refresh_ahead = on;',
	map { q_ttl('1 hour', "SELECT count(*) + $_ AS n FROM t") . ';' } (1 .. 2)));
my $d4 = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'd4'});
is(workers()->{d4}{registered}, 2, '3: d4 registered');
like(store_hit('d1', q_ttl('4 s', 'SELECT count(*) + 200 AS n FROM t')),
	qr/^210\nMISS\n210\nHIT(?: \(local\))?$/, '3: an entry of d1 stored and hit');
$node->safe_psql('postgres', 'DROP DATABASE d4');
my $gone = 0;
for (1 .. 50)
{
	$gone = !workers()->{$d4};
	last if $gone;
	sleep(0.1);
}
ok($gone, '3: the worker of d1 freed the dropped database\'s slots');
ok(workers()->{d1}{pid}, '3: (that worker ran)');

unlike(slurp_file($node->logfile), qr/terminating any other active server processes|was terminated by signal/,
	'no crash');
$node->stop;
$redis->stop;
done_testing();
