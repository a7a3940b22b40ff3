# test/t/242_review15_sentinel.pl - adversarial review of Sentinel support
# (issue 13, review15; see /work/review15-findings.md)
#
# Fake sentinels (a small RESP server forked by this script, stopped by PID)
# listed before the real ones in the Sentinel URL:
#
#   1. F1 (Medium): a sentinel that names a replica, or an address where
#      nothing answers, is asked first forever: SentinelConnect breaks out
#      of its loop after a failed verification and starts again from
#      'first', the sentinel that gave the bad answer, so the two real
#      sentinels that know the master are never asked and the cache stays
#      off.  Expected (fails now): a hit after a few calls.
#   2. hostile replies from a sentinel (a huge bulk string, a non-RESP
#      greeting): the next sentinel is asked (passes).
#   3. split brain under the consistency checker: two masters that both
#      say ROLE master (A never demoted), a sentinel whose answer moves
#      from one to the other, and half of the connections to the former
#      one killed at each move (the others stay, as with a zombie master
#      after SIGCONT).  Every write to one master is lost for the other.
#      0 stale reads expected (attacks the identity sequence; passes if
#      the argument holds).
#
# Every server is on 127.0.0.1 and signalled by PID.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Sentinel;
use CacheExt::Checker;

# ---- a fake sentinel ---------------------------------------------------------------

my @fakes;

END
{
	local $?;    # waitpid would set the script's exit status
	for my $f (@fakes)
	{
		next unless $f->{pid};
		kill 'KILL', $f->{pid};
		waitpid($f->{pid}, 0);
	}
}

# One RESP command (an array of bulk strings) from the front of $$buf, or
# undef when it is not complete yet.
sub take_command
{
	my ($buf) = @_;
	return undef unless $$buf =~ /\A\*(\d+)\r\n/;
	my $n = $1;
	my $pos = length("*$n\r\n");
	my @args;
	for (1 .. $n)
	{
		my $rest = substr($$buf, $pos);
		return undef unless $rest =~ /\A\$(\d+)\r\n/;
		my $len = $1;
		my $hdr = length("\$$len\r\n");
		return undef if length($rest) < $hdr + $len + 2;
		push @args, substr($rest, $hdr, $len);
		$pos += $hdr + $len + 2;
	}
	substr($$buf, 0, $pos) = '';
	return \@args;
}

sub bulk { my $s = shift; return '$' . length($s) . "\r\n$s\r\n"; }

# The reply of the fake to one command.  $answer is "port" (the address to
# name, on 127.0.0.1), "huge" or "garbage".
sub fake_reply
{
	my ($answer, $args) = @_;
	my $cmd = uc($args->[0] // '');
	return "+OK\r\n" if $cmd eq 'AUTH';
	if ($cmd eq 'SENTINEL')
	{
		return bulk('x' x 300_000) if $answer eq 'huge';
		return "*2\r\n" . bulk('127.0.0.1') . bulk($answer);
	}
	return "-ERR unknown command\r\n";
}

# Start a fake sentinel.  mode: 'name' (answers with the port in the file
# $ctl, read at each request), 'huge', 'garbage' (greets with HTTP and
# closes), 'blackhole' (accepts, never answers).
sub fake_sentinel
{
	my (%o) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $srv = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1', LocalPort => $port,
			Listen => 128, ReuseAddr => 1, Proto => 'tcp')
		  or POSIX::_exit(1);
		my $sel = IO::Select->new($srv);
		my %buf;
		my @held;
		while (1)
		{
			for my $fh ($sel->can_read(1))
			{
				if ($fh == $srv)
				{
					my $c = $srv->accept or next;
					if ($o{mode} eq 'blackhole') { push @held, $c; next; }
					if ($o{mode} eq 'garbage')
					{
						syswrite($c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
						close $c;
						next;
					}
					$sel->add($c);
					$buf{"$c"} = '';
					next;
				}
				my $n = sysread($fh, my $data, 65536);
				if (!$n)
				{
					$sel->remove($fh);
					delete $buf{"$fh"};
					close $fh;
					next;
				}
				$buf{"$fh"} .= $data;
				while (my $args = take_command(\$buf{"$fh"}))
				{
					my $answer = $o{mode};
					if ($o{mode} eq 'name')
					{
						open(my $f, '<', $o{ctl}) or POSIX::_exit(2);
						$answer = <$f>;
						close $f;
						chomp $answer;
					}
					syswrite($fh, fake_reply($answer, $args));
				}
			}
			@held = grep { $_->connected } @held;
		}
	}
	my $f = { pid => $pid, port => $port, %o };
	push @fakes, $f;
	for (1 .. 100)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
		if ($s) { close $s; return $f; }
		usleep(50_000);
	}
	die "fake sentinel on port $port did not start";
}

sub set_answer
{
	my ($f, $port) = @_;
	my $tmp = "$f->{ctl}.tmp";
	open(my $fh, '>', $tmp) or die "$tmp: $!";
	print $fh "$port\n";
	close $fh;
	rename($tmp, $f->{ctl}) or die "rename: $!";
	return;
}

# ---- 1 and 2: one bad sentinel listed first ---------------------------------------------

my $g = CacheExt::Sentinel->new;
my $node = cache_ext_node('main', $g, extra_conf => join("\n",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));
$node->safe_psql('postgres', q{
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
my $q = q{SELECT * FROM cached_query('SELECT sum(v)::int FROM kv') AS t(s int)};
my $real = join(',', map { '127.0.0.1:' . $_->port } $g->sentinels);
my $master = $g->master;
my ($replica) = grep { $_->port != $master->port } $g->nodes;
my $dir = PostgreSQL::Test::Utils::tempdir('fake_sentinels');

# A session with this URL: six calls, 300 ms apart (the breaker's interval
# is 200 ms); the statuses, and the longest call in seconds.
sub try_url
{
	my ($url) = @_;
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	$b->query("SET cache_ext.redis_url = '$url'");
	my (@st, $longest);
	$longest = 0;
	for (1 .. 6)
	{
		my $t0 = time();
		my $out = $b->query("$q; SELECT cache_status()");
		my $dt = time() - $t0;
		$longest = $dt if $dt > $longest;
		my @l = split /\n/, $out;
		push @st, $l[-1];
		usleep(300_000);
	}
	$b->quit;
	return (\@st, $longest);
}

my @bad = (
	[ 'names a replica (a stale view)', sub {
		my $f = fake_sentinel(mode => 'name', ctl => "$dir/replica");
		set_answer($f, $replica->port);
		return $f;
	} ],
	[ 'names an address where nothing answers', sub {
		my $hole = fake_sentinel(mode => 'blackhole');
		my $f = fake_sentinel(mode => 'name', ctl => "$dir/hole");
		set_answer($f, $hole->{port});
		return $f;
	} ],
	[ 'names a port that is not Redis', sub {
		my $http = fake_sentinel(mode => 'garbage');
		my $f = fake_sentinel(mode => 'name', ctl => "$dir/http");
		set_answer($f, $http->{port});
		return $f;
	} ],
);
for my $case (@bad)
{
	my ($what, $make) = @$case;
	my $f = $make->();
	my ($st, $longest) = try_url("redis-sentinel://127.0.0.1:$f->{port},$real/mymaster");
	note "$what: " . join(' / ', @$st) . sprintf(' (longest call %.2f s)', $longest);
	like($st->[-1], qr/^HIT/,
		"F1: a sentinel that $what, listed first, does not keep the cache off (the others know the master)");
	cmp_ok($longest, '<', 2.5, "F1: $what: every call bounded");
}

my @hostile = (
	[ 'a huge reply', sub { return fake_sentinel(mode => 'huge'); } ],
	[ 'a non-RESP greeting', sub { return fake_sentinel(mode => 'garbage'); } ],
	[ 'nothing (accepts, never answers)', sub { return fake_sentinel(mode => 'blackhole'); } ],
);
for my $case (@hostile)
{
	my ($what, $make) = @$case;
	my $f = $make->();
	my ($st, $longest) = try_url("redis-sentinel://127.0.0.1:$f->{port},$real/mymaster");
	note "$what: " . join(' / ', @$st) . sprintf(' (longest call %.2f s)', $longest);
	like($st->[-1], qr/^HIT/, "a sentinel answering $what is passed over");
	cmp_ok($longest, '<', 2.5, "a sentinel answering $what: every call bounded");
}

# ---- 3. split brain under the checker ------------------------------------------------

# (CE_R15_SKIP_SPLIT=1 skips this part, for a quick run of the others)
if (!$ENV{CE_R15_SKIP_SPLIT})
{

# Two masters that never replicate: each one lacks every write the other took.
my $ra = CacheExt::Redis->new(name => 'split_a');
my $rb = CacheExt::Redis->new(name => 'split_b');
my $flip = fake_sentinel(mode => 'name', ctl => "$dir/flip");
set_answer($flip, $ra->port);
my $split_url = "redis-sentinel://127.0.0.1:$flip->{port}/mymaster";
my $sn = cache_ext_node('split', bless({ url => $split_url }, 'Review15Url'), extra_conf => join("\n",
	"max_connections = 40",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));

my $c = CacheExt::Checker->new(node => $sn, writers => 3, readers => 4, rows => 8);
note 'seed ' . $c->seed;
$c->setup;

my $cur = $ra;
my $moves = 0;

# The sentinel names the other master; half of the connections to the one
# it named before are killed (they reconnect through the sentinel), the
# others stay on it (a zombie still answering ROLE master).
sub move
{
	my $old = $cur;
	$cur = $cur == $ra ? $rb : $ra;
	set_answer($flip, $cur->port);
	my @ids = map { /\bid=(\d+)/ ? $1 : () }
	  grep { !/cmd=client/ } $old->cli('CLIENT', 'LIST', 'TYPE', 'normal');
	my $i = 0;
	for my $id (@ids)
	{
		next if $i++ % 2;
		eval { $old->cli('CLIENT', 'KILL', 'ID', $id); 1; };
	}
	$moves++;
	$c->mark("moved to " . $cur->port);
	return;
}

$c->run_phase('before', 4);
my $S = $ENV{CE_CHECKER_SECONDS} // 6;
$S = 4 if $S < 4;
$c->run_phase('split_brain', 3 * $S, tail => 2, steps => [
	map { { at => 1 + $_ * 1.5, name => "move $_", do => \&move } } 0 .. (2 * $S - 1)
]);
$c->run_phase('after', 4);
$c->stop;

my $r = $c->check;
my $P = $r->{phases};
my @phases = qw(before split_brain after);
for my $ph (@phases)
{
	my $h = $P->{$ph};
	note sprintf('%-12s reads %5d hits %5d misses %5d bypasses %5d commits %5d viol %d',
		$ph, $h->{reads}, $h->{hits}, $h->{misses}, $h->{bypasses}, $h->{commits},
		$h->{violations});
}
my @viol = map { @{ $r->{violations}{$_} // [] } } @phases;
diag "violation: $_" for @viol[ 0 .. ($#viol < 19 ? $#viol : 19) ];
diag "failure: $_" for $c->failures;
is(scalar @viol, 0, "split brain ($moves moves between two masters): no stale read");
cmp_ok($P->{split_brain}{hits}, '>', 0, 'split brain: hits were served (the test reads through the cache)');
for my $ph (@phases)
{
	my $h = $P->{$ph};
	is($h->{sql_errors_reader} + $h->{sql_errors_writer} + $h->{sql_errors_monitor}, 0,
		"$ph: no statement failed");
}

$sn->stop;
}

# ---- 4. INFO refused: a master restarted at the same address -----------------------------

# The data nodes' ACL user may not run INFO (a managed or locked-down
# Redis): the master's identity is then a hash of its address.  The master
# restarts at the same address from an RDB snapshot older than a bump (the
# sentinels cannot fail over: no replica may be promoted), and the
# generation it lost comes back with the entry it no longer validates.
my $m4 = $g->master;
my @acl = ('cacheuser', 'on', '>pw', '~*', '&*', '+@all', '-info');
for my $n ($g->nodes)
{
	$n->cli('ACL', 'SETUSER', @acl);
	push @{ $n->{params}{extra_args} }, '--user', @acl;
	$n->cli('CONFIG', 'SET', 'replica-priority', '0') if $n->port != $m4->port;
}
my $noinfo_url = "redis-sentinel://cacheuser:pw\@$real/mymaster";
my $ni = cache_ext_node('noinfo', bless({ url => $noinfo_url }, 'Review15Url'), extra_conf => join("\n",
	"log_statement = 'none'",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '500ms'",
	"cache_ext.retry_interval = '200ms'"));
$ni->safe_psql('postgres', q{
	CREATE TABLE kv (k int PRIMARY KEY, v int);
	INSERT INTO kv SELECT g, 0 FROM generate_series(1, 10) g;
	SELECT cache_track('kv');
});
my $warm = '';
for (1 .. 10)
{
	$warm = $ni->safe_psql('postgres', "$q; SELECT cache_status()");
	last if $warm =~ /HIT/;
	usleep(300_000);
}
like($warm, qr/^0\nHIT/, 'INFO refused: a hit on the master before its restart');
like($ni->safe_psql('postgres', 'SELECT redis_mode, redis_master FROM cache_health()'),
	qr/^sentinel\|127\.0\.0\.1:${\ $m4->port}$/, 'INFO refused: the master is known by its address');
$m4->cli('SAVE');
$ni->safe_psql('postgres', 'UPDATE kv SET v = v + 1 WHERE k = 1');
sleep 1;    # the commit queue delivered the bump to the master
$m4->kill9;
$m4->start;
$g->_wait('the restarted master named again', 60, sub {
	my $mm = $g->master;
	return $mm && $mm->port == $m4->port;
});
my $want = $ni->safe_psql('postgres', 'SELECT sum(v)::int FROM kv');
my $got = '';
for (1 .. 10)
{
	$got = $ni->safe_psql('postgres', "$q; SELECT cache_status()");
	last if $got =~ /HIT|MISS/;
	usleep(300_000);
}
note "after the restart: $got";
my ($val) = split /\n/, $got;
is($val, $want, 'INFO refused: a master restarted at the same address from an older snapshot serves no stale entry');


# The control: the same restart seen by a user that may run INFO (the
# run_id changes): no stale entry.  Only the identity by address misses it.
{
	my $ctl_url = "redis-sentinel://$real/mymaster";
	my $b = $ni->background_psql('postgres', on_error_stop => 0);
	$b->query("SET cache_ext.redis_url = '$ctl_url'");
	my $w = '';
	for (1 .. 10)
	{
		$w = $b->query("$q; SELECT cache_status()");
		last if $w =~ /HIT/;
		usleep(300_000);
	}
	like($w, qr/HIT/, 'control (INFO allowed): a hit before the restart');
	$m4->cli('SAVE');
	$b->query("UPDATE kv SET v = v + 1 WHERE k = 2");
	sleep 1;
	$m4->kill9;
	$m4->start;
	$g->_wait('the restarted master named again', 60, sub {
		my $mm = $g->master;
		return $mm && $mm->port == $m4->port;
	});
	my $want2 = $ni->safe_psql('postgres', 'SELECT sum(v)::int FROM kv');
	my $got2 = '';
	for (1 .. 10)
	{
		$got2 = $b->query("$q; SELECT cache_status()");
		last if $got2 =~ /HIT|MISS/;
		usleep(300_000);
	}
	note "control after the restart: $got2";
	my ($val2) = split /\n/, $got2;
	is($val2, $want2, 'control (INFO allowed): the same restart serves no stale entry');
	$b->quit;
}

$ni->stop;
$node->stop;
done_testing();

package Review15Url;

sub url { return $_[0]->{url}; }
