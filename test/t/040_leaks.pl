# test/t/040_leaks.pl - no descriptor leaks across Redis failures; corrupted entries
#
# Part 1: one backend makes 200 cached_query() calls while Redis is up, hung,
# killed and restarted, and while calls are cancelled; its number of open
# file descriptors must not grow.
# Part 2: an entry altered in Redis (bytes flipped, truncated, replaced,
# extended, wrong type) is never decoded into wrong rows: it is a MISS with
# the right rows, counted as corrupt, and the bad value does not survive.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# part 1 counts descriptors over calls that must reach a hung or
# killed Redis and cancels calls waiting on it; part 2 alters entries in
# Redis, which an L1 hit never reads (L1 memory: 221_local_tier_memory.pl).
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '200ms'",
	"cache_ext.retry_interval = 0"));

$node->safe_psql('postgres', q{
CREATE TABLE sales (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL,
                    label text NOT NULL);
INSERT INTO sales SELECT i, 1 + i % 10, (i * 37 % 1000) / 10.0, 'label_' || (i % 97)
FROM generate_series(1, 2000) AS i;
});

my $Q = 'SELECT region, count(*), sum(amount), string_agg(DISTINCT label, \',\' ORDER BY label) '
  . 'FROM sales WHERE region = $1 GROUP BY region';
my $COLS = 'region int, n bigint, total numeric, labels text';
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);

# ---- Part 1: descriptors ----------------------------------------------------

my $s = CacheExt::Session->new($node, timeout => 60);
my $pid = $s->backend_pid;

my ($calls, @problems) = (0);

# One cached_query() call in $s; remember anything wrong with it.
sub one_call
{
	my ($what, $status_re) = @_;
	my $r = cache_call($s, $call, timeout => 60);
	$calls++;
	if ($r->{timed_out} || $r->{err} =~ /ERROR/
		|| ($r->{status} // '') !~ $status_re || $r->{rows} ne $expected)
	{
		push @problems, "call $calls ($what): status "
		  . ($r->{status} // 'none') . ", stderr: $r->{err}";
	}
	return;
}

# A call cancelled while it waits on the hung Redis (counts as a call).
sub cancelled_call
{
	$s->query_ok("SET cache_ext.command_timeout = '60s'");
	my $tag = $s->send($call);
	$calls++;
	my $active = $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE pid = $pid AND state = 'active' AND query LIKE '%cached_query%'});
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my ($out, $err) = $s->wait($tag, 60);
	push @problems, "call $calls (cancelled): never became active" unless $active;
	push @problems, "call $calls (cancelled): no cancel error, stderr: " . ($err // 'none')
	  unless defined $err && $err =~ /canceling statement due to user request/;
	$s->query_ok("SET cache_ext.command_timeout = '200ms'");
	return;
}

# One round: 5 calls through up, hung, killed (or cancelled) and restarted Redis.
sub round
{
	my $n = shift;
	one_call('up', qr/^(HIT|MISS)/);
	$redis->pause;
	one_call('hung', qr/^BYPASS/);
	$redis->resume;
	one_call('resumed', qr/^(HIT|MISS)/);
	if ($n % 4 == 0)
	{
		$redis->pause;
		cancelled_call();
		$redis->resume;
	}
	else
	{
		$redis->kill9;
		one_call('down', qr/^BYPASS/);
		$redis->start;
	}
	one_call('restarted', qr/^(HIT|MISS)/);
	return;
}

sub fd_list
{
	my $p = shift;
	opendir(my $dh, "/proc/$p/fd") or return "cannot read /proc/$p/fd: $!";
	my @l = map { "$_ -> " . (readlink("/proc/$p/fd/$_") // '?') }
	  sort { $a <=> $b } grep { /^\d+$/ } readdir($dh);
	return join("\n", @l);
}

# Warm up with every kind of call once, so that whatever the backend opens
# once (relation files, the Redis socket, a wait set) is open already.
round(0);
round(1);
one_call('warm', qr/^HIT/);
my $fds_before = fd_count($pid);
my $list_before = fd_list($pid);
($calls, @problems) = (0);

my $t0 = time();
$redis->verbose(0);
round($_) for 1 .. 40;
$redis->verbose(1);
note sprintf('%d calls in %.1f s', $calls, time() - $t0);
is($calls, 200, '200 calls made');
is_deeply(\@problems, [], 'every call returned the right rows with the expected status');

one_call('final', qr/^HIT|^MISS/);
my $fds_after = fd_count($pid);
cmp_ok($fds_after, '<=', $fds_before + 2,
	"open descriptors of the backend do not grow ($fds_before before, $fds_after after)")
  or diag "before:\n$list_before\nafter:\n" . fd_list($pid);

my $info = $redis->cli('INFO', 'clients');
my ($clients) = $info =~ /^connected_clients:(\d+)/m;
# this backend, the outbox worker and the commit queue's worker (and redis-cli)
cmp_ok($clients, '<=', 4, 'Redis sees no pile of connections');
$s->quit;

# ---- Part 2: corrupted entries ----------------------------------------------

my $DIGEST = q{
local v = redis.call('GET', KEYS[1])
if v then return redis.sha1hex(v) else return 'nil' end
};

# Each case alters the value of the entry key.
my %corrupt = (
	'bytes flipped in the middle' => q{
		local v = redis.call('GET', KEYS[1])
		local n = math.floor(#v / 2)
		local s = ''
		for i = n + 1, math.min(n + 4, #v) do s = s .. string.char(255 - string.byte(v, i)) end
		redis.call('SETRANGE', KEYS[1], n, s)
		return #v },
	'one bit flipped near the end' => q{
		local v = redis.call('GET', KEYS[1])
		local n = #v - 3
		redis.call('SETRANGE', KEYS[1], n - 1, string.char(bit.bxor(string.byte(v, n), 1)))
		return #v },
	'truncated to two thirds' => q{
		local v = redis.call('GET', KEYS[1])
		redis.call('SET', KEYS[1], string.sub(v, 1, math.floor(#v * 2 / 3)), 'KEEPTTL')
		return #v },
	'truncated to 8 bytes' => q{
		local v = redis.call('GET', KEYS[1])
		redis.call('SET', KEYS[1], string.sub(v, 1, 8), 'KEEPTTL')
		return #v },
	'replaced by garbage' => q{
		redis.call('SET', KEYS[1], 'this is not a cache_ext entry', 'KEEPTTL')
		return 1 },
	'replaced by an empty string' => q{
		redis.call('SET', KEYS[1], '', 'KEEPTTL')
		return 1 },
	'trailing bytes appended' => q{
		return redis.call('APPEND', KEYS[1], 'trailing garbage') },
);

$redis->cli('FLUSHALL');
call_is($node, $call, qr/^MISS/, $expected, 'empty Redis: MISS');
# (the standby lease, <prefix>s<server>:lease, has a TTL too)
my @entries = grep { $redis->cli('TTL', $_) > 0 } $redis->scan_keys('cache_ext:*:e:*');
is(scalar(@entries), 1, 'one entry (a key with a TTL) was stored')
  or diag "keys: @entries";
my $key = $entries[0] // 'cache_ext:none';

foreach my $case (sort keys %corrupt)
{
	# Start from a valid entry.
	my $r = cache_call($node, $call);
	$r = cache_call($node, $call) unless ($r->{status} // '') =~ /^HIT/;
	like($r->{status} // '', qr/^HIT/, "$case: a valid entry to start from");

	$redis->lua($corrupt{$case}, [$key]);
	my $bad = $redis->lua($DIGEST, [$key]);
	my $st0 = cache_stats($node);
	call_is($node, $call, qr/^MISS/, $expected, "$case");
	my $d = stats_delta($st0, cache_stats($node));
	# GETRANGE answers "" both for a missing key and for an empty value, and
	# no entry is ever empty: an empty value is read as "absent" (a plain
	# miss, then replaced), not as corrupt.  See docs/decisions.md.
	is($d->{corrupt}, $case =~ /empty string/ ? 0 : 1,
		"$case: counted in cache_stats.corrupt (unless read as absent)");
	isnt($redis->lua($DIGEST, [$key]), $bad, "$case: the bad value was deleted or replaced");
	call_is($node, $call, qr/^(HIT|MISS)/, $expected, "$case: the next call");
}

# A key of the wrong type: Redis answers with an error; still the right rows.
$redis->cli('DEL', $key);
$redis->cli('RPUSH', $key, 'a', 'b');
call_is($node, $call, qr/^(MISS|BYPASS)/, $expected, 'entry key holding a list');

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
$redis->stop;
done_testing();
