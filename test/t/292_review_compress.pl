# test/t/292_review_compress.pl - review of compression and chunked entries
#
# Findings of the adversarial review of issue 14's compression and chunks
# (/work/review-compress-findings.md).  Each part reproduces one finding:
#
#  A. a chunked store of more than ~800 chunks in one round trip (legal
#     with cache_ext.chunk_size below ~5 kB) has its replies refused by the
#     4096-byte reply bound of put_batch: the store fails and the circuit
#     breaker opens (C2: a legal setting turns the cache off).
#  B. re-storing an entry of more than ~1000 chunks sends one PEXPIRE per
#     old chunk under the same 4096-byte reply bound (drop_chunks): the
#     breaker opens after a store that succeeded.
#  C. a chunk longer than its head says (APPEND) is read with GET, whose
#     reply passes the round trip's bound: the connection is dropped and
#     the breaker opens, and the entry is never deleted (C2: a corrupt
#     chunk must be a miss, not an outage).
#  D. a chunk key holding another type answers WRONGTYPE, which the chunk
#     reader reports as a server failure: the breaker opens, and the entry
#     is never deleted (the entry's own key treats WRONGTYPE as corrupt).
#  E. a chunked read takes one round trip per ~4 MB of chunks, each with
#     its own cache_ext.command_timeout: a slow Redis makes a hit wait
#     several times command_timeout (C2: bounded, but not by the setting
#     that says "longest wait").  Measured through a relay that delays
#     every request naming a chunk key.  Also checked: a read hung on its
#     chunks ends at statement_timeout (interruptible).
#  G. a chunk read that times out (Redis hung after the head was read)
#     was a MISS, so the call then stored into the Redis that had just
#     failed and waited a second command_timeout (status "MISS (not
#     stored: redis unavailable (timed out))" after 2 s with 1 s set);
#     it is Redis down (BYPASS) like a failed first round trip.
#  F. (no finding) C1 under load with chunked entries: the history checker
#     (CacheExt::Checker) with 8 readers of ~800 kB results stored in
#     16 kB chunks (uncompressed), while writers commit: concurrent
#     stores of one key interleave their chunks in Redis, and reads race
#     the stores that replace the heads they read.  No stale read.
#
# Parts A-D check the call's status and rows, that cache_stats.errors did
# not move, and that the next call is served (HIT), not BYPASSed.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP qw(decode_json);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::ResetProxy;
use CacheExt::Checker;
use CacheExt::Util;
use Time::HiRes qw(time usleep);
use IO::Select;
use IO::Socket::INET;

# A relay to Redis that holds every request naming a chunk key (":c:") for
# as many seconds as its delay file says.  new/url/stop are ResetProxy's.
package DelayProxy
{
	our @ISA = ('CacheExt::ResetProxy');

	sub delay
	{
		my ($self, $secs) = @_;
		open(my $fh, '>', $self->{file}) or die "$self->{file}: $!";
		print $fh $secs;
		close($fh);
	}

	sub _relay
	{
		my ($self, $client) = @_;
		my $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
			PeerPort => $self->{target}, Proto => 'tcp');
		POSIX::_exit(1) unless $up;
		my $sel = IO::Select->new($client, $up);
		while (1)
		{
			for my $from ($sel->can_read(1))
			{
				my $to = $from == $client ? $up : $client;
				my $buf;
				my $n = sysread($from, $buf, 65536);
				POSIX::_exit(0) unless $n;
				if ($from == $client && $buf =~ /:c:/)
				{
					open(my $fh, '<', $self->{file});
					my $d = $fh ? (<$fh> // 0) : 0;
					Time::HiRes::sleep($d) if $d > 0;
				}
				syswrite($to, $buf) // POSIX::_exit(0);
			}
		}
	}

	sub start
	{
		my $self = shift;
		$self->{file} //= PostgreSQL::Test::Utils::tempdir('delay') . '/delay';
		$self->delay(0);
		my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
			LocalPort => $self->{port}, Proto => 'tcp', Listen => 64, ReuseAddr => 1)
		  or die "delay proxy: cannot listen on $self->{port}: $!";
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			setpgrp(0, 0);
			$SIG{CHLD} = 'IGNORE';
			$SIG{PIPE} = 'IGNORE';
			while (1)
			{
				my $conn = $listen->accept or next;
				my $child = fork();
				if (defined $child && $child == 0)
				{
					close($listen);
					$self->_relay($conn);
				}
				close($conn);
			}
		}
		close($listen);
		$self->{pid} = $pid;
	}
}

# the calls must read what is tampered with in Redis
delete $ENV{CE_L1};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.max_entry_size = '8MB'",
	"cache_ext.compress_min_size = -1",
	"cache_ext.retry_interval = '60s'"));

$node->safe_psql('postgres', q{
	CREATE TABLE big (id int, t text);
	INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
	  FROM generate_series(1, 12000) g;
	SELECT cache_track('big');
});

sub errors { return cache_stats($node)->{errors}; }
sub explain_key
{
	my ($setup, $q) = @_;
	my $json = $node->safe_psql('postgres',
		$setup . "SELECT cache_explain(" . sql_literal($q) . ")");
	return decode_json($json)->{key};
}
sub chunks { my $k = shift; return $redis->scan_keys("$k:c:*"); }

# cache_status() of the second of two calls made in one session (the
# breaker is per backend: a new connection would not see it)
sub second_status
{
	my ($call) = @_;
	my $out = $node->safe_psql('postgres',
		"$call; SELECT cache_status(); $call; SELECT 'status=' || cache_status();");
	return $out =~ /^status=(.*)$/m ? $1 : '(none)';
}

my $cols = 'id int, t text';

# ---- A. many small chunks in one round trip ---------------------------------
{
	my $setup = "SET cache_ext.chunk_size = '1kB'; ";
	my $q = 'SELECT id, t FROM big WHERE id > 0 ORDER BY id';
	my $call = $setup . cq($q, $cols);
	my $rows = direct_rows($node, $q, []);
	my $e0 = errors();
	call_is($node, $call, qr/^MISS$/, $rows, 'A: 1 kB chunks: first call');
	my $key = explain_key($setup, $q);
	my @c = chunks($key);
	ok(@c > 1000, 'A: the entry is in ' . scalar(@c) . ' chunks (more than 1000)');
	is(errors() - $e0, 0, 'A: storing it counted no Redis error');
	call_is($node, $call, qr/^HIT$/, $rows, 'A: the next call is a hit');

	# ---- B. re-storing it gives the old chunks 10 s (one PEXPIRE each) ----
	$node->safe_psql('postgres', 'UPDATE big SET t = t WHERE id = 1');
	$e0 = errors();
	call_is($node, $call, qr/^MISS \(invalidated\)$/, $rows, 'B: invalidated: re-stored');
	is(errors() - $e0, 0, 'B: re-storing it counted no Redis error');
	call_is($node, $call, qr/^HIT$/, $rows, 'B: the next call is a hit');

	# the breaker is per backend: in one session, a store must not turn
	# the cache off for the calls after it
	$node->safe_psql('postgres', 'UPDATE big SET t = t WHERE id = 2');
	like(second_status($call), qr/^HIT$/,
		'A/B: in the same session, the call after a re-store is a hit');
}

# ---- C. a chunk longer than its head says -----------------------------------
my $setup4 = "SET cache_ext.chunk_size = '4kB'; ";
{
	my $q = 'SELECT id, t FROM big WHERE id <= 300 ORDER BY id';
	my $call = $setup4 . cq($q, $cols);
	my $rows = direct_rows($node, $q, []);
	call_is($node, $call, qr/^MISS$/, $rows, 'C: first call');
	my $key = explain_key($setup4, $q);
	my @c = chunks($key);
	ok(@c >= 3, 'C: chunked (' . scalar(@c) . ' chunks)');
	my $append = sub {
		my ($c0) = grep { /:0$/ } chunks($key);
		$redis->lua(q{return redis.call('APPEND', KEYS[1], string.rep('x', 200000))}, [$c0]);
	};
	$append->();
	my $e0 = errors();
	call_is($node, $call, qr/^(HIT|MISS \(corrupt entry replaced: .*\))$/, $rows,
		'C: a chunk with 200 kB appended: a hit or a corrupt miss');
	is(errors() - $e0, 0, 'C: counted no Redis error (no breaker)');
	call_is($node, $call, qr/^HIT$/, $rows, 'C: the next call is a hit');
	$append->();
	like(second_status($call), qr/^HIT$/,
		'C: in the same session, the call after it is a hit (the breaker stayed shut)');
}

# ---- D. a chunk key of another type ------------------------------------------
{
	my $q = 'SELECT id, t FROM big WHERE id <= 301 ORDER BY id';
	my $call = $setup4 . cq($q, $cols);
	my $rows = direct_rows($node, $q, []);
	call_is($node, $call, qr/^MISS$/, $rows, 'D: first call');
	my $key = explain_key($setup4, $q);
	my $listify = sub {
		my ($c1) = grep { /:1$/ } chunks($key);
		$redis->cli('DEL', $c1);
		$redis->cli('RPUSH', $c1, 'x');
	};
	$listify->();
	my $e0 = errors();
	call_is($node, $call, qr/^MISS \(corrupt entry replaced: .*\)$/, $rows,
		'D: a chunk that is a list: a corrupt miss');
	is(errors() - $e0, 0, 'D: counted no Redis error (no breaker)');
	call_is($node, $call, qr/^HIT$/, $rows, 'D: the next call is a hit');
	$listify->();
	like(second_status($call), qr/^HIT$/,
		'D: in the same session, the call after it is a hit (the breaker stayed shut)');
}

ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
$node->stop;

# ---- E. a chunked read against a slow Redis ----------------------------------
my $proxy = DelayProxy->new($redis->port);
$proxy->start;
my $slow = cache_ext_node('slow', $redis, extra_conf => join("\n",
	"cache_ext.redis_url = '" . $proxy->url . "'",
	"cache_ext.key_prefix = 'slow:'",
	"cache_ext.max_entry_size = '32MB'",
	"cache_ext.chunk_size = '1MB'",
	"cache_ext.compress_min_size = -1",
	"cache_ext.command_timeout = '1s'"));
$slow->safe_psql('postgres', q{
	CREATE TABLE big (id int, t text);
	INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
	  FROM generate_series(1, 100000) g;
	SELECT cache_track('big');
});
{
	# about 10 MB: 10 chunks of 1 MB, read in 3 round trips of at most 4 MB
	my $q = 'SELECT id, t FROM big ORDER BY id';
	my $call = 'SELECT count(*), sum(length(t)) FROM cached_query(' . sql_literal($q)
	  . ') AS t(id int, t text)';
	my $rows = $slow->safe_psql('postgres', "SELECT count(*), sum(length(t)) FROM ($q) s");
	call_is($slow, $call, qr/^MISS$/, $rows, 'E: first call stores');
	my $n = scalar($redis->scan_keys('slow:*:c:*'));
	ok($n >= 9, "E: the entry is in $n chunks");
	call_is($slow, $call, qr/^HIT$/, $rows, 'E: a hit with no delay');

	# each round trip of chunks 0.7 s: under command_timeout (1 s) each
	$proxy->delay(0.7);
	my $t0 = time();
	my $r = call_is($slow, $call, qr/^(HIT|MISS.*)$/, $rows, 'E: slow chunks: served');
	my $took = time() - $t0;
	# what holds now: each round trip is bounded (3 here)
	ok($took < 3 * 1.0 + 1.0,
		sprintf('E: slow chunks: each round trip bounded by command_timeout (%.1f s for 3)', $took));
	TODO:
	{
		local $TODO = 'finding E (review-compress-findings.md): one command_timeout per round trip of chunks, not per read';
		ok($took < 1.9,
			sprintf('E: slow chunks: the call waited at most about command_timeout (%.1f s, 1 s set)', $took));
	}

	# hung chunks: statement_timeout still ends the call
	$proxy->delay(30);
	$t0 = time();
	$r = cache_call($slow, "SET cache_ext.command_timeout = '20s'; SET statement_timeout = '1s'; $call");
	$took = time() - $t0;
	like($r->{err}, qr/canceling statement due to statement timeout/,
		'E: hung chunks: statement_timeout cancels the call');
	ok($took < 6, sprintf('E: hung chunks: within %.1f s', $took));

	# hung chunks, no statement_timeout: the read times out once
	$t0 = time();
	$r = cache_call($slow, $call);
	$took = time() - $t0;
	diag(sprintf('E: hung chunks: %s in %.1f s', $r->{status} // '(none)', $took));
	ok($r->{err} !~ /ERROR/ && $r->{rows} eq $rows, 'E: hung chunks: the rows, no error');
	like($r->{status} // '', qr/^BYPASS\b.*redis unavailable/,
		'G: hung chunks: Redis is down for the call (BYPASS), not a miss that stores');
	ok($took < 1.8, sprintf('G: hung chunks: one command_timeout, not two (%.1f s, 1 s set)', $took));
	$proxy->delay(0);
}
ok(!$slow->log_contains('terminated by signal'), 'slow: no backend crashed');
$slow->stop;
$proxy->stop;

# ---- F. C1 under load, chunked entries ------------------------------------------
my $chk = cache_ext_node('chk', $redis, extra_conf => join("\n",
	"max_connections = 40",
	"log_statement = 'none'",
	"cache_ext.key_prefix = 'chk:'",
	"cache_ext.max_entry_size = '4MB'",
	"cache_ext.chunk_size = '16kB'",
	"cache_ext.command_timeout = '2s'"));
{
	my $c = CacheExt::Checker->new(node => $chk, table => 'counters_wide', writers => 2,
		readers => 8, rows => 8, writer_pause => [ 0.01, 0.03 ],
		mix => { big => 0.6, row => 0.2, sum => 0.2 }, pad => 100_000,
		session_setup => { reader => 'SET cache_ext.compress_min_size = -1;' });
	note 'seed ' . $c->seed;
	$c->setup;
	$c->run_phase('chunked', 5);
	$c->stop;
	my $r = $c->check;
	my $h = $r->{phases}{chunked};
	my @v = @{ $r->{violations}{chunked} // [] };
	diag "violation: $_" for @v[ 0 .. ($#v < 9 ? $#v : 9) ];
	diag sprintf('F: %d reads, %d hits, %d misses, %d bypasses, %d commits',
		map { $h->{$_} // 0 } qw(reads hits misses bypasses commits));
	is(scalar(@v), 0, 'F: no stale read with chunked entries under load');
	cmp_ok($h->{hits} // 0, '>', 0, 'F: there were hits');
	my @c = $redis->scan_keys('chk:*:c:*');
	ok(@c > 0, 'F: the entries were chunked (' . scalar(@c) . ' chunk keys)');
	is(cache_stats($chk)->{corrupt}, 0, 'F: no entry was found corrupt');
}
ok(!$chk->log_contains('terminated by signal'), 'chk: no backend crashed');
$chk->stop;
done_testing();
