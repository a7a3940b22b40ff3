# test/t/110_key_tracking.pl - key-level tracking (docs/architecture.md §3, key scopes)
#
# cache_track(t, ARRAY['col']) makes a write invalidate only the cached
# results about the key values it changed (OLD and NEW), provided the
# reading query is narrowed: a top-level AND-ed WHERE equality on the key
# column (= $n, = const, IN (consts), = ANY($n)) on every occurrence of the
# relation.  Everything else stays table-level.
#
# For each write: the reads that must be invalidated are a MISS returning
# the new rows, the others are still a HIT; the expected rows are always
# those of the same query run directly.
#
# Covered: UPDATE / INSERT / DELETE, an UPDATE moving a row between keys,
# NULL keys (written, and as a parameter), IN lists and = ANY($n) arrays,
# escalation past cache_ext.max_keys_per_xact (boundary, the setting
# raised and lowered, distinct keys counted, escalation in a rolled-back
# savepoint), joins with one side narrowed, second occurrences (self-join,
# sublink, CTE, view, inlined SQL function) that keep the table scope,
# integer parameters of three widths against integer columns of three
# widths, a text key, a uuid key, switching table level <-> key level (with
# long-lived reader and writer sessions), own writes and savepoints, a
# partitioned table (writes to partitions, rows moving between partitions,
# a partition attached later with another column order), TRUNCATE and
# ALTER TABLE.  Last, = ANY($1) with a text array ending in NULLs.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $t_start = time();

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => 'cache_ext.default_ttl = 600');

# ---- helpers ----------------------------------------------------------------

my $DCOLS = 'n bigint, total bigint, digest text';

# count, sum and digest of the rows of "$from" (table alias $a, if any)
sub digest_sql
{
	my ($from, $a) = @_;
	my $p = defined $a ? "$a." : '';
	return "SELECT count(*) AS n, coalesce(sum(${p}amount), 0)::bigint AS total, "
	  . "md5(coalesce(string_agg(${p}id || ':' || ${p}amount, ',' ORDER BY ${p}id), '')) AS digest "
	  . "FROM $from";
}

# A cached read: its query, result columns and parameters (SQL expressions).
sub qd
{
	my ($name, $query, $cols, @params) = @_;
	return {
		name   => $name,
		q      => $query,
		cols   => $cols,
		params => [@params],
		call   => cq($query, $cols, @params),
	};
}

sub direct
{
	my ($q) = @_;
	return direct_rows($node, $q->{q}, $q->{params});
}

# The rows of the query run directly in a session (its own transaction).
sub direct_in
{
	my ($s, $q) = @_;
	my $exec = @{ $q->{params} } ? 'EXECUTE ce_d(' . join(', ', @{ $q->{params} }) . ')' : 'EXECUTE ce_d';
	return $s->query_ok("PREPARE ce_d AS $q->{q};\n$exec;\nDEALLOCATE ce_d;");
}

# The reader: one long-lived session (its prepared queries and relation
# information survive the changes of tracking below).
my $rd = CacheExt::Session->new($node, timeout => 60);

sub read_is
{
	my ($target, $q, $re, $expected, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return call_is($target, $q->{call}, $re, $expected, "$q->{name}: $what");
}

# Read until stored: one call (any status, the direct rows), then a HIT.
sub prime
{
	my ($what, @qs) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	foreach my $q (@qs)
	{
		my $expected = direct($q);
		read_is($rd, $q, qr/^(MISS|HIT)/, $expected, "$what: priming read");
		read_is($rd, $q, qr/^HIT(?: \(local\))?$/, $expected, "$what: primed, HIT");
	}
	return;
}

sub run_action
{
	my ($action) = @_;
	return ref($action) eq 'CODE' ? $action->() : $node->safe_psql('postgres', $action);
}

# after_write($name, $action, changed => [...], miss => [...], hit => [...])
#
# Every read is a HIT before $action (SQL in a new session, or a sub).  After:
#   changed  the direct rows changed, and the read is a MISS with them
#   miss     the read is a MISS (its rows may be the same), with the direct rows
#   hit      the direct rows are the same, and the read is still a HIT
#   any      the read returns the direct rows (HIT or MISS)
# The status of a MISS must match miss_re (default: MISS (invalidated)).
sub after_write
{
	my ($name, $action, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @qs = (
		(map { [ $_, 'changed' ] } @{ $o{changed} // [] }),
		(map { [ $_, 'miss' ] } @{ $o{miss} // [] }),
		(map { [ $_, 'hit' ] } @{ $o{hit} // [] }),
		(map { [ $_, 'any' ] } @{ $o{any} // [] }));
	my $miss_re = $o{miss_re} // qr/^MISS \(invalidated\)$/;
	my %before;

	foreach my $e (@qs)
	{
		my $q = $e->[0];
		$before{ $q->{name} } = direct($q);
		read_is($rd, $q, qr/^HIT(?: \(local\))?$/, $before{ $q->{name} }, "before $name: HIT");
	}
	run_action($action);
	foreach my $e (@qs)
	{
		my ($q, $mode) = @$e;
		my $after = direct($q);
		my $changed = $after ne $before{ $q->{name} };
		if ($mode eq 'changed')
		{
			ok($changed, "$q->{name}: $name changed its rows (test setup)");
			read_is($rd, $q, $miss_re, $after, "after $name: MISS with the new rows");
		}
		elsif ($mode eq 'miss')
		{
			read_is($rd, $q, $miss_re, $after, "after $name: MISS");
		}
		elsif ($mode eq 'any')
		{
			read_is($rd, $q, qr/^(HIT|MISS)/, $after, "after $name: the direct rows");
		}
		else
		{
			ok(!$changed, "$q->{name}: $name left its rows as they were (test setup)");
			read_is($rd, $q, qr/^HIT(?: \(local\))?$/, $after, "after $name: still a HIT");
		}
	}
	return;
}

# cache_explain(...)->'scopes' of a read, as jsonb text.
sub scopes_of
{
	my ($q, $target) = @_;
	my $sql = 'SELECT cache_explain(' . join(', ', sql_literal($q->{q}), @{ $q->{params} }) . ")->'scopes'";
	return defined $target ? $target->query_ok($sql) : $node->safe_psql('postgres', $sql);
}

# The scopes a read narrowed to $nkeys values of rel.col has, then @rest.
sub key_scopes
{
	my ($rel, $col, $nkeys, @rest) = @_;
	return '[' . join(', ', map { "\"$_\"" } 'server', 'database', "table structure public.$rel",
		("key public.$rel.$col") x $nkeys, @rest) . ']';
}

sub table_scopes
{
	return '[' . join(', ', map { "\"$_\"" } 'server', 'database', map { "table public.$_" } @_) . ']';
}

sub tracked
{
	my ($rel) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(key_columns::text, 'none') || ' ' || coalesce(triggers, '') "
		  . "FROM cache_tracked WHERE relation = '$rel'::regclass");
}

# ============================================================================
# Setup
# ============================================================================

# orders: ids 1..1000, customer_id = id % 200 (5 rows per key, keys 0..199)
$node->safe_psql('postgres', q{
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount int NOT NULL);
INSERT INTO orders SELECT i, i % 200, i FROM generate_series(1, 1000) AS i;
SELECT cache_track('orders', ARRAY['customer_id']);

CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT i, 'cust' || i FROM generate_series(0, 199) AS i;
SELECT cache_track('customers');

CREATE VIEW orders_v AS SELECT * FROM orders;
CREATE FUNCTION orders_of(int) RETURNS SETOF orders LANGUAGE sql STABLE
    AS 'SELECT * FROM orders WHERE customer_id = $1';

-- integer keys of two other widths
CREATE TABLE ledger (id int PRIMARY KEY, acct bigint NOT NULL, region smallint NOT NULL, amount int NOT NULL);
INSERT INTO ledger SELECT i, i % 50, i % 7, i FROM generate_series(1, 200) AS i;
SELECT cache_track('ledger', ARRAY['acct', 'region']);

-- a text key and a uuid key
CREATE TABLE acc (id int PRIMARY KEY, code text NOT NULL, amount int NOT NULL);
INSERT INTO acc SELECT i, 'c' || (i % 12), i FROM generate_series(1, 60) AS i;
SELECT cache_track('acc', ARRAY['code']);
CREATE TABLE tok (id int PRIMARY KEY, token uuid NOT NULL, amount int NOT NULL);
INSERT INTO tok SELECT i, md5('t' || (i % 6))::uuid, i FROM generate_series(1, 30) AS i;
SELECT cache_track('tok', ARRAY['token']);

-- a partitioned table; even ids 2..998, customer_id 0..99
CREATE TABLE porders (id int NOT NULL, customer_id int, amount int NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE porders_1 PARTITION OF porders FOR VALUES FROM (0) TO (500);
CREATE TABLE porders_2 PARTITION OF porders FOR VALUES FROM (500) TO (1000);
INSERT INTO porders SELECT 2 * i, i % 100, i FROM generate_series(1, 499) AS i;
SELECT cache_track('porders', ARRAY['customer_id']);
});

like(tracked('orders'), qr/^\{customer_id\} .*cache_ext_keys \(row, always\)/,
	'cache_tracked: orders is tracked by customer_id, with its row trigger cache_ext_keys');
is($node->safe_psql('postgres',
		"SELECT tgnargs || ' ' || tgenabled::text FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname = 'cache_ext_keys'"),
	'1 A', 'cache_ext_keys carries the key column as its argument and fires always');
like(tracked('customers'), qr/^none /, 'cache_tracked: customers has no key columns');
unlike(tracked('customers'), qr/cache_ext_keys/, 'customers has no key trigger');
like(tracked('ledger'), qr/^\{acct,region\} /, 'cache_tracked: ledger is tracked by acct and region');

# ---- the reads --------------------------------------------------------------

my $KEYQ = digest_sql('orders WHERE customer_id = $1');
my %K = map { $_ => qd("orders key $_", $KEYQ, $DCOLS, $_) } (7, 41, 42, 43, 60, 150, 500);
my $K42B = qd('orders key 42::bigint', $KEYQ, $DCOLS, '42::bigint');
my $K42S = qd('orders key 42::smallint', $KEYQ, $DCOLS, '42::smallint');
my $T = qd('orders (table level)',
	'SELECT count(*) AS n, coalesce(sum(amount), 0)::bigint AS total, '
	  . "md5(coalesce(string_agg(id || ':' || coalesce(customer_id::text, '-') || ':' || amount, ',' ORDER BY id), '')) "
	  . 'AS digest FROM orders', $DCOLS);

# ============================================================================
# Which reads are narrowed (cache_explain)
# ============================================================================

my $K1 = key_scopes('orders', 'customer_id', 1);
my $K2 = key_scopes('orders', 'customer_id', 2);
my $TO = table_scopes('orders');
my $COUNTQ = 'SELECT count(*) AS n FROM orders WHERE ';
foreach my $c (
	[ 'customer_id = $1 (int)',          $K1, 'customer_id = $1', 42 ],
	[ 'customer_id = $1 (bigint)',       $K1, 'customer_id = $1', '42::bigint' ],
	[ 'customer_id = $1 (smallint)',     $K1, 'customer_id = $1', '42::smallint' ],
	[ '$1 = customer_id',                $K1, '$1 = customer_id', 42 ],
	[ 'customer_id = 42',                $K1, 'customer_id = 42' ],
	[ '42 = customer_id',                $K1, '42 = customer_id' ],
	[ 'AND-ed with another condition',   $K1, 'amount > $2 AND customer_id = $1 AND id > 0', 42, 10 ],
	[ 'customer_id IN (7, 42)',          $K2, 'customer_id IN (7, 42)' ],
	[ 'customer_id = ANY($1) int[]',     $K2, 'customer_id = ANY($1)', 'ARRAY[7, 42]' ],
	[ 'customer_id = ANY($1) bigint[]',  $K2, 'customer_id = ANY($1)', 'ARRAY[7, 42]::bigint[]' ],
	[ 'customer_id = ANY($1) with NULLs first', $K2, 'customer_id = ANY($1)', 'ARRAY[NULL, 7, 42]::int[]' ],
	[ 'customer_id = ANY($1) with NULLs last', $K2, 'customer_id = ANY($1)', 'ARRAY[7, 42, NULL, NULL]::int[]' ],
	[ 'customer_id = $1 with a NULL parameter', key_scopes('orders', 'customer_id', 0),
		'customer_id = $1', 'NULL::int' ],
	[ 'OR of two equalities',            $TO, 'customer_id = 7 OR customer_id = 42' ],
	[ 'a range',                         $TO, 'customer_id BETWEEN 7 AND 8' ],
	[ 'an inequality',                   $TO, 'customer_id < $1', 42 ],
	[ 'an equality on another column',   $TO, 'id = $1', 42 ],
	[ 'an expression of the key',        $TO, 'customer_id + 0 = $1', 42 ],
	[ 'IS NOT DISTINCT FROM',            $TO, 'customer_id IS NOT DISTINCT FROM $1', 42 ],
	[ 'IN with 101 constants',           $TO, 'customer_id IN (' . join(', ', 1 .. 101) . ')' ],
	[ '= ANY($1) with 101 values',       $TO, 'customer_id = ANY($1)', 'ARRAY(SELECT generate_series(1, 101))' ],
	[ 'a sublink reading the table again', $TO,
		'customer_id = $1 AND amount > (SELECT avg(amount) FROM orders)', 42 ],
	[ 'a view of the table in a sublink', $TO,
		'customer_id = $1 AND id IN (SELECT id FROM orders_v WHERE customer_id = $1)', 42 ])
{
	my ($what, $expected, $where, @params) = @$c;
	is(scopes_of({ q => $COUNTQ . $where, params => \@params }), $expected,
		"cache_explain scopes: $what");
}

# whole queries
my $J = qd('join with customers, orders narrowed',
	'SELECT count(*) AS n, coalesce(sum(o.amount), 0)::bigint AS total, '
	  . "md5(coalesce(string_agg(o.id || ':' || o.amount || ':' || c.name, ',' ORDER BY o.id), '')) AS digest "
	  . 'FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = $1',
	$DCOLS, 42);
my $SJ = qd('self-join, other side by customer_id + 1',
	'SELECT count(*) AS n, coalesce(sum(b.amount), 0)::bigint AS total, '
	  . "md5(coalesce(string_agg(a.id || ':' || b.id || ':' || b.amount, ',' ORDER BY a.id, b.id), '')) AS digest "
	  . 'FROM orders a JOIN orders b ON b.customer_id = a.customer_id + 1 WHERE a.customer_id = $1',
	$DCOLS, 42);
my $SJN = qd('self-join, both sides narrowed',
	'SELECT count(*) AS n, coalesce(sum(b.amount), 0)::bigint AS total, '
	  . "md5(coalesce(string_agg(a.id || ':' || b.amount, ',' ORDER BY a.id), '')) AS digest "
	  . 'FROM orders a JOIN orders b ON b.id = a.id WHERE a.customer_id = $1 AND b.customer_id = $1',
	$DCOLS, 42);
my $SUB = qd('key 42 above the average (sublink)',
	digest_sql('orders WHERE customer_id = $1 AND amount > (SELECT avg(amount) FROM orders)'), $DCOLS, 42);
my $CTE = qd('key 42 with a CTE over the table',
	'WITH m AS (SELECT max(amount) AS mx FROM orders) '
	  . digest_sql('orders, m WHERE customer_id = $1 AND amount <= m.mx'), $DCOLS, 42);
my $VW = qd('key 42 and a view in a sublink',
	digest_sql('orders o WHERE o.customer_id = $1 AND o.id IN (SELECT id FROM orders_v)', 'o'), $DCOLS, 42);
my $FN = qd('key 42 cross an inlined SQL function reading key 43',
	'SELECT count(*) AS n, coalesce(sum(f.amount), 0)::bigint AS total, '
	  . "md5(coalesce(string_agg(o.id || ':' || f.id || ':' || f.amount, ',' ORDER BY o.id, f.id), '')) AS digest "
	  . 'FROM orders o, orders_of(43) f WHERE o.customer_id = $1',
	$DCOLS, 42);

is(scopes_of($K{42}), $K1, 'cache_explain scopes: the key read is narrowed');
is(scopes_of($T), $TO, 'cache_explain scopes: the whole-table read is not');
is(scopes_of($J), key_scopes('orders', 'customer_id', 1, 'table public.customers'),
	'cache_explain scopes: a join narrows orders, customers stays table-level');
is(scopes_of($SJ), $TO, 'cache_explain scopes: a self-join with an un-narrowed side is table-level');
like(scopes_of($SJN), qr/^\["server", "database", "table structure public\.orders"(, "key public\.orders\.customer_id")+\]$/,
	'cache_explain scopes: a self-join narrowed on both sides is narrowed');
is(scopes_of($SUB), $TO, 'cache_explain scopes: a second occurrence in a sublink keeps the table scope');
is(scopes_of($CTE), $TO, 'cache_explain scopes: a second occurrence in a CTE keeps the table scope');
is(scopes_of($VW), $TO, 'cache_explain scopes: a second occurrence in a view keeps the table scope');
unlike($node->safe_psql('postgres', 'SELECT cache_explain(' . sql_literal($FN->{q}) . ", 42)->>'freshness'"),
	qr/ttl/, 'the SQL function is inlined: its reads are seen (test setup)');
is(scopes_of($FN), $TO,
	'cache_explain scopes: a second occurrence in an inlined SQL function keeps the table scope');

# ============================================================================
# Writes to one key
# ============================================================================

prime('setup', $K{7}, $K{41}, $K{42}, $T);

after_write('UPDATE of key 7', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
	changed => [ $K{7}, $T ], hit => [ $K{41}, $K{42} ]);
after_write('UPDATE moving a row from key 41 to key 42', 'UPDATE orders SET customer_id = 42 WHERE id = 41',
	changed => [ $K{41}, $K{42}, $T ], hit => [ $K{7} ]);
after_write('INSERT of a row with key 42', 'INSERT INTO orders VALUES (2001, 42, 5)',
	changed => [ $K{42}, $T ], hit => [ $K{7}, $K{41} ]);
after_write('DELETE of a row with key 41', 'DELETE FROM orders WHERE id = 241',
	changed => [ $K{41}, $T ], hit => [ $K{7}, $K{42} ]);
after_write('UPDATE of key 42 setting the key to itself',
	'UPDATE orders SET customer_id = 42, amount = amount + 1 WHERE customer_id = 42',
	changed => [ $K{42}, $T ], hit => [ $K{7}, $K{41} ]);
after_write('a rolled-back UPDATE of key 42',
	"BEGIN;\nUPDATE orders SET amount = amount + 1 WHERE customer_id = 42;\nROLLBACK;",
	hit => [ $K{7}, $K{42}, $T ]);

# ============================================================================
# NULL keys
# ============================================================================

my $KNULL = qd('orders with a NULL key (IS NULL, table level)',
	digest_sql('orders WHERE customer_id IS NULL'), $DCOLS);
my $KPN = qd('orders key = NULL parameter', $KEYQ, $DCOLS, 'NULL::int');
my $KNDF = qd('orders key IS NOT DISTINCT FROM a NULL parameter',
	digest_sql('orders WHERE customer_id IS NOT DISTINCT FROM $1'), $DCOLS, 'NULL::int');
is(scopes_of($KNULL), $TO, 'cache_explain scopes: IS NULL is table-level');
is(scopes_of($KPN), key_scopes('orders', 'customer_id', 0),
	'cache_explain scopes: = $1 with a NULL parameter depends on no key value');
prime('NULL keys', $KNULL, $KPN, $KNDF);

after_write('INSERT of a row with a NULL key', 'INSERT INTO orders VALUES (2002, NULL, 9)',
	changed => [ $KNULL, $KNDF, $T ], hit => [ $K{7}, $K{42}, $KPN ]);
after_write('UPDATE of a key from NULL to 42', 'UPDATE orders SET customer_id = 42 WHERE id = 2002',
	changed => [ $K{42}, $KNULL, $KNDF, $T ], hit => [ $K{7}, $KPN ]);
after_write('UPDATE of a key from 42 to NULL', 'UPDATE orders SET customer_id = NULL WHERE id = 242',
	changed => [ $K{42}, $KNULL, $KNDF, $T ], hit => [ $K{7}, $KPN ]);
after_write('UPDATE of a row whose key stays NULL',
	'UPDATE orders SET amount = amount + 1 WHERE customer_id IS NULL',
	changed => [ $KNULL, $KNDF, $T ], hit => [ $K{7}, $K{42}, $KPN ]);
after_write('DELETE of rows with a NULL key', 'DELETE FROM orders WHERE customer_id IS NULL',
	changed => [ $KNULL, $KNDF, $T ], hit => [ $K{7}, $K{42}, $KPN ]);

# ============================================================================
# IN lists, = ANY($n) arrays, integer widths
# ============================================================================

my $KIN = qd('orders key IN (7, 42)', digest_sql('orders WHERE customer_id IN (7, 42)'), $DCOLS);
my $ANYQ = digest_sql('orders WHERE customer_id = ANY($1)');
my $KANY = qd('orders key = ANY(ARRAY[7, 42])', $ANYQ, $DCOLS, 'ARRAY[7, 42]');
my $KANY8 = qd('orders key = ANY(ARRAY[7, 42]::bigint[])', $ANYQ, $DCOLS, 'ARRAY[7, 42]::bigint[]');
my $KANYN = qd('orders key = ANY(ARRAY[7, 42, NULL, NULL])', $ANYQ, $DCOLS, 'ARRAY[7, 42, NULL, NULL]::int[]');
my $KIN101 = qd('orders key IN 101 constants',
	digest_sql('orders WHERE customer_id IN (' . join(', ', 42 .. 142) . ')'), $DCOLS);

# 42::int, 42::bigint, 42::smallint: different entries ...
prime('integer widths', $K{42});
read_is($rd, $K42B, qr/^MISS$/, direct($K42B),
	'a bigint parameter is another entry than the int one: first read');
read_is($rd, $K42S, qr/^MISS$/, direct($K42S),
	'a smallint parameter is another entry as well: first read');
prime('IN and ANY', $K42B, $K42S, $KIN, $KANY, $KANY8, $KIN101);

# ... depending on the same key
after_write('UPDATE of key 8 (listed nowhere)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 8',
	changed => [ $T ], hit => [ $K{7}, $K{42}, $K42B, $K42S, $KIN, $KANY, $KANY8 ],
	miss => [$KIN101]);
after_write('UPDATE of key 42 (listed)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 42',
	changed => [ $K{42}, $K42B, $K42S, $KIN, $KANY, $KANY8, $KIN101, $T ], hit => [ $K{7} ]);
after_write('UPDATE of key 7 (listed)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
	changed => [ $K{7}, $KIN, $KANY, $KANY8, $T ], hit => [ $K{42}, $K42B, $K42S ],
	miss => [$KIN101]);

# NULL elements match nothing: the entry depends on keys 7 and 42 only
prime('= ANY with NULL elements last', $KANYN);
after_write('UPDATE of key 8 (NULL elements)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 8',
	hit => [$KANYN]);
after_write('UPDATE of key 42 (NULL elements)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 42',
	changed => [$KANYN]);
prime('after the NULL elements', $K{42}, $T);

# integer columns of other widths: bigint acct, smallint region
my $LQ = digest_sql('ledger WHERE acct = $1');
my $LRQ = digest_sql('ledger WHERE region = $1');
my %L = (
	a42  => qd('ledger acct 42 (int)', $LQ, $DCOLS, 42),
	a42s => qd('ledger acct 42 (smallint)', $LQ, $DCOLS, '42::smallint'),
	a42b => qd('ledger acct 42 (bigint)', $LQ, $DCOLS, '42::bigint'),
	a7   => qd('ledger acct 7 (int)', $LQ, $DCOLS, 7),
	r3   => qd('ledger region 3 (int)', $LRQ, $DCOLS, 3),
	r3b  => qd('ledger region 3 (bigint)', $LRQ, $DCOLS, '3::bigint'));
is(scopes_of($_), key_scopes('ledger', 'acct', 1), "cache_explain scopes: $_->{name}")
  foreach (@L{qw(a42 a42s a42b)});
is(scopes_of($_), key_scopes('ledger', 'region', 1), "cache_explain scopes: $_->{name}")
  foreach (@L{qw(r3 r3b)});
prime('ledger', values %L);
after_write('UPDATE of ledger acct 42 (regions 0 to 3)', 'UPDATE ledger SET amount = amount + 1 WHERE acct = 42',
	changed => [ @L{qw(a42 a42s a42b r3 r3b)} ], hit => [ $L{a7} ]);
after_write('UPDATE of ledger id 7 (acct 7, region 0)', 'UPDATE ledger SET amount = amount + 1 WHERE id = 7',
	changed => [ $L{a7} ], hit => [ @L{qw(a42 a42s a42b r3 r3b)} ]);
after_write('UPDATE of the region of ledger id 8 from 1 to 3', 'UPDATE ledger SET region = 3 WHERE id = 8',
	changed => [ @L{qw(r3 r3b)} ], hit => [ @L{qw(a42 a42s a42b a7)} ]);

# ============================================================================
# A text key and a uuid key
# ============================================================================

my $AQ = digest_sql('acc WHERE code = $1');
my %A = (
	c1  => qd("acc code 'c1'", $AQ, $DCOLS, q{'c1'::text}),
	c1v => qd("acc code 'c1'::varchar", $AQ, $DCOLS, q{'c1'::varchar}),
	C1  => qd("acc code 'C1'", $AQ, $DCOLS, q{'C1'::text}),
	c2  => qd("acc code = 'c2' (constant)", digest_sql(q{acc WHERE code = 'c2'}), $DCOLS),
	in  => qd("acc code IN ('c3', 'c4')", digest_sql(q{acc WHERE code IN ('c3', 'c4')}), $DCOLS),
	any => qd("acc code = ANY(ARRAY['c5', 'c6'])", digest_sql('acc WHERE code = ANY($1)'), $DCOLS,
		q{ARRAY['c5', 'c6']}));
is(scopes_of($A{$_}), key_scopes('acc', 'code', $_ =~ /in|any/ ? 2 : 1), "cache_explain scopes: $A{$_}->{name}")
  foreach (sort keys %A);
prime('acc', values %A);
after_write("UPDATE of code 'c2'", q{UPDATE acc SET amount = amount + 1 WHERE code = 'c2'},
	changed => [ $A{c2} ], hit => [ @A{qw(c1 c1v C1 in any)} ]);
after_write("UPDATE of code 'c1'", q{UPDATE acc SET amount = amount + 1 WHERE code = 'c1'},
	changed => [ @A{qw(c1 c1v)} ], hit => [ @A{qw(C1 c2 in any)} ]);
after_write("UPDATE moving a row from code 'c1' to 'c4'", q{UPDATE acc SET code = 'c4' WHERE id = 1},
	changed => [ @A{qw(c1 c1v in)} ], hit => [ @A{qw(C1 c2 any)} ]);
after_write("INSERT of a row with code 'C1'", q{INSERT INTO acc VALUES (100, 'C1', 1)},
	changed => [ $A{C1} ], hit => [ @A{qw(c1 c1v c2 in any)} ]);
after_write("DELETE of the rows with code 'c6'", q{DELETE FROM acc WHERE code = 'c6'},
	changed => [ $A{any} ], hit => [ @A{qw(c1 c1v C1 c2 in)} ]);

my $TKQ = digest_sql('tok WHERE token = $1');
my $t2 = $node->safe_psql('postgres', q{SELECT md5('t2')::uuid});
my %U = (
	t1 => qd('tok token t1 (parameter)', $TKQ, $DCOLS, q{md5('t1')::uuid}),
	t2 => qd('tok token t2 (constant)', digest_sql("tok WHERE token = '$t2'"), $DCOLS));
is(scopes_of($_), key_scopes('tok', 'token', 1), "cache_explain scopes: $_->{name}") foreach (values %U);
prime('tok', values %U);
after_write('UPDATE of token t2', q{UPDATE tok SET amount = amount + 1 WHERE token = md5('t2')::uuid},
	changed => [ $U{t2} ], hit => [ $U{t1} ]);
after_write('UPDATE of token t1', q{UPDATE tok SET amount = amount + 1 WHERE token = md5('t1')::uuid},
	changed => [ $U{t1} ], hit => [ $U{t2} ]);
after_write('UPDATE moving a row from token t2 to t1', q{UPDATE tok SET token = md5('t1')::uuid WHERE id = 2},
	changed => [ $U{t1}, $U{t2} ]);

# ============================================================================
# Joins and second occurrences
# ============================================================================

prime('joins', $J, $SJ, $SJN, $SUB, $CTE, $VW, $K{43});
after_write('UPDATE of orders key 7 (joins)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
	changed => [ $K{7} ], hit => [ $J, $SJN, $K{42}, $K{43} ], miss => [ $SJ, $SUB, $CTE, $VW ]);
after_write('UPDATE of customer 99 (no order of customer 42 refers to it)',
	q{UPDATE customers SET name = name || '!' WHERE id = 99},
	miss => [$J], hit => [ $SJ, $SJN, $SUB, $CTE, $VW, $K{7}, $K{42}, $K{43} ]);
after_write('UPDATE of customer 42', q{UPDATE customers SET name = name || '!' WHERE id = 42},
	changed => [$J], hit => [ $SJ, $SJN, $SUB, $CTE, $VW, $K{7}, $K{42}, $K{43} ]);
after_write('UPDATE of orders key 43 (the other side of the self-join)',
	'UPDATE orders SET amount = amount + 1 WHERE customer_id = 43',
	changed => [ $SJ, $K{43} ], hit => [ $J, $SJN, $K{7}, $K{42} ], miss => [ $SUB, $CTE, $VW ]);
after_write('UPDATE of orders key 42 (joins)', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 42',
	changed => [ $J, $SJN, $SUB, $CTE, $VW, $K{42} ], miss => [$SJ], hit => [ $K{7}, $K{43} ]);
prime('an inlined SQL function', $FN);
after_write('UPDATE of orders key 43, which the inlined function reads',
	'UPDATE orders SET amount = amount + 1 WHERE customer_id = 43',
	changed => [ $FN, $K{43} ], hit => [ $K{7}, $K{42} ]);

# ============================================================================
# Escalation: cache_ext.max_keys_per_xact (default 100)
# ============================================================================

prime('escalation', $K{60}, $K{150}, $K{500});
my $PK42 = qd('porders key 42', digest_sql('porders WHERE customer_id = $1'), $DCOLS, 42);
prime('escalation', $PK42);

prime('escalation', $T);

# ids 101..200: one row each of keys 101..199 and 0, the key unchanged (once)
after_write('UPDATE of 100 keys (at the limit)', 'UPDATE orders SET amount = amount + 1 WHERE id BETWEEN 101 AND 200',
	changed => [ $K{150}, $T ], hit => [ $K{7}, $K{42}, $K{60}, $K{500}, $PK42 ]);
# ids 100..200: keys 100..199 and 0
after_write('UPDATE of 101 keys (past the limit)', 'UPDATE orders SET amount = amount + 1 WHERE id BETWEEN 100 AND 200',
	changed => [ $K{150}, $T ], miss => [ $K{7}, $K{42}, $K{60}, $K{500} ], hit => [$PK42]);
# 50 rows changing key: keys 150..199 and 550..599
after_write('UPDATE moving 50 rows to other keys (100 keys)',
	'UPDATE orders SET customer_id = customer_id + 400 WHERE id BETWEEN 150 AND 199',
	changed => [ $K{150}, $T ], hit => [ $K{7}, $K{42}, $K{60}, $K{500} ]);
after_write('UPDATE of 200 keys with max_keys_per_xact = 1000',
	"SET cache_ext.max_keys_per_xact = 1000;\nUPDATE orders SET amount = amount + 1 WHERE customer_id >= 50",
	changed => [ $K{60}, $K{150}, $T ], hit => [ $K{7}, $K{42}, $K{500}, $PK42 ]);
after_write('UPDATE of 50 keys with max_keys_per_xact = 1000',
	"SET cache_ext.max_keys_per_xact = 1000;\nUPDATE orders SET amount = amount + 1 WHERE customer_id BETWEEN 50 AND 99",
	changed => [ $K{60}, $T ], hit => [ $K{7}, $K{42}, $K{150}, $K{500} ]);
after_write('UPDATE of 50 keys with max_keys_per_xact = 10',
	"SET cache_ext.max_keys_per_xact = 10;\nUPDATE orders SET amount = amount + 1 WHERE customer_id BETWEEN 50 AND 99",
	changed => [ $K{60}, $T ], miss => [ $K{7}, $K{42}, $K{150}, $K{500} ], hit => [$PK42]);
after_write('a rolled-back savepoint that escalated, then an UPDATE of key 7',
	"BEGIN;\nSAVEPOINT a;\nUPDATE orders SET amount = amount + 1 WHERE customer_id >= 50;\n"
	  . "ROLLBACK TO SAVEPOINT a;\nUPDATE orders SET amount = amount + 1 WHERE customer_id = 7;\nCOMMIT;",
	changed => [ $K{7}, $T ], hit => [ $K{42}, $K{60}, $K{150}, $K{500} ]);
# the limit counts distinct keys, not rows
after_write('UPDATE of 30 keys, 5 rows each (150 rows)',
	'UPDATE orders SET amount = amount + 1 WHERE customer_id BETWEEN 120 AND 149',
	changed => [$T], hit => [ $K{7}, $K{42}, $K{60}, $K{150}, $K{500} ]);
after_write('INSERT of 150 rows with key 500 (one key)',
	'INSERT INTO orders SELECT 3000 + i, 500, i FROM generate_series(1, 150) AS i',
	changed => [ $K{500}, $T ], hit => [ $K{7}, $K{42}, $K{60}, $K{150} ]);

# ============================================================================
# Own writes and savepoints
# ============================================================================

{
	my $w = CacheExt::Session->new($node, timeout => 60);
	prime('own writes', $K{7}, $K{42}, $T);
	my %committed = map { $_->{name} => direct($_) } ($K{7}, $K{42}, $T);
	$w->query_ok("BEGIN;\nUPDATE orders SET amount = amount + 1 WHERE customer_id = 7;");
	my $own7 = direct_in($w, $K{7});
	isnt($own7, $committed{ $K{7}{name} }, 'own writes: the writer sees its change (test setup)');
	read_is($w, $K{7}, qr/^BYPASS: this transaction changed/, $own7,
		'read by the writer of key 7 inside its transaction: BYPASS with its own rows');
	read_is($w, $K{42}, qr/^(HIT(?: \(local\))?|BYPASS: .*)$/, $committed{ $K{42}{name} },
		'read of key 42 by the writer of key 7 inside its transaction: the rows (unchanged)');
	read_is($w, $T, qr/^BYPASS: this transaction changed/, direct_in($w, $T),
		'table-level read by the writer: BYPASS with its own rows');
	read_is($rd, $K{7}, qr/^HIT(?: \(local\))?$/, $committed{ $K{7}{name} },
		'read of key 7 by another session before the writer commits: HIT, the committed rows');
	$w->query_ok('COMMIT');
	is(direct($K{7}), $own7, 'own writes: committed (test setup)');
	read_is($rd, $K{7}, qr/^MISS \(invalidated\)$/, $own7, 'first read of key 7 after the commit: MISS');
	read_is($rd, $K{42}, qr/^HIT(?: \(local\))?$/, $committed{ $K{42}{name} }, 'read of key 42 after the commit: HIT');
	read_is($w, $K{7}, qr/^HIT(?: \(local\))?$/, $own7, 'the writer, after its commit: HIT');

	# a transaction past the limit: no key-level read may serve it stale rows
	$w->query_ok("BEGIN;\nUPDATE orders SET amount = amount + 1 WHERE customer_id >= 50;\n"
		  . "UPDATE orders SET amount = amount + 1 WHERE customer_id = 42;");
	my $own42 = direct_in($w, $K{42});
	isnt($own42, $committed{ $K{42}{name} }, 'own writes past the limit: key 42 changed (test setup)');
	read_is($w, $K{42}, qr/^BYPASS: this transaction changed/, $own42,
		'read of key 42, written after the transaction escalated: BYPASS with its own rows');
	read_is($w, $K{7}, qr/^BYPASS: this transaction changed/, $own7,
		'read of key 7 in a transaction that escalated: BYPASS');
	$w->query_ok('ROLLBACK');
	read_is($rd, $K{42}, qr/^HIT(?: \(local\))?$/, $committed{ $K{42}{name} }, 'after the rollback: key 42 a HIT');
	read_is($rd, $K{7}, qr/^HIT(?: \(local\))?$/, $own7, 'after the rollback: key 7 a HIT');

	# a savepoint that wrote key 7, rolled back; then key 42 written
	$w->query_ok("BEGIN;\nSAVEPOINT a;\nUPDATE orders SET amount = amount + 100 WHERE customer_id = 7;");
	read_is($w, $K{7}, qr/^BYPASS: this transaction changed/, direct_in($w, $K{7}),
		'read of key 7 inside the savepoint that wrote it: BYPASS');
	$w->query_ok('ROLLBACK TO SAVEPOINT a');
	read_is($w, $K{7}, qr/^HIT(?: \(local\))?$/, $own7, 'read of key 7 after ROLLBACK TO SAVEPOINT: HIT');
	$w->query_ok('UPDATE orders SET amount = amount + 1 WHERE customer_id = 42');
	read_is($w, $K{7}, qr/^HIT(?: \(local\))?$/, $own7, 'read of key 7 after a write of key 42 in the transaction: HIT');
	$w->query_ok('COMMIT');
	is(direct($K{7}), $own7, 'the savepoint was rolled back (test setup)');
	read_is($rd, $K{7}, qr/^HIT(?: \(local\))?$/, $own7, 'key 7 after the commit: still a HIT');
	read_is($rd, $K{42}, qr/^MISS \(invalidated\)$/, direct($K{42}), 'key 42 after the commit: MISS');
	$w->quit;
}
prime('savepoints', $T);
after_write('a transaction whose only write (to key 7) is in a rolled-back savepoint',
	"BEGIN;\nSAVEPOINT a;\nUPDATE orders SET amount = amount + 1 WHERE customer_id = 7;\n"
	  . "ROLLBACK TO SAVEPOINT a;\nCOMMIT;",
	hit => [ $K{7}, $K{42}, $T ]);
after_write('a released savepoint that wrote key 7',
	"BEGIN;\nSAVEPOINT a;\nUPDATE orders SET amount = amount + 1 WHERE customer_id = 7;\n"
	  . "RELEASE SAVEPOINT a;\nCOMMIT;",
	changed => [ $K{7}, $T ], hit => [ $K{42} ]);

# ============================================================================
# A partitioned table
# ============================================================================

like(tracked('porders'), qr/^\{customer_id\} .*cache_ext_row \(row, always\)/,
	'cache_tracked: porders is tracked by customer_id through cache_ext_row');
like(tracked('porders_1'), qr/^\{customer_id\} .*cache_ext_row \(row, always\)/,
	'cache_tracked: a partition has the cloned row trigger and the key columns');
is($node->safe_psql('postgres',
		"SELECT string_agg(tgrelid::regclass || ' ' || tgnargs, ', ' ORDER BY tgrelid::regclass::text) "
		  . "FROM pg_trigger WHERE tgname = 'cache_ext_row'"),
	'porders 1, porders_1 1, porders_2 1', 'cache_ext_row carries the key column on every partition');

my $PQ = digest_sql('porders WHERE customer_id = $1');
my %P = (
	k7   => qd('porders key 7', $PQ, $DCOLS, 7),
	k42  => $PK42,
	p1k42 => qd('porders_1 key 42 (the partition read directly)', digest_sql('porders_1 WHERE customer_id = $1'),
		$DCOLS, 42),
	all  => qd('porders (table level)', digest_sql('porders'), $DCOLS));
is(scopes_of($P{k42}), key_scopes('porders', 'customer_id', 1), 'cache_explain scopes: porders key 42');
is(scopes_of($P{p1k42}), key_scopes('porders', 'customer_id', 1),
	'cache_explain scopes: a partition read by key depends on the parent\'s key');
is(scopes_of($P{all}), table_scopes('porders'), 'cache_explain scopes: porders without a key');
prime('porders', values %P);

after_write('UPDATE of key 7 in a partition directly',
	'UPDATE porders_2 SET amount = amount + 1 WHERE customer_id = 7',
	changed => [ $P{k7}, $P{all} ], hit => [ @P{qw(k42 p1k42)} ]);
after_write('UPDATE of a key 42 row through the parent', 'UPDATE porders SET amount = amount + 1 WHERE id = 84',
	changed => [ @P{qw(k42 p1k42 all)} ], hit => [ $P{k7} ]);
after_write('INSERT of a key 42 row through the parent', 'INSERT INTO porders VALUES (0, 42, 5)',
	changed => [ @P{qw(k42 p1k42 all)} ], hit => [ $P{k7} ]);
after_write('UPDATE moving a row from key 7 in porders_1 to key 42 in porders_2',
	'UPDATE porders SET id = 601, customer_id = 42 WHERE id = 14',
	changed => [ @P{qw(k7 k42 all)} ], miss => [ $P{p1k42} ]);

# a partition attached later: another column order, a dropped column
$node->safe_psql('postgres', q{
CREATE TABLE porders_3 (junk int, amount int NOT NULL, customer_id int, id int NOT NULL);
ALTER TABLE porders_3 DROP COLUMN junk;
INSERT INTO porders_3 (id, customer_id, amount) SELECT 1000 + i, i % 100, i FROM generate_series(1, 200) AS i;
});
after_write('ATTACH PARTITION of a table with rows',
	'ALTER TABLE porders ATTACH PARTITION porders_3 FOR VALUES FROM (1000) TO (2000)',
	changed => [ @P{qw(k7 k42 all)} ], any => [ $P{p1k42} ], miss_re => qr/^MISS/);
like(tracked('porders_3'), qr/^\{customer_id\} .*cache_ext_row \(row, always\).*cache_ext_truncate/,
	'cache_tracked: the attached partition carries the key trigger');
is($node->safe_psql('postgres',
		"SELECT tgnargs FROM pg_trigger WHERE tgname = 'cache_ext_row' AND tgrelid = 'porders_3'::regclass"),
	1, 'the attached partition\'s cache_ext_row has the key column as its argument');
after_write('UPDATE of key 42 in the attached partition',
	'UPDATE porders_3 SET amount = amount + 1 WHERE customer_id = 42',
	changed => [ @P{qw(k42 all)} ], miss => [ $P{p1k42} ], hit => [ $P{k7} ]);
after_write('INSERT of key 7 routed to the attached partition', 'INSERT INTO porders VALUES (1500, 7, 1)',
	changed => [ @P{qw(k7 all)} ], hit => [ @P{qw(k42 p1k42)} ]);
after_write('DELETE of key 7 from the attached partition', 'DELETE FROM porders_3 WHERE customer_id = 7',
	changed => [ @P{qw(k7 all)} ], hit => [ @P{qw(k42 p1k42)} ]);
after_write('TRUNCATE of the attached partition', 'TRUNCATE porders_3',
	changed => [ @P{qw(k42 all)} ], miss => [ @P{qw(k7 p1k42)} ]);
$node->safe_psql('postgres', 'CREATE TABLE porders_4 PARTITION OF porders FOR VALUES FROM (2000) TO (3000)');
like(tracked('porders_4'), qr/^\{customer_id\} .*cache_ext_row \(row, always\)/,
	'cache_tracked: a partition created later carries the key trigger');
prime('after CREATE TABLE ... PARTITION OF', values %P);
after_write('INSERT of key 42 into a partition created later', 'INSERT INTO porders_4 VALUES (2001, 42, 1)',
	changed => [ @P{qw(k42 all)} ], miss => [ $P{p1k42} ], hit => [ $P{k7} ]);

# ============================================================================
# Switching between table level and key level
# ============================================================================

{
	# a writer whose relation information was computed at key level
	my $w2 = CacheExt::Session->new($node, timeout => 60);
	$w2->query_ok('UPDATE orders SET amount = amount + 1 WHERE id = 1000');
	prime('switching', $K{7}, $K{42});
	is(scopes_of($K{42}, $rd), $K1, 'the long-lived reader explains key 42 as narrowed');

	after_write('cache_track(orders) without key columns', q{SELECT cache_track('orders')},
		miss => [ $K{7}, $K{42} ], miss_re => qr/^MISS/);
	like(tracked('orders'), qr/^none /, 'cache_tracked: orders has no key columns any more');
	unlike(tracked('orders'), qr/cache_ext_keys/, '... and no cache_ext_keys trigger');
	is(scopes_of($K{42}), $TO, 'cache_explain (new session): key 42 is table-level');
	is(scopes_of($K{42}, $rd), $TO, 'cache_explain (the long-lived reader): key 42 is table-level');
	after_write('table level: UPDATE of key 42 by the writer', sub {
		$w2->query_ok('UPDATE orders SET amount = amount + 1 WHERE customer_id = 42');
	}, changed => [ $K{42} ], miss => [ $K{7} ]);
	after_write('table level: UPDATE of key 7', 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
		changed => [ $K{7} ], miss => [ $K{42} ]);

	after_write('cache_track(orders, ARRAY[customer_id]) again',
		q{SELECT cache_track('orders', ARRAY['customer_id'])},
		miss => [ $K{7}, $K{42} ], miss_re => qr/^MISS/);
	like(tracked('orders'), qr/^\{customer_id\} .*cache_ext_keys/, 'cache_tracked: key columns again');
	is(scopes_of($K{42}), $K1, 'cache_explain (new session): key 42 is narrowed again');
	is(scopes_of($K{42}, $rd), $K1, 'cache_explain (the long-lived reader): key 42 is narrowed again');
	after_write('key level again: UPDATE of key 42 by the writer that wrote at table level', sub {
		$w2->query_ok('UPDATE orders SET amount = amount + 1 WHERE customer_id = 42');
	}, changed => [ $K{42} ], hit => [ $K{7} ]);
	after_write('key level again: UPDATE of key 7 by that writer', sub {
		$w2->query_ok('UPDATE orders SET amount = amount + 1 WHERE customer_id = 7');
	}, changed => [ $K{7} ], hit => [ $K{42} ]);
	$w2->quit;
}

# ============================================================================
# DDL and TRUNCATE
# ============================================================================

prime('DDL', $T);
after_write('ALTER TABLE orders ADD COLUMN', 'ALTER TABLE orders ADD COLUMN extra int',
	miss => [ $K{7}, $K{42}, $T ], miss_re => qr/^MISS/);
after_write('ALTER TABLE orders ALTER COLUMN amount SET DEFAULT', 'ALTER TABLE orders ALTER COLUMN amount SET DEFAULT 0',
	miss => [ $K{7}, $K{42}, $T ], miss_re => qr/^MISS/);
$node->safe_psql('postgres', 'DROP VIEW orders_v');
after_write('ALTER TABLE orders ALTER COLUMN amount TYPE bigint',
	'ALTER TABLE orders ALTER COLUMN amount TYPE bigint USING amount * 2',
	changed => [ $K{7}, $K{42}, $T ], miss_re => qr/^MISS/);
after_write('TRUNCATE in a rolled-back transaction', "BEGIN;\nTRUNCATE orders;\nROLLBACK;",
	hit => [ $K{7}, $K{42}, $T ]);
after_write('TRUNCATE orders', 'TRUNCATE orders', changed => [ $K{7}, $K{42}, $T ]);
after_write('INSERT of key 42 into the emptied table', 'INSERT INTO orders (id, customer_id, amount) VALUES (1, 42, 1)',
	changed => [ $K{42}, $T ], hit => [ $K{7} ]);
after_write('UPDATE of key 7 rows (none) after TRUNCATE', 'UPDATE orders SET amount = 2 WHERE customer_id = 7',
	hit => [ $K{7}, $K{42} ]);

# ---- changing the key columns waits for sessions that narrow by the old ones

{
	my $r = CacheExt::Session->new($node, timeout => 60);
	$r->query_ok('BEGIN');
	$r->query_ok(q{SELECT * FROM cached_query('SELECT count(*) FROM orders WHERE customer_id = $1', 7) AS t(n bigint)});
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SET lock_timeout = '300ms'; SELECT cache_track('orders', ARRAY['id'])",
		stdout => \$out, stderr => \$err);
	like($err, qr/lock timeout/,
		'changing the key columns waits for a transaction that read the table');
	$r->query_ok('COMMIT');
	$r->quit;
	is($node->safe_psql('postgres',
		q{SELECT key_columns::text FROM cache_tracked WHERE relation = 'orders'::regclass}),
		'{customer_id}', 'the key columns did not change');
}

# ---- counters ---------------------------------------------------------------

my $stats = cache_stats($node);
is($stats->{errors}, 0, 'cache_stats: no errors');
is($stats->{corrupt}, 0, 'cache_stats: nothing corrupt');
is($stats->{pending_invalidations}, 0, 'cache_stats: no invalidation waits in the outbox');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed so far');

# ============================================================================
# Last (it may take the server down): = ANY($1) with a text array whose
# last elements are NULL.  NULL elements match nothing: the entry depends on
# the two non-NULL values only.
# ============================================================================

my $ANYN = qd(q{acc code = ANY(ARRAY['c1', 'c3', NULL, NULL])}, digest_sql('acc WHERE code = ANY($1)'),
	$DCOLS, q{ARRAY['c1', 'c3', NULL, NULL]::text[]});
my $expected = direct($ANYN);
read_is($node, $ANYN, qr/^MISS$/, $expected, 'first read');
read_is($node, $ANYN, qr/^HIT(?: \(local\))?$/, $expected, 'second read');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

note sprintf('110_key_tracking ran in %.1f s', time() - $t_start);
$rd->quit;
$node->stop('fast', fail_ok => 1);
$redis->stop;
done_testing();
