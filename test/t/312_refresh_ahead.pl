# test/t/312_refresh_ahead.pl - refresh-ahead by the background worker
#
# An entry stored with cache_ext.refresh_ahead on and hit since is
# recomputed by the worker shortly before its TTL ends, so that calls
# after the original TTL still hit; a write to its table before the
# refresh shows in the refreshed entry (the worker's miss reads the
# generations before its snapshot, as every miss); a role that lost
# SELECT: the refresh fails, the job is dropped and counted, nothing is
# stored; SIGTERM to the worker: it exits and is started
# again at the next hit; the registry empty, the worker exits (so that it
# does not hold the database).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE TABLE r (v int);
INSERT INTO r SELECT generate_series(1, 100);
CREATE TABLE u (v int);
INSERT INTO u SELECT generate_series(1, 20);
SELECT cache_track('u');
CREATE TABLE s (v int);
INSERT INTO s SELECT generate_series(1, 10);
SELECT cache_track('r');
SELECT cache_track('s');
GRANT SELECT ON r, s, u TO app;
});

my $OPTS = q{cache_opts(ttl => '4 s')};
# keyed settings (a planner one, search_path) and a custom one: the worker
# must apply them to find the same key
my $SETTINGS = q{SET work_mem = '7MB'; SET search_path = public, pg_catalog; SET app.tenant = 'a';};
# (parameters are recorded binary, with their types: two of them here)
my $Q1 = "SELECT * FROM cached_query_with($OPTS, 'SELECT sum(v) AS s FROM r WHERE v > \$1 AND \$2 <> ''''', 0, 'x'::text) AS t(s bigint)";
my $Q2 = "SELECT * FROM cached_query_with($OPTS, 'SELECT sum(v) AS s FROM u') AS t(s bigint)";
my $Q3 = "SELECT * FROM cached_query_with($OPTS, 'SELECT sum(v) AS s FROM s WHERE v > \$1', 2) AS t(s bigint)";

sub stats
{
	my $row = $node->safe_psql('postgres',
		'SELECT registered_now, refreshed, dropped, failed, worker_pid FROM cache_refresh_stats()');
	my @f = split /\|/, $row;
	return { now => $f[0], refreshed => $f[1], dropped => $f[2], failed => $f[3], pid => $f[4] };
}

# an entry on r and one (with a parameter) on s, stored and hit by app
my $t0 = time();
my $out = $node->safe_psql('postgres', join("\n",
	'SET cache_ext.refresh_ahead = on;', 'SET ROLE app;', $SETTINGS,
	"$Q1;", 'SELECT cache_status();', "$Q1;", 'SELECT cache_status();',
	"$Q3;", 'SELECT cache_status();', "$Q3;", 'SELECT cache_status();'));
like($out, qr/^5050\nMISS\n5050\nHIT(?: \(local\))?\n52\nMISS\n52\nHIT(?: \(local\))?$/,
	'stored and hit, with refresh-ahead on');
my $st = stats();
is($st->{now}, 2, 'both entries registered');
ok($st->{pid}, 'the worker runs');

# before the refresh window: a write to r, and app loses SELECT on s
$node->safe_psql('postgres', 'UPDATE r SET v = v + 1 WHERE v = 1; REVOKE SELECT ON s FROM app');

# an entry that no write invalidates (the REVOKE bumped the database's
# generation): only a forced refresh keeps it
my $t2 = time();
$out = $node->safe_psql('postgres', join("\n",
	'SET cache_ext.refresh_ahead = on;', 'SET ROLE app;', $SETTINGS,
	"$Q2;", 'SELECT cache_status();', "$Q2;", 'SELECT cache_status();'));
like($out, qr/^210\nMISS\n210\nHIT(?: \(local\))?$/, 'a third entry stored and hit');

# past the original TTL
sleep(4.6 - (time() - $t0)) if time() - $t0 < 4.6;
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, "$Q1;", 'SELECT cache_status();'));
like($out, qr/^5051\nHIT(?: \(local\))?$/, 'after the original TTL: a hit, with the data written before the refresh');
sleep(4.6 - (time() - $t2)) if time() - $t2 < 4.6;
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, "$Q2;", 'SELECT cache_status();'));
like($out, qr/^210\nHIT(?: \(local\))?$/, 'after the original TTL: a hit on an entry that was still valid (forced refresh)');
$st = stats();
cmp_ok($st->{refreshed}, '>=', 2, 'the worker refreshed both entries');
is($st->{failed}, 1, 'the refresh of the role that lost SELECT failed, counted');
is($st->{now}, 2, 'its job was dropped');
# nothing stored for it: the same call by a role that may read s misses
$out = $node->safe_psql('postgres', "$SETTINGS $Q3; SELECT cache_status();");
like($out, qr/^52\nMISS/, 'nothing was stored by the failed refresh');
like(slurp_file($node->logfile), qr/cache_ext refresh: dropped a job whose call failed: permission denied for table s/,
	'the failure is logged');

# a second TTL: still refreshed while hit
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, "$Q1;", 'SELECT cache_status();'));
like($out, qr/^5051\nHIT(?: \(local\))?$/, 'hit again');

# SIGTERM: the worker exits; the next hit of a registered entry starts it
my $pid = $st->{pid};
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
my $newpid;
for (1 .. 50)
{
	$newpid = stats()->{pid};
	last if !$newpid;
	sleep(0.1);
}
ok(!$newpid, 'the worker exits on SIGTERM');
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, "$Q1;", 'SELECT cache_status();'));
like($out, qr/^5051\nHIT(?: \(local\))?$/, 'hit while the worker is down');
for (1 .. 50)
{
	$newpid = stats()->{pid};
	last if $newpid;
	sleep(0.1);
}
ok($newpid && $newpid != $pid, 'the hit started the worker again');
sleep(3.5);
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, "$Q1;", 'SELECT cache_status();'));
like($out, qr/^5051\nHIT(?: \(local\))?$/, 'the restarted worker refreshes');
# cache_ext.enabled off in the server's configuration: the worker does
# nothing (a session that turns it on still registers and hits)
$node->append_conf('postgresql.conf', 'cache_ext.enabled = off');
$node->reload;
# (a refresh of Q1 the worker was making when the reload came may still be
# counted: give it time to end, on a loaded machine too)
sleep(1);
my $before = stats()->{refreshed};
my $Q4 = "SELECT * FROM cached_query_with($OPTS, 'SELECT count(*) AS n FROM r') AS t(n bigint)";
$t0 = time();
$out = $node->safe_psql('postgres', join("\n",
	'SET cache_ext.refresh_ahead = on;', 'SET ROLE app;', $SETTINGS, 'SET cache_ext.enabled = on;',
	"$Q4;", 'SELECT cache_status();', "$Q4;", 'SELECT cache_status();'));
like($out, qr/^100\nMISS\n100\nHIT(?: \(local\))?$/, 'enabled off server-wide: a session with it on stores and hits');
sleep(4.6 - (time() - $t0)) if time() - $t0 < 4.6;
$out = $node->safe_psql('postgres', join("\n",
	'SET ROLE app;', $SETTINGS, 'SET cache_ext.enabled = on;', "$Q4;", 'SELECT cache_status();'));
is($out, "100\nMISS", 'enabled off server-wide: the worker refreshed nothing');
is(stats()->{refreshed}, $before, 'enabled off server-wide: no refresh counted');

# idle: the entry is no longer hit, expires, and the worker exits
for (1 .. 150)
{
	last if !stats()->{pid};
	sleep(0.1);
}
$st = stats();
ok(!$st->{pid} && $st->{now} == 0, 'registry empty: the worker exits');
unlike(slurp_file($node->logfile), qr/terminating any other active server processes|was terminated by signal/,
	'no crash');

$node->stop;
$redis->stop;
done_testing();
