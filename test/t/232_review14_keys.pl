# test/t/232_review14_keys.pl - review 14: the 0.5 hit path's keys across
# sessions, and the temporary schema the key's search path forces
#
# The hit path of 0.5 keeps the settings' digest per backend and hashes the
# entry key's per-statement part once per analysis.  Sessions whose
# settings come from ALTER ROLE / ALTER DATABASE ... SET (and reconnect)
# share entries only when every keyed value agrees, in L2 and in the local
# tier; a long-lived session keeps its own values.  Finding F1 (not of
# 0.5: entry_key has called fetch_search_path since before): with pg_temp
# first in search_path, every first cached call of a session creates the
# temporary schema, which the direct statement does not; on a hot standby
# the call fails ("cannot create temporary tables during recovery"), and a
# transaction whose first call it was cannot be prepared.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"cache_ext.local_cache_size = '4MB'",
	"max_prepared_transactions = 4",
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));

$node->safe_psql('postgres', q{
CREATE TABLE kt (d date, x float8, b bytea);
INSERT INTO kt VALUES ('2024-03-04', 1.0 / 3, '\x01');
SELECT cache_track('kt');
CREATE ROLE r14_dmy LOGIN;
CREATE ROLE r14_plain LOGIN;
GRANT SELECT ON kt TO r14_dmy, r14_plain;
ALTER ROLE r14_dmy SET DateStyle = 'SQL, DMY';
ALTER ROLE r14_dmy SET extra_float_digits = 0;
ALTER ROLE r14_dmy SET bytea_output = 'escape';
CREATE DATABASE r14_other;
});

my $Q = 'SELECT d::text, x::text, b::text FROM kt';
my $COLS = 'd text, x text, b text';
my $CALL = cq($Q, $COLS);
sub direct_as
{
	my ($role, $db) = @_;
	return $node->safe_psql($db // 'postgres', "SET ROLE $role; $Q");
}

# ---- settings from ALTER ROLE ... SET, each session a new backend
my $plain = direct_as('r14_plain');
call_is($node, "SET ROLE r14_plain; $CALL", qr/^MISS/, $plain, 'plain role: first call');
call_is($node, "SET ROLE r14_plain; $CALL", qr/^HIT/, $plain, 'plain role: hit');

# the role's settings apply at login, not at SET ROLE: log in as the role
my $dmy_direct = $node->safe_psql('postgres', $Q, extra_params => ['-U', 'r14_dmy']);
isnt($dmy_direct, $plain, 'the role settings change the direct result');
my $r = cache_call($node, "\\c - r14_dmy\n$CALL");
is($r->{rows}, $dmy_direct, 'login with ALTER ROLE settings: its own rows, never the plain entry');
like($r->{status} // '', qr/^MISS/, 'login with ALTER ROLE settings: a miss');
$r = cache_call($node, "\\c - r14_dmy\n$CALL");
is($r->{rows}, $dmy_direct, 'login with ALTER ROLE settings again: its own rows');
like($r->{status} // '', qr/^HIT/, 'login with ALTER ROLE settings again: a hit');

# a session that keeps its digest while the role's settings change
my $s = CacheExt::Session->new($node);
$s->query_ok("SET ROLE r14_plain");
is($s->query_ok($CALL), $plain, 'long session: plain rows');
$node->safe_psql('postgres', q{ALTER ROLE r14_plain SET DateStyle = 'German'});
is($s->query_ok($CALL), $plain, 'long session: ALTER ROLE SET does not apply to it');
$s->query_ok("SET DateStyle = 'German'");
my $german = $node->safe_psql('postgres', "SET DateStyle = 'German'; $Q");
is($s->query_ok($CALL), $german, 'long session: its own SET is followed');
$s->query_ok("RESET DateStyle");
is($s->query_ok($CALL), $plain, 'long session: RESET goes back');
$r = cache_call($node, "\\c - r14_plain\n$CALL");
is($r->{rows}, $german, 'a new login of the altered role: German rows');

# ---- ALTER DATABASE ... SET; and another database with the same table
$node->safe_psql('r14_other', q{
CREATE EXTENSION cache_ext;
CREATE TABLE kt (d date, x float8, b bytea);
INSERT INTO kt VALUES ('2024-03-04', 2.0 / 3, '\x02');
SELECT cache_track('kt');
});
$node->safe_psql('postgres', q{ALTER DATABASE r14_other SET IntervalStyle = 'iso_8601'});
my $other = $node->safe_psql('r14_other', $Q);
for my $i (1 .. 2)
{
	call_is($node, $CALL, qr/^(MISS|HIT)/, $other, "other database, call $i", dbname => 'r14_other');
}
call_is($node, $CALL, qr/^HIT/, $node->safe_psql('postgres', $Q), 'postgres: its own rows');

# ---- F1: search_path with pg_temp first
my $s2 = CacheExt::Session->new($node);
$s2->query_ok('SET search_path = pg_temp, public');
$s2->query_ok('BEGIN');
$s2->query_ok('SELECT 1');
is($s2->query_ok('SELECT pg_my_temp_schema()'), '0', 'direct statement: no temporary schema');
$s2->query_ok('SELECT * FROM cached_query($$SELECT 1$$) AS t(x int)');
is($s2->query_ok('SELECT pg_my_temp_schema()'), '0',
	'F1: the cached call creates no temporary schema either');
my ($out, $err) = $s2->query("PREPARE TRANSACTION 'r14'");
unlike($err, qr/ERROR/, 'F1: the transaction can still be prepared');
$s2->query("ROLLBACK PREPARED 'r14'");
$s2->query('ROLLBACK');

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "cache_ext.redis_url = '" . $redis->url . "'");
$standby->start;
$node->wait_for_catchup($standby);
my ($rc, $sout, $serr) = $standby->psql('postgres',
	"SET search_path = pg_temp, public; SELECT 1");
is($rc, 0, 'standby: the direct statement works with pg_temp first');
($rc, $sout, $serr) = $standby->psql('postgres',
	"SET search_path = pg_temp, public; SELECT * FROM cached_query('SELECT 1') AS t(x int)");
is($serr, '', 'F1: standby: the cached call works with pg_temp first too');
is($sout, '1', 'F1: standby: and returns the row');

$s->quit;
$s2->quit;
$standby->stop;
$node->stop;
done_testing();
