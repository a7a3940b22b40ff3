# test/t/169_database_oid_reuse.pl - a database created again with a dropped one's OID
#
# CREATE DATABASE copies its template's files, so relation OIDs are the
# template's; created with the OID of a dropped database (CREATE DATABASE
# ... OID n, or OID reuse), every generation key name and entry key would
# be the dropped database's.  DROP DATABASE and CREATE DATABASE therefore
# bump the server generation: the new database is never served the dropped
# one's results.  (Found by the review of the local tier, F4: before, the
# first call in the new database was a HIT of the dropped database's result.)

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

$node->safe_psql('postgres', 'CREATE DATABASE reuse_tpl');
$node->safe_psql('reuse_tpl', q{
CREATE EXTENSION cache_ext;
CREATE TABLE dt (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO dt VALUES (1, 1);
SELECT cache_track('dt');
});
my $DQ = cq('SELECT sum(v)::bigint AS total FROM dt', 'total bigint');

$node->safe_psql('postgres', 'CREATE DATABASE reuse_db OID 40000 TEMPLATE reuse_tpl');
$node->safe_psql('reuse_db', 'UPDATE dt SET v = 2');
cache_call($node, $DQ, dbname => 'reuse_db');
call_is($node, $DQ, qr/^HIT/, '2', 'the first database: its result is cached', dbname => 'reuse_db');

$node->safe_psql('postgres', 'DROP DATABASE reuse_db');
$node->safe_psql('postgres', 'CREATE DATABASE reuse_db OID 40000 TEMPLATE reuse_tpl');
is($node->safe_psql('reuse_db', 'SELECT sum(v) FROM dt'), '1',
	'the new database with the same OID holds its own data (test setup)');
call_is($node, $DQ, qr/^MISS/, '1',
	"the new database with the dropped one's OID: never the dropped database's result",
	dbname => 'reuse_db');
call_is($node, $DQ, qr/^HIT/, '1', 'and its own result is cached', dbname => 'reuse_db');

# CREATE DATABASE alone bumps too (a drop the hook did not see: cache_ext not
# loaded in that session, or the server started without it)
cache_call($node, $DQ, dbname => 'reuse_db');
$node->safe_psql('postgres', 'CREATE DATABASE reuse_other TEMPLATE reuse_tpl');
call_is($node, $DQ, qr/^MISS/, '1', 'CREATE DATABASE invalidates every result of the server',
	dbname => 'reuse_db');

done_testing();
