# test/perl/CacheExt/Util.pm - SQL-side helpers for cache_ext TAP tests
#
#   my $sql = cq('SELECT region, sum(amount) FROM sales WHERE region = $1 GROUP BY 1',
#                'region int, total numeric', 7);
#   my $r = cache_call($node, $sql);            # new session: {rows, status, err, ...}
#   my $r = cache_call($session, $sql);         # in a CacheExt::Session
#   my $s = cache_stats($node);                 # {hits => .., misses => .., ...}
#   my $n = fd_count($pid);                     # open fds of a backend
#   my $out = wire_steps($node, $user, ['Q', 'BEGIN'], ['P', 's', $sql], ...);
#                                               # test/lib/pgwire_steps.py
#   until_hit(\&call, $db, $want, $what, 20);    # poll: never stale, then HIT

package CacheExt::Util;

use strict;
use warnings FATAL => 'all';

use Carp;
use POSIX ();
use Exporter 'import';
use JSON::PP;
use IPC::Run ();
use Time::HiRes qw(time);
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT =
  qw(sql_literal cq direct_rows cache_call call_is cache_stats stats_delta fd_count
  sales_fixture);
our @EXPORT_OK = qw(crc32c wire_steps until_hit wait_until);

# until_hit(\&call, $db, $want, $what, $seconds): call $call->($db) (it
# returns "value\nSTATUS") until it says HIT, for at most $seconds; every
# value seen on the way must be $want (a call may miss or bypass while a
# slot moves or a master is down, never return a stale value).  One test.
sub until_hit
{
	my ($call, $db, $want, $what, $seconds) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $deadline = time() + ($seconds // 30);
	my (@seen, $out);
	while (time() < $deadline)
	{
		$out = $call->($db);
		push @seen, $out =~ s/\n/ /r;
		my ($v) = split /\n/, $out;
		if ($v ne $want)
		{
			fail("$what: stale value $v, want $want");
			return;
		}
		last if $out =~ /HIT$/;
		Time::HiRes::usleep(100_000);
	}
	like($out, qr/^\Q$want\E\nHIT$/, "$what: the right value, then a hit")
	  or diag explain \@seen;
	return;
}

# wait_until(\&cond, $seconds, $poll_seconds): true as soon as $cond->()
# is, polling every $poll_seconds (default 0.02) for at most $seconds; at
# the end $cond gets one last chance.
sub wait_until
{
	my ($cond, $secs, $poll) = @_;
	my $deadline = Time::HiRes::time() + $secs;
	while (Time::HiRes::time() < $deadline)
	{
		return 1 if $cond->();
		Time::HiRes::usleep(int(($poll // 0.02) * 1_000_000));
	}
	return $cond->() ? 1 : 0;
}

# The output of test/lib/pgwire_steps.py running the protocol steps given
# (JSON arrays, see that file) in one session of $user on $node.
sub wire_steps
{
	my ($node, $user, @steps) = @_;
	my $json = JSON::PP->new->canonical;
	my $lib = __FILE__ =~ s{perl/CacheExt/Util\.pm$}{lib}r;
	my @cmd = ('python3', "$lib/pgwire_steps.py",
		'--socket', $node->host, '--port', $node->port, '--user', $user,
		map { $json->encode($_) } @steps);
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	diag($err) if $err;
	chomp $out;
	return $out;
}

# The sales table the failure tests share, and their per-region query.
our $SALES_Q = 'SELECT region, count(*), sum(amount) FROM sales WHERE region = $1 GROUP BY region';
our $SALES_COLS = 'region int, n bigint, total numeric';

# sales_fixture($node): create and fill sales; returns ($query, $cols).
sub sales_fixture
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
CREATE TABLE sales (id int PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT i, 1 + i % 10, (i * 37 % 1000) / 10.0 FROM generate_series(1, 2000) AS i;
});
	return ($SALES_Q, $SALES_COLS);
}

=pod

=head1 FUNCTIONS

=over

=item sql_literal($string)

$string as an SQL string literal.

=cut

sub sql_literal
{
	my $s = shift;
	$s =~ s/'/''/g;
	return "'$s'";
}

=pod

=item cq($query, $coldefs, @params)

The SQL text of C<SELECT * FROM cached_query('$query', @params) AS t($coldefs)>.
@params are SQL expressions, inserted as given (quote strings yourself).

=cut

sub cq
{
	my ($query, $coldefs, @params) = @_;
	return 'SELECT * FROM cached_query('
	  . join(', ', sql_literal($query), @params)
	  . ") AS t($coldefs)";
}

=pod

=item direct_rows($node, $query, \@params, dbname => 'postgres', setup => 'SET ...;')

The output (psql -At) of running $query directly, with @params bound to
$1..$n by PREPARE/EXECUTE, after the optional setup statements: what a
correct cached_query() of the same query must return.

=cut

sub direct_rows
{
	my ($node, $query, $params, %opts) = @_;
	my $exec = @$params ? 'EXECUTE ce_direct(' . join(', ', @$params) . ')' : 'EXECUTE ce_direct';
	return $node->safe_psql($opts{dbname} // 'postgres',
		($opts{setup} // '') . "\nPREPARE ce_direct AS $query;\n$exec;");
}

=pod

=item cache_call($target, $sql, dbname => 'postgres', timeout => SECS)

Run $sql (settings, then one cached_query or cached_query_json call) followed
by C<SELECT cache_status()> in one session, and return a hash:
rows (output of $sql, psql -At format), status (cache_status(), or undef if
it did not run), err (psql stderr), elapsed (seconds), timed_out (1 if no
answer came within the timeout).  $target is a
PostgreSQL::Test::Cluster (a new connection each time) or a
CacheExt::Session (its backend).  Never dies on an SQL error: callers test err.

=cut

sub cache_call
{
	my ($target, $sql, %params) = @_;
	my $timeout = $params{timeout} // $PostgreSQL::Test::Utils::timeout_default;
	my $marker = 'ce_status_follows';
	my $script = "$sql;\n\\echo $marker\nSELECT cache_status();";
	my ($out, $err, $timed_out) = ('', '', 0);
	my $start = time();

	if ($target->isa('CacheExt::Session'))
	{
		my $tag = $target->send($script);
		my @r = $target->wait($tag, $timeout);
		if (@r) { ($out, $err) = @r; }
		else { $timed_out = 1; }
	}
	else
	{
		$target->psql(
			$params{dbname} // 'postgres', $script,
			stdout => \$out,
			stderr => \$err,
			on_error_stop => 0,
			timeout => $timeout,
			timed_out => \$timed_out);
	}

	my ($rows, $status) = split /^\Q$marker\E\n?/m, $out, 2;
	$rows //= '';
	$rows =~ s/\n\z//;
	$status =~ s/\n\z// if defined $status;
	$status = undef if defined $status && $status eq '';
	return {
		rows    => $rows,
		status  => $status,
		err     => $err,
		elapsed => time() - $start,
		timed_out => $timed_out ? 1 : 0,
	};
}

=pod

=item call_is($target, $sql, $status_re, $rows, $name, %cache_call_params)

cache_call() plus three tests: it returned in time without ERROR, its
cache_status() matches $status_re, and its rows are $rows.  Returns the
cache_call() result.

=cut

sub call_is
{
	my ($target, $sql, $status_re, $rows, $name, %params) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my $r = cache_call($target, $sql, %params);
	ok(!$r->{timed_out} && $r->{err} !~ /\b(ERROR|FATAL|PANIC)\b/,
		"$name: no error")
	  or diag($r->{timed_out} ? "timed out after $r->{elapsed}s" : "stderr: $r->{err}");
	like($r->{status} // '(cache_status() did not run)', $status_re, "$name: status");
	is($r->{rows}, $rows, "$name: rows");
	return $r;
}

=pod

=item crc32c($bytes)

CRC-32C of a byte string, as pg_crc32c computes it: for tests that forge
entries with a valid checksum.

=cut

my @crc32c_table;

sub crc32c
{
	if (!@crc32c_table)
	{
		for my $i (0 .. 255)
		{
			my $c = $i;
			$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
			$crc32c_table[$i] = $c;
		}
	}
	my $crc = 0xFFFFFFFF;
	$crc = $crc32c_table[($crc ^ $_) & 0xFF] ^ ($crc >> 8) foreach unpack('C*', $_[0]);
	return $crc ^ 0xFFFFFFFF;
}

=pod

=item cache_stats($node_or_session)

The one row of the cache_stats view as a hash reference.

=item stats_delta($before, $after)

Per-counter difference of two cache_stats() results (numeric columns only).

=cut

sub cache_stats
{
	my $target = shift;
	my $sql = 'SELECT row_to_json(s) FROM cache_stats s';
	my $json =
	  $target->isa('CacheExt::Session')
	  ? $target->query_ok($sql)
	  : $target->safe_psql('postgres', $sql);
	return decode_json($json);
}

sub stats_delta
{
	my ($before, $after) = @_;
	my %d;
	foreach my $k (keys %$after)
	{
		next unless defined $after->{$k} && $after->{$k} =~ /^-?[\d.]+$/;
		$d{$k} = $after->{$k} - ($before->{$k} // 0);
	}
	return \%d;
}

=pod

=item fd_count($pid)

Number of open file descriptors of process $pid (the test runs as the same
OS user as the server, so /proc/$pid/fd is readable).

=cut

sub fd_count
{
	my $pid = shift;
	opendir(my $dh, "/proc/$pid/fd") or croak "cannot read /proc/$pid/fd: $!";
	my $n = grep { !/^\.\.?$/ } readdir($dh);
	closedir($dh);
	return $n;
}

=pod

=item kill_process_group($pid)

SIGKILL the process $pid started as the leader of its own process group
(a fake server or relay and its connection processes), and reap it, waiting
at most 5 s.

=cut

sub kill_process_group
{
	my $pid = shift;
	kill 'KILL', -$pid;
	kill 'KILL', $pid;
	for (1 .. 500)
	{
		my $r = waitpid($pid, POSIX::WNOHANG());
		last if $r == $pid || $r == -1;
		Time::HiRes::usleep(10_000);
	}
	return;
}

=pod

=back

=cut

1;
