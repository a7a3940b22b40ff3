# test/t/309_review_meaning2.pl - second adversarial review of serving
# statements prepared before they run (commit 20ff86e and later: looked up
# at start, a MISS filled at its first read).  Each block reproduces one
# finding of /work/review-meaning2-findings.md and asserts what PostgreSQL
# returns without the extension; the direct answer is read with the same
# statement plus "AND true", which no rule serves.  The blocks are expected
# to FAIL until the findings are fixed.
#
# N1  a pending MISS is filled at its first read with a fresh snapshot:
#     rows another session committed after DECLARE / Bind (which the
#     direct cursor / portal cannot see) are returned.
# N2  the same when another session stored the entry in between: the
#     fill serves that later result.
# N4  a HIT unserved before its first read (a setting changed) still
#     counts as a hit in cache_stats.
# N6  every row of a served cursor sent, a keyed setting changed, the
#     next (empty) FETCH raises 55000 and aborts the transaction; the
#     direct cursor returns no row.
# Guards that pass (probed, no hole found): S3/S3c savepoints around a
# served cursor, S4 two portals of one statement interleaved, S6 a HIT read
# after another session's commit, N3 an inlined SQL function replaced
# between DECLARE and FETCH, N5 a statement re-analysed at Bind, Ca-Ce
# spills, errors mid-fill, rolled-back savepoints (the server stays up).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use JSON::PP;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util qw(wire_steps);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('review_meaning2', $redis, extra_conf => 'cache_ext.default_ttl = 300');
my $super = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', q{
CREATE TABLE pt (id int PRIMARY KEY, region int NOT NULL, ts timestamptz NOT NULL);
INSERT INTO pt SELECT i, 1 + i % 5, '2024-01-01 00:00+00'::timestamptz + i * interval '1 hour'
  FROM generate_series(1, 50) i;
SELECT cache_track('pt');
});

# the messages of test/lib/pgwire_steps.py, one session; returns its output
sub steps
{
	return wire_steps($node, $super, @_);
}

# ---- N1: a pending MISS filled with a snapshot newer than the cursor's ----------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id FROM pt WHERE region = 3 ORDER BY id$q$, name => 'n1');
});
{
	my %got;
	my %id;
	my $id = 1000;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$id{"declare $form"} = ++$id;
		# DECLARE, another session commits a row, FETCH ALL
		$got{"declare $form"} = steps(['Q', 'BEGIN'],
			['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM pt WHERE region = 3$and ORDER BY id"],
			['X', "INSERT INTO pt VALUES ($id, 3, now())"],
			['Q', 'FETCH ALL c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
		$id{"bind $form"} = ++$id;
		# Bind, Sync (in a block), another session commits a row, Execute
		$got{"bind $form"} = steps(['Q', 'BEGIN'],
			['P', 's', "SELECT id FROM pt WHERE region = 4$and ORDER BY id"],
			['B', 'p', 's', []], ['S'],
			['X', "INSERT INTO pt VALUES ($id, 4, now())"],
			['E', 'p', 0], ['S'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
	}
	for my $k ('declare', 'bind')
	{
		note("N1 $k ruled: " . join(' ', split /\n/, $got{"$k ruled"}));
		note("N1 $k direct: " . join(' ', split /\n/, $got{"$k direct"}));
		my ($r, $d) = ($id{"$k ruled"}, $id{"$k direct"});
		unlike($got{"$k direct"}, qr/^$d$/m,
			"N1 $k: the direct cursor does not see the row committed after it started");
		unlike($got{"$k ruled"}, qr/^$r$/m,
			"N1 $k: the ruled statement (a pending MISS) does not either (filled at its first read with a newer snapshot)");
	}
}

# ---- exploration -----------------------------------------------------------
my $xid = 2000;
sub both
{
	my ($name, $mk) = @_;
	my %o;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$o{$form} = $mk->($and, ++$xid);
		$o{$form} =~ s/\n[^\n]*(HIT|MISS|BYPASS)[^\n]*//g;
		# the row this form inserted is NEW; the other form's (inserted
		# before the direct form ran) is not compared
		my $own = $xid;
		my $other = $form eq 'direct' ? $xid - 1 : -1;
		$o{$form} =~ s/^$own$/NEW/mg;
		$o{$form} =~ s/^$other\n//mg;
		# (the direct form's cache_status() is empty: no cached call ran)
		$o{$form} =~ s/\n+\z//;
		note("$name $form: " . join(' ', split /\n/, $o{$form}));
	}
	is($o{ruled}, $o{direct}, "$name: the ruled statement returns the direct rows");
}
both('S3', sub { my ($and, $id) = @_; steps(['Q', "SELECT id FROM pt WHERE region = 1 ORDER BY id"], ['Q', 'BEGIN'],
	['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM pt WHERE region = 1$and ORDER BY id"],
	['Q', 'SAVEPOINT a'], ['Q', 'FETCH 2 c'], ['Q', 'ROLLBACK TO a'], ['Q', 'FETCH ALL c'],
	['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']) });
both('S3c', sub { my ($and, $id) = @_; steps(['Q', "SELECT id FROM pt WHERE region = 1 ORDER BY id"], ['Q', 'BEGIN'],
	['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM pt WHERE region = 1$and ORDER BY id"],
	['Q', 'SAVEPOINT a'], ['Q', 'FETCH 2 c'], ['Q', 'SELECT 1/0'], ['Q', 'ROLLBACK TO a'], ['Q', 'FETCH ALL c'],
	['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']) });
both('S4', sub { my ($and, $id) = @_; steps(['Q', "SELECT id FROM pt WHERE region = 2 ORDER BY id"], ['Q', 'BEGIN'],
	['P', 's', "SELECT id FROM pt WHERE region = 2$and ORDER BY id"],
	['B', 'p1', 's', []], ['B', 'p2', 's', []], ['E', 'p1', 2], ['E', 'p2', 0], ['E', 'p1', 0], ['S'],
	['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']) });
both('S6', sub { my ($and, $id) = @_; steps(['Q', "SELECT id FROM pt WHERE region = 1 ORDER BY id"], ['Q', 'BEGIN'],
	['P', 's', "SELECT id FROM pt WHERE region = 1$and ORDER BY id"],
	['B', 'p', 's', []], ['S'], ['X', "INSERT INTO pt VALUES ($id, 1, now())"], ['E', 'p', 0], ['S'],
	['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']) });
# ---- N2: a pending MISS that another session filled in between ---------------
both('N2', sub { my ($and, $id) = @_; steps(['Q', 'BEGIN'],
	['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM pt WHERE region = 5$and ORDER BY id"],
	['X', "INSERT INTO pt VALUES ($id, 5, now())"],
	['X', "SELECT id FROM pt WHERE region = 5 ORDER BY id"],
	['X', "SELECT cache_status()"],
	['Q', 'FETCH ALL c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']) });

# ---- N3: an inlined SQL function replaced between DECLARE and FETCH -------------
$node->safe_psql('postgres', q{
CREATE FUNCTION n3_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT cache_rule_create($q$SELECT id, n3_f(id) AS n FROM pt WHERE region = 3 AND id < 20 ORDER BY id$q$, name => 'n3');
});
{
	my %o;
	my $k = 2;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$k++;
		$o{$form} = steps(['X', "CREATE OR REPLACE FUNCTION n3_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT \$1 * 2'"],
			['Q', 'BEGIN'],
			['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id, n3_f(id) AS n FROM pt WHERE region = 3 AND id < 20$and ORDER BY id"],
			['X', "CREATE OR REPLACE FUNCTION n3_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT \$1 * $k'"],
			# pg_relation_size('pg_class') by fast path: a new lock, so the
			# invalidations are read; nothing runs in the executor
			['F', 2325, ['pg_class']],
			['Q', 'FETCH ALL c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
		note("N3 $form: " . join(' ', split /\n/, $o{$form}));
	}
	like($o{direct}, qr/^2\|4$/m, 'N3: the direct cursor computes with the body inlined when it was declared (2*2)');
	like($o{ruled}, qr/^2\|4$/m, 'N3: the ruled cursor (a pending MISS) too, not the body replaced before its FETCH');
}

# ---- N4: a HIT unserved before its first read is still a hit of the query stats -
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id, ts::text AS t FROM pt WHERE region = 2 AND id < 30 ORDER BY id$q$, name => 'n4');
});
{
	my $q = "SELECT id, ts::text AS t FROM pt WHERE region = 2 AND id < 30 ORDER BY id";
	my $stats = "SELECT 'stats ' || coalesce(sum(hits), 0) FROM cache_query_stats "
		. "WHERE queryid = (SELECT queryid FROM cache_rules WHERE name = 'n4')";
	my $rule = "SELECT 'rule ' || hits FROM cache_rules WHERE name = 'n4'";
	my $all = "SELECT 'all ' || hits FROM cache_stats";
	my @before = (['Q', $stats], ['Q', $rule], ['Q', $all]);
	my $out = steps(['Q', "SET TimeZone = 'UTC'"], ['Q', $q], ['Q', $q], @before,
		['Q', 'BEGIN'], ['Q', "DECLARE c NO SCROLL CURSOR FOR $q"],
		['Q', "SET TimeZone = 'Asia/Tokyo'"], ['Q', 'FETCH ALL c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT'],
		@before);
	note("N4: " . join(' ', grep { /^(stats|rule|all|HIT|MISS|BYPASS)/ } split /\n/, $out));
	my @st = $out =~ /^stats (\d+)$/mg;
	my @ru = $out =~ /^rule (\d+)$/mg;
	my @al = $out =~ /^all (\d+)$/mg;
	like($out, qr/^BYPASS/m, 'N4: the cursor ran its plan (cache_status BYPASS)');
	like($out, qr/^1\d\|2024-01-01 \d\d:00:00\+09$/m, 'N4: with the rows of its plan (Asia/Tokyo)');
	is($ru[1] - $ru[0], 0, 'N4: cache_rules counts no hit for it');
	is($st[1] - $st[0], 0, 'N4: nor does cache_query_stats');
	is($al[1] - $al[0], 0, 'N4: nor cache_stats (it counted the lookup at DECLARE as a hit)');
}

# ---- N6: every row sent, a setting changed, the last (empty) FETCH raises ---------
{
	my %o;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		my $q = "SELECT id, ts::text AS t FROM pt WHERE region = 2 AND id < 30$and ORDER BY id";
		$o{$form} = steps(['Q', "SET TimeZone = 'UTC'"], ['Q', $q], ['Q', 'BEGIN'],
			['Q', "DECLARE c NO SCROLL CURSOR FOR $q"], ['Q', 'FETCH 6 c'],
			['Q', "SET TimeZone = 'Asia/Tokyo'"], ['Q', 'FETCH 6 c'], ['Q', "SELECT 'end'"], ['Q', 'COMMIT']);
		$o{$form} =~ s/^.*\n//;    # the warming SELECT's rows are not compared
		note("N6 $form: " . join(' ', split /\n/, $o{$form}));
	}
	unlike($o{direct}, qr/ERROR/, 'N6: direct: the FETCH after the last row returns no row, no error');
	unlike($o{ruled}, qr/ERROR/, 'N6: the ruled cursor whose rows were all sent does not raise 55000 at that FETCH');
}

# ---- N5: a statement re-analysed at Bind counts as "parsed now": computed whole -
$node->safe_psql('postgres', q{
CREATE SEQUENCE n5_seq;
CREATE FUNCTION n5_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT cache_rule_create($q$SELECT id, n5_f(id) AS n FROM pt WHERE region = 2 AND id < 40 ORDER BY id$q$, name => 'n5');
CREATE OR REPLACE FUNCTION n5_f(int) RETURNS int LANGUAGE sql VOLATILE AS $$SELECT nextval('n5_seq')::int$$;
});
{
	my %calls;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		my $out = steps(['Q', "SELECT setval('n5_seq', 100)"],
			['P', 's', "SELECT id, n5_f(id) AS n FROM pt WHERE region = 2 AND id < 40$and ORDER BY id"], ['S'],
			# any invalidation of the plan: it is analysed again at Bind
			['X', 'ALTER TABLE pt ALTER COLUMN ts SET STATISTICS -1'],
			['B', 'p', 's', []], ['E', 'p', 2], ['S'],
			['Q', 'SELECT cache_status()'],
			['Q', "SELECT 'last ' || last_value FROM n5_seq"]);
		note("N5 $form: " . join(' ', split /\n/, $out));
		($calls{$form}) = $out =~ /^last (\d+)$/m;
	}
	is($calls{direct}, 102, 'N5: direct: Execute of 2 rows calls the volatile function twice');
	is($calls{ruled}, $calls{direct}, 'N5: the ruled statement re-analysed at Bind calls it as often (not for every row at Bind)');
}

# ---- probes: spills, savepoints, errors mid-fill --------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE bt (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO bt SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 5000) i;
SELECT cache_track('bt');
SELECT cache_rule_create($q$SELECT id, pad, 100 / (id - 4990) AS q FROM bt WHERE id > 0 ORDER BY id$q$, name => 'cbig');
});
sub probe
{
	my ($name, @st) = @_;
	my $out = steps(['Q', "SET work_mem = '64kB'"], @st);
	$out =~ s/\|[0-9a-f]{256}\|/|pad|/g;
	note("$name: " . join(' ', split /\n/, $out));
	my $alive = $node->safe_psql('postgres', 'SELECT 1');
	is($alive, '1', "$name: the server is up");
	return $out;
}
my $big = "SELECT id, pad, 100 / (id - 4990) AS q FROM bt WHERE id > 0 ORDER BY id";
my $bigw = "SELECT id, pad, 100 / (id - 4990) AS q FROM bt WHERE id > 4995 ORDER BY id";
probe('Ca', ['Q', "$bigw"], ['Q', 'BEGIN'], ['Q', "DECLARE c NO SCROLL CURSOR FOR $bigw"], ['Q', 'SAVEPOINT a'],
	['Q', 'FETCH 2 c'], ['Q', 'ROLLBACK TO a'], ['Q', 'FETCH 2 c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
probe('Cb', ['Q', 'BEGIN'], ['P', 's', $big], ['B', 'p', 's', []], ['E', 'p', 3], ['Q', 'SELECT cache_status()'],
	['E', 'p', 3], ['S'], ['Q', 'ROLLBACK']);
probe('Cc', ['Q', 'BEGIN'], ['Q', 'SAVEPOINT a'], ['Q', "DECLARE c NO SCROLL CURSOR FOR $bigw"], ['Q', 'FETCH 1 c'],
	['Q', 'ROLLBACK TO a'], ['Q', 'FETCH 1 c'], ['Q', 'ROLLBACK']);
probe('Cd', ['Q', 'BEGIN'], ['P', 's', $bigw], ['B', 'p', 's', []], ['E', 'p', 1], ['Q', 'SELECT 1/0'],
	['S'], ['Q', 'ROLLBACK'], ['P', 's2', $bigw], ['B', 'p', 's2', []], ['E', 'p', 1], ['B', 'p', 's2', []], ['E', 'p', 0], ['S']);
probe('Ce', ['P', 's', $bigw], ['B', 'p1', 's', []], ['B', 'p2', 's', []], ['E', 'p2', 1], ['C', 'p1'], ['E', 'p2', 0], ['S'],
	['Q', 'SELECT cache_status()']);

done_testing();
