# test/t/010_hit_miss.pl - MISS then HIT, what the key depends on, what Redis holds
#
# Every call runs in a new session, so a HIT always crosses sessions.  The
# expected rows are always computed by running the same query directly.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis,
	extra_conf => "cache_ext.default_ttl = 300");

# Distinctive strings: none of them may appear in a Redis key name.
my $TABLE = 'sales_wombat';
my $QUERY_MARK = 'quokka_7731';
my $RESULT_MARK = 'zebra_marker';

my $setup_sql = qq{
CREATE TABLE $TABLE (
    id       int PRIMARY KEY,
    region   int NOT NULL,
    amount   numeric(12,2) NOT NULL,
    label    text NOT NULL,
    sold_at  timestamptz NOT NULL);
INSERT INTO $TABLE
SELECT i, 1 + i % 10, (i * 37 % 1000) / 10.0, '${RESULT_MARK}_' || (i % 10),
       timestamptz '2024-03-01 12:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 1000) AS i;
};
$node->safe_psql('postgres', $setup_sql);

# The same table name, other contents: in another schema and another database.
$node->safe_psql('postgres', qq{
CREATE SCHEMA other;
CREATE TABLE other.$TABLE (LIKE public.$TABLE);
INSERT INTO other.$TABLE SELECT id, region, amount * 2, 'other_' || label, sold_at FROM public.$TABLE;
CREATE DATABASE otherdb;
});
$node->safe_psql('otherdb', 'CREATE EXTENSION cache_ext');
$node->safe_psql('otherdb', $setup_sql);
$node->safe_psql('otherdb', "UPDATE $TABLE SET amount = amount * 3, label = 'db_' || label");

my $Q = "SELECT region, count(*) AS n, sum(amount) AS total, min(label) AS label, "
  . "'$QUERY_MARK' AS tag FROM $TABLE WHERE region = \$1 GROUP BY region";
my $COLS = 'region int, n bigint, total numeric, label text, tag text';

my %expected = map { $_ => direct_rows($node, $Q, [$_]) } (7, 8, 9);
isnt($expected{7}, $expected{8}, 'setup: regions 7 and 8 differ');
like($expected{7}, qr/$RESULT_MARK/, 'setup: the result holds the result marker');

$node->safe_psql('postgres', 'SELECT cache_stats_reset()');

# ---- MISS, HIT, parameters --------------------------------------------------

call_is($node, cq($Q, $COLS, 7), qr/^MISS/, $expected{7}, 'first call, region 7');
call_is($node, cq($Q, $COLS, 7), qr/^HIT/, $expected{7}, 'second call, region 7');
call_is($node, cq($Q, $COLS, 8), qr/^MISS/, $expected{8},
	'another parameter value is another entry');
call_is($node, cq($Q, $COLS, 8), qr/^HIT/, $expected{8}, 'region 8 again');
call_is($node, cq($Q, $COLS, 7), qr/^HIT/, $expected{7},
	'region 7 still served from its own entry');

my $stats = cache_stats($node);
is($stats->{hits}, 3, 'cache_stats: 3 hits');
is($stats->{misses}, 2, 'cache_stats: 2 misses');
is($stats->{stores}, 2, 'cache_stats: 2 stores');
is($stats->{bypasses}, 0, 'cache_stats: no bypasses');
is($stats->{errors}, 0, 'cache_stats: no errors');
is($stats->{corrupt}, 0, 'cache_stats: nothing corrupt');
cmp_ok($stats->{bytes_stored}, '>', 0, 'cache_stats: bytes_stored counted');
cmp_ok($stats->{bytes_read}, '>', 0, 'cache_stats: bytes_read counted');

# ---- What Redis holds -------------------------------------------------------

my @all_keys = $redis->scan_keys('*');
my @keys = $redis->scan_keys('cache_ext:*');
cmp_ok(scalar(@keys), '>=', 2, 'Redis holds keys under the prefix cache_ext:');
is_deeply([ grep { !/^cache_ext:/ } @all_keys ], [],
	'nothing is written outside the key prefix');
foreach my $plain ($QUERY_MARK, $RESULT_MARK, $TABLE, 'select', 'region')
{
	is_deeply([ grep { /\Q$plain\E/i } @all_keys ], [],
		"no key name contains the plaintext '$plain'");
}

# Entries carry a TTL of at most default_ttl; generation keys may carry none.
my %ttl = map { $_ => $redis->cli('TTL', $_) } @keys;
my @with_ttl = grep { $ttl{$_} > 0 } @keys;
cmp_ok(scalar(@with_ttl), '>=', 2, 'the two entries carry a TTL');
is_deeply([ grep { $ttl{$_} > 300 } @with_ttl ], [],
	'no TTL is above cache_ext.default_ttl (300 s)');
note "key $_ TTL $ttl{$_}" foreach @keys;

# A per-session default_ttl applies to the entries stored by that session.
my %before = map { $_ => 1 } @keys;
call_is($node, "SET cache_ext.default_ttl = 42;\n" . cq($Q, $COLS, 9),
	qr/^MISS/, $expected{9}, 'region 9 with default_ttl = 42');
my @new = grep { !$before{$_} } $redis->scan_keys('cache_ext:*');
my @new_ttl = grep { $_ > 0 } map { $redis->cli('TTL', $_) } @new;
cmp_ok(scalar(@new_ttl), '>=', 1, 'the new entry carries a TTL');
is_deeply([ grep { $_ > 42 } @new_ttl ], [], 'its TTL is at most 42 s');

# ---- key_prefix -------------------------------------------------------------

call_is($node, "SET cache_ext.key_prefix = 'ce_alt:';\n" . cq($Q, $COLS, 7),
	qr/^MISS/, $expected{7}, 'another key_prefix is another namespace');
call_is($node, "SET cache_ext.key_prefix = 'ce_alt:';\n" . cq($Q, $COLS, 7),
	qr/^HIT/, $expected{7}, 'same key_prefix again');
cmp_ok(scalar($redis->scan_keys('ce_alt:*')), '>=', 1,
	'keys are stored under the new prefix');

# ---- jsonb form -------------------------------------------------------------

my $json_sql = 'SELECT cached_query_json(' . sql_literal($Q) . ', 7)';
my $j1 = cache_call($node, $json_sql);
my $j2 = cache_call($node, $json_sql);
unlike($j1->{err}, qr/ERROR/, 'cached_query_json: no error');
like($j1->{status} // '', qr/^(MISS|HIT)/, 'cached_query_json: first call MISS or HIT');
like($j2->{status} // '', qr/^HIT/, 'cached_query_json: second call HIT');
is($j2->{rows}, $j1->{rows}, 'cached_query_json: the HIT returns the same jsonb');
like($j1->{rows}, qr/"tag": "$QUERY_MARK"/, 'cached_query_json: the jsonb holds the row');
my $Q7 = $Q =~ s/\$1/7/r;
is($node->safe_psql('postgres', 'SELECT ' . sql_literal($j1->{rows})
	  . "::jsonb = (SELECT jsonb_agg(to_jsonb(q)) FROM ($Q7) AS q)"), 't',
	'cached_query_json: the jsonb is the rows as an array of objects');

# ---- max_entry_size ---------------------------------------------------------

my $BIGQ = "SELECT id, label, amount FROM $TABLE WHERE id <= \$1 ORDER BY id";
my $BIGCOLS = 'id int, label text, amount numeric';
my $big = direct_rows($node, $BIGQ, [500]);
my $small_limit = "SET cache_ext.max_entry_size = '1kB';\n";
my $st0 = cache_stats($node);
call_is($node, $small_limit . cq($BIGQ, $BIGCOLS, 500), qr/^MISS/, $big,
	'a result above max_entry_size');
call_is($node, $small_limit . cq($BIGQ, $BIGCOLS, 500), qr/^MISS/, $big,
	'is not stored: MISS again');
is(stats_delta($st0, cache_stats($node))->{store_skipped}, 2,
	'both counted in cache_stats.store_skipped');
call_is($node, $small_limit . cq($BIGQ, $BIGCOLS, 2), qr/^MISS/,
	direct_rows($node, $BIGQ, [2]), 'a small result under the same limit');
call_is($node, $small_limit . cq($BIGQ, $BIGCOLS, 2), qr/^HIT/,
	direct_rows($node, $BIGQ, [2]), 'is stored: HIT');

# ---- What else is in the key ------------------------------------------------

# Another database: same query text, same parameter, same table name.
my $other_db = direct_rows($node, $Q, [7], dbname => 'otherdb');
isnt($other_db, $expected{7}, 'setup: otherdb has other contents');
call_is($node, cq($Q, $COLS, 7), qr/^MISS/, $other_db,
	'another database does not share entries', dbname => 'otherdb');
call_is($node, cq($Q, $COLS, 7), qr/^HIT/, $other_db,
	'otherdb has its own entry', dbname => 'otherdb');

# search_path resolving another table of the same name.
my $sp = "SET search_path = other, public;\n";
my $other_schema = direct_rows($node, $Q, [7], setup => $sp);
isnt($other_schema, $expected{7}, "setup: other.$TABLE has other contents");
call_is($node, $sp . cq($Q, $COLS, 7), qr/^MISS/, $other_schema,
	'search_path resolving another table does not share entries');
call_is($node, $sp . cq($Q, $COLS, 7), qr/^HIT/, $other_schema,
	'that search_path has its own entry');
call_is($node, cq($Q, $COLS, 7), qr/^HIT/, $expected{7},
	'the default search_path still gets its own entry');

# TimeZone changes the text of a timestamptz.
my $TZQ = "SELECT id, sold_at::text AS ts FROM $TABLE WHERE id = \$1";
my $TZCOLS = 'id int, ts text';
my ($utc, $tokyo) = ("SET TimeZone = 'UTC';\n", "SET TimeZone = 'Asia/Tokyo';\n");
my $rows_utc = direct_rows($node, $TZQ, [5], setup => $utc);
my $rows_tokyo = direct_rows($node, $TZQ, [5], setup => $tokyo);
isnt($rows_utc, $rows_tokyo, 'setup: the two time zones give different text');
call_is($node, $utc . cq($TZQ, $TZCOLS, 5), qr/^MISS/, $rows_utc, 'TimeZone UTC, first call');
call_is($node, $utc . cq($TZQ, $TZCOLS, 5), qr/^HIT/, $rows_utc, 'TimeZone UTC, second call');
call_is($node, $tokyo . cq($TZQ, $TZCOLS, 5), qr/^MISS/, $rows_tokyo,
	'another TimeZone does not share entries');
call_is($node, $tokyo . cq($TZQ, $TZCOLS, 5), qr/^HIT/, $rows_tokyo,
	'Asia/Tokyo has its own entry');

ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
$redis->stop;
done_testing();
