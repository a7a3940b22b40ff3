# test/t/314_review_refresh.pl - adversarial review of refresh-ahead (issue 14)
#
# Each block asserts the behaviour the contract asks for; the ones that
# fail document a finding of /work/review-refresh-findings.md.
#
# A. (C2) one unprivileged role holds the refresh worker and its registry:
#    a single entry stored with refresh_ahead on and a long TTL (up to
#    cache_ext.max_ttl, 7 days by default) keeps the worker connected to
#    its database for the whole TTL (hit or not), so DROP DATABASE without
#    FORCE fails; 64 such entries refuse every other role's registration.
#    Fixed in 0.8 (issue 14): the worker stays only for entries hit and due
#    soon, a role holds at most half of the slots, and the slots of a
#    dropped database are reclaimed.
# B. (C4) a placeholder a non-superuser set from the startup packet
#    (options=-c, scontext PGC_BACKEND) is recorded as "set by a
#    superuser" and applied by the worker with PGC_SUSET, so when the
#    refreshed query loads the library that defines it as a SUSET
#    variable, the user's value is taken (a normal backend rejects it).
#    Fixed on this branch.
# C. (C2) the worker runs a registered call that now bypasses (app made
#    its view call pg_sleep), for as long as it takes.  Fixed in 0.8: a
#    forced call that would bypass or could not store does not run.
# D. (C4) a call inside a superuser's SECURITY DEFINER function without
#    SET search_path is replayed as the superuser under app's recorded
#    search_path after app lost EXECUTE on it: app's planted function
#    runs as the superuser (ALTER ROLE app SUPERUSER).  Fixed on this branch.

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
CREATE ROLE other LOGIN;
-- (0.7: registering is a superuser's decision, per role)
ALTER ROLE app SET cache_ext.refresh_ahead = on;
ALTER ROLE other SET cache_ext.refresh_ahead = on;
CREATE DATABASE victim OWNER app;
});
$node->safe_psql('victim', q{
CREATE EXTENSION cache_ext;
CREATE TABLE t (v int);
INSERT INTO t SELECT generate_series(1, 10);
SELECT cache_track('t');
GRANT SELECT ON t TO app, other;
});

sub stats
{
	my ($db) = @_;
	my $row = $node->safe_psql($db // 'postgres',
		'SELECT registered_now, refused, dbid, worker_pid FROM cache_refresh_stats()');
	my @f = split /\|/, $row;
	return { now => $f[0], refused => $f[1], dbid => $f[2], pid => $f[3] };
}


# --- B: a placeholder set by app from the startup packet becomes a SUSET value
$node->safe_psql('victim', q{
CREATE SCHEMA apps AUTHORIZATION app;
SET ROLE app;
CREATE VIEW apps.v AS SELECT count(*) AS n FROM public.t;
});
{
	local $ENV{PGUSER} = 'app';
	local $ENV{PGOPTIONS} = '-c plpgsql.variable_conflict=use_variable';
	my $q = q{SELECT * FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT n FROM apps.v') AS x(n bigint);};
	my $o = $node->safe_psql('victim', "$q SELECT cache_status(); $q SELECT cache_status(); SHOW plpgsql.variable_conflict;");
	like($o, qr/^10\nMISS\n10\nHIT(?: \(local\))?\nuse_variable$/, 'B: stored and hit by app, the placeholder set from its startup packet');
}
is(stats('victim')->{now}, 1, 'B: registered');
# the view now calls a PL/pgSQL function (plpgsql is loaded on its first
# call): it reports the setting it sees in an error the worker logs
$node->safe_psql('victim', q{
SET ROLE app;
CREATE FUNCTION apps.probe() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RAISE EXCEPTION 'probe sees %', current_setting('plpgsql.variable_conflict'); END $$;
CREATE OR REPLACE VIEW apps.v AS SELECT count(*) + apps.probe() AS n FROM public.t;
});
# in app's own session the value is refused when plpgsql defines the variable
{
	local $ENV{PGUSER} = 'app';
	local $ENV{PGOPTIONS} = '-c plpgsql.variable_conflict=use_variable';
	my ($r, $o, $e) = $node->psql('victim', 'SELECT apps.probe()');
	like($e, qr/probe sees error/, 'B: a normal backend of app refuses the superuser-only value');
}
my $log = slurp_file($node->logfile);
for (1 .. 60)
{
	$log = slurp_file($node->logfile);
	last if $log =~ /cache_ext refresh: dropped a job/;
	sleep(0.1);
}
like($log, qr/cache_ext refresh: dropped a job/, 'B: the worker ran the job');
unlike($log, qr/probe sees use_variable/,
	'B: the worker does not give app\'s startup-packet placeholder superuser rights');

# --- C: after registering, app makes its query slow and uncacheable (a
# view it owns now calls pg_sleep): the worker must not run it (0.7 ran it
# as a bypass, for as long as the query took, stalling every other
# refresh); it drops the job without running the query
$node->safe_psql('victim', q{
SET ROLE app;
CREATE VIEW apps.w AS SELECT count(*) AS n FROM public.t;
});
{
	local $ENV{PGUSER} = 'app';
	my $q = q{SELECT * FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT n FROM apps.w') AS x(n bigint);};
	my $o = $node->safe_psql('victim', "$q SELECT cache_status(); $q SELECT cache_status();");
	like($o, qr/^10\nMISS\n10\nHIT(?: \(local\))?$/, 'C: stored and hit by app');
}
my $logpos = -s $node->logfile;
$node->safe_psql('victim', q{
SET ROLE app;
CREATE OR REPLACE VIEW apps.w AS SELECT count(*) AS n FROM public.t, LATERAL (SELECT pg_sleep(60)) s;
});
my $sleeping = '';
my $dropped = 0;
for (1 .. 80)
{
	$sleeping = $node->safe_psql('victim', q{SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'cache_ext refresh' AND wait_event = 'PgSleep'});
	last if $sleeping ne '';
	$dropped = substr(slurp_file($node->logfile), $logpos) =~
	  /cache_ext refresh: dropped a job whose call did not store: BYPASS: .*pg_sleep/;
	last if $dropped;
	sleep(0.1);
}
is($sleeping, '', 'C: the worker does not run a call that can no longer be stored (here for 60 s)');
ok($dropped, 'C: the job was dropped without running the query (logged with the reason)');
# (should it have slept: end it, and make the view fast again once the
# worker is gone, as it holds the view's lock)
$node->safe_psql('victim', "SELECT pg_terminate_backend($sleeping)") if $sleeping ne '';
for (1 .. 50)
{
	last if !stats('victim')->{pid};
	sleep(0.1);
}
$node->safe_psql('victim', 'SET ROLE app; CREATE OR REPLACE VIEW apps.w AS SELECT count(*) AS n FROM public.t');

# --- D: a call made inside a superuser's SECURITY DEFINER function (without
# SET search_path) is registered under the superuser with app's session
# settings; after app loses EXECUTE on it, app plants a function in its
# schema, first in the recorded search_path: the worker runs it as the
# superuser
$node->safe_psql('victim', q{
CREATE TABLE secret (v int);
INSERT INTO secret SELECT generate_series(1, 10);
SELECT cache_track('secret');
CREATE FUNCTION public.lim() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 0';
CREATE FUNCTION public.report() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $f$
SELECT n FROM cached_query_with(cache_opts(ttl => '4 s'),
	'SELECT count(*) AS n FROM secret WHERE v > lim()') AS x(n bigint) $f$;
});
{
	local $ENV{PGUSER} = 'app';
	my $o = $node->safe_psql('victim', 'SET search_path = apps, public; SELECT report(); SELECT cache_status(); SELECT report(); SELECT cache_status();');
	like($o, qr/^10\nMISS\n10\nHIT(?: \(local\))?$/, 'D: app stored and hit through the definer function');
}
$node->safe_psql('victim', q{
REVOKE EXECUTE ON FUNCTION public.report() FROM PUBLIC;
SET ROLE app;
CREATE FUNCTION apps.lim() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN ALTER ROLE app SUPERUSER; RETURN 0; END $f$;
});
my $super = 'f';
# (the job is due 2 s after the store; the worker ran it at 2.0 s)
for (1 .. 30)
{
	$super = $node->safe_psql('victim', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app'});
	last if $super eq 't';
	sleep(0.1);
}
is($super, 'f', 'D: app (no longer allowed to call the definer) is not made a superuser by the worker');
$node->safe_psql('victim', 'ALTER ROLE app NOSUPERUSER; DROP FUNCTION apps.lim()');

# --- A: app fills the registry with one-hour entries it never hits
my $st = stats('victim');
my ($now0, $refused0) = ($st->{now}, $st->{refused});
my @calls = map {
	"SELECT * FROM cached_query_with(cache_opts(ttl => '1 hour'), 'SELECT count(*) + $_ AS n FROM t') AS x(n bigint);"
} (1 .. 64);
$node->safe_psql('victim', join("\n", 'SET cache_ext.refresh_ahead = on;', 'SET ROLE app;', @calls));
$st = stats('victim');
is($st->{now} - $now0, 32, 'A: one role registers at most half of the 64 slots');
is($st->{refused} - $refused0, 32, 'A: its other registrations are refused and counted');

# another role (opted in by ALTER ROLE ... SET, so it logs in as itself)
{
	local $ENV{PGUSER} = 'other';
	$node->safe_psql('victim', q{
SELECT * FROM cached_query_with(cache_opts(ttl => '10 s'), 'SELECT sum(v) AS n FROM t') AS x(n bigint);
});
}
my $st2 = stats('victim');
is($st2->{refused}, $st->{refused}, 'A: another role can still register (not locked out by one role for the TTL)');
is($st2->{now}, $st->{now} + 1, 'A: its entry is registered');

# nothing is hit: the worker is not held for these entries (it was not
# started for them; one started earlier exits when nothing hot is due)
my $pid = 1;
for (1 .. 60)
{
	$pid = stats('victim')->{pid};
	last if !$pid;
	sleep(0.1);
}
ok(!$pid, 'A: no worker holds the database for entries nobody hits');
{
	local $ENV{PGUSER} = 'app';
	my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE victim WITH (FORCE)');
	is($ret, 0, 'A: its owner can drop the database served WITH (FORCE) (worker does not hold it for the TTL)')
		or diag($err);
}
# the slots of the dropped database do not keep refresh-ahead off for the
# other databases until their TTL (an hour) ends
$node->safe_psql('postgres', q{
CREATE TABLE p (v int);
INSERT INTO p SELECT generate_series(1, 5);
SELECT cache_track('p');
});
$node->safe_psql('postgres', q{
SET cache_ext.refresh_ahead = on;
SELECT * FROM cached_query_with(cache_opts(ttl => '10 s'), 'SELECT sum(v) AS n FROM p') AS x(n bigint);
});
$st = stats('postgres');
is($st->{now}, 1, 'A: a registration from another database reclaims the dropped database\'s slots');
is($st->{dbid}, $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'}),
	'A: and that database is served now');

$node->safe_psql('postgres', 'DROP DATABASE IF EXISTS victim WITH (FORCE)');
$node->stop;
$redis->stop;
done_testing();
