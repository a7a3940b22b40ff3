# test/perl/CacheExt/Checker.pm - a history checker for cache_ext's C1 under load
#
#   my $c = CacheExt::Checker->new(node => $node, writers => 3, readers => 3);
#   $c->setup;                                   # counters(id, value), tracked
#   my $p = $c->run_phase('normal', 6, steps => [
#       { at => 2, do => sub { ... } },          # actions at offsets (seconds)
#       { at => 3, until => sub { ... }, do => sub { ... } },
#   ]);
#   my $r = $c->check;                           # violations, per-phase counts
#   $c->stop;
#
# Sessions are psql processes with their stdout and stderr on one pipe, all
# driven from one select() loop in this process, so that the times are taken
# on one clock (CLOCK_MONOTONIC) right around each round trip:
#
# - writers: BEGIN; UPDATE counters SET value = value + 1 WHERE id = ...
#   RETURNING id, value; then COMMIT in a second round trip.  A commit is
#   recorded (id, value, time) only when psql printed the COMMIT tag, with
#   the time taken after that reply was read.  Every value an UPDATE returned
#   is also recorded as an "attempt" (what could ever become visible).
# - readers: cached_query() of one row, of sum(value), or of every row,
#   then cache_status(); the start time is taken before the request is
#   written to psql.
# - one monitor: polls cache_stats (pending_invalidations, ...) every 50 ms,
#   and on request reads the table directly (a "baseline", see below).
#
# Values only grow, so a read that started after a commit returned must
# return at least the committed value (per row; for sum(), the sum of the
# per-row bounds).  And a value can only be seen after an UPDATE produced
# it: a read must return at most what UPDATEs had returned before it ended.
#
# A baseline is a direct (uncached) read of the table taken while no writer
# has a transaction open; what it sees is committed and every such COMMIT
# has finished (or died with the server), so it is a lower bound as good as
# a returned COMMIT for reads that start after it.  Used after a crash,
# where commits in flight were durable but their COMMIT never returned.
#
# Key mode (customers => N): the table has a customer_id column, per_customer
# rows per customer (ids (c-1)*per+1 .. c*per), and is tracked by key
# (cache_track(t, ARRAY['customer_id'])).  Writers increment a random row of
# a random customer, sometimes of two customers in one transaction; readers
# read per-customer sums through queries narrowed to key values:
# customer_id = $1, customer_id IN (constants) and customer_id = ANY($1).
# The bound of a customer's sum is the sum of the bounds of its rows.  Bulk
# transactions (request_bulk) increment the rows of many customers at once,
# past cache_ext.max_keys_per_xact (escalation to the table).

package CacheExt::Checker;

use strict;
use warnings FATAL => 'all';

use Carp;
use IO::Handle;
use IO::Select;
use POSIX qw(WNOHANG);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC usleep);
use List::Util qw(max min sum0);

sub now { return clock_gettime(CLOCK_MONOTONIC); }

=pod

=head1 METHODS

=over

=item CacheExt::Checker->new(node => $node, writers => 3, readers => 3, rows => 8,
  table => 'counters', writer_pause => [0.02, 0.12], seed => N,
  mix => { row => 0.6, sum => 0.2, all => 0.2, big => 0 }, pad => BYTES)

mix: how often readers run each query (weights).  big is the "all" query
with a text column of pad bytes per row (large entries, slow to decode).
session_setup => { reader => 'SET ...;', writer => ..., monitor => ... }: SQL
each session of that role runs right after connecting.
reader_sql => sub { my ($kind, $sql, @args) = @_; ... }: the statement a
reader sends for a read of that kind instead of $sql (its cached_query
call), for example a call of a function that wraps it; @args are the row
id (row), the customer (csum) or the customers (cany); its output must be
the same rows.

Key mode: customers => N, per_customer => 4 (rows = N * per_customer),
group_size => 4 (customers per IN / ANY list: groups of consecutive
customers), two_customers => 0.3 (how often a writer's transaction changes
rows of two customers), hot_customers => 8 and hot_share => 0.25 (that
share of the writers' and of the readers' customers are drawn from
customers 1 .. hot_customers, so that reads race with writes of the same
key), mix => { csum => 0.8, cin => 0.1, cany => 0.1 } by
default: csum is customer_id = $1, cin customer_id IN (a, b, ...), cany
customer_id = ANY($1) (an int[] parameter).

=cut

sub new
{
	my ($class, %p) = @_;
	my $customers = $p{customers} // 0;
	my $per = $p{per_customer} // 4;
	my $self = bless {
		node     => $p{node} // croak('node needed'),
		table    => $p{table} // ($customers ? 'customer_counters' : 'counters'),
		customers => $customers,
		per_customer => $per,
		group_size => $p{group_size} // 4,
		two_customers => $p{two_customers} // 0.3,
		hot_customers => $p{hot_customers} // 8,
		hot_share => $p{hot_share} // 0.25,
		rows     => $customers ? $customers * $per : ($p{rows} // 8),
		nwriters => $p{writers} // 3,
		nreaders => $p{readers} // 3,
		writer_pause => $p{writer_pause} // [ 0.02, 0.12 ],
		mix      => $p{mix} // ($customers
			? { csum => 0.8, cin => 0.1, cany => 0.1 }
			: { row => 0.6, sum => 0.2, all => 0.2 }),
		pad      => $p{pad} // 0,
		session_setup => $p{session_setup} // {},
		reader_sql => $p{reader_sql},
		seed     => $p{seed} // (time() ^ $$),
		sessions => [],
		phase    => undef,
		phases   => [],           # names, in order
		writers_paused => 0,
		want_baseline  => 0,
		reads    => [],
		commits  => [],
		attempts => [],
		monitor_obs => [],
		events   => [],           # [time, phase, text]
		lost     => {},           # "phase/role" => requests lost with a connection
		errors   => [],           # SQL errors: {phase, role, sql, out}
		failures => [],           # steps that timed out, ...
		marks    => {},
		next_seq => 0,
		bulk_queue => [],
		bulks    => {},           # name => {customers, ids, phase, sent, end, done, ok}
	}, $class;
	croak 'customers must be a multiple of group_size'
	  if $customers && $customers % $self->{group_size};
	srand($self->{seed});
	return $self;
}

sub seed { return $_[0]->{seed}; }
sub table { return $_[0]->{table}; }
sub customers { return $_[0]->{customers}; }

# Key mode: the rows of a customer, the customers of an IN / ANY group
# (0-based), how many groups.
sub ids_of
{
	my ($self, $c) = @_;
	my $per = $self->{per_customer};
	return (($c - 1) * $per + 1 .. $c * $per);
}

sub group_customers
{
	my ($self, $g) = @_;
	my $n = $self->{group_size};
	return ($g * $n + 1 .. $g * $n + $n);
}

sub ngroups { return $_[0]->{customers} / $_[0]->{group_size}; }

# A random customer: a hot one (hot_share of the time) or any.
sub _random_customer
{
	my $self = shift;
	return 1 + int(rand($self->{hot_customers})) if rand() < $self->{hot_share};
	return 1 + int(rand($self->{customers}));
}

=pod

=item $c->setup()

Create the table with rows 1..N at value 0 and track it (key mode: by
customer_id).

=cut

sub setup
{
	my $self = shift;
	my $t = $self->{table};
	if ($self->{customers})
	{
		$self->{node}->safe_psql('postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, customer_id int NOT NULL, value bigint NOT NULL);
INSERT INTO $t SELECT i, 1 + (i - 1) / $self->{per_customer}, 0
  FROM generate_series(1, $self->{rows}) AS i;
CREATE INDEX ON $t (customer_id);
ANALYZE $t;
SELECT cache_track('$t', ARRAY['customer_id']);
});
		return;
	}
	$self->{node}->safe_psql('postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, value bigint NOT NULL);
INSERT INTO $t SELECT i, 0 FROM generate_series(1, $self->{rows}) AS i;
SELECT cache_track('$t');
});
	return;
}

# ---------------------------------------------------------------------------
# Sessions: psql processes on pipes
# ---------------------------------------------------------------------------

sub _spawn
{
	my ($self, $s) = @_;
	my ($in_r, $in_w, $out_r, $out_w);
	pipe($in_r, $in_w) or croak "pipe: $!";
	pipe($out_r, $out_w) or croak "pipe: $!";
	my @cmd = (
		$self->{node}->installed_command('psql'),
		'-XAt', '-v', 'ON_ERROR_STOP=0',
		'-d', $self->{node}->connstr('postgres') . " application_name=checker_$s->{name}",
		'-f', '-');
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# Child: nothing of the test's Perl state may run here.
		open(STDIN, '<&', $in_r) or POSIX::_exit(126);
		open(STDOUT, '>&', $out_w) or POSIX::_exit(126);
		open(STDERR, '>&', $out_w) or POSIX::_exit(126);
		close($in_w);
		close($out_r);
		{ no warnings 'exec'; exec { $cmd[0] } @cmd; }
		POSIX::_exit(127);
	}
	close($in_r);
	close($out_w);
	$in_w->autoflush(1);
	$out_r->blocking(0);
	$s->{pid}      = $pid;
	$s->{in}       = $in_w;
	$s->{out}      = $out_r;
	$s->{buf}      = '';
	$s->{req}      = undef;
	$s->{state}    = 'connecting';
	$s->{in_txn}   = 0;
	$s->{backend_pid} = undef;
	$s->{connects}++;
	my $setup = $self->{session_setup}{ $s->{role} } // '';
	$self->_send($s, 'connect', "$setup\nSELECT pg_backend_pid();", sub {
		my ($out) = @_;
		if ($out =~ /^(\d+)$/m)
		{
			$s->{backend_pid} = $1;
			$s->{state} = 'idle';
			$s->{connected_at} = now();
		}
	});
	return;
}

# Queue one request; $cb->($output, $time_reply_read) when its banner comes;
# $lost->() if the connection dies first.
sub _send
{
	my ($self, $s, $what, $sql, $cb, $lost) = @_;
	croak "session $s->{name} is busy" if $s->{req};
	my $tag = ++$self->{next_seq};
	$s->{req} = { tag => $tag, what => $what, sql => $sql, cb => $cb, lost => $lost };
	my $text = "$sql\n\\echo ce_chk_done_$tag\n";
	local $SIG{PIPE} = 'IGNORE';
	my $off = 0;
	while ($off < length $text)
	{
		my $n = syswrite($s->{in}, $text, length($text) - $off, $off);
		if (!defined $n)
		{
			next if $!{EINTR};
			$self->_dead($s);
			return;
		}
		$off += $n;
	}
	return;
}

# The connection (psql) is gone: the pending request is lost.
sub _dead
{
	my ($self, $s) = @_;
	return if $s->{state} eq 'dead';
	my $req = delete $s->{req};
	if ($req)
	{
		$self->{lost}{"$self->{phase}/$s->{role}"}++ if defined $self->{phase};
		$req->{lost}->() if $req->{lost};
	}
	close($s->{in});
	close($s->{out});
	kill 'KILL', $s->{pid};
	waitpid($s->{pid}, 0);
	$s->{state} = 'dead';
	$s->{in_txn} = 0;
	$s->{dead_at} = now();
	$s->{retry_at} = now() + 0.1;
	$self->_event("$s->{name}: connection lost (backend $s->{backend_pid})")
	  if defined $s->{backend_pid};
	return;
}

sub _readable
{
	my ($self, $s) = @_;
	my $n = sysread($s->{out}, my $chunk, 65536);
	return if !defined $n && ($!{EAGAIN} || $!{EINTR});
	if (!$n)
	{
		$self->_dead($s);
		return;
	}
	$s->{buf} .= $chunk;
	my $req = $s->{req};
	return unless $req;
	my $tag = $req->{tag};
	if ($s->{buf} =~ /^ce_chk_done_$tag\n/m)
	{
		my $t = now();
		my ($out, $rest) = split /^ce_chk_done_$tag\n/m, $s->{buf}, 2;
		$s->{buf} = $rest // '';
		# psql may go on after losing its connection: the request is lost
		if ($out =~ /^(?:psql:[^\n]*?: )?(?:server closed the connection unexpectedly|connection to server was lost|no connection to the server)/m)
		{
			$self->_dead($s);
			return;
		}
		$s->{req} = undef;
		$s->{state} = 'idle' if $s->{state} eq 'busy';
		$req->{cb}->($out, $t);
	}
	return;
}

# Split psql output into data lines and server messages (WARNING, DETAIL,
# ...); returns (data, messages, error): error is true when a message is an
# ERROR, FATAL or PANIC, or psql reports a lost connection.
sub _messages
{
	my $out = shift;
	my ($data, $msgs, $err) = ('', '', 0);
	for my $line (split /^/m, $out)
	{
		my $level;
		if ($line =~ /^(?:psql:[^\n]*?:\d+: )?(ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|DETAIL|HINT|CONTEXT|LINE \d+|STATEMENT):/)
		{
			$level = $1;
		}
		elsif ($line =~ /^(?:psql:[^\n]*?: )?(?:error: |connection to server|server closed the connection|\s+This probably means)/)
		{
			$level = 'error';
		}
		if (defined $level)
		{
			$msgs .= $line;
			$err = 1 if $level =~ /^(ERROR|FATAL|PANIC|error)$/;
		}
		else { $data .= $line; }
	}
	return ($data, $msgs, $err);
}

# Count the WARNINGs in a reply (by phase and role).
sub _warnings
{
	my ($self, $s, $msgs) = @_;
	my $n = () = $msgs =~ /^(?:psql:[^\n]*?:\d+: )?WARNING:/mg;
	$self->{warnings}{ $self->{phase} // '-' }{ $s->{role} } += $n if $n;
	return;
}

sub _event
{
	my ($self, $text) = @_;
	push @{ $self->{events} }, [ now(), $self->{phase} // '-', $text ];
	return;
}

sub _sql_error
{
	my ($self, $s, $sql, $out) = @_;
	push @{ $self->{errors} },
	  { phase => $self->{phase}, role => $s->{role}, sql => $sql, out => $out };
	return;
}

sub _start_sessions
{
	my $self = shift;
	return if @{ $self->{sessions} };
	my @s;
	push @s, { role => 'writer', name => "writer$_" } for 1 .. $self->{nwriters};
	push @s, { role => 'reader', name => "reader$_" } for 1 .. $self->{nreaders};
	push @s, { role => 'monitor', name => 'monitor' };
	for my $s (@s)
	{
		$s->{connects} = 0;
		$s->{next_at}  = 0;
		$self->_spawn($s);
	}
	$self->{sessions} = \@s;
	return;
}

=pod

=item $c->sessions(role => 'writer')

The session hashes (name, role, backend_pid, state ...).

=cut

sub sessions
{
	my ($self, %p) = @_;
	return grep { !$p{role} || $_->{role} eq $p{role} } @{ $self->{sessions} };
}

# ---------------------------------------------------------------------------
# What each role does next
# ---------------------------------------------------------------------------

sub _writer_next
{
	my ($self, $s) = @_;
	my $t = $self->{table};
	# a requested bulk transaction goes first, even while writers are paused
	my $bulk = shift @{ $self->{bulk_queue} };
	return if !$bulk && $self->{writers_paused};
	my @ids;
	my $sql;
	if ($bulk)
	{
		# lock the rows in id order first (like every writer): no deadlocks
		@ids = @{ $bulk->{ids} };
		my $list = "'{" . join(',', @ids) . "}'::int[]";
		$sql = "BEGIN;\n"
		  . "SELECT count(*) FROM (SELECT id FROM $t WHERE id = ANY($list) ORDER BY id FOR UPDATE) AS l;\n"
		  . "UPDATE $t SET value = value + 1 WHERE id = ANY($list) RETURNING id, value;\n";
		$bulk->{sent} = now();
		$bulk->{phase} = $self->{phase};
		$self->_event(sprintf('%s: bulk %s starts (%d customers, %d rows)',
			$s->{name}, $bulk->{name}, scalar @{ $bulk->{customers} }, scalar @ids));
	}
	else
	{
		if ($self->{customers})
		{
			# a random row of a random customer, sometimes of two customers
			my $per = $self->{per_customer};
			my @cs = ($self->_random_customer);
			if (rand() < $self->{two_customers})
			{
				my $other = $self->_random_customer;
				push @cs, $other if $other != $cs[0];
			}
			@ids = map { ($_ - 1) * $per + 1 + int(rand($per)) } @cs;
		}
		else
		{
			# one row, sometimes two
			@ids = (1 + int(rand($self->{rows})));
			if (rand() < 0.25)
			{
				my $other = 1 + int(rand($self->{rows}));
				push @ids, $other if $other != $ids[0];
			}
		}
		# in id order: no deadlocks
		@ids = sort { $a <=> $b } @ids;
		$sql = "BEGIN;\n"
		  . join('', map { "UPDATE $t SET value = value + 1 WHERE id = $_ RETURNING id, value;\n" } @ids);
	}
	my $phase = $self->{phase};
	my $sent = now();
	my $failed = sub {
		return unless $bulk;
		$bulk->{done} = 1;
		$bulk->{ok} = 0;
		$self->_event("bulk $bulk->{name} failed");
	};
	$s->{state} = 'busy';
	$s->{in_txn} = 1;
	$self->_send($s, $bulk ? 'bulk update' : 'update', $sql, sub {
		my ($out, $recv) = @_;
		my ($data, $msgs, $err) = _messages($out);
		$self->_warnings($s, $msgs);
		my @got;
		while ($data =~ /^(\d+)\|(\d+)$/mg)
		{
			push @got, [ $1, $2 ];
			push @{ $self->{attempts} }, { id => $1, value => $2, recv => $recv, phase => $phase };
		}
		if ($err || @got != @ids)
		{
			$self->_sql_error($s, $sql, $out);
			$failed->();
			$s->{state} = 'busy';
			$self->_send($s, 'rollback', 'ROLLBACK;', sub {
				$s->{in_txn} = 0;
				$s->{state} = 'idle';
				$s->{next_at} = now() + 0.05;
			});
			return;
		}
		my $csent = now();
		$s->{state} = 'busy';
		$self->_send($s, 'commit', 'COMMIT;', sub {
			my ($cout, $crecv) = @_;
			my ($cdata, $cmsgs, $cerr) = _messages($cout);
			$self->_warnings($s, $cmsgs);
			$s->{in_txn} = 0;
			if ($cdata =~ /^COMMIT$/m && !$cerr)
			{
				push @{ $self->{commits} }, { id => $_->[0], value => $_->[1],
					sent => $csent, end => $crecv, phase => $phase, kind => 'commit' }
				  for @got;
				$self->{xacts}{$phase}{ $bulk ? 'bulk' : 'normal' }++;
				if ($bulk)
				{
					@{$bulk}{qw(csent end done ok)} = ($csent, $crecv, 1, 1);
					$self->_event("bulk $bulk->{name} committed");
				}
			}
			else
			{
				$self->_sql_error($s, 'COMMIT', $cout);
				$failed->();
			}
			my ($lo, $hi) = @{ $self->{writer_pause} };
			$s->{next_at} = now() + $lo + rand($hi - $lo);
		}, $failed);
	}, $failed);
	return;
}

=pod

=item $c->request_bulk(name => 'x', customers => [ ... ], rows => 'all' | N)

Key mode: the next writer to be idle (even while writers are paused) runs
one transaction that increments every row (rows => 'all', the default) or N
random rows of each of those customers, committed and checked like any
other.  $c->bulk('x') is then {customers, ids, sent, end, done, ok};
$c->bulk_done('x') is true once it committed or failed.

=cut

sub request_bulk
{
	my ($self, %p) = @_;
	croak 'request_bulk needs key mode (customers => N)' unless $self->{customers};
	my $name = $p{name} // croak('name needed');
	my $rows = $p{rows} // 'all';
	my @ids;
	for my $c (@{ $p{customers} })
	{
		my @all = $self->ids_of($c);
		if ($rows eq 'all') { push @ids, @all; next; }
		# N distinct rows of this customer
		for my $i (0 .. $rows - 1)
		{
			my $j = $i + int(rand(@all - $i));
			@all[ $i, $j ] = @all[ $j, $i ];
		}
		push @ids, @all[ 0 .. $rows - 1 ];
	}
	my $b = { name => $name, customers => [ @{ $p{customers} } ],
		ids => [ sort { $a <=> $b } @ids ], done => 0 };
	$self->{bulks}{$name} = $b;
	push @{ $self->{bulk_queue} }, $b;
	return $b;
}

sub bulk { return $_[0]->{bulks}{ $_[1] }; }
sub bulk_done { my $b = $_[0]->{bulks}{ $_[1] }; return $b && $b->{done}; }

# The three queries readers run through cached_query().
sub queries
{
	my $self = shift;
	my $t = $self->{table};
	return {
		row => "SELECT id, value FROM $t WHERE id = \$1",
		sum => "SELECT sum(value)::bigint FROM $t",
		all => "SELECT id, value FROM $t ORDER BY id",
		big => "SELECT id, value, repeat(md5(id::text), "
		  . int(($self->{pad} + 31) / 32) . ") AS pad FROM $t ORDER BY id",
		csum => "SELECT sum(value)::bigint FROM $t WHERE customer_id = \$1",
		cany => "SELECT customer_id, sum(value)::bigint FROM $t WHERE customer_id = ANY(\$1) "
		  . 'GROUP BY customer_id ORDER BY customer_id',
		# the same as csum under another text (another entry), for probes
		probe => "SELECT sum(value)::bigint AS probe FROM $t WHERE customer_id = \$1",
	};
}

=pod

=item $c->in_query($group)

Key mode: the query of an IN list (group $group, 0-based: its customers are
constants in the text).

=cut

sub in_query
{
	my ($self, $g) = @_;
	return "SELECT customer_id, sum(value)::bigint FROM $self->{table} WHERE customer_id IN ("
	  . join(', ', $self->group_customers($g)) . ') GROUP BY customer_id ORDER BY customer_id';
}

=pod

=item $c->warm()

Key mode: fill the cache with every customer's csum entry and every group's
cin and cany entries (one statement each, from one psql).  Returns the
statuses seen as { HIT => n, MISS => n, ... }.

=cut

sub warm
{
	my $self = shift;
	my $q = $self->queries;
	my $n = $self->{group_size};
	my $sql = "SELECT cache_status() FROM generate_series(1, $self->{customers}) AS c,\n"
	  . "  LATERAL (SELECT * FROM cached_query('$q->{csum}', c) AS t(total bigint)) AS r;\n"
	  . "SELECT cache_status() FROM generate_series(0, " . ($self->ngroups - 1) . ") AS g,\n"
	  . "  LATERAL (SELECT count(*) FROM cached_query('$q->{cany}', "
	  . "ARRAY(SELECT generate_series(g * $n + 1, g * $n + $n))) AS t(c int, total bigint)) AS r;\n";
	for my $g (0 .. $self->ngroups - 1)
	{
		$sql .= "SELECT count(*) FROM cached_query('" . $self->in_query($g)
		  . "') AS t(c int, total bigint);\nSELECT cache_status();\n";
	}
	my $out = $self->{node}->safe_psql('postgres', $sql);
	my %st;
	for my $line (split /\n/, $out)
	{
		next if $line =~ /^\d+$/;
		$st{ $line =~ /^(HIT|MISS|BYPASS)/ ? $1 : $line }++;
	}
	return \%st;
}

sub _reader_next
{
	my ($self, $s) = @_;
	my $q = $self->queries;
	my $mix = $self->{mix};
	my @kinds = grep { ($mix->{$_} // 0) > 0 } qw(row sum all big csum cin cany);
	my $r = rand(sum0(map { $mix->{$_} } @kinds));
	my $kind = $kinds[-1];
	for my $k (@kinds)
	{
		if ($r < $mix->{$k}) { $kind = $k; last; }
		$r -= $mix->{$k};
	}
	my ($id, $sql, @want);
	if ($kind eq 'csum')
	{
		@want = ($self->_random_customer);
		$sql = "SELECT * FROM cached_query('$q->{csum}', $want[0]) AS t(total bigint);";
	}
	elsif ($kind eq 'cin' || $kind eq 'cany')
	{
		my $g = int(($self->_random_customer - 1) / $self->{group_size});
		@want = $self->group_customers($g);
		$sql = $kind eq 'cin'
		  ? "SELECT * FROM cached_query('" . $self->in_query($g) . "') AS t(customer_id int, total bigint);"
		  : "SELECT * FROM cached_query('$q->{cany}', ARRAY[" . join(',', @want)
		  . "]) AS t(customer_id int, total bigint);";
	}
	elsif ($kind eq 'row')
	{
		$id = 1 + int(rand($self->{rows}));
		$sql = "SELECT * FROM cached_query('$q->{row}', $id) AS t(id int, value bigint);";
	}
	elsif ($kind eq 'sum')
	{
		$sql = "SELECT * FROM cached_query('$q->{sum}') AS t(total bigint);";
	}
	elsif ($kind eq 'all')
	{
		$sql = "SELECT * FROM cached_query('$q->{all}') AS t(id int, value bigint);";
	}
	else
	{
		# only the length of the padding comes back
		$sql = "SELECT id, value, length(pad) FROM cached_query('$q->{big}') AS t(id int, value bigint, pad text);";
	}
	$sql = $self->{reader_sql}->($kind, $sql, defined $id ? ($id) : @want)
	  if $self->{reader_sql};
	$sql .= "\n\\echo ce_chk_status\nSELECT cache_status();";
	my $phase = $self->{phase};
	my $start = now();
	$s->{state} = 'busy';
	$self->_send($s, "read $kind", $sql, sub {
		my ($out, $end) = @_;
		my ($data, $msgs, $err) = _messages($out);
		$self->_warnings($s, $msgs);
		my ($rows, $status) = split /^ce_chk_status\n/m, $data, 2;
		$status //= '';
		$status =~ s/\n.*//s;
		my %read = (phase => $phase, kind => $kind, start => $start, end => $end,
			status => $status, session => $s->{name});
		my $ok = !$err && defined $rows && $status ne '';
		if ($ok && $kind eq 'csum')
		{
			$ok = $rows =~ /\A(\d+)\n?\z/;
			$read{groups} = { $want[0] => $1 } if $ok;
		}
		elsif ($ok && ($kind eq 'cin' || $kind eq 'cany'))
		{
			my %v;
			$v{$1} = $2 while $rows =~ /^(\d+)\|(\d+)$/mg;
			$ok = join(',', sort { $a <=> $b } keys %v) eq join(',', @want)
			  && $rows =~ tr/\n// <= @want;
			$read{groups} = \%v if $ok;
		}
		elsif ($ok && $kind eq 'row')
		{
			$ok = $rows =~ /\A(\d+)\|(\d+)\n?\z/ && $1 == $id;
			$read{values} = { $id => $2 } if $ok;
		}
		elsif ($ok && ($kind eq 'all' || $kind eq 'big'))
		{
			my %v;
			my $line = $kind eq 'all' ? qr/^(\d+)\|(\d+)$/m : qr/^(\d+)\|(\d+)\|\d+$/m;
			$v{$1} = $2 while $rows =~ /$line/g;
			$ok = keys(%v) == $self->{rows} && $rows =~ tr/\n// <= $self->{rows};
			$read{values} = \%v if $ok;
		}
		elsif ($ok)
		{
			$ok = $rows =~ /\A(\d+)\n?\z/;
			$read{total} = $1 if $ok;
		}
		if ($ok) { push @{ $self->{reads} }, \%read; }
		else { $self->_sql_error($s, $sql, $out); }
	});
	return;
}

sub _monitor_next
{
	my ($self, $s) = @_;
	my $phase = $self->{phase};
	if ($self->{want_baseline} && $self->_writers_quiet)
	{
		my $t = $self->{table};
		$self->{want_baseline} = 0;
		$s->{state} = 'busy';
		$self->_send($s, 'baseline', "SELECT id, value FROM $t ORDER BY id;", sub {
			my ($out, $end) = @_;
			my $n = 0;
			while ($out =~ /^(\d+)\|(\d+)$/mg)
			{
				push @{ $self->{commits} },
				  { id => $1, value => $2, end => $end, phase => $phase, kind => 'baseline' };
				$n++;
			}
			if ($n == $self->{rows}) { $self->{marks}{$phase}{baseline} = $end; }
			else { $self->_sql_error($s, 'baseline', $out); $self->{want_baseline} = 1; }
		});
		return;
	}
	my $sent = now();
	$s->{state} = 'busy';
	$self->_send($s, 'stats',
		'SELECT pending_invalidations, invalidations_deferred, invalidations_sent FROM cache_stats;',
		sub {
			my ($out, $end) = @_;
			if ($out =~ /^(\d+)\|(\d+)\|(\d+)$/m)
			{
				push @{ $self->{monitor_obs} }, { phase => $phase, sent => $sent, end => $end,
					pending => $1, deferred => $2, delivered => $3 };
			}
			else { $self->_sql_error($s, 'cache_stats', $out); }
			$s->{next_at} = now() + 0.05;
		});
	return;
}

# No writer has a transaction open, nor will open one.
sub writers_quiet { return $_[0]->_writers_quiet; }

sub _writers_quiet
{
	my $self = shift;
	return 0 unless $self->{writers_paused};
	for my $s ($self->sessions(role => 'writer'))
	{
		return 0 if $s->{in_txn} || ($s->{req} && $s->{state} ne 'connecting');
	}
	return 1;
}

=pod

=item $c->pause_writers() / $c->resume_writers() / $c->request_baseline()

Writers finish their open transaction and start no other until resumed.
A baseline is taken by the monitor as soon as no writer has a transaction
open (only while writers are paused).

=item $c->mark($name)

Record the current time under $name in this phase's marks (returned).

=cut

sub pause_writers { $_[0]->{writers_paused} = 1; $_[0]->_event('writers paused'); return; }
sub resume_writers { $_[0]->{writers_paused} = 0; $_[0]->_event('writers resumed'); return; }
sub request_baseline { $_[0]->{want_baseline} = 1; return; }

sub mark
{
	my ($self, $name) = @_;
	my $t = now();
	$self->{marks}{ $self->{phase} }{$name} = $t;
	$self->_event("mark $name");
	return $t;
}

sub marks
{
	my ($self, $phase) = @_;
	return $self->{marks}{$phase} // {};
}

=pod

=item $c->monitor_saw_pending(after => $t)

True when a cache_stats poll sent after time $t saw pending invalidations.

=item $c->all_dead_since($t, role => 'reader')

True when every session's (of that role) connection was lost after time $t
(a crash).  An idle psql notices only when it next sends something.

=item $c->reconnected_since($t, role => 'reader')

True when some session (of that role) connected after time $t.

=cut

sub monitor_saw_pending
{
	my ($self, %p) = @_;
	for my $o (reverse @{ $self->{monitor_obs} })
	{
		last if $o->{sent} < $p{after};
		return $o if $o->{pending} > 0;
	}
	return undef;
}

# The first cache_stats poll sent after $p{after} that saw pending invalidations.
sub first_pending
{
	my ($self, %p) = @_;
	for my $o (@{ $self->{monitor_obs} })
	{
		next if $o->{sent} < $p{after};
		return $o if $o->{pending} > 0;
	}
	return undef;
}

sub all_dead_since
{
	my ($self, $t, %p) = @_;
	for my $s ($self->sessions(%p))
	{
		return 0 unless ($s->{dead_at} // 0) > $t || ($s->{connected_at} // 0) > $t && $s->{connects} > 1;
	}
	return 1;
}

sub reconnected_since
{
	my ($self, $t, %p) = @_;
	for my $s ($self->sessions(%p))
	{
		return 1 if $s->{state} ne 'dead' && $s->{state} ne 'connecting'
		  && ($s->{connected_at} // 0) > $t;
	}
	return 0;
}

=pod

=item $c->run_phase($name, $seconds, tail => $secs, steps => [ {at|after, until, do, timeout, name} ... ])

Run the load for $seconds.  Steps run in order, each once its time has come
(at: seconds from the phase start; after: seconds after the previous step
ran) and its until condition (if any) holds; a step whose condition does not
hold within timeout seconds (default 30) past its time is recorded as a
failure and run anyway.  The phase lasts until every step ran, and at least
tail seconds after the last one.  Then requests in flight are waited for (up
to 30 s).

=cut

sub run_phase
{
	my ($self, $name, $secs, %p) = @_;
	my @steps = @{ $p{steps} // [] };
	$self->{phase} = $name;
	push @{ $self->{phases} }, $name;
	$self->_start_sessions;
	my $t0 = now();
	$self->{marks}{$name}{start} = $t0;
	$self->_event("phase $name starts");
	my $end = $t0 + $secs;
	my $tail = $p{tail} // 0;
	my $draining = 0;
	my $drain_deadline;
	my $prev = $t0;    # when the last step ran

	while (1)
	{
		my $t = now();
		while (@steps)
		{
			my $st = $steps[0];
			my $due = defined $st->{at} ? $t0 + $st->{at} : $prev + ($st->{after} // 0);
			last if $t < $due;
			my $timeout = $st->{timeout} // 30;
			if ($st->{until} && !$st->{until}->())
			{
				last if $t < $due + $timeout;
				push @{ $self->{failures} },
				  "phase $name: step '" . ($st->{name} // '?') . "' waited ${timeout}s in vain";
			}
			shift @steps;
			$self->_event('step ' . ($st->{name} // '?'));
			$st->{do}->() if $st->{do};
			$t = $prev = now();
			$end = max($end, $prev + $tail);
		}
		if (!$draining && $t >= $end && !@steps)
		{
			$draining = 1;
			$drain_deadline = $t + 30;
			$self->{marks}{$name}{end} = $t;
		}

		my $sel = IO::Select->new;
		my $wake = $t + 0.05;
		for my $s (@{ $self->{sessions} })
		{
			if ($s->{state} eq 'dead')
			{
				if (!$draining && $t >= $s->{retry_at}) { $self->_spawn($s); }
				else { $wake = min($wake, $s->{retry_at}); }
			}
			if ($s->{state} eq 'idle' && !$s->{req} && !$draining)
			{
				if ($t >= $s->{next_at})
				{
					if ($s->{role} eq 'writer') { $self->_writer_next($s); }
					elsif ($s->{role} eq 'reader') { $self->_reader_next($s); }
					else { $self->_monitor_next($s); }
				}
				else { $wake = min($wake, $s->{next_at}); }
			}
			$sel->add($s->{out}) if $s->{state} ne 'dead';
		}
		# draining: no new request, but an open transaction still commits
		if ($draining)
		{
			my $busy = grep { $_->{req} && $_->{state} ne 'dead' } @{ $self->{sessions} };
			last if !$busy;
			if ($t > $drain_deadline)
			{
				push @{ $self->{failures} }, "phase $name: requests still pending 30 s after its end";
				$self->_dead($_) for grep { $_->{req} && $_->{state} ne 'dead' } @{ $self->{sessions} };
				last;
			}
		}
		my @ready = $sel->count ? $sel->can_read(max(0, $wake - now())) : ();
		if (!$sel->count) { usleep(max(0, $wake - now()) * 1e6); }
		for my $fh (@ready)
		{
			my ($s) = grep { $_->{state} ne 'dead' && $_->{out} == $fh } @{ $self->{sessions} };
			$self->_readable($s) if $s;
		}
	}
	$self->_event("phase $name ends");
	$self->{phase} = undef;
	return $self->{marks}{$name};
}

=pod

=item $c->stop()

Ask every psql to exit (killing those that do not within 5 s).

=cut

sub stop
{
	my $self = shift;
	local $SIG{PIPE} = 'IGNORE';
	for my $s (@{ $self->{sessions} })
	{
		next if $s->{state} eq 'dead';
		syswrite($s->{in}, "\\q\n");
		close($s->{in});
	}
	my $deadline = now() + 5;
	for my $s (@{ $self->{sessions} })
	{
		next if $s->{state} eq 'dead';
		while (waitpid($s->{pid}, WNOHANG) == 0)
		{
			if (now() > $deadline) { kill 'KILL', $s->{pid}; waitpid($s->{pid}, 0); last; }
			usleep(10_000);
		}
		close($s->{out});
		$s->{state} = 'dead';
	}
	$self->{sessions} = [];
	return;
}

sub DESTROY
{
	my $self = shift;
	local ($., $@, $!, $^E, $?);
	eval { $self->stop; };
	return;
}

# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------

=pod

=item $c->check(windows => [ {phase, from, to, name} ... ])

Check every read against the commits (lower bounds) and the UPDATE results
(upper bounds).  Reads that lie entirely within one of the windows
(start >= from, end <= to) must also report BYPASS.  Returns a hash:
phases => { name => {reads, hits, misses, bypasses, invalidated, commits (rows),
xacts_normal, xacts_bulk (transactions), reads_<kind>, hits_<kind>,
violations, status_violations, sql_errors_*, lost_*, ...} }, violations =>
{ phase => [ text ... ] }, status_violations => [ text ... ] (the first 20).

=cut

sub _status_class
{
	my $st = shift;
	return $st =~ /^HIT/ ? 'hit' : $st =~ /^MISS/ ? 'miss' : $st =~ /^BYPASS/ ? 'bypass' : 'other';
}

sub check
{
	my ($self, %p) = @_;
	my @reads = sort { $a->{start} <=> $b->{start} } @{ $self->{reads} };
	my @commits = sort { $a->{end} <=> $b->{end} } @{ $self->{commits} };
	my @attempts = sort { $a->{recv} <=> $b->{recv} } @{ $self->{attempts} };
	my %ph;
	my (@viol, @sviol);
	my $n = $self->{rows};
	my $t_base = $self->{marks}{ $self->{phases}[0] // '' }{start} // 0;

	my $fmt = sub { sprintf '%.3f', $_[0] - $t_base };

	# lower bounds: sweep the reads by start time
	my %lo = map { $_ => 0 } 1 .. $n;
	my %lo_src;
	my $ci = 0;
	for my $r (@reads)
	{
		while ($ci < @commits && $commits[$ci]{end} < $r->{start})
		{
			my $c = $commits[$ci++];
			if ($c->{value} > $lo{ $c->{id} })
			{
				$lo{ $c->{id} } = $c->{value};
				$lo_src{ $c->{id} } = $c;
			}
		}
		my @bad;
		if ($r->{values})
		{
			for my $id (sort { $a <=> $b } keys %{ $r->{values} })
			{
				push @bad, "id $id = $r->{values}{$id} < $lo{$id}"
				  . ($lo_src{$id} ? " ($lo_src{$id}{kind} at " . $fmt->($lo_src{$id}{end}) . ')' : '')
				  if $r->{values}{$id} < $lo{$id};
			}
		}
		elsif ($r->{groups})
		{
			# a customer's sum: the sum of its rows' bounds
			for my $cu (sort { $a <=> $b } keys %{ $r->{groups} })
			{
				my @ids = $self->ids_of($cu);
				my $bound = sum0(@lo{@ids});
				next if $r->{groups}{$cu} >= $bound;
				my ($src) = sort { $b->{end} <=> $a->{end} } grep { defined } @lo_src{@ids};
				push @bad, "customer $cu sum = $r->{groups}{$cu} < $bound"
				  . ($src ? " (last $src->{kind} at " . $fmt->($src->{end}) . ')' : '');
			}
		}
		else
		{
			my $bound = sum0(values %lo);
			push @bad, "sum = $r->{total} < $bound" if $r->{total} < $bound;
		}
		if (@bad)
		{
			$r->{violation} = 1;
			push @viol, $r->{phase}, sprintf('%s: %s read (%s) started at %s, ended %s, status "%s": %s',
				$r->{phase}, $r->{kind}, $r->{session}, $fmt->($r->{start}),
				$fmt->($r->{end}), $r->{status}, join('; ', @bad));
		}
	}

	# upper bounds: sweep the reads by end time
	my %hi = map { $_ => 0 } 1 .. $n;
	my $ai = 0;
	for my $r (sort { $a->{end} <=> $b->{end} } @reads)
	{
		while ($ai < @attempts && $attempts[$ai]{recv} < $r->{end})
		{
			my $a = $attempts[$ai++];
			$hi{ $a->{id} } = $a->{value} if $a->{value} > $hi{ $a->{id} };
		}
		my @bad;
		if ($r->{values})
		{
			for my $id (sort { $a <=> $b } keys %{ $r->{values} })
			{
				push @bad, "id $id = $r->{values}{$id} > $hi{$id} (no UPDATE had produced it yet)"
				  if $r->{values}{$id} > $hi{$id};
			}
		}
		elsif ($r->{groups})
		{
			for my $cu (sort { $a <=> $b } keys %{ $r->{groups} })
			{
				my $bound = sum0(@hi{ $self->ids_of($cu) });
				push @bad, "customer $cu sum = $r->{groups}{$cu} > $bound (no UPDATE had produced it yet)"
				  if $r->{groups}{$cu} > $bound;
			}
		}
		else
		{
			my $bound = sum0(values %hi);
			push @bad, "sum = $r->{total} > $bound (more than UPDATEs had produced)"
			  if $r->{total} > $bound;
		}
		if (@bad)
		{
			$r->{violation} = 1;
			push @viol, $r->{phase}, sprintf('%s: %s read (%s) ended at %s, status "%s": %s',
				$r->{phase}, $r->{kind}, $r->{session}, $fmt->($r->{end}), $r->{status},
				join('; ', @bad));
		}
	}

	# windows in which every read must BYPASS
	for my $w (@{ $p{windows} // [] })
	{
		next unless defined $w->{from} && defined $w->{to};
		for my $r (@reads)
		{
			next unless $r->{start} >= $w->{from} && $r->{end} <= $w->{to};
			$ph{ $r->{phase} }{"in_$w->{name}"}++;
			next if _status_class($r->{status}) eq 'bypass';
			# the local tier answers from this server's own counters, with no
			# Redis: its hits are judged by the stale-read check above
			next if $r->{status} =~ /^HIT \(local/;
			$ph{ $r->{phase} }{status_violations}++;
			push @sviol, sprintf('%s: %s read (%s) from %s to %s within %s: status "%s"',
				$r->{phase}, $r->{kind}, $r->{session}, $fmt->($r->{start}),
				$fmt->($r->{end}), $w->{name}, $r->{status});
		}
	}

	for my $r (@reads)
	{
		my $h = $ph{ $r->{phase} } //= {};
		$h->{reads}++;
		$h->{ { hit => 'hits', miss => 'misses', bypass => 'bypasses', other => 'others' }
			  ->{ _status_class($r->{status}) } }++;
		$h->{invalidated}++ if $r->{status} =~ /^MISS \(invalidated/;
		$h->{pending_bypasses}++ if $r->{status} =~ /^BYPASS: pending invalidations/;
		$h->{redis_bypasses}++ if $r->{status} =~ /^BYPASS: redis/;
		$h->{"reads_$r->{kind}"}++;
		$h->{"hits_$r->{kind}"}++ if $r->{status} =~ /^HIT/;
		$h->{violations}++ if $r->{violation};
	}
	for my $c (@{ $self->{commits} })
	{
		$ph{ $c->{phase} }{ $c->{kind} eq 'commit' ? 'commits' : 'baseline_rows' }++;
	}
	for my $phase (keys %{ $self->{xacts} // {} })
	{
		$ph{$phase}{"xacts_$_"} = $self->{xacts}{$phase}{$_} for keys %{ $self->{xacts}{$phase} };
	}
	for my $e (@{ $self->{errors} })
	{
		$ph{ $e->{phase} }{"sql_errors_$e->{role}"}++;
	}
	for my $k (keys %{ $self->{lost} })
	{
		my ($phase, $role) = split m{/}, $k;
		$ph{$phase}{"lost_$role"} += $self->{lost}{$k};
	}
	for my $phase (@{ $self->{phases} })
	{
		my $h = $ph{$phase} //= {};
		$h->{$_} //= 0
		  for qw(reads hits misses bypasses others commits violations status_violations
		  invalidated pending_bypasses redis_bypasses sql_errors_reader sql_errors_writer
		  sql_errors_monitor lost_reader lost_writer lost_monitor xacts_normal xacts_bulk);
		$h->{"warnings_$_"} = $self->{warnings}{$phase}{$_} // 0 for qw(reader writer);
		my $m = $self->{marks}{$phase};
		$h->{seconds} = sprintf '%.1f', ($m->{end} // $m->{start}) - $m->{start};
	}
	my %vt;
	while (my ($phase, $text) = splice(@viol, 0, 2))
	{
		push @{ $vt{$phase} }, $text;
	}
	return {
		phases => \%ph,
		violations => \%vt,
		status_violations => [ @sviol[ 0 .. min($#sviol, 19) ] ],
		nstatus_violations => scalar(@sviol),
	};
}

=pod

=item $c->reads(phase => ..., after => $t, before => $t)

The reads (hashes: kind, start, end, status, and values (id => value),
groups (customer => sum) or total) of a phase, optionally only those that
started after / ended before the given times.

=item $c->errors() / $c->events() / $c->failures()

SQL errors seen by the sessions; the log of events; failed steps.

=cut

sub reads
{
	my ($self, %p) = @_;
	return grep {
		(!defined $p{phase} || $_->{phase} eq $p{phase})
		  && (!defined $p{after} || $_->{start} >= $p{after})
		  && (!defined $p{before} || $_->{end} <= $p{before})
	} @{ $self->{reads} };
}

sub commits
{
	my ($self, %p) = @_;
	return grep {
		$_->{kind} eq 'commit'
		  && (!defined $p{phase} || $_->{phase} eq $p{phase})
		  && (!defined $p{after} || $_->{sent} >= $p{after})
		  && (!defined $p{before} || $_->{end} <= $p{before})
	} @{ $self->{commits} };
}

sub errors { return @{ $_[0]->{errors} }; }
sub failures { return @{ $_[0]->{failures} }; }

sub events
{
	my $self = shift;
	my $t_base = $self->{marks}{ $self->{phases}[0] // '' }{start} // 0;
	return map { sprintf '%8.3f %-14s %s', $_->[0] - $t_base, $_->[1], $_->[2] } @{ $self->{events} };
}

=pod

=back

=cut

1;
