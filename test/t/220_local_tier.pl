# test/t/220_local_tier.pl - the local tier (L1): HIT (local), and every
# write invalidates its entries at once
#
# Issue 12, first part.  With cache_ext.local_cache_size set, the second
# call of a query is served from shared memory (HIT (local)); each kind of
# write (a row, a key value, the table, DDL, two-phase commit,
# cache_invalidate, a tag, cache_flush) makes the next call, in another
# session, a MISS with the new rows, never the L1 entry; also while Redis
# is down, when L1 still serves its valid entries.  A role that may
# not read the table gets the permission error, never the L1 entry; under
# row-level security each role gets its own rows.  A hot standby keeps L1
# off and says why.  With cache_ext.local_cache_size = 0 a hit comes from
# Redis (HIT).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# Each node here sets cache_ext.local_cache_size itself: run-tests.sh's l1
# pass (CE_L1) would only run this file again as the tap pass does.
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"cache_ext.local_cache_size = '4MB'",
	"max_prepared_transactions = 4",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));

$node->safe_psql('postgres', q{
CREATE TABLE lt (id int PRIMARY KEY, k int NOT NULL, v int NOT NULL);
INSERT INTO lt SELECT i, i % 10, i FROM generate_series(1, 100) AS i;
SELECT cache_track('lt', key_columns => ARRAY['k']);
CREATE ROLE l1_reader LOGIN;
CREATE ROLE l1_outsider LOGIN;
GRANT SELECT ON lt TO l1_reader;
});

my $QT = 'SELECT count(*) AS n, sum(v)::bigint AS total FROM lt';
my $QK = 'SELECT count(*) AS n, sum(v)::bigint AS total FROM lt WHERE k = $1';
my $COLS = 'n bigint, total bigint';
my $T = cq($QT, $COLS);
my $K3 = cq($QK, $COLS, 3);
my $K4 = cq($QK, $COLS, 4);
my $TAG = 'SELECT * FROM cached_query_with(cache_opts(tags => ARRAY[\'l1tag\']), '
  . sql_literal($QT) . ") AS t($COLS)";

sub direct { return direct_rows($node, @_); }

# Two calls: the second is served by the local tier.
sub prime
{
	my ($sql, $rows, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	cache_call($node, $sql);
	call_is($node, $sql, qr/^HIT \(local\)$/, $rows, "$what: primed, HIT (local)");
	return;
}

# After a write: the next call is no hit and has the new rows; then local again.
sub after_write
{
	my ($sql, $rows, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	call_is($node, $sql, qr/^MISS/, $rows, "$what: invalidated at once");
	call_is($node, $sql, qr/^HIT \(local\)$/, $rows, "$what: local again");
	return;
}

# ---- HIT (local) ------------------------------------------------------------

call_is($node, $T, qr/^MISS$/, direct($QT, []), 'first call: MISS');
call_is($node, $T, qr/^HIT \(local\)$/, direct($QT, []), 'second call: HIT (local)');

# an L1 hit makes no round trip to Redis and builds no plan (one session, so
# its statement is prepared already)
{
	my $ses = CacheExt::Session->new($node);
	call_is($ses, $T, qr/^HIT \(local\)$/, direct($QT, []), 'in a session: HIT (local)');
	my $rows = direct($QT, []);
	my $before = cache_stats($ses);
	# Redis stopped (SIGSTOP): a round trip would wait out command_timeout
	# and bypass; the local hit does not notice
	$redis->pause;
	call_is($ses, $T, qr/^HIT \(local\)$/, $rows,
		'in a session, Redis stopped: HIT (local), no round trip to Redis');
	$redis->resume;
	my $d = stats_delta($before, cache_stats($ses));
	is($d->{plans_built}, 0, 'an L1 hit: no plan built');
	is($d->{l1_hits}, 1, 'an L1 hit: counted in cache_stats.l1_hits');
	is($d->{hits}, 1, 'an L1 hit: counted in cache_stats.hits');
	my $ex = $ses->query_ok("SELECT cache_explain(" . sql_literal($QT) . ")->'local'");
	like($ex, qr/"exists": true/, 'cache_explain: the entry is in L1');
	like($ex, qr/"valid": true/, 'cache_explain: and valid there');
	$ses->quit;
}

# cache_ext.verify_rate checks local hits too
{
	my $before = cache_stats($node);
	call_is($node, "SET cache_ext.verify_rate = 1;\n$T", qr/^HIT \(local\)$/, direct($QT, []),
		'verify_rate = 1: a local hit, verified');
	my $d = stats_delta($before, cache_stats($node));
	is($d->{verified}, 1, 'verify_rate = 1: the local hit was run directly and compared');
	is($d->{verify_mismatches}, 0, 'verify_rate = 1: and matched');
}

# ---- every write invalidates ------------------------------------------------

$node->safe_psql('postgres', 'UPDATE lt SET v = v + 1 WHERE id = 1');
after_write($T, direct($QT, []), 'row update');

prime($K3, direct($QK, [3]), 'key 3');
prime($K4, direct($QK, [4]), 'key 4');
$node->safe_psql('postgres', 'UPDATE lt SET v = v + 1 WHERE id = 3');
after_write($K3, direct($QK, [3]), 'a row of key 3');
call_is($node, $K4, qr/^HIT \(local\)$/, direct($QK, [4]),
	'key 4 is not touched by a write to key 3');
after_write($T, direct($QT, []), 'the table query after a key write');

$node->safe_psql('postgres', 'INSERT INTO lt VALUES (1000, 4, 1000)');
after_write($K4, direct($QK, [4]), 'an insert with key 4');

$node->safe_psql('postgres', 'DELETE FROM lt WHERE id = 1000');
after_write($K4, direct($QK, [4]), 'a delete with key 4');

$node->safe_psql('postgres', 'ALTER TABLE lt ADD COLUMN extra int');
after_write($T, direct($QT, []), 'DDL (ALTER TABLE)');
after_write($K3, direct($QK, [3]), 'DDL, key query');

# two-phase commit: COMMIT PREPARED from another session
prime($T, direct($QT, []), '2PC');
$node->safe_psql('postgres',
	"BEGIN; UPDATE lt SET v = v + 5 WHERE id = 2; PREPARE TRANSACTION 'l1_2pc'");
call_is($node, $T, qr/^HIT \(local\)$/, direct($QT, []),
	'2PC: prepared, not committed: still the old result');
$node->safe_psql('postgres', "COMMIT PREPARED 'l1_2pc'");
after_write($T, direct($QT, []), '2PC: COMMIT PREPARED');

$node->safe_psql('postgres', "SELECT cache_invalidate('lt')");
after_write($T, direct($QT, []), 'cache_invalidate');
after_write($K3, direct($QK, [3]), 'cache_invalidate, key query');

prime($TAG, direct($QT, []), 'tagged');
$node->safe_psql('postgres', "SELECT cache_invalidate_tag('l1tag')");
after_write($TAG, direct($QT, []), 'cache_invalidate_tag');

$node->safe_psql('postgres', 'SELECT cache_flush()');
after_write($T, direct($QT, []), 'cache_flush');

$node->safe_psql('postgres', 'TRUNCATE lt');
after_write($T, direct($QT, []), 'TRUNCATE');
$node->safe_psql('postgres',
	'INSERT INTO lt SELECT i, i % 10, i FROM generate_series(1, 100) AS i');
after_write($T, direct($QT, []), 'insert after TRUNCATE');

# a write that rolls back invalidates nothing
$node->safe_psql('postgres', 'BEGIN; UPDATE lt SET v = 0; ROLLBACK');
call_is($node, $T, qr/^HIT \(local\)$/, direct($QT, []), 'a rolled-back write: still local');

# a write in an open transaction: not visible, the L1 entry still right;
# after its COMMIT returned, no session gets the L1 entry
my $writer = CacheExt::Session->new($node);
$writer->query_ok('BEGIN');
$writer->query_ok('UPDATE lt SET v = v + 7 WHERE id = 5');
call_is($node, $T, qr/^HIT \(local\)$/, direct($QT, []), 'uncommitted write: still local');
$writer->query_ok('COMMIT');
after_write($T, direct($QT, []), 'committed in a long-lived session');
$writer->quit;

# ---- Redis down: L1 still serves; a write during the outage invalidates it --

prime($T, direct($QT, []), 'before the outage');
$redis->kill9;
call_is($node, $T, qr/^HIT \(local\)$/, direct($QT, []), 'Redis down: HIT (local)');
{
	# the commit cannot reach Redis: its keys wait in the outbox, and the
	# local counters are bumped anyway
	my ($ret, $out, $err) = $node->psql('postgres', 'UPDATE lt SET v = v + 3 WHERE id = 7');
	is($ret, 0, 'Redis down: a write commits');
}
call_is($node, $T, qr/^BYPASS/, direct($QT, []),
	'Redis down, after a write: the L1 entry is not served, the query runs');
$redis->start;
{
	my $ok = 0;
	for (1 .. 40)
	{
		my $r = cache_call($node, "SET cache_ext.retry_interval = 0;\n$T");
		is($r->{rows}, direct($QT, []), 'Redis back: the rows are right');
		if (($r->{status} // '') eq 'HIT (local)') { $ok = 1; last; }
		usleep(250_000);
	}
	ok($ok, 'Redis back: local hits again');
}

# ---- privileges: the L1 entry is never shown to a role that may not read -----

prime($T, direct($QT, []), 'privileges');
my $r = cache_call($node, "SET ROLE l1_outsider;\n$T");
like($r->{err}, qr/permission denied for table lt/, 'a role without SELECT gets the error');
is($r->{rows}, '', 'a role without SELECT gets no rows');
$r = cache_call($node, "SET ROLE l1_reader;\n$T");
is($r->{rows}, direct($QT, []), 'a role with SELECT gets the rows');
like($r->{status} // '', qr/^HIT/, 'a role with SELECT: a hit');

# ---- row-level security: each role its own entry, never another's ----------

$node->safe_psql('postgres', q{
CREATE TABLE l1_docs (owner name NOT NULL, body text NOT NULL);
INSERT INTO l1_docs VALUES ('l1_alice', 'alice-1'), ('l1_alice', 'alice-2'), ('l1_bob', 'bob-1');
ALTER TABLE l1_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON l1_docs USING (owner = current_user);
SELECT cache_track('l1_docs');
CREATE ROLE l1_alice LOGIN;
CREATE ROLE l1_bob LOGIN;
GRANT SELECT ON l1_docs TO l1_alice, l1_bob;
});
my $QD = 'SELECT string_agg(body, \',\' ORDER BY body) AS bodies FROM l1_docs';
my $D = cq($QD, 'bodies text');
sub as_role
{
	my ($role, $what, $re, $rows) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return call_is($node, "SET ROLE $role;\n$D", $re, $rows, $what);
}
as_role('l1_alice', 'RLS: alice, first', qr/^(MISS|BYPASS)/, 'alice-1,alice-2');
as_role('l1_alice', 'RLS: alice, second', qr/^HIT \(local\)$/, 'alice-1,alice-2');
as_role('l1_bob', 'RLS: bob never gets alice\'s entry', qr/^MISS/, 'bob-1');
as_role('l1_bob', 'RLS: bob again', qr/^HIT \(local\)$/, 'bob-1');
as_role('l1_alice', 'RLS: alice again', qr/^HIT \(local\)$/, 'alice-1,alice-2');
my $r2 = cache_call($node, "SET ROLE l1_outsider;\n$D");
like($r2->{err}, qr/permission denied for table l1_docs/,
	'RLS: a role without SELECT gets the error, not an entry');

# ---- a hot standby: L1 off there, with the reason ---------------------------

$node->backup('l1_backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'l1_backup', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
like($standby->safe_psql('postgres', 'SELECT local_cache FROM cache_health()'),
	qr/^off: off on a hot standby/, 'standby: cache_health() says L1 is off, and why');
like($standby->safe_psql('postgres',
	"SELECT w FROM cache_health(), unnest(warnings) AS w WHERE w LIKE '%local tier%'"),
	qr/local tier is off: off on a hot standby/, 'standby: and warns, the setting being on');
for my $i (1 .. 2)
{
	my $sr = cache_call($standby, $T);
	unlike($sr->{status} // '', qr/local/, "standby: call $i is never a local hit");
	is($sr->{rows}, direct($QT, []), "standby: call $i rows");
}
$standby->stop;

# ---- local_cache_size = 0 -----------------------------------------------------

my $redis0 = CacheExt::Redis->new;
my $node0 = cache_ext_node('off', $redis0, extra_conf => "cache_ext.local_cache_size = 0");
$node0->safe_psql('postgres', q{
CREATE TABLE lt (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO lt SELECT i, i FROM generate_series(1, 10) AS i;
SELECT cache_track('lt');
});
my $Q0 = cq('SELECT sum(v)::bigint AS total FROM lt', 'total bigint');
call_is($node0, $Q0, qr/^MISS$/, '55', 'local_cache_size = 0: MISS');
call_is($node0, $Q0, qr/^HIT$/, '55', 'local_cache_size = 0: the hit is from Redis');
$node0->safe_psql('postgres', 'UPDATE lt SET v = v + 1 WHERE id = 1');
call_is($node0, $Q0, qr/^MISS/, '56', 'local_cache_size = 0: invalidated');
$node0->stop;

$node->stop;
done_testing();
