# test/t/167_lookup_explain_agree.pl - cache_explain sees an entry as cached_query does
#
# 0.3 had two copies of the lookup's reading of Redis's replies, and they
# disagreed: cache_explain accepted generation values that cached_query
# rejects, and reported an error reply to the generations' MGET as a stale
# entry while cached_query bypassed with Redis unavailable.  Both now take
# the store layer's one verdict (src/store/store_reply.c).
#
#   - MGET refused (an ACL user without +mget, everything else allowed):
#     cached_query bypasses with the NOPERM, and cache_explain reports
#     Redis unavailable with the same error, not a stale entry.
#   - generations holding values cache_ext never writes (256 bytes):
#     cached_query does not hit, and cache_explain says the entry is not
#     valid because of those values.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it compares cached_query's and cache_explain's reading of
# Redis's replies, so the calls must make the round trip.
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.retry_interval = 0"));

my ($Q, $COLS) = sales_fixture($node);
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);
my $explain = 'SELECT cache_explain(' . sql_literal($Q) . ', 3)';

call_is($node, $call, qr/^MISS/, $expected, 'first call stores');
call_is($node, $call, qr/^HIT/, $expected, 'second call hits');
is($node->safe_psql('postgres', "$explain->'entry'->>'valid'"), 'true',
	'cache_explain: the entry is valid');

# ---- MGET refused ----------------------------------------------------------------

my $pw = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
is($redis->cli('ACL', 'SETUSER', 'nomget', 'on', ">$pw", '~*', '&*', '+@all', '-mget'),
	'OK', 'ACL user without MGET created');
my $url = 'redis://nomget:' . $pw . '@127.0.0.1:' . $redis->port . '/0';
my $setup = "SET cache_ext.redis_url = '$url';\nSET cache_ext.retry_interval = 0;\n";

{
	my $ex = $node->safe_psql('postgres', "$setup$explain");
	like($ex, qr/"redis": "unavailable \(Redis answered: NOPERM[^"]*mget/i,
		'cache_explain with MGET refused: Redis unavailable, with the NOPERM')
	  or diag($ex);
	unlike($ex, qr/"entry"|stale/,
		'cache_explain with MGET refused: no verdict on the entry (0.3 said stale)');

	my $r = call_is($node, "$setup$call", qr/^BYPASS: redis unavailable \(Redis answered: NOPERM/i,
		$expected, 'cached_query with MGET refused');
	like($r->{status} // '', qr/mget/i, 'cached_query names the refused command');
}

# ---- generation values cache_ext never writes -----------------------------------

my @gens = grep { !/:e:|incarnation|lease/ } $redis->scan_keys('cache_ext:*');
ok(@gens >= 1, 'the entry depends on generation keys in Redis')
  or diag(join(', ', $redis->scan_keys('cache_ext:*')));
$redis->cli('SET', $_, 'x' x 256) for @gens;

{
	my $ex = $node->safe_psql('postgres', "$explain->'entry'");
	like($ex, qr/"valid": false/, 'cache_explain with 256-byte generations: not valid')
	  or diag($ex);
	like($ex, qr/a generation it depends on holds a value cache_ext does not write/,
		'cache_explain says why: the values, not an invalidation');

	my $r = cache_call($node, $call);
	unlike($r->{status} // '', qr/^HIT/, 'cached_query with 256-byte generations: no hit');
	is($r->{rows}, $expected, 'cached_query with 256-byte generations: right rows');
	unlike($r->{err}, qr/\bERROR\b/, 'cached_query with 256-byte generations: no error');
}

$node->stop;
done_testing();
