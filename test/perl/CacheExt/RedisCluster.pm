# test/perl/CacheExt/RedisCluster.pm - a throwaway Redis Cluster for TAP tests
#
#   use CacheExt::RedisCluster;
#   my $rc = CacheExt::RedisCluster->new(masters => 3, replicas => 1);
#   my @m = $rc->masters;                          # CacheExt::RedisCluster::Node objects
#   my $n = $rc->node_for_slot($rc->keyslot('foo'));
#   $rc->migrate_slot($slot, $from, $to, keys => 1);   # stops half-way: ASK
#   $rc->finish_migration($slot, $from, $to);
#   $rc->failover($replica);                       # CLUSTER FAILOVER on it
#   $rc->kill9($node); $rc->restart($node); $rc->pause($node); $rc->resume($node);
#   my ($bytes, $value) = $rc->raw($node, 'CLUSTER', 'SLOTS');   # raw RESP
#
# Every node is a CacheExt::RedisCluster::Node: a CacheExt::Redis (its
# start, stop, kill9, pause, resume, restart, cli, and the END-block stop by
# PID) whose redis-server runs with --cluster-enabled yes, its own
# cluster-config-file in its own directory under tmp_check, and a cluster
# bus port of its own (--cluster-port: the default, port + 10000, may be
# taken, or past 65535 for the high ports tests get).  A node restarted
# after kill9 keeps its nodes.conf, so it rejoins the cluster (with no
# data: nothing is persisted).
#
# new() creates the cluster with redis-cli --cluster create ...
# --cluster-replicas R --cluster-yes and waits until every node says
# cluster_state:ok and all agree on who serves which slot.  Which node is a
# master is read back from the cluster (CLUSTER NODES), never assumed.
#
# With tls => $pki (CacheExt::TLS::make_pki) the nodes listen with TLS
# only (--port 0 --tls-port P --tls-cluster yes --tls-replication yes) and
# everything this module sends them goes over TLS: redis-cli with --tls,
# raw() through openssl s_client.  With password => 'pw' they require it.

package CacheExt::RedisCluster::Node;

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;

use CacheExt::Redis;
use CacheExt::TLS;
use parent -norequire, 'CacheExt::Redis';

# cluster-node-timeout (ms) of nodes being created (new() sets it)
our $NODE_TIMEOUT = 2000;

# With tls => { pki, server, auth_clients } among new()'s parameters the
# node listens with TLS only, as a CacheExt::TLS server does, and speaks
# TLS on the cluster bus, to its master and to MIGRATE's target, presenting
# the PKI's client certificate there.
sub start
{
	my $self = shift;
	$self->{tls} //= $self->{params}{tls};
	return $self->SUPER::start();
}

sub _listen_description
{
	my $self = shift;
	return $self->{tls} ? CacheExt::TLS::_listen_description($self)
	  : $self->SUPER::_listen_description();
}

sub _run_cli
{
	my $self = shift;
	return $self->{tls} ? CacheExt::TLS::_run_cli($self, @_) : $self->SUPER::_run_cli(@_);
}

# The cluster options go where CacheExt::Redis puts the listening ones.
sub _listen_args
{
	my $self = shift;
	my $pki = $self->{tls} ? $self->{tls}{pki} : undef;
	$self->{bus_port} //= PostgreSQL::Test::Cluster::get_free_port();
	return (
		($pki
			? (CacheExt::TLS::_listen_args($self),
				'--tls-cluster' => 'yes',
				'--tls-replication' => 'yes',
				'--tls-client-cert-file' => $pki->{client_crt},
				'--tls-client-key-file' => $pki->{client_key})
			: $self->SUPER::_listen_args()),
		'--cluster-enabled' => 'yes',
		'--cluster-config-file' => "$self->{dir}/nodes.conf",
		'--cluster-port' => $self->{bus_port},
		'--cluster-node-timeout' => ($self->{node_timeout} //= $NODE_TIMEOUT),
		# replicas' offsets move every second, so that CLUSTER SHARDS soon
		# calls them online (a replica at offset 0 is "loading")
		'--repl-ping-replica-period' => 1);
}

sub address { my $self = shift; return '127.0.0.1:' . $self->port; }

# This node's id (CLUSTER MYID).
sub id
{
	my $self = shift;
	$self->{id} //= $self->cli('CLUSTER', 'MYID');
	return $self->{id};
}

package CacheExt::RedisCluster;

use strict;
use warnings FATAL => 'all';

use Carp;
use IO::Socket::INET;
use IO::Select;
use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis;

=pod

=head1 METHODS

=over

=item CacheExt::RedisCluster->new(masters => 3, replicas => 1, node_timeout => 2000, name => 'rc', tls => $pki, auth_clients => 'no', password => 'pw')

Start masters * (1 + replicas) nodes, create the cluster, wait until it is
ok on every node.  With tls => a CacheExt::TLS PKI, every node listens
with TLS only (its 'ip' certificate; client certificates required with
auth_clients => 'yes') and the cluster bus and replication use TLS; the
module's redis-cli calls and raw() then speak TLS, verifying the nodes
against the test CA and presenting the client certificate.  With password
=> 'pw' every node requires it (requirepass, masterauth) and the module
sends it; after a rotation, set each node's {params}{password}.

=cut

sub new
{
	my ($class, %p) = @_;
	my $nm = $p{masters} // 3;
	my $nr = $p{replicas} // 1;
	my $name = $p{name} // 'rc';
	my $self = bless { nodes => [], name => $name, pki => $p{tls} }, $class;
	my @opt = (
		($p{tls}
			? (tls => { pki => $p{tls}, server => 'ip', auth_clients => $p{auth_clients} // 'no' })
			: ()),
		(defined $p{password}
			? (password => $p{password},
				extra_args => [ '--requirepass', $p{password}, '--masterauth', $p{password} ])
			: ()));

	for my $i (1 .. $nm * (1 + $nr))
	{
		# read by the node's first start, inside new()
		local $CacheExt::RedisCluster::Node::NODE_TIMEOUT = $p{node_timeout} // 2000;
		my $node = CacheExt::RedisCluster::Node->new(name => "${name}_$i", verbose => 0, @opt);
		push @{ $self->{nodes} }, $node;
	}
	my ($out, $err) = ('', '');
	my @cmd = ('redis-cli', '--cluster', 'create', map({ $_->address } @{ $self->{nodes} }),
		'--cluster-replicas', $nr, '--cluster-yes',
		($p{tls}
			? ('--tls', '--cacert', $p{tls}{ca_crt}, '--cert', $p{tls}{client_crt},
				'--key', $p{tls}{client_key})
			: ()),
		(defined $p{password} ? ('--no-auth-warning', '-a', $p{password}) : ()));
	IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default))
	  or croak "redis-cli --cluster create failed: $err$out";
	$self->wait_ok;
	note "redis cluster $name: " . join(', ', map {
		$_->address . ($self->role($_) eq 'master' ? ' (master)' : '')
	} @{ $self->{nodes} });
	return $self;
}

=pod

=item $rc->nodes / masters / replicas_of($master) / node_by_id($id) / node_by_port($port)

Nodes, as CacheExt::RedisCluster::Node objects.  Roles come from CLUSTER
NODES of a running node (masters: those that serve slots or are flagged
master and not failed).

=cut

sub nodes { return @{ $_[0]->{nodes} }; }

sub node_by_port
{
	my ($self, $port) = @_;
	my ($n) = grep { $_->port == $port } @{ $self->{nodes} };
	return $n;
}

sub node_by_id
{
	my ($self, $id) = @_;
	my $t = $self->topology;
	return undef unless $t->{$id};
	return $self->node_by_port($t->{$id}{port});
}

=pod

=item $rc->topology($via)

CLUSTER NODES of $via (default: the first running, unpaused node), as a
hash id => { port, flags => [..], master => id or undef, slots => [[lo, hi],
...], importing => {slot => id}, migrating => {slot => id} }.

=cut

sub topology
{
	my ($self, $via) = @_;
	$via //= $self->_any_node;
	my %t;
	for my $line ($via->cli('CLUSTER', 'NODES'))
	{
		my ($id, $addr, $flags, $master, undef, undef, undef, undef, @slots) =
		  split / /, $line;
		next unless defined $flags;
		my ($port) = $addr =~ /:(\d+)@/;
		my %n = (
			port => $port,
			flags => [ split /,/, $flags ],
			master => ($master eq '-' ? undef : $master),
			slots => [],
			importing => {},
			migrating => {});
		for my $s (@slots)
		{
			if ($s =~ /^\[(\d+)-<-(\w+)\]$/) { $n{importing}{$1} = $2; }
			elsif ($s =~ /^\[(\d+)->-(\w+)\]$/) { $n{migrating}{$1} = $2; }
			elsif ($s =~ /^(\d+)-(\d+)$/) { push @{ $n{slots} }, [ $1, $2 ]; }
			elsif ($s =~ /^(\d+)$/) { push @{ $n{slots} }, [ $1, $1 ]; }
		}
		$t{$id} = \%n;
	}
	return \%t;
}

sub _any_node
{
	my $self = shift;
	my ($n) = grep { $_->is_running && !$_->{paused} } @{ $self->{nodes} };
	croak "no redis cluster node is running" unless $n;
	return $n;
}

# The role of $node as the cluster sees it: 'master' or 'replica'.
sub role
{
	my ($self, $node, $via) = @_;
	my $t = $self->topology($via);
	for my $id (keys %$t)
	{
		next unless $t->{$id}{port} == $node->port;
		return (grep { $_ eq 'master' } @{ $t->{$id}{flags} }) ? 'master' : 'replica';
	}
	croak "node " . $node->address . " is not in the cluster";
}

sub masters
{
	my ($self, $via) = @_;
	my $t = $self->topology($via);
	my @m = sort { $a->port <=> $b->port } map { $self->node_by_port($t->{$_}{port}) }
	  grep {
		my $f = $t->{$_}{flags};
		(grep { $_ eq 'master' } @$f) && !(grep { $_ eq 'fail' } @$f)
	  } keys %$t;
	return @m;
}

sub replicas_of
{
	my ($self, $master, $via) = @_;
	my $t = $self->topology($via);
	my $mid = $master->id;
	return sort { $a->port <=> $b->port }
	  map { $self->node_by_port($t->{$_}{port}) }
	  grep { ($t->{$_}{master} // '') eq $mid } keys %$t;
}

=pod

=item $rc->node_for_slot($slot, $via) / $rc->keyslot($key)

The master serving $slot according to $via's CLUSTER NODES; CLUSTER KEYSLOT.

=cut

sub node_for_slot
{
	my ($self, $slot, $via) = @_;
	my $t = $self->topology($via);
	for my $id (keys %$t)
	{
		for my $r (@{ $t->{$id}{slots} })
		{
			return $self->node_by_port($t->{$id}{port})
			  if $slot >= $r->[0] && $slot <= $r->[1];
		}
	}
	return undef;
}

sub keyslot
{
	my ($self, $key) = @_;
	my (undef, $v) = $self->raw($self->_any_node, 'CLUSTER', 'KEYSLOT', $key);
	return $v;
}

=pod

=item $rc->wait_ok(timeout => secs)

Wait until every running, unpaused node says cluster_state:ok, calls
every running node online in CLUSTER SHARDS, and they all agree on each slot's
master and on each node's role (importing and migrating marks are not
compared: a migration may be under way).  Dies after the timeout.

=cut

sub wait_ok
{
	my ($self, %p) = @_;
	my $deadline = time() + ($p{timeout} // $PostgreSQL::Test::Utils::timeout_default);
	my $why = '';
	while (time() < $deadline)
	{
		my @live = grep { $_->is_running && !$_->{paused} } @{ $self->{nodes} };
		my %views;
		my $ok = 1;
		for my $n (@live)
		{
			my $info = eval { $n->cli('CLUSTER', 'INFO') } // '';
			if ($info !~ /^cluster_state:ok\r?$/m)
			{
				$ok = 0;
				$why = $n->address . " is not ok";
				last;
			}
			my $t = eval { $self->topology($n) };
			if (!$t) { $ok = 0; $why = $n->address . ": CLUSTER NODES failed"; last; }
			if (!$self->_shards_online($n))
			{
				$ok = 0;
				$why = $n->address . ": CLUSTER SHARDS has a node not online";
				last;
			}
			# slots, and who replicates whom
			$views{ $n->port } = join(' ', sort map {
				my $x = $t->{$_};
				("$x->{port}<" . ($x->{master} // 'M'),
					map { "$_->[0]-$_->[1]:$x->{port}" } @{ $x->{slots} })
			} keys %$t);
		}
		if ($ok)
		{
			my %distinct = map { $_ => 1 } values %views;
			return 1 if keys(%distinct) == 1;
			$why = "the nodes disagree on the slots or the roles";
		}
		usleep(100_000);
	}
	croak "redis cluster $self->{name} not ok in time: $why";
}

# Whether CLUSTER SHARDS of $n says every running node is online.
sub _shards_online
{
	my ($self, $n) = @_;
	my $v = eval { $self->raw($n, 'CLUSTER', 'SHARDS') };
	my %live = map { $_->port => 1 } grep { $_->is_running } @{ $self->{nodes} };
	return 0 unless ref $v eq 'ARRAY';
	for my $s (@$v)
	{
		my %s = @$s;
		for my $node (@{ $s{nodes} })
		{
			my %f = @$node;
			# a node that was stopped is not expected to be online
			return 0 unless ($f{health} // '') eq 'online' || !$live{ $f{port} // 0 };
		}
	}
	return 1;
}

=pod

=item $rc->migrate_slot($slot, $from, $to, stop => 'importing'|'migrating'|'keys', keys => N)

Move $slot from master $from to master $to as redis-cli --cluster reshard
does: CLUSTER SETSLOT IMPORTING on $to, MIGRATING on $from, MIGRATE of the
keys (GETKEYSINSLOT, at most N of them with keys => N), then SETSLOT NODE
on $to, $from and the other masters.  stop => '...' returns after that
step (keys => N alone stops after the keys too); finish_migration goes on.

=cut

sub migrate_slot
{
	my ($self, $slot, $from, $to, %p) = @_;
	my $stop = $p{stop} // (defined $p{keys} ? 'keys' : '');
	$to->cli('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $from->id);
	return if $stop eq 'importing';
	$from->cli('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $to->id);
	return if $stop eq 'migrating';
	$self->_move_keys($slot, $from, $to, $p{keys});
	return if $stop eq 'keys';
	$self->finish_migration($slot, $from, $to);
	return;
}

sub _move_keys
{
	my ($self, $slot, $from, $to, $max) = @_;
	my $moved = 0;
	while (!defined $max || $moved < $max)
	{
		my $n = defined $max ? $max - $moved : 100;
		my @keys = $from->cli('CLUSTER', 'GETKEYSINSLOT', $slot, $n);
		last unless @keys;
		my $pw = $from->{params}{password};
		my (undef, $r) = $self->raw($from, 'MIGRATE', '127.0.0.1', $to->port, '', 0, 5000,
			(defined $pw ? ('AUTH', $pw) : ()), 'KEYS', @keys);
		croak "MIGRATE failed: " . _show($r)
		  unless ref($r) eq 'HASH' && ($r->{status} // '') eq 'OK';
		$moved += @keys;
	}
	return $moved;
}

sub finish_migration
{
	my ($self, $slot, $from, $to) = @_;
	$self->_move_keys($slot, $from, $to);
	# the new owner first: then the old one's MOVED points where the keys are
	$to->cli('CLUSTER', 'SETSLOT', $slot, 'NODE', $to->id);
	$from->cli('CLUSTER', 'SETSLOT', $slot, 'NODE', $to->id);
	for my $m ($self->masters)
	{
		next if $m->port == $to->port || $m->port == $from->port;
		$m->cli('CLUSTER', 'SETSLOT', $slot, 'NODE', $to->id);
	}
	$self->wait_ok;
	return;
}

=pod

=item $rc->failover($replica, $option)

CLUSTER FAILOVER [FORCE|TAKEOVER] on $replica; waits until it is a master
for every node and the cluster is ok.

=cut

sub failover
{
	my ($self, $replica, $option) = @_;
	$replica->cli('CLUSTER', 'FAILOVER', defined $option ? ($option) : ());
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $all = 1;
		for my $n (grep { $_->is_running && !$_->{paused} } @{ $self->{nodes} })
		{
			$all = 0 unless eval { $self->role($replica, $n) eq 'master' };
		}
		last if $all;
		usleep(100_000);
	}
	$self->wait_ok;
	return;
}

=pod

=item $rc->kill9($node) / restart($node) / pause($node) / resume($node) / stop_all

The node's own (CacheExt::Redis) methods, by PID.  restart() after kill9
rejoins the cluster from the node's nodes.conf, empty.

=cut

sub kill9   { my ($self, $n) = @_; $n->kill9;   return; }
sub pause   { my ($self, $n) = @_; $n->pause;   return; }
sub resume  { my ($self, $n) = @_; $n->resume;  return; }
sub restart { my ($self, $n) = @_; $n->restart; return; }

sub stop_all
{
	my $self = shift;
	$_->stop for grep { $_->is_running } @{ $self->{nodes} };
	return;
}

=pod

=item $rc->raw($node, @args) / $rc->raw_pipeline($node, [@cmd1], [@cmd2], ...)

Send the command(s) over one new connection as RESP and read the
replies: in list context (bytes, value) of the one reply, or a list of
[bytes, value] for a pipeline.  bytes is the reply exactly as the node
sent it; value its decoding: a string or integer as a Perl scalar, nil as
undef, an array as an array ref, an error as { error => text }, a status
as { status => text }.  Bounded by the default timeout.  The node's
password, if it has one, goes first (AUTH, its reply not returned).  Over
TLS the bytes go through openssl s_client (this Perl has no TLS socket
module), followed by QUIT so that the node closes the connection.

=cut

sub raw
{
	my ($self, $node, @args) = @_;
	my ($r) = $self->raw_pipeline($node, \@args);
	return wantarray ? @$r : $r->[1];
}

sub raw_pipeline
{
	my ($self, $node, @cmds) = @_;
	my $pw = $node->{params}{password};
	unshift @cmds, [ 'AUTH', $pw ] if defined $pw;
	my @replies = $self->{pki} ? $self->_tls_exchange($node, @cmds)
	  : $self->_exchange($node, @cmds);
	shift @replies if defined $pw;
	return @replies;
}

sub _encode
{
	return join('', map {
		my $c = $_;
		'*' . scalar(@$c) . "\r\n" . join('', map { '$' . length($_) . "\r\n$_\r\n" } @$c)
	} @_);
}

# The replies of @cmds, all of them, as [bytes, value], from $buf.
sub _replies
{
	my ($node, $buf, $n) = @_;
	my ($pos, @replies) = (0);
	while (@replies < $n)
	{
		my ($v, $end) = _resp_parse(\$buf, $pos);
		croak "incomplete reply from " . $node->address unless defined $end;
		push @replies, [ substr($buf, $pos, $end - $pos), $v ];
		$pos = $end;
	}
	return @replies;
}

sub _tls_exchange
{
	my ($self, $node, @cmds) = @_;
	my $pki = $self->{pki};
	my ($in, $out, $err) = (_encode(@cmds, ['QUIT']), '', '');
	# -quiet implies -ign_eof: it reads until the node closes, after QUIT
	IPC::Run::run([ 'openssl', 's_client', '-connect', '127.0.0.1:' . $node->port,
			'-quiet', '-verify_return_error', '-CAfile', $pki->{ca_crt},
			'-cert', $pki->{client_crt}, '-key', $pki->{client_key} ],
		'<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default))
	  or croak "openssl s_client to " . $node->address . " failed: $err";
	my @replies = _replies($node, $out, @cmds + 1);
	pop @replies;
	return @replies;
}

sub _exchange
{
	my ($self, $node, @cmds) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $node->port,
		Proto => 'tcp',
		Timeout => 5) or croak "cannot connect to " . $node->address . ": $!";
	binmode($sock);
	my $out = _encode(@cmds);
	my $off = 0;
	while ($off < length($out))
	{
		my $w = syswrite($sock, $out, length($out) - $off, $off);
		croak "write to " . $node->address . " failed: $!" unless defined $w;
		$off += $w;
	}
	my $buf = '';
	my $pos = 0;
	my @replies;
	my $sel = IO::Select->new($sock);
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (@replies < @cmds)
	{
		my ($v, $end) = _resp_parse(\$buf, $pos);
		if (defined $end)
		{
			push @replies, [ substr($buf, $pos, $end - $pos), $v ];
			$pos = $end;
			next;
		}
		croak "no reply from " . $node->address . " in time" if time() > $deadline;
		next unless $sel->can_read(0.5);
		my $got = sysread($sock, $buf, 65536, length($buf));
		croak "connection to " . $node->address . " closed" unless $got;
	}
	close($sock);
	return @replies;
}

# One RESP2 value at $pos of $$buf: (value, end) or () when incomplete.
sub _resp_parse
{
	my ($buf, $pos) = @_;
	my $nl = index($$buf, "\r\n", $pos);
	return () if $nl < 0;
	my $type = substr($$buf, $pos, 1);
	my $line = substr($$buf, $pos + 1, $nl - $pos - 1);
	my $p = $nl + 2;
	return ({ status => $line }, $p) if $type eq '+';
	return ({ error => $line }, $p) if $type eq '-';
	return ($line + 0, $p) if $type eq ':';
	if ($type eq '$')
	{
		return (undef, $p) if $line == -1;
		return () if length($$buf) < $p + $line + 2;
		return (substr($$buf, $p, $line), $p + $line + 2);
	}
	if ($type eq '*')
	{
		return (undef, $p) if $line == -1;
		my @a;
		for (1 .. $line)
		{
			my ($v, $e) = _resp_parse($buf, $p);
			return () unless defined $e;
			push @a, $v;
			$p = $e;
		}
		return (\@a, $p);
	}
	croak "not RESP at byte $pos: " . substr($$buf, $pos, 20);
}

sub _show
{
	my $v = shift;
	return 'nil' unless defined $v;
	return $v unless ref $v;
	return "-$v->{error}" if ref $v eq 'HASH' && exists $v->{error};
	return "+$v->{status}" if ref $v eq 'HASH';
	return '[' . join(', ', map { _show($_) } @$v) . ']';
}

=pod

=back

=cut

1;
