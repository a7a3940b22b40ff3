# test/t/262_review15b.pl - adversarial review of application values and
# sessions (issue 15, review15b; see /work/review15b-findings.md)
#
# One server with an encryption key file (sessions sealed, values sealed),
# a second database owned by another tenant, and roles without any
# cache_ext membership.  Each block names its finding:
#
#   F1 (Medium, TODO: a design limit to document or remove): a Redis
#      writer replays an older sealed session under its own key: a
#      destroyed session comes back, an id rotated away works again (both
#      ids live), and an update's version number is handed out twice.
#   F2 (Medium, temporary tables fixed; GRANT ON DATABASE TODO): a role
#      with no cache_ext membership at all
#      (only PUBLIC's default TEMP) makes every value of the database
#      MISS (invalidated) with CREATE TEMP TABLE + GRANT, and a database
#      owner does it to every database of the server with GRANT ... ON
#      DATABASE (values depend on the database and server generations,
#      which those statements bump).
#   F3 (Low, TODO, documented): cache_invalidate_tag is PUBLIC: a role that may
#      not touch a restricted namespace invalidates its tagged values.
#   F4 (Medium, fixed: destroy_all walks the index until it is empty):
#      cache_session_destroy_all racing with
#      cache_session_rotate: the rotated session survives "logout
#      everywhere", and destroy_all says 0.
#   F5 (Low, fixed): a session whose TTL a Redis writer lengthened made
#      cache_sessions fail ("timestamp out of range") or show an expiry
#      centuries after the session's absolute deadline.
#   F6 (Low, fixed): cache_set refused a positive ttl with a negative
#      component ('1 day -1 hour').
#   F7 (Low, fixed): a lower cache_ext.max_entry_size in one session
#      (ALTER ROLE ... SET, a reload) makes every larger session and value
#      "corrupt": counted and deleted from Redis for everyone (a logout).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;

my $redis = CacheExt::Redis->new;
my $dir = PostgreSQL::Test::Utils::tempdir('secrets');
my $keyfile = "$dir/keys";
open(my $fh, '>', $keyfile) or die "$keyfile: $!";
print $fh ('7e' x 32) . "\n";
close($fh);
chmod(0600, $keyfile);

my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.encryption_key_file = '$keyfile'",
	"cache_ext.retry_interval = 0"));

sub sql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

# a statement as another role: (stdout, stderr)
sub as_role
{
	my ($role, $sql, $db) = @_;
	my ($rc, $out, $err) = $node->psql($db // 'postgres', $sql,
		extra_params => [ '-U', $role ]);
	return ($out, $err);
}

# role changes bump the server generation: make them all before any value
sql(q{
CREATE ROLE nobody LOGIN;
CREATE ROLE tenant LOGIN;
CREATE ROLE secr NOLOGIN;
CREATE DATABASE tenantdb OWNER tenant;
});
sql('CREATE EXTENSION cache_ext', 'tenantdb');
sql("SELECT cache_namespace_restrict('vault', 'secr')");

# the value reads back as a HIT (after a first contact's bump, if any)
sub value_hit
{
	my ($ns, $key, $db) = @_;
	return sql("SELECT cache_get('$ns', '$key'), cache_status()", $db);
}
# wait until values stick (a first contact bumps the server generation)
sub settle
{
	for (1 .. 100)
	{
		sql("SELECT cache_set('warmup', 'k', '0')");
		return 1 if value_hit('warmup', 'k') eq '0|HIT';
		usleep(50_000);
	}
	return 0;
}
ok(settle(), 'values stick');

my ($rc, $out, $err);

# ---- F2: an unprivileged role empties every value -------------------------
sql("SELECT cache_set('ratelimit', 'ip:1', '{\"left\": 3}')");
is(value_hit('ratelimit', 'ip:1'), '{"left": 3}|HIT', 'F2: a value is set');
(undef, $err) = as_role('nobody', 'SELECT cache_get(\'ratelimit\', \'ip:1\')');
like($err, qr/permission denied for function cache_get/,
	'F2: the role may not call the value functions');
(undef, $err) = as_role('nobody',
	'CREATE TEMP TABLE mine (a int); GRANT SELECT ON mine TO PUBLIC');
is($err, '', 'F2: it may GRANT on its own temporary table');
is(value_hit('ratelimit', 'ip:1'), '{"left": 3}|HIT',
	'F2: a GRANT on a temporary table leaves the values of the database alone');

sql("SELECT cache_set('ratelimit', 'ip:2', '{\"left\": 5}')");
is(value_hit('ratelimit', 'ip:2'), '{"left": 5}|HIT', 'F2: another value is set');
(undef, $err) = as_role('tenant', 'GRANT CONNECT ON DATABASE tenantdb TO PUBLIC', 'tenantdb');
is($err, '', 'F2: a database owner GRANTs on its own database');
TODO:
{
	local $TODO = 'F2: a GRANT on a database bumps the server generation (has_database_privilege may be in a cached query of any database); values depend on it (docs/values.md)';
	is(value_hit('ratelimit', 'ip:2'), '{"left": 5}|HIT',
		'F2: ... which leaves the values of the other databases alone');
}

# ---- F3: cache_invalidate_tag reaches a restricted namespace --------------
sql("SELECT cache_set('vault', 'k', '\"secret\"', tags => ARRAY['t-vault'])");
is(value_hit('vault', 'k'), '"secret"|HIT', 'F3: a tagged value of a restricted namespace');
(undef, $err) = as_role('nobody', "SELECT cache_get('vault', 'k')");
like($err, qr/permission denied/, 'F3: the role may not read it');
(undef, $err) = as_role('nobody', "SELECT cache_invalidate_tag('t-vault')");
TODO:
{
	local $TODO = 'F3: tags are the database\'s, not a namespace\'s: cache_invalidate_tag invalidates every value and result with the tag (docs/values.md)';
	is(value_hit('vault', 'k'), '"secret"|HIT',
		'F3: nor invalidate it through its tag');
}

# ---- F6: a positive ttl with a negative component ----------------------------
($rc, $out, $err) = $node->psql('postgres', "SELECT cache_set('ttl', 'k', '1', ttl => '1 day -1 hour')");
is("$out$err", 't', "F6: ttl '1 day -1 hour' is 23 hours");
my ($vkey) = grep { $redis->cli('PTTL', $_) > 22 * 3600 * 1000 } $redis->scan_keys('*:v:*');
ok(defined $vkey && $redis->cli('PTTL', $vkey) <= 23 * 3600 * 1000,
	'F6: and Redis has it for 23 hours');
($err) = ($node->psql('postgres', "SELECT cache_set('ttl', 'k', '1', ttl => '1 day -25 hours')"))[2];
like($err, qr/ttl must be between/, 'F6: a negative ttl is still refused');

# ---- F5: a lengthened TTL and cache_sessions ---------------------------------
my $sid = sql("SELECT cache_session_create('f5', '{}', max_lifetime => '1 hour')");
my @skeys = $redis->scan_keys('*:ss:*');
is(scalar(@skeys), 1, 'F5: one session');
$redis->cli('PEXPIRE', $skeys[0], '9223000000000000');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT expires <= created + interval '1 hour', version, expires::text <> '' FROM cache_sessions('f5')");
is("$rc $out $err", '0 t|1|t ', 'F5: listed, its expiry within its absolute deadline');
$redis->cli('PEXPIRE', $skeys[0], '9000000000000');
is(sql("SELECT expires <= created + interval '1 hour' FROM cache_sessions('f5')"), 't',
	'F5: also when the TTL is only absurdly long');
sql("SELECT cache_session_destroy('$sid')");

# ---- F7: a lower max_entry_size deletes what it cannot read ------------------
my $big = 'x' x 6000;
my $bid = sql("SELECT cache_session_create('f7', '{\"pad\": \"$big\"}')");
sql("SELECT cache_set('f7', 'k', '{\"pad\": \"$big\"}')");
is(sql("SET cache_ext.max_entry_size = '4kB';
		SELECT cache_session_get('$bid') IS NULL, cache_get('f7', 'k') IS NULL"), 't|t',
	'F7: a session with a lower cache_ext.max_entry_size cannot read them');
is(sql("SELECT length(cache_session_get('$bid')->>'pad'), length(cache_get('f7', 'k')->>'pad')"),
	'6000|6000', 'F7: ... but they are still there for the others');
sql("SELECT cache_session_destroy('$bid'), cache_delete('f7', 'k')");

# ---- F1: replayed sealed sessions -------------------------------------------
sub save_session   # GET the one session key's bytes into 'saved'
{
	my ($k) = @_;
	$redis->lua("redis.call('SET', 'saved', redis.call('GET', KEYS[1])) return 1", [$k]);
}
sub replay_session # SET the saved bytes back under the key, with a TTL
{
	my ($k) = @_;
	$redis->lua("redis.call('SET', KEYS[1], redis.call('GET', 'saved'), 'PX', 600000) return 1", [$k]);
}
my $rid = sql("SELECT cache_session_create('f1', '{\"role\": \"admin\"}')");
my @rkeys = $redis->scan_keys('*:ss:*');
is(scalar(@rkeys), 1, 'F1: one session in Redis');
my $rkey = $rkeys[0];
save_session($rkey);
is(sql("SELECT cache_session_update('$rid', '{\"role\": \"guest\"}')"), '2', 'F1: updated to version 2');
replay_session($rkey);
TODO:
{
	local $TODO = 'F1: Redis is trusted for freshness: document the limit, or keep a tombstone/version outside Redis';
	is(sql("SELECT cache_session_get('$rid')"), '{"role": "guest"}',
		'F1: a replayed version 1 is not served in place of version 2');
	is(sql("SELECT cache_session_update('$rid', '{\"role\": \"x\"}')"), '3',
		'F1: the next update gets version 3, never a version already handed out');
}
replay_session($rkey);
is(sql("SELECT cache_session_destroy('$rid')"), 't', 'F1: logout');
replay_session($rkey);
TODO:
{
	local $TODO = 'F1: a Redis writer resurrects a destroyed session';
	is(sql("SELECT cache_session_get('$rid') IS NULL"), 't', 'F1: a destroyed session stays destroyed');
}
my $nid = sql("SELECT cache_session_rotate('$rid')");
like($nid, qr/^[A-Za-z0-9_-]{43}$/, 'F1: rotated');
replay_session($rkey);
TODO:
{
	local $TODO = 'F1: a Redis writer makes an id rotated away work again';
	is(sql("SELECT cache_session_get('$rid') IS NULL"), 't', 'F1: the old id stays dead after rotation');
}
is(sql("SELECT count(*) FROM cache_sessions('f1')"), '1',
	'F1: the revived old id is not in the index: destroy_all cannot reach it');
$redis->cli('DEL', $rkey, 'saved');
sql("SELECT cache_session_destroy_all('f1')");

# ---- F4: destroy_all racing with rotate --------------------------------------
my $a = CacheExt::Session->new($node);
my $b = CacheExt::Session->new($node);
my $escaped = 0;
my $said_none = 0;
for my $round (1 .. 8)
{
	my $user = "racer$round";
	my $id = sql("SELECT cache_session_create('$user', '{}')");
	# rotate in a loop until the session is gone (or 300 times)
	my $tag = $a->send(qq{DO \$\$ DECLARE i text := '$id'; n int := 0; BEGIN
		LOOP i := cache_session_rotate(i); n := n + 1; EXIT WHEN i IS NULL OR n >= 300; END LOOP;
		END \$\$;});
	usleep(15_000);
	my ($n) = $b->query("SELECT cache_session_destroy_all('$user')");
	$a->wait($tag, 60);
	my $left = sql("SELECT count(*) FROM cache_sessions('$user')");
	$escaped++ if $left ne '0';
	$said_none++ if $left ne '0' && $n eq '0';
	sql("SELECT cache_session_destroy_all('$user')");
}
is($escaped, 0, 'F4: no session survives a cache_session_destroy_all made while it rotates');
note("F4: destroy_all said 0 while a session was alive in $said_none of 8 rounds");
$a->quit;
$b->quit;

done_testing();
