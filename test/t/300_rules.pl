# test/t/300_rules.pl - cache rules: the plain statement an application sends,
# through every protocol, served from the cache with the rows the direct
# statement returns; invalidated by writes of other sessions.
#
# The direct result is always read with a statement of another shape (an
# extra "AND true"), which no rule serves.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('rules', $redis, extra_conf => "cache_ext.default_ttl = 300
shared_preload_libraries = 'cache_ext, pg_stat_statements'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

$node->safe_psql('postgres', q{
CREATE TABLE rt (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL, label text);
INSERT INTO rt SELECT i, 1 + i % 5, (i * 37 % 1000) / 10.0, 'l' || i FROM generate_series(1, 2000) i;
SELECT cache_track('rt');
CREATE TABLE rt_ver (v int NOT NULL);
INSERT INTO rt_ver VALUES (0);
CREATE TABLE rt_done (v int NOT NULL);
INSERT INTO rt_done VALUES (0);
SELECT cache_track('rt_ver');
});

my $RULED = 'SELECT count(*) AS n, sum(amount) AS s, max(label) AS l FROM rt WHERE region = 3';
my $DIRECT = 'SELECT count(*) AS n, sum(amount) AS s, max(label) AS l FROM rt WHERE region = 3 AND true';
$node->safe_psql('postgres', "SELECT cache_rule_create('$RULED', name => 'by_region')");
$node->safe_psql('postgres', q{SELECT cache_rule_create('SELECT v FROM rt_ver', name => 'version')});
$node->safe_psql('postgres',
	q{SELECT cache_rule_create('SELECT id, amount, label FROM rt WHERE id <= 40 ORDER BY id', name => 'first')});

# With the local tier on (CE_L1), a hit may be "HIT (local)": the same here.
sub hit_norm
{
	my ($s) = @_;
	$s =~ s/^HIT \(local\)$/HIT/mg;
	return $s;
}

sub rule_counts
{
	my ($name) = @_;
	my $r = $node->safe_psql('postgres',
		"SELECT hits || ' ' || misses || ' ' || bypasses FROM cache_rules WHERE name = '$name'");
	return split / /, $r;
}

# ---- simple protocol: MISS then HIT, identical rows -------------------------
my $direct = $node->safe_psql('postgres', $DIRECT);
is($node->safe_psql('postgres', "$RULED; SELECT cache_status()"), "$direct\nMISS", 'simple protocol: MISS, the direct rows');
is(hit_norm($node->safe_psql('postgres', "$RULED; SELECT cache_status()")), "$direct\nHIT", 'simple protocol: HIT in a new session, the same rows');

# ---- pgbench -M extended and -M prepared, with parameters -------------------
# Every transaction reads the ruled statement (parameter :r) and the direct
# one; a difference divides by zero, which aborts the client.
my $compare = q{
\set r random(1, 5)
SELECT count(*) AS n, sum(amount) AS s, max(label) AS l FROM rt WHERE region = :r \gset a_
SELECT count(*) AS n, sum(amount) AS s, max(label) AS l FROM rt WHERE region = :r AND true \gset b_
\if :a_n != :b_n
SELECT 1 / 0;
\endif
\if :a_s != :b_s
SELECT 1 / 0;
\endif
};
# Every protocol is served: the simple one (parsed and run in one message),
# and statements parsed before they run (the extended protocol, prepared)
# when the parse of their text now is the query their plan was made from
# (meaning.c; the adversarial cases are in 302 and 303).
for my $mode (qw(simple extended prepared))
{
	my ($h0, $m0) = rule_counts('by_region');
	$node->pgbench("--no-vacuum --client=2 --transactions=150 -M $mode",
		0, [qr{processed: 300/300}], [qr{^$}],
		"pgbench -M $mode: the ruled statement returns the direct rows",
		{ "300_compare_$mode" => $compare });
	my ($h1, $m1) = rule_counts('by_region');
	cmp_ok($h1 - $h0, '>=', 250, "pgbench -M $mode: served as hits after the first call of each value ("
		  . ($h1 - $h0) . ' hits, ' . ($m1 - $m0) . ' misses)');
}

# ---- psql FETCH_COUNT: a NO SCROLL cursor, read 7 rows at a time ------------
my $all = $node->safe_psql('postgres',
	'SELECT id, amount, label FROM rt WHERE id <= 40 AND true ORDER BY id');
my ($h0) = rule_counts('first');
for my $i (1 .. 2)
{
	my $out = $node->safe_psql('postgres',
		"\\set FETCH_COUNT 7\nSELECT id, amount, label FROM rt WHERE id <= 40 ORDER BY id;");
	is($out, $all, "FETCH_COUNT 7 (run $i): the 40 rows in order");
}
my ($h1) = rule_counts('first');
cmp_ok($h1 - $h0, '>=', 1, 'FETCH_COUNT: the NO SCROLL cursor is served (a hit on the second run)');
# Execute with a row limit, through a cursor in one transaction
my $batches = $node->safe_psql('postgres', q{
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, amount, label FROM rt WHERE id <= 40 ORDER BY id;
SELECT cache_status();
FETCH 13 FROM c; FETCH 13 FROM c; FETCH 13 FROM c; FETCH 13 FROM c; FETCH 13 FROM c;
COMMIT;});
like($batches, qr/^HIT/, 'FETCH 13 at a time: the cursor is served');
is(($batches =~ s/^HIT[^\n]*\n//r), $all, 'FETCH 13 at a time: the rows in order, once each');

# ---- a write from another session invalidates: no stale read ----------------
# Writers bump rt_ver and, once that commit has returned, record the value
# in rt_done.  A reader reads rt_done directly, then the ruled statement:
# the rule's answer may never be older than what rt_done says.
my $writer = q{
UPDATE rt_ver SET v = v + 1 RETURNING v AS w \gset
UPDATE rt_done SET v = greatest(v, :w);
};
my $reader = q{
SELECT v AS d FROM rt_done \gset
SELECT v FROM rt_ver \gset
\if :v < :d
SELECT 1 / 0;
\endif
};
# (-M prepared: the readers' statements are prepared once, served by meaning)
for my $mode (qw(simple prepared))
{
	my ($vh0, $vm0) = rule_counts('version');
	$node->pgbench("--no-vacuum --client=4 --jobs=2 --time=3 -M $mode",
		0, [qr{processed: \d+}], [qr{^$}],
		"readers and writers (-M $mode): no reader saw a version older than a committed one",
		{ "300_writer_${mode}\@1" => $writer, "300_reader_${mode}\@6" => $reader });
	my ($vh1, $vm1) = rule_counts('version');
	cmp_ok($vh1 - $vh0, '>', 50, "-M $mode: the readers were served hits (" . ($vh1 - $vh0) . ' hits, '
		  . ($vm1 - $vm0) . ' misses)');
	cmp_ok($vm1 - $vm0, '>', 10, "-M $mode: and misses after writes");
}

# ---- every write path invalidates the ruled statement -----------------------
$node->safe_psql('postgres', q{
CREATE TABLE wp (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO wp SELECT i, i FROM generate_series(1, 10) i;
SELECT cache_track('wp');
SELECT cache_rule_create('SELECT count(*), sum(v) FROM wp', name => 'wp');
CREATE FUNCTION wp_bump() RETURNS void LANGUAGE sql AS 'UPDATE wp SET v = v + 1 WHERE id = 1';
});
my @writes = (
	'INSERT INTO wp VALUES (100, 5)',
	'UPDATE wp SET v = v * 2 WHERE id = 2',
	'DELETE FROM wp WHERE id = 3',
	"COPY wp FROM PROGRAM 'echo 200,7' WITH (FORMAT csv)",
	'SELECT wp_bump()',
	'INSERT INTO wp VALUES (300, 1) ON CONFLICT (id) DO UPDATE SET v = 0',
	'TRUNCATE wp');
for my $w (@writes)
{
	$node->safe_psql('postgres', 'SELECT count(*), sum(v) FROM wp');
	$node->safe_psql('postgres', $w);
	my $want = $node->safe_psql('postgres', 'SELECT count(*), sum(v) FROM wp WHERE true');
	is($node->safe_psql('postgres', "SELECT count(*), sum(v) FROM wp; SELECT cache_status()"),
		"$want\nMISS (invalidated)", "after $w: the new rows, the entry invalidated");
}

# ---- a rule dropped in another session stops serving at the next statement --
my $s1 = CacheExt::Session->new($node);
$s1->query_ok($RULED);
is(hit_norm(($s1->query('SELECT cache_status()'))[0]), 'HIT', 'an open session serves the rule');
$node->safe_psql('postgres', q{SELECT cache_rule_drop('by_region')});
$s1->query_ok('SELECT cache_stats_reset()');
$s1->query_ok($RULED);
is($node->safe_psql('postgres', 'SELECT hits + misses + bypasses FROM cache_stats'), '0',
	'the open session no longer serves the dropped rule at its next statement');
$s1->quit;

# ---- pg_dump / restore: the rules come back and serve, under other OIDs -----
my $dump = $node->basedir . '/rules.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
# a table created first: the restored tables get other OIDs
$node->safe_psql('restored', 'CREATE TABLE shift_the_oids (x int)');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump ],
	'restored into another database');
is($node->safe_psql('restored', q{SELECT string_agg(name, ',' ORDER BY name) FROM cache_rules}),
	'first,version,wp', 'the rules were restored');
isnt($node->safe_psql('restored', q{SELECT 'rt'::regclass::oid}),
	$node->safe_psql('postgres', q{SELECT 'rt'::regclass::oid}), 'the table has another OID');
my $first = $node->safe_psql('restored', 'SELECT id, amount, label FROM rt WHERE id <= 40 AND true ORDER BY id');
is($node->safe_psql('restored', "SELECT id, amount, label FROM rt WHERE id <= 40 ORDER BY id; SELECT cache_status()"),
	"$first\nMISS", 'the restored rule serves: MISS');
is(hit_norm($node->safe_psql('restored', "SELECT id, amount, label FROM rt WHERE id <= 40 ORDER BY id; SELECT cache_status()")),
	"$first\nHIT", 'then HIT');

# ---- cache_candidates: from pg_stat_statements to a rule --------------------
# A statement an application sends with a parameter becomes a candidate; the
# call cache_candidates suggests creates the rule that then serves it.
my $cand_script = "\\set r random(1, 5)\nSELECT max(amount) AS top FROM rt WHERE region = :r;\n";
$node->pgbench('--no-vacuum --client=1 --transactions=20 -M prepared',
	0, [qr{processed: 20/20}], [qr{^$}], 'pgbench: a statement without a rule',
	{ '300_candidate_before' => $cand_script });
my $cand = $node->safe_psql('postgres',
	q{SELECT verdict || '|' || rule_call FROM cache_candidates() WHERE query LIKE 'SELECT max(amount) AS top%'});
like($cand, qr/^cacheable\|SELECT public\.cache_rule_create\('SELECT max\(amount\) AS top FROM rt WHERE region = \$1'\);$/,
	'cache_candidates: a cacheable candidate and the call that creates its rule');
my ($call) = $cand =~ /\|(.*)$/;
# (the application's statements come with constants in the simple protocol,
# the one served: the rule's shape takes a constant for $1)
$call =~ s/\$1/3/;
$node->safe_psql('postgres', $call);
$node->pgbench('--no-vacuum --client=1 --transactions=20 -M simple',
	0, [qr{processed: 20/20}], [qr{^$}], 'pgbench: the same statement after the rule (simple protocol: served)',
	{ '300_candidate_after' => $cand_script });
is($node->safe_psql('postgres', q{SELECT hits + misses FROM cache_rules WHERE query LIKE 'SELECT max(amount) AS top%'}),
	'20', 'the rule made from the candidate serves the statement');

$node->stop;
done_testing();
