# test/perl/CacheExt/Session.pm - one long-lived psql session for TAP tests
#
#   my $s = CacheExt::Session->new($node);          # connected; $s->backend_pid
#   my ($out, $err) = $s->query('SELECT 1');        # waits (bounded)
#   my $tag = $s->send('SELECT pg_sleep(60)');      # does not wait
#   my ($out, $err, $secs) = $s->wait($tag, 30);    # () if it timed out
#   $s->quit;
#
# Several tests need state that lives in one backend (cache_status(), the
# circuit breaker, the Redis connection, the backend's open files), or need
# to start a statement and act on it from elsewhere (cancel, terminate).
# PostgreSQL::Test::BackgroundPsql keeps stderr across queries and dies on a
# timeout; this class returns each statement's own stdout and stderr, and
# lets the caller decide what a timeout means.  Every wait is bounded.

package CacheExt::Session;

use strict;
use warnings FATAL => 'all';

use Carp;
use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;

=pod

=head1 METHODS

=over

=item CacheExt::Session->new($node, dbname => 'postgres', timeout => SECS)

Start psql (ON_ERROR_STOP off, unaligned, tuples only) and wait until it is
connected.  timeout is the default bound of query() (default
$PostgreSQL::Test::Utils::timeout_default).

=cut

sub new
{
	my ($class, $node, %params) = @_;
	my $self = bless {
		stdin   => '',
		stdout  => '',
		stderr  => '',
		seq     => 0,
		timeout => $params{timeout} // $PostgreSQL::Test::Utils::timeout_default,
	}, $class;

	my @cmd = (
		$node->installed_command('psql'),
		'-XAtq', '-v', 'ON_ERROR_STOP=0',
		'-d', $node->connstr($params{dbname} // 'postgres'),
		'-f', '-');
	$self->{run} = IPC::Run::start(\@cmd, '<', \$self->{stdin}, '>',
		\$self->{stdout}, '2>', \$self->{stderr});

	my ($pid, $err) = $self->query('SELECT pg_backend_pid()');
	croak "psql session did not start: $err" unless $pid && $pid =~ /^\d+$/;
	$self->{pid} = $pid;
	return $self;
}

sub backend_pid { return $_[0]->{pid}; }

=pod

=item $s->send($sql)

Queue $sql (a statement, or several) and return a tag for wait(); returns
at once.  Statements run in order, so the next send() or query() runs after
this one has finished.

=cut

sub send
{
	my ($self, $sql) = @_;
	my $tag = ++$self->{seq};
	my $banner = "ce_session_done_$tag";
	# \echo and \warn: stdout and stderr are both complete once both show it.
	$self->{stdin} .= "$sql\n;\n\\echo '$banner'\n\\warn '$banner'\n";
	$self->{run}->pump_nb if $self->{run}->pumpable;
	return $tag;
}

=pod

=item $s->wait($tag, $secs)

Wait up to $secs (default: the session timeout) for the statements queued
under $tag to finish.  Returns (stdout, stderr, elapsed seconds) of those
statements, or an empty list if they did not finish in time or psql exited.
The output of a statement that timed out is still consumed by the next
wait() for a later tag.

=cut

sub wait
{
	my ($self, $tag, $secs) = @_;
	$secs //= $self->{timeout};
	my $banner = qr/ce_session_done_$tag\n/;
	my $start = time();

	my $done = $self->_pump_until(
		sub { $self->{stdout} =~ $banner && $self->{stderr} =~ $banner },
		$secs);
	return () unless $done;

	# Earlier tags' banners and output belong to statements whose wait()
	# was abandoned: drop them with this statement's own banner.
	my ($out, $err);
	($out, $self->{stdout}) = _take($self->{stdout}, $tag);
	($err, $self->{stderr}) = _take($self->{stderr}, $tag);
	return ($out, $err, time() - $start);
}

# Split $buf after the banner for $tag; drop output and banners of earlier tags.
sub _take
{
	my ($buf, $tag) = @_;
	my ($before, $after) = split /ce_session_done_$tag\n/, $buf, 2;
	$before =~ s/\A.*ce_session_done_\d+\n//s;
	$before =~ s/\n\z//;
	return ($before, $after // '');
}

# Pump until $cond->() is true (returns 1), $secs pass or psql exits (0).
sub _pump_until
{
	my ($self, $cond, $secs) = @_;
	my $deadline = time() + $secs;
	while (1)
	{
		return 1 if $cond->();
		return 0 unless $self->{run}->pumpable;
		return 0 if time() > $deadline;
		$self->{run}->pump_nb;
		usleep(5_000);
	}
}

=pod

=item $s->query($sql, $secs)

send() and wait(); dies if it does not finish within $secs (default: the
session timeout).  Returns stdout in scalar context, (stdout, stderr,
elapsed) in list context.

=item $s->query_ok($sql)

query(), dying if stderr mentions an ERROR or FATAL.  Returns stdout.

=cut

sub query
{
	my ($self, $sql, $secs) = @_;
	my $tag = $self->send($sql);
	my ($out, $err, $elapsed) = $self->wait($tag, $secs);
	croak "psql session: no answer within "
	  . ($secs // $self->{timeout})
	  . "s to: $sql\nstderr so far: $self->{stderr}"
	  unless defined $out;
	return wantarray ? ($out, $err, $elapsed) : $out;
}

sub query_ok
{
	my ($self, $sql, $secs) = @_;
	my ($out, $err) = $self->query($sql, $secs);
	croak "psql session: $sql\nfailed: $err" if $err =~ /\b(ERROR|FATAL)\b/;
	return $out;
}

=pod

=item $s->wait_stderr($regex, $secs)

Wait up to $secs for psql's pending stderr to match $regex (for example the
messages of a terminated connection, after which no banner comes).  Returns
the elapsed seconds, or undef on timeout.

=item $s->alive()

True while psql runs.

=cut

sub wait_stderr
{
	my ($self, $re, $secs) = @_;
	my $start = time();
	return $self->_pump_until(sub { $self->{stderr} =~ $re }, $secs)
	  ? time() - $start
	  : undef;
}

sub alive
{
	my $self = shift;
	$self->{run}->pump_nb if $self->{run}->pumpable;
	return $self->{run}->pumpable ? 1 : 0;
}

=pod

=item $s->quit()

Ask psql to exit; kill it if it has not within 10 s.

=cut

sub quit
{
	my $self = shift;
	return unless $self->{run};
	my $run = delete $self->{run};
	eval {
		$self->{stdin} .= "\\q\n";
		my $deadline = time() + 10;
		while ($run->pumpable && time() < $deadline)
		{
			$run->pump_nb;
			usleep(10_000);
		}
		if ($run->pumpable) { $run->kill_kill(grace => 2); }
		else { $run->finish; }
		1;
	} or eval { $run->kill_kill(grace => 1) };
	return;
}

sub DESTROY
{
	my $self = shift;
	local ($., $@, $!, $^E, $?);
	$self->quit;
	return;
}

=pod

=back

=cut

1;
