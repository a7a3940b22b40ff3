# test/t/303_review_rules2.pl - second adversarial review of cache rules
# (issue 16), after the guards for RR1-RR3 (src/rules_exec.c: parsed_as_now,
# note_parse, catalog_changed): each block reproduces one finding of
# /work/review-rules2-findings.md and asserts what the statement returns
# without the extension.  The direct answer is read with a statement of
# another shape (an extra "AND true"), which no rule serves.
#
# RS1  ALTER TYPE ... RENAME VALUE after PREPARE: the plan keeps the enum
#      label's old OID, the text parsed again now gets the other label.
# RS2  CREATE CAST after PREPARE: the text parsed again uses the new cast.
# RS3  CREATE COLLATION in a schema earlier in search_path after PREPARE:
#      the text parsed again uses the shadowing collation.
# RS4  CREATE TEMP SEQUENCE shadowing a table after PREPARE (CreateSeqStmt
#      is not among the statements that move catalog_epoch).
# RS5  the parsed-texts map forgets everything at 4096 texts: a text parsed
#      again afterwards under other settings vouches for an older prepared
#      statement of the same text (RR1 again).
# RS6  a cursor (or a portal) computes its rows at DECLARE (Bind): a
#      setting changed before FETCH (Execute) changes the direct rows, not
#      the served ones.
# RS7  extended protocol: once catalog_epoch moved (any CREATE TEMP TABLE,
#      in this session or another), a text already parsed is "ambiguous"
#      forever: every later Parse/Bind of it runs directly (never served
#      again in this session).
# RS8  cache_ext takes about 35 of PostgreSQL's 64 syscache callback slots:
#      a session that then uses postgres_fdw, text search and a foreign key
#      (or uses them first, then a ruled SELECT) ends with FATAL "out of
#      syscache_callback_list slots".

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('review_rules2', $redis, extra_conf => 'cache_ext.default_ttl = 300');

# ---- RS1: an enum label renamed after PREPARE ---------------------------------
$node->safe_psql('postgres', q{
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE en (id int PRIMARY KEY, m mood NOT NULL);
INSERT INTO en SELECT i, CASE WHEN i <= 2 THEN 'sad'::mood ELSE 'happy'::mood END
  FROM generate_series(1, 10) i;
SELECT cache_track('en');
SELECT cache_rule_create($$SELECT count(*) FROM en WHERE m = 'sad'$$, name => 'en_sad');
});
my $rs1 = $node->safe_psql('postgres', q{
PREPARE ruled AS SELECT count(*) FROM en WHERE m = 'sad';
PREPARE direct AS SELECT count(*) FROM en WHERE m = 'sad' AND true;
EXECUTE ruled;
ALTER TYPE mood RENAME VALUE 'sad' TO 'tmp';
ALTER TYPE mood RENAME VALUE 'happy' TO 'sad';
ALTER TYPE mood RENAME VALUE 'tmp' TO 'happy';
EXECUTE direct;
EXECUTE ruled;
});
is($rs1, "2\n2\n2",
	'RS1: EXECUTE under a rule keeps the prepared plan\'s enum label after ALTER TYPE ... RENAME VALUE');

# ---- RS2: a cast created after PREPARE ----------------------------------------
$node->safe_psql('postgres', q{
CREATE TYPE lvl AS ENUM ('low', 'high');
CREATE TABLE lv (id int PRIMARY KEY, l lvl NOT NULL);
INSERT INTO lv SELECT i, CASE WHEN i <= 3 THEN 'low'::lvl ELSE 'high'::lvl END
  FROM generate_series(1, 10) i;
SELECT cache_track('lv');
CREATE FUNCTION lvl_label(lvl) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$ SELECT upper($1::name::text) $$;
SELECT cache_rule_create($$SELECT count(*) FROM lv WHERE l::text = 'low'$$, name => 'lv_low');
});
my $rs2 = $node->safe_psql('postgres', q{
PREPARE ruled AS SELECT count(*) FROM lv WHERE l::text = 'low';
PREPARE direct AS SELECT count(*) FROM lv WHERE l::text = 'low' AND true;
EXECUTE ruled;
CREATE CAST (lvl AS text) WITH FUNCTION lvl_label(lvl);
EXECUTE direct;
EXECUTE ruled;
});
is($rs2, "3\n3\n3", 'RS2: EXECUTE under a rule keeps the prepared plan\'s coercion after CREATE CAST');

# ---- RS3: a collation shadowing another after PREPARE -------------------------
$node->safe_psql('postgres', q{
CREATE SCHEMA s1;
CREATE SCHEMA s2;
CREATE COLLATION s2.coll (provider = icu, locale = 'und');
CREATE TABLE w (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO w VALUES (1, 'Z'), (2, 'a'), (3, 'c');
SELECT cache_track('w');
SET search_path = s1, s2, public;
SELECT cache_rule_create($$SELECT count(*) FROM w WHERE v < 'b' COLLATE coll$$, name => 'w_coll');
});
my $rs3 = $node->safe_psql('postgres', q{
SET search_path = s1, s2, public;
PREPARE ruled AS SELECT count(*) FROM w WHERE v < 'b' COLLATE coll;
PREPARE direct AS SELECT count(*) FROM w WHERE v < 'b' COLLATE coll AND true;
EXECUTE ruled;
CREATE COLLATION s1.coll FROM "C";
EXECUTE direct;
EXECUTE ruled;
});
is($rs3, "1\n1\n1", 'RS3: EXECUTE under a rule keeps the prepared plan\'s collation after a shadowing CREATE COLLATION');

# ---- RS4: a temporary sequence shadowing a table after PREPARE ----------------
$node->safe_psql('postgres', q{
CREATE TABLE sq (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO sq SELECT i, 'x' FROM generate_series(1, 5) i;
SELECT cache_track('sq');
SELECT cache_rule_create('SELECT count(*) FROM sq', name => 'sq_count');
});
my $rs4 = $node->safe_psql('postgres', q{
CREATE TEMP TABLE make_the_temp_schema (x int);
PREPARE ruled AS SELECT count(*) FROM sq;
PREPARE direct AS SELECT count(*) FROM sq WHERE true;
EXECUTE ruled;
CREATE TEMP SEQUENCE sq;
EXECUTE direct;
EXECUTE ruled;
});
is($rs4, "5\n5\n5", 'RS4: EXECUTE under a rule reads the prepared plan\'s table, not a temporary sequence created since');

# ---- RS5: the parsed-texts map reset, then the text parsed again --------------
$node->safe_psql('postgres', q{
CREATE TABLE ev (id int PRIMARY KEY, ts timestamptz NOT NULL);
INSERT INTO ev SELECT i, '2024-01-01 00:00+00'::timestamptz + (i - 12) * interval '1 hour'
  FROM generate_series(0, 23) i;
SELECT cache_track('ev');
SELECT cache_rule_create($$SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00'$$, name => 'ev_before');
});
my $rs5 = $node->safe_psql('postgres', q{
SET TimeZone = 'UTC';
PREPARE old AS SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
PREPARE direct AS SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00' AND true;
SET TimeZone = 'Asia/Tokyo';
EXECUTE old;
DO $$ BEGIN FOR i IN 1..4100 LOOP EXECUTE 'SELECT ' || i; END LOOP; END $$;
PREPARE newer AS SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
EXECUTE direct;
EXECUTE old;
});
is($rs5, "12\n12\n12",
	'RS5: after 4096 other texts and a new parse of the text, EXECUTE of the older statement keeps its plan\'s literal');

# ---- RS6: a setting changed between DECLARE and FETCH -------------------------
$node->safe_psql('postgres',
	q{SELECT cache_rule_create($$SELECT id, ts::text AS t FROM ev WHERE id < 3 ORDER BY id$$, name => 'ev_text')});
my $rs6 = $node->safe_psql('postgres', q{
SET TimeZone = 'UTC';
BEGIN;
DECLARE d NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM ev WHERE id < 3 AND true ORDER BY id;
DECLARE r NO SCROLL CURSOR FOR SELECT id, ts::text AS t FROM ev WHERE id < 3 ORDER BY id;
SET LOCAL TimeZone = 'Asia/Tokyo';
FETCH ALL FROM d;
FETCH ALL FROM r;
COMMIT;
});
my @rs6 = split /\n/, $rs6;
is(join("\n", @rs6[3 .. 5]), join("\n", @rs6[0 .. 2]),
	'RS6: a ruled cursor FETCHed after SET TimeZone returns what the direct cursor does');

# ---- RS7: extended protocol after a catalog change --------------------------
my $ext = q{
SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
CREATE TEMP TABLE IF NOT EXISTS zz (x int);
SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
};
my $b0 = $node->safe_psql('postgres', q{SELECT bypasses FROM cache_rules WHERE name = 'ev_before'});
$node->pgbench('--no-vacuum --client=1 --transactions=1 -M extended',
	0, [qr{processed: 1/1}], [qr{^$}], 'RS7: pgbench -M extended runs', { '303_rs7' => $ext });
my $b1 = $node->safe_psql('postgres', q{SELECT bypasses FROM cache_rules WHERE name = 'ev_before'});
is($b1 - $b0, 0,
	'RS7: statements Parsed (extended protocol) after a CREATE TEMP TABLE are still served');

# ---- RS8: PostgreSQL's 64 syscache callback slots ---------------------------
# cache_ext registers about 35 of them (stmtcache.c on the first call, the
# rules at load): with the few that postgres_fdw, text search and foreign
# keys register on first use, a session runs out and ends with FATAL.
my ($host, $port) = ($node->host, $node->port);
$node->safe_psql('postgres', qq{
CREATE EXTENSION postgres_fdw;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER loop;
CREATE FOREIGN TABLE fev (id int, ts timestamptz) SERVER loop OPTIONS (table_name 'ev');
CREATE TABLE pk (id int PRIMARY KEY);
CREATE TABLE fk (id int REFERENCES pk);
INSERT INTO pk VALUES (1);
});
my ($r8, $o8, $e8) = $node->psql('postgres', q{
SELECT count(*) FROM ev WHERE ts < '2024-01-01 00:00';
SELECT to_tsvector('english', 'running') @@ to_tsquery('english', 'run');
BEGIN; INSERT INTO fk VALUES (1); ROLLBACK;
SELECT count(*) FROM fev;
});
is($e8, '', 'RS8: a plain query of a foreign table after a ruled SELECT, text search and a foreign key check does not end the session');
is($o8, "12\nt\n24", 'RS8: and returns its rows');

$node->stop;
done_testing();
