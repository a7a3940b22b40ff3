# test/t/240_cluster_map.pl - Redis Cluster's routing (src/redis/cluster_map.c)
# against a real 3-master, 3-replica cluster
#
# No PostgreSQL: the C parser is driven by test/fuzz/cluster_probe.c, built
# here (with ASan and UBSan when the compiler has them), fed the raw RESP
# bytes the live nodes send (captured over a socket by
# CacheExt::RedisCluster::raw), and its text compared with two independent
# readings: CLUSTER NODES (the cluster's own text form of the same state)
# and this file's decoding of the same bytes in Perl.
#
#  - ClusterKeySlot against CLUSTER KEYSLOT for hash-tag edge cases and
#    random binary keys;
#  - CLUSTER SLOTS and CLUSTER SHARDS from every node: the same nodes,
#    roles and slot ranges;
#  - MOVED from a wrong master and from a replica; during a slot migration
#    stopped half-way: ASK for a moved key, MOVED from the importing node
#    without ASKING, TRYAGAIN for a multi-key read split across the two;
#    the map after the migration ends;
#  - the map after CLUSTER FAILOVER; endpoints announced as unknown (nil,
#    ":port" redirects) and as "?"; CLUSTER SHARDS with a failed shard and
#    CLUSTERDOWN while it is down; the shard restarted.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use CacheExt::RedisCluster;

delete $ENV{CE_L1};    # no PostgreSQL here: the local tier pass would only repeat this

# ---- the probe -----------------------------------------------------------------
my $src = $ENV{TESTDIR} // '.';
my $probe = "$PostgreSQL::Test::Utils::tmp_check/cluster_probe";
{
	my ($cf, $lf) = ('', '');
	IPC::Run::run([ 'pkg-config', '--cflags', 'hiredis' ], '>', \$cf) or die "pkg-config";
	IPC::Run::run([ 'pkg-config', '--libs', 'hiredis' ], '>', \$lf) or die "pkg-config";
	my @base = ('cc', '-g', '-O1', '-Wall', '-Werror', split(' ', $cf), "-I$src/src",
		"$src/test/fuzz/cluster_probe.c", "$src/src/redis/cluster_map.c",
		"$src/src/redis/resp.c", split(' ', $lf), '-o', $probe);
	my ($out, $err) = ('', '');
	my @san = ('-fsanitize=address,undefined', '-fno-sanitize-recover=all');
	if (IPC::Run::run([ @base[ 0 .. 0 ], @san, @base[ 1 .. $#base ] ], '>', \$out, '2>', \$err)
		&& IPC::Run::run([$probe, 'keyslot'], '<', \"", '>', \$out, '2>', \$err))
	{
		note "cluster_probe built with ASan and UBSan";
	}
	else
	{
		($out, $err) = ('', '');
		IPC::Run::run(\@base, '>', \$out, '2>', \$err)
		  or BAIL_OUT("cannot build cluster_probe: $err$out");
		note "cluster_probe built without sanitizers";
	}
}
# and a build without sanitizers, for valgrind (when it is installed)
my $plain_probe = "$probe-plain";
{
	my ($cf, $lf, $out) = ('', '', '');
	IPC::Run::run([ 'pkg-config', '--cflags', 'hiredis' ], '>', \$cf);
	IPC::Run::run([ 'pkg-config', '--libs', 'hiredis' ], '>', \$lf);
	IPC::Run::run([ 'cc', '-g', '-O0', split(' ', $cf), "-I$src/src",
		"$src/test/fuzz/cluster_probe.c", "$src/src/redis/cluster_map.c",
		"$src/src/redis/resp.c", split(' ', $lf), '-o', $plain_probe ], '>', \$out, '2>&1')
	  or BAIL_OUT("cannot build cluster_probe without sanitizers: $out");
}
my $valgrind = grep { -x "$_/valgrind" } split(/:/, $ENV{PATH});
$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

# run_probe(stdin bytes, args...): (stdout, exit status); stderr must be empty
sub run_probe
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $probe, @args ], '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	my $rc = $? >> 8;
	is($err, '', "probe @args: nothing on stderr (no sanitizer report)") if $err ne '';
	return ($out, $rc);
}

sub probe_map
{
	my ($bytes, @args) = @_;
	my ($out, $rc) = run_probe($bytes, @args);
	return ($rc, $out) if $rc != 0;
	return (0, join("\n", sort grep { length } split /\n/, $out));
}

my $rc = CacheExt::RedisCluster->new(masters => 3, replicas => 1, node_timeout => 2000);
my $H = '127.0.0.1';

# ---- key slots --------------------------------------------------------------------
{
	my @keys = ('', 'foo', '123456789', '{}', '{a', 'a}b{c}', '{{x}}', '{a}', '{', '}', '}{',
		'{}{x}', 'x{}', 'a{b}', '{user1000}.following', '{user1000}.followers',
		'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', "\x00{\xff}", "{\x00}",
		'cache_ext:{t:16384}:e:1', 'k' x 1000);
	srand(240);
	my @pool = ('a' .. 'z', '0' .. '9', '{', '}', '{', '}', ':', "\x00", "\xff", "\x80");
	for (1 .. 400)
	{
		my $len = int(rand(40));
		push @keys, join('', map { $pool[ int(rand(@pool)) ] } 1 .. $len);
	}
	my @want = map { $_->[1] }
	  $rc->raw_pipeline(($rc->nodes)[0], map { [ 'CLUSTER', 'KEYSLOT', $_ ] } @keys);
	my ($out, $st) = run_probe(join('', map { unpack('H*', $_) . "\n" } @keys), 'keyslot');
	is($st, 0, 'probe keyslot ran');
	my @got = split /\n/, $out;
	is_deeply(\@got, \@want, scalar(@keys) . ' keys: ClusterKeySlot agrees with CLUSTER KEYSLOT');
	is($got[1], 12182, 'foo is in slot 12182');
	is($got[2], 12739, '123456789 is in slot 12739 (CRC16-XMODEM check value 0x31c3)');
	is($got[14], $got[15], '{user1000}.following and .followers share a slot (the spec\'s example)');
}

# ---- expected maps --------------------------------------------------------------
# From CLUSTER NODES (text): the lines the probe prints, sorted.
sub expect_from_nodes
{
	my ($via, %p) = @_;
	my $t = $rc->topology($via);
	my $host = $p{host} // $H;
	my @owner = (undef) x 16384;
	my @lines;
	my %addr = map { $_ => "$host:$t->{$_}{port}" } keys %$t;
	for my $id (keys %$t)
	{
		my $n = $t->{$id};
		my $fail = grep { $_ eq 'fail' } @{ $n->{flags} };
		next if $p{skip_failed_replicas} && $fail && defined $n->{master};
		my $role = defined $n->{master} ? "replica-of $addr{$n->{master}}" : 'master';
		push @lines, "node $addr{$id} $id $role " . ($fail && $p{health} ? 'offline' : 'online');
		for my $r (@{ $n->{slots} }) { $owner[$_] = $addr{$id} for $r->[0] .. $r->[1]; }
	}
	push @lines, ranges(@owner);
	my $masters = grep { /^node \S+ \S+ master/ } @lines;
	my $nodes = grep { /^node / } @lines;
	push @lines, "ok nodes=$nodes masters=$masters";
	return join("\n", sort @lines);
}

sub ranges
{
	my @owner = @_;
	my @l;
	for (my $lo = 0; $lo < 16384;)
	{
		my $hi = $lo;
		my $o = $owner[$lo] // 'none';
		$hi++ while $hi + 1 < 16384 && ($owner[ $hi + 1 ] // 'none') eq $o;
		push @l, "range $lo-$hi $o";
		$lo = $hi + 1;
	}
	return @l;
}

# From this file's decoding of CLUSTER SLOTS.
sub expect_from_slots
{
	my ($v, $asked) = @_;
	my (%node, @owner);
	for my $e (@$v)
	{
		my ($lo, $hi, $m, @reps) = @$e;
		my $addr = sub { my $x = shift; (defined $x->[0] && $x->[0] ne '' ? $x->[0] : $asked) . ":$x->[1]" };
		my $ma = $addr->($m);
		$node{$ma} = "node $ma $m->[2] master online";
		$node{ $addr->($_) } = "node " . $addr->($_) . " $_->[2] replica-of $ma online" for @reps;
		$owner[$_] = $ma for $lo .. $hi;
	}
	my $masters = grep { / master online$/ } values %node;
	return join("\n", sort(values(%node), ranges(@owner),
		"ok nodes=" . scalar(keys %node) . " masters=$masters"));
}

# From this file's decoding of CLUSTER SHARDS (maps as flat arrays).
sub expect_from_shards
{
	my ($v, $asked) = @_;
	my (%node, @owner);
	for my $s (@$v)
	{
		my %s = @$s;
		my @nodes = map { +{@$_} } @{ $s{nodes} };
		my ($m) = grep { $_->{role} eq 'master' } @nodes;
		next unless $m;
		my $addr = sub { my $x = shift; my $h = $x->{endpoint} // $x->{ip}; ($h ne '' ? $h : $asked) . ":$x->{port}" };
		my $ma = $addr->($m);
		for my $n (@nodes)
		{
			$node{ $addr->($n) } = "node " . $addr->($n) . " $n->{id} "
			  . ($n->{role} eq 'master' ? 'master' : "replica-of $ma") . ' '
			  . ($n->{health} eq 'online' ? 'online' : 'offline');
		}
		my @sl = @{ $s{slots} };
		while (my ($lo, $hi) = splice(@sl, 0, 2)) { $owner[$_] = $ma for $lo .. $hi; }
	}
	my $masters = grep { / master \w+$/ } values %node;
	return join("\n", sort(values(%node), ranges(@owner),
		"ok nodes=" . scalar(keys %node) . " masters=$masters"));
}

# Check the probe on CLUSTER SLOTS and CLUSTER SHARDS of every running node.
sub check_maps
{
	my ($label, %p) = @_;
	for my $n (grep { $_->is_running } $rc->nodes)
	{
		my ($bytes, $v) = $rc->raw($n, 'CLUSTER', 'SLOTS');
		my ($st, $got) = probe_map($bytes, 'slots', $H);
		is($st, 0, "$label: CLUSTER SLOTS of " . $n->address . " accepted") or diag $got;
		is($got, expect_from_slots($v, $H), "$label: CLUSTER SLOTS of " . $n->address
			  . ": the probe reads what Perl reads");
		is($got, expect_from_nodes($n, skip_failed_replicas => 1),
			"$label: CLUSTER SLOTS of " . $n->address . ": as CLUSTER NODES says")
		  unless $p{no_nodes_compare};

		($bytes, $v) = $rc->raw($n, 'CLUSTER', 'SHARDS');
		($st, $got) = probe_map($bytes, 'shards', $H);
		is($st, 0, "$label: CLUSTER SHARDS of " . $n->address . " accepted") or diag $got;
		is($got, expect_from_shards($v, $H), "$label: CLUSTER SHARDS of " . $n->address
			  . ": the probe reads what Perl reads");
		is($got, expect_from_nodes($n, health => 1),
			"$label: CLUSTER SHARDS of " . $n->address . ": as CLUSTER NODES says")
		  unless $p{no_nodes_compare};
	}
	return;
}

# The same under valgrind memcheck (plain build): no error, no leak, the
# same output as the sanitized build.
sub valgrind_same
{
	my ($bytes, $label, @args) = @_;
  SKIP:
	{
		skip 'valgrind is not installed', 2 unless $valgrind;
		my ($want) = run_probe($bytes, @args);
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'valgrind', '-q', '--error-exitcode=99', '--leak-check=full',
			'--errors-for-leak-kinds=definite,indirect', $plain_probe, @args ],
			'<', \$bytes, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
		my $st = $? >> 8;
		ok($st == 0 || ($st == 1 && $want =~ /^error /), "valgrind, $label: no error (status $st)")
		  or diag $err;
		is($out, $want, "valgrind, $label: the same output");
	}
	return;
}

sub redirect_is
{
	my ($bytes, $want, $label, $asked) = @_;
	my ($out) = run_probe($bytes, 'redirect', $asked // $H);
	chomp $out;
	is($out, $want, "$label: " . ($bytes =~ s/\r\n\z//r));
	return;
}

check_maps('fresh cluster');

# ---- malformed replies: refused with a reason, never a crash ------------------------
# resp(value): RESP2 of a Perl value: an array ref, { i => N } an integer,
# undef nil, { e => text } an error, anything else a bulk string.
sub resp
{
	my $v = shift;
	return "\$-1\r\n" unless defined $v;
	return '*' . scalar(@$v) . "\r\n" . join('', map { resp($_) } @$v) if ref $v eq 'ARRAY';
	return ":$v->{i}\r\n" if ref $v eq 'HASH' && exists $v->{i};
	return "-$v->{e}\r\n" if ref $v eq 'HASH';
	return '$' . length($v) . "\r\n$v\r\n";
}
{
	my $id = sub { sprintf('%040x', shift) };
	my $node = sub { [ $_[0], { i => $_[1] }, $id->($_[2] // $_[1]) ] };
	my $entry = sub { my ($lo, $hi, @n) = @_; [ { i => $lo }, { i => $hi }, @n ] };
	my @bad_slots = (
		[ { e => 'ERR This instance has cluster support disabled' }, qr/the reply is not an array/ ],
		[ [ $entry->(0, 100, $node->('a', 1)), $entry->(100, 200, $node->('b', 2)) ], qr/slot 100 is in two ranges/ ],
		[ [ $entry->(0, 16384, $node->('a', 1)) ], qr/not a slot range within 0\.\.16383/ ],
		[ [ $entry->(200, 100, $node->('a', 1)) ], qr/not a slot range/ ],
		[ [ $entry->(-1, 100, $node->('a', 1)) ], qr/not a slot range/ ],
		[ [ [ '0', '100', $node->('a', 1) ] ], qr/not a slot range/ ],
		[ [ $entry->(0, 1, $node->('a', 0)) ], qr/port is not an integer in 1\.\.65535/ ],
		[ [ $entry->(0, 1, $node->('a', 65536)) ], qr/port is not an integer/ ],
		[ [ $entry->(0, 1, [ 'a', '6379' ]) ], qr/port is not an integer/ ],
		[ [ $entry->(0, 1, [ 'a b', { i => 1 } ]) ], qr/endpoint is not a valid host/ ],
		[ [ $entry->(0, 1, [ "a\x00b", { i => 1 } ]) ], qr/endpoint is not a valid host/ ],
		[ [ $entry->(0, 1, [ 'h' x 256, { i => 1 } ]) ], qr/endpoint is not a valid host/ ],
		[ [ $entry->(0, 1, [ { i => 5 }, { i => 1 } ]) ], qr/endpoint is not a valid host/ ],
		[ [ $entry->(0, 1, [ 'a', { i => 1 }, 'f' x 39 ]) ], qr/node id is not 40 hex digits/ ],
		[ [ $entry->(0, 1, [ 'a', { i => 1 }, 'g' x 40 ]) ], qr/node id is not 40 hex digits/ ],
		[ [ $entry->(0, 1, [ 'a' ]) ], qr/a node is not \[endpoint, port/ ],
		[ [ [ { i => 0 }, { i => 1 } ] ], qr/entry 0 is not \[start, end, master/ ],
		[ [ $entry->(0, 1, $node->('a', 1), $node->('b', 2)), $entry->(2, 3, $node->('b', 2)) ],
			qr/changes role or master/ ],
		[ [ $entry->(0, 1, $node->('a', 1), $node->('a', 1)) ], qr/changes role or master/ ],
		[ [ $entry->(0, 1, $node->('a', 1, 1)), $entry->(2, 3, $node->('a', 1, 2)) ],
			qr/two node ids at the address/ ],
		[ [ $entry->(0, 1, $node->('a', 1, 1)), $entry->(2, 3, $node->('b', 1, 1)) ],
			qr/changes address/ ],
		[ [ $entry->(0, 1, map { $node->('h', $_) } 1 .. 1025) ], qr/more than 1024 nodes/ ],
		[ [ map { $entry->($_, $_, $node->('h', $_ + 1)) } 0 .. 1024 ], qr/more than 1024 nodes/ ]);
	for my $c (@bad_slots)
	{
		my ($st, $got) = probe_map(resp($c->[0]), 'slots', $H);
		is($st, 1, "malformed CLUSTER SLOTS refused ($c->[1])");
		like($got, qr/^error CLUSTER SLOTS: /, 'the reason names the command');
		like($got, $c->[1], 'the reason says what is wrong');
	}
	my ($st, $got) = probe_map(resp([ map { $entry->($_, $_, $node->('h', $_ + 1)) } 0 .. 1023 ]), 'slots', $H);
	like($got, qr/^ok nodes=1024 masters=1024$/m, '1024 nodes are accepted');
	($st, $got) = probe_map(resp([ $entry->(0, 1, [ undef, { i => 7 } ]), $entry->(2, 3, [ '', { i => 8 } ]),
		$entry->(4, 5, [ '?', { i => 9 } ], [ 'fe80::1%eth0', { i => 10 } ]) ]), 'slots', '::1');
	is($got, join("\n", sort 'ok nodes=4 masters=3', 'node ::1:7 - master online', 'node ::1:8 - master online',
		'node ?:9 - master online unknown-endpoint', 'node fe80::1%eth0:10 - replica-of ?:9 online',
		'range 0-1 ::1:7', 'range 2-3 ::1:8', 'range 4-5 ?:9', 'range 6-16383 none'),
		'nil and empty endpoints are the host asked; "?" is unknown; IPv6 with a zone');

	my $snode = sub {
		my ($port, $role, %more) = @_;
		my %f = (id => $id->($port), port => { i => $port }, ip => '127.0.0.1',
			endpoint => '127.0.0.1', role => $role, health => 'online', %more);
		[ map { ($_, $f{$_}) } sort keys %f ]
	};
	my @bad_shards = (
		[ [ [ 'slots', [ { i => 0 }, { i => 1 } ], 'nodes', [ $snode->(1, 'master'), $snode->(2, 'master') ] ] ],
			qr/more than one master/ ],
		[ [ [ 'slots', [ { i => 0 }, { i => 1 } ], 'slots', [], 'nodes', [] ] ], qr/shard 0 is not/ ],
		[ [ [ 'slots', [ { i => 0 } ], 'nodes', [] ] ], qr/shard 0 is not/ ],
		[ [ [ 'slots', [ { i => 0 }, { i => 1 } ] ] ], qr/shard 0 is not/ ],
		[ [ [ 'slots', [ { i => 0 }, { i => 1 } ], 'nodes', [ [ @{ $snode->(1, 'master') }, 'port', { i => 2 } ] ] ] ],
			qr/node 0 is not a map of distinct fields/ ],
		[ [ [ 'slots', [], 'nodes', [ [ 'id' ] ] ] ], qr/node 0 is not a map/ ],
		[ [ [ 'slots', [], 'nodes', [ $snode->(1, 'primary') ] ] ], qr/role is neither master nor replica/ ],
		[ [ [ 'slots', [ { i => 0 }, { i => 16383 } ], 'nodes', [ $snode->(1, 'master') ] ],
			[ 'slots', [ { i => 5 }, { i => 5 } ], 'nodes', [ $snode->(2, 'master') ] ] ], qr/slot 5 is in two ranges/ ]);
	for my $c (@bad_shards)
	{
		my ($st, $got) = probe_map(resp($c->[0]), 'shards', $H);
		is($st, 1, "malformed CLUSTER SHARDS refused ($c->[1])");
		like($got, qr/^error CLUSTER SHARDS: /, 'the reason names the command');
		like($got, $c->[1], 'the reason says what is wrong');
	}
	my $two = resp([ [ 'slots', [ { i => 0 }, { i => 9 } ], 'future-field', [ { i => 1 } ], 'nodes',
		[ $snode->(2, 'replica', 'tls-port' => { i => 12 }, health => 'loading'),
		  $snode->(1, 'master', 'tls-port' => { i => 11 }) ] ] ]);
	($st, $got) = probe_map($two, 'shards', $H);
	is($got, join("\n", sort 'ok nodes=2 masters=1', "node $H:1 " . $id->(1) . ' master online',
		"node $H:2 " . $id->(2) . " replica-of $H:1 offline", "range 0-9 $H:1", 'range 10-16383 none'),
		'CLUSTER SHARDS: the master whatever its place, unknown fields ignored, "loading" is not online');
	($st, $got) = probe_map($two, 'shards', $H, 'tls');
	like($got, qr/^node $H:11 .* master online$/m, 'with TLS, the tls-port');
	($st, $got) = probe_map(resp([ [ 'slots', [], 'nodes', [ $snode->(1, 'master') ] ] ]), 'shards', $H, 'tls');
	like($got, qr/^error .*port is not an integer/, 'with TLS, a node without tls-port is refused');

	for my $c (
		[ 'MOVED 16384 a:1', 'other redirect: no slot in 0..16383' ],
		[ 'MOVED 1 a:0', 'other redirect: no port in 1..65535 after the last \':\'' ],
		[ 'MOVED 1 a', 'other redirect: no port in 1..65535 after the last \':\'' ],
		[ 'MOVED 1 [::1]:6379', 'other redirect: the host is not valid' ],
		[ 'MOVED  1 a:1', 'other redirect: no slot in 0..16383' ],
		[ 'MOVED 1 a:1 ', 'other redirect: no port in 1..65535 after the last \':\'' ],
		[ 'MOVED 1 a:+1', 'other redirect: no port in 1..65535 after the last \':\'' ],
		[ 'MOVED', 'other redirect: no slot in 0..16383' ],
		[ 'MOVEDX 1 a:1', 'other' ],
		[ 'ASK 00005 b:07000', 'ask 5 b:7000' ],
		[ 'ASK 5 2001:db8::1:7000', 'ask 5 2001:db8::1:7000' ],
		[ 'MOVED 5 :7000', 'moved 5 ::1:7000' ],
		[ 'ASKING', 'other' ],
		[ 'TRYAGAIN', 'tryagain' ],
		[ 'CLUSTERDOWNX', 'other' ],
		[ 'CLUSTERDOWN Hash slot not served', 'clusterdown' ])
	{
		redirect_is(resp({ e => $c->[0] }), $c->[1], 'hand-made error', '::1');
	}
	redirect_is(resp('MOVED 1 a:1'), 'not-error', 'a bulk string that looks like a redirect');
}
{
	my $n = ($rc->nodes)[0];
	my ($b) = $rc->raw($n, 'CLUSTER', 'SLOTS');
	valgrind_same($b, 'CLUSTER SLOTS', 'slots', $H);
	($b) = $rc->raw($n, 'CLUSTER', 'SHARDS');
	valgrind_same($b, 'CLUSTER SHARDS', 'shards', $H);
	valgrind_same($b, 'CLUSTER SHARDS read as CLUSTER SLOTS', 'slots', $H);
	($b) = $rc->raw($n, 'GET', 'foo');
	valgrind_same($b, 'a GET', 'redirect', $H);
}

# ---- MOVED -----------------------------------------------------------------------
my @masters = $rc->masters;
is(scalar(@masters), 3, 'three masters');
{
	my $slot = $rc->keyslot('foo');
	my $owner = $rc->node_for_slot($slot);
	my ($wrong) = grep { $_->port != $owner->port } @masters;
	my ($bytes) = $rc->raw($wrong, 'GET', 'foo');
	redirect_is($bytes, "moved $slot $H:" . $owner->port, 'GET on a wrong master');
	my ($rep) = $rc->replicas_of($wrong);
	($bytes) = $rc->raw($rep, 'GET', 'foo');
	redirect_is($bytes, "moved $slot $H:" . $owner->port, 'GET on a replica');
	($bytes) = $rc->raw($owner, 'SET', 'foo', 'bar');
	redirect_is($bytes, 'not-error', 'SET on the owner');
	($bytes) = $rc->raw($owner, 'NOSUCHCOMMAND');
	redirect_is($bytes, 'other', 'an unknown command');
}

# ---- a slot migration stopped half-way: ASK, TRYAGAIN ----------------------------
{
	my $slot = $rc->keyslot('{mig}');
	my $from = $rc->node_for_slot($slot);
	my ($to) = grep { $_->port != $from->port } @masters;
	my @keys = map { "{mig}:$_" } 1 .. 6;
	$rc->raw($from, 'SET', $_, "v$_") for @keys;

	$rc->migrate_slot($slot, $from, $to, keys => 3);
	my %left = map { $_ => 1 } $from->cli('CLUSTER', 'GETKEYSINSLOT', $slot, 100);
	my @moved = grep { !$left{$_} } @keys;
	my @stayed = grep { $left{$_} } @keys;
	is(scalar(@moved), 3, 'three keys migrated, three left');

	my ($bytes) = $rc->raw($from, 'GET', $moved[0]);
	redirect_is($bytes, "ask $slot $H:" . $to->port, 'GET of a migrated key on the source');
	($bytes, my $v) = $rc->raw($from, 'GET', $stayed[0]);
	is($v, "v$stayed[0]", 'a key not migrated yet is read on the source');
	($bytes) = $rc->raw($to, 'GET', $moved[0]);
	redirect_is($bytes, "moved $slot $H:" . $from->port, 'GET on the target without ASKING');
	my @r = $rc->raw_pipeline($to, ['ASKING'], [ 'GET', $moved[0] ]);
	is($r[1][1], "v$moved[0]", 'ASKING, then GET on the target reads the migrated key');
	redirect_is($r[0][0], 'not-error', 'ASKING');
	($bytes) = $rc->raw($from, 'MGET', $moved[0], $stayed[0]);
	redirect_is($bytes, 'tryagain', 'MGET split across source and target');
	is($rc->node_for_slot($slot)->port, $from->port, 'mid-migration, CLUSTER NODES: the source still serves the slot');
	check_maps('mid-migration');

	$rc->finish_migration($slot, $from, $to);
	is($rc->node_for_slot($slot)->port, $to->port, 'after the migration the target serves the slot');
	($bytes) = $rc->raw($from, 'GET', $moved[0]);
	redirect_is($bytes, "moved $slot $H:" . $to->port, 'GET on the old owner after the migration');
	($bytes, $v) = $rc->raw($to, 'GET', $stayed[0]);
	is($v, "v$stayed[0]", 'every key reached the target');
	check_maps('after the migration');
}

# ---- failover ------------------------------------------------------------------
{
	my $m = $masters[0];
	my ($r) = $rc->replicas_of($m);
	$rc->failover($r);
	is($rc->role($r), 'master', 'the replica is master after CLUSTER FAILOVER');
	is($rc->role($m), 'replica', 'the old master is its replica');
	check_maps('after a failover');
	@masters = $rc->masters;
}

# ---- a master killed: its replica takes over ---------------------------------------
{
	my $m = $masters[1];
	my ($r) = $rc->replicas_of($m);
	$rc->kill9($m);
	my $deadline = time() + 60;
	my $all = 0;
	while (!$all && time() < $deadline)
	{
		$all = 1;
		for my $n (grep { $_->is_running } $rc->nodes)
		{
			$all = 0 unless eval { $rc->role($r, $n) eq 'master' };
		}
		usleep(100_000) unless $all;
	}
	ok($all, 'a master killed: every node calls its replica master');
	$rc->wait_ok;
	my ($bytes) = $rc->raw($r, 'CLUSTER', 'SHARDS');
	my ($st, $got) = probe_map($bytes, 'shards', $H);
	like($got, qr/^node $H:${\ $m->port} \S+ \S+.* offline$/m, 'the killed master is in CLUSTER SHARDS, offline')
	  or diag $got;
	check_maps('the old master down', no_nodes_compare => 1);
	$rc->restart($m);
	$rc->wait_ok;
	is($rc->role($m), 'replica', 'the old master came back as a replica');
	check_maps('the old master back');
	@masters = $rc->masters;
}

# ---- endpoints the nodes do not know -------------------------------------------
{
	my $n = $masters[0];
	my $slot = $rc->keyslot('foo');
	my $owner = $rc->node_for_slot($slot);
	my ($wrong) = grep { $_->port != $owner->port } @masters;

	$_->cli('CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'unknown-endpoint') for $rc->nodes;
	my ($bytes, $v) = $rc->raw($n, 'CLUSTER', 'SLOTS');
	ok(!defined $v->[0][2][0], 'unknown-endpoint: CLUSTER SLOTS gives nil endpoints');
	my ($st, $got) = probe_map($bytes, 'slots', 'localhost');
	is($got, expect_from_nodes($n, host => 'localhost'), 'nil endpoints are the host asked');
	($bytes) = $rc->raw($wrong, 'GET', 'foo');
	like($bytes, qr/^-MOVED \d+ :\d+\r\n\z/, 'unknown-endpoint: MOVED names no host');
	redirect_is($bytes, "moved $slot ::1:" . $owner->port, 'MOVED to ":port" is the host asked', '::1');

	$_->cli('CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'hostname') for $rc->nodes;
	($bytes, $v) = $rc->raw($n, 'CLUSTER', 'SLOTS');
	($st, $got) = probe_map($bytes, 'slots', $H);
	is($st, 0, 'hostname endpoints with no hostname: accepted');
	my $unknown = () = $got =~ /^node \?:\d+ .* unknown-endpoint$/mg;
	is($unknown, $rc->nodes + 0, 'hostname endpoints with no hostname: every node is "?", unknown')
	  or diag $got;
	($bytes) = $rc->raw($wrong, 'GET', 'foo');
	note "MOVED with hostname endpoints and none set: " . ($bytes =~ s/\r\n//r);
	my ($out) = run_probe($bytes, 'redirect', $H);
	like($out, qr/^moved $slot (\?:\d+ unknown|$H:\d+)$/, 'MOVED then: "?" is unknown, empty is the host asked');

	$_->cli('CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'ip') for $rc->nodes;
}

# ---- pause and resume a replica ----------------------------------------------------
{
	my ($r) = $rc->replicas_of($masters[1]);
	$rc->pause($r);
	usleep(300_000);
	$rc->resume($r);
	$rc->wait_ok;
	pass('a replica paused and resumed: the cluster is ok');
}

# ---- a shard down: CLUSTERDOWN, failed nodes in CLUSTER SHARDS --------------------
{
	my $m = $masters[2];
	my ($r) = $rc->replicas_of($m);
	my ($live) = grep { $_->port != $m->port } @masters;
	$rc->kill9($r);
	$rc->kill9($m);
	my $deadline = time() + 60;
	my $state = '';
	while (time() < $deadline)
	{
		($state) = $live->cli('CLUSTER', 'INFO') =~ /^cluster_state:(\w+)/m;
		last if $state eq 'fail';
		usleep(100_000);
	}
	is($state, 'fail', 'a whole shard killed: the cluster fails');
	my ($bytes) = $rc->raw($live, 'GET', 'foo');
	redirect_is($bytes, 'clusterdown', 'a read while the cluster is down');
	($bytes, my $v) = $rc->raw($live, 'CLUSTER', 'SHARDS');
	my ($st, $got) = probe_map($bytes, 'shards', $H);
	is($got, expect_from_shards($v, $H), 'CLUSTER SHARDS with a failed shard: the probe reads what Perl reads');
	like($got, qr/^node $H:${\ $m->port} \S+ master offline$/m, 'the killed master is offline');
	check_maps('a shard down', no_nodes_compare => 1);

	$rc->restart($m);
	$rc->restart($r);
	$rc->wait_ok;
	pass('the shard restarted: the cluster is ok again');
	check_maps('the shard back');
}

$rc->stop_all;
done_testing();
