# test/t/210_outbox_targets.pl - the outbox belongs to the Redis it was meant for
#
# Break 17 of issue 10: with ALTER DATABASE ... SET cache_ext.redis_url, one
# database's undelivered invalidations were delivered to another database's
# Redis (whichever backend delivered the outbox first), and the first
# database then served stale hits.  Now each target (URL + key prefix) has
# its own outbox: a backend delivers and is blocked by its own target's
# items only.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# it checks which Redis target each database's outbox blocks and
# serves by statuses of calls that must reach that Redis.
delete $ENV{CE_L1};

my $redis_a = CacheExt::Redis->new;
my $redis_b = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis_a, extra_conf => join("\n",
	"cache_ext.retry_interval = 0",
	"cache_ext.invalidation_timeout = '300ms'",
	"cache_ext.command_timeout = '300ms'"));

# database "postgres" uses Redis A (the server default), database "other" Redis B
my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('postgres',
	"ALTER DATABASE other SET cache_ext.redis_url = '" . $redis_b->url . "'");
$node->safe_psql('other', q{
CREATE EXTENSION cache_ext;
CREATE TABLE sales (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT i, 1 + i % 10, (i * 37 % 1000) / 10.0 FROM generate_series(1, 2000) AS i;
SELECT cache_track('sales');
});

my $call = cq($Q, $COLS, 3);
my $rows_a = direct_rows($node, $Q, [3]);
my $rows_b = direct_rows($node, $Q, [3], dbname => 'other');

call_is($node, $call, qr/^MISS/, $rows_a, 'A: first call');
call_is($node, $call, qr/^HIT$/, $rows_a, 'A: second call');
call_is($node, $call, qr/^MISS/, $rows_b, 'B: first call', dbname => 'other');
call_is($node, $call, qr/^HIT$/, $rows_b, 'B: second call', dbname => 'other');
my $keys_b = scalar $redis_b->scan_keys('*:g*');

# ---- Redis A hung at a commit in "postgres": the bump waits in A's outbox
$redis_a->pause;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $after_a = direct_rows($node, $Q, [3]);
isnt($after_a, $rows_a, 'the update changed the result in "postgres"');

# "other" is not blocked by A's outbox, and does not take A's items
call_is($node, $call, qr/^HIT$/, $rows_b,
	'B: hits go on while A holds undelivered invalidations', dbname => 'other');
is(scalar $redis_b->scan_keys('*:g*'), $keys_b,
	"B received none of A's invalidations");
like($node->safe_psql('postgres', 'SELECT pending_invalidations FROM cache_stats'),
	qr/^[1-9]/, "A's bump is still pending after B's backend ran");

call_is($node, $call, qr/^BYPASS: /, $after_a, 'A still hung: bypass with the new rows');

# ---- A back: its own outbox is delivered to A before A serves a hit
$redis_a->resume;
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after_a,
	'A back: the old entry is not served');
call_is($node, $call, qr/^HIT$/, $after_a, 'A: hits resume');

# ---- and the other way round
$redis_b->pause;
$node->safe_psql('other', 'UPDATE sales SET amount = amount + 2 WHERE region = 3');
my $after_b = direct_rows($node, $Q, [3], dbname => 'other');
call_is($node, $call, qr/^HIT$/, $after_a, 'A: not blocked by B\'s outbox');
$redis_b->resume;
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after_b,
	'B back: its own invalidation was kept for B', dbname => 'other');

# ---- the table of targets is bounded: past 32 (OUTBOX_TARGETS; 8 before
# 0.9), calls bypass (fail closed)
my ($full, $wrong) = (0, 0);
for my $i (1 .. 33)
{
	my $r = cache_call($node, "SET cache_ext.key_prefix = 'p$i:';\n" . $call);
	$full++ if ($r->{status} // '') =~ /^BYPASS: pending invalidations \(too many Redis servers or key prefixes/;
	$wrong++ if $r->{rows} ne $after_a;
}
cmp_ok($full, '>=', 1, 'with more targets than shared memory holds, the extra ones bypass');
is($wrong, 0, 'and every call returned the right rows');
call_is($node, $call, qr/^(HIT|MISS)/, $after_a, 'a known target is still served');

# ---- a server-wide request (unclean shutdown) reaches every target
$node->stop('immediate');
$node->start;
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after_a,
	'after a crash A bumps its server generation');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $after_b,
	'and so does B, first seen after the crash', dbname => 'other');
call_is($node, $call, qr/^HIT$/, $after_b, 'B: hits resume', dbname => 'other');

$node->stop;
done_testing();
