# test/t/308_review_meaning.pl - adversarial review of serving statements
# prepared before they run (commit 4d4ad40, src/meaning.c): each block
# reproduces one finding of /work/review-meaning-findings.md and asserts
# what PostgreSQL returns without the extension.  The direct answer is read
# with a statement of another shape (an extra "AND true"), which no rule
# serves.  The blocks are expected to FAIL until the findings are fixed.
#
# M1  the meaning is the query's, but a plan also depends on the settings
#     it was planned under (immutable functions folded by the planner:
#     float8out under extra_float_digits; SQL functions inlined with their
#     date/time literals parsed under TimeZone): a generic plan made under
#     other settings has the same meaning as the text parsed now.
# M2  a rule's statement whose function became VOLATILE (the rule stays):
#     the pipeline runs it whole at DECLARE / Bind (side effects for every
#     row, even those never fetched), and when something runs before the
#     first FETCH the plan runs again (side effects twice).
# M3  the 'activity' counter misses setting changes made outside any
#     statement: a fast-path function call (libpq PQfn) and a
#     configuration reload (SIGHUP) between Bind and Execute.
# M4  the plan-meaning map forgets a prepared statement's generic plan
#     after 4096 other plans of ruled statements (each simple-protocol
#     statement with inline constants is one): that prepared statement
#     is then never served again in the session.  So is one whose generic
#     plan was made before its rule existed (a pooled connection's
#     statements, prepared before the DBA created the rule) or under
#     EXPLAIN EXECUTE (nested).
# M5  a served portal read in part raises 55000 after any setting
#     changes, also one that changes no row (application_name), where
#     the direct statement goes on.
# M6  a cursor (Execute with a row limit) computes its rows whole at
#     DECLARE (Bind): statement_timeout, which the direct statement meets
#     per FETCH, cancels the DECLARE.
# (M7, the cost of printing and hashing the whole plan at every
#     execution, was measured with perf and has no block here.)
# M8  a portal unserved before its first read (the plan ran) still counts
#     as a hit of its rule (cache_rules.hits, time_saved_ms), while
#     cache_status() says BYPASS.  (Fixed: counted at its first read; the
#     block now unserves with a TimeZone change, as an unrelated statement
#     no longer unserves a HIT: M5.)
# M9  statement_text_of finds the wrong text: a DECLARE that is not the
#     first statement of its query string ("BEGIN; DECLARE ...") and a
#     PREPARE with a leading comment go to the pipeline whole and run
#     directly ("the cached path failed").

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
my $node = cache_ext_node('review_meaning', $redis, extra_conf => 'cache_ext.default_ttl = 300');
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

sub hit_norm
{
	my ($s) = @_;
	$s =~ s/^HIT \(local\)$/HIT/mg;
	return $s;
}

# ---- M1: a generic plan made under other settings ----------------------------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id, 0.30000000000000004::float8::text AS t FROM pt WHERE region = 1 ORDER BY id$q$, name => 'm1_float');
CREATE FUNCTION m1_cutoff() RETURNS timestamptz LANGUAGE sql STABLE
  AS $$SELECT '2024-01-01 05:00'::timestamptz$$;
SELECT cache_rule_create($q$SELECT count(*) AS n FROM pt WHERE ts < m1_cutoff()$q$, name => 'm1_cutoff');
});
{
	my $out = $node->safe_psql('postgres', q{
SET extra_float_digits = 0;
PREPARE ruled AS SELECT id, 0.30000000000000004::float8::text AS t FROM pt WHERE region = 1 ORDER BY id;
PREPARE direct AS SELECT id, 0.30000000000000004::float8::text AS t FROM pt WHERE region = 1 AND true ORDER BY id;
EXECUTE ruled;
EXECUTE direct;
SET extra_float_digits = 1;
EXECUTE direct;
EXECUTE ruled;
SELECT cache_status();
});
	my @o = split /\n/, $out;
	is($o[20], '5|0.3', 'M1: the direct generic plan (made under extra_float_digits 0) returns 0.3');
	is(join("\n", @o[30 .. 39]), join("\n", @o[20 .. 29]),
		'M1: EXECUTE under extra_float_digits 1 returns what its plan returns (not the text planned now)');
	note("M1 float: status $o[40]");

	$out = $node->safe_psql('postgres', q{
SET TimeZone = 'UTC';
PREPARE ruled AS SELECT count(*) AS n FROM pt WHERE ts < m1_cutoff();
PREPARE direct AS SELECT count(*) AS n FROM pt WHERE ts < m1_cutoff() AND true;
EXECUTE ruled;
EXECUTE direct;
SET TimeZone = 'America/New_York';
EXECUTE direct;
EXECUTE ruled;
SELECT cache_status();
});
	@o = split /\n/, $out;
	is($o[2], '4', 'M1: the direct generic plan inlined m1_cutoff() under UTC: 4 rows');
	is($o[3], $o[2], 'M1: EXECUTE of the ruled statement returns the count of its plan (inlined under UTC)');
	note("M1 inlined: status $o[4]");
}

# ---- M2: a function that became volatile: run at DECLARE, and twice -------------
$node->safe_psql('postgres', q{
CREATE SEQUENCE m2_seq;
CREATE FUNCTION m2_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT cache_rule_create($q$SELECT id, m2_f(id) AS n FROM pt WHERE region = 2 ORDER BY id$q$, name => 'm2');
CREATE OR REPLACE FUNCTION m2_f(int) RETURNS int LANGUAGE sql VOLATILE AS $$SELECT nextval('m2_seq')::int$$;
});
{
	my %last;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		# DECLARE, FETCH 2, CLOSE: the function runs for the rows fetched
		$last{$form} = $node->safe_psql('postgres', qq{
SELECT setval('m2_seq', 100);
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, m2_f(id) AS n FROM pt WHERE region = 2$and ORDER BY id;
FETCH 2 FROM c;
CLOSE c;
COMMIT;
SELECT last_value FROM m2_seq;
SELECT setval('m2_seq', 100);
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, m2_f(id) AS n FROM pt WHERE region = 2$and ORDER BY id;
SELECT 1;
FETCH ALL FROM c;
COMMIT;
SELECT last_value FROM m2_seq;
});
	}
	my @r = split /\n/, $last{ruled};
	my @d = split /\n/, $last{direct};
	is($d[3], '102', 'M2: the direct cursor, 2 rows fetched: nextval ran twice');
	is($r[3], $d[3], 'M2: the ruled cursor, 2 rows fetched: the function ran as often as without the rule');
	is($d[-1], '110', 'M2: the direct cursor read whole: nextval ran 10 times');
	is($r[-1], $d[-1], 'M2: the ruled cursor with a statement before FETCH: the function ran 10 times, not 20');
	is(join("\n", @r[5 .. 15]), join("\n", @d[5 .. 15]), 'M2: and the same rows');
}

# ---- M3: setting changes outside any statement -----------------------------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id, ts::text AS t FROM pt WHERE id <= $1 ORDER BY id$q$, name => 'm3');
});
my $set_config = $node->safe_psql('postgres', q{SELECT 'set_config(text,text,boolean)'::regprocedure::oid});
{
	my %o;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$o{$form} = steps(['Q', 'BEGIN'],
			['P', 's', "SELECT id, ts::text AS t FROM pt WHERE id <= \$1$and ORDER BY id"],
			['B', 'p', 's', [3]], ['S'],
			['F', $set_config, ['TimeZone', 'Asia/Tokyo', 'false']],
			['E', 'p', 0], ['S'], ['Q', 'COMMIT']);
	}
	like($o{direct}, qr/^1\|2024-01-01 10:00:00\+09$/m, 'M3: direct: Execute after a fast-path set_config() uses the new TimeZone');
	is($o{ruled}, $o{direct}, 'M3: fast-path set_config() between Bind and Execute: the direct rows');

	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$o{$form} = steps(['Q', 'BEGIN'],
			['P', 's', "SELECT id, ts::text AS t FROM pt WHERE id <= \$1$and ORDER BY id"],
			['B', 'p', 's', [3]], ['S'],
			['X', q{ALTER SYSTEM SET TimeZone = 'Asia/Tokyo'}], ['X', 'SELECT pg_reload_conf()'],
			['sleep', 1],
			['E', 'p', 0], ['S'], ['Q', 'COMMIT'],
			['X', 'ALTER SYSTEM RESET TimeZone'], ['X', 'SELECT pg_reload_conf()'], ['sleep', 0.3]);
	}
	like($o{direct}, qr/^1\|2024-01-01 10:00:00\+09$/m, 'M3: direct: Execute after a configuration reload uses the new TimeZone');
	is($o{ruled}, $o{direct}, 'M3: a configuration reload between Bind and Execute: the direct rows');
}

# ---- M4: the plan-meaning map forgets a prepared statement's plan ----------------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id, region FROM pt WHERE id = 1$q$, name => 'm4');
});
{
	my $out = $node->safe_psql('postgres', q{
SET plan_cache_mode = force_generic_plan;
PREPARE p(int) AS SELECT id, region FROM pt WHERE id = $1;
EXECUTE p(1);
SELECT cache_status();
SET cache_ext.enabled = off;
SELECT format('SELECT id, region FROM pt WHERE id = %s', g) FROM generate_series(1, 4200) g \gexec
SET cache_ext.enabled = on;
EXECUTE p(1);
SELECT cache_status();
EXECUTE p(1);
SELECT cache_status();
});
	my @o = split /\n/, hit_norm($out);
	like($o[1], qr/^(MISS|HIT)$/, 'M4: a prepared statement is served');
	is($o[-1], 'HIT', 'M4: after 4200 other ruled statements, the prepared statement is still served');

	$out = $node->safe_psql('postgres', q{
SET plan_cache_mode = force_generic_plan;
PREPARE before_rule(int) AS SELECT region, id FROM pt WHERE id = $1;
EXECUTE before_rule(1);
SELECT cache_rule_create($q$SELECT region, id FROM pt WHERE id = 1$q$, name => 'm4b');
EXECUTE before_rule(1);
EXECUTE before_rule(1);
SELECT cache_status();
PREPARE explained(int) AS SELECT region, id FROM pt WHERE id = $1;
EXPLAIN (COSTS OFF) EXECUTE explained(2);
EXECUTE explained(2);
EXECUTE explained(2);
SELECT cache_status();
});
	@o = split /\n/, hit_norm($out);
	is($o[4], 'HIT', 'M4: a statement prepared before its rule was created is served once the rule exists');
	is($o[-1], 'HIT', 'M4: a statement whose generic plan EXPLAIN EXECUTE made is served');
}

# ---- M5: a setting that changes no row, between two reads of a portal ----------
{
	my %o;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$o{$form} = steps(['Q', 'BEGIN'],
			['P', 's', "SELECT id, ts::text AS t FROM pt WHERE id <= \$1$and ORDER BY id"],
			['B', 'p', 's', [4]], ['E', 'p', 2], ['S'],
			['Q', q{SET application_name = 'report'}],
			['E', 'p', 0], ['S'], ['Q', 'COMMIT']);
	}
	like($o{direct}, qr/^4\|2024-01-01 04:00:00\+00\ncomplete$/m, 'M5: direct: the rest of the portal after SET application_name');
	is($o{ruled}, $o{direct}, 'M5: the ruled portal read in two batches around SET application_name: the direct rows, no error');
}

# ---- M6: statement_timeout met by DECLARE, not by the direct FETCHes -------------
$node->safe_psql('postgres', q{
CREATE FUNCTION m6_slow(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
SELECT cache_rule_create($q$SELECT id, m6_slow(id) AS n FROM pt WHERE region = 3 ORDER BY id$q$, name => 'm6');
CREATE OR REPLACE FUNCTION m6_slow(int) RETURNS int LANGUAGE plpgsql STABLE
  AS $$BEGIN PERFORM pg_sleep(0.1); RETURN $1; END$$;
});
{
	my %o;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		my ($rc, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '600ms';
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, m6_slow(id) AS n FROM pt WHERE region = 3$and ORDER BY id;
FETCH 2 FROM c; FETCH 2 FROM c; FETCH 2 FROM c; FETCH 2 FROM c; FETCH 2 FROM c;
COMMIT;
});
		$o{$form} = "$out\n$err";
	}
	like($o{direct}, qr/^47\|47$/m, 'M6: direct: ten rows, two per FETCH, each FETCH within statement_timeout');
	is($o{ruled}, $o{direct}, 'M6: the ruled cursor: the same rows, no statement timeout at DECLARE');
}

# ---- M8: an unserved portal counted as a hit ----------------------------------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id, ts::text AS t FROM pt WHERE id < 4 ORDER BY id$q$, name => 'm8');
SELECT id, ts::text AS t FROM pt WHERE id < 4 ORDER BY id;
});
{
	my $out = $node->safe_psql('postgres', q{
SELECT hits + misses FROM cache_rules WHERE name = 'm8';
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id < 4 ORDER BY id;
SET LOCAL TimeZone = 'Asia/Tokyo';
FETCH ALL FROM c;
SELECT cache_status();
COMMIT;
SELECT hits + misses FROM cache_rules WHERE name = 'm8';
});
	# (a statement between DECLARE and FETCH that changes no keyed setting
	# leaves a HIT served: M5; a TimeZone change makes the plan run)
	my @o = split /\n/, $out;
	like($o[4], qr/^BYPASS: settings or the role changed/, 'M8: the cursor ran its plan (BYPASS)');
	is($o[5], $o[0], 'M8: and is not counted as a hit or miss of its rule');
}

# ---- M9: the statement's text not found -----------------------------------------
{
	my $out = $node->safe_psql('postgres', q{
BEGIN \; DECLARE c NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id < 4 ORDER BY id;
SELECT cache_status();
COMMIT;
/* app: report */ PREPARE pc AS SELECT id, ts::text AS t FROM pt WHERE id < 4 ORDER BY id;
EXECUTE pc;
SELECT cache_status();
});
	my @o = split /\n/, hit_norm($out);
	like($o[0], qr/^(HIT|MISS)$/, 'M9: a DECLARE after BEGIN in one query string is served');
	like($o[-1], qr/^(HIT|MISS)$/, 'M9: EXECUTE of a PREPARE with a leading comment is served');
}

done_testing();
