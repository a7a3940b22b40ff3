# test/t/168_explain_changes_nothing.pl - cache_explain changes nothing
#
# cache_explain reads the entry and its generations with the very lookup
# cached_query makes (the store's one verdict, TAP 167), but it is a
# diagnostic: an error reply it sees (a user whose MGET is refused for a
# moment) is shown in its output and is not reported to the Redis client.
# It opens no circuit breaker, logs no WARNING and counts no error, so the
# next cached_query calls of the session still use Redis.  (Review R11-2:
# the first store layer opened the breaker from cache_explain.)

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# the last call must reach Redis to show that cache_explain opened no
# breaker; an L1 hit would pass without asking Redis.
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
# the default cache_ext.retry_interval (5 s): the breaker stays open
my $node = cache_ext_node('main', $redis);

my ($Q, $COLS) = sales_fixture($node);
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);
my $explain = 'SELECT cache_explain(' . sql_literal($Q) . ', 3)';

call_is($node, $call, qr/^MISS/, $expected, 'first call stores');

# A user whose MGET is refused for a moment (an ACL change being rolled out).
my $pw = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
is($redis->cli('ACL', 'SETUSER', 'flaky', 'on', ">$pw", '~*', '&*', '+@all', '-mget'),
	'OK', 'ACL user without MGET created');
my $url = 'redis://flaky:' . $pw . '@127.0.0.1:' . $redis->port . '/0';

my $s = CacheExt::Session->new($node);
$s->query_ok("SET cache_ext.redis_url = '$url'");
my $before = cache_stats($s);
my ($out, $err) = $s->query($explain);
like($out, qr/"redis"/, 'cache_explain: Redis cannot be asked (MGET refused)')
  or diag("out: $out\nerr: $err");
unlike($err, qr/cache_ext could not use Redis/,
	'cache_explain logs no "could not use Redis" WARNING (0.3 did not)');
is(stats_delta($before, cache_stats($s))->{errors}, 0,
	'cache_explain adds nothing to cache_stats.errors (0.3 did not)');

# The refusal is over: the next call in the same session must use Redis.
is($redis->cli('ACL', 'SETUSER', 'flaky', '+mget'), 'OK', 'MGET allowed again');
my $r = cache_call($s, $call);
like($r->{status} // '', qr/^(HIT|MISS)/,
	'cached_query right after cache_explain uses Redis (no breaker opened by cache_explain)')
  or diag("status: " . ($r->{status} // 'none') . "\nerr: $r->{err}");
is($r->{rows}, $expected, 'right rows');

$s->quit;
$node->stop;
done_testing();
