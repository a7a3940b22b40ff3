# test/t/290_large_results.pl - compressed and chunked entries in Redis
#
# docs/store.md, "Compression and chunks": a compressed entry takes fewer
# bytes in Redis than the same entry raw; a chunked entry whose chunk is
# deleted, replaced by another entry's chunk, moved to another index or
# damaged, or whose head is damaged, is a MISS (never an error), counted
# as corrupt, deleted with its chunks and refilled; the chunks carry the
# entry's TTL; cache_purge() takes them; with cache_ext.encryption_key_file
# the chunks are sealed too and hold no plaintext.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP qw(decode_json);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util qw(:DEFAULT crc32c);

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# the calls must read the entries tampered with in Redis.
delete $ENV{CE_L1};

my $CANARY = 'canary-5be1d2';
my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => "cache_ext.chunk_size = '4kB'");

$node->safe_psql('postgres', qq{
	CREATE TABLE big (id int, t text);
	INSERT INTO big SELECT g, 'row ' || g || ' $CANARY ' || repeat('abcdefgh', 8)
	  FROM generate_series(1, 3000) g;
	SELECT cache_track('big');
});

# the Redis key of a query's entry, and what cache_explain says of it
sub entry_explain
{
	my ($q, $setup) = @_;
	my $json = $node->safe_psql('postgres',
		($setup // '') . "SELECT cache_explain(" . sql_literal($q) . ")");
	return decode_json($json);
}
sub chunks { my $k = shift; return $redis->scan_keys("$k:c:*"); }
sub strlen { return $redis->cli('STRLEN', $_[0]); }

my $Q = 'SELECT id, t FROM big WHERE id > $1 ORDER BY id';
my $cols = 'id int, t text';
my $rows = direct_rows($node, $Q, ['0']);

# ---- 1. compressed entries are smaller than raw ones ------------------------
my $qc = $Q =~ s/\$1/0/r;
my $qr = $Q =~ s/\$1/-1/r;
my $raw_setup = 'SET cache_ext.compress_min_size = -1; ';
call_is($node, cq($qc, $cols), qr/^MISS$/, $rows, 'compressed: first call stores');
call_is($node, cq($qc, $cols), qr/^HIT$/, $rows, 'compressed: hit');
call_is($node, $raw_setup . cq($qr, $cols), qr/^MISS$/, $rows, 'raw: first call stores');
call_is($node, $raw_setup . cq($qr, $cols), qr/^HIT$/, $rows, 'raw: hit');
my $ec = entry_explain($qc);
my $er = entry_explain($qr, $raw_setup);
is($ec->{entry}{compression}, 'lz4', 'the compressed entry says lz4');
ok(!defined $er->{entry}{compression}, 'the raw one says nothing');
ok($ec->{entry}{chunked} && $er->{entry}{chunked}, 'both are chunked (4 kB chunks)');

# what Redis holds: the head and the chunks of each
my %stored;
foreach my $e ([$ec, 'compressed'], [$er, 'raw'])
{
	my $k = $e->[0]{key};
	my @c = chunks($k);
	my $sum = strlen($k);
	$sum += strlen($_) foreach @c;
	$stored{$e->[1]} = $sum;
	$stored{"$e->[1] chunks"} = scalar(@c);
	ok(@c >= 2, "$e->[1]: " . scalar(@c) . ' chunks in Redis');
}
ok($stored{compressed} * 4 < $stored{raw},
	"compressed entries take less than a quarter ($stored{compressed} vs $stored{raw} bytes)");
my @raw_values = map { $redis->cli('GET', $_) } chunks($er->{key});
ok((grep { /\Q$CANARY\E/ } @raw_values), 'a raw chunk shows the rows (the check below can fail)');

# the chunks carry the entry's TTL, a little longer than the head's
my $head_ttl = $redis->cli('PTTL', $ec->{key});
my @ttls = map { $redis->cli('PTTL', $_) } chunks($ec->{key});
ok($head_ttl > 0 && !(grep { $_ < $head_ttl || $_ > $head_ttl + 11000 } @ttls),
	"the chunks expire with their head ($head_ttl ms; chunks @ttls[0..1] ...)");

# ---- 2. a damaged chunked entry is a miss, counted corrupt, refilled --------
my $call = cq($qc, $cols);
my $other = entry_explain($qr, $raw_setup)->{key};

sub tamper_is
{
	my ($name, $why, $tamper, $orphans) = @_;
	my $key = $ec->{key};
	my @c = chunks($key);
	my $before = cache_stats($node);
	$tamper->($key, @c);
	my $r = call_is($node, $call, qr/^MISS \(corrupt entry replaced: \Q$why\E\)$/, $rows,
		"$name: a miss");
	my $after = cache_stats($node);
	is($after->{corrupt} - $before->{corrupt}, 1, "$name: counted corrupt");
	call_is($node, $call, qr/^HIT$/, $rows, "$name: refilled");
	my @now = chunks($key);
	if ($orphans)
	{
		# a head that does not parse does not say where its chunks are:
		# they are left to expire with the TTL they were given
		is(scalar(@now), 2 * scalar(@c), "$name: the old chunks are left");
		ok(!(grep { $redis->cli('PTTL', $_) <= 0 } @now), "$name: to expire");
	}
	else
	{
		is(scalar(@now), scalar(@c), "$name: the old chunks were deleted with it");
	}
}

tamper_is('a chunk deleted', 'chunk missing', sub {
	my ($k, @c) = @_;
	$redis->cli('DEL', $c[1]);
});
tamper_is("another entry's chunk", 'chunk of another entry', sub {
	my ($k, @c) = @_;
	my ($foreign) = grep { /:0$/ } chunks($other);
	my ($mine) = grep { /:0$/ } @c;
	$redis->lua("return redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]), 'KEEPTTL')",
		[$mine, $foreign]);
});
tamper_is('two chunks swapped', 'chunk out of place', sub {
	my ($k, @c) = @_;
	my ($c0) = grep { /:0$/ } @c;
	my ($c1) = grep { /:1$/ } @c;
	$redis->lua(q{
		local a = redis.call('GET', KEYS[1])
		redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]), 'KEEPTTL')
		return redis.call('SET', KEYS[2], a, 'KEEPTTL')}, [$c0, $c1]);
});
tamper_is('a damaged chunk', 'chunk checksum mismatch', sub {
	my ($k, @c) = @_;
	$redis->cli('SETRANGE', $c[0], '100', 'X');
});
tamper_is('a damaged head', 'chunk head checksum mismatch', sub {
	my ($k, @c) = @_;
	$redis->cli('SETRANGE', $k, '30', 'X');
}, 1);

# an invalidated chunked entry is known stale from its head: no chunk is read
# (heads and chunks are read with GETRANGE: count those)
sub get_calls
{
	my ($line) = grep { /^cmdstat_getrange:/ } $redis->cli('INFO', 'commandstats');
	return $line =~ /calls=(\d+)/ ? $1 : 0;
}
$node->safe_psql('postgres', 'UPDATE big SET t = t WHERE id = 1');
my $gets = get_calls();
call_is($node, $call, qr/^MISS \(invalidated\)$/, $rows, 'invalidated: a miss');
is(get_calls() - $gets, 2,
	'invalidated: not one chunk was read (the lookup of the head, the store\'s read of the old head)');
call_is($node, $call, qr/^HIT$/, $rows, 'invalidated: refilled');
# (the superseded chunks are still there, for 10 s: count the head's)
my $before_hit = get_calls();
call_is($node, $call, qr/^HIT$/, $rows, 'invalidated: a hit again');
is(get_calls() - $before_hit, 1 + $stored{'compressed chunks'}, 'a hit reads the head and each chunk once');

# ---- 3. a compressed entry that lies about its length ---------------------
# (not chunked: small enough for one value); read and written as hex
# through Lua, so that binary values survive redis-cli
sub get_bin
{
	my $hex = $redis->lua(q{return (redis.call('GET', KEYS[1]):gsub('.', function(c)
		return string.format('%02x', string.byte(c)) end))}, [$_[0]]);
	return pack('H*', $hex);
}
sub set_bin
{
	my ($k, $v) = @_;
	$redis->lua(q{return redis.call('SET', KEYS[1], (ARGV[1]:gsub('..', function(h)
		return string.char(tonumber(h, 16)) end)), 'KEEPTTL')}, [$k], unpack('H*', $v));
}
my $Qs = 'SELECT id, t FROM big WHERE id <= 60 ORDER BY id';
my $small = cq($Qs, $cols);
my $small_rows = direct_rows($node, $Qs, []);
call_is($node, $small, qr/^MISS$/, $small_rows, 'small: first call stores');
my $ks = entry_explain($Qs);
is($ks->{entry}{compression}, 'lz4', 'small: compressed');
ok(!$ks->{entry}{chunked}, 'small: in one value');
foreach my $lie ([0x7FFFFFF0, 'compressed entry would decompress past cache_ext.max_entry_size', 'a bomb'],
	[-1, 'compressed entry does not decompress', 'a byte short'],
	[+1, 'compressed entry does not decompress', 'a byte long'])
{
	my $frame = get_bin($ks->{key});
	my $raw = unpack('L', substr($frame, 16, 4));
	substr($frame, 16, 4) = pack('L', $lie->[0] > 1 ? $lie->[0] : $raw + $lie->[0]);
	substr($frame, 12, 4) = pack('L', crc32c(substr($frame, 0, 12) . substr($frame, 16)));
	set_bin($ks->{key}, $frame);
	call_is($node, $small, qr/^MISS \(corrupt entry replaced: \Q$lie->[1]\E\)$/, $small_rows,
		"a raw length that lies ($lie->[2]): refused");
	call_is($node, $small, qr/^HIT$/, $small_rows, "a raw length that lies ($lie->[2]): refilled");
}

# cache_purge() takes the chunks with their heads
$node->safe_psql('postgres', 'SELECT cache_purge()');
is(scalar($redis->scan_keys('cache_ext:*:e:*')), 0, 'cache_purge() leaves no chunk behind');

# ---- 4. with an encryption key, the chunks are sealed ----------------------
my $dir = PostgreSQL::Test::Utils::tempdir('keys');
open(my $fh, '>', "$dir/keys") or die "$dir/keys: $!";
print $fh ('3c' x 32) . "\n";
close($fh);
chmod(0600, "$dir/keys");
my $enc = cache_ext_node('enc', $redis, extra_conf => join("\n",
	"cache_ext.chunk_size = '4kB'",
	"cache_ext.key_prefix = 'enc:'",
	"cache_ext.compress_min_size = -1",
	"cache_ext.encryption_key_file = '$dir/keys'"));
$enc->safe_psql('postgres', qq{
	CREATE TABLE big (id int, t text);
	INSERT INTO big SELECT g, 'row ' || g || ' $CANARY ' || repeat('abcdefgh', 8)
	  FROM generate_series(1, 3000) g;
	SELECT cache_track('big');
});
call_is($enc, $call, qr/^MISS$/, $rows, 'sealed: first call stores');
call_is($enc, $call, qr/^HIT$/, $rows, 'sealed: the chunks open');
my @enc_keys = $redis->scan_keys('enc:*:e:*');
ok((grep { /:c:/ } @enc_keys) >= 2, 'sealed: the entry is chunked');
my @values = map { $redis->cli('GET', $_) // '' } @enc_keys;
ok(!(grep { /\Q$CANARY\E|abcdefgh/ } @values), 'sealed: no plaintext in any chunk');
my ($c0) = grep { /:c:.*:0$/ } @enc_keys;
$redis->cli('SETRANGE', $c0, '40', 'X');
call_is($enc, $call, qr/^MISS \(corrupt entry replaced: chunk checksum mismatch\)$/, $rows,
	'sealed: a damaged chunk is a miss');
call_is($enc, $call, qr/^HIT$/, $rows, 'sealed: refilled');

foreach my $n ($node, $enc)
{
	ok(!$n->log_contains('terminated by signal'), $n->name . ': no backend crashed');
	$n->stop;
}
done_testing();
