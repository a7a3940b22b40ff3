# test/t/090_observability.pl - cache_query_stats, cache_health(), cache_ext.log_calls
#
# Covered:
#   - cache_query_stats counters per query text: calls, hits, misses,
#     bypasses, stores, bytes (against the entry's size in Redis), hit and
#     miss times and time saved, invalidations, bypass_reasons by category,
#     cache_ext.query_stats = off, cache_query_stats_reset();
#   - privileges: the view and the reset are not for PUBLIC; pg_read_all_stats
#     reads the view but may not reset; the settings are superuser-only;
#   - cache_health(): Redis up (connection, breaker, PING, INFO fields,
#     warnings for the eviction policy, maxmemory 0, AOF, a replica role),
#     Redis down (breaker open, last error), invalidations waiting in the
#     outbox and their delivery;
#   - cache_ext.log_calls (all, miss, bypass, none) and log_calls_level;
#     one "could not use Redis" warning per outage, not one per call;
#   - the bound cache_ext.query_stats_max: the entries of lowest usage are
#     evicted, a much-called query survives; a new entry starts at the median
#     usage, so it is not the next victim (entries called twice go before
#     it), and, called once, it decays and goes within a few evictions; a
#     flood of one-off texts leaves the table full, not over, and the
#     much-called entries in it.
#
# Log checks read the server log from an offset up to a marker the same
# session logs afterwards, so "nothing logged" is checked without sleeping.

use strict;
use warnings FATAL => 'all';

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it counts Redis hits (status HIT), their bytes, log lines and
# warnings of calls that must reach Redis (stopped, for some); L1 hits say
# HIT (local) and make no round trip (cache_stats l1_*: 220).
delete $ENV{CE_L1};

my $t_start = time();

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '1s'",
	"cache_ext.invalidation_timeout = '300ms'"));

sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $postgres_oid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");

# ---- helpers ----------------------------------------------------------------

# The query texts of this test; each is its own cache_query_stats row.
my $Q_MAIN = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* main */';
my $Q_RAND = 'SELECT id, random() < 2 AS r FROM sales WHERE id = $1 /* volatile */';
my $Q_INVAL = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* inval */';
my $Q_WHY = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* reasons */';
my $Q_LOG = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* logged */';
my $COLS = 'n bigint, total numeric';
my $RAND_COLS = 'id int, r boolean';

# The rows of cache_query_stats for one query text (array of hashes).
sub qstats_rows
{
	my ($query) = @_;
	my $json = $node->safe_psql('postgres',
		"SELECT coalesce(json_agg(s), '[]') FROM cache_query_stats s WHERE query = "
		  . sql_literal($query));
	return decode_json($json);
}

# The one row for a query text; fails a test if there is not exactly one.
sub qstat
{
	my ($query, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $rows = qstats_rows($query);
	is(scalar(@$rows), 1, "$what: one cache_query_stats row for the query text")
	  or diag explain $rows;
	return $rows->[0] // {};
}

sub stats_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM cache_query_stats');
}

# The Redis key a call would use, and the size of the entry stored there.
sub entry_key
{
	my ($query, @params) = @_;
	return $node->safe_psql('postgres',
		'SELECT cache_explain(' . join(', ', sql_literal($query), @params) . ")->>'key'");
}

# cache_health() as a hash, and the stderr of the statement.
sub health
{
	my ($target) = @_;
	my $sql = 'SELECT row_to_json(h) FROM cache_health() h';
	my ($out, $err) = ('', '');
	if ($target->isa('CacheExt::Session'))
	{
		($out, $err) = $target->query($sql);
	}
	else
	{
		$target->psql('postgres', $sql, stdout => \$out, stderr => \$err,
			on_error_stop => 0);
	}
	my $h = eval { decode_json($out) };
	if (!$h)
	{
		diag "cache_health() gave no row: stdout '$out' stderr '$err'";
		$h = {};
	}
	return ($h, $err);
}

# Run $sql as a role, in a new session: (stdout, stderr).
sub psql_as
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		on_error_stop => 0, extra_params => [ '-U', $role ]);
	return ($out, $err);
}

# The server log from $offset up to a marker logged now by $session.
my $marker_seq = 0;
sub log_since
{
	my ($session, $offset) = @_;
	my $marker = 'ce_log_marker_' . ++$marker_seq;
	$session->query_ok("DO \$\$BEGIN RAISE LOG '$marker'; END\$\$");
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $1 if $log =~ /\A(.*?)^[^\n]*LOG:  \Q$marker\E$/ms;
		die "marker $marker never reached the server log" if time() > $deadline;
		usleep(20_000);
	}
}

sub count_matches
{
	my ($text, $re) = @_;
	my $n = () = $text =~ /$re/g;
	return $n;
}

my %expected = (
	main  => direct_rows($node, $Q_MAIN, [4]),
	rand  => direct_rows($node, $Q_RAND, [17]),
	why   => direct_rows($node, $Q_WHY, [6]),
	log   => direct_rows($node, $Q_LOG, [8]),);

# ============================================================================
# 1. cache_query_stats counters
# ============================================================================

$node->safe_psql('postgres', 'SELECT cache_query_stats_reset()');
is(stats_count(), 0, 'after cache_query_stats_reset() the view is empty');

my $cs0 = cache_stats($node);
call_is($node, cq($Q_MAIN, $COLS, 4), qr/^MISS$/, $expected{main}, 'main query: first call');
call_is($node, cq($Q_MAIN, $COLS, 4), qr/^HIT$/, $expected{main}, 'main query: second call');
call_is($node, cq($Q_MAIN, $COLS, 4), qr/^HIT$/, $expected{main}, 'main query: third call');
call_is($node, cq($Q_RAND, $RAND_COLS, 17), qr/^BYPASS: volatile function random\(\)/,
	$expected{rand}, 'random() query');
my $csd = stats_delta($cs0, cache_stats($node));
is_deeply([ @$csd{qw(hits misses bypasses stores)} ], [ 2, 1, 1, 1 ],
	'cache_stats agrees: 2 hits, 1 miss, 1 bypass, 1 store');

is(stats_count(), 2, 'two query texts, two rows');

my $key_main = entry_key($Q_MAIN, 4);
like($key_main, qr/^cache_ext:.*:e:[0-9a-f]+$/, 'cache_explain gives the entry key');
my $entry_size = $redis->cli('STRLEN', $key_main);
cmp_ok($entry_size, '>', 0, "the entry is in Redis ($entry_size bytes)");

my $m = qstat($Q_MAIN, 'main query');
is($m->{dbid}, $postgres_oid, 'main: dbid is the database');
ok(defined $m->{queryid} && $m->{queryid} != 0, 'main: queryid set');
is($m->{calls}, 3, 'main: calls = 3');
is($m->{hits}, 2, 'main: hits = 2');
is($m->{misses}, 1, 'main: misses = 1');
is($m->{bypasses}, 0, 'main: bypasses = 0');
is_deeply($m->{bypass_reasons}, {}, 'main: bypass_reasons is empty');
is($m->{stores}, 1, 'main: stores = 1');
is($m->{store_skipped}, 0, 'main: store_skipped = 0');
is($m->{invalidated}, 0, 'main: invalidated = 0');
is($m->{last_invalidation}, undef, 'main: last_invalidation is null');
cmp_ok($m->{bytes_stored}, '>', 0, 'main: bytes_stored > 0');
is($m->{bytes_stored}, $entry_size, 'main: bytes_stored = the size of the entry in Redis');
is($m->{bytes_read}, 2 * $entry_size, 'main: bytes_read = 2 x the entry size');
ok(defined $m->{mean_hit_ms} && $m->{mean_hit_ms} >= 0, 'main: mean_hit_ms set');
ok(defined $m->{mean_miss_ms} && $m->{mean_miss_ms} > 0, 'main: mean_miss_ms set');
ok(defined $m->{max_hit_ms} && $m->{max_hit_ms} >= ($m->{mean_hit_ms} // 0),
	'main: max_hit_ms >= mean_hit_ms');
{
	my $want = 2 * ($m->{mean_miss_ms} // 0) - 2 * ($m->{mean_hit_ms} // 0);
	my $got = $m->{time_saved_ms} // 'null';
	ok($got ne 'null' && abs($got - $want) <= 1e-6 * (1 + abs($want)),
		'main: time_saved_ms = hits * mean_miss_ms - hits * mean_hit_ms')
	  or diag "time_saved_ms $got, expected $want";
}

my $r = qstat($Q_RAND, 'random() query');
is_deeply([ @$r{qw(calls hits misses bypasses stores bytes_stored bytes_read)} ],
	[ 1, 0, 0, 1, 0, 0, 0 ], 'random(): 1 call, 1 bypass, nothing else');
is_deeply($r->{bypass_reasons}, { 'not cacheable' => 1 },
	'random(): bypass_reasons {"not cacheable": 1}');
is($r->{mean_hit_ms}, undef, 'random(): mean_hit_ms null without hits');
is($r->{mean_miss_ms}, undef, 'random(): mean_miss_ms null without misses');

# ---- invalidation -----------------------------------------------------------

my $before_inval = direct_rows($node, $Q_INVAL, [5]);
call_is($node, cq($Q_INVAL, $COLS, 5), qr/^MISS$/, $before_inval, 'inval query: first call');
call_is($node, cq($Q_INVAL, $COLS, 5), qr/^HIT$/, $before_inval, 'inval query: HIT');
my $t_before_update = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 5');
my $after_inval = direct_rows($node, $Q_INVAL, [5]);
isnt($after_inval, $before_inval, 'setup: the update changed the result');
call_is($node, cq($Q_INVAL, $COLS, 5), qr/^MISS \(invalidated\)$/, $after_inval,
	'inval query after an update of the tracked table');
my $i = qstat($Q_INVAL, 'inval query');
is_deeply([ @$i{qw(calls hits misses stores invalidated)} ], [ 3, 1, 2, 2, 1 ],
	'inval: 3 calls, 1 hit, 2 misses, 2 stores, invalidated = 1');
ok(defined $i->{last_invalidation}, 'inval: last_invalidation set');
is($node->safe_psql('postgres',
		"SELECT last_invalidation BETWEEN '$t_before_update'::timestamptz AND clock_timestamp() "
		  . 'FROM cache_query_stats WHERE query = ' . sql_literal($Q_INVAL)),
	't', 'inval: last_invalidation is the time of the invalidated call');

# ---- bypass reasons by category ----------------------------------------------

my $cq_why = cq($Q_WHY, $COLS, 6);
call_is($node, "BEGIN;\nUPDATE sales SET amount = amount WHERE id = 1;\n$cq_why",
	qr/^BYPASS: this transaction changed public\.sales/, $expected{why},
	'reasons: inside a transaction that wrote the table');
call_is($node, "BEGIN ISOLATION LEVEL REPEATABLE READ;\n$cq_why",
	qr/^BYPASS: repeatable read transaction/, $expected{why}, 'reasons: REPEATABLE READ');
call_is($node, "BEGIN ISOLATION LEVEL SERIALIZABLE;\n$cq_why",
	qr/^BYPASS: serializable transaction/, $expected{why}, 'reasons: SERIALIZABLE');
$redis->stop;
call_is($node, $cq_why, qr/^BYPASS: redis unavailable/, $expected{why},
	'reasons: Redis stopped, first call');
call_is($node, $cq_why, qr/^BYPASS: redis unavailable/, $expected{why},
	'reasons: Redis stopped, second call');
$redis->start;
call_is($node, cq($Q_RAND, $RAND_COLS, 17), qr/^BYPASS: volatile function random\(\)/,
	$expected{rand}, 'random() query again');

my $w = qstat($Q_WHY, 'reasons query');
is($w->{calls}, 5, 'reasons: 5 calls');
is($w->{bypasses}, 5, 'reasons: 5 bypasses');
is_deeply($w->{bypass_reasons},
	{ 'own writes' => 1, 'isolation level' => 2, 'redis unavailable' => 2 },
	'reasons: counted by category')
  or diag explain $w->{bypass_reasons};
is_deeply(qstat($Q_RAND, 'random() again')->{bypass_reasons}, { 'not cacheable' => 2 },
	'random(): {"not cacheable": 2}');

# ---- cache_ext.query_stats = off ---------------------------------------------

my $r_off = cache_call($node, "SET cache_ext.query_stats = off;\n" . cq($Q_MAIN, $COLS, 4));
ok(!$r_off->{timed_out} && $r_off->{err} !~ /ERROR/ && defined $r_off->{status},
	'query_stats = off: the call runs') or diag $r_off->{err};
is($r_off->{rows}, $expected{main}, 'query_stats = off: right rows');
is(qstat($Q_MAIN, 'query_stats off')->{calls}, 3, 'query_stats = off: the call is not counted');
cache_call($node, cq($Q_RAND, $RAND_COLS, 17));
is(qstat($Q_RAND, 'query_stats on')->{calls}, 3,
	'another session with query_stats on is still counted');

$node->safe_psql('postgres', 'SELECT cache_query_stats_reset()');
is(stats_count(), 0, 'cache_query_stats_reset() empties the view');

# ============================================================================
# 3. privileges
# ============================================================================

$node->safe_psql('postgres', 'CREATE ROLE ce_plain LOGIN');
call_is($node, cq($Q_MAIN, $COLS, 4), qr/^(HIT|MISS)/, $expected{main},
	'a call so that the view has a row');
my ($out, $err) = psql_as('ce_plain', 'SELECT count(*) FROM cache_query_stats');
like($err, qr/permission denied for view cache_query_stats/,
	'plain role: permission denied on the view');
($out, $err) = psql_as('ce_plain', 'SELECT count(*) FROM cache_query_stats()');
like($err, qr/permission denied for function cache_query_stats/,
	'plain role: permission denied on the function');
($out, $err) = psql_as('ce_plain', 'SELECT cache_query_stats_reset()');
like($err, qr/permission denied for function cache_query_stats_reset/,
	'plain role: permission denied on cache_query_stats_reset()');
foreach my $set ("cache_ext.query_stats = off", "cache_ext.log_calls = 'all'",
	"cache_ext.log_calls_level = warning")
{
	($out, $err) = psql_as('ce_plain', "SET $set");
	like($err, qr/permission denied to set parameter/, "plain role: SET $set refused");
}

$node->safe_psql('postgres', 'GRANT pg_read_all_stats TO ce_plain');
($out, $err) = psql_as('ce_plain',
	'SELECT count(*) FROM cache_query_stats WHERE query = ' . sql_literal($Q_MAIN));
is($err, '', 'pg_read_all_stats member: reads the view without error');
is($out, 1, 'pg_read_all_stats member: sees the row');
($out, $err) = psql_as('ce_plain', 'SELECT cache_query_stats_reset()');
like($err, qr/permission denied for function cache_query_stats_reset/,
	'pg_read_all_stats member: still may not reset');
is(stats_count(), 1, 'the refused reset removed nothing');

# ============================================================================
# 4. cache_health()
# ============================================================================

my ($redis_version) = `redis-server --version` =~ /\bv=(\S+)/;
ok(defined $redis_version, "redis-server --version gives a version")
  or $redis_version = '?';

my $hs = CacheExt::Session->new($node, timeout => 60);
cache_call($hs, cq($Q_MAIN, $COLS, 4));
my ($h, $herr) = health($hs);
ok($h->{connected}, 'Redis up: connected after a call');
is($h->{circuit}, 'closed', 'Redis up: circuit closed');
is($h->{circuit_retry_ms}, 0, 'Redis up: circuit_retry_ms 0');
is($h->{last_error}, undef, 'Redis up: no last_error in this session');
ok(defined $h->{rtt_ms} && $h->{rtt_ms} > 0, 'Redis up: rtt_ms > 0')
  or diag 'rtt_ms ' . ($h->{rtt_ms} // 'null');
is($h->{redis_role}, 'master', 'Redis up: role master');
is($h->{redis_version}, $redis_version, 'Redis up: redis_version is that of redis-server');
ok(defined $h->{used_memory} && $h->{used_memory} > 0, 'Redis up: used_memory > 0');
is($h->{maxmemory}, 0, 'Redis up: maxmemory 0 (the default)');
is($h->{maxmemory_policy}, 'noeviction', 'Redis up: maxmemory_policy noeviction (the default)');
ok(defined $h->{evicted_keys} && defined $h->{expired_keys}, 'Redis up: evicted and expired keys');
is($h->{outbox_depth}, 0, 'Redis up: outbox empty');
is($h->{pending_invalidations}, 0, 'Redis up: no pending invalidations');
my @warn = @{ $h->{warnings} // [] };
is(scalar(grep { /noeviction/ } @warn), 1, 'default settings: a warning for noeviction');
is(scalar(grep { /maxmemory is 0/ } @warn), 1, 'default settings: a warning for maxmemory 0');
is_deeply([ grep { /AOF|role/ } @warn ], [], 'default settings: no AOF or role warning');
unlike($herr, qr/WARNING|ERROR/, 'Redis up: cache_health() raises nothing');

$redis->cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
($h) = health($hs);
is($h->{maxmemory_policy}, 'allkeys-lru', 'allkeys-lru: reported');
is(scalar(grep { /allkeys-lru/ } @{ $h->{warnings} // [] }), 1,
	'allkeys-lru: a warning mentions it') or diag explain $h->{warnings};

$redis->cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
$redis->cli('CONFIG', 'SET', 'maxmemory', '104857600');
($h) = health($hs);
is($h->{maxmemory_policy}, 'volatile-lru', 'volatile-lru: reported');
is($h->{maxmemory}, 104857600, 'maxmemory: reported');
is_deeply($h->{warnings}, [], 'volatile-lru with maxmemory set: no warning')
  or diag explain $h->{warnings};

$redis->cli('CONFIG', 'SET', 'appendonly', 'yes');
($h) = health($hs);
is(scalar(grep { /AOF/ } @{ $h->{warnings} // [] }), 1, 'AOF on: a warning');
$redis->cli('CONFIG', 'SET', 'appendonly', 'no');

my $nowhere = PostgreSQL::Test::Cluster::get_free_port();
$redis->cli('REPLICAOF', '127.0.0.1', $nowhere);
($h) = health($hs);
isnt($h->{redis_role}, 'master', 'REPLICAOF: the role is no longer master');
is(scalar(grep { /role/ } @{ $h->{warnings} // [] }), 1, 'replica role: a warning')
  or diag explain $h->{warnings};
$redis->cli('REPLICAOF', 'NO', 'ONE');
($h) = health($hs);
is($h->{redis_role}, 'master', 'REPLICAOF NO ONE: master again');
is_deeply($h->{warnings}, [], 'and no warning');

# ---- Redis down ---------------------------------------------------------------

$hs->query_ok("SET cache_ext.retry_interval = '30s'");
$redis->stop;
call_is($hs, cq($Q_MAIN, $COLS, 4), qr/^BYPASS: redis unavailable/, $expected{main},
	'Redis stopped: the call bypasses');
($h, $herr) = health($hs);
is($h->{circuit}, 'open', 'Redis stopped: circuit open after the failed call');
ok(defined $h->{circuit_retry_ms} && $h->{circuit_retry_ms} > 0
	  && $h->{circuit_retry_ms} <= 30000, 'Redis stopped: circuit_retry_ms within retry_interval')
  or diag 'circuit_retry_ms ' . ($h->{circuit_retry_ms} // 'null');
ok(defined $h->{connected} && !$h->{connected}, 'Redis stopped: not connected');
ok(defined $h->{last_error} && $h->{last_error} ne '', 'Redis stopped: last_error set')
  and note "last_error: $h->{last_error}";
is($h->{rtt_ms}, undef, 'Redis stopped: no rtt_ms');
is($h->{redis_version}, undef, 'Redis stopped: no redis_version');

# A new session whose first contact with Redis is cache_health() itself.
($h, $herr) = health($node);
unlike($herr, qr/ERROR|FATAL|PANIC|server closed/, 'Redis stopped, new session: cache_health() works');
ok(defined $h->{connected} && !$h->{connected}, 'Redis stopped, new session: not connected');
is($h->{circuit}, 'open', 'Redis stopped, new session: its own failed PING opened the circuit');
like($h->{last_error} // '', qr/connect|refused/i,
	'Redis stopped, new session: last_error says why');

# Invalidations that cannot be delivered wait in the outbox.
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 4');
$expected{main} = direct_rows($node, $Q_MAIN, [4]);
($h) = health($node);
cmp_ok($h->{pending_invalidations} // 0, '>', 0, 'update while Redis is down: pending_invalidations > 0');
cmp_ok($h->{outbox_depth} // 0, '>', 0, 'update while Redis is down: outbox_depth > 0');
is($h->{pending_invalidations}, cache_stats($node)->{pending_invalidations},
	'pending_invalidations agrees with cache_stats');

$redis->start;
call_is($node, cq($Q_MAIN, $COLS, 4), qr/^MISS/, $expected{main},
	'Redis back: a call delivers the invalidations, then misses');
($h) = health($node);
is($h->{pending_invalidations}, 0, 'Redis back: pending_invalidations 0');
is($h->{outbox_depth}, 0, 'Redis back: outbox empty');
ok($h->{connected}, 'Redis back: connected');
is($h->{circuit}, 'closed', 'Redis back: circuit closed');
if (($h->{pending_invalidations} // 0) != 0)
{
	# Not a test: what a second call does, for the report.
	my $second = cache_call($node, cq($Q_MAIN, $COLS, 4));
	my ($h2) = health($node);
	diag 'a second call after Redis came back: status ' . ($second->{status} // 'none')
	  . ", then pending_invalidations $h2->{pending_invalidations}, outbox_depth $h2->{outbox_depth}";
}
$hs->quit;

# ============================================================================
# 5. cache_ext.log_calls
# ============================================================================

my $ls = CacheExt::Session->new($node, timeout => 60);
call_is($ls, cq($Q_LOG, $COLS, 8), qr/^MISS$/, $expected{log}, 'logged query: first call');

my $offset = -s $node->logfile;
$ls->query_ok("SET cache_ext.log_calls = 'all'");
call_is($ls, cq($Q_LOG, $COLS, 8), qr/^HIT$/, $expected{log}, "log_calls = 'all': a hit");
my $log = log_since($ls, $offset);
is(count_matches($log, qr/cache_ext: HIT in \d+\.\d{3} ms$/m), 1,
	"log_calls = 'all': one 'cache_ext: HIT in' line");
is(count_matches($log, qr/LOG:  cache_ext: /), 1, "log_calls = 'all': no other call logged");
my $key_log = entry_key($Q_LOG, 8);
my ($logged_key, $logged_id) =
  $log =~ /cache_ext: HIT in [\d.]+ ms\n[^\n]*DETAIL:  Key (\S+), query id (-?\d+)\.$/m;
is($logged_key, $key_log, "log_calls = 'all': the DETAIL names the entry key");
is($logged_id, qstat($Q_LOG, 'logged query')->{queryid},
	"log_calls = 'all': the DETAIL's query id is cache_query_stats.queryid");

$offset = -s $node->logfile;
call_is($ls, cq($Q_LOG, $COLS, 9), qr/^MISS$/, direct_rows($node, $Q_LOG, [9]),
	"log_calls = 'all': a miss");
$log = log_since($ls, $offset);
is(count_matches($log, qr/cache_ext: MISS in \d+\.\d{3} ms\n[^\n]*DETAIL:  Key cache_ext:/), 1,
	"log_calls = 'all': the miss is logged with its key");

$ls->query_ok("SET cache_ext.log_calls = 'miss'");
$offset = -s $node->logfile;
call_is($ls, cq($Q_LOG, $COLS, 8), qr/^HIT$/, $expected{log}, "log_calls = 'miss': a hit");
call_is($ls, cq($Q_LOG, $COLS, 10), qr/^MISS$/, direct_rows($node, $Q_LOG, [10]),
	"log_calls = 'miss': a miss");
call_is($ls, cq($Q_RAND, $RAND_COLS, 17), qr/^BYPASS: volatile function random\(\)/,
	$expected{rand}, "log_calls = 'miss': a bypass");
$log = log_since($ls, $offset);
is(count_matches($log, qr/LOG:  cache_ext: HIT/), 0, "log_calls = 'miss': the hit is not logged");
is(count_matches($log, qr/LOG:  cache_ext: MISS in/), 1, "log_calls = 'miss': the miss is");
is(count_matches($log, qr/LOG:  cache_ext: BYPASS: volatile function random\(\) in/), 1,
	"log_calls = 'miss': the bypass is");

$ls->query_ok("SET cache_ext.log_calls = 'bypass'");
$offset = -s $node->logfile;
call_is($ls, cq($Q_LOG, $COLS, 8), qr/^HIT$/, $expected{log}, "log_calls = 'bypass': a hit");
call_is($ls, cq($Q_LOG, $COLS, 11), qr/^MISS$/, direct_rows($node, $Q_LOG, [11]),
	"log_calls = 'bypass': a miss");
call_is($ls, cq($Q_RAND, $RAND_COLS, 17), qr/^BYPASS: volatile function random\(\)/,
	$expected{rand}, "log_calls = 'bypass': a bypass");
$log = log_since($ls, $offset);
is(count_matches($log, qr/LOG:  cache_ext: (HIT|MISS)/), 0,
	"log_calls = 'bypass': neither the hit nor the miss is logged");
is(count_matches($log,
		qr/LOG:  cache_ext: BYPASS: volatile function random\(\) in \d+\.\d{3} ms\n[^\n]*DETAIL:  Query id -?\d+\./),
	1, "log_calls = 'bypass': one 'cache_ext: BYPASS: volatile function random()' line");

$ls->query_ok("SET cache_ext.log_calls = none");
$offset = -s $node->logfile;
call_is($ls, cq($Q_LOG, $COLS, 8), qr/^HIT$/, $expected{log}, 'log_calls = none: a hit');
call_is($ls, cq($Q_LOG, $COLS, 12), qr/^MISS$/, direct_rows($node, $Q_LOG, [12]),
	'log_calls = none: a miss');
call_is($ls, cq($Q_RAND, $RAND_COLS, 17), qr/^BYPASS: volatile function random\(\)/,
	$expected{rand}, 'log_calls = none: a bypass');
$log = log_since($ls, $offset);
is(count_matches($log, qr/cache_ext: (HIT|MISS|BYPASS)/), 0, 'log_calls = none: nothing logged');

# log_calls_level: at notice the client gets the message too.
$ls->query_ok("SET cache_ext.log_calls = 'all'; SET cache_ext.log_calls_level = notice");
my $rn = cache_call($ls, cq($Q_LOG, $COLS, 8));
like($rn->{err}, qr/NOTICE:  cache_ext: HIT in \d+\.\d{3} ms/,
	'log_calls_level = notice: the client receives the message');
$ls->quit;

# ---- one warning per outage, not per call -------------------------------------

my $fs = CacheExt::Session->new($node, timeout => 60);
$fs->query_ok('SET cache_ext.retry_interval = 0');
call_is($fs, cq($Q_MAIN, $COLS, 4), qr/^(HIT|MISS)/, $expected{main}, 'flood: Redis up first');
$redis->stop;
my $fst0 = cache_stats($fs);
my ($all_err, $bad) = ('', 0);
for my $n (1 .. 20)
{
	my $res = cache_call($fs, cq($Q_MAIN, $COLS, 4));
	$all_err .= $res->{err};
	$bad++ if $res->{timed_out} || ($res->{status} // '') !~ /^BYPASS: redis unavailable/
	  || $res->{rows} ne $expected{main};
}
is($bad, 0, 'flood: 20 calls with Redis stopped all bypass with the right rows');
is(count_matches($all_err, qr/WARNING:  cache_ext could not use Redis/), 1,
	'flood: exactly one "could not use Redis" WARNING in the session')
  or diag $all_err;
cmp_ok(stats_delta($fst0, cache_stats($fs))->{errors}, '>=', 20,
	'flood: with retry_interval = 0 every call did try Redis');
$redis->start;
call_is($fs, cq($Q_MAIN, $COLS, 4), qr/^MISS/, $expected{main}, 'flood: Redis back');
$redis->stop;
my $again = cache_call($fs, cq($Q_MAIN, $COLS, 4));
is(count_matches($again->{err}, qr/WARNING:  cache_ext could not use Redis/), 1,
	'a new outage warns again');
$redis->start;
$fs->quit;

# ============================================================================
# 2. eviction (last: it restarts the server)
# ============================================================================

$node->append_conf('postgresql.conf', 'cache_ext.query_stats_max = 100');
$node->restart;
is($node->safe_psql('postgres', 'SHOW cache_ext.query_stats_max'), 100,
	'query_stats_max = 100 after the restart');
is(stats_count(), 0, 'the restart starts with an empty view');

my $Q_HEAVY = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* heavy */';
$node->safe_psql('postgres', join(";\n", (cq($Q_HEAVY, $COLS, 2)) x 30));
my @distinct = map { "SELECT count(*) AS n FROM sales WHERE id <= $_ /* distinct */" } 1 .. 150;
$node->safe_psql('postgres', join(";\n", map { cq($_, 'n bigint') } @distinct));
my $rows_left = stats_count();
cmp_ok($rows_left, '<=', 100, "150 distinct queries: at most 100 rows ($rows_left)");
cmp_ok($rows_left, '>=', 90, 'eviction removes a few entries, not all');
my $heavy = qstats_rows($Q_HEAVY);
is(scalar(@$heavy), 1, 'the query called 30 times survives eviction');
is($heavy->[0]{calls}, 30, 'with its 30 calls');
is(scalar(@{ qstats_rows($distinct[-1]) }), 1, 'the last query called has its row');

# ---- usage with decay: a new entry is not the next victim ---------------------
# 50 texts called 10 times ("hot") and 50 called twice ("cold") fill the
# table; then 10 new texts are called once each, and each of the 1st and 6th
# evicts 5 entries.  Ranked by calls, the 1st to 5th new texts (1 call each)
# would be the victims of the 6th's eviction; ranked by usage they start at
# the median (a hot text's usage), so cold texts go instead.
sub kinds_left
{
	my $json = $node->safe_psql('postgres',
		"SELECT json_object_agg(k, n) FROM (SELECT substring(query FROM '/\\* (\\w+) \\*/') AS k, "
		  . "count(*) AS n FROM cache_query_stats GROUP BY 1) s");
	return decode_json($json);
}
my $kq = sub { my ($kind, $i) = @_; return "SELECT count(*) AS n FROM sales WHERE id <= $i /* $kind */"; };
$node->safe_psql('postgres', 'SELECT cache_query_stats_reset()');
$node->safe_psql('postgres', join(";\n",
	(map { my $q = $kq->('hot', $_); (cq($q, 'n bigint')) x 10 } 1 .. 50),
	(map { my $q = $kq->('cold', $_); (cq($q, 'n bigint')) x 2 } 1 .. 50)));
is(stats_count(), 100, 'usage: 100 texts fill the table');
$node->safe_psql('postgres', join(";\n", map { cq($kq->('new', $_), 'n bigint') } 1 .. 10));
my $kinds = kinds_left();
is($kinds->{new}, 10, 'usage: the 10 new texts all survive the second eviction')
  or diag explain $kinds;
is($kinds->{cold}, 40, 'usage: two evictions took 5 texts called twice each')
  or diag explain $kinds;
is($kinds->{hot}, 50, 'usage: every text called 10 times stays');
is(stats_count(), 100, 'usage: the table is full, not over');

# ---- a flood of one-off texts: bounded, and the hot texts stay ---------------
$node->safe_psql('postgres', join(";\n", map { cq($kq->('flood', $_), 'n bigint') } 1 .. 300));
$kinds = kinds_left();
cmp_ok(stats_count(), '<=', 100, 'flood: 300 one-off texts leave at most 100 rows');
is($kinds->{hot}, 50, 'flood: every text called 10 times stays')
  or diag explain $kinds;
ok(!defined $kinds->{new}, 'flood: the new texts, not called again, decayed and were evicted')
  or diag explain $kinds;
is(scalar(@{ qstats_rows($kq->('flood', 300)) }), 1, 'flood: the last text called has its row');
is(qstat($kq->('hot', 1), 'flood')->{calls}, 10, 'flood: a hot text keeps its 10 calls');

ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
note sprintf('090_observability took %.1f s', time() - $t_start);

$node->stop;
$redis->stop;
done_testing();
