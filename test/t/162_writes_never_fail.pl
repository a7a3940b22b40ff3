# test/t/162_writes_never_fail.pl - tracking never fails a write (issue 10)
#
# A write to a tracked table must never fail because of cache_ext.  0.2's
# per-transaction set refused generation key names of 128 characters or
# more ("cache_ext generation key too long"), and a key value's name reached
# 128 with a 64-character cache_ext.key_prefix and a table OID of 10
# digits: every INSERT into such a key-tracked table failed.  0.3 bounds the
# prefix at 63 characters (TAP 165) and keeps names in 160-byte slots; this
# checks the longest name that can now occur.
# The server is given OIDs past 10^9 with pg_resetwal, so the table's OID
# has 10 digits.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $prefix = 'p' x 62 . ':';
my $node = cache_ext_node('main', $redis,
	extra_conf => "cache_ext.key_prefix = '$prefix'\ncache_ext.default_ttl = 600");

$node->stop;
command_ok([ 'pg_resetwal', '-o', '3000000000', $node->data_dir ],
	'pg_resetwal: OIDs from 3000000000');
$node->start;

$node->safe_psql('postgres', q{
CREATE TABLE kt (id int, customer text NOT NULL, v int);
SELECT cache_track('kt', key_columns => ARRAY['customer']);
});
my $oid = $node->safe_psql('postgres', "SELECT 'kt'::regclass::oid");
cmp_ok(length($oid), '==', 10, "the table's OID has 10 digits ($oid)");
is(length($prefix), 63, 'the key prefix has the longest length allowed');

my $Q = q{SELECT count(*) AS n, coalesce(sum(v), 0)::bigint AS total FROM kt WHERE customer = 'c1'};
my $CALL = cq($Q, 'n bigint, total bigint');
cache_call($node, $CALL);
call_is($node, $CALL, qr/^HIT(?: \(local\))?$/, direct_rows($node, $Q, []), 'a key-level result is cached');

my ($rc, $out, $err) = $node->psql('postgres',
	"INSERT INTO kt VALUES (1, 'c1', 10), (2, 'c2', 20)");
is($rc, 0, 'INSERT into the key-tracked table succeeds') or diag($err);
unlike($err, qr/ERROR/, 'with no error');
call_is($node, $CALL, qr/^MISS/, direct_rows($node, $Q, []),
	'the next read is a MISS with the new rows (its key value was bumped)');

my @keys = grep { /:g:k:$oid:/ } $redis->scan_keys("${prefix}*");
ok(@keys >= 1, 'the key-value generation was written to Redis under its full name');
cmp_ok(length($keys[0] // ''), '==', 127, 'and that name has 127 characters');

done_testing();
