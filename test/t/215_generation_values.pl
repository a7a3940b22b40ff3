# test/t/215_generation_values.pl - a bump never writes a value used before
#
# A generation is valid only while it holds the value an entry recorded, so
# a bump must write a value never used before: a repeated value could make
# an entry computed before a commit valid again.  Since issue 12 a value is
# a 96-bit random nonce, drawn once per process, and a counter (drawing 128
# random bits per bump cost 8-10 us of every tracked commit).  What could go
# wrong with that, and is checked here: successive bumps of one backend
# repeating a value; two backends repeating each other's values (as they
# would if every backend used the nonce it inherited from the postmaster,
# which draws one for the incarnation token); a restarted server repeating
# the values of the one before.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
# Each backend sending its own bumps (the round trip at commit): the nonce
# is per process.  The commit queue's worker (0.5's default) is one process
# with one nonce; its values are checked at the end.
my $node = cache_ext_node('main', $redis,
	extra_conf => 'cache_ext.async_invalidation = off');
sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $oid = $node->safe_psql('postgres', "SELECT 'sales'::regclass::oid");
my @gen = $redis->scan_keys("*:g:t:$oid");
is(scalar(@gen), 1, 'the table generation key of sales exists');
my $key = $gen[0];

my %seen;
my $repeats = 0;

# One UPDATE of sales, committed, in a new backend or in session $s; the
# value the commit bumped the table generation to.
sub bump
{
	my ($s) = @_;
	my $sql = 'UPDATE sales SET amount = amount + 1 WHERE id = 1';
	if ($s) { $s->query_ok($sql); }
	else { $node->safe_psql('postgres', $sql); }
	my $v = $redis->cli('GET', $key);
	$repeats++ if $seen{$v}++;
	return $v;
}

# ---- one backend, successive commits
my $s = CacheExt::Session->new($node);
my @mine = map { bump($s) } 1 .. 5;
like($_, qr/^[0-9a-f]{32}$/, "value $_ is 32 hex digits") for @mine[0, 4];
is(scalar(keys %{ { map { $_ => 1 } @mine } }), 5, 'five commits of one backend: five values');
$s->quit;

# ---- fresh backends, one bump each: an inherited nonce would give each the
# same first value
my @fresh = map { bump(undef) } 1 .. 3;
is(scalar(keys %{ { map { $_ => 1 } @fresh } }), 3, 'three new backends, one commit each: three values');
isnt(substr($fresh[0], 0, 24), substr($fresh[1], 0, 24), 'two backends do not share a nonce');

# ---- the incarnation token and the values after a restart
my @tok = $redis->scan_keys('*:incarnation');
my $tok_before = @tok ? $redis->cli('GET', $tok[0]) : '';
$node->restart;
# a call checks the token (the first hit after a clean restart swaps it)
$node->safe_psql('postgres', q{SELECT * FROM cached_query('SELECT 1') AS t(x int)});
@tok = $redis->scan_keys('*:incarnation');
ok(@tok == 1, 'the incarnation token is in Redis');
isnt($redis->cli('GET', $tok[0]), $tok_before, 'a restart draws a new incarnation token');
my @after = map { bump(undef) } 1 .. 3;

# ---- the commit queue's worker sends the bumps: wait for each to land
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET cache_ext.async_invalidation; SELECT pg_reload_conf()');
$node->append_conf('postgresql.conf', 'cache_ext.async_invalidation = on');
$node->reload;
my $prev = $redis->cli('GET', $key);
my @queued;
for (1 .. 5)
{
	$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE id = 1');
	my $v = $prev;
	for (1 .. 200)
	{
		$v = $redis->cli('GET', $key);
		last if $v ne $prev;
		select(undef, undef, undef, 0.01);
	}
	isnt($v, $prev, 'the worker delivered the queued bump');
	$repeats++ if $seen{$v}++;
	push @queued, $v;
	$prev = $v;
}
is(scalar(keys %{ { map { $_ => 1 } @queued } }), 5, 'five queued commits: five values');
is($repeats, 0, 'no value repeated, across commits, backends, the restart and the worker');

$node->stop;
done_testing();
