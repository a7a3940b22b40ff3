# test/perl/CacheExt/Sentinel.pm - a Redis master, two replicas and three
# sentinels on loopback, for TAP tests
#
#   use CacheExt::Sentinel;
#   my $g = CacheExt::Sentinel->new;            # replicating, monitored
#   my $node = cache_ext_node('main', $g);      # $g->url is the Sentinel URL
#   my $m = $g->master;                         # the CacheExt::Redis now master
#   $g->failover;                               # SENTINEL FAILOVER, waits
#   $g->wait_new_master($old, 30);              # after kill9 / pause
#
# Every process is a child of the test script started and stopped by PID
# (CacheExt::Redis).  The sentinels run with down-after-milliseconds 1000
# and failover-timeout 3000, so that a failover takes a few seconds.
# With password => 'pw' the data nodes require it (masterauth too, and the
# sentinels use it: auth-pass); with sentinel_password => 'spw' the
# sentinels require theirs (and use it among themselves: sentinel-pass).

package CacheExt::SentinelProcess;

use strict;
use warnings FATAL => 'all';

use parent -norequire, 'CacheExt::Redis';

use PostgreSQL::Test::Utils;

# A sentinel: redis-server <config> --sentinel, the config written once
# (the sentinel rewrites it as it learns the topology); with pki => (a
# CacheExt::TLS PKI) it listens with TLS only and speaks TLS to the data
# nodes (CacheExt::SentinelTLSProcess).
sub _command { return sentinel_command(@_); }

sub sentinel_command
{
	my $self = shift;
	my $p = $self->{params};
	my $conf = "$self->{dir}/sentinel.conf";
	if (!-e $conf)
	{
		my $name = $p->{master_name} // 'mymaster';
		my $text = join("\n",
			($p->{pki}
				? ('port 0', "tls-port $self->{port}", "tls-cert-file $p->{pki}{ip_crt}",
					"tls-key-file $p->{pki}{ip_key}", "tls-ca-cert-file $p->{pki}{ca_crt}",
					'tls-auth-clients no', 'tls-replication yes')
				: ("port $self->{port}")),
			"bind 127.0.0.1",
			"daemonize no",
			"dir $self->{dir}",
			"logfile " . $self->logfile,
			"sentinel monitor $name 127.0.0.1 $p->{master_port} 2",
			"sentinel down-after-milliseconds $name 1000",
			"sentinel failover-timeout $name 3000",
			"sentinel parallel-syncs $name 1",
			(defined $p->{data_password} ? "sentinel auth-pass $name $p->{data_password}" : ()),
			(defined $p->{password}
				? ("requirepass $p->{password}", "sentinel sentinel-pass $p->{password}") : ()),
			'');
		PostgreSQL::Test::Utils::append_to_file($conf, $text);
	}
	return ('redis-server', $conf, '--sentinel');
}

package CacheExt::SentinelTLSProcess;

use strict;
use warnings FATAL => 'all';

use parent -norequire, 'CacheExt::TLS';

sub _command { return CacheExt::SentinelProcess::sentinel_command(@_); }

package CacheExt::Sentinel;

use strict;
use warnings FATAL => 'all';

use Carp;
use Time::HiRes qw(usleep time);
use Test::More;

use CacheExt::Redis;
use CacheExt::TLS;

sub new
{
	my ($class, %p) = @_;
	my $self = bless { name => $p{master_name} // 'mymaster', %p }, $class;
	my @auth = defined $p{password}
	  ? (password => $p{password},
		extra_args => [ '--requirepass', $p{password}, '--masterauth', $p{password} ])
	  : ();
	$self->{nodes} = [
		map {
			$p{tls}
			  ? CacheExt::TLS->new(pki => $p{tls}, name => "data$_", @auth,
				extra_args => [ '--tls-replication', 'yes', @{ { @auth }->{extra_args} // [] } ])
			  : CacheExt::Redis->new(name => "data$_", @auth)
		} 0 .. 2
	];
	my $m = $self->{nodes}[0];
	$_->cli('REPLICAOF', '127.0.0.1', $m->port) for @{ $self->{nodes} }[ 1, 2 ];
	$self->_wait('replicas attached', 30, sub {
		$m->cli('INFO', 'replication') =~ /connected_slaves:2/;
	});
	$self->{sentinels} = [
		map {
			($p{tls} ? 'CacheExt::SentinelTLSProcess' : 'CacheExt::SentinelProcess')->new(
				($p{tls} ? (pki => $p{tls}) : ()),
				name => "sentinel$_",
				master_port => $m->port,
				master_name => $self->{name},
				data_password => $p{password},
				(defined $p{sentinel_password} ? (password => $p{sentinel_password}) : ()))
		} 0 .. 2
	];
	$self->_wait('sentinels see each other and the replicas', 60, sub {
		for my $s (@{ $self->{sentinels} })
		{
			my %h = $self->_master_info($s);
			return 0 unless ($h{'num-slaves'} // 0) == 2 && ($h{'num-other-sentinels'} // 0) == 2;
		}
		return 1;
	});
	return $self;
}

sub nodes { return @{ $_[0]->{nodes} }; }
sub sentinels { return @{ $_[0]->{sentinels} }; }

# The Sentinel URL of this group (redis-sentinel://, or rediss-sentinel://
# with tls => 1 given to url()).
sub url
{
	my ($self, %o) = @_;
	my $scheme = $o{tls} ? 'rediss-sentinel' : 'redis-sentinel';
	return "$scheme://" . join(',', map { '127.0.0.1:' . $_->port } @{ $self->{sentinels} })
	  . "/$self->{name}";
}

sub _wait
{
	my ($self, $what, $secs, $cond) = @_;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		# a sentinel reconfiguring a node ends with CLIENT KILL TYPE normal,
		# which may cut the redis-cli asking: ask again
		return 1 if eval { $cond->() };
		usleep(100_000);
	}
	my @state = map {
		'node ' . $_->port . ': '
		  . ($_->is_running && !$_->{paused} ? join(' ', grep { /^(role|master_port|master_link_status|connected_slaves)/ }
				split /\r?\n/, $_->cli('INFO', 'replication')) : 'down')
	} @{ $self->{nodes} };
	croak "sentinel group: waited ${secs}s in vain for $what; sentinels say master "
	  . ($self->master_port // 'unknown') . "; " . join('; ', @state);
}

sub _master_info
{
	my ($self, $s) = @_;
	my @l = split /\n/, $s->cli('SENTINEL', 'master', $self->{name});
	my %h;
	while (@l >= 2) { my $k = shift @l; $h{$k} = shift @l; }
	return %h;
}

# The port the sentinels agree is the master (undef while they do not).
sub master_port
{
	my $self = shift;
	my %ports;
	for my $s (@{ $self->{sentinels} })
	{
		next unless $s->is_running;
		my $r = $s->cli('SENTINEL', 'get-master-addr-by-name', $self->{name});
		my (undef, $port) = split /\n/, $r;
		$ports{ $port // '' }++;
	}
	my @agreed = grep { $_ ne '' && $ports{$_} >= 2 } keys %ports;
	return @agreed == 1 ? $agreed[0] : undef;
}

sub node_by_port
{
	my ($self, $port) = @_;
	my ($n) = grep { $_->port == $port } @{ $self->{nodes} };
	return $n;
}

# The data node the sentinels agree is master, once it says so itself.
sub master
{
	my $self = shift;
	my $port = $self->master_port // return undef;
	my $n = $self->node_by_port($port);
	return undef unless $n && $n->is_running && !$n->{paused};
	my $role = $n->cli('ROLE');
	return $role =~ /^master/ ? $n : undef;
}

# Wait until a master other than $old (a node) is agreed and says master.
sub wait_new_master
{
	my ($self, $old, $secs) = @_;
	my $new;
	$self->_wait('a new master', $secs // 60, sub {
		$new = $self->master;
		return $new && $new->port != $old->port;
	});
	note "new master: 127.0.0.1:" . $new->port;
	return $new;
}

# SENTINEL FAILOVER, then wait for the new master; returns it.
sub failover
{
	my $self = shift;
	my $old = $self->master // croak 'no master to fail over from';
	my $deadline = time() + 90;

	# A sentinel refuses, or aborts, a failover while no replica is fit
	# (just reconfigured, or within 2 x failover-timeout of the last one):
	# ask again until one happens.
	while (time() < $deadline)
	{
		my ($out, $err) = $self->{sentinels}[0]->_run_cli(10, 'SENTINEL', 'FAILOVER', $self->{name});
		my $until = time() + 8;
		while (time() < $until)
		{
			my $new = $self->master;
			if ($new && $new->port != $old->port)
			{
				note "new master: 127.0.0.1:" . $new->port;
				return $new;
			}
			usleep(100_000);
		}
	}
	croak 'SENTINEL FAILOVER: no new master in 90 s';
}

# Wait until $node is a replica of the current master, in sync.
sub wait_replica
{
	my ($self, $node, $secs) = @_;
	$self->_wait('node ' . $node->port . ' back as a replica', $secs // 60, sub {
		my $info = $node->cli('INFO', 'replication');
		return $info =~ /role:slave/ && $info =~ /master_link_status:up/;
	});
	return;
}

# Wait until the sentinels agree on a master that says so and has both
# other nodes attached (after a failover and a restart, whichever node the
# sentinels settled on); returns it.
sub wait_healthy
{
	my ($self, $secs) = @_;
	my $m;
	$self->_wait('a master with two replicas attached', $secs // 90, sub {
		$m = $self->master;
		return $m && $m->cli('INFO', 'replication') =~ /connected_slaves:2/;
	});
	return $m;
}

1;
