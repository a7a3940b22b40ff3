# test/t/306_rules_protocols.pl - cache rules for statements parsed before
# they run (issue 16): the extended protocol's unnamed and named statements
# with parameters, Execute with a row limit as JDBC's fetchSize sends it
# (test/lib/pgwire.py), PREPARE/EXECUTE, cursors; each HIT after MISS with
# the direct rows and row description; privileges and row-level security as
# without the rule; and a statement whose text means something else now
# than when it was prepared runs directly (src/meaning.c).
#
# The direct result is read with a statement of another shape (an extra
# "AND true"), which no rule serves.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('rules_protocols', $redis, extra_conf => 'cache_ext.default_ttl = 300');
my $super = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', q{
CREATE TABLE pt (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL,
                 label varchar(20), ts timestamptz NOT NULL, owner name NOT NULL);
INSERT INTO pt SELECT i, 1 + i % 5, (i * 37 % 1000) / 10.0, 'l' || i,
       '2023-12-31 12:00+00'::timestamptz + i * interval '1 minute',
       CASE WHEN i % 2 = 0 THEN 'alice' ELSE 'bob' END
  FROM generate_series(1, 500) i;
SELECT cache_track('pt');
CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE nobody LOGIN;
GRANT SELECT ON pt TO alice, bob;
CREATE TABLE secret (id int, owner name NOT NULL, v text);
INSERT INTO secret SELECT i, CASE WHEN i % 2 = 0 THEN 'alice' ELSE 'bob' END, 'v' || i
  FROM generate_series(1, 40) i;
SELECT cache_track('secret');
ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON secret USING (owner = current_user);
GRANT SELECT ON secret TO alice, bob;
});

my $BY_REGION = 'SELECT id, amount, label FROM pt WHERE region = $1 ORDER BY id';
my $CUTOFF = q{SELECT count(*) AS n FROM pt WHERE ts < '2024-01-01 00:00'};
my $MINE = 'SELECT id, v FROM secret WHERE id <= $1 ORDER BY id';
$node->safe_psql('postgres', "SELECT cache_rule_create('$BY_REGION', name => 'by_region')");
$node->safe_psql('postgres', "SELECT cache_rule_create(\$q\$$CUTOFF\$q\$, name => 'cutoff')");
$node->safe_psql('postgres', "SELECT cache_rule_create('$MINE', name => 'mine')");

# the extended protocol through test/lib/pgwire.py; returns (exit code, output)
sub wire
{
	my (%o) = @_;
	my @cmd = ('python3', "$FindBin::Bin/../lib/pgwire.py",
		'--socket', $node->host, '--port', $node->port,
		'--user', $o{user} // $super, '--query', $o{query});
	push @cmd, '--param', $_ for @{ $o{params} // [] };
	push @cmd, '--fetch', $o{fetch} if $o{fetch};
	push @cmd, '--stmt', $o{stmt} if $o{stmt};
	push @cmd, '--repeat', $o{repeat} if $o{repeat};
	push @cmd, '--before', $_ for @{ $o{before} // [] };
	push @cmd, '--between', $_ for @{ $o{between} // [] };
	push @cmd, '--after', $_ for @{ $o{after} // [] };
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	diag($err) if $err;
	chomp $out;
	return ($rc, $out);
}

sub hit_norm
{
	my ($s) = @_;
	$s =~ s/^HIT \(local\)$/HIT/mg;
	return $s;
}

sub direct_of
{
	my ($q) = @_;
	$q =~ s/ ORDER BY/ AND true ORDER BY/ or $q .= ' AND true';
	return $q;
}

# ---- Execute with a row limit (JDBC fetchSize 7): MISS, then HIT ------------
my ($rc, $direct) = wire(query => direct_of($BY_REGION), params => ['3'], fetch => 7);
is($rc, 0, 'the direct statement runs through the extended protocol');
my ($dd, @drows) = split /\n/, $direct;
pop @drows;	# "batches N"
is(scalar(@drows), 100, 'the direct statement returns 100 rows');
like($dd, qr/^desc id:23:-1,amount:1700:786438,label:1043:24$/, 'the direct row description');

for my $round ('MISS', 'HIT')
{
	my ($rc2, $out) = wire(query => $BY_REGION, params => ['3'], fetch => 7,
		after => ['SELECT cache_status()']);
	my @l = split /\n/, hit_norm($out);
	is($rc2, 0, "fetch 7 at a time ($round): runs");
	is($l[0], $dd, "fetch 7 at a time ($round): the same row description");
	is(join("\n", @l[1 .. 100]), join("\n", @drows), "fetch 7 at a time ($round): the same rows, in order, once each");
	is($l[101], 'batches 15', "fetch 7 at a time ($round): 15 Execute messages (14 suspended)");
	is($l[102], $round, "fetch 7 at a time: $round");
}

# ---- a named statement, executed 8 times (custom plans, then generic) ------
{
	my ($rc2, $out) = wire(query => $BY_REGION, params => ['2'], stmt => 'named', repeat => 8,
		after => ['SELECT cache_status()']);
	my ($rc3, $d) = wire(query => direct_of($BY_REGION), params => ['2']);
	my @d = split /\n/, $d;
	pop @d;
	my $one = join("\n", @d);
	my $want = join("\n", map { ($one, 'batches 1') } 1 .. 8) . "\nHIT";
	is(hit_norm($out), $want, 'a named statement 8 times: the direct rows each time, the last a HIT');
}
my ($h, $m, $b) = split / /, $node->safe_psql('postgres',
	q{SELECT hits || ' ' || misses || ' ' || bypasses FROM cache_rules WHERE name = 'by_region'});
cmp_ok($h, '>=', 8, "the rule was served: $h hits, $m misses, $b bypasses");
is($b, 0, 'and never bypassed');

# ---- other parameter values: their own rows --------------------------------
for my $r (1, 4, 5)
{
	my ($rc2, $out) = wire(query => $BY_REGION, params => [$r], fetch => 50);
	my ($rc3, $d) = wire(query => direct_of($BY_REGION), params => [$r], fetch => 50);
	is($out, $d, "region $r: the rows of the direct statement");
}

# ---- privileges: the same error as without the rule ------------------------
{
	my ($rc2, $out) = wire(user => 'nobody', query => $BY_REGION, params => ['3']);
	my ($rc3, $d) = wire(user => 'nobody', query => direct_of($BY_REGION), params => ['3']);
	is($rc2, 3, 'a role without SELECT: an error');
	like($out, qr/^ERROR 42501 permission denied for table pt$/m, 'the direct statement\'s error');
	is($out, $d, 'the same as without the rule');
}

# ---- row-level security: each role its own rows ----------------------------
for my $who ('alice', 'bob', 'alice', 'bob')
{
	my ($rc2, $out) = wire(user => $who, query => $MINE, params => ['20'], stmt => 's',
		repeat => 2, after => ['SELECT cache_status()']);
	my ($rc3, $d) = wire(user => $who, query => direct_of($MINE), params => ['20']);
	my @o = split /\n/, hit_norm($out);
	my $status = pop @o;
	my @d = split /\n/, $d;
	is(join("\n", @o[0 .. $#d]), $d, "RLS: $who gets the direct rows");
	is($status, 'HIT', "RLS: $who: HIT on the second execution");
	unlike($out, $who eq 'alice' ? qr/^\d*[13579]\|/m : qr/^\d*[02468]\|/m, "RLS: $who sees no row of the other");
}

# ---- PREPARE / EXECUTE and the meaning of a prepared statement --------------
# A literal parsed under TimeZone UTC, executed under Asia/Tokyo: the plan
# keeps the UTC instant (PostgreSQL does not parse again); the text parsed
# now would not.  It must run directly, with the rows of its plan.
{
	my $out = $node->safe_psql('postgres', qq{
SET TimeZone = 'UTC';
PREPARE p AS $CUTOFF;
PREPARE d AS $CUTOFF AND true;
EXECUTE p;
EXECUTE p;
SELECT cache_status();
SET TimeZone = 'Asia/Tokyo';
EXECUTE d;
EXECUTE p;
SELECT cache_status();
});
	my @o = split /\n/, hit_norm($out);
	is($o[1], $o[0], 'PREPARE/EXECUTE: the same count twice');
	is($o[2], 'HIT', 'PREPARE/EXECUTE: the second EXECUTE is a HIT');
	is($o[4], $o[3], 'after SET TimeZone: EXECUTE returns what its plan does (the direct statement prepared with it)');
	like($o[5], qr/^BYPASS: .*prepared under other settings/, 'and it ran directly, saying why');
}
# the same through the extended protocol: a named statement, SET in between
{
	my ($rc2, $out) = wire(query => $CUTOFF, stmt => 'cut', repeat => 2,
		before => ["SET TimeZone = 'UTC'"], between => ["SET TimeZone = 'Asia/Tokyo'"],
		after => ['SELECT cache_status()']);
	my @o = split /\n/, $out;
	is($o[4], $o[1], 'extended protocol, SET between two executions: the plan\'s rows');
	like($o[6], qr/^BYPASS: .*prepared under other settings/, 'and it ran directly');
}
# a temporary table created after PREPARE: PostgreSQL plans both statements
# again (the search path now has pg_temp), both read it; the rule's pipeline
# refuses temporary tables
{
	my $out = $node->safe_psql('postgres', qq{
PREPARE q AS $CUTOFF;
PREPARE qd AS $CUTOFF AND true;
CREATE TEMP TABLE pt (id int, ts timestamptz);
EXECUTE qd;
EXECUTE q;
SELECT cache_status();
});
	my @o = split /\n/, $out;
	is($o[1], $o[0], 'a shadowing temporary table: EXECUTE reads what the direct statement reads');
	like($o[2], qr/^BYPASS: temporary table/, 'and is not served from the cache');
}

# own writes: a prepared statement runs its plan, counted as a bypass
{
	my $out = $node->safe_psql('postgres', qq{
SELECT bypasses FROM cache_stats;
PREPARE ow AS $CUTOFF;
BEGIN;
UPDATE pt SET label = label WHERE id = 1;
EXECUTE ow;
SELECT cache_status();
ROLLBACK;
SELECT bypasses FROM cache_stats;
});
	my @o = split /\n/, $out;
	like($o[2], qr/^BYPASS: this transaction changed/, 'own writes: a prepared statement runs its plan');
	cmp_ok($o[3], '>', $o[0], 'and cache_stats counts the bypass');
}

# ---- cursors: served; settings changed between fetches ----------------------
{
	my $out = $node->safe_psql('postgres', qq{
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, amount, label FROM pt WHERE region = 4 ORDER BY id;
FETCH 30 FROM c; FETCH 30 FROM c; FETCH 30 FROM c; FETCH 30 FROM c;
COMMIT;
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT id, amount, label FROM pt WHERE region = 4 ORDER BY id;
SELECT cache_status();
COMMIT;
});
	my $d = $node->safe_psql('postgres',
		'SELECT id, amount, label FROM pt WHERE region = 4 AND true ORDER BY id');
	my @o = split /\n/, hit_norm($out);
	is(join("\n", @o[0 .. 99]), $d, 'a cursor FETCHed 30 at a time: the rows in order');
	# (no rule for the constant form; the statement has its own shape)
}
$node->safe_psql('postgres',
	q{SELECT cache_rule_create('SELECT id, ts::text AS t FROM pt WHERE id <= 6 ORDER BY id', name => 'ts_text')});
{
	# a SET before the first FETCH: the plan runs (the rows of the direct cursor)
	my $out = $node->safe_psql('postgres', q{
SET TimeZone = 'UTC';
BEGIN;
DECLARE d NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id <= 6 AND true ORDER BY id;
DECLARE r NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id <= 6 ORDER BY id;
SET LOCAL TimeZone = 'Asia/Tokyo';
FETCH ALL FROM d;
FETCH ALL FROM r;
COMMIT;
});
	my @o = split /\n/, $out;
	is(join("\n", @o[6 .. 11]), join("\n", @o[0 .. 5]), 'SET between DECLARE and FETCH: the direct cursor\'s rows');
	like($o[0], qr/\+09$/, 'computed under the later TimeZone');

	# another statement between fetches that changes nothing: still served
	$out = $node->safe_psql('postgres', q{
BEGIN;
DECLARE r NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id <= 6 ORDER BY id;
FETCH 2 FROM r;
SELECT 42;
FETCH 2 FROM r; FETCH 2 FROM r;
COMMIT;
});
	my $d = $node->safe_psql('postgres', 'SELECT id, ts::text AS t FROM pt WHERE id <= 6 AND true ORDER BY id');
	is($out =~ s/^42\n//mr, $d, 'a statement between two FETCHes that changes no setting: the rows in order');

	# a SET between two FETCHes: the rest cannot be the plan's; an error
	my ($rc2, $o2, $e2) = $node->psql('postgres', q{
BEGIN;
DECLARE r NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM pt WHERE id <= 6 ORDER BY id;
FETCH 2 FROM r;
SET LOCAL TimeZone = 'America/New_York';
FETCH 2 FROM r;
COMMIT;
});
	like($e2, qr/settings or the role changed while a statement served by a cache rule was being read/,
		'SET between two FETCHes of a served cursor: a clear error, not rows of other settings');
}

done_testing();
