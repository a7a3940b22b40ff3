# test/t/150_acl.pl - cache_ext as a Redis ACL user with exactly the documented rights
#
# docs/operations.md ("An ACL user for cache_ext") lists the commands
# cache_ext sends and gives the ACL SETUSER line for its user.  That line is
# read from the document (so that the test follows it) and run as the
# default user, with our own user name and a random password; the node's
# cache_ext.redis_url logs in as that user.  Everything cache_ext does must
# then work without a single NOPERM: MISS and HIT, a tracked table's
# invalidation at commit, cache_purge(), cache_explain() (with the entry's
# TTL), cache_health() (INFO allowed: no "INFO refused" warning), and the
# outbox delivered after Redis was hung at a commit.  Redis's ACL LOG stays
# empty and cache_stats counts no errors (but the ones the hung Redis causes).
#
# Then, each in its own session (the URL given as a connection option, so
# that no statement or reload puts it in the server log):
#   - a user without +info: calls bypass (no hit from a server that does not
#     say its run_id, 0.6), cache_health() warns "INFO refused";
#   - a wrong password: BYPASS with "AUTH failed", and the password appears
#     neither in the server log nor in cache_status() nor cache_health();
#   - a user whose key pattern excludes the prefix: NOPERM, the call runs
#     uncached with the right rows, and nothing crashes.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# every command must reach Redis as the ACL user (NOPERM checks).
delete $ENV{CE_L1};

# ---- the documented ACL line ------------------------------------------------

my $doc_path = ($ENV{TESTDIR} // '.') . '/docs/operations.md';
$doc_path = 'docs/operations.md' unless -f $doc_path;
my $doc = slurp_file($doc_path);
my ($section) = $doc =~ /^### An ACL user for cache_ext\n(.*?)^##/ms
  or BAIL_OUT("no section \"An ACL user for cache_ext\" in $doc_path");
my ($acl_line) = $section =~ /^(ACL SETUSER .*)$/m
  or BAIL_OUT("no ACL SETUSER line in that section of $doc_path");
my @doc_words = split ' ', $acl_line;
# ACL SETUSER <user> <rules...>
is_deeply([ @doc_words[ 0, 1 ] ], [ 'ACL', 'SETUSER' ], 'the documented line is an ACL SETUSER');
my @doc_rules = @doc_words[ 3 .. $#doc_words ];
ok((grep { $_ eq '>LONG-RANDOM-PASSWORD' } @doc_rules), 'the documented line sets a password');
ok((grep { $_ eq '~cache_ext:*' } @doc_rules), 'the documented line allows the default prefix');
ok((grep { $_ eq '+info' } @doc_rules), 'the documented line grants +info');
note "documented rules: @doc_rules";

sub random_password
{
	return join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
}

my $redis = CacheExt::Redis->new;
my $PORT = $redis->port;

# create_user($name, $password, sub { rules => edited rules }): the
# documented rules for $name with $password, edited by the optional sub.
sub create_user
{
	my ($name, $password, $edit) = @_;
	my @rules = map { $_ eq '>LONG-RANDOM-PASSWORD' ? ">$password" : $_ } @doc_rules;
	@rules = $edit->(@rules) if $edit;
	is($redis->cli('ACL', 'SETUSER', $name, @rules), 'OK', "ACL user $name created");
	return;
}

sub url_for
{
	my ($user, $password) = @_;
	return "redis://$user:$password\@127.0.0.1:$PORT/0";
}

# ACL LOG as a list of { reason, object, username } (redis-cli prints the
# entries' fields one per line, name then value).
sub acl_log
{
	my @lines = $redis->cli('ACL', 'LOG');
	my (@entries, $cur);
	for (my $i = 0; $i < @lines; $i++)
	{
		if ($lines[$i] eq 'count')
		{
			$cur = {};
			push @entries, $cur;
		}
		if ($cur && $lines[$i] =~ /^(reason|object|username|context)$/ && $i + 1 < @lines)
		{
			$cur->{$1} = $lines[ $i + 1 ];
			$i++;
		}
	}
	return @entries;
}

sub acl_log_text
{
	return join("\n", map { "reason=$_->{reason} object=$_->{object} user=$_->{username}" } @_);
}

my $USER = 'cacheuser';
my $PW = random_password();
create_user($USER, $PW);
is($redis->cli('ACL', 'LOG', 'RESET'), 'OK', 'ACL LOG emptied');

my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.redis_url = '" . url_for($USER, $PW) . "'",
	"cache_ext.retry_interval = 0",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '1s'",
	"cache_ext.invalidation_timeout = '300ms'"));

my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $total = sub { direct_rows($node, $Q, [ $_[0] ]) };
my $call = cq($Q, $COLS, 3);

# ---- the documented user: everything works ------------------------------------

my $rows = $total->(3);
call_is($node, $call, qr/^MISS$/, $rows, 'ACL user: first call');
call_is($node, $call, qr/^HIT$/, $rows, 'ACL user: second call');
my @entry_keys = $redis->scan_keys('cache_ext:*:e:*');
ok(@entry_keys >= 1, 'the entry was stored under the prefix');

# a tracked table's invalidation at commit
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $rows2 = $total->(3);
isnt($rows2, $rows, 'the update changed the result');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $rows2, 'ACL user: the commit invalidated the entry');
call_is($node, $call, qr/^HIT$/, $rows2, 'ACL user: HIT again');

# cache_explain(): GETRANGE, PTTL, MGET
my $ex = $node->safe_psql('postgres', 'SELECT cache_explain(' . sql_literal($Q) . ', 3)');
like($ex, qr/"entry": \{[^}]*"exists": true/, 'cache_explain: the entry exists');
like($ex, qr/"valid": true/, 'cache_explain: the entry is valid');
like($ex, qr/"ttl_ms": [1-9]\d*/, 'cache_explain: its TTL (PTTL allowed)');
unlike($ex, qr/NOPERM|unavailable/, 'cache_explain: no refusal') or diag $ex;

# cache_health(): PING and INFO
my $health = $node->safe_psql('postgres', q{
SELECT connected, coalesce(last_error, ''), coalesce(redis_version, ''),
       coalesce(array_to_string(warnings, ' | '), '')
FROM cache_health()});
my ($connected, $last_error, $version, $warnings) = split /\|/, $health, 4;
is($connected, 't', 'cache_health: connected');
isnt($version, '', 'cache_health: the Redis version (INFO answered)');
unlike($warnings, qr/INFO refused/, 'cache_health: no "INFO refused" warning');
unlike("$last_error $warnings", qr/NOPERM/, 'cache_health: no NOPERM');

# a tag, cache_invalidate_tag() and cache_flush(): generations set at commit
my $tq = 'SELECT * FROM cached_query_with(cache_opts(tags => ARRAY[\'acl_tag\']), '
  . sql_literal('SELECT count(*) FROM sales') . ') AS t(n bigint)';
call_is($node, $tq, qr/^MISS$/, '2000', 'ACL user: a tagged call');
call_is($node, $tq, qr/^HIT$/, '2000', 'ACL user: tagged HIT');
$node->safe_psql('postgres', "SELECT cache_invalidate_tag('acl_tag')");
call_is($node, $tq, qr/^MISS \(invalidated\)$/, '2000', 'ACL user: cache_invalidate_tag()');
$node->safe_psql('postgres', 'SELECT cache_flush()');
call_is($node, $tq, qr/^MISS \(invalidated\)$/, '2000', 'ACL user: cache_flush()');

# key-level tracking: per-key generations
$node->safe_psql('postgres', q{
CREATE TABLE acct (id int PRIMARY KEY, owner int NOT NULL, bal int NOT NULL);
INSERT INTO acct SELECT i, i % 5, i FROM generate_series(1, 50) AS i;
SELECT cache_track('acct', ARRAY['owner']);
});
my $KQ = 'SELECT sum(bal) FROM acct WHERE owner = $1';
my $kcall = cq($KQ, 'total bigint', 2);
my $k1 = direct_rows($node, $KQ, [2]);
call_is($node, $kcall, qr/^MISS$/, $k1, 'ACL user: key-level tracked call');
call_is($node, $kcall, qr/^HIT$/, $k1, 'ACL user: key-level HIT');
$node->safe_psql('postgres', 'UPDATE acct SET bal = bal + 1 WHERE id = 2');
my $k2 = direct_rows($node, $KQ, [2]);
call_is($node, $kcall, qr/^MISS \(invalidated\)$/, $k2, 'ACL user: its key invalidated at commit');

# cache_purge(): SCAN and UNLINK
call_is($node, cq($Q, $COLS, 4), qr/^MISS$/, $total->(4), 'ACL user: a second entry');
my $n_entries = scalar($redis->scan_keys('cache_ext:*:e:*'));
cmp_ok($n_entries, '>=', 2, 'two entries in Redis');
my ($purge_rc, $purged, $purge_err) = $node->psql('postgres', 'SELECT cache_purge()');
is($purge_rc, 0, 'cache_purge() succeeded') or diag $purge_err;
is($purged, $n_entries, 'cache_purge() deleted every entry');
is(scalar($redis->scan_keys('cache_ext:*:e:*')), 0, 'no entry left in Redis');
call_is($node, $call, qr/^MISS$/, $rows2, 'ACL user: MISS after the purge');
call_is($node, $call, qr/^HIT$/, $rows2, 'ACL user: and HIT');

my $stats = cache_stats($node);
is($stats->{errors}, 0, 'cache_stats: no Redis error so far');
is($stats->{bypasses}, 0, 'cache_stats: no bypass so far');
my @log = acl_log();
is(scalar(@log), 0, 'ACL LOG is empty so far') or diag acl_log_text(@log);

# ---- the outbox, delivered after a hung Redis -----------------------------------

$redis->pause;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
my $rows3 = $total->(3);
my $stats1 = cache_stats($node);
is($stats1->{pending_invalidations}, 1, 'Redis hung at commit: the bump waits in the outbox');
call_is($node, $call, qr/^BYPASS: /, $rows3, 'while Redis is hung: right rows, BYPASS');
$redis->resume;
call_is($node, $call, qr/^MISS \(invalidated\)$/, $rows3,
	'Redis back: the outbox is delivered (MSET) first, the old entry is not served');
is(cache_stats($node)->{pending_invalidations}, 0, 'the outbox is empty');
call_is($node, $call, qr/^HIT$/, $rows3, 'ACL user: hits resume');
my $stats2 = cache_stats($node);
$health = $node->safe_psql('postgres',
	q{SELECT coalesce(array_to_string(warnings, ' | '), '') FROM cache_health()});
unlike($health, qr/INFO refused|NOPERM/, 'cache_health after the outage: no refusal');
call_is($node, $call, qr/^HIT$/, $rows3, 'ACL user: HIT');
is(cache_stats($node)->{errors}, $stats2->{errors},
	'cache_stats: no Redis error once Redis is back');
note 'errors counted while Redis was hung: ' . ($stats2->{errors} - $stats->{errors});

@log = acl_log();
is(scalar(@log), 0, 'ACL LOG is empty: nothing cache_ext sent was refused')
  or diag acl_log_text(@log);
ok(!$node->log_contains('NOPERM'), 'no NOPERM in the server log');

# ---- a user without +info -------------------------------------------------------

# One session per call, with the URL as a connection option (PGOPTIONS):
# it is in no statement, so log_statement = all does not log it either.
sub call_as
{
	my ($url, $sql, $status_re, $rows, $name) = @_;
	local $ENV{PGOPTIONS} = "-c cache_ext.redis_url=$url";
	return call_is($node, $sql, $status_re, $rows, $name);
}

sub health_as
{
	my ($url) = @_;
	local $ENV{PGOPTIONS} = "-c cache_ext.redis_url=$url";
	my $h = $node->safe_psql('postgres', q{
SELECT connected, coalesce(last_error, ''), coalesce(array_to_string(warnings, ' | '), '')
FROM cache_health()});
	my ($conn, $err, $warn) = split /\|/, $h, 3;
	return ($conn, $err, $warn);
}

my $NOINFO = 'noinfo';
my $NOINFO_PW = random_password();
create_user($NOINFO, $NOINFO_PW, sub { grep { $_ ne '+info' } @_ });
is($redis->cli('ACL', 'LOG', 'RESET'), 'OK', 'ACL LOG emptied');
my $noinfo_url = url_for($NOINFO, $NOINFO_PW);
my $rows5 = $total->(5);
# (0.6: a server that does not say its run_id serves no hits: a restart
# from older data behind its address could not be seen)
call_as($noinfo_url, cq($Q, $COLS, 5), qr/^BYPASS: redis unavailable for hits \(INFO is refused/, $rows5,
	'without +info: BYPASS, with the reason');
call_as($noinfo_url, cq($Q, $COLS, 5), qr/^BYPASS: redis unavailable for hits \(INFO is refused/, $rows5,
	'without +info: BYPASS again, no hit');
my ($ni_conn, $ni_err, $ni_warn) = health_as($noinfo_url);
is($ni_conn, 't', 'without +info: cache_health connected');
like($ni_warn, qr/INFO refused \(NOPERM[^)]*\): no hits are served from this Redis, .*grant the cache_ext ACL user \+info/,
	'without +info: cache_health warns "INFO refused"');
@log = acl_log();
ok(@log > 0, 'without +info: Redis logged the refusals');
is_deeply([ grep { $_->{object} ne 'info' || $_->{username} ne $NOINFO } @log ], [],
	'without +info: INFO is the only command refused')
  or diag acl_log_text(@log);

# ---- a wrong password -----------------------------------------------------------

my $WRONG_PW = 'Wr0ng' . random_password();
my $wrong_url = url_for($USER, $WRONG_PW);
my $rows6 = $total->(6);
my $r = call_as($wrong_url, cq($Q, $COLS, 6), qr/^BYPASS: redis unavailable \(.*AUTH failed/,
	$rows6, 'wrong password: BYPASS, AUTH failed');
unlike($r->{status} // '', qr/\Q$WRONG_PW\E/, 'wrong password: not in cache_status()');
unlike($r->{err}, qr/\Q$WRONG_PW\E/, 'wrong password: not in any message to the client');
my ($wp_conn, $wp_err, $wp_warn) = health_as($wrong_url);
is($wp_conn, 'f', 'wrong password: cache_health not connected');
like($wp_err, qr/AUTH failed/, 'wrong password: cache_health last_error says AUTH failed');
unlike("$wp_err $wp_warn", qr/\Q$WRONG_PW\E/, 'wrong password: not in cache_health()');
@log = acl_log();
ok((grep { $_->{reason} eq 'auth' } @log), 'wrong password: Redis logged the failed AUTH')
  or diag acl_log_text(@log);

# ---- a key pattern that excludes the prefix ----------------------------------------

my $NOKEYS = 'otherkeys';
my $NOKEYS_PW = random_password();
create_user($NOKEYS, $NOKEYS_PW,
	sub { map { $_ eq '~cache_ext:*' ? '~someone_else:*' : $_ } @_ });
is($redis->cli('ACL', 'LOG', 'RESET'), 'OK', 'ACL LOG emptied');
my $nokeys_url = url_for($NOKEYS, $NOKEYS_PW);
my $n_before = scalar($redis->scan_keys('cache_ext:*:e:*'));
my $rows7 = $total->(7);
$r = call_as($nokeys_url, cq($Q, $COLS, 7), qr/^BYPASS: .*NOPERM/, $rows7,
	'keys outside the pattern: BYPASS with NOPERM');
note 'status: ' . ($r->{status} // '(none)');
$r = call_as($nokeys_url, cq($Q, $COLS, 7), qr/^BYPASS: .*NOPERM/, $rows7,
	'keys outside the pattern: again BYPASS');
is(scalar($redis->scan_keys('cache_ext:*:e:*')), $n_before, 'nothing was stored by that user');
like($node->safe_psql('postgres', 'SELECT cache_explain(' . sql_literal($Q) . ', 7)'),
	qr/"entry": \{"exists": false\}/, 'no entry for its call (cache_explain as the ACL user)');
@log = acl_log();
ok((grep { $_->{reason} eq 'key' && $_->{username} eq $NOKEYS } @log),
	'keys outside the pattern: Redis logged key refusals')
  or diag acl_log_text(@log);
{
	local $ENV{PGOPTIONS} = "-c cache_ext.redis_url=$nokeys_url";
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT cache_purge()');
	note "cache_purge() as that user: exit $ret, out '$out', err '$err'";
	unlike($err, qr/\Q$NOKEYS_PW\E/, 'keys outside the pattern: cache_purge() does not show the password');
	is(scalar($redis->scan_keys('cache_ext:*:e:*')), $n_before,
		'keys outside the pattern: cache_purge() deleted nothing');
	like($err, qr/could not purge the cache: .*NOPERM/,
		'keys outside the pattern: cache_purge() fails with NOPERM');
}

# the documented user still works after all this
# Each URL is its own target (src/outbox.c): the first contact of another
# user's URL may have delivered a server-generation bump this server owed
# (its first start counts as unclean), which invalidates the shared entries.
call_is($node, $call, qr/^(HIT|MISS \(invalidated\))$/, $rows3,
	'the documented user: served again');
call_is($node, $call, qr/^HIT$/, $rows3, 'the documented user: still HIT');

# ---- nothing leaked, nothing crashed ------------------------------------------------

my $server_log = slurp_file($node->logfile);
unlike($server_log, qr/\Q$WRONG_PW\E/, 'the wrong password is not in the server log');
unlike($server_log, qr/\Q$PW\E/, 'the ACL user\'s password is not in the server log');
unlike($server_log, qr/\Q$NOINFO_PW\E|\Q$NOKEYS_PW\E/, 'nor the other users\' passwords');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server still answers');

$node->stop;
$redis->stop;
done_testing();
