# test/t/166_forged_entries.pl - a well-formed entry with a value its type refuses is never an error
#
# Entries are untrusted (docs/architecture.md §2 C2).  A corrupt byte fails the checksum;
# this test forges entries whose checksum and framing are valid but whose
# values are not what the type's receive function accepts: an array whose
# dimension claims more elements than it holds (array_recv then raises
# "insufficient data left in message", SQLSTATE 08P01, which 0.2 did not
# catch: every hit failed), and a bool byte that is neither 0 nor 1.  The
# call returns the right rows, reports the entry, and replaces it.

use strict;
use warnings FATAL => 'all';

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# the calls must read the entries forged in Redis.
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

$node->safe_psql('postgres', q{
	CREATE TABLE arr (id int, ia int[], b bool);
	INSERT INTO arr VALUES (1, '{1,2,3}', true);
	SELECT cache_track('arr');
});

# ---- raw RESP, so that binary values survive -------------------------------
sub resp_cmd
{
	my @args = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $redis->port,
		Proto => 'tcp') or die "connect: $!";
	binmode($sock);
	my $req = '*' . scalar(@args) . "\r\n";
	$req .= '$' . length($_) . "\r\n$_\r\n" foreach @args;
	print $sock $req;
	my $line = <$sock>;
	my $result;
	if ($line =~ /^\$(-?\d+)\r\n$/)
	{
		my $n = $1;
		if ($n >= 0)
		{
			my $got = '';
			read($sock, $got, $n + 2 - length($got), length($got)) while length($got) < $n + 2;
			$result = substr($got, 0, $n);
		}
	}
	elsif ($line =~ /^[+:](.*)\r\n$/) { $result = $1; }
	else { die "redis: $line"; }
	close($sock);
	return $result;
}

# CRC-32C, as pg_crc32c computes it
my @crc_table;
for my $i (0 .. 255)
{
	my $c = $i;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	$crc_table[$i] = $c;
}
sub crc32c
{
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[($crc ^ $_) & 0xFF] ^ ($crc >> 8) foreach unpack('C*', $_[0]);
	return $crc ^ 0xFFFFFFFF;
}

# the entry with its checksum recomputed (entry_format.h: bytes [0,12) and [16,len))
sub reseal
{
	my $e = shift;
	substr($e, 12, 4) = pack('L', crc32c(substr($e, 0, 12) . substr($e, 16)));
	return $e;
}

my $q = 'SELECT id, ia, b FROM arr';
my $cols = 'id int, ia int[], b bool';
my $call = cq($q, $cols);
my $expected = direct_rows($node, $q, []);

call_is($node, $call, qr/^MISS/, $expected, 'first call stores');
call_is($node, $call, qr/^HIT$/, $expected, 'second call hits');

my ($key) = $redis->scan_keys('cache_ext:*:e:*');
ok(defined $key, 'the entry is in Redis');
my $entry = resp_cmd('GET', $key);
ok(defined $entry && length($entry) > 48, 'and readable');

# locate the row: header 48, the generations, 3 column descriptors of 12,
# a bitmap of 1 byte, id (FIXED4, 4 bytes), then ia: a uint32 length and
# array_send's bytes (ndim, flags, element type, then dim and lower bound)
my $gens_len = unpack('L', substr($entry, 44, 4));
my $row = 48 + $gens_len + 3 * 12;
my $ia = $row + 1 + 4;
my $ia_len = unpack('L', substr($entry, $ia, 4));
is(unpack('l>', substr($entry, $ia + 4, 4)), 1, 'the array value is where the layout says');
my $dim_at = $ia + 4 + 12;
is(unpack('l>', substr($entry, $dim_at, 4)), 3, 'with 3 elements');
my $b_at = $ia + 4 + $ia_len;
is(unpack('C', substr($entry, $b_at, 1)), 1, 'and the bool after it');

# 1. the array claims 4 elements and holds 3
my $forged = $entry;
substr($forged, $dim_at, 4) = pack('l>', 4);
resp_cmd('SET', $key, reseal($forged), 'PX', '600000');
my $r = call_is($node, $call, qr/^MISS \(corrupt entry replaced: /, $expected,
	'an array value that ends early');
like($r->{status}, qr/values of type integer\[\] cannot be read back/,
	'reported as a value its type cannot read back');
call_is($node, $call, qr/^HIT$/, $expected, 'the entry was replaced');

# 2. a bool byte that is not 0 or 1
$entry = resp_cmd('GET', $key);
$forged = $entry;
substr($forged, $b_at, 1) = pack('C', 7);
resp_cmd('SET', $key, reseal($forged), 'PX', '600000');
$r = call_is($node, $call, qr/^MISS \(corrupt entry replaced: invalid value\)$/, $expected,
	'a bool byte that is neither 0 nor 1 is corrupt');
call_is($node, $call, qr/^HIT$/, $expected, 'the entry was replaced');

# 3. the element type changed to text: array_recv refuses the wrong type
$entry = resp_cmd('GET', $key);
$forged = $entry;
substr($forged, $ia + 4 + 8, 4) = pack('l>', 25);
resp_cmd('SET', $key, reseal($forged), 'PX', '600000');
call_is($node, $call, qr/^MISS \(corrupt entry replaced: /, $expected,
	'an array of another element type');

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
$node->stop;
done_testing();
