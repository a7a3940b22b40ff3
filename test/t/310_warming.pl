# test/t/310_warming.pl - cache_warm_list's progress and cancellation; early refresh
#
# A list of slow queries reports its progress with a NOTICE every 5 s and a
# summary at the end; a cancel ends the whole call at once (it is not one
# query's failure, which the list would step over); what was warmed before
# the cancel stays warmed.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);

delete $ENV{CE_L1};    # nothing here depends on where a hit comes from

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

# slow_sum sleeps, then reads: STABLE, so its calls are cached (the sleep
# is the cost of the query, as an expensive aggregate's would be)
$node->safe_psql('postgres', q{
CREATE TABLE w (v int);
INSERT INTO w SELECT generate_series(1, 100);
SELECT cache_track('w');
CREATE FUNCTION slow_sum(secs float8, k int) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pg_sleep(secs);
    RETURN (SELECT sum(v) + k FROM w);
END $$;
});
my $OPTS = q{cache_opts(depends_on => ARRAY['w'::regclass])};

# progress: 3 queries of 2.6 s each, so at least one NOTICE before the end
{
	my $list = join(',', map { "'SELECT slow_sum(2.6, $_) AS s'" } 1 .. 3);
	# (one session: an opted-in function's results are this session's)
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT status FROM cache_warm_list(ARRAY[$list], $OPTS);\n"
		  . "SELECT cache_warm_with($OPTS, 'SELECT slow_sum(2.6, 3) AS s')");
	is($rc, 0, 'progress: the list ran');
	is($out, join("\n", ('MISS') x 3, 'HIT'), 'progress: each query stored, and then a hit');
	like($err, qr/NOTICE:  cache_warm_list: 2 of 3 queries: 2 stored/,
		'progress: a NOTICE while the list runs');
	like($err, qr/NOTICE:  cache_warm_list: done, 3 of 3 queries: 3 stored, 0 already cached/,
		'progress: a summary at the end');
}

# cancellation: the third query is cancelled while it sleeps
{
	my $list = join(',', map { "'SELECT slow_sum(1, " . (10 + $_) . ") AS s'" } 1 .. 6);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $b->query_safe('SELECT pg_backend_pid()');
	$b->query_until(qr/started/, "\\echo started\nSELECT status FROM cache_warm_list(ARRAY[$list], $OPTS);\n");
	my $t0 = time();
	sleep(2.5);
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$b->query('SELECT 1');    # (waits for the cancelled call's end)
	my $elapsed = time() - $t0;
	like($b->{stderr}, qr/canceling statement due to user request/, 'cancel: the call ends with the cancel');
	cmp_ok($elapsed, '<', 4.5, 'cancel: at once, not after the remaining queries');
	$b->{stderr} = '';    # (query_safe fails on any error text left)
	is($b->query_safe("SELECT 'alive'"), 'alive', 'cancel: the session is usable');
	my $warmed = $b->query_safe(join(";\n",
		map { "SELECT cache_warm_with($OPTS, 'SELECT slow_sum(1, " . (10 + $_) . ") AS s')" } 1 .. 2));
	is($warmed, "HIT\nHIT", 'cancel: the queries warmed before the cancel stay warmed');
	$b->quit;
}

# early refresh (cache_ext.early_refresh, XFetch): near the end of its TTL
# an entry whose query is slow is recomputed by some hits, which say so;
# off, the same hits are hits.  slow_sum(0.3, ...) costs 300 ms a miss, so
# with beta 50 and at most 2 s of a 2.5 s TTL left, a hit refreshes with
# probability at least exp(-2000 / 15000) = 0.87.
{
	my $opts = q{cache_opts(ttl => '2.5 s', depends_on => ARRAY['w'::regclass])};
	my $call = "SELECT * FROM cached_query_with($opts, 'SELECT slow_sum(0.3, 100) AS s') AS t(s bigint)";
	my $want = $node->safe_psql('postgres', 'SELECT sum(v) + 100 FROM w');
	my $sql = join("\n",
		"SET cache_ext.early_refresh = 0;",
		"$call;", "SELECT cache_status();",
		"SELECT pg_sleep(0.5);",
		(map { ("$call;", "SELECT cache_status();") } 1 .. 4),
		"SET cache_ext.early_refresh = 50;",
		(map { ("$call;", "SELECT cache_status();") } 1 .. 4));
	my @out = grep { $_ ne '' } split /\n/, $node->safe_psql('postgres', $sql);
	my @rows = grep { /^\d+$/ } @out;
	my @st = grep { /^(HIT|MISS|BYPASS)/ } @out;
	is(scalar(@st), 9, 'early refresh: nine calls');
	is_deeply([ grep { $_ ne $want } @rows ], [], 'early refresh: every call returns the current rows');
	like($st[0], qr/^MISS/, 'early refresh: the first call stores');
	is_deeply([ @st[1 .. 4] ], [ ('HIT') x 4 ], 'early refresh: off, hits are hits');
	ok((grep { /^MISS \(early refresh/ } @st[5 .. 8]) >= 1,
		'early refresh: on, near the end of the TTL, hits recompute')
	  or diag(join("\n", @st));
}

$node->stop;
$redis->stop;
done_testing();
