# test/t/244_cluster_wired.pl - cache_ext through a Redis Cluster
# (redis-cluster://, issue 13)
#
# Three masters with a replica each (CacheExt::RedisCluster) on loopback;
# cache_ext.redis_url names two of them as seeds.
#
#   1. URL and prefix errors: a cluster URL with a database number, with no
#      seed, and a key prefix with braces are refused (SQLSTATE 22023, a
#      hint); no key of a database lacks its hash tag
#   2. a MISS then a HIT through the cluster; an UPDATE invalidates (the
#      next call misses with the new value); cache_health says cluster and
#      names the master serving the database's slot
#   3. a second database: its keys in another slot, both work
#   4. the first database's slot migrated to another master mid-test:
#      half-way (MIGRATING/IMPORTING, some keys moved: ASK, TRYAGAIN), an
#      UPDATE during it, then finished (MOVED): no error, never a stale hit
#   5. CLUSTER FAILOVER of the second database's master: MOVED, then
#      correct service, a WARNING naming the new master
#   6. the first database's master killed (SIGKILL) and its replica
#      promoted: an UPDATE committed while it is down is kept in the
#      outbox and delivered once the replica serves the slot; never a
#      stale hit, then hits again
#  3b. one database's entries spread over every master (their own hash
#      tags), its generations in its slot: 40 results, hits, cache_purge
#      on every master; cache_ext.cluster_spread_entries = off keeps them
#      in the database's slot
#   7. the consistency checker (2 writers, 2 readers) while the first
#      database's slot migrates key by key (ASK, TRYAGAIN, MOVED) and then
#      while its new master is killed and its replica promoted: 0 stale
#      reads, 0 failed statements
#   8. a master holding entries (not the database's) killed: its entries
#      bypass, naming it, the other masters' entries still hit

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::RedisCluster;
use CacheExt::Checker;
use CacheExt::Util ();

my $t0 = time();

# cache_ext_node asks its Redis for a URL
{
	package ClusterSeeds;
	sub new { my ($c, @seeds) = @_; return bless { seeds => \@seeds }, $c; }
	sub url { my $s = shift; return 'redis-cluster://' . join(',', map { $_->address } @{ $s->{seeds} }); }
}

my $rc = CacheExt::RedisCluster->new(masters => 3, replicas => 1, node_timeout => 1500);
my @masters = $rc->masters;
# every node a seed: the later sections kill masters, and a new session
# needs one live seed for its first slot map
my $seeds = ClusterSeeds->new($rc->nodes);
# sessions need a key; entries are then sealed too
my $keyfile = PostgreSQL::Test::Utils::tempdir('secrets') . '/keys';
open(my $kfh, '>', $keyfile) or die "$keyfile: $!";
print $kfh ('5c' x 32) . "\n";
close($kfh);
chmod(0600, $keyfile);
my $node = cache_ext_node('main', $seeds, extra_conf => join("\n",
	"cache_ext.encryption_key_file = '$keyfile'",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '500ms'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.invalidation_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));

# ---- 1. URL and prefix errors -------------------------------------------------

sub set_error
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return $err;
}

like(set_error(q{SET cache_ext.redis_url = 'redis-cluster://127.0.0.1:7000/0'}),
	qr/22023.*invalid value for parameter "cache_ext.redis_url".*no database number/s,
	'a cluster URL with a database number is refused');
like(set_error(q{SET cache_ext.redis_url = 'redis-cluster://'}),
	qr/22023.*The URL has no host/s, 'a cluster URL with no seed is refused');
like(set_error(q{SET cache_ext.redis_url = 'redis-cluster://h:1?db=2'}),
	qr/22023.*takes no query parameters/s, 'a cluster URL with a query is refused');
like(set_error(q{SET cache_ext.key_prefix = 'app{1}:'}),
	qr/22023.*invalid value for parameter "cache_ext.key_prefix".*no \{ or \}.*HINT:.*without braces/s,
	'a key prefix with braces is refused with a cluster URL');
like(set_error(q{SET cache_ext.redis_url = 'redis://127.0.0.1:1'; SET cache_ext.key_prefix = 'a{b}:'; SET cache_ext.redis_url = 'redis-cluster://127.0.0.1:1'}),
	qr/22023.*a Redis Cluster URL needs a cache_ext.key_prefix without \{ or \}.*HINT:/s,
	'a cluster URL is refused while the key prefix has braces');

# ---- 2. hit, miss, invalidation --------------------------------------------

# first: a new database bumps every target's server generation (pg_database)
$node->safe_psql('postgres', 'CREATE DATABASE d2');
$node->safe_psql('postgres', q{
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
my $q = q{SELECT * FROM cached_query('SELECT sum(v)::int FROM kv') AS t(s int)};

sub call
{
	my ($db) = @_;
	my $out = $node->safe_psql($db // 'postgres', "$q; SELECT cache_status()");
	$out =~ s/\n(MISS|BYPASS|HIT).*/\n$1/s;
	return $out;
}

is(call(), "0\nMISS", 'a miss through the cluster');
is(call(), "0\nHIT", 'then a hit');
$node->safe_psql('postgres', 'UPDATE kv SET v = 1 WHERE k = 1');
is(call(), "1\nMISS", 'an UPDATE invalidates: a miss with the new value');
is(call(), "1\nHIT", 'then a hit again');

# every key of the database carries its tag: all in one slot
sub db_keys
{
	my @k;
	push @k, $_->cli('KEYS', '*') for $rc->masters;
	return @k;
}
my @keys = db_keys();
my %tags = map { /^cache_ext:\{([0-9a-f]{16})(?:\.\d+)?\}/ ? ($1 => 1) : ('untagged' => 1) } @keys;
is_deeply([ sort keys %tags ], [ (keys %tags)[0] =~ /^[0-9a-f]{16}$/ ? (keys %tags)[0] : 'x' ],
	'every key of the database carries its hash tag') or diag explain \@keys;
# entries: the tag and a bucket (spread over the masters); the rest: the tag
my @ekeys = grep { /:e:/ } @keys;
ok(@ekeys && !(grep { !/^cache_ext:\{[0-9a-f]{16}\.\d{1,4}\}:e:[0-9a-f]+(:c:|$)/ } @ekeys)
	  && !(grep { !/:e:/ && !/^cache_ext:\{[0-9a-f]{16}\}/ } @keys),
	'an entry carries the tag and a bucket, every other key the tag alone') or diag explain \@keys;
my ($tag1) = keys %tags;
my $slot1 = $rc->keyslot("{$tag1}");
my $owner1 = $rc->node_for_slot($slot1);
is($node->safe_psql('postgres', 'SELECT redis_mode, redis_master FROM cache_health()'),
	'cluster|' . $owner1->address, 'cache_health: cluster mode, the master of the slot');

# ---- 3. a second database ------------------------------------------------------

$node->safe_psql('d2', q{
	CREATE EXTENSION cache_ext;
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 5 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
is(call('d2'), "50\nMISS", 'second database: a miss');
is(call('d2'), "50\nHIT", 'second database: a hit');
my ($tag2) = grep { $_ ne $tag1 } map { /^cache_ext:\{([0-9a-f]{16})\}/ ? $1 : () } db_keys();
ok(defined $tag2, 'the second database has a tag of its own');
my $slot2 = $rc->keyslot("{$tag2}");
isnt($slot2, $slot1, "the two databases are in different slots ($slot1, $slot2)");
$node->safe_psql('d2', 'UPDATE kv SET v = 6 WHERE k = 1');
is(call('d2'), "51\nMISS", 'second database: invalidated');
is(call(), "1\nHIT", 'first database: still a hit');

# values (a value and its namespace's generation) and a purge (SCAN on
# the database's master, whose slot holds every entry)
is($node->safe_psql('d2', q{SELECT cache_set('ns', 'k', '{"a": 1}'), cache_get('ns', 'k')}),
	't|{"a": 1}', 'second database: cache_set, then cache_get');
$node->safe_psql('d2', q{SELECT cache_delete_namespace('ns')});
is($node->safe_psql('d2', q{SELECT cache_get('ns', 'k') IS NULL}), 't',
	'second database: cache_delete_namespace invalidates');
cmp_ok($node->safe_psql('d2', 'SELECT cache_purge()'), '>=', 1,
	'second database: cache_purge deletes its entries');
is(call('d2'), "51\nMISS", 'second database: a miss after the purge');

# sessions: create, compare-and-set and rotate are Lua scripts naming a
# session and its user's index: one slot
my $sid = $node->safe_psql('postgres', q{SELECT cache_session_create('u1', '{"n": 1}')});
is($node->safe_psql('postgres', qq{SELECT cache_session_update('$sid', '{"n": 2}', 1)}), 2,
	'sessions: compare-and-set through the cluster');
my $sid2 = $node->safe_psql('postgres', qq{SELECT cache_session_rotate('$sid')});
is($node->safe_psql('postgres', qq{SELECT cache_session_get('$sid2')->>'n', cache_session_get('$sid') IS NULL}),
	'2|t', 'sessions: rotated (three keys in one script)');
is($node->safe_psql('postgres', q{SELECT cache_session_destroy_all('u1')}), 1,
	'sessions: the user\'s index');

# ---- 3b. one database's entries spread over the masters ----------------------

# 40 distinct results: their entries in buckets of their own, over every
# master; a lookup reads the entry from its master and the generations
# from the database's, in parallel
my $qk = q{SELECT * FROM cached_query('SELECT v + $1 FROM kv WHERE k = 1', %d) AS t(s int)};
sub callk
{
	my ($i) = @_;
	my $out = $node->safe_psql('postgres', sprintf($qk, $i) . '; SELECT cache_status()');
	$out =~ s/\n(MISS|BYPASS|HIT).*/\n$1/s;
	return $out;
}
my $v1 = $node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1');
my @firsts = map { callk($_) } 1 .. 40;
is(scalar(grep { $firsts[$_ - 1] eq ($v1 + $_) . "\nMISS" } 1 .. 40), 40, 'spread: 40 misses, right values');
my @seconds = map { callk($_) } 1 .. 40;
is(scalar(grep { $seconds[$_ - 1] eq ($v1 + $_) . "\nHIT" } 1 .. 40), 40, 'spread: then 40 hits')
  or diag explain \@seconds;
sub entries_by_master
{
	my %by;
	for my $m ($rc->masters)
	{
		$by{ $m->port } = [ grep { /^cache_ext:\{\Q$tag1\E\.\d+\}:e:/ } $m->cli('KEYS', '*') ];
	}
	return \%by;
}
my $by = entries_by_master();
my @holding = grep { @{ $by->{$_} } } keys %$by;
is(scalar(@holding), 3, 'spread: every master holds entries of the one database')
  or diag explain { map { $_ => scalar @{ $by->{$_} } } keys %$by };
my $nentries = 0;
$nentries += @{ $by->{$_} } for keys %$by;
is($node->safe_psql('postgres', 'SELECT cache_purge()'), $nentries,
	"spread: cache_purge deletes the entries of every master ($nentries)");
$by = entries_by_master();
is(scalar(map { @{ $by->{$_} } } keys %$by), 0, 'spread: no entry of the database is left');
is(callk(1), ($v1 + 1) . "\nMISS", 'spread: a miss after the purge');

# cache_ext.cluster_spread_entries = off: entries in the database's slot
$node->safe_psql('postgres', 'ALTER SYSTEM SET cache_ext.cluster_spread_entries = off; SELECT pg_reload_conf()');
$node->poll_query_until('postgres', 'SHOW cache_ext.cluster_spread_entries', 'off');
my @home_calls = map { callk($_) } (101 .. 110, 101 .. 110);
is(scalar(grep { /\nHIT$/ } @home_calls[ 10 .. 19 ]), 10, 'not spread: hits');
my $home3b = $rc->node_for_slot($slot1);
is(scalar(grep { /^cache_ext:\{\Q$tag1\E\}:e:/ } $home3b->cli('KEYS', '*')), 10,
	'not spread: the ten entries are in the database\'s slot, on its master');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET cache_ext.cluster_spread_entries; SELECT pg_reload_conf()');
$node->poll_query_until('postgres', 'SHOW cache_ext.cluster_spread_entries', 'on');

# per node health: six nodes, three masters answering PING, 16384 slots,
# the home master named
my $nodes = $node->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE role = 'master' AND online AND ping_ms >= 0),
	       sum(slots), string_agg(address, ',') FILTER (WHERE used = 'home'),
	       count(*) FILTER (WHERE role = 'replica' AND master IS NOT NULL)
	FROM cache_redis_nodes()});
is($nodes, '6|3|16384|' . $rc->node_for_slot($slot1)->address . '|3',
	'cache_redis_nodes: every node, the masters answer, the home master named');
is($node->safe_psql('postgres', q{SET cache_ext.redis_url = 'redis://127.0.0.1:1'; SELECT count(*) FROM cache_redis_nodes()}),
	'0', 'cache_redis_nodes: no rows without a cluster URL');

note sprintf('sections 1-3: %.1f s', time() - $t0);

# until_hit: CacheExt::Util's, with this file's call()
sub until_hit { return CacheExt::Util::until_hit(\&call, @_[0 .. 2], 30); }

# ---- 4. migration of the first database's slot -------------------------------

my $t4 = time();
# 3b purged the entry: stored again, for the hit through ASK below
until_hit('postgres', 1, 'before the migration');
my ($dest) = grep { $_->port != $owner1->port } $rc->masters;
$rc->migrate_slot($slot1, $owner1, $dest, keys => 3);
for my $i (1 .. 3)
{
	my ($v, $st) = split /\n/, call();
	is($v, 1, "half-migrated slot, call $i: the right value ($st)");
}
# every key on the importing node, the slot still the source's: every
# command gets ASK, so a hit proves that ASK (ASKING, then the command on
# the node named) was followed
$rc->_move_keys($slot1, $owner1, $dest);
is($owner1->cli('CLUSTER', 'COUNTKEYSINSLOT', $slot1), 0, 'every key left the source');
is(call(), "1\nHIT", 'every key on the importing node: a hit through ASK');
$node->safe_psql('postgres', 'UPDATE kv SET v = 2 WHERE k = 1');
for my $i (1 .. 3)
{
	my ($v, $st) = split /\n/, call();
	is($v, 2, "migrating slot, after an UPDATE, call $i: the new value ($st)");
	isnt($st, 'HIT', "migrating slot, after an UPDATE, call $i: not a hit of the old entry")
	  if $i == 1;
}
$rc->finish_migration($slot1, $owner1, $dest);
is($rc->node_for_slot($slot1)->port, $dest->port, 'the slot moved');
until_hit('postgres', 2, 'after the migration (MOVED)');
$node->safe_psql('postgres', 'UPDATE kv SET v = 3 WHERE k = 1');
is(call(), "3\nMISS", 'after the migration, an UPDATE invalidates');
is($node->safe_psql('postgres', 'SELECT redis_master FROM cache_health()'),
	$dest->address, 'cache_health names the new master of the slot');
note sprintf('section 4: %.1f s', time() - $t4);

# ---- 5. CLUSTER FAILOVER of the second database's master ---------------------

my $t5 = time();
my $log_offset = -s $node->logfile;
my $owner2 = $rc->node_for_slot($slot2);
my ($rep2) = $rc->replicas_of($owner2);
is(call('d2'), "51\nHIT", 'second database: a hit before the failover');
$rc->failover($rep2);
is($rc->node_for_slot($slot2)->port, $rep2->port, 'the replica serves the slot');
$node->safe_psql('d2', 'UPDATE kv SET v = 7 WHERE k = 1');
my ($v5) = split /\n/, call('d2');
is($v5, 52, 'after CLUSTER FAILOVER: the new value, never the old one');
until_hit('d2', 52, 'after CLUSTER FAILOVER');
ok($node->wait_for_log(qr/found a new Redis master: \Q@{[$rep2->address]}\E/, $log_offset),
	'a WARNING names the new master');
note sprintf('section 5: %.1f s', time() - $t5);

# ---- 6. the first database's master killed, its replica promoted -------------

my $t6 = time();
until_hit('postgres', 3, 'before the kill');
my $owner6 = $rc->node_for_slot($slot1);
my ($rep6) = $rc->replicas_of($owner6);
$rc->kill9($owner6);
# committed while the master is down: the bump waits in the outbox
$node->safe_psql('postgres', 'UPDATE kv SET v = 4 WHERE k = 1');
my $depth = $node->safe_psql('postgres', 'SELECT outbox_depth FROM cache_health()');
cmp_ok($depth, '>', 0, "the invalidation is held in the outbox while the master is down ($depth keys)");
my ($v6, $st6) = split /\n/, call();
is($v6, 4, "master down: the new value ($st6)");
# the replica takes over once the cluster sees the master fail
my $deadline = time() + 30;
usleep(200_000) until time() > $deadline
  || (eval { $rc->role($rep6, $rep6) } // '') eq 'master';
is($rc->role($rep6, $rep6), 'master', 'the replica was promoted');
until_hit('postgres', 4, 'after the promotion');
is($node->safe_psql('postgres', 'SELECT outbox_depth, pending_invalidations FROM cache_health()'),
	'0|0', 'the outbox was delivered');
is($rep6->cli('EXISTS', (grep { /:g:t:/ } $rep6->cli('KEYS', "cache_ext:{$tag1}:g:t:*"))[0] // 'x'), 1,
	'the table generation is on the new master');
note sprintf('section 6: %.1f s', time() - $t6);

# ---- 7. the checker across a migration and a failover -------------------------

my $t7 = time();
# the killed master comes back as its successor's replica (empty)
$rc->restart($owner6);
$rc->wait_ok;
my $c = CacheExt::Checker->new(node => $node, writers => 2, readers => 2, rows => 6);
note 'checker seed ' . $c->seed;
$c->setup;
my $S = 3;
my ($from7, $to7);
$c->run_phase('normal', $S);
my $bych = entries_by_master();
my $nch = grep { @{ $bych->{$_} } } keys %$bych;
cmp_ok($nch, '>=', 2, "checker: the entries it reads live on several masters ($nch)");
$c->run_phase('migration', $S, tail => $S, steps => [
	{ at => 1, name => 'migrate half the keys', do => sub {
		$from7 = $rc->node_for_slot($slot1);
		# a master that has a replica, for the failover that follows
		($to7) = grep {
			my @r = $rc->replicas_of($_);
			$_->port != $from7->port && @r
		} $rc->masters;
		$c->mark('migration_begin');
		my $nkeys = $from7->cli('CLUSTER', 'COUNTKEYSINSLOT', $slot1);
		$rc->migrate_slot($slot1, $from7, $to7, keys => int($nkeys / 2) || 1);
	} },
	{ after => 1, name => 'finish the migration', do => sub {
		$rc->finish_migration($slot1, $from7, $to7);
		$c->mark('migration_done');
	} },
]);
my $killed7;
$c->run_phase('failover', $S, tail => $S, steps => [
	{ at => 1, name => 'kill -9 the master', do => sub {
		$killed7 = $rc->node_for_slot($slot1);
		$c->mark('kill');
		$rc->kill9($killed7);
	} },
	{ after => 0, name => 'a replica is promoted', timeout => 30,
	  until => sub {
		my $n = eval { $rc->node_for_slot($slot1, ($rc->masters)[0]) };
		return $n && $n->port != $killed7->port;
	  },
	  do => sub { $c->mark('promoted'); } },
]);
$c->run_phase('after', $S);
$c->stop;

my $r = $c->check;
my @phases = qw(normal migration failover after);
for my $ph (@phases)
{
	my $h = $r->{phases}{$ph};
	note sprintf('%-10s reads %4d hits %4d misses %4d bypasses %4d commits %4d viol %d errs %d',
		$ph, $h->{reads}, $h->{hits}, $h->{misses}, $h->{bypasses}, $h->{commits},
		$h->{violations}, $h->{sql_errors_reader} + $h->{sql_errors_writer} + $h->{sql_errors_monitor});
}
my @viol = map { @{ $r->{violations}{$_} // [] } } @phases;
diag "violation: $_" for @viol[ 0 .. ($#viol < 19 ? $#viol : 19) ];
for my $e (($c->errors)[ 0 .. 9 ])
{
	last unless $e;
	diag "SQL error ($e->{phase}, $e->{role}): $e->{sql}\n$e->{out}";
}
diag "failure: $_" for $c->failures;
is(scalar($c->failures), 0, 'checker: every scripted step ran in time');
is(scalar @viol, 0, 'checker: no stale read across the migration and the failover');
is(scalar($c->errors), 0, 'checker: no failed statement');
cmp_ok($r->{phases}{after}{hits}, '>', 0, 'checker: hits after the failover');
note sprintf('section 7: %.1f s', time() - $t7);

# ---- 8. a master holding entries down: BYPASS for them, others still hit -----

my $t8 = time();
my $v8 = $node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1');
callk($_) for 1 .. 40;
my @before8 = map { callk($_) } 1 .. 40;
is(scalar(grep { $before8[$_ - 1] eq ($v8 + $_) . "\nHIT" } 1 .. 40), 40, 'node down: 40 hits before');
my $home8 = $rc->node_for_slot($slot1);
my $by8 = entries_by_master();
my ($down8) = grep { $_->port != $home8->port && @{ $by8->{ $_->port } } } $rc->masters;
my %on_down = map { $_ => 1 } @{ $by8->{ $down8->port } };
# the other slots stay served once the cluster marks the node failed (by
# default a cluster with a slot uncovered answers CLUSTERDOWN for all)
for my $n ($rc->nodes)
{
	eval { $n->cli('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') };
}
# and the node's slots stay down (no replica promoted while the calls run)
for my $r ($rc->replicas_of($down8))
{
	eval { $r->cli('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes') };
}
$rc->kill9($down8);
my @during8 = map { callk($_) } 1 .. 40;
is(scalar(grep { (split /\n/, $during8[$_ - 1])[0] != $v8 + $_ } 1 .. 40), 0,
	'node down: every value right');
cmp_ok(scalar(grep { /\nBYPASS$/ } @during8), '>=', 1, 'node down: the entries it held bypass');
cmp_ok(scalar(grep { /\nHIT$/ } @during8), '>=', 40 - keys(%on_down) - 1,
	'node down: the entries of the other masters still hit') or diag explain \@during8;
like($node->safe_psql('postgres', sprintf($qk, 1) . '; SELECT cache_status()') . "\n" .
	  join("\n", map { $node->safe_psql('postgres', sprintf($qk, $_) . '; SELECT cache_status()') } 1 .. 40),
	qr/BYPASS: redis unavailable \(Redis Cluster node \Q@{[$down8->address]}\E/,
	'node down: the reason names the node');
my $nd = $node->safe_psql('postgres', sprintf(q{SELECT online FROM cache_redis_nodes() WHERE address = '%s'}, $down8->address));
ok($nd eq '' || $nd eq 'f', "cache_redis_nodes: the node killed is not online ('$nd')");
note sprintf('section 8: %.1f s', time() - $t8);

$rc->stop_all;
note sprintf('total: %.1f s', time() - $t0);
done_testing();
