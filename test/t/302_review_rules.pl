# test/t/302_review_rules.pl - adversarial review of cache rules (issue 16):
# each block reproduces one finding of /work/review-rules-findings.md and
# asserts what the statement returns without the extension.  The direct
# answer is read with a statement of another shape (an extra "AND true"),
# which no rule serves.
#
# RR1  a PREPAREd statement whose timestamptz literal was parsed under
#      another TimeZone: the rule serves the text parsed again now.
# RR2  one query string "SET standard_conforming_strings = off; SELECT ...":
#      the SELECT was lexed before the SET ran, the pipeline lexes it after.
# RR3  a temporary table created after PREPARE shadows the prepared plan's
#      table for the text only (PostgreSQL does not plan again).
# RR4  a rule's text is resolved again at load, as its owner: a role that
#      owned a table of the same name earlier in its search_path, and
#      dropped it, has a rule with its own TTL on another owner's table.
# RR5  a statement of a deferred trigger function (nesting level 0 at
#      COMMIT, a PL/pgSQL FOR loop's cursor) is served, though the docs say
#      statements in functions and triggers run directly.
# RR6  loading the rules (a new session's first SELECT, or any session's
#      after a ruled table changed) analyses every rule's text and so waits
#      for a lock on each table they name: "SELECT 1" in a new session
#      hangs while another session holds a table of some rule locked.
# RR7  cache_rule_drop in a transaction that rolls back still frees the
#      rule's counters in shared memory (not transactional): the rule lives
#      on with its hits and misses lost.  Fixed: freed when the drop commits.
# RR8  any role may create a rule for a statement that reads no relation
#      ("SELECT 1"): every role's such statements (connection pools' health
#      checks) then take a subtransaction and a Redis round trip.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('review_rules', $redis, extra_conf => 'cache_ext.default_ttl = 300');

# ---- RR1: TimeZone between PREPARE and EXECUTE ------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE ev (id int PRIMARY KEY, ts timestamptz NOT NULL);
INSERT INTO ev SELECT i, '2024-01-01 00:00+00'::timestamptz + (i - 12) * interval '1 hour'
  FROM generate_series(0, 23) i;
SELECT cache_track('ev');
SELECT cache_rule_create($$SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00'$$, name => 'ev_before');
});
my $rr1 = $node->safe_psql('postgres', q{
SET TimeZone = 'UTC';
PREPARE ruled AS SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
PREPARE direct AS SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00' AND true;
SET TimeZone = 'Asia/Tokyo';
EXECUTE direct;
EXECUTE ruled;
EXECUTE ruled;
});
is($rr1, "12\n12\n12",
	'RR1: EXECUTE under a rule returns the rows of the prepared plan (literal parsed under the old TimeZone)');

# ---- RR2: standard_conforming_strings set earlier in the same string ---------
$node->safe_psql('postgres', q{
CREATE TABLE bs (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO bs VALUES (1, E'a\\b'), (2, E'a\\\\b');
SELECT cache_track('bs');
SELECT cache_rule_create($$SELECT id FROM bs WHERE v = 'x'$$, name => 'bs_v');
});
# psql's "\;" sends the statements as one query string (simple protocol)
my ($ret, $rr2_direct, $err) = $node->psql('postgres',
	q{SET escape_string_warning = off \; SET standard_conforming_strings = off \; SELECT id FROM bs WHERE v = 'a\\b' AND true});
my ($ret2, $rr2_ruled, $err2) = $node->psql('postgres',
	q{SET escape_string_warning = off \; SET standard_conforming_strings = off \; SELECT id FROM bs WHERE v = 'a\\b'});
is($rr2_direct, '2', 'RR2: the direct statement, lexed before the SET ran, reads row 2');
is($rr2_ruled, $rr2_direct, 'RR2: the ruled statement in the same string returns the same row');

# ---- RR3: a temporary table shadows the table after PREPARE -----------------
$node->safe_psql('postgres', q{
CREATE TABLE sh (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO sh VALUES (1, 'public');
SELECT cache_track('sh');
SELECT cache_rule_create('SELECT v FROM sh WHERE id = 1', name => 'sh_v');
});
my $rr3 = $node->safe_psql('postgres', q{
CREATE TEMP TABLE make_the_temp_schema (x int);
PREPARE ruled AS SELECT v FROM sh WHERE id = 1;
PREPARE direct AS SELECT v FROM sh WHERE id = 1 AND true;
EXECUTE ruled;
CREATE TEMP TABLE sh (id int, v text);
INSERT INTO sh VALUES (1, 'temp');
EXECUTE direct;
EXECUTE ruled;
});
is($rr3, "public\npublic\npublic",
	'RR3: EXECUTE under a rule reads the prepared plan\'s table, not a temporary table created since');

# ---- RR4: a rule re-resolved at load onto another owner's table -------------
$node->safe_psql('postgres', q{
CREATE ROLE rr_low LOGIN;
CREATE SCHEMA rr_low AUTHORIZATION rr_low;
CREATE TABLE public.acct (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO acct VALUES (1, 100);
REVOKE ALL ON acct FROM PUBLIC;
});
# rr_low has no privilege at all on public.acct; its search_path is the
# default "$user", public
$node->safe_psql('postgres', q{
SET ROLE rr_low;
CREATE TABLE rr_low.acct (id int PRIMARY KEY, balance int NOT NULL);
SELECT cache_rule_create('SELECT balance FROM acct WHERE id = 1', ttl => '1 day', name => 'rr_low_rule');
DROP TABLE rr_low.acct;
});
$node->safe_psql('postgres', 'SELECT balance FROM acct WHERE id = 1');
$node->safe_psql('postgres', 'UPDATE acct SET balance = 0 WHERE id = 1');
is($node->safe_psql('postgres', 'SELECT balance FROM acct WHERE id = 1'), '0',
	'RR4: a superuser\'s statement on its own untracked table is not served stale under a rule of a role that owns nothing it reads');
is($node->safe_psql('postgres', q{SELECT hits + misses FROM cache_rules WHERE name = 'rr_low_rule'}), '0',
	'RR4: that rule serves none of the owner\'s statements');

# and a rule of a role that does own every table it reads still serves
$node->safe_psql('postgres', q{
SET ROLE rr_low;
CREATE TABLE rr_low.own (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO rr_low.own VALUES (1, 7);
SELECT cache_track('rr_low.own');
SELECT cache_rule_create('SELECT v FROM rr_low.own WHERE id = 1', name => 'rr_low_own');
});
$node->safe_psql('postgres', 'SELECT v FROM rr_low.own WHERE id = 1');
is($node->safe_psql('postgres', "SELECT v FROM rr_low.own WHERE id = 1; SELECT cache_status()") =~ s/HIT \(local\)/HIT/r,
	"7\nHIT", 'RR4: a rule of the owner of every table it reads serves');

# ---- RR5: a deferred trigger's statement at COMMIT ---------------------------
$node->safe_psql('postgres', q{
CREATE TABLE agg (g int NOT NULL, x int NOT NULL);
INSERT INTO agg VALUES (1, 1), (1, 2), (2, 5);
SELECT cache_track('agg');
SELECT cache_rule_create('SELECT g, sum(x) AS s FROM agg GROUP BY g', name => 'agg_g');
CREATE TABLE trig_t (id int);
CREATE TABLE trig_seen (g int, s bigint);
CREATE FUNCTION trig_f() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT g, sum(x) AS s FROM agg GROUP BY g LOOP
    INSERT INTO trig_seen VALUES (r.g, r.s);
  END LOOP;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER trig_c AFTER INSERT ON trig_t
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION trig_f();
SELECT g, sum(x) AS s FROM agg GROUP BY g;
});
my $before = $node->safe_psql('postgres',
	q{SELECT hits + misses + bypasses FROM cache_rules WHERE name = 'agg_g'});
$node->safe_psql('postgres', 'INSERT INTO trig_t VALUES (1)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM trig_seen'), '2', 'RR5: the trigger ran');
is($node->safe_psql('postgres', q{SELECT hits + misses + bypasses FROM cache_rules WHERE name = 'agg_g'}),
	$before, 'RR5: the statement of a deferred trigger function ran directly, not under the rule');

# ---- RR6: a lock on a ruled table blocks unrelated statements --------------
my $locker = CacheExt::Session->new($node);
$locker->query_ok('BEGIN');
$locker->query_ok('LOCK TABLE agg IN ACCESS EXCLUSIVE MODE');
my ($r6, $out6, $err6) = $node->psql('postgres', "SET statement_timeout = '2s';\nSELECT 1 AS unrelated;");
is($out6, '1', 'RR6: "SELECT 1" in a new session answers while a ruled table is locked elsewhere');
unlike($err6, qr/statement timeout/, 'RR6: and does not time out waiting for that lock');
# a session that loaded the rules while the table was locked serves the
# rule again once the lock is gone (it loads them again a second later)
my $early = CacheExt::Session->new($node);
$early->query_ok('SELECT 1');
$locker->query_ok('COMMIT');
$locker->quit;
sleep 1.2;
$early->query_ok('SELECT g, sum(x) AS s FROM agg GROUP BY g');
like(($early->query('SELECT cache_status()'))[0], qr/^(HIT|MISS)/,
	'RR6: a rule skipped while its table was locked serves again after the lock');
$early->quit;

# ---- RR7: a rolled-back cache_rule_drop keeps the rule's counters ----------
$node->safe_psql('postgres', 'SELECT g, sum(x) AS s FROM agg GROUP BY g');
my $c0 = $node->safe_psql('postgres', q{SELECT hits + misses FROM cache_rules WHERE name = 'agg_g'});
$node->safe_psql('postgres', q{BEGIN; SELECT cache_rule_drop('agg_g'); ROLLBACK;});
is($node->safe_psql('postgres', q{SELECT hits + misses FROM cache_rules WHERE name = 'agg_g'}), $c0,
	'RR7: a rolled-back drop leaves the rule\'s counters as they were');
$node->safe_psql('postgres', q{BEGIN; SAVEPOINT a; SELECT cache_rule_drop('agg_g'); ROLLBACK TO a; COMMIT;});
is($node->safe_psql('postgres', q{SELECT hits + misses FROM cache_rules WHERE name = 'agg_g'}), $c0,
	'RR7: a drop in a rolled-back savepoint leaves them too');

# ---- RR8: a rule on a statement that reads no relation ---------------------
my ($r8, $o8, $e8) = $node->psql('postgres',
	q{SET ROLE rr_low; SELECT cache_rule_create('SELECT 1', name => 'ping')});
like($e8, qr/permission denied/, 'RR8: a role that is not an admin may not create a rule on SELECT 1');
$node->safe_psql('postgres', 'SELECT 1');
is($node->safe_psql('postgres', "SELECT 1 AS ping; SELECT cache_status() IS NULL OR cache_status() = ''"),
	"1\nt", 'RR8: the superuser\'s SELECT 1 is not served through the cache');

$node->stop;
done_testing();
