# test/t/245_cluster_tls.pl - cache_ext through a Redis Cluster over TLS
# only (rediss-cluster://, issue 13)
#
# Three masters, no replica (CacheExt::RedisCluster with tls => the
# CacheExt::TLS PKI): every node listens with TLS only (--port 0), requires
# a client certificate signed by the test CA (--tls-auth-clients yes) and a
# password, and uses TLS on the cluster bus.  cache_ext.redis_url names two
# of them as seeds; cache_ext.tls_ca_file, tls_cert_file, tls_key_file and
# redis_password_file are set.
#
#   1. a MISS then a HIT over TLS; an UPDATE invalidates (a MISS with the
#      new value); cache_health says cluster and names the slot's master
#   2. a second database, in another slot: both work
#   3. nothing listens in clear: a plain RESP PING gets no PONG, and a
#      redis-cluster:// URL (no TLS) is a BYPASS that says why
#   4. a wrong CA, and a client certificate of another CA: BYPASS with a
#      clear cache_health().last_error, never an error to the caller
#   5. the first database's slot migrated to another master over TLS:
#      every key moved first (MIGRATE over TLS; ASK followed over a TLS
#      connection of its own: a hit), then the slot (MOVED): never a stale
#      hit, then hits; an UPDATE invalidates there
#   6. a password rotation: requirepass changed on every node, the
#      password file rewritten; the open connection keeps working, new
#      connections (seeds asked for the map, the master) read the new
#      password; a wrong one is an auth failure, a BYPASS
#   7. twelve databases through the one cluster URL (each an outbox target:
#      0.8 held 8): each misses, hits and is invalidated

use strict;
use warnings FATAL => 'all';

use IO::Socket::INET;
use IO::Select;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::RedisCluster;
use CacheExt::TLS;
use CacheExt::Util ();

my $t0 = time();

# cache_ext_node asks its Redis for a URL
{
	package ClusterSeeds;
	sub new { my ($c, $scheme, @seeds) = @_; return bless { scheme => $scheme, seeds => \@seeds }, $c; }
	sub url { my $s = shift; return "$s->{scheme}://" . join(',', map { $_->address } @{ $s->{seeds} }); }
}

my $pki = CacheExt::TLS::make_pki();
my $rc = CacheExt::RedisCluster->new(masters => 3, replicas => 0, node_timeout => 1500,
	name => 'rct', tls => $pki, auth_clients => 'yes', password => 'old-pw');
my @masters = $rc->masters;
my $seeds = ClusterSeeds->new('rediss-cluster', @masters[0, 1]);
note sprintf('cluster up: %.1f s', time() - $t0);

my $pwdir = PostgreSQL::Test::Utils::tempdir('secrets');
my $pwfile = "$pwdir/redis.pw";

sub write_pw
{
	my ($pw) = @_;
	open(my $fh, '>', $pwfile) or die "$pwfile: $!";
	print $fh "$pw\n";
	close($fh);
	chmod(0600, $pwfile);
	return;
}
write_pw('old-pw');

my $node = cache_ext_node('main', $seeds, extra_conf => join("\n",
	"log_statement = 'none'",
	# every hit from Redis, also in the l1 pass: the client is under test
	"cache_ext.local_cache_size = 0",
	"cache_ext.tls_ca_file = '$pki->{ca_crt}'",
	"cache_ext.tls_cert_file = '$pki->{client_crt}'",
	"cache_ext.tls_key_file = '$pki->{client_key}'",
	"cache_ext.redis_password_file = '$pwfile'",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '1s'",
	"cache_ext.invalidation_timeout = '1s'",
	"cache_ext.retry_interval = '200ms'"));

# ---- 1. hit, miss, invalidation over TLS --------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE d2');
$node->safe_psql('postgres', q{
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
my $q = q{SELECT * FROM cached_query('SELECT sum(v)::int FROM kv') AS t(s int)};

# The value and the status (its first word) of one call, in a new session
# with $set's settings first.
sub call
{
	my ($db, $set) = @_;
	my $out = $node->safe_psql($db // 'postgres', ($set // '') . "$q; SELECT cache_status()");
	$out =~ s/\n(MISS|BYPASS|HIT).*/\n$1/s;
	return $out;
}

is(call(), "0\nMISS", 'TLS cluster: a miss');
is(call(), "0\nHIT", 'TLS cluster: then a hit');
$node->safe_psql('postgres', 'UPDATE kv SET v = 1 WHERE k = 1');
is(call(), "1\nMISS", 'TLS cluster: an UPDATE invalidates, a miss with the new value');
is(call(), "1\nHIT", 'TLS cluster: then a hit again');

sub db_tags
{
	my %t;
	for my $m ($rc->masters)
	{
		$t{$_} = 1 for map { /^cache_ext:\{([0-9a-f]{16})\}/ ? $1 : () } $m->cli('KEYS', '*');
	}
	return sort keys %t;
}
my ($tag1) = db_tags();
ok(defined $tag1, 'the keys carry the database\'s hash tag');
my $slot1 = $rc->keyslot("{$tag1}");
my $owner1 = $rc->node_for_slot($slot1);
is($node->safe_psql('postgres', 'SELECT redis_mode, redis_master, connected FROM cache_health()'),
	'cluster|' . $owner1->address . '|t', 'cache_health: cluster mode, the master of the slot');

# ---- 2. a second database -----------------------------------------------------

$node->safe_psql('d2', q{
	CREATE EXTENSION cache_ext;
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 5 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
is(call('d2'), "50\nMISS", 'second database: a miss');
is(call('d2'), "50\nHIT", 'second database: a hit');
my ($tag2) = grep { $_ ne $tag1 } db_tags();
ok(defined $tag2, 'the second database has a tag of its own');
my $slot2 = $rc->keyslot("{$tag2}");
isnt($slot2, $slot1, "the two databases are in different slots ($slot1, $slot2)");
$node->safe_psql('d2', 'UPDATE kv SET v = 6 WHERE k = 1');
is(call('d2'), "51\nMISS", 'second database: invalidated');
is(call(), "1\nHIT", 'first database: still a hit');

# ---- 3. nothing listens in clear ----------------------------------------------

# A RESP PING in clear to a node's port: the TLS listener takes it for a
# bad handshake and closes; never a PONG.
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $owner1->port,
		Proto => 'tcp', Timeout => 5) or die "connect: $!";
	syswrite($sock, "*1\r\n\$4\r\nPING\r\n");
	my $got = '';
	my $sel = IO::Select->new($sock);
	my $deadline = time() + 5;
	while (time() < $deadline && $sel->can_read(0.5))
	{
		last unless sysread($sock, $got, 4096, length($got));
	}
	close($sock);
	unlike($got, qr/PONG/, 'a plain RESP PING to a node gets no PONG');
}
my $clear = "SET cache_ext.redis_url = '" . ClusterSeeds->new('redis-cluster', @masters[0, 1])->url . "';";
my ($ret, $out, $err) = $node->psql('postgres',
	"$clear $q; SELECT cache_status(); SELECT last_error FROM cache_health()");
is($ret, 0, 'redis-cluster:// (no TLS) to TLS nodes: no error to the caller');
like($out, qr/^1\nBYPASS[^\n]*\n.*no Redis Cluster seed gave a slot map/s,
	'redis-cluster:// (no TLS) to TLS nodes: a bypass that says why')
  or diag $out;
note "in clear: $out";

# ---- 4. a wrong CA, a client certificate of another CA ------------------------

($ret, $out, $err) = $node->psql('postgres',
	"SET cache_ext.tls_ca_file = '$pki->{other_ca_crt}'; $q; SELECT cache_status(); "
	  . "SELECT last_error_kind, last_error FROM cache_health()");
is($ret, 0, 'wrong CA: no error to the caller');
like($out, qr/^1\nBYPASS[^\n]*\ntls_verify\|.*TLS certificate verification failed/s,
	'wrong CA: a bypass, cache_health says the certificate was not verified')
  or diag $out;
unlike($err, qr/ERROR/, 'wrong CA: a warning at most');

($ret, $out, $err) = $node->psql('postgres',
	"SET cache_ext.tls_cert_file = '$pki->{other_client_crt}'; "
	  . "SET cache_ext.tls_key_file = '$pki->{other_client_key}'; $q; SELECT cache_status(); "
	  . "SELECT last_error FROM cache_health()");
is($ret, 0, 'client certificate of another CA: no error to the caller');
like($out, qr/^1\nBYPASS[^\n]*\n.*TLS/s,
	'client certificate of another CA: a bypass, cache_health says TLS failed')
  or diag $out;
note "other client certificate: $out";
is(call(), "1\nHIT", 'with the right settings again: a hit');

# ---- 5. a slot migration over TLS (MOVED) ------------------------------------

# until_hit: CacheExt::Util's, with this file's call()
sub until_hit { return CacheExt::Util::until_hit(\&call, @_[0 .. 2], 20); }

my $t5 = time();
my ($dest) = grep { $_->port != $owner1->port } $rc->masters;
my $nkeys = $owner1->cli('CLUSTER', 'COUNTKEYSINSLOT', $slot1);
# every key on the importing node, the slot still the source's: every
# command gets ASK, so a hit proves that ASK was followed, over a TLS
# connection of its own (with the client certificate and the password)
$rc->migrate_slot($slot1, $owner1, $dest, stop => 'migrating');
$rc->_move_keys($slot1, $owner1, $dest);
is($dest->cli('CLUSTER', 'COUNTKEYSINSLOT', $slot1), $nkeys,
	"the slot's $nkeys keys moved to the importing node (MIGRATE over TLS)");
is(call(), "1\nHIT", 'every key on the importing node: a hit through ASK over TLS');
$rc->finish_migration($slot1, $owner1, $dest);
is($rc->node_for_slot($slot1)->port, $dest->port, 'the slot moved');
until_hit('postgres', 1, 'after the migration (MOVED)');
$node->safe_psql('postgres', 'UPDATE kv SET v = 2 WHERE k = 1');
is(call(), "2\nMISS", 'after the migration, an UPDATE invalidates');
is(call(), "2\nHIT", 'then a hit');
is($node->safe_psql('postgres', 'SELECT redis_master FROM cache_health()'),
	$dest->address, 'cache_health names the new master of the slot');
note sprintf('section 5: %.1f s', time() - $t5);

# ---- 6. a password rotation --------------------------------------------------

my $t6 = time();
my $b = $node->background_psql('postgres', on_error_stop => 0);
$b->query_safe('SET cache_ext.retry_interval = 0');
$b->query_safe($q);
like($b->query_safe("$q; SELECT cache_status()"), qr/^2\nHIT/, 'rotation: a hit with the first password');
for my $m ($rc->nodes)
{
	$m->cli('CONFIG', 'SET', 'requirepass', 'new-pw');
	$m->{params}{password} = 'new-pw';
}
write_pw('new-pw');
like($b->query_safe("$q; SELECT cache_status()"), qr/^2\nHIT/,
	'rotation: the open connection keeps working');
$_->cli('CLIENT', 'KILL', 'TYPE', 'normal') for $rc->nodes;
like($b->query_safe("$q; SELECT cache_status()"), qr/^2\nHIT/,
	'rotation: a new connection reads the new password from the file');
is(call(), "2\nHIT", 'rotation: a new session too');
$node->safe_psql('postgres', 'UPDATE kv SET v = 3 WHERE k = 1');
is(call(), "3\nMISS", 'rotation: an UPDATE invalidates with the new password');
write_pw('wrong-pw');
$_->cli('CLIENT', 'KILL', 'TYPE', 'normal') for $rc->nodes;
# (query, not query_safe: the WARNING on stderr is expected)
$out = $b->query("$q; SELECT cache_status(); SELECT last_error_kind FROM cache_health()");
like($out, qr/^3\nBYPASS[^\n]*\nauth$/s, 'rotation: a wrong password is an auth failure, a bypass');
unlike($out, qr/wrong-pw|new-pw|old-pw/, 'rotation: no password in a message');
$b->quit;
note sprintf('section 6: %.1f s', time() - $t6);

# ---- 7. more databases than 0.8's 8 outbox targets ----------------------------
# With a cluster URL each database is an outbox target of its own; 0.8's
# table held 8, so a ninth database failed closed (no hits, its bumps lost).
# 0.9 holds OUTBOX_TARGETS = 32: twelve databases all hit and invalidate.
my $t7 = time();
write_pw('new-pw');
$_->cli('CLIENT', 'KILL', 'TYPE', 'normal') for $rc->nodes;
my @dbs = map { "m$_" } 3 .. 12;
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION cache_ext;
		CREATE TABLE kv (k int PRIMARY KEY, v int);
		INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
		SELECT cache_track('kv');
	});
}
# (a database's first calls may bypass while its new target's server bump
# is delivered: fail closed; until_hit allows that, never a stale value)
for my $db (@dbs)
{
	until_hit($db, 0, "database $db of twelve: a hit");
	$node->safe_psql($db, 'UPDATE kv SET v = 7 WHERE k = 1');
	until_hit($db, 7, "database $db of twelve: invalidated, then a hit");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM cache_health() WHERE redis_mode = \'cluster\''), '1',
	'cache_health still answers');
note sprintf('section 7: %.1f s', time() - $t7);

$node->stop;
$rc->stop_all;
note sprintf('total: %.1f s', time() - $t0);
done_testing();
