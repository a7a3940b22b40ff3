# test/t/214_token_reply_lost.pl - a lost reply to the token swap is not a proof
#
# The incarnation check (211_restore.pl) is one command, SET
# <prefix>...:incarnation <token> GET: it stores this incarnation's token
# and returns what Redis held.  It is not idempotent: once Redis executed
# it, sending it again returns this incarnation's own token.  When the first
# reply is lost after Redis executed the command (connection closed or
# reset, command_timeout, statement_timeout, a cancel, the client's retry
# of a closed connection), the next attempt reads only its own token: what
# it replaced is unknown, so the store reads it as STORE_TOKEN_MINE and the
# outbox as a mismatch (bump the server generation).  Otherwise a restored
# cold backup of the data directory would go unnoticed and entries computed
# from data the restored database no longer has would be served.
#
# The reply is lost here by a relay that forwards the first connection's
# commands to Redis and closes the connection instead of returning the
# replies.  (Review R11-1: 0.3 and the first store layer served the stale
# entry as a HIT.)

use strict;
use warnings FATAL => 'all';

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::ResetProxy;
use CacheExt::Util;

# In run-tests.sh's l1 pass (CE_L1) the local tier is on: the second call
# of an entry this server just stored is a local hit, and after a lost
# token reply neither tier may serve a hit.
my $HIT = $ENV{CE_L1} ? qr/^HIT \(local\)$/ : qr/^HIT$/;

# A relay that, while $flag exists, swallows the replies of the next
# connection: it forwards what the client sends, waits for Redis to
# answer, then closes the client side without passing the answer on.
package LoseReplyProxy;
use parent -norequire, 'CacheExt::ResetProxy';
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(usleep);

sub new
{
	my ($class, $target_port, $flag) = @_;
	my $self = CacheExt::ResetProxy::new($class, $target_port);
	$self->{flag} = $flag;
	return $self;
}

sub _lose_relay
{
	my ($client, $target, $lose) = @_;
	my $upstream = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $target,
		Proto    => 'tcp');
	POSIX::_exit(1) unless $upstream;
	my $sel = IO::Select->new($client, $upstream);
	while (1)
	{
		for my $from ($sel->can_read(1))
		{
			my $buf;
			my $n = sysread($from, $buf, 65536);
			POSIX::_exit(0) unless $n;
			if ($lose && $from == $upstream)
			{
				# Redis has executed the commands: drop the replies
				usleep(200_000);
				close($client);
				close($upstream);
				POSIX::_exit(0);
			}
			syswrite($from == $client ? $upstream : $client, $buf) // POSIX::_exit(0);
		}
	}
}

sub start
{
	my $self = shift;
	$self->stop;
	my $listen = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $self->{port},
		Proto     => 'tcp',
		Listen    => 64,
		ReuseAddr => 1) or die "cannot listen on $self->{port}: $!";
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		setpgrp(0, 0);
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';
		while (1)
		{
			my $conn = $listen->accept or next;
			my $lose = unlink($self->{flag}) ? 1 : 0;
			my $child = fork();
			if (defined $child && $child == 0)
			{
				close($listen);
				_lose_relay($conn, $self->{target}, $lose);
			}
			close($conn);
		}
	}
	close($listen);
	$self->{pid} = $pid;
	return;
}

package main;

my $redis = CacheExt::Redis->new;
my $flag = PostgreSQL::Test::Utils::tempdir() . '/lose_next_reply';
my $proxy = LoseReplyProxy->new($redis->port, $flag);
$proxy->start;

my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.retry_interval = 0",
	"cache_ext.redis_url = '" . $proxy->url . "'"));
my ($Q, $COLS) = sales_fixture($node);
$node->safe_psql('postgres', "SELECT cache_track('sales')");
my $call = cq($Q, $COLS, 5);
my $old = direct_rows($node, $Q, [5]);

call_is($node, $call, qr/^MISS/, $old, 'first call');
call_is($node, $call, $HIT, $old, 'second call');

# ---- cold backup, as in 211_restore.pl
$node->stop;
my $pgdata = $node->data_dir;
my $backup = PostgreSQL::Test::Utils::tempdir() . '/cold';
system('cp', '-a', $pgdata, $backup) == 0 or die "copy failed";
ok(-f "$backup/cache_ext.state", 'the backup holds the state file of a clean shutdown');
$node->start;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 5 WHERE region = 5');
my $new = direct_rows($node, $Q, [5]);
isnt($new, $old, 'the update changed the result');
call_is($node, $call, qr/^MISS \(invalidated\)$/, $new, 'the update invalidated the entry');
call_is($node, $call, $HIT, $new, 'the new entry is served');
$node->stop;

# ---- restore the cold backup; the first token swap's reply is lost
rmtree($pgdata);
system('cp', '-a', $backup, $pgdata) == 0 or die "restore failed";
chmod 0700, $pgdata;
open(my $fh, '>', $flag) or die "cannot create $flag: $!";
close($fh);
$node->start;
is(direct_rows($node, $Q, [5]), $old, 'the restored database has the old data');

my $r = cache_call($node, $call);
note 'first call after the restore: ' . ($r->{status} // 'none');
is($r->{rows}, $old, 'first call after the restore: right rows');
ok(!-e $flag, 'the relay swallowed the replies of one connection');

# Whoever swaps next (this call, or the background worker first) reads back
# this incarnation's own token.
for (1 .. 3)
{
	$r = cache_call($node, $call);
	last if ($r->{status} // '') !~ /^BYPASS/;
	usleep(300_000);
}
unlike($r->{status} // '', qr/^HIT/,
	'after the restore, with the first swap reply lost: the entry computed from data it no longer has is not served')
  or diag('status: ' . ($r->{status} // 'none'));
is($r->{rows}, $old, 'after the restore: the rows of the restored database');

$node->stop;
$proxy->stop;
done_testing();
