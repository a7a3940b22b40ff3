# test/t/221_local_tier_memory.pl - the local tier's memory: bounded under a
# flood of distinct queries, eviction, admission, cache_purge, and a backend
# killed while using it
#
# Issue 12, first part.  A small local tier (256 kB) is flooded with
# thousands of distinct results: its bytes in use never pass its size,
# entries are evicted, a hot entry survives a flood of one-off results (they
# are not admitted once the tier is full), every result stays right, and
# cache_purge() empties it.  Then sessions hammer it while one backend is
# killed with SIGKILL (maybe holding its lock): the server restarts after
# the crash, never hangs, and L1 works again, empty.

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
	"cache_ext.local_cache_size = '256kB'",
	"restart_after_crash = on"));

$node->safe_psql('postgres', q{
CREATE TABLE mt (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
INSERT INTO mt SELECT i, i, repeat('x', 200) FROM generate_series(1, 5000) AS i;
SELECT cache_track('mt', key_columns => ARRAY['id']);
});

my $Q = 'SELECT v, pad FROM mt WHERE id = $1';
my $COLS = 'v int, pad text';

sub health
{
	my $row = $node->safe_psql('postgres',
		'SELECT local_cache, local_cache_size, local_cache_used, local_cache_entries FROM cache_health()');
	my @f = split /\|/, $row;
	return { state => $f[0], size => $f[1], used => $f[2], entries => $f[3] };
}

# Call the query for ids from .. to, each $times times, in one session.
sub flood
{
	my ($from, $to, $times) = @_;
	return $node->safe_psql('postgres', qq{
DO \$\$
DECLARE r record;
BEGIN
  FOR i IN $from .. $to LOOP
    FOR k IN 1 .. $times LOOP
      SELECT * INTO r FROM cached_query('$Q', i) AS t($COLS);
      IF r.v <> i THEN RAISE EXCEPTION 'wrong row for %: %', i, r.v; END IF;
    END LOOP;
  END LOOP;
END
\$\$;
SELECT 'ok';});
}

my $h = health();
is($h->{state}, 'on', 'cache_health: the local tier is on');
cmp_ok($h->{size}, '<=', 256 * 1024, 'cache_health: its size is within the setting');

# ---- a hot entry, then one-off results --------------------------------------

my $HOT = cq($Q, $COLS, 1);
cache_call($node, $HOT) for 1 .. 2;
call_is($node, $HOT, qr/^HIT \(local\)$/, direct_rows($node, $Q, [1]), 'hot entry: local');
cache_call($node, $HOT) for 1 .. 20;

$node->safe_psql('postgres', 'SELECT cache_stats_reset()');
is(flood(2, 3000, 1), 'ok', 'a flood of 2999 one-off results: every row right');
$h = health();
cmp_ok($h->{used}, '<=', $h->{size}, "bytes in use ($h->{used}) within the size ($h->{size})");
my $st = cache_stats($node);
cmp_ok($st->{l1_stores}, '>', 0, 'some one-off results went in while there was room');
cmp_ok($st->{l1_stores}, '<', 2999, 'not every one-off result went in');
call_is($node, $HOT, qr/^HIT \(local\)$/, direct_rows($node, $Q, [1]),
	'the hot entry survived the one-off flood');

# the tier is full: a new key goes in at its second offer, but a key whose
# entry is there (invalid) is replaced at once, even by a larger result
# (which needs more room than the old entry leaves)
$node->safe_psql('postgres', "UPDATE mt SET pad = repeat('y', 700) WHERE id = 1");
call_is($node, $HOT, qr/^MISS/, direct_rows($node, $Q, [1]), 'the hot entry, its row written: MISS');
call_is($node, $HOT, qr/^HIT \(local\)$/, direct_rows($node, $Q, [1]),
	'and back in L1 at once: replacing an entry needs no second offer');

# ---- results asked for twice: admitted, so entries are evicted --------------

$node->safe_psql('postgres', 'SELECT cache_stats_reset()');
is(flood(3001, 4500, 3), 'ok', 'a flood of 1500 results asked for 3 times: every row right');
$st = cache_stats($node);
cmp_ok($st->{l1_evictions}, '>', 0, "entries were evicted ($st->{l1_evictions})");
cmp_ok($st->{l1_hits}, '>', 0, "results asked for again were local hits ($st->{l1_hits})");
cmp_ok($st->{l1_bytes}, '<=', 256 * 1024, "cache_stats.l1_bytes ($st->{l1_bytes}) within the setting");
$h = health();
cmp_ok($h->{used}, '<=', $h->{size}, "bytes in use ($h->{used}) within the size ($h->{size}) after evictions");

# ---- an expensive result copied from Redis keeps its cost ---------------------
# L1 is full now: an expensive query's first MISS is not admitted (the first
# offer of its key), so it reaches L1 by its second call, a Redis hit.  Its
# value is its miss time (cache_query_stats), not the Redis hit's time: a
# flood of cheap results asked for 3 times must not evict it.

# (20 rows, ~10 chunks: its Redis hit's time per byte is well below the
# flood's results', its miss time per byte well above)
my $QE = 'SELECT g % 20 AS k, sum(a.v::bigint * g)::bigint AS s, repeat(\'e\', 100) AS pad '
  . 'FROM mt a CROSS JOIN generate_series(1, 200) AS g GROUP BY 1 ORDER BY 1';
my $E = cq($QE, 'k int, s bigint, pad text');
my $EX = 'SELECT cache_explain(' . sql_literal($QE) . ')';
my $erows = direct_rows($node, $QE, []);
# one session, so that the Redis hit is quick (planned, connected): valued
# at its own time it would look as cheap as the flood's results
my $es = CacheExt::Session->new($node);
call_is($es, $E, qr/^MISS$/, $erows, 'expensive result: MISS');
like($node->safe_psql('postgres', $EX), qr/"local": \{[^}]*"exists": false/,
	'expensive result: L1 is full, so its first offer was not admitted');
call_is($es, $E, qr/^HIT$/, $erows, 'expensive result: a Redis hit, copied into L1');
call_is($es, $E, qr/^HIT \(local\)$/, $erows, 'expensive result: then a local hit');
$es->quit;
$node->safe_psql('postgres', 'SELECT cache_stats_reset()');
is(flood(1, 1500, 3), 'ok', 'a flood of 1500 cheap results asked for 3 times: every row right');
$st = cache_stats($node);
cmp_ok($st->{l1_evictions}, '>', 0, "entries were evicted ($st->{l1_evictions})");
call_is($node, $E, qr/^HIT \(local\)$/, $erows,
	'the expensive result copied from Redis survived them (valued at its miss time)');

# a write still invalidates, whatever was evicted around it
call_is($node, cq($Q, $COLS, 4500), qr/^HIT/, direct_rows($node, $Q, [4500]), 'a recent entry is a hit');
$node->safe_psql('postgres', 'UPDATE mt SET v = v + 100000 WHERE id = 4500');
call_is($node, cq($Q, $COLS, 4500), qr/^MISS/, direct_rows($node, $Q, [4500]),
	'after its row changed: MISS with the new row');

# ---- cache_purge empties it --------------------------------------------------

$node->safe_psql('postgres', 'SELECT cache_purge()');
is(health()->{entries}, 0, 'cache_purge(): no local entry left in this database');
call_is($node, $HOT, qr/^MISS$/, direct_rows($node, $Q, [1]), 'after cache_purge: MISS');

# ---- invalidated entries are evicted before valid ones --------------------------
# 300 entries served 3 times each, then invalidated by writes of their keys
# (in transactions of 75 keys: no escalation to the table), and 100 valid
# entries served once.  Making room for 100 new results must evict the
# invalidated entries (worthless, whatever their hits), never the valid
# ones, which stay local hits.

is(flood(2001, 2300, 4), 'ok', '300 results served 3 times each');
is(flood(2301, 2400, 2), 'ok', '100 results served once each');
$node->safe_psql('postgres', "UPDATE mt SET v = v + 1 WHERE id BETWEEN $_ AND $_ + 74")
  for 2001, 2076, 2151, 2226;
$node->safe_psql('postgres', 'SELECT cache_stats_reset()');
is(flood(2401, 2500, 2), 'ok', '100 new results asked for twice (admitted, making room)');
cmp_ok(cache_stats($node)->{l1_evictions}, '>', 0, 'room was made by evictions');
my ($ret, $notice);
$ret = $node->psql('postgres', qq{
DO \$\$
DECLARE r record; n int := 0;
BEGIN
  FOR i IN 2301 .. 2400 LOOP
    SELECT * INTO r FROM cached_query('$Q', i) AS t($COLS);
    IF cache_status() = 'HIT (local)' THEN n := n + 1; END IF;
  END LOOP;
  RAISE NOTICE 'local %', n;
END
\$\$;}, stderr => \$notice);
is($ret, 0, 'the 100 valid results read back') or diag($notice);
# (a valid entry whose key shares a counter slot with one of the 300
# written keys is invalidated too: about one in 200 of them)
my ($survived) = ($notice // '') =~ /local (\d+)/;
cmp_ok($survived // 0, '>=', 97,
	'the valid entries survived: the invalidated ones were evicted first (59 of 100 when not)');

# ---- a backend killed while using the local tier -----------------------------

my @sessions = map { CacheExt::Session->new($node) } 1 .. 3;
my @tags;
for my $i (0 .. $#sessions)
{
	my $base = 10000 * ($i + 1);
	# distinct ids keep inserting (exclusive lock), repeated ones hit (shared)
	push @tags, $sessions[$i]->send(qq{
DO \$\$
DECLARE r record;
BEGIN
  FOR n IN 1 .. 200000 LOOP
    SELECT * INTO r FROM cached_query('$Q', 1 + (n * 7 + $base) % 4999) AS t($COLS);
  END LOOP;
END
\$\$;});
}
usleep(1_500_000);
my $victim = $sessions[0]->backend_pid;
ok($victim, "a busy backend to kill ($victim)");
kill 'KILL', $victim;
$_->quit for @sessions;

# the postmaster restarts everything; the server must answer again soon
my $up = 0;
for (1 .. 120)
{
	my ($ret, $out) = $node->psql('postgres', 'SELECT 1');
	if ($ret == 0 && $out eq '1') { $up = 1; last; }
	usleep(250_000);
}
ok($up, 'the server answers again after a backend was killed');
ok($node->log_contains('terminated by signal 9'), 'the kill was a crash for the postmaster');
$h = health();
is($h->{state}, 'on', 'the local tier is on after the restart');
call_is($node, $HOT, qr/^MISS/, direct_rows($node, $Q, [1]), 'after the restart: L1 starts empty');
# (the server-generation bump after the crash also drops what L1 took
# before it was delivered: a few calls)
my $local = 0;
for (1 .. 5)
{
	my $r = cache_call($node, $HOT);
	is($r->{rows}, direct_rows($node, $Q, [1]), 'after the restart: the rows are right');
	if (($r->{status} // '') eq 'HIT (local)') { $local = 1; last; }
	usleep(200_000);
}
ok($local, 'and L1 fills again');

$node->stop;
done_testing();
