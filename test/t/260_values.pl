# test/t/260_values.pl - application values (cache_set / cache_get) in Redis
#
# What pg_regress cannot show: expiry by Redis TTL, invalidation seen by
# other sessions (cache_delete_namespace, cache_invalidate_tag), values
# tampered with in Redis (copied under another key, truncated, a bit
# flipped, foreign bytes, not sealed although a key file is set) refused
# and counted, Redis stopped or hung (NULL and false with a status, bounded
# and interruptible waits), and a scan of Redis with a key file set that
# shows no plaintext, namespace or key.  A second server without key files
# (another key prefix, same Redis) checks the unsealed format's own
# defences (fingerprint, length, checksum) and that namespaces belong to
# the database.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

my $CANARY = 'canary-v4lu3-9d2e';
my $redis = CacheExt::Redis->new;
my $dir = PostgreSQL::Test::Utils::tempdir('secrets');

sub write_secret
{
	my ($name, $content) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $content;
	close($fh);
	chmod(0600, $path);
	return $path;
}

my $secret = write_secret('secret', "a values secret of more than sixteen bytes\n");
my $keys = write_secret('keys', ('3c' x 32) . "\n");
my $node = cache_ext_node('sealed', $redis, extra_conf => join("\n",
	"cache_ext.secret_file = '$secret'",
	"cache_ext.encryption_key_file = '$keys'",
	"cache_ext.retry_interval = 0"));
my $plain = cache_ext_node('plain', $redis, extra_conf => join("\n",
	"cache_ext.key_prefix = 'plain:'",
	"cache_ext.retry_interval = 0"));

# one call and its status, in a session of its own
sub call
{
	my ($n, $sql) = @_;
	my $out = $n->safe_psql('postgres',
		"SELECT coalesce(($sql)::text, '<null>'); SELECT cache_status();");
	my ($value, $status) = split /\n/, $out, 2;
	return ($value, $status // '');
}

# set a value and return the Redis key it went to (the one new :v: key)
sub set_and_find
{
	my ($n, $prefix, $ns, $key, $json, @more) = @_;
	my %before = map { $_ => 1 } $redis->scan_keys("$prefix*:v:*");
	my $extra = @more ? ", $more[0]" : '';
	my ($ok) = call($n, "cache_set('$ns', '$key', '$json'$extra)");
	is($ok, 'true', "cache_set $ns/$key");
	my @new = grep { !$before{$_} } $redis->scan_keys("$prefix*:v:*");
	is(scalar(@new), 1, "one new value key for $ns/$key");
	return $new[0];
}

# ---- set, get, and what Redis holds -------------------------------------------
my $k1 = set_and_find($node, 'cache_ext:', 'secret_ns_x', 'user_key_y',
	qq({"note": "$CANARY"}));
like($k1, qr/^cache_ext:[0-9a-f]{16}:v:[0-9a-f]{64}$/, 'a value key is a hash');
my ($v, $s) = call($node, "cache_get('secret_ns_x', 'user_key_y')");
is($v, qq({"note": "$CANARY"}), 'the value reads back');
is($s, 'HIT', 'as a HIT');
my $ttl = $redis->cli('PTTL', $k1);
ok($ttl > 0 && $ttl <= 300_000, "a value without ttl has cache_ext.default_ttl ($ttl ms)");

my @all = $redis->scan_keys('*');
my $dump = join("\n", @all);
foreach my $k (@all)
{
	my $type = $redis->cli('TYPE', $k);
	$dump .= "\n" . $redis->cli('GET', $k) if $type eq 'string';
}
unlike($dump, qr/\Q$CANARY\E/, 'no plaintext of the value in Redis');
unlike($dump, qr/secret_ns_x|user_key_y|note/, 'no namespace, key or JSON field name in Redis');
unlike(join("\n", @all), qr/secret_ns|user_key/, 'key names hold no namespace or key');

# ---- TTL: Redis expires the value ------------------------------------------------
my $kt = set_and_find($node, 'cache_ext:', 'ttl_ns', 'short', '"brief"', "ttl => '300 ms'");
($v, $s) = call($node, "cache_get('ttl_ns', 'short')");
is($v, '"brief"', 'before its TTL');
usleep(700_000);
($v, $s) = call($node, "cache_get('ttl_ns', 'short')");
is("$v $s", '<null> MISS', 'after its TTL: NULL, a MISS');
is($redis->cli('EXISTS', $kt), '0', 'Redis removed it');

# ---- invalidation, seen by other sessions -----------------------------------------
call($node, "cache_set('ns_a', 'k', '1')");
call($node, "cache_set('ns_a', 'k2', '2')");
call($node, "cache_set('ns_b', 'k', '3')");
($v) = call($node, "cache_delete_namespace('ns_a')");
is($v, 'true', 'cache_delete_namespace');
($v, $s) = call($node, "cache_get('ns_a', 'k')");
is("$v $s", '<null> MISS (invalidated)', 'another session: a value of the namespace is gone');
($v) = call($node, "cache_get('ns_a', 'k2')");
is($v, '<null>', 'and every other one');
($v) = call($node, "cache_get('ns_b', 'k')");
is($v, '3', 'another namespace keeps its values');

call($node, "cache_set('tagged', 'k', '\"t\"', tags => ARRAY['tv_orders'])");
call($node, "cache_set('tagged', 'u', '\"u\"', tags => ARRAY['tv_other'])");
call($node, "cache_set('tagged', 'n', '\"n\"')");
$node->safe_psql('postgres', "SELECT cache_invalidate_tag('tv_orders')");
($v, $s) = call($node, "cache_get('tagged', 'k')");
is("$v $s", '<null> MISS (invalidated)', 'cache_invalidate_tag invalidates a tagged value');
($v) = call($node, "cache_get('tagged', 'u')");
is($v, '"u"', 'a value with another tag stays');
($v) = call($node, "cache_get('tagged', 'n')");
is($v, '"n"', 'a value without tags stays');

# ---- tampered, swapped, foreign: refused and counted --------------------------------
sub refused
{
	my ($n, $ns, $key, $why_re, $name) = @_;
	my $before = cache_stats($n)->{corrupt};
	my ($val, $st) = call($n, "cache_get('$ns', '$key')");
	is($val, '<null>', "$name: NULL");
	like($st, qr/^MISS \(corrupt value deleted: $why_re\)$/, "$name: status ($st)");
	is(cache_stats($n)->{corrupt} - $before, 1, "$name: counted as corrupt");
}

my $ka = set_and_find($node, 'cache_ext:', 'tamper', 'a', '"value a"');
my $kb = set_and_find($node, 'cache_ext:', 'tamper', 'b', '"value b"');
is($redis->cli('COPY', $ka, $kb, 'REPLACE'), '1', 'value a copied over value b');
refused($node, 'tamper', 'b', 'encrypted entry failed authentication', 'sealed, copied');
is($redis->cli('EXISTS', $kb), '0', 'the refused value was deleted');
($v) = call($node, "cache_get('tamper', 'a')");
is($v, '"value a"', 'the original is untouched');

my $LUA_TRUNC = "local v = redis.call('GET', KEYS[1]); "
  . "return redis.call('SET', KEYS[1], string.sub(v, 1, #v - tonumber(ARGV[1])))";
my $LUA_FLIP = "local v = redis.call('GET', KEYS[1]); local i = tonumber(ARGV[1]); "
  . "if i < 0 then i = #v + 1 + i end; "
  . "local b = string.char(bit.bxor(string.byte(v, i), 1)); "
  . "return redis.call('SET', KEYS[1], string.sub(v, 1, i - 1) .. b .. string.sub(v, i + 1))";

$redis->lua($LUA_TRUNC, [$ka], 3);
refused($node, 'tamper', 'a', 'encrypted entry failed authentication', 'sealed, truncated');
$ka = set_and_find($node, 'cache_ext:', 'tamper', 'a2', '"value a2"');
$redis->lua($LUA_FLIP, [$ka], 30);
refused($node, 'tamper', 'a2', 'encrypted entry failed authentication', 'sealed, a bit flipped');

# a plain (unsealed) value although a key file is set: foreign
my $kp = set_and_find($plain, 'plain:', 'tamper', 'p', '"plain value"');
$ka = set_and_find($node, 'cache_ext:', 'tamper', 'a3', '"value a3"');
$redis->cli('COPY', $kp, $ka, 'REPLACE');
refused($node, 'tamper', 'a3', '.+', 'an unsealed value with a key file set');
# a query result copied over a value: foreign
$node->safe_psql('postgres', 'CREATE TABLE t (x int); INSERT INTO t VALUES (1)');
$node->safe_psql('postgres', q{SELECT * FROM cached_query('SELECT x FROM t') AS r(x int)});
my ($entry) = $redis->scan_keys('cache_ext:*:e:*');
$ka = set_and_find($node, 'cache_ext:', 'tamper', 'a4', '"value a4"');
$redis->cli('COPY', $entry, $ka, 'REPLACE');
refused($node, 'tamper', 'a4', 'encrypted entry failed authentication', 'a query entry copied over a value');
# another type under the value's key
$ka = set_and_find($node, 'cache_ext:', 'tamper', 'a5', '"value a5"');
$redis->cli('DEL', $ka);
$redis->cli('RPUSH', $ka, 'x');
refused($node, 'tamper', 'a5', '.+', 'a list under the value key');

# the unsealed format's own defences
my $p1 = set_and_find($plain, 'plain:', 'pt', 'one', '"one"');
my $p2 = set_and_find($plain, 'plain:', 'pt', 'two', '"two"');
$redis->cli('COPY', $p1, $p2, 'REPLACE');
refused($plain, 'pt', 'two', 'value belongs to another key', 'unsealed, copied');
$redis->lua($LUA_TRUNC, [$p1], 1);
refused($plain, 'pt', 'one', 'value length does not match its header', 'unsealed, truncated');
$p1 = set_and_find($plain, 'plain:', 'pt', 'three', '"three"');
$redis->lua($LUA_FLIP, [$p1], -2);
refused($plain, 'pt', 'three', 'value checksum mismatch', 'unsealed, a bit flipped');
$p1 = set_and_find($plain, 'plain:', 'pt', 'four', '"four"');
$redis->cli('SET', $p1, 'CXV1 but not a value at all, just some bytes of text');
refused($plain, 'pt', 'four', '.+', 'unsealed, foreign bytes');
$p1 = set_and_find($plain, 'plain:', 'pt', 'five', '"five"');
($v) = call($plain, "cache_get('pt', 'five')");
is($v, '"five"', 'unsealed values read back');
like($redis->cli('GET', $p1), qr/"five"/, 'without a key file the JSON is in Redis in clear (documented)');

# namespaces belong to the database: same namespace and key, another key
# name; a value copied from one database's key to the other's is foreign
$plain->safe_psql('postgres', 'CREATE DATABASE other');
$plain->safe_psql('other', 'CREATE EXTENSION cache_ext');
# CREATE DATABASE bumps the server generation (through the outbox's worker):
# values set before that bump is delivered would be stale
$plain->poll_query_until('postgres', 'SELECT pending_invalidations = 0 FROM cache_stats')
  or die 'the server generation bump was not delivered';
my $pa = set_and_find($plain, 'plain:', 'dbns', 'k', '"in postgres"');
my %before = map { $_ => 1 } $redis->scan_keys('plain:*:v:*');
is($plain->safe_psql('other', "SELECT cache_set('dbns', 'k', '\"in other\"')"), 't',
	'the same namespace and key in another database');
my @pb = grep { !$before{$_} } $redis->scan_keys('plain:*:v:*');
is(scalar(@pb), 1, 'is another Redis key');
is($plain->safe_psql('other', "SELECT cache_get('dbns', 'k'); SELECT cache_status()"), "\"in other\"\nHIT",
	'each database reads its own value');
is($plain->safe_psql('postgres', "SELECT cache_get('dbns', 'k'); SELECT cache_status()"), "\"in postgres\"\nHIT",
	'and the first one is untouched');
$redis->cli('COPY', $pa, $pb[0], 'REPLACE');
my $out = $plain->safe_psql('other', "SELECT cache_get('dbns', 'k') IS NULL; SELECT cache_status()");
is($out, "t\nMISS (corrupt value deleted: value belongs to another key)",
	"a value copied from another database's key is refused");

# ---- Redis hung: bounded, interruptible ----------------------------------------------
call($node, "cache_set('hang', 'k', '1')");
$redis->pause;
my $t0 = time();
$out = $node->safe_psql('postgres', "SET cache_ext.command_timeout = 300; "
	  . "SELECT coalesce(cache_get('hang', 'k')::text, '<null>'); SELECT cache_status();");
my $took = time() - $t0;
like($out, qr/^<null>\nBYPASS: redis unavailable/, 'hung Redis: NULL with a status');
ok($took < 5, sprintf('bounded by cache_ext.command_timeout (%.2f s)', $took));
$t0 = time();
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SET cache_ext.command_timeout = '20s'; "
	  . "SET statement_timeout = '300ms'; SELECT cache_get('hang', 'k')");
$took = time() - $t0;
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout cancels the wait');
ok($took < 5, sprintf('at once (%.2f s)', $took));
$t0 = time();
$out = $node->safe_psql('postgres', "SET cache_ext.command_timeout = 300; "
	  . "SELECT cache_set('hang', 'k', '2'); SELECT cache_status();");
like($out, qr/^f\nNOT STORED: redis unavailable/, 'hung Redis: cache_set is false with a status');
# a namespace invalidation Redis cannot take is kept in the outbox (C3)
$out = $node->safe_psql('postgres', "SET cache_ext.command_timeout = 300; "
	  . "SELECT cache_delete_namespace('hang'); SELECT cache_status();");
like($out, qr/^t\nINVALIDATED \(deferred\): redis unavailable/,
	'hung Redis: cache_delete_namespace is deferred to the outbox');
$redis->resume;
$out = '';
for (my $i = 0; $i < 100; $i++)
{
	$out = $node->safe_psql('postgres',
		"SELECT coalesce(cache_get('hang', 'k')::text, '<null>'); SELECT cache_status();");
	last unless $out =~ /BYPASS/;
	usleep(50_000);
}
is($out, "<null>\nMISS (invalidated)",
	'Redis back: the deferred invalidation was delivered before the value was served');

# ---- Redis stopped, then started again (empty) -----------------------------------------
call($node, "cache_set('down', 'k', '\"d\"')");
$redis->stop;
($v, $s) = call($node, "cache_get('down', 'k')");
is($v, '<null>', 'Redis stopped: cache_get is NULL');
like($s, qr/^BYPASS: redis unavailable \(/, "with a status saying why ($s)");
($v, $s) = call($node, "cache_set('down', 'k', '\"e\"')");
is($v, 'false', 'cache_set is false');
like($s, qr/^NOT STORED: redis unavailable/, 'with a status');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET cache_ext.values_strict = on; SELECT cache_get('down', 'k')");
like($stderr, qr/ERROR:  cache_get could not use redis/, 'cache_ext.values_strict: an ERROR');
$redis->start;
# the restart is noticed and the server generation bumped: values set
# before that bump are stale, so set until one reads back (one session)
$out = $node->safe_psql('postgres', q{
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		PERFORM cache_set('down', 'k', '"again"');
		EXIT WHEN cache_get('down', 'k') IS NOT NULL;
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT cache_get('down', 'k'); SELECT cache_status();});
is($out, qq{"again"\nHIT}, 'Redis back: values are stored and served again');

$plain->stop;
$node->stop;
done_testing();
