# test/t/120_tls.pl - rediss://: verified TLS to Redis, and every way it can fail
#
# A throwaway CA issues server certificates for 127.0.0.1 (IP SAN) and for
# localhost (DNS SAN) and a client certificate (test/perl/CacheExt/TLS.pm).
# Three TLS-only redis-servers: A (127.0.0.1 certificate), B (localhost
# certificate), C (127.0.0.1 certificate, client certificates required).
#
# Checked: MISS then HIT with the right rows over TLS; a wrong CA, a host
# name or address the certificate does not name, a missing client
# certificate, bad client certificate settings: BYPASS with the reason in
# cache_status() and one WARNING, and never a plain-text attempt (the
# server's log shows exactly one failed handshake per attempt, and only
# TLS alerts); tls_verify = off connects with a WARNING once per session;
# settings changed in a session apply to the next call; descriptors and
# memory do not leak over failing handshakes, nor over a handshake
# cancelled while the server hangs; who may see and change the settings.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::TLS;
use CacheExt::Util;

# The local tier stays off here even in run-tests.sh's l1 pass (CE_L1):
# every call must go over TLS to Redis (MISS then HIT over TLS, and
# every handshake failure).
delete $ENV{CE_L1};

my $pki = CacheExt::TLS::make_pki();
my $redis_a = CacheExt::TLS->new(name => 'tls_ip', pki => $pki, server => 'ip');
my $redis_b = CacheExt::TLS->new(name => 'tls_name', pki => $pki, server => 'name');
my $redis_c = CacheExt::TLS->new(name => 'tls_auth', pki => $pki, server => 'ip',
	auth_clients => 'yes');

my $node = cache_ext_node('main', $redis_a, extra_conf => join("\n",
	"cache_ext.tls_ca_file = '$pki->{ca_crt}'",
	"cache_ext.connect_timeout = '5s'",
	"cache_ext.command_timeout = '5s'",
	"cache_ext.retry_interval = 0",
	# the background worker passes every standby_lease / 4: made rare, so
	# that its connections do not count as the backends' attempts
	"cache_ext.standby_lease = '10min'"));

my ($Q, $COLS) = sales_fixture($node);
my $expected = direct_rows($node, $Q, [3]);
my $call = cq($Q, $COLS, 3);
my $expected4 = direct_rows($node, $Q, [4]);
my $call4 = cq($Q, $COLS, 4);

# settings for one call, in a new session
sub with
{
	my (%set) = @_;
	return join('', map { "SET cache_ext.$_ = " . sql_literal($set{$_}) . ";\n" } sort keys %set);
}

# ---- verified TLS: MISS, then HIT --------------------------------------------

is($node->safe_psql('postgres', 'SHOW cache_ext.redis_url'), $redis_a->url,
	'rediss:// is accepted as cache_ext.redis_url');
call_is($node, $call, qr/^MISS/, $expected, 'TLS to 127.0.0.1: first call');
call_is($node, $call, qr/^HIT/, $expected, 'TLS to 127.0.0.1: second call');
cmp_ok(scalar($redis_a->scan_keys('cache_ext:*')), '>', 0,
	'the entry is in the TLS server');
is(scalar($redis_a->handshake_errors), 0, 'no failed handshake so far');

# a name, checked against the DNS SAN of server B (and sent as SNI)
call_is($node, with(redis_url => $redis_b->url('localhost')) . $call, qr/^MISS/, $expected,
	'TLS to localhost: first call');
call_is($node, with(redis_url => $redis_b->url('localhost')) . $call, qr/^HIT/, $expected,
	'TLS to localhost: second call');

# large replies: many TLS records per reply, data buffered inside OpenSSL
{
	my $from = cq('SELECT g, md5(g::text) AS h FROM generate_series(1, $1) AS g',
		'g int, h text', 40000);
	$from =~ s/^SELECT \* FROM //;
	my $big = "SELECT count(*), md5(string_agg(h, ',' ORDER BY g)) FROM $from";
	my $want = $node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(md5(g::text), ',' ORDER BY g)) FROM generate_series(1, 40000) AS g");
	my $set = "SET cache_ext.max_entry_size = '16MB';\n";
	call_is($node, $set . $big, qr/^MISS/, $want, 'a 2 MB result over TLS: MISS');
	call_is($node, $set . $big, qr/^HIT/, $want, 'a 2 MB result over TLS: HIT');
}

# commit-time invalidation over TLS
$node->safe_psql('postgres', "SELECT cache_track('sales')");
call_is($node, $call, qr/^MISS/, $expected, 'tracked: MISS');
call_is($node, $call, qr/^HIT/, $expected, 'tracked: HIT');
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE region = 3');
$expected = direct_rows($node, $Q, [3]);
call_is($node, $call, qr/^MISS/, $expected, 'after an UPDATE: invalidated over TLS, MISS with the new rows');

# Redis restarts under an open TLS connection: the next call reconnects at once
{
	my $s = CacheExt::Session->new($node, timeout => 60);
	call_is($s, $call, qr/^HIT/, $expected, 'session: HIT over TLS');
	$redis_a->restart;
	call_is($s, $call, qr/^MISS/, $expected,
		'Redis restarted: the closed TLS connection is noticed and replaced, MISS');
	call_is($s, $call, qr/^HIT/, $expected, 'then HIT');
	$s->quit;
}

# ---- certificate verification failures ---------------------------------------

# One call that must BYPASS for a TLS reason: right rows, the reason in
# cache_status(), one WARNING, the kind of failure the client decided
# (DEBUG1), and on the server one failed handshake that is a TLS alert, not
# a plain-text request.
sub tls_bypass
{
	my ($redis, $settings, $reason_re, $name, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @before = $redis->handshake_errors;
	my $r = call_is($node, "SET client_min_messages = debug1;\n" . $settings . $call,
		qr/^BYPASS: redis unavailable \($reason_re/, $expected, $name);
	note "$name: $r->{status}";
	like($r->{err}, qr/WARNING:  cache_ext could not use Redis/, "$name: one WARNING");
	like($r->{err}, qr/Redis failure of kind $opt{kind}:/, "$name: a failure of kind $opt{kind}");
	my @after = $redis->handshake_errors;
	if ($opt{server_fails_handshake} // 1)
	{
		my @new = @after[ scalar(@before) .. $#after ];
		# the server logs asynchronously from our failure: give it a moment
		for (my $i = 0; $i < 50 && !@new; $i++)
		{
			sleep(0.1);
			@after = $redis->handshake_errors;
			@new = @after[ scalar(@before) .. $#after ];
		}
		is(scalar(@new), 1, "$name: exactly one connection attempt on the server")
		  or diag explain \@new;
		note "$name: server log: @new";
		unlike(join("\n", @new), qr/wrong version|http request|packet length|unknown protocol|record layer/i,
			"$name: the attempt was TLS, not plain text")
		  or diag explain \@new;
	}
	return $r;
}

tls_bypass($redis_a, with(tls_ca_file => $pki->{other_ca_crt}),
	qr/TLS certificate verification failed: (unable to get local issuer certificate|self-signed certificate in certificate chain)/,
	'wrong CA', kind => 'tls_verify');

tls_bypass($redis_b, with(redis_url => $redis_b->url('127.0.0.1')),
	qr/TLS certificate verification failed: IP address mismatch/,
	'address not in the certificate (localhost certificate, URL 127.0.0.1)', kind => 'tls_verify');
tls_bypass($redis_a, with(redis_url => $redis_a->url('localhost')),
	qr/TLS certificate verification failed: hostname mismatch/,
	'name not in the certificate (127.0.0.1 certificate, URL localhost)', kind => 'tls_verify');

# the CA file itself
tls_bypass($redis_a, with(tls_ca_file => "$pki->{dir}/no_such_file.crt"),
	qr/could not load the CA bundle \(cache_ext.tls_ca_file\): No such file or directory/,
	'missing CA file', server_fails_handshake => 0, kind => 'config');
tls_bypass($redis_a, with(tls_ca_file => $pki->{ip_key}),
	qr/could not load the CA bundle \(cache_ext.tls_ca_file\)/,
	'a CA file without certificates', server_fails_handshake => 0, kind => 'config');

# the system's default CAs do not know our test CA
tls_bypass($redis_a, with(tls_ca_file => ''),
	qr/TLS certificate verification failed: (unable to get local issuer certificate|self-signed certificate in certificate chain)/,
	'no CA file: the system default CAs, which do not know the test CA', kind => 'tls_verify');

# ---- tls_verify = off --------------------------------------------------------

{
	my $s = CacheExt::Session->new($node, timeout => 60);
	$s->query_ok("SET cache_ext.tls_ca_file = " . sql_literal($pki->{other_ca_crt}));
	$s->query_ok('SET cache_ext.tls_verify = off');
	my $r1 = call_is($s, $call4, qr/^MISS/, $expected4, 'tls_verify = off, wrong CA: works');
	like($r1->{err}, qr/WARNING:  cache_ext.tls_verify is off: the Redis server's certificate is not verified/,
		'tls_verify = off: WARNING that the connection is not authenticated');
	# a new connection in the same session: no second warning
	$s->query_ok("SET cache_ext.redis_url = " . sql_literal($redis_a->url('localhost')));
	# (another URL is another target, src/outbox.c: its first contact may
	# deliver the server-generation bump this fresh server owes)
	my $r2 = call_is($s, $call4, qr/^(HIT|MISS \(invalidated\))/, $expected4,
		'tls_verify = off, name mismatch as well: works');
	unlike($r2->{err}, qr/WARNING/, 'the warning comes once per session');
	# verification back on: the open connection is dropped and checked again
	$s->query_ok('SET cache_ext.tls_verify = on');
	$s->query_ok("SET cache_ext.redis_url = " . sql_literal($redis_a->url));
	call_is($s, $call4, qr/^BYPASS: redis unavailable \(TLS certificate verification failed/,
		$expected4, 'tls_verify back on: the next call verifies (wrong CA: BYPASS)');
	$s->query_ok("SET cache_ext.tls_ca_file = " . sql_literal($pki->{ca_crt}));
	call_is($s, $call4, qr/^HIT/, $expected4, 'the right CA again: HIT');
	$s->quit;
}

# ---- client certificates -----------------------------------------------------

tls_bypass($redis_c, with(redis_url => $redis_c->url),
	qr/Redis requires a client certificate \(cache_ext.tls_cert_file and cache_ext.tls_key_file\)/,
	'Redis requires a client certificate, none is set', kind => 'tls');
tls_bypass($redis_c, with(redis_url => $redis_c->url, tls_cert_file => $pki->{other_client_crt},
		tls_key_file => $pki->{other_client_key}),
	qr/Redis refused the TLS connection: tlsv1 alert unknown ca/,
	'a client certificate Redis does not trust', kind => 'tls');
my $cert = with(redis_url => $redis_c->url, tls_cert_file => $pki->{client_crt},
	tls_key_file => $pki->{client_key});
call_is($node, $cert . $call, qr/^MISS/, $expected, 'with the client certificate: MISS');
call_is($node, $cert . $call, qr/^HIT/, $expected, 'with the client certificate: HIT');

tls_bypass($redis_c, with(redis_url => $redis_c->url, tls_cert_file => $pki->{client_crt}),
	qr/cache_ext.tls_cert_file and cache_ext.tls_key_file must be set together/,
	'certificate without key', server_fails_handshake => 0, kind => 'config');
tls_bypass($redis_c, with(redis_url => $redis_c->url, tls_key_file => $pki->{client_key}),
	qr/cache_ext.tls_cert_file and cache_ext.tls_key_file must be set together/,
	'key without certificate', server_fails_handshake => 0, kind => 'config');
tls_bypass($redis_c, with(redis_url => $redis_c->url, tls_cert_file => $pki->{client_crt},
		tls_key_file => $pki->{ip_key}),
	qr/the client key \(cache_ext.tls_key_file\) does not match the client certificate/,
	'a key that does not match the certificate', server_fails_handshake => 0, kind => 'config');
{
	my $loose = "$pki->{dir}/loose.key";
	PostgreSQL::Test::Utils::append_to_file($loose, slurp_file($pki->{client_key}));
	chmod 0644, $loose;
	tls_bypass($redis_c, with(redis_url => $redis_c->url, tls_cert_file => $pki->{client_crt},
			tls_key_file => $loose),
		qr/the client key \(cache_ext.tls_key_file\) has group or world access/,
		'a key file others may read', server_fails_handshake => 0, kind => 'config');
}

# ---- plain URLs stay plain ---------------------------------------------------

{
	my $plain = CacheExt::Redis->new(name => 'plain');
	call_is($node, with(redis_url => $plain->url, tls_ca_file => $pki->{other_ca_crt}) . $call,
		qr/^MISS/, $expected, 'redis:// with TLS settings set: plain, works');
	$plain->stop;
}

# ---- settings: who may see and change them ----------------------------------

$node->safe_psql('postgres', 'CREATE ROLE tls_reader LOGIN');
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT name FROM pg_settings WHERE name LIKE 'cache_ext.tls%' ORDER BY 1",
	extra_params => [ '-U', 'tls_reader' ]);
is($out, "cache_ext.tls_ca_file\ncache_ext.tls_verify",
	'non-superusers see tls_ca_file and tls_verify, not the certificate and key files');
($ret, $out, $err) = $node->psql('postgres', 'SET cache_ext.tls_verify = off',
	extra_params => [ '-U', 'tls_reader' ]);
like($err, qr/permission denied to set parameter "cache_ext.tls_verify"/,
	'non-superusers cannot turn verification off');
($ret, $out, $err) = $node->psql('postgres', "SET cache_ext.tls_ca_file = '/tmp/x'",
	extra_params => [ '-U', 'tls_reader' ]);
like($err, qr/permission denied to set parameter "cache_ext.tls_ca_file"/,
	'non-superusers cannot change the CA file');

# ---- no leaks ----------------------------------------------------------------

# CREATE ROLE asks for a server-generation bump (role changes reach every
# database); deliver it with the right CA first, so that the calls below
# fail on their handshake rather than bypass for the pending bump
call_is($node, $call, qr/^(MISS|HIT)/, $expected, 'the role change is delivered');

{
	my $s = CacheExt::Session->new($node, timeout => 120);
	my $pid = $s->backend_pid;

	sub rss_kb
	{
		my $status = slurp_file("/proc/$_[0]/status");
		return $status =~ /^VmRSS:\s+(\d+)/m ? $1 : die "no VmRSS";
	}

	$s->query_ok("SET cache_ext.tls_ca_file = " . sql_literal($pki->{other_ca_crt}));
	$s->query_ok("SET client_min_messages = error");
	my $bad = 0;
	my $loop = sub {
		my ($n) = @_;
		for (1 .. $n)
		{
			my $r = cache_call($s, $call, timeout => 60);
			if ($r->{timed_out} || $r->{err} =~ /ERROR/
			  || ($r->{status} // '') !~ /^BYPASS: redis unavailable \(TLS certificate verification failed/
			  || $r->{rows} ne $expected)
			{
				diag("handshake $_: status '" . ($r->{status} // '') . "' err '$r->{err}'") if $bad < 3;
				$bad++;
			}
		}
	};
	$loop->(20);
	my ($fd0, $rss0) = (fd_count($pid), rss_kb($pid));
	$loop->(100);
	my ($fd1, $rss1) = (fd_count($pid), rss_kb($pid));
	$loop->(200);
	my ($fd2, $rss2) = (fd_count($pid), rss_kb($pid));
	is($bad, 0, '320 failing handshakes: all BYPASS with the right rows');
	is($fd1, $fd0, "no descriptor leaked over 100 failing handshakes ($fd0 open)");
	is($fd2, $fd0, 'nor over 200 more');
	note "VmRSS: $rss0 kB, after 100 more calls $rss1 kB, after 200 more $rss2 kB";
	cmp_ok($rss2 - $rss1, '<', 1024,
		'memory does not grow with failing handshakes (200 calls: less than 1 MB)');

	# a handshake cancelled while the server hangs: SSL state freed, no leak
	$s->query_ok("SET cache_ext.tls_ca_file = " . sql_literal($pki->{ca_crt}));
	$s->query_ok("SET cache_ext.connect_timeout = '60s'");
	$s->query_ok("SET cache_ext.redis_url = " . sql_literal($redis_c->url));
	$s->query_ok("SET cache_ext.tls_cert_file = " . sql_literal($pki->{client_crt}));
	$s->query_ok("SET cache_ext.tls_key_file = " . sql_literal($pki->{client_key}));
	$redis_c->pause;
	my $fd3 = fd_count($pid);
	for my $i (1 .. 3)
	{
		my $tag = $s->send($call);
		my $active = $node->poll_query_until('postgres', qq{
			SELECT count(*) = 1 FROM pg_stat_activity
			WHERE pid = $pid AND state = 'active' AND query LIKE '%cached_query%'});
		sleep(0.3);    # into the handshake
		$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
		my ($out, $err) = $s->wait($tag, 60);
		ok($active && defined $err && $err =~ /canceling statement due to user request/,
			"handshake with a hung server, cancel $i: cancelled");
	}
	is(fd_count($pid), $fd3, 'no descriptor leaked by cancelled handshakes');
	$redis_c->resume;
	$s->query_ok("SET cache_ext.connect_timeout = '5s'");
	my $r = cache_call($s, $call);
	like($r->{status} // '', qr/^(MISS|HIT)/, 'after the cancels the next call connects')
	  or diag "status: " . ($r->{status} // 'none') . " stderr: $r->{err}";
	$s->quit;
}

# ---- nothing secret in the logs ----------------------------------------------

my $keytext = slurp_file($pki->{client_key});
my ($keyline) = grep { length > 40 && !/^-----/ } split /\n/, $keytext;
my $log = slurp_file($node->logfile);
ok(index($log, $keyline) < 0 && $log !~ /PRIVATE KEY/, 'no key material in the server log');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');

$node->stop;
$redis_a->stop;
$redis_b->stop;
$redis_c->stop;
done_testing();
