# test/t/270_sessions.pl - sessions in Redis (cache_session_*, docs/sessions.md)
#
# With cache_ext.encryption_key_file: sliding and absolute expiry; two
# conflicting updates, exactly one wins; concurrent updates without an
# expected version never share a version; rotation; logout everywhere; a
# restarted Redis (sessions gone, no error); a scan of Redis showing no
# plaintext, no id and no user id; a tampered value and a value copied to
# another session's key are refused and counted.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $USER = 'user-canary-4711';
my $DATA = 'data-canary-9f2e';

my $redis = CacheExt::Redis->new;
my $dir = PostgreSQL::Test::Utils::tempdir('secrets');
my $keyfile = "$dir/keys";
open(my $fh, '>', $keyfile) or die "$keyfile: $!";
print $fh ('5c' x 32) . "\n";
close($fh);
chmod(0600, $keyfile);

my $node = cache_ext_node('main', $redis,
	extra_conf => "cache_ext.encryption_key_file = '$keyfile'");

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub session_keys { return $redis->scan_keys('*:ss:*'); }

# ---- create, read; what Redis holds ----------------------------------------
my $id = sql("SELECT cache_session_create('$USER', '{\"secret\": \"$DATA\"}')");
like($id, qr/^[A-Za-z0-9_-]{43}$/, 'a session id: 256 bits as URL-safe base64');
is(sql("SELECT cache_session_get('$id')->>'secret'"), $DATA, 'the session reads back');

my @all = $redis->scan_keys('*');
my $dump = join("\n", @all);
foreach my $k (@all)
{
	my $type = $redis->cli('TYPE', $k);
	$dump .= "\n" . join("\n", $type eq 'set' ? $redis->cli('SMEMBERS', $k)
		: $type eq 'string' ? $redis->cli('GET', $k) : ());
	# DUMP too: the serialised form must not hold plaintext either
	$dump .= "\n" . $redis->cli('DUMP', $k);
}
my @skeys = session_keys();
is(scalar(@skeys), 1, 'one session key');
like($skeys[0], qr/:ss:[0-9a-f]{64}$/, 'the session key is a keyed hash');
is(scalar($redis->scan_keys('*:su:*')), 1, 'one user index');
unlike($dump, qr/\Q$DATA\E/, 'no session data in Redis in plaintext');
unlike($dump, qr/\Q$USER\E/, 'no user id in Redis');
unlike($dump, qr/\Q$id\E/, 'no session id in Redis');
unlike($dump, qr/\Q${\ substr($id, 0, 8)}\E/, 'not even the id prefix kept inside the session');
like($redis->cli('GETRANGE', $skeys[0], 0, 3), qr/^CXS1$/, 'the value is sealed (AES-256-GCM)');
my $ttl = $redis->cli('PTTL', $skeys[0]);
ok($ttl > 29 * 60 * 1000 && $ttl <= 30 * 60 * 1000, "the TTL is the idle timeout ($ttl ms)");
my ($idx) = $redis->scan_keys('*:su:*');
ok($redis->cli('PTTL', $idx) > 11 * 3600 * 1000, 'the user index expires after the lifetime');

# ---- sliding and absolute expiry -------------------------------------------
my $slide = sql("SELECT cache_session_create('u2', '1', '2 s', '1 min')");
my $capped = sql("SELECT cache_session_create('u2', '2', '2 s', '2.2 s')");
my $calm = sql("SELECT cache_session_create('u2c', '3', '8 s', '1 min')");
my $t0 = time();
my ($touched, $kept, $capped_alive_late) = (0, 1, 0);
while (time() - $t0 < 3.0)
{
	sleep(0.35);
	my ($v, $st) = split /\|/, sql("SELECT cache_session_get('$slide'), cache_session_status()");
	$kept = 0 unless defined $v && $v eq '1';
	$touched++ if $st eq 'FOUND (idle timeout extended)';
	my $c = sql("SELECT cache_session_get('$capped') IS NOT NULL");
	$capped_alive_late = 1 if $c eq 't' && time() - $t0 > 2.5;
}
ok($kept, 'read every 0.35 s, a session with a 2 s idle timeout lives past 3 s');
ok($touched >= 3, "its idle timeout was extended ($touched times)");
ok(!$capped_alive_late, 'reads do not extend a session past max_lifetime (2.2 s)');
is(sql("SELECT cache_session_get('$capped') IS NULL, cache_session_status()"), 't|ABSENT',
	'after its absolute deadline the session is gone');
# untouched for 3 s of its 8: extended; read again at once: no second write
is(sql("SELECT cache_session_get('$calm') IS NOT NULL, cache_session_status();
		SELECT cache_session_get('$calm') IS NOT NULL, cache_session_status()"),
	"t|FOUND (idle timeout extended)\nt|FOUND", 'a read soon after an extension does not write');
is(sql("SELECT cache_session_destroy_all('u2c')"), '1', 'destroyed');
sleep(2.3);
is(sql("SELECT cache_session_get('$slide') IS NULL"), 't', 'left idle for more than 2 s, it expires');
is(sql("SELECT count(*) FROM cache_sessions('u2')"), '0', 'the index is cleaned as it is read');
is(scalar($redis->scan_keys('*:su:*')), 1, 'the emptied index is gone from Redis');

# ---- concurrent updates --------------------------------------------------
my $cid = sql("SELECT cache_session_create('u3', '{\"n\": 0}')");
my $s1 = CacheExt::Session->new($node);
my $s2 = CacheExt::Session->new($node);
my $one_wins = 1;
for my $round (1 .. 10)
{
	my $v = sql("SELECT version FROM cache_sessions('u3')");
	my $t1 = $s1->send("SELECT cache_session_update('$cid', '{\"by\": 1}', $v)");
	my $t2 = $s2->send("SELECT cache_session_update('$cid', '{\"by\": 2}', $v)");
	my ($o1, $e1) = $s1->wait($t1, 30);
	my ($o2, $e2) = $s2->wait($t2, 30);
	my $wins = (($o1 // '') eq $v + 1) + (($o2 // '') eq $v + 1);
	my $losses = (($e1 // '') =~ /updated concurrently/) + (($e2 // '') =~ /updated concurrently/);
	if ($wins != 1 || $losses != 1)
	{
		$one_wins = 0;
		diag("round $round: [$o1|$e1] [$o2|$e2]");
	}
}
ok($one_wins, 'two updates with the same expected_version: exactly one wins, 10 rounds');
my (undef, $e) = $s1->query("\\set VERBOSITY verbose\nSELECT cache_session_update('$cid', '{}', 1)");
like($e, qr/40001/, 'the loser gets SQLSTATE 40001');

# without an expected version: no two updates get the same version
my $loop = "SELECT string_agg(cache_session_update('$cid', jsonb_build_object('i', g))::text, ',') FROM generate_series(1, 40) g";
my $t1 = $s1->send($loop);
my $t2 = $s2->send($loop);
my ($o1, $e1) = $s1->wait($t1, 60);
my ($o2, $e2) = $s2->wait($t2, 60);
is(($e1 // '') . ($e2 // ''), '', 'concurrent updates without an expected version all succeed');
my @versions = (split(/,/, $o1 // ''), split(/,/, $o2 // ''));
my %seen = map { $_ => 1 } @versions;
is(scalar(keys %seen), 80, 'the 80 updates got 80 distinct versions: none lost');
$s1->quit;
$s2->quit;

# ---- rotation ------------------------------------------------------------
my $rid = sql("SELECT cache_session_create('u4', '{\"cart\": [7]}')");
sql("SELECT cache_session_update('$rid', '{\"cart\": [8]}')");
my $rid2 = sql("SELECT cache_session_rotate('$rid')");
like($rid2, qr/^[A-Za-z0-9_-]{43}$/, 'rotation gives a new id');
isnt($rid2, $rid, 'another id');
is(sql("SELECT cache_session_get('$rid') IS NULL"), 't', 'the old id is dead');
is(sql("SELECT cache_session_get('$rid2')"), '{"cart": [8]}', 'the new id has the data');
is(sql("SELECT id_prefix || ' ' || version FROM cache_sessions('u4')"),
	substr($rid2, 0, 8) . ' 2', 'the index names the new session, version kept');

# ---- logout everywhere -----------------------------------------------------
my @ids = map { sql("SELECT cache_session_create('u5', '$_')") } (1 .. 3);
my $other = sql("SELECT cache_session_create('u6', '0')");
is(sql("SELECT count(*) FROM cache_sessions('u5')"), '3', 'three sessions listed');
is(sql("SELECT cache_session_destroy_all('u5')"), '3', 'destroy_all deletes the three');
is(sql("SELECT count(*) FROM unnest(ARRAY['" . join("','", @ids) . "']) i WHERE cache_session_get(i) IS NOT NULL"),
	'0', 'none of them reads');
is(sql("SELECT cache_session_get('$other')"), '0', 'another user keeps theirs');

# an index walked in several SSCAN batches (256 members a round trip)
sql("SELECT count(cache_session_create('u10', to_jsonb(g))) FROM generate_series(1, 700) g");
is(sql("SELECT count(*), count(DISTINCT id_prefix) FROM cache_sessions('u10')"), '700|700',
	'700 sessions listed, each once');
is(sql("SELECT cache_session_destroy_all('u10')"), '700', 'and all destroyed');
is(sql("SELECT count(*) FROM cache_sessions('u10')"), '0', 'none left');

# ---- tampered and swapped values -------------------------------------------
my $a = sql("SELECT cache_session_create('u7', '\"a\"')");
my %before = map { $_ => 1 } session_keys();
my $b = sql("SELECT cache_session_create('u7', '\"b\"')");
my ($bkey) = grep { !$before{$_} } session_keys();
%before = map { $_ => 1 } session_keys();
my $c = sql("SELECT cache_session_create('u7', '\"c\"')");
my ($ckey) = grep { !$before{$_} } session_keys();
ok($bkey && $ckey, 'found the keys of two new sessions');

my $s0 = cache_stats($node);
# c's value copied under b's key
$redis->lua("return redis.call('SET', KEYS[2], redis.call('GET', KEYS[1]), 'KEEPTTL')",
	[ $ckey, $bkey ]);
is(sql("SELECT cache_session_get('$b') IS NULL, cache_session_status()"),
	"t|CORRUPT: encrypted entry failed authentication",
	'a session copied to another key is refused');
is(sql("SELECT cache_session_get('$c')"), '"c"', 'the original still reads');
# one byte of c flipped
my $len = $redis->cli('STRLEN', $ckey);
$redis->cli('SETRANGE', $ckey, $len - 5, 'Z');
like(sql("SELECT cache_session_get('$c') IS NULL, cache_session_status()"),
	qr/^t\|CORRUPT: /, 'a tampered session is refused');
is(stats_delta($s0, cache_stats($node))->{corrupt}, 2, 'both counted in cache_stats.corrupt');
is($redis->cli('EXISTS', $ckey), '0', 'the refused value is deleted');
# a foreign value (not cache_ext's) under a session's key
$redis->cli('SET', $ckey, 'not a session', 'PX', '60000');
my ($rc, $out, $serr) = $node->psql('postgres',
	"SET cache_ext.sessions_strict = on; SELECT cache_session_get('$c')");
like($serr, qr/the session in Redis was refused/, 'strict: a foreign value raises');
is(sql("SELECT cache_session_get('$a')"), '"a"', 'other sessions are unaffected');

# ---- EVAL denied (a managed service's ACL) ---------------------------------
$redis->cli('ACL', 'SETUSER', 'default', '-eval');
my ($rc3, $out3, $err3) = $node->psql('postgres', "SELECT cache_session_create('u9', '1')");
like($err3, qr/could not create the session.*\n.*NOPERM/s,
	'without EVAL, create raises with the server\'s words');
is(sql("SELECT cache_session_get('$a')"), '"a"', 'without EVAL, reads still work');
is(sql("SELECT cache_session_destroy('$a')"), 't', 'and so does logout');
$redis->cli('ACL', 'SETUSER', 'default', '+eval');

# ---- Redis restarted -----------------------------------------------------
$a = sql("SELECT cache_session_create('u7', '\"a\"')");
$redis->restart;
my ($rc2, $out2, $err2) = $node->psql('postgres',
	"SELECT cache_session_get('$a') IS NULL, cache_session_status()");
is($err2, '', 'after a Redis restart, reading a session raises no error');
like($out2, qr/^t\|(ABSENT|UNAVAILABLE: .*)$/, 'and returns NULL (this Redis keeps nothing)');
is(sql("SELECT cache_session_get('$a') IS NULL, cache_session_status()"), 't|ABSENT',
	'the next read finds the session gone');
my $fresh = sql("SELECT cache_session_create('u8', '\"new\"')");
is(sql("SELECT cache_session_get('$fresh')"), '"new"', 'new sessions work after the restart');

done_testing();
