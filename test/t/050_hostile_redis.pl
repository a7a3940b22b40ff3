# test/t/050_hostile_redis.pl - a "Redis" that answers garbage never breaks a query
#
# Replies are untrusted input (docs/architecture.md §2 C2): whatever the server sends
# (wrong reply types, protocol errors, absurd lengths, deep nesting, a
# connection closed mid-reply, silence), cached_query() returns the right
# rows without an ERROR, within a bounded time, and no backend crashes.
# Where the kind of failure is certain, the client names it (DEBUG1):
# decided from what happened, not from the words of a message.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::FakeRedis;
use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# every call must read the hostile server's replies; an L1 hit
# reads none.
delete $ENV{CE_L1};

my $BOUND = 10;    # seconds: "it did not hang"

my $fake = CacheExt::FakeRedis->new;
$fake->start(reply => "+OK\r\n");
my $node = cache_ext_node('main', $fake, extra_conf => join("\n",
	"cache_ext.connect_timeout = '500ms'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.retry_interval = 0"));

my ($Q, $COLS) = sales_fixture($node);
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);

my @cases = (
	[ 'closes every connection at once' => reply => '', close => 1, kind => 'closed' ],
	[ 'answers +OK to everything' => reply => "+OK\r\n" ],
	[ 'answers an error to everything' => reply => "-ERR hostile\r\n" ],
	[ 'answers an integer to everything' => reply => ":42\r\n" ],
	[ 'answers nil to everything' => reply => "\$-1\r\n" ],
	[ 'answers a bulk string of garbage' => reply => "\$30\r\n" . ('x' x 30) . "\r\n" ],
	[ 'is not a Redis server' => reply => "HTTP/1.1 400 Bad Request\r\n\r\n",
		kind => 'protocol' ],
	[ 'answers binary noise' => reply => join('', map { chr } 0 .. 255) x 4,
		kind => 'protocol' ],
	[ 'announces a huge bulk string' => reply => "\$9223372036854775807\r\n" ],
	[ 'announces a negative bulk length' => reply => "\$-7\r\n" ],
	[ 'announces a huge array' => reply => "*2147483647\r\n", kind => 'protocol' ],
	[ 'sends deeply nested arrays' => reply => "*1\r\n" x 20000 ],
	[ 'closes in the middle of a reply' => reply => "\$100\r\nabc", close => 1,
		kind => 'closed' ],
	[ 'answers after 5 s' => reply => "+OK\r\n", delay => 5, kind => 'timeout' ],
);

foreach my $case (@cases)
{
	my ($name, %params) = @$case;
	my $kind = delete $params{kind};
	$fake->start(%params);
	my $r = call_is($node, "SET client_min_messages = debug1;\n$call",
		qr/^(MISS|BYPASS)/, $expected, "server $name", timeout => 60);
	cmp_ok($r->{elapsed}, '<', $BOUND, "server $name: returned within ${BOUND}s");
	note "server $name: status " . ($r->{status} // 'none');
	like($r->{err}, qr/Redis failure of kind $kind:/, "server $name: a failure of kind $kind")
	  if $kind;
}

# Error replies in no encoding at all: under client_encoding = LATIN1 the
# raw bytes in the WARNING, cache_status() and cache_health() made 0.2's call
# fail with an encoding error.  Every text from Redis is shown as printable
# ASCII, other bytes as \xNN.
{
	my $hostile = "-ERR h\xffst\xfeile \x80\xc3 \\ \x1b[31m\r\n";
	$fake->start(reply => $hostile x 4);
	my $r = call_is($node, "SET client_encoding = LATIN1;\n$call", qr/^BYPASS/,
		$expected, 'non-UTF-8 error replies under client_encoding LATIN1', timeout => 60);
	unlike($r->{status} . $r->{err}, qr/[^\x20-\x7e\n\t]/,
		'cache_status() and the messages are printable ASCII');

	my ($out, $err) = ('', '');
	$node->psql('postgres', join("\n",
			'SET client_encoding = LATIN1;',
			'SET cache_ext.retry_interval = 0;',
			"$call;",
			'SELECT last_error, array_to_string(warnings, \'; \') FROM cache_health();'),
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	unlike($err, qr/\bERROR\b/, 'cache_health() under LATIN1: no error')
	  or diag($err);
	like($out, qr/h\\xffst\\xfeile \\x80\\xc3 \\x5c \\x1b\[31m/,
		'cache_health() shows the reply escaped');
	unlike($out . $err, qr/[^\x20-\x7e\n\t]/, 'cache_health() output is printable ASCII');
}

# A sentinel that answers a host name (review15 F4): getaddrinfo() would
# wait for the resolver without bound, so the name is not followed unless
# cache_ext.sentinel_hostnames says so.
{
	$fake->start(reply => "*2\r\n\$12\r\nevil.invalid\r\n\$4\r\n6379\r\n");
	my $url = 'redis-sentinel://127.0.0.1:' . $fake->port . '/mymaster';
	my $r = call_is($node, "SET cache_ext.redis_url = '$url';\n$call", qr/^BYPASS/,
		$expected, 'a sentinel answering a host name', timeout => 60);
	my $err = $node->safe_psql('postgres',
		"SET cache_ext.redis_url = '$url'; SET cache_ext.retry_interval = 0; $call; SELECT last_error FROM cache_health()");
	like($err, qr/answered a host name, not an address \(set cache_ext\.sentinel_hostnames/,
		'a sentinel answering a host name: not followed, and cache_health() says why');
	$err = $node->safe_psql('postgres',
		"SET cache_ext.redis_url = '$url'; SET cache_ext.retry_interval = 0; SET cache_ext.sentinel_hostnames = on; $call; SELECT last_error FROM cache_health()");
	unlike($err, qr/answered a host name/, 'with cache_ext.sentinel_hostnames = on, the name is resolved');
}
$fake->stop;

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
done_testing();
