# test/t/140_encryption.pl - HMAC key names and AES-256-GCM values
#
# With cache_ext.secret_file and cache_ext.encryption_key_file, nothing in
# Redis shows the query, its parameters or its result; a tampered entry, or
# one copied under another key, fails authentication and is a miss; old
# keys still decrypt after a rotation; unusable key files stop the server.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it reads and tampers with sealed entries in Redis; an L1 hit
# serves the unsealed copy in shared memory and never reads them.
delete $ENV{CE_L1};

my $CANARY = 'canary-7f3a9c';
my $redis = CacheExt::Redis->new;
my $dir = PostgreSQL::Test::Utils::tempdir('secrets');

sub write_secret
{
	my ($name, $content, $mode) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $content;
	close($fh);
	chmod($mode // 0600, $path);
	return $path;
}

my $key1 = '11' x 32;
my $key2 = 'a5' x 32;
my $secret = write_secret('secret', "a secret of more than sixteen bytes\n");
my $keys = write_secret('keys', "$key1\n");

my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.secret_file = '$secret'",
	"cache_ext.encryption_key_file = '$keys'"));
$node->safe_psql('postgres', qq{
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'the $CANARY body'), (2, 'other');
SELECT cache_track('notes');
});
my $Q = "SELECT id, body FROM notes WHERE body LIKE \$1";
my $call = cq($Q, 'id int, body text', "'%$CANARY%'");
my $rows = direct_rows($node, $Q, ["'%$CANARY%'"]);
like($rows, qr/\Q$CANARY\E/, 'the result holds the canary');

call_is($node, $call, qr/^MISS$/, $rows, 'encrypted: first call');
call_is($node, $call, qr/^HIT$/, $rows, 'encrypted: the entry decrypts');

# nothing in Redis shows the text, the parameter or the result
my @keys = $redis->scan_keys('*');
ok(@keys > 0, 'Redis holds keys');
my $everything = join("\n", @keys);
foreach my $k (@keys)
{
	my $v = $redis->cli('GET', $k);
	$everything .= "\n" . (defined $v ? $v : '');
}
unlike($everything, qr/\Q$CANARY\E/, 'no plaintext of the parameter or result in Redis');
unlike($everything, qr/notes|LIKE/, 'no plaintext of the query in Redis');

my $entry = $node->safe_psql('postgres',
	"SELECT cache_explain(" . sql_literal($Q) . ", '%$CANARY%'::text)->>'key'");
like($entry, qr/:e:[0-9a-f]{64}$/, 'the entry key');

# tampering: one byte of the ciphertext flipped
my $len = $redis->cli('STRLEN', $entry);
$redis->cli('SETRANGE', $entry, $len - 20, 'X');
my $stats0 = cache_stats($node);
call_is($node, $call, qr/^MISS \(corrupt entry replaced: encrypted entry failed authentication\)$/,
	$rows, 'a tampered entry fails authentication');
is(cache_stats($node)->{corrupt} - $stats0->{corrupt}, 1, 'counted as corrupt');
call_is($node, $call, qr/^HIT$/, $rows, 'stored again');

# an entry copied under another key does not open there
my $call2 = cq($Q, 'id int, body text', "'%other%'");
my $rows2 = direct_rows($node, $Q, ["'%other%'"]);
call_is($node, $call2, qr/^MISS$/, $rows2, 'another entry');
my $entry2 = $node->safe_psql('postgres',
	"SELECT cache_explain(" . sql_literal($Q) . ", '%other%'::text)->>'key'");
is($redis->cli('COPY', $entry, $entry2, 'REPLACE'), '1', 'entry copied over another key');
call_is($node, $call2, qr/^MISS \(corrupt entry replaced: /, $rows2,
	'a copied entry is refused, not served for the wrong query');

# rotation: a new key first, the old one still decrypts
call_is($node, $call, qr/^HIT$/, $rows, 'before rotation');
write_secret('keys', "$key2\n$key1\n");
$node->restart;
call_is($node, $call, qr/^HIT$/, $rows, 'after rotation: an entry sealed with the old key decrypts');
$node->safe_psql('postgres', "UPDATE notes SET body = body || '!' WHERE id = 1");
$rows = direct_rows($node, $Q, ["'%$CANARY%'"]);
call_is($node, $call, qr/^MISS \(invalidated\)$/, $rows, 'new entry, sealed with the new key');
write_secret('keys', "$key2\n");
$node->restart;
call_is($node, $call, qr/^HIT$/, $rows, 'the new key alone opens it');
write_secret('keys', "$key1\n");
$node->restart;
call_is($node, $call, qr/^MISS \(corrupt entry replaced: entry encrypted with a key this server does not have\)$/,
	$rows, 'an entry sealed with a key the server lacks is a miss');

# unusable key files stop the server, with a clear message
$node->stop;
chmod(0644, $keys);
my $log_offset = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'a world-readable key file stops the server');
like(slurp_file($node->logfile, $log_offset), qr/has group or world access/, 'and says why');
write_secret('keys', "not a key\n");
$log_offset = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'a malformed key file stops the server');
like(slurp_file($node->logfile, $log_offset), qr/is not a key/, 'and says why');
unlike(slurp_file($node->logfile), qr/\Q$key1\E|\Q$key2\E|sixteen bytes/,
	'no key or secret in the server log');

write_secret('keys', "$key1\n");
$node->start;
is($node->safe_psql('postgres', 'SHOW cache_ext.encryption_key_file'), $keys,
	'the path is shown to superusers');
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my ($out, $err) = ('', '');
$node->psql('postgres', 'SHOW cache_ext.encryption_key_file', stdout => \$out, stderr => \$err,
	extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied|must be superuser|privileges/, 'and hidden from other roles');
$node->stop;
done_testing();
