# test/t/211_restore.pl - a restored cold backup is detected
#
# Break 18 of issue 10: a cold backup of the data directory holds a state
# file that says "clean shutdown", and the control file agrees; after it is
# restored, cache_ext trusted Redis and served results computed from data
# the restored database no longer has.  Now each incarnation of the server
# has a token, written to the state file at a clean shutdown and swapped
# into Redis at the first contact: a restored copy's token is not the one
# Redis holds, so the server generation is bumped before any hit.

use strict;
use warnings FATAL => 'all';

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# In run-tests.sh's l1 pass (CE_L1) the local tier is on: the second call
# of an entry this server just stored is a local hit; after a restart (L1
# empty) the first hit comes from Redis in both passes, and after the
# restore no tier may serve the old result.
my $HIT = $ENV{CE_L1} ? qr/^HIT \(local\)$/ : qr/^HIT$/;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => "cache_ext.retry_interval = 0");
my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 5);
my $old = direct_rows($node, $Q, [5]);

call_is($node, $call, qr/^MISS/, $old, 'first call');
call_is($node, $call, $HIT, $old, 'second call');

# ---- a clean restart keeps the cache (same incarnation chain)
$node->restart;
call_is($node, $call, qr/^HIT$/, $old, 'after a clean restart the entry is served');

# ---- cold backup: the server stopped cleanly, its data directory copied
$node->stop;
my $pgdata = $node->data_dir;
my $backup = PostgreSQL::Test::Utils::tempdir() . '/cold';
system('cp', '-a', $pgdata, $backup) == 0 or die "copy failed";
ok(-f "$backup/cache_ext.state", 'the backup holds the state file of a clean shutdown');
$node->start;

# the database moves on: new data, a new entry in Redis
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 5 WHERE region = 5');
my $new = direct_rows($node, $Q, [5]);
isnt($new, $old, 'the update changed the result');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $new, 'the update invalidated the entry');
call_is($node, $call, $HIT, $new, 'the new entry is served');
$node->stop;

# ---- restore the cold backup: the old data, and a state file that looks clean
rmtree($pgdata);
system('cp', '-a', $backup, $pgdata) == 0 or die "restore failed";
chmod 0700, $pgdata;
my $log_offset = -s $node->logfile;
$node->start;
is(direct_rows($node, $Q, [5]), $old, 'the restored database has the old data');
call_is($node, $call, qr/^MISS/, $old,
	'after the restore, the entry computed from data it no longer has is not served');
like(slurp_file($node->logfile, $log_offset), qr/incarnation token in Redis is not the one/,
	'the restore is logged');
call_is($node, $call, qr/^HIT$/, $old, 'the cache works again');

# ---- a clean restart after that is still trusted
$node->restart;
call_is($node, $call, qr/^HIT$/, $old, 'a clean restart after the restore keeps the cache');

$node->stop;
done_testing();
