# test/perl/CacheExt/ResetProxy.pm - a TCP relay to Redis that can reset its clients
#
#   my $proxy = CacheExt::ResetProxy->new($redis->port);   # free 127.0.0.1 port
#   $proxy->start;
#   ... SET cache_ext.redis_url = $proxy->url ...
#   $proxy->reset_all;     # every client connection gets a TCP RST
#   $proxy->stop;
#
# What a firewall or a crashed middlebox does to an idle connection: the
# client learns of it from ECONNRESET on its next send, not from an end of
# stream (Redis's own idle timeout closes with FIN).  One process per
# connection, all in the relay's own process group, which stop() kills by
# its (negative) PID; reset_all() signals the connection processes, which
# close their client socket with SO_LINGER 0 (a reset) and their Redis one.

package CacheExt::ResetProxy;

use strict;
use warnings FATAL => 'all';

use Carp;
use parent -norequire, 'CacheExt::FakeRedis';
use CacheExt::FakeRedis ();
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;

my @proxies;

sub new
{
	my ($class, $target_port) = @_;
	my $self = bless {
		port   => PostgreSQL::Test::Cluster::get_free_port(),
		target => $target_port,
		pid    => undef,
	}, $class;
	push @proxies, $self;
	return $self;
}

sub port { return $_[0]->{port}; }

sub url
{
	my $self = shift;
	return "redis://127.0.0.1:$self->{port}/0";
}

# One client connection: relay both ways until either side closes, or
# SIGUSR1 asks for a reset.
sub _relay
{
	my ($client, $target) = @_;
	my $upstream = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $target,
		Proto    => 'tcp');
	POSIX::_exit(1) unless $upstream;
	local $SIG{USR1} = sub {
		setsockopt($client, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
		close($client);
		close($upstream);
		POSIX::_exit(0);
	};
	my $sel = IO::Select->new($client, $upstream);
	while (1)
	{
		for my $from ($sel->can_read(1))
		{
			my $to = $from == $client ? $upstream : $client;
			my $buf;
			my $n = sysread($from, $buf, 65536);
			POSIX::_exit(0) unless $n;
			syswrite($to, $buf) // POSIX::_exit(0);
		}
	}
}

=pod

=over

=item $proxy->start()

Listen and relay every connection to 127.0.0.1:target.  Returns once the
port accepts connections.

=cut

sub start
{
	my $self = shift;
	$self->stop;
	my $listen = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $self->{port},
		Proto     => 'tcp',
		Listen    => 64,
		ReuseAddr => 1);
	croak "reset proxy: cannot listen on $self->{port}: $!" unless $listen;

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		setpgrp(0, 0);
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';
		$SIG{USR1} = 'IGNORE';    # for the connection processes only
		while (1)
		{
			my $conn = $listen->accept or next;
			my $child = fork();
			if (defined $child && $child == 0)
			{
				close($listen);
				_relay($conn, $self->{target});
			}
			close($conn);
		}
	}
	close($listen);
	$self->{pid} = $pid;
	return;
}

=pod

=item $proxy->reset_all()

Reset every client connection open now (TCP RST), and close its Redis side.

=cut

sub reset_all
{
	my $self = shift;
	kill 'USR1', -$self->{pid} if $self->{pid};
	return;
}

=pod

=item $proxy->stop()

Kill the relay and every connection process (SIGKILL to its process group).

=back

=cut

# stop() and DESTROY are CacheExt::FakeRedis's: both kill a process group
# started by new() and kept in $self->{pid}.

END
{
	my $exit_code = $?;
	$_->stop foreach @proxies;
	$? = $exit_code;
}

1;
