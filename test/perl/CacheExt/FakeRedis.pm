# test/perl/CacheExt/FakeRedis.pm - a hostile "Redis" for TAP tests
#
#   my $fake = CacheExt::FakeRedis->new;                 # free 127.0.0.1 port
#   $fake->start(reply => "+OK\r\n");                    # answers every read with these bytes
#   $fake->start(reply => "\$100\r\nabc", close => 1);   # ... then closes the connection
#   $fake->start(reply => '', close => 1);               # accepts, then closes at once
#   $fake->stop;
#
# It speaks no protocol: whatever a client sends, each read is answered with
# the configured bytes.  One process per connection, all in the server's own
# process group, which stop() kills by its (negative) PID.

package CacheExt::FakeRedis;

use strict;
use warnings FATAL => 'all';

use Carp;
use CacheExt::Util ();
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use Test::More;

my @servers;

sub new
{
	my ($class, %params) = @_;
	my $self = bless {
		port => PostgreSQL::Test::Cluster::get_free_port(),
		pid  => undef,
	}, $class;
	push @servers, $self;
	return $self;
}

sub port { return $_[0]->{port}; }

sub url
{
	my $self = shift;
	return "redis://127.0.0.1:$self->{port}/0";
}

=pod

=over

=item $fake->start(reply => BYTES, close => 0|1, delay => SECS)

(Re)start the server.  Each read from a client is answered with BYTES (after
delay seconds, if given); with close => 1 the connection is closed after the
first answer.  Returns once the port accepts connections.

=cut

sub start
{
	my ($self, %params) = @_;
	$self->stop;
	my $reply = $params{reply} // '';
	my $close = $params{close} // 0;
	my $delay = $params{delay} // 0;

	# A connection process forked just before stop() killed the group may
	# hold the listening socket for a moment (cache_ext's background worker
	# connects often): retry for a while.
	my $listen;
	for (1 .. 200)
	{
		$listen = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => $self->{port},
			Proto     => 'tcp',
			Listen    => 64,
			ReuseAddr => 1);
		last if $listen;
		usleep(25_000);
	}
	croak "fake redis: cannot listen on $self->{port}: $!" unless $listen;

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
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
				my $buf;
				while (sysread($conn, $buf, 65536))
				{
					usleep($delay * 1_000_000) if $delay;
					syswrite($conn, $reply) if length $reply;
					last if $close;
				}
				close($conn);
				POSIX::_exit(0);
			}
			close($conn);
		}
		POSIX::_exit(0);
	}
	close($listen);
	$self->{pid} = $pid;
	return;
}

=pod

=item $fake->stop()

Kill the server and every connection process (SIGKILL to its process group).

=back

=cut

sub stop
{
	my $self = shift;
	my $pid = $self->{pid};
	return unless $pid;
	CacheExt::Util::kill_process_group($pid);
	$self->{pid} = undef;
	return;
}

sub DESTROY
{
	my $self = shift;
	local ($., $@, $!, $^E, $?);
	$self->stop;
	return;
}

END
{
	my $exit_code = $?;
	$_->stop foreach @servers;
	$? = $exit_code;
}

1;
