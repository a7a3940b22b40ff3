# test/t/316_refresh_consistency.pl - the refresh-ahead worker under the
# consistency checker, and roles that lose their rights (issue 14)
#
# 1. refresh: CacheExt::Checker in key mode (customers tracked by
#    customer_id).  One writer increments rows of random customers and
#    records every COMMIT that returned; three readers call SQL functions
#    that wrap cached_query (a customer's sum, the sums of a group of
#    customers), with cache_ext.refresh_ahead on and a TTL of 2 s, so that
#    the worker recomputes every entry hit 1 s after its store, while the
#    writer invalidates customers under it.  Every value a reader gets
#    is checked against the history (a read that started after a COMMIT
#    returned sees it; no read sees a value no UPDATE had made): 0 stale
#    reads.  The worker must have refreshed (its counter), and readers
#    must have hit; so a worker that stored stale results would be seen.
# 2. privileges: roles opted in with ALTER ROLE ... SET
#    cache_ext.refresh_ahead = on register an entry each through a wrapper
#    function, and hit it; then one loses SELECT on the table (REVOKE),
#    one loses the group role its SELECT came from (REVOKE group FROM
#    role: a role change, which invalidates everything, as every way of
#    losing a privilege does), and one's row-level security view
#    shrinks (a write to the table its policy reads).  Their own calls
#    must raise the permission error (never served from the entry); the
#    worker's refreshes of the first two fail and are dropped, nothing is
#    stored for them (past the original TTL the entry is gone); the third
#    sees only its new rows, also from the entry the worker refreshed.
#    And a session user that registered under a role it took with SET ROLE
#    and is then removed from that role: the worker must no longer act as
#    that role for it (0.7 refreshed it as the role, with the session's
#    search_path, for as long as the entry stayed hot: what the session
#    user could no longer do itself).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Checker;

my $S = $ENV{CE_CHECKER_SECONDS} // 10;
$S = 6 if $S < 6;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"log_statement = 'none'",
	# (so that the worker keeps up with every entry on a loaded machine)
	'cache_ext.refresh_budget = 0.5',
	'cache_ext.refresh_max_per_pass = 32'));

sub refresh_stats
{
	my $row = $node->safe_psql('postgres',
		'SELECT registered_now, registered, refused, refreshed, dropped, failed, expired, worker_pid FROM cache_refresh_stats()');
	my %h;
	@h{qw(now registered refused refreshed dropped failed expired pid)} = split /\|/, $row;
	return \%h;
}

# ---- 1. the worker under the consistency checker ----------------------------

my $c = CacheExt::Checker->new(node => $node, customers => 16, per_customer => 4,
	group_size => 4, hot_customers => 4, hot_share => 0.3,
	writers => 1, readers => 3, writer_pause => [ 0.05, 0.2 ],
	mix => { csum => 0.75, cany => 0.25 },
	session_setup => { reader => 'SET cache_ext.refresh_ahead = on; SET cache_ext.default_ttl = 2;' },
	reader_sql => sub {
		my ($kind, $sql, @args) = @_;
		return "SELECT ck_customer_sum($args[0]);" if $kind eq 'csum';
		return 'SELECT * FROM ck_group_sums(ARRAY[' . join(',', @args) . ']);';
	});
note 'seed ' . $c->seed;
$c->setup;
my $q = $c->queries;
my $t = $c->table;
$node->safe_psql('postgres', qq{
CREATE FUNCTION ck_customer_sum(c int) RETURNS bigint LANGUAGE sql AS \$f\$
SELECT total FROM cached_query('$q->{csum}', c) AS t(total bigint) \$f\$;
CREATE FUNCTION ck_group_sums(cs int[]) RETURNS TABLE(customer_id int, total bigint)
LANGUAGE sql AS \$f\$
SELECT * FROM cached_query('$q->{cany}', cs) AS t(customer_id int, total bigint) \$f\$;
});

my $before = refresh_stats();
my $t0 = time();
$c->run_phase('refresh', $S);
my $elapsed = time() - $t0;
$c->stop;
my $after = refresh_stats();
my $r = $c->check;
my $h = $r->{phases}{refresh};
my %d = map { $_ => $after->{$_} - $before->{$_} } qw(registered refused refreshed dropped failed expired);
note sprintf('refresh: %.1f s, %d reads (%d hits, %d misses, %d bypasses), %d commits; worker: %d registered, %d refused, %d refreshed, %d dropped, %d failed, %d expired',
	$elapsed, $h->{reads}, $h->{hits}, $h->{misses}, $h->{bypasses}, $h->{commits},
	@d{qw(registered refused refreshed dropped failed expired)});

is($h->{violations}, 0, 'refresh: no stale read (every read saw every COMMIT returned before it started)');
diag($_) for grep { defined } @{ $r->{violations}{refresh} // [] }[ 0 .. 4 ];
is($h->{sql_errors_reader} + $h->{sql_errors_writer}, 0, 'refresh: no SQL error');
diag("$_->{role}: $_->{out}") for grep { defined } ($c->errors)[ 0 .. 2 ];
cmp_ok($h->{commits}, '>=', 10, 'refresh: the writer committed under the readers');
cmp_ok($h->{hits}, '>', $h->{reads} / 4, 'refresh: readers hit');
cmp_ok($d{registered}, '>=', 16, 'refresh: the readers\' entries were registered');
cmp_ok($d{refreshed}, '>=', 20, 'refresh: the worker refreshed entries during the load');
is($d{failed}, 0, 'refresh: no refresh failed');
is(scalar($c->failures), 0, 'refresh: the checker ran as planned');

# ---- 2. roles that lose their rights ------------------------------------------

$node->safe_psql('postgres', q{
CREATE ROLE ra LOGIN;
CREATE ROLE rb LOGIN;
CREATE ROLE rc LOGIN;
CREATE ROLE readers NOLOGIN;
GRANT readers TO rb;
CREATE ROLE rd LOGIN;
CREATE ROLE rdata NOLOGIN;
GRANT rdata TO rd;
ALTER ROLE rd SET cache_ext.refresh_ahead = on;
ALTER ROLE ra SET cache_ext.refresh_ahead = on;
ALTER ROLE rb SET cache_ext.refresh_ahead = on;
ALTER ROLE rc SET cache_ext.refresh_ahead = on;
CREATE TABLE pa (v int);
INSERT INTO pa SELECT generate_series(1, 10);
CREATE TABLE pb (v int);
INSERT INTO pb SELECT generate_series(1, 20);
SELECT cache_track('pa');
SELECT cache_track('pb');
CREATE TABLE pd (v int);
INSERT INTO pd SELECT generate_series(1, 30);
SELECT cache_track('pd');
GRANT SELECT ON pa TO ra;
GRANT SELECT ON pb TO readers;
GRANT SELECT ON pd TO rdata;
CREATE FUNCTION pd_sum() RETURNS bigint LANGUAGE sql AS $f$
SELECT s FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM pd') AS t(s bigint) $f$;
CREATE FUNCTION pa_sum() RETURNS bigint LANGUAGE sql AS $f$
SELECT s FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM pa') AS t(s bigint) $f$;
CREATE FUNCTION pb_sum() RETURNS bigint LANGUAGE sql AS $f$
SELECT s FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM pb') AS t(s bigint) $f$;
-- row-level security: rc sees the documents of its groups (acl)
CREATE TABLE acl (rolname name, grp int);
INSERT INTO acl VALUES ('rc', 1), ('rc', 2);
CREATE TABLE docs (grp int, v int);
INSERT INTO docs SELECT g, i FROM generate_series(1, 3) g, generate_series(1, 10) i;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_acl ON docs USING (grp IN (SELECT a.grp FROM acl a WHERE a.rolname = current_user));
SELECT cache_track('acl');
SELECT cache_track('docs');
GRANT SELECT ON acl, docs TO rc;
CREATE FUNCTION docs_sum() RETURNS bigint LANGUAGE sql AS $f$
SELECT s FROM cached_query_with(cache_opts(ttl => '4 s'), 'SELECT sum(v) AS s FROM docs') AS t(s bigint) $f$;
});

sub as_role
{
	my ($role, $sql) = @_;
	local $ENV{PGUSER} = $role;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return ($out, $err);
}

$before = refresh_stats();
my $s0 = time();
my ($oa) = as_role('ra', 'SELECT pa_sum(); SELECT cache_status(); SELECT pa_sum(); SELECT cache_status();');
my ($ob) = as_role('rb', 'SELECT pb_sum(); SELECT cache_status(); SELECT pb_sum(); SELECT cache_status();');
my ($oc) = as_role('rc', 'SELECT docs_sum(); SELECT cache_status(); SELECT docs_sum(); SELECT cache_status();');
my ($od0) = as_role('rd', 'SET ROLE rdata; SELECT pd_sum(); SELECT cache_status(); SELECT pd_sum(); SELECT cache_status();');
like($oa, qr/^55\nMISS\n55\nHIT(?: \(local\))?$/, 'privileges: ra stored and hit its entry');
like($ob, qr/^210\nMISS\n210\nHIT(?: \(local\))?$/, 'privileges: rb stored and hit its entry (SELECT through a group)');
like($oc, qr/^110\nMISS\n110\nHIT(?: \(local\))?$/, 'privileges: rc stored and hit its entry (its rows only)');
like($od0, qr/^465\nMISS\n465\nHIT(?: \(local\))?$/, 'privileges: rd stored and hit its entry as rdata (SET ROLE)');
my $st = refresh_stats();
is($st->{registered} - $before->{registered}, 4, 'privileges: the four entries are registered');
# the key holds no role here (no row-level security): a superuser's same
# call finds the same entries (so that its misses below say something)
like($node->safe_psql('postgres', 'SELECT pa_sum(); SELECT cache_status(); SELECT pb_sum(); SELECT cache_status(); SELECT pd_sum(); SELECT cache_status();'),
	qr/^55\nHIT[^\n]*\n210\nHIT[^\n]*\n465\nHIT(?: \(local\))?$/, 'privileges: a superuser\'s same calls hit the same entries');

# before their refresh (2 s after the store): ra loses SELECT, rb its group,
# rd the role it took, rc group 2 (a write to the table its policy reads)
$node->safe_psql('postgres', q{
REVOKE SELECT ON pa FROM ra;
REVOKE readers FROM rb;
REVOKE rdata FROM rd;
DELETE FROM acl WHERE rolname = 'rc' AND grp = 2;
});
my $logpos = -s $node->logfile;
my ($xa, $ea) = as_role('ra', 'SELECT pa_sum(); SELECT cache_status();');
my ($xb, $eb) = as_role('rb', 'SELECT pb_sum(); SELECT cache_status();');
like($ea, qr/permission denied for table pa/, 'privileges: ra\'s own call raises the permission error');
like($eb, qr/permission denied for table pb/,
	'privileges: rb\'s own call raises the permission error (group revoked)');
is($xa . $xb, '', 'privileges: nothing served to them');
my (undef, $ed) = as_role('rd', 'SET ROLE rdata;');
like($ed, qr/permission denied to set role "rdata"/, 'privileges: rd can no longer take rdata');
my $s1 = time();
my ($oc2) = as_role('rc', 'SELECT docs_sum(); SELECT cache_status(); SELECT docs_sum(); SELECT cache_status();');
like($oc2, qr/^55\nMISS[^\n]*\n55\nHIT(?: \(local\))?$/,
	'privileges: rc sees only its remaining group at once (stored again, and hit)');

# the worker's turn (the entries are due 2 s after their store): both jobs
# of the roles without SELECT fail; rc's (stored again and hit) is refreshed
my $log = '';
for (1 .. 60)
{
	$log = substr(slurp_file($node->logfile), $logpos);
	last if $log =~ /dropped a job whose call failed: permission denied for table pa/
	  && $log =~ /dropped a job whose call failed: permission denied for table pb/
	  && $log =~ /dropped a job whose session user can no longer take its role/;
	sleep(0.1);
}
like($log, qr/dropped a job whose call failed: permission denied for table pa/,
	'privileges: the refresh for ra failed on the permission check');
like($log, qr/dropped a job whose call failed: permission denied for table pb/,
	'privileges: the refresh for rb (group revoked) failed on the permission check');
like($log, qr/dropped a job whose session user can no longer take its role/,
	'privileges: the refresh for rd as rdata was dropped (rd is no longer a member)');
$st = refresh_stats();
note sprintf('privileges: worker: %d refreshed, %d dropped, %d failed, %d expired',
	map { $st->{$_} - $before->{$_} } qw(refreshed dropped failed expired));
cmp_ok($st->{failed} - $before->{failed}, '>=', 2, 'privileges: the failures are counted');

# past the original TTL (4 s from the store): nothing was stored for ra and
# rb (a superuser's same call, same key: no role in it without RLS, misses);
# rc's entry, stored again at $s1, was refreshed by the worker (else it
# would have expired) and holds its new rows
my $left = 4.6 - (time() - $s0);
sleep($left) if $left > 0;
my $od = $node->safe_psql('postgres', 'SELECT pa_sum(); SELECT cache_status(); SELECT pb_sum(); SELECT cache_status(); SELECT pd_sum(); SELECT cache_status();');
like($od, qr/^55\nMISS[^\n]*\n210\nMISS[^\n]*\n465\n/, 'privileges: the values');
my @st = $od =~ /^(\w+)/mg;
is($st[1], 'MISS', 'privileges: no fresh result was stored for ra after it lost SELECT');
is($st[3], 'MISS', 'privileges: no fresh result was stored for rb after it lost its group');
is($st[5], 'MISS', 'privileges: no fresh result was stored as rdata after rd lost it');
$left = 4.6 - (time() - $s1);
sleep($left) if $left > 0;
my ($oc3) = as_role('rc', 'SELECT docs_sum(); SELECT cache_status();');
like($oc3, qr/^55\nHIT(?: \(local\))?$/, 'privileges: rc\'s entry, refreshed past its original TTL, holds only its rows');
my ($xa2, $ea2) = as_role('ra', 'SELECT pa_sum();');
like($ea2, qr/permission denied for table pa/, 'privileges: ra\'s call still raises the permission error');

unlike(slurp_file($node->logfile), qr/terminating any other active server processes|was terminated by signal/,
	'no crash');
$node->stop;
$redis->stop;
done_testing();
