# test/t/319_review_refresh_db.pl - review of refresh-ahead in every
# database (review-refreshdb, docs: /work/review-refreshdb-findings.md)
#
# A. A job of one database never runs in another's worker: while the
#    worker of ra is blocked in its first job of a pass, the slot of its
#    second job expires and is taken by a registration in rb; the worker
#    must not then run rb's call in ra (as rb's role, under ra's catalog:
#    there, a function the owner of ra planted under the name the call
#    uses runs as rb's role, a superuser here).
# B. A database created with the OID of a dropped one (CREATE DATABASE
#    ... OID n, open to any role with CREATEDB) does not inherit the
#    dropped one's registered entries, whose calls would run in it.
# C. cache_ext.enabled = off stops the worker (it held its database,
#    doing nothing, until its hot entries expired).
# D. A database whose worker cannot connect (its owner disallowed
#    connections) has its entries dropped, not a worker started and
#    failing every second until they expire.
# E. With cache_ext.refresh_max_workers = 1, a worker napping for its
#    budget after a slow pass hands its place to a database that waits
#    (it held it for the whole nap, 9 times the pass).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => "log_statement = 'none'");

$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN CREATEDB');

# a database with the extension, a tracked table t and lim() = 0
sub make_db
{
	my ($db, $owner) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db" . ($owner ? " OWNER $owner" : ''));
	$node->safe_psql($db, q{
CREATE EXTENSION cache_ext;
CREATE TABLE t (v int);
INSERT INTO t SELECT generate_series(1, 10);
SELECT cache_track('t');
CREATE FUNCTION lim() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 0';
});
	return;
}

# as mallory in $db: a lim() that says who runs it (an error at planning)
my $PLANT = q{
CREATE OR REPLACE FUNCTION public.lim() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'lim() of mallory ran as % (superuser %) in %', current_user,
    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_database();
END $$;
};

sub q_ttl
{
	my ($ttl, $sql) = @_;
	return "SELECT * FROM cached_query_with(cache_opts(ttl => '$ttl'), '$sql') AS x(n bigint)";
}

sub register
{
	my ($db, @q) = @_;
	return $node->safe_psql($db, join("\n", 'SET cache_ext.refresh_ahead = on;', map { "$_;" } @q));
}

# datname (or oid) => { registered, pid }
sub workers
{
	my %w;
	for my $line (split /\n/, $node->safe_psql('postgres', q{
SELECT coalesce(d.datname, w.dbid::text), w.registered, coalesce(w.worker_pid, 0)
  FROM cache_refresh_workers() w LEFT JOIN pg_database d ON d.oid = w.dbid}))
	{
		my @f = split /\|/, $line;
		$w{ $f[0] } = { registered => $f[1], pid => $f[2] };
	}
	return \%w;
}

sub running { return scalar grep { $_->{pid} } values %{ workers() }; }

sub wait_idle
{
	for (1 .. 150)
	{
		return 1 if !running();
		sleep(0.1);
	}
	return 0;
}

sub log_count
{
	my ($re) = @_;
	my @m = slurp_file($node->logfile) =~ /$re/g;
	return scalar @m;
}

make_db('ra', 'mallory');
make_db('rb');
$node->safe_psql('ra', q{
CREATE TABLE slow_t (v int);
INSERT INTO slow_t SELECT generate_series(1, 20000);
SELECT cache_track('slow_t');
DROP FUNCTION lim();
});
$node->safe_psql('ra', "SET ROLE mallory; $PLANT");

# ---- A. a job of rb run by ra's worker ---------------------------------------
{
	my $J1 = q_ttl('4 s', 'SELECT count(*) AS n FROM slow_t');
	my $J2 = q_ttl('4 s', 'SELECT sum(v) AS n FROM t');
	my $t0 = time();
	# J1 in slot 0, J2 in slot 1; J1 hotter, so run first
	register('ra', $J1, $J2);
	$node->safe_psql('ra', join("\n", ("$J1;") x 20, "$J2;"));
	my $locker = $node->background_psql('ra');
	$locker->query_safe('BEGIN; LOCK TABLE slow_t IN ACCESS EXCLUSIVE MODE');
	my $blocked = 0;
	for (1 .. 60)
	{
		$blocked = $node->safe_psql('postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'cache_ext refresh' AND wait_event_type = 'Lock'});
		last if $blocked;
		sleep(0.1);
	}
	ok($blocked, "A: ra's worker runs J1, blocked by a lock");
	# J2's TTL ends; a registration in rb takes the slot it frees
	sleep($t0 + 4.4 - time()) if time() < $t0 + 4.4;
	register('rb', q_ttl('1 hour', 'SELECT count(*) + lim() AS n FROM t'));
	is(workers()->{rb}{registered}, 1, 'A: rb registered (in the slot J2 had)');
	$locker->query_safe('COMMIT');
	$locker->quit;
	my $ran = 0;
	for (1 .. 20)
	{
		$ran = log_count(qr/lim\(\) of mallory ran as \S+ \(superuser \w+\) in ra/);
		last if $ran;
		sleep(0.1);
	}
	is($ran, 0, "A: rb's call never runs in ra's worker (mallory's lim() as rb's role)");
	ok(wait_idle(), 'A: the workers went idle');
}

# ---- B. a dropped database's OID given to a new database ----------------------
{
	make_db('rc');
	my $oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'rc'});
	my $Q = q_ttl('8 s', 'SELECT count(*) + lim() + 1 AS n FROM t');
	my $t0 = time();
	register('rc', $Q);
	$node->safe_psql('rc', "$Q;");    # hot
	$node->safe_psql('postgres', 'DROP DATABASE rc');
	$node->safe_psql('postgres', "SET ROLE mallory; CREATE DATABASE rc2 OID $oid");
	ok(!workers()->{rc2}, 'B: the new database with the OID of rc has none of its entries')
	  or diag(explain(workers()));
	$node->safe_psql('rc2', "CREATE TABLE t (v int); $PLANT", extra_params => [ '-U', 'mallory' ]);
	# another database's worker: its passes start the worker of a waiting one
	sleep($t0 + 2.5 - time()) if time() < $t0 + 2.5;
	my $QB = q_ttl('4 s', 'SELECT count(*) + 7 AS n FROM t');
	register('rb', $QB);
	$node->safe_psql('rb', "$QB;");
	my $ran = 0;
	while (time() < $t0 + 8.5)
	{
		$ran = log_count(qr/lim\(\) of mallory ran as \S+ \(superuser \w+\) in rc2/);
		last if $ran;
		sleep(0.1);
	}
	is($ran, 0, "B: rc's call never runs in rc2 (mallory's lim() as rc's role)");
	ok(wait_idle(), 'B: the workers went idle');
}

# ---- C. cache_ext.enabled = off stops the worker ------------------------------
{
	my $Q = q_ttl('4 s', 'SELECT count(*) + 11 AS n FROM t');
	register('rb', $Q);
	$node->safe_psql('rb', "$Q;");
	my $pid = 0;
	for (1 .. 30)
	{
		$pid = workers()->{rb}{pid};
		last if $pid;
		sleep(0.1);
	}
	ok($pid, 'C: a hit started the worker of rb');
	$node->safe_psql('postgres', 'ALTER SYSTEM SET cache_ext.enabled = off; SELECT pg_reload_conf()');
	my $t1 = time();
	my $gone = 0;
	while (time() < $t1 + 3.0)
	{
		$gone = !$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid");
		last if $gone;
		sleep(0.1);
	}
	ok($gone, 'C: with cache_ext.enabled off the worker exits (did not hold the database)');
	is(workers()->{rb}{registered} // 0, 0, "C: rb's jobs are dropped");
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET cache_ext.enabled; SELECT pg_reload_conf()');
	ok(wait_idle(), 'C: the workers went idle');
}

# ---- D. a database the worker cannot connect to -------------------------------
{
	make_db('rd', 'mallory');
	my $Q = q_ttl('8 s', 'SELECT count(*) + 13 AS n FROM t');
	my $t0 = time();
	register('rd', $Q);
	$node->safe_psql('rd', "$Q;");    # hot
	$node->safe_psql('postgres', 'ALTER DATABASE rd ALLOW_CONNECTIONS false',
		extra_params => [ '-U', 'mallory' ]);
	# rb's worker runs from before rd's entry is due soon until after
	sleep($t0 + 2.5 - time()) if time() < $t0 + 2.5;
	my $QB = q_ttl('4 s', 'SELECT count(*) + 17 AS n FROM t');
	register('rb', $QB);
	$node->safe_psql('rb', "$QB;");
	my $re = qr/database "rd" is not currently accepting connections/;
	my $first = 0;
	while (time() < $t0 + 6)
	{
		$first = log_count($re);
		last if $first;
		sleep(0.1);
	}
	ok($first, "D: a worker was started for rd and could not connect");
	sleep(2.2);
	is(log_count($re), 1, 'D: its start is not retried every second');
	is(workers()->{rd}{registered} // 0, 0, "D: rd's entries are dropped");
}

# ---- E. a budget nap does not hold the turn ------------------------------------
{
	# (not ra: its worker's last pass waited for a lock, its budget holds it)
	make_db('re');
	$node->safe_psql('re', q{
CREATE TABLE slow_t (v int);
INSERT INTO slow_t SELECT generate_series(1, 20000);
SELECT cache_track('slow_t');
});
	$node->safe_psql('postgres', 'ALTER SYSTEM SET cache_ext.refresh_max_workers = 1; SELECT pg_reload_conf()');
	ok(wait_idle(), 'E: the workers went idle');
	# a refresh of about a second: the budget (0.1) then naps 9 times that
	my $X = q_ttl('4 s', 'SELECT count(*) AS n FROM slow_t a, slow_t b WHERE a.v <= 1000');
	my $t0 = time();
	register('re', $X);
	$node->safe_psql('re', "$X;");
	my $refreshed = $node->safe_psql('postgres', 'SELECT refreshed FROM cache_refresh_stats()');
	while (time() < $t0 + 15)
	{
		last if $node->safe_psql('postgres', 'SELECT refreshed FROM cache_refresh_stats()') > $refreshed;
		sleep(0.05);
	}
	my $t1 = time();
	cmp_ok($t1 - $t0, '<', 15, "E: re's slow entry refreshed (its worker now naps)");
	# rb waits for the only worker place from now on
	sleep(0.5);
	my $Y = q_ttl('4 s', 'SELECT count(*) + 19 AS n FROM t');
	my $ty = time();
	register('rb', $Y);
	$node->safe_psql('rb', "$Y;");
	sleep($ty + 4.4 - time()) if time() < $ty + 4.4;
	like($node->safe_psql('rb', "$Y; SELECT cache_status();"), qr/^29\nHIT/,
		"E: rb's entry was refreshed during re's worker's nap (handed over)");
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET cache_ext.refresh_max_workers; SELECT pg_reload_conf()');
}

unlike(slurp_file($node->logfile), qr/terminating any other active server processes|was terminated by signal/,
	'no crash');
$node->stop;
$redis->stop;
done_testing();
