# test/perl/CacheExt/Redis.pm - a throwaway redis-server for TAP tests
#
#   use CacheExt::Redis qw(cache_ext_node);
#   my $redis = CacheExt::Redis->new;              # started, answers PING
#   my $node  = cache_ext_node('main', $redis);    # PG with cache_ext, extension created
#   $redis->cli('--scan', '--pattern', 'cache_ext:*');
#   $redis->kill9; $redis->restart;                # same port, empty data
#   $redis->pause; ...; $redis->resume;            # SIGSTOP / SIGCONT
#
# redis-server runs in the foreground as a child of the test script (so it can
# be reaped and its exit observed), on 127.0.0.1 and a free port, without
# persistence, in its own directory under tmp_check.  It is always signalled
# by PID.  Every server still running is stopped at the end of the script
# (END block, and DESTROY), even when the script dies.

package CacheExt::Redis;

use strict;
use warnings FATAL => 'all';

use Carp;
use Exporter 'import';
use IPC::Run;
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(cache_ext_node);

# Servers started by this script, for the END block.
my @servers;

=pod

=head1 METHODS

=over

=item CacheExt::Redis->new(name => 'redis', verbose => 1)

Pick a free port, start redis-server and wait until it answers PING.
With verbose => 0 (or $redis->verbose(0) later), starts and stops are not
reported with note().

=cut

sub new
{
	my ($class, %params) = @_;
	my $name = $params{name} // 'redis';

	my $self = bless {
		name   => $name,
		port   => PostgreSQL::Test::Cluster::get_free_port(),
		dir    => PostgreSQL::Test::Utils::tempdir("redis_$name"),
		pid    => undef,
		paused => 0,
		verbose => $params{verbose} // 1,
		params => \%params,
	}, $class;
	push @servers, $self;
	$self->start;
	return $self;
}

sub port { return $_[0]->{port}; }
sub host { return '127.0.0.1'; }
sub pid  { return $_[0]->{pid}; }
sub dir  { return $_[0]->{dir}; }
sub logfile { return "$_[0]->{dir}/redis.log"; }

=pod

=item $redis->url()

C<redis://127.0.0.1:PORT/0>, for cache_ext.redis_url.

=cut

sub url
{
	my $self = shift;
	return "redis://127.0.0.1:$self->{port}/0";
}

sub is_running { return defined $_[0]->{pid}; }

sub verbose
{
	my ($self, $on) = @_;
	$self->{verbose} = $on ? 1 : 0;
	return;
}

=pod

=item $redis->start()

Start the server on this object's port (again, after stop or kill9) and wait
until it answers PING.  Dies if it cannot.

=cut

# How the server listens (subclasses listen otherwise, e.g. with TLS), and
# how that is described in notes and errors.
sub _listen_args
{
	my $self = shift;
	return ('--port' => $self->{port});
}

sub _listen_description
{
	my $self = shift;
	return "on 127.0.0.1:$self->{port}";
}

# The command line of the server (subclasses run other servers, e.g. a
# sentinel); extra_args => [...] given to new() are appended.
sub _command
{
	my $self = shift;
	return (
		'redis-server',
		'--bind' => '127.0.0.1',
		$self->_listen_args,
		'--save' => '',
		'--appendonly' => 'no',
		'--daemonize' => 'no',
		'--dir' => $self->{dir},
		'--pidfile' => "$self->{dir}/redis.pid",
		'--logfile' => $self->logfile,
		@{ $self->{params}{extra_args} // [] });
}

sub start
{
	my $self = shift;
	croak "redis-server $self->{name} is already running" if $self->{pid};

	my $log = $self->logfile;
	my @cmd = $self->_command;

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		# Child: no Perl cleanup code may run here, whatever happens.
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $log);
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$self->{paused} = 0;

	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		if (waitpid($pid, WNOHANG) == $pid)
		{
			my $status = $?;
			$self->{pid} = undef;
			my $tail = -f $log ? slurp_file($log) : '';
			croak "redis-server $self->{name} exited with status $status "
			  . "on port $self->{port}:\n$tail";
		}
		my ($out) = $self->_run_cli(5, 'PING');
		last if defined $out && $out eq "PONG\n";
		croak "redis-server $self->{name} did not answer PING " . $self->_listen_description
		  if time() > $deadline;
		usleep(50_000);
	}
	note "redis-server $self->{name} (pid $pid) listening " . $self->_listen_description
	  if $self->{verbose};
	return;
}

# Wait for our child to exit, up to $secs seconds.  True when reaped.
sub _reap
{
	my ($self, $secs) = @_;
	my $pid = $self->{pid};
	my $deadline = time() + $secs;
	while (time() <= $deadline)
	{
		my $r = waitpid($pid, WNOHANG);
		return 1 if $r == $pid || $r == -1;
		usleep(20_000);
	}
	return 0;
}

=pod

=item $redis->stop()

SIGTERM by PID (after SIGCONT, in case it is paused) and wait for it to exit;
SIGKILL if it has not within 30 s.  No-op when not running.

=item $redis->kill9()

SIGKILL by PID and wait for it to exit: a crash, not a shutdown.

=cut

sub stop
{
	my ($self, $signal) = @_;
	my $pid = $self->{pid};
	return unless defined $pid;
	$signal //= 'TERM';

	kill 'CONT', $pid if $self->{paused};
	kill $signal, $pid;
	if (!$self->_reap(30))
	{
		kill 'KILL', $pid;
		$self->_reap(30)
		  or diag "redis-server $self->{name} (pid $pid) would not exit";
	}
	note "redis-server $self->{name} (pid $pid) stopped with SIG$signal"
	  if $self->{verbose};
	$self->{pid} = undef;
	$self->{paused} = 0;
	return;
}

sub kill9
{
	my $self = shift;
	croak "redis-server $self->{name} is not running" unless $self->{pid};
	$self->stop('KILL');
	return;
}

=pod

=item $redis->pause() / $redis->resume()

SIGSTOP / SIGCONT: a hung server.  Connections are still accepted by the
kernel, but nothing is ever answered.  pause() returns once the process is
really stopped.

=cut

sub pause
{
	my $self = shift;
	my $pid = $self->{pid};
	croak "redis-server $self->{name} is not running" unless $pid;
	kill 'STOP', $pid;
	$self->{paused} = 1;
	my $deadline = time() + 10;
	while (time() <= $deadline)
	{
		my $stat = slurp_file("/proc/$pid/stat");
		return if $stat =~ /^\d+ \(.*\) [Tt] /s;
		usleep(10_000);
	}
	croak "redis-server $self->{name} (pid $pid) did not stop";
}

sub resume
{
	my $self = shift;
	croak "redis-server $self->{name} is not running" unless $self->{pid};
	kill 'CONT', $self->{pid};
	$self->{paused} = 0;
	return;
}

=pod

=item $redis->restart()

stop() then start() on the same port.  The data is gone (no persistence).
Also restarts a server that was killed with kill9().

=cut

sub restart
{
	my $self = shift;
	$self->stop if $self->{pid};
	$self->start;
	return;
}

# Run redis-cli with a timeout; returns (stdout, stderr, exit status) or
# (undef, reason) if it timed out.
sub _run_cli
{
	my ($self, $timeout, @args) = @_;
	my ($in, $out, $err) = ('', '', '');
	my @cmd = ('redis-cli', '-h', '127.0.0.1', '-p', $self->{port},
		(defined $self->{params}{password}
			? ('--no-auth-warning', '-a', $self->{params}{password}) : ()),
		@args);
	my ($status, $h);
	my $ok = eval {
		$h = IPC::Run::start(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
			IPC::Run::timeout($timeout));
		$h->finish;
		$status = $h->full_result(0);
		1;
	};
	if (!$ok)
	{
		my $why = $@;
		eval { $h->kill_kill if $h; };
		return (undef, $why);
	}
	return ($out, $err, $status);
}

=pod

=item $redis->cli(@args)

Run C<redis-cli -h 127.0.0.1 -p PORT @args> and return its stdout: in scalar
context as one string without its final newline, in list context as a list
of lines.  Dies if redis-cli fails, times out, or prints an error reply.

=cut

sub cli
{
	my ($self, @args) = @_;
	my ($out, $err, $status) =
	  $self->_run_cli($PostgreSQL::Test::Utils::timeout_default, @args);
	croak "redis-cli @args timed out: $err" unless defined $out;
	croak "redis-cli @args failed (status $status): $err$out"
	  if $status != 0 || $out =~ /\A(ERR|WRONGTYPE|NOSCRIPT|ERROR)\b/;
	return split /\n/, $out if wantarray;
	$out =~ s/\n\z//;
	return $out;
}

=pod

=item $redis->scan_keys($pattern)

All keys matching $pattern (SCAN, not KEYS), sorted; their number in scalar
context.

=item $redis->lua($script, \@keys, @args)

EVAL a Lua script; returns its reply like cli().  Lets tests handle binary
values (corrupt, truncate, digest) without passing them through argv.

=cut

sub scan_keys
{
	my ($self, $pattern) = @_;
	my @keys = sort($self->cli('--scan', '--pattern', $pattern));
	return @keys;    # in scalar context: how many
}

sub lua
{
	my ($self, $script, $keys, @args) = @_;
	return $self->cli('EVAL', $script, scalar(@$keys), @$keys, @args);
}

sub DESTROY
{
	my $self = shift;
	local ($., $@, $!, $^E, $?);
	$self->stop if $self->{pid};
	return;
}

END
{
	my $exit_code = $?;
	foreach my $server (@servers)
	{
		$server->stop if $server->{pid};
	}
	$? = $exit_code;
}

=pod

=back

=head1 FUNCTIONS

=over

=item cache_ext_node($name, $redis, extra_conf => '...', dbname => 'postgres')

A started PostgreSQL::Test::Cluster node with shared_preload_libraries =
'cache_ext', cache_ext.redis_url pointing at $redis, any extra
postgresql.conf lines, and the extension created in $dbname.

=cut

sub cache_ext_node
{
	my ($name, $redis, %params) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf(
		'postgresql.conf', join("\n",
			"shared_preload_libraries = 'cache_ext'",
			"cache_ext.redis_url = '" . $redis->url . "'",
			# test/run-tests.sh --only verify: every hit also runs directly
			($ENV{CE_VERIFY_RATE} ? "cache_ext.verify_rate = $ENV{CE_VERIFY_RATE}" : ''),
			# test/run-tests.sh with CE_L1: the local tier on (extra_conf may override)
			($ENV{CE_L1} ? "cache_ext.local_cache_size = '$ENV{CE_L1}'" : ''),
			$params{extra_conf} // ''));
	$node->start;
	$node->safe_psql($params{dbname} // 'postgres', 'CREATE EXTENSION cache_ext');
	return $node;
}

=pod

=back

=cut

1;
