# test/t/165_key_prefix_bound.pl - the longest cache_ext.key_prefix still fits every key name
#
# Generation key names are kept in fixed slots (INVAL_KEY_LEN).
# The longest is a key-level generation of a table whose OID has 10 digits:
# the cluster's next OID is set past 4 000 000 000 with pg_resetwal so that
# the test table gets one.  A 63-character prefix (the bound) works for
# writes, reads and invalidation; a 64-character one is refused by SET with
# SQLSTATE 22023 (0.2 took it, and every write to the tracked table failed).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis;

my $redis = CacheExt::Redis->new;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'cache_ext'",
	"cache_ext.redis_url = '" . $redis->url . "'"));
command_ok([ 'pg_resetwal', '-o', '4000000000', $node->data_dir ],
	'next OID set past 4 000 000 000');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cache_ext');

my $p63 = 'p' x 62 . ':';
my $p64 = 'p' x 63 . ':';

$node->safe_psql('postgres', q{
	CREATE TABLE orders (id int PRIMARY KEY, customer_id bigint, amount int);
	INSERT INTO orders SELECT g, g % 10, g FROM generate_series(1, 100) g;
});
my $relid = $node->safe_psql('postgres', "SELECT 'orders'::regclass::oid");
is(length($relid), 10, "the table's OID has 10 digits ($relid)");
$node->safe_psql('postgres',
	"SELECT cache_track('orders', key_columns => ARRAY['customer_id'])");

# the bound: 63 characters are accepted, 64 refused with 22023 and a reason
my ($rc, $out, $err) = $node->psql('postgres',
	"SET cache_ext.key_prefix = '$p64'", on_error_stop => 1);
isnt($rc, 0, 'a 64-character prefix is refused');
like($err, qr/invalid value for parameter "cache_ext.key_prefix"/, 'by the check hook');
like($err, qr/1 to 63 characters, so that every key name fits in \d+ bytes/,
	'with the reason');
$out = $node->safe_psql('postgres', qq{
	\\set VERBOSITY verbose
	DO \$\$
	BEGIN
		SET cache_ext.key_prefix = '$p64';
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE NOTICE 'sqlstate %', SQLSTATE;
	END \$\$;
	SELECT 'done';
});
is($out, 'done', 'the refusal is SQLSTATE 22023 (invalid_parameter_value)');

my $q = q{SELECT sum(amount) FROM orders WHERE customer_id = $1};
my $call = "SELECT s, cache_status() FROM cached_query('$q', 3::bigint) AS t(s bigint)";
$out = $node->safe_psql('postgres', qq{
	SET cache_ext.key_prefix = '$p63';
	$call;
	$call;
	UPDATE orders SET amount = amount + 1 WHERE customer_id = 3;
	$call;
	INSERT INTO orders VALUES (1000, 3, 1);
	$call;
	DELETE FROM orders WHERE customer_id = 3;
	$call;
});
like($out, qr/\A480\|MISS\n480\|HIT\n490\|MISS[^\n]*\n491\|MISS[^\n]*\n\|MISS[^\n]*\z/,
	'with a 63-character prefix, writes to the key-tracked table work and invalidate');

my @keys = $redis->scan_keys("$p63*:g:k:$relid:*");
ok(@keys >= 1, 'a key-level generation key with the long prefix exists');
cmp_ok(length($keys[0] // ''), '<=', 127, 'and its name fits in 127 bytes')
	if @keys;
is(length($keys[0] // ''), 127, 'the longest name takes exactly 127 bytes') if @keys;

ok(!$node->log_contains('generation key too long'), 'no key name was too long');
$node->stop;
$redis->stop;
done_testing();
