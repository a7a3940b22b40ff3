# test/t/091_query_stats_concurrency.pl - query-stats eviction under concurrency
#
# The eviction of cache_query_stats (usage with decay; decay and copy under
# the table's lock in shared mode, sort with no lock, removal under the
# exclusive lock, one evictor at a time through evict_lock) while many
# sessions add new texts, others read cache_query_stats and one resets it.
# No error, hang or crash, and the table never holds more than
# cache_ext.query_stats_max entries, with the much-called texts kept.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	'cache_ext.query_stats_max = 100', 'max_connections = 40'));
my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");

# a new text almost every call (one-off texts), and a few hot ones
my $add = q{\set r random(1, 100000)
SELECT n FROM cached_query(format('SELECT count(*) AS n FROM sales WHERE id <= %s', :r)) AS t(n bigint);
};
my $hot = q{\set h random(1, 5)
SELECT n FROM cached_query(format('SELECT count(*) AS n FROM sales WHERE id > %s', :h)) AS t(n bigint);
};
my $read = q{SELECT count(*), sum(calls) FROM cache_query_stats;
};
my $reset = q{SELECT cache_query_stats_reset();
};

$node->pgbench(
	'--no-vacuum --client=16 --jobs=4 --time=15',
	0, [qr{processed: \d+}], [qr{^$}],
	'eviction under 16 concurrent sessions: no error',
	{
		'992_add@70' => $add,
		'992_hot@20' => $hot,
		'992_read@9' => $read,
		'992_reset@1' => $reset,
	});

my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM cache_query_stats');
cmp_ok($n, '<=', 100, "the table holds at most query_stats_max entries ($n)");
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

# after the storm, a quiet fill: the hot texts survive a flood of one-offs
$node->safe_psql('postgres', 'SELECT cache_query_stats_reset()');
$node->pgbench('--no-vacuum --client=8 --jobs=2 --transactions=400', 0,
	[qr{processed: 3200}], [qr{^$}], 'a second storm', { '992_add2@80' => $add, '992_hot2@20' => $hot });
my $hot_left = $node->safe_psql('postgres',
	q{SELECT count(*) FROM cache_query_stats WHERE query LIKE '%id > %'});
is($hot_left, 5, 'the 5 hot texts are all in the table after the flood');

$node->stop;
done_testing();
