# test/t/250_monitoring.pl - the Grafana dashboard and Prometheus alert rules
# of docs/prometheus, against a real postgres_exporter
#
# Covered:
#   - a real prometheus-postgres-exporter, connected as a pg_monitor role
#     (what docs/prometheus/cache_ext_queries.yaml asks for) and loading that
#     file, exports every metric the file declares (the 0.6 failover ones
#     only when the extension has them), and every metric name the
#     dashboard's and the alert rules' PromQL use;
#   - the exported values are the SQL ones: cache_stats counters and times,
#     cache_query_stats of one query, bypasses by reason, the outbox depth
#     while Redis is down, the Redis maxmemory and policy;
#   - `promtool check rules` on the alert rules, and on the dashboard's
#     expressions turned into recording rules (they parse);
#   - `promtool test rules` over series built from real scrapes (a scrape
#     is one minute of the series; metric names and label sets, with the
#     instance and job labels Prometheus adds, are the exporter's): the
#     hit-rate alert stays quiet while the hit rate is high, fires once
#     hits stop and misses continue, and stays quiet at a low hit rate
#     below one call per second; the outbox and circuit-open alerts fire
#     from scrapes taken while Redis is stopped, and resolve once it is
#     back; the eviction-policy alert fires under noeviction and not
#     under volatile-lru; the failover alert fires over the scrapes taken
#     around a real failover;
#   - a real failover (0.6): Redis behind one Sentinel with a replica,
#     SENTINEL FAILOVER; cache_health() counts one failover and names the
#     new master, and the exporter's failover counter, last failover time
#     and master label follow;
#   - the dashboard JSON parses; every panel has the datasource variable
#     and at least one target with an expression.
#
# Skipped (skip_all) when /usr/bin/prometheus-postgres-exporter or
# /usr/bin/promtool is missing (Debian packages prometheus-postgres-exporter
# and prometheus); the failover parts only, when cache_health() has no
# failovers column (an extension before 0.6).  The exporter and the sentinel
# are started by this script and stopped by their PIDs.

use strict;
use warnings FATAL => 'all';

use CPAN::Meta::YAML;
use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Util;

# the exporter's queries and the rules do not depend on the local tier (its
# l1_* metrics are checked present with it off): the l1 pass would only
# repeat this file
delete $ENV{CE_L1};

my $EXPORTER = '/usr/bin/prometheus-postgres-exporter';
my $PROMTOOL = '/usr/bin/promtool';
foreach my $bin ($EXPORTER, $PROMTOOL)
{
	plan skip_all => "$bin is not installed (Debian packages "
	  . "prometheus-postgres-exporter and prometheus)"
	  unless -x $bin;
}

my $root = $ENV{TESTDIR} // '.';
$root = '.' unless -d "$root/docs/prometheus";
my $PROM_DIR = File::Spec->rel2abs("$root/docs/prometheus");
my $QUERIES = "$PROM_DIR/cache_ext_queries.yaml";
my $ALERTS = "$PROM_DIR/cache_ext_alerts.yml";
my $DASHBOARD = "$PROM_DIR/cache_ext_dashboard.json";

# Calls per round of the hit-rate phases: a round is one minute of the
# series given to promtool, so 100 calls make 1.7 calls per second, above
# the rule's floor of 1; 10 calls make 0.17, below it.
my $CALLS = 100;
my $QUIET_CALLS = 10;
my ($HIGH_ROUNDS, $LOW_ROUNDS, $QUIET_ROUNDS) = (22, 25, 22);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"cache_ext.connect_timeout = '1s'",
	"cache_ext.command_timeout = '1s'",
	"cache_ext.retry_interval = 500",
	"cache_ext.invalidation_timeout = '300ms'"));
sales_fixture($node);
$node->safe_psql('postgres', q{
SELECT cache_track('sales');
CREATE ROLE ce_exporter LOGIN;
GRANT pg_monitor TO ce_exporter;
});

my $Q_MAIN = 'SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE region = $1 /* monitored */';
my $Q_RAND = 'SELECT id, random() < 2 AS r FROM sales WHERE id = $1 /* volatile */';
my $COLS = 'n bigint, total numeric';

# Does this extension have the failover columns of cache_health() (0.6)?
my $has_failover = $node->safe_psql('postgres', q{
SELECT count(*) FROM pg_proc p, unnest(p.proargnames) AS a(name)
 WHERE p.proname = 'cache_health' AND a.name = 'failovers'}) > 0;
my $NO_FAILOVER = 'cache_health() has no failovers column (extension before 0.6)';

# ---- the exporter -------------------------------------------------------------

my $exporter_port = PostgreSQL::Test::Cluster::get_free_port();
my $exporter_log = $PostgreSQL::Test::Utils::log_path . '/250_exporter.log';
my $exporter_pid;

# Start the exporter as a child of this script, connected to the node's unix
# socket as ce_exporter, logging to $exporter_log.
sub start_exporter
{
	my $dsn = sprintf('host=%s port=%d user=ce_exporter dbname=postgres sslmode=disable',
		$node->host, $node->port);
	my @cmd = ($EXPORTER,
		"--extend.query-path=$QUERIES",
		"--web.listen-address=127.0.0.1:$exporter_port",
		'--disable-default-metrics',
		'--disable-settings-metrics');
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $exporter_log);
		open(STDERR, '>&', \*STDOUT);
		$ENV{DATA_SOURCE_NAME} = $dsn;
		exec(@cmd) or POSIX::_exit(127);
	}
	$exporter_pid = $pid;
	note "postgres_exporter (pid $pid) on 127.0.0.1:$exporter_port";
	return;
}

# SIGTERM the exporter by its PID and reap it (SIGKILL after 5 s).
sub stop_exporter
{
	return unless $exporter_pid;
	kill 'TERM', $exporter_pid;
	for (1 .. 500)
	{
		last if waitpid($exporter_pid, POSIX::WNOHANG()) == $exporter_pid;
		usleep(10_000);
	}
	if (kill 0, $exporter_pid)
	{
		kill 'KILL', $exporter_pid;
		waitpid($exporter_pid, 0);
	}
	note "postgres_exporter (pid $exporter_pid) stopped";
	$exporter_pid = undef;
	return;
}

END
{
	my $exit_code = $?;
	stop_exporter();
	stop_sentinel();
	$? = $exit_code;
}

my $http = HTTP::Tiny->new(timeout => 10);

# One scrape of /metrics: a list of {name, labels => {..}, value}, comments
# and the exporter's own metrics left out.
sub scrape
{
	my $res = $http->get("http://127.0.0.1:$exporter_port/metrics");
	die "scrape failed: $res->{status} $res->{reason}" unless $res->{success};
	my @samples;
	foreach my $line (split /\n/, $res->{content})
	{
		next if $line =~ /^#/ || $line !~ /\S/;
		my ($name, $labels, $value) =
		  $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
		  or die "cannot parse exposition line: $line";
		my %l;
		$labels //= '';
		while ($labels =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gc)
		{
			my ($k, $v) = ($1, $2);
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$l{$k} = $v;
		}
		die "cannot parse labels: $line" if (pos($labels) // 0) != length $labels;
		push @samples, { name => $name, labels => \%l, value => $value };
	}
	return \@samples;
}

# The samples of one metric, optionally only those whose labels match.
sub samples
{
	my ($scrape, $name, %match) = @_;
	return grep {
		my $s = $_;
		$s->{name} eq $name
		  && !grep { ($s->{labels}{$_} // '') ne $match{$_} } keys %match
	} @$scrape;
}

# The value of the one sample of a metric (undef, and a failed test, if
# there is not exactly one).
sub value
{
	my ($scrape, $name, %match) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @s = samples($scrape, $name, %match);
	return $s[0]{value} if @s == 1;
	fail("one sample of $name" . (%match ? ' ' . encode_json(\%match) : '')
		  . ', found ' . scalar(@s));
	return undef;
}

start_exporter();
{
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my $ok;
	while (time() < $deadline)
	{
		$ok = eval { samples(scrape(), 'cache_ext_stats_hits') };
		last if $ok;
		usleep(100_000);
	}
	ok($ok, 'the exporter answers and exports cache_ext_stats_hits')
	  or BAIL_OUT('no exporter: ' . slurp_file($exporter_log));
}

# ---- workload -----------------------------------------------------------------

# $n calls of the main query in one session: over $distinct parameter values
# (a few: hits after the first calls), or each a new value from $base (all
# misses).
sub calls
{
	my ($n, %o) = @_;
	my $param = defined $o{base} ? "$o{base} + i" : "1 + i % $o{distinct}";
	$node->safe_psql('postgres', sprintf(q{
DO $$
BEGIN
	FOR i IN 1..%d LOOP
		PERFORM * FROM cached_query(%s, %s) AS t(%s);
	END LOOP;
END $$;}, $n, sql_literal($Q_MAIN), $param, $COLS));
	return;
}

# Some of each outcome: hits, misses, and bypasses for two reasons.
calls(20, distinct => 3);
$node->safe_psql('postgres',
	cq($Q_RAND, 'id int, r boolean', 1) . ';' . cq($Q_RAND, 'id int, r boolean', 2));
$node->safe_psql('postgres', "SET cache_ext.enabled = off;\n" . cq($Q_MAIN, $COLS, 1));
$redis->cli('CONFIG', 'SET', 'maxmemory', '67108864');

# ---- values against SQL -------------------------------------------------------

my $qs_sql = q{SELECT coalesce(json_agg(s), '[]') FROM cache_query_stats s WHERE query = };
{
	my $before = cache_stats($node);
	my $s = scrape();
	my $after = cache_stats($node);
	my $qs = decode_json($node->safe_psql('postgres', $qs_sql . sql_literal($Q_MAIN)))->[0];
	my $qr = decode_json($node->safe_psql('postgres', $qs_sql . sql_literal($Q_RAND)))->[0];

	foreach my $c (qw(hits misses bypasses stores store_skipped bytes_stored bytes_read
		invalidations_sent l1_hits l1_stores errors corrupt))
	{
		is($before->{$c}, $after->{$c}, "$c did not change around the scrape");
		cmp_ok(value($s, "cache_ext_stats_$c"), '==', $before->{$c},
			"cache_ext_stats_$c is cache_stats.$c ($before->{$c})");
	}
	cmp_ok($before->{hits}, '>', 0, 'the workload made hits');
	cmp_ok($before->{bypasses}, '>=', 3, 'the workload made bypasses');
	foreach my $c (qw(hit_time miss_time bypass_time))
	{
		my $v = value($s, "cache_ext_stats_${c}_seconds");
		ok(abs($v - $before->{"${c}_ms"} / 1000) < 1e-6,
			"cache_ext_stats_${c}_seconds ($v) is cache_stats.${c}_ms / 1000");
	}
	is(value($s, 'cache_ext_stats_server_wide'), 1, 'the counters are server-wide');

	my %q = (queryid => $qs->{queryid}, datname => 'postgres');
	foreach my $c (qw(calls hits misses bypasses stores))
	{
		cmp_ok(value($s, "cache_ext_query_$c", %q), '==', $qs->{$c},
			"cache_ext_query_$c of the query is cache_query_stats.$c ($qs->{$c})");
	}
	is(value($s, 'cache_ext_query_bypass_calls', %q, reason => 'disabled'), 1,
		'the disabled call is a bypass of reason "disabled"');
	is(value($s, 'cache_ext_query_bypass_calls', queryid => $qr->{queryid},
			reason => 'not cacheable'), $qr->{bypass_reasons}{'not cacheable'},
		'the volatile query\'s bypasses are of reason "not cacheable"');

	is(value($s, 'cache_ext_health_connected'), 1, 'the exporter reaches Redis');
	is(value($s, 'cache_ext_health_circuit_open'), 0, 'its circuit is closed');
	cmp_ok(value($s, 'cache_ext_health_maxmemory_bytes'), '==', 67108864,
		'cache_ext_health_maxmemory_bytes is Redis maxmemory');
	my (undef, $policy) = $redis->cli('CONFIG', 'GET', 'maxmemory-policy');
	is(value($s, 'cache_ext_redis_info', maxmemory_policy => $policy), 1,
		"cache_ext_redis_info has maxmemory_policy=\"$policy\"");
	is(value($s, 'pg_exporter_user_queries_load_error'), 0,
		'the exporter loaded the queries file');
}

# Every metric the queries file declares is exported (each query ran).
my $queries = CPAN::Meta::YAML->read($QUERIES)
  or BAIL_OUT('cannot parse the queries file: ' . CPAN::Meta::YAML->errstr);
$queries = $queries->[0];
my %declared;
foreach my $ns (sort keys %$queries)
{
	foreach my $m (@{ $queries->{$ns}{metrics} })
	{
		my ($col, $def) = %$m;
		$declared{"${ns}_$col"} = $ns unless $def->{usage} eq 'LABEL';
	}
}
my %failover_ns = (cache_ext_failover => 1, cache_ext_redis_master => 1);

# Checks that every name in %$names (name => where it is used) is in the
# scrape, the 0.6 failover ones only when the extension has them.
sub all_exported
{
	my ($scrape, $names, $what) = @_;
	my %seen = map { $_->{name} => 1 } @$scrape;
	foreach my $name (sort keys %$names)
	{
		my ($ns) = grep { $name =~ /^\Q$_\E_/ } keys %failover_ns;
		if ($ns && !$has_failover)
		{
			ok(!$seen{$name}, "$what: $name not exported: $NO_FAILOVER");
			next;
		}
		ok($seen{$name}, "$what: $name is exported ($names->{$name})");
	}
	return;
}
all_exported(scrape(), \%declared, 'queries file');

# ---- the dashboard --------------------------------------------------------------

my $dash = eval { decode_json(slurp_file($DASHBOARD)) };
ok($dash, 'the dashboard JSON parses') or diag $@;
$dash //= { panels => [] };
my ($ds_var) = grep { $_->{name} eq 'datasource' } @{ $dash->{templating}{list} // [] };
ok($ds_var && $ds_var->{type} eq 'datasource' && $ds_var->{query} eq 'prometheus',
	'the dashboard has a datasource variable of type prometheus');
cmp_ok($dash->{schemaVersion} // 0, '>=', 37, 'schemaVersion is 37 or later');

my (%dash_names, @dash_exprs);
foreach my $p (map { ($_, @{ $_->{panels} // [] }) } @{ $dash->{panels} })
{
	next if $p->{type} eq 'row';
	my $title = $p->{title} // '(no title)';
	is(($p->{datasource} // {})->{uid}, '${datasource}', "panel \"$title\": datasource variable");
	my @t = grep { ($_->{expr} // '') =~ /\S/ } @{ $p->{targets} // [] };
	ok(@t, "panel \"$title\": a target with an expression");
	foreach my $t (@t)
	{
		is(($t->{datasource} // {})->{uid}, '${datasource}',
			"panel \"$title\" $t->{refId}: datasource variable");
		push @dash_exprs, [ "$title $t->{refId}", $t->{expr} ];
		$dash_names{$_} = "panel \"$title\"" foreach $t->{expr} =~ /\b(cache_ext_[a-z0-9_]+)/g;
	}
}
foreach my $v (@{ $dash->{templating}{list} // [] })
{
	my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
	$dash_names{$_} = "variable $v->{name}" foreach ($q // '') =~ /\b(cache_ext_[a-z0-9_]+)/g;
}
cmp_ok(scalar(keys %dash_names), '>=', 20, 'the dashboard uses many cache_ext metrics');

# ---- the alert rules --------------------------------------------------------------

my $rules_doc = CPAN::Meta::YAML->read($ALERTS)
  or BAIL_OUT('cannot parse the alert rules: ' . CPAN::Meta::YAML->errstr);
my %rule = map { $_->{alert} => $_ } map { @{ $_->{rules} } } @{ $rules_doc->[0]{groups} };
is_deeply([ sort keys %rule ],
	[ sort qw(CacheExtHitRateLow CacheExtOutboxNotEmpty CacheExtRedisCircuitOpen
		  CacheExtRedisFailover CacheExtEvictionPolicyUnsafe) ],
	'the five alerts');
my %alert_names;
foreach my $r (values %rule)
{
	ok($r->{for} && $r->{labels}{severity} && $r->{annotations}{summary}
		  && $r->{annotations}{description},
		"$r->{alert}: for, severity, summary and description");
	$alert_names{$_} = "alert $r->{alert}" foreach $r->{expr} =~ /\b(cache_ext_[a-z0-9_]+)/g;
}

sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	print $fh $text;
	close($fh) or die "cannot write $path: $!";
	return;
}

sub promtool
{
	my @args = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $PROMTOOL, @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($ok, "$out$err");
}

my ($ok, $out) = promtool('check', 'rules', $ALERTS);
ok($ok, 'promtool check rules accepts the alert rules') or diag $out;

# A dashboard expression as Grafana sends it: its variables replaced.
sub dashboard_expr
{
	my ($expr) = @_;
	$expr =~ s/\$__rate_interval/5m/g;
	$expr =~ s/\$instance/.*/g;
	return $expr;
}

# The dashboard's expressions parse: each becomes a recording rule.
{
	my @rec;
	foreach my $e (@dash_exprs)
	{
		push @rec, { record => 'cache_ext_dashboard:' . scalar(@rec),
			expr => dashboard_expr($e->[1]) };
	}
	my $f = "$PostgreSQL::Test::Utils::tmp_check/250_dashboard_rules.yml";
	write_file($f,
		encode_json({ groups => [ { name => 'dashboard', rules => \@rec } ] }));
	my ($ok2, $out2) = promtool('check', 'rules', $f);
	ok($ok2, 'promtool check rules accepts the dashboard\'s ' . scalar(@rec) . ' expressions')
	  or diag $out2;
}

# ---- hit rate: high, then only misses, then quiet ---------------------------------

my (@high, @low, @quiet);
foreach my $r (1 .. $HIGH_ROUNDS)
{
	calls($CALLS, distinct => 3);
	push @high, scrape();
}
foreach my $r (1 .. $LOW_ROUNDS)
{
	calls($CALLS, base => 1000 * $r);
	push @low, scrape();
}
foreach my $r (1 .. $QUIET_ROUNDS)
{
	calls($QUIET_CALLS, base => 100000 + 1000 * $r);
	push @quiet, scrape();
}
{
	my $h0 = value($high[0], 'cache_ext_stats_hits');
	my $h1 = value($high[-1], 'cache_ext_stats_hits');
	my $h2 = value($low[-1], 'cache_ext_stats_hits');
	my $m1 = value($high[-1], 'cache_ext_stats_misses');
	my $m2 = value($low[-1], 'cache_ext_stats_misses');
	cmp_ok($h1 - $h0, '>=', ($HIGH_ROUNDS - 1) * $CALLS * 0.9, 'the high phase made hits');
	is($h2, $h1, 'no hits in the miss phase');
	is($m2 - $m1, $LOW_ROUNDS * $CALLS, 'every call of the miss phase was a miss');
}

# ---- Redis stopped: circuit open, invalidations in the outbox ----------------------

my (@up, @down, @back);
push @up, scrape() foreach 1 .. 3;
$redis->stop;
$node->safe_psql('postgres', 'UPDATE sales SET amount = amount + 1 WHERE id = 1');
my $depth = 0;
{
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		$depth = $node->safe_psql('postgres', 'SELECT outbox_depth FROM cache_health()');
		last if $depth > 0;
		usleep(50_000);
	}
}
cmp_ok($depth, '>', 0, 'with Redis stopped, the write\'s invalidation waits in the outbox');
foreach (1 .. 10)
{
	push @down, scrape();
	usleep(100_000);
}
{
	my $sql_depth = $node->safe_psql('postgres', 'SELECT outbox_depth FROM cache_health()');
	is(value($down[-1], 'cache_ext_health_outbox_depth'), $sql_depth,
		"cache_ext_health_outbox_depth is cache_health().outbox_depth ($sql_depth)");
	is((grep { value($_, 'cache_ext_health_connected') == 0 } @down), scalar(@down),
		'every scrape while Redis is down says not connected');
	cmp_ok((grep { value($_, 'cache_ext_health_circuit_open') == 1 } @down), '>', 0,
		'and some say the circuit is open');
}
$redis->start;
{
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $s = scrape();
		last if value($s, 'cache_ext_health_connected') == 1
		  && value($s, 'cache_ext_health_pending_invalidations') == 0;
		usleep(100_000);
	}
}
push @back, scrape() foreach 1 .. 3;
is(value($back[-1], 'cache_ext_health_pending_invalidations'), 0,
	'Redis back: the outbox drained');

# ---- eviction policy: volatile-lru ---------------------------------------------------

$redis->cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
my @volatile;
push @volatile, scrape() foreach 1 .. 10;
is(value($volatile[-1], 'cache_ext_redis_info', maxmemory_policy => 'volatile-lru'), 1,
	'after CONFIG SET, cache_ext_redis_info has maxmemory_policy="volatile-lru"');

# Every metric the dashboard and the rules use is exported (the last scrape:
# Redis up, every kind of call made).
all_exported($volatile[-1], \%dash_names, 'dashboard');
all_exported($volatile[-1], \%alert_names, 'alert rules');

# ---- a real failover: Redis behind one Sentinel (0.6) -------------------------------

# A redis-server in sentinel mode, child of this script, stopped by PID.
my ($sentinel_pid, $sentinel_port);

sub start_sentinel
{
	my ($master) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir('sentinel');
	$sentinel_port = PostgreSQL::Test::Cluster::get_free_port();
	write_file("$dir/sentinel.conf", join("\n",
		"port $sentinel_port",
		'bind 127.0.0.1',
		"dir $dir",
		"logfile $dir/sentinel.log",
		'sentinel resolve-hostnames no',
		'sentinel monitor ce 127.0.0.1 ' . $master->port . ' 1',
		'sentinel down-after-milliseconds ce 2000',
		'sentinel failover-timeout ce 20000', ''));
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', "$dir/sentinel.out");
		open(STDERR, '>&', \*STDOUT);
		exec('redis-server', "$dir/sentinel.conf", '--sentinel') or POSIX::_exit(127);
	}
	$sentinel_pid = $pid;
	note "redis-server --sentinel (pid $pid) on 127.0.0.1:$sentinel_port";
	return;
}

sub stop_sentinel
{
	return unless $sentinel_pid;
	kill 'TERM', $sentinel_pid;
	waitpid($sentinel_pid, 0);
	note "redis-server --sentinel (pid $sentinel_pid) stopped";
	$sentinel_pid = undef;
	return;
}

# redis-cli against the sentinel: its output, '' on failure.
sub sentinel_cli
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '-h', '127.0.0.1', '-p', $sentinel_port, @_ ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(10));
	return $out;
}

# Polls $cond (a code ref) every 100 ms up to the default timeout.
sub wait_until
{
	my ($cond) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

my (@before_failover, @after_failover, $replica);
SKIP:
{
	skip $NO_FAILOVER, 10 unless $has_failover;

	$replica = CacheExt::Redis->new(name => 'replica');
	$replica->cli('REPLICAOF', '127.0.0.1', $redis->port);
	ok(wait_until(sub { scalar(grep { /master_link_status:up/ } $replica->cli('INFO', 'replication')) }),
		'the replica follows the master');
	start_sentinel($redis);
	ok(wait_until(sub { sentinel_cli('SENTINEL', 'replicas', 'ce') =~ /\b${\ $replica->port }\b/ }),
		'the sentinel knows the master and its replica');

	$node->safe_psql('postgres', sprintf(
		"ALTER SYSTEM SET cache_ext.redis_url = 'redis-sentinel://127.0.0.1:%d/ce'; SELECT pg_reload_conf()",
		$sentinel_port));
	my $master = '127.0.0.1:' . $redis->port;
	ok(wait_until(sub {
		calls(5, distinct => 3);
		my $s = scrape();
		samples($s, 'cache_ext_redis_master_info', mode => 'sentinel', master => $master);
	}), "the exporter reaches the master through the sentinel: mode=\"sentinel\", master=\"$master\"");
	push @before_failover, scrape() foreach 1 .. 5;
	my $before = value($before_failover[-1], 'cache_ext_failover_failovers');

	# -NOGOODSLAVE until the sentinel has heard from the replica itself
	ok(wait_until(sub { sentinel_cli('SENTINEL', 'FAILOVER', 'ce') =~ /^OK/ }),
		'SENTINEL FAILOVER accepted');
	my $new_master = '127.0.0.1:' . $replica->port;
	ok(wait_until(sub {
		sentinel_cli('SENTINEL', 'get-master-addr-by-name', 'ce') eq "127.0.0.1\n" . $replica->port . "\n"
	}), "the sentinel promoted the replica ($new_master)");
	my $sql = 'SELECT failovers, redis_master FROM cache_health()';
	my $seen = '';
	ok(wait_until(sub {
		eval { calls(5, distinct => 3) };
		$seen = $node->safe_psql('postgres', $sql);
		$seen eq ($before + 1) . "|$new_master";
	}), "cache_health() saw one failover, to $new_master") or diag "cache_health(): $seen";
	ok(wait_until(sub {
		my $s = scrape();
		samples($s, 'cache_ext_redis_master_info', master => $new_master);
	}), "the exporter shows the new master");
	push @after_failover, scrape() foreach 1 .. 5;
	cmp_ok(value($after_failover[-1], 'cache_ext_failover_failovers'), '==', $before + 1,
		'cache_ext_failover_failovers went up by one');
	my $last = $node->safe_psql('postgres',
		'SELECT extract(epoch FROM last_failover) FROM cache_health()');
	ok(abs(value($after_failover[-1], 'cache_ext_failover_last_failover_timestamp_seconds') - $last) < 1e-3,
		'cache_ext_failover_last_failover_timestamp_seconds is cache_health().last_failover');
	is(scalar(samples($after_failover[-1], 'cache_ext_redis_master_info')), 1,
		'one cache_ext_redis_master_info series at a time');
}
stop_sentinel();

# ---- promtool test rules over the scrapes ---------------------------------------------

my $instance = "127.0.0.1:$exporter_port";

# The labels Prometheus stores for a sample it scraped.
sub stored_labels
{
	my ($sample) = @_;
	return { %{ $sample->{labels} }, instance => $instance, job => 'postgres' };
}

# promtool's series notation: name{l="v",...}.
sub series_name
{
	my ($name, $labels) = @_;
	my @l;
	foreach my $k (sort keys %$labels)
	{
		(my $v = $labels->{$k}) =~ s/(["\\])/\\$1/g;
		$v =~ s/\n/\\n/g;
		push @l, "$k=\"$v\"";
	}
	return $name . '{' . join(',', @l) . '}';
}

# input_series for metric $name from a list of scrapes, one a minute: one
# series per label set the scrapes have, "_" where a scrape lacks it.
sub input_series
{
	my ($name, @scrapes) = @_;
	my (%vals, %labels);
	foreach my $i (0 .. $#scrapes)
	{
		foreach my $s (samples($scrapes[$i], $name))
		{
			my $l = stored_labels($s);
			my $key = series_name($name, $l);
			$labels{$key} = $l;
			$vals{$key} //= [ ('_') x @scrapes ];
			die "not a number in $key: $s->{value}"
			  unless $s->{value} =~ /^(-?\d+(\.\d+)?(e[-+]?\d+)?|NaN|[-+]Inf)$/i;
			$vals{$key}[$i] = $s->{value};
		}
	}
	die "no series $name in the scrapes" unless %vals;
	return map { { series => $_, values => join(' ', @{ $vals{$_} }) } } sort keys %vals;
}

# An expected alert: the rule's labels and its annotations, whose templates
# may use $labels only (anything else would need Prometheus to render).
sub expected_alert
{
	my ($alert, $labels) = @_;
	my $r = $rule{$alert};
	my %l = (%$labels, %{ $r->{labels} });
	my %a;
	foreach my $k (keys %{ $r->{annotations} })
	{
		my $text = $r->{annotations}{$k};
		$text =~ s/\{\{\s*\$labels\.(\w+)\s*\}\}/$l{$1} \/\/ ''/ge;
		die "$alert $k: a template this test cannot render: $text" if $text =~ /\{\{/;
		$a{$k} = $text;
	}
	return { exp_labels => \%l, exp_annotations => \%a };
}

# The labels of an alert on one scraped sample, without its metric name.
sub alert_labels
{
	my ($scrape, $name) = @_;
	my @s = samples($scrape, $name);
	die "no $name in the scrape" unless @s == 1;
	return stored_labels($s[0]);
}

my @tests;
my $case_names = '';

# Hit rate: 22 minutes high, 25 of misses only, 22 quiet (10 calls a minute).
{
	my @scrapes = (@high, @low, @quiet);
	my $end_high = $HIGH_ROUNDS - 1;
	my $end_low = $end_high + $LOW_ROUNDS;
	my $end_quiet = $end_low + $QUIET_ROUNDS;
	push @tests, {
		interval => '1m',
		input_series => [ map { input_series($_, @scrapes) }
			  qw(cache_ext_stats_hits cache_ext_stats_misses cache_ext_stats_bypasses) ],
		alert_rule_test => [
			{ eval_time => "${end_high}m", alertname => 'CacheExtHitRateLow', exp_alerts => [] },
			{ eval_time => "${end_low}m", alertname => 'CacheExtHitRateLow',
			  exp_alerts => [ expected_alert('CacheExtHitRateLow', { instance => $instance }) ] },
			{ eval_time => "${end_quiet}m", alertname => 'CacheExtHitRateLow', exp_alerts => [] },
		] };
}

# Redis stopped: 3 minutes up, 10 down, 3 up again.
{
	my @scrapes = (@up, @down, @back);
	my $first_down = scalar @up;
	my $last_down = $first_down + @down - 1;
	my $last = $last_down + @back;
	my $circuit = expected_alert('CacheExtRedisCircuitOpen',
		alert_labels($down[-1], 'cache_ext_health_connected'));
	my $outbox = expected_alert('CacheExtOutboxNotEmpty',
		alert_labels($down[-1], 'cache_ext_health_pending_invalidations'));
	my @at = ($first_down - 1, $first_down + 1, $first_down + 3, $last_down, $last);
	push @tests, {
		interval => '1m',
		input_series => [ map { input_series($_, @scrapes) }
			  qw(cache_ext_health_circuit_open cache_ext_health_connected
			  cache_ext_health_pending_invalidations) ],
		alert_rule_test => [
			(map { { eval_time => "$at[$_]m", alertname => 'CacheExtRedisCircuitOpen',
				  exp_alerts => ($_ == 2 || $_ == 3) ? [$circuit] : [] } } 0 .. 4),
			(map { { eval_time => "$at[$_]m", alertname => 'CacheExtOutboxNotEmpty',
				  exp_alerts => $_ == 3 ? [$outbox] : [] } } 0 .. 4),
		] };
}

# Eviction policy: noeviction (Redis's default, the phases above), then
# volatile-lru, 10 minutes each, as two cases.
push @tests, {
	interval => '1m',
	input_series => [ input_series('cache_ext_redis_info', @high[0 .. 9]) ],
	alert_rule_test => [
		{ eval_time => '9m', alertname => 'CacheExtEvictionPolicyUnsafe',
		  exp_alerts => [ expected_alert('CacheExtEvictionPolicyUnsafe',
				  alert_labels($high[9], 'cache_ext_redis_info')) ] },
	] },
  {
	interval => '1m',
	input_series => [ input_series('cache_ext_redis_info', @volatile) ],
	alert_rule_test => [
		{ eval_time => '9m', alertname => 'CacheExtEvictionPolicyUnsafe', exp_alerts => [] },
	] };
is(value($high[9], 'cache_ext_redis_info', maxmemory_policy => 'noeviction'), 1,
	'the first phases ran with maxmemory_policy="noeviction"');

# Failover: 5 minutes before the Sentinel failover, 5 after.
SKIP:
{
	skip $NO_FAILOVER, 1 unless @after_failover;
	my $last_before = $#before_failover;
	my $at = $last_before + 2;
	push @tests, {
		interval => '1m',
		input_series => [ input_series('cache_ext_failover_failovers',
				@before_failover, @after_failover) ],
		alert_rule_test => [
			{ eval_time => "${last_before}m", alertname => 'CacheExtRedisFailover', exp_alerts => [] },
			{ eval_time => "${at}m", alertname => 'CacheExtRedisFailover',
			  exp_alerts => [ expected_alert('CacheExtRedisFailover',
					  alert_labels($after_failover[-1], 'cache_ext_failover_failovers')) ] },
		] };
	pass('failover: a case over the scrapes around a real failover');
}

# Every dashboard expression returns data from real scrapes: as an alert
# "count(expr) > 0" over every cache_ext series of the last ten scrapes
# (Redis up, every kind of call made, and a failover when the extension
# has them), evaluated at the last.
{
	my @scrapes = @after_failover ? (@before_failover, @after_failover) : @volatile;
	my %names = map { $_->{name} => 1 } grep { $_->{name} =~ /^cache_ext_/ } map { @$_ } @scrapes;
	my (@rules, @checks);
	foreach my $i (0 .. $#dash_exprs)
	{
		my ($where, $expr) = @{ $dash_exprs[$i] };
		push @rules, { alert => "DashboardExpr$i", expr => 'count(' . dashboard_expr($expr) . ') > 0' };
		my $empty = !$has_failover && grep { $expr =~ /\b\Q$_\E_/ } keys %failover_ns;
		push @checks, { eval_time => $#scrapes . 'm', alertname => "DashboardExpr$i",
			exp_alerts => $empty ? [] : [ { exp_labels => {} } ] };
		note "DashboardExpr$i: panel \"$where\"" . ($empty ? " (no data: $NO_FAILOVER)" : '');
	}
	my $rules_file = "$PostgreSQL::Test::Utils::tmp_check/250_dashboard_alerts.yml";
	write_file($rules_file, encode_json({ groups => [ { name => 'dashboard', rules => \@rules } ] }));
	my $f = "$PostgreSQL::Test::Utils::tmp_check/250_dashboard_test.yml";
	write_file($f, JSON::PP->new->canonical->pretty->encode({
		rule_files => [$rules_file],
		evaluation_interval => '1m',
		tests => [ {
			interval => '1m',
			input_series => [ map { input_series($_, @scrapes) } sort keys %names ],
			alert_rule_test => \@checks } ] }));
	my ($ok4, $out4) = promtool('test', 'rules', $f);
	ok($ok4, 'promtool: each of the dashboard\'s ' . scalar(@dash_exprs)
		  . ' expressions returns data from ' . scalar(@scrapes) . ' real scrapes') or diag $out4;
}

{
	my $f = "$PostgreSQL::Test::Utils::tmp_check/250_alerts_test.yml";
	# YAML is a superset of JSON.
	write_file($f,
		JSON::PP->new->canonical->pretty->encode({
			rule_files => [$ALERTS],
			evaluation_interval => '1m',
			tests => \@tests }));
	my ($ok3, $out3) = promtool('test', 'rules', $f);
	ok($ok3, 'promtool test rules: ' . scalar(@tests) . ' cases over the real scrapes pass')
	  or diag $out3;
	note "promtool test file: $f";
}

stop_exporter();
my $log = slurp_file($exporter_log);
# Each query that fails is logged at info, then a count of them at error.
my @failed = grep { /Error running query/ } split /\n/, $log;
my @errors = grep { /level=error/ } split /\n/, $log;
my @expected_failures = $has_failover ? () : sort keys %failover_ns;
my %failed_ns = map { /(cache_ext_\w+) pq:/ ? ($1 => 1) : ($_ => 1) } @failed;
is_deeply([ sort keys %failed_ns ], \@expected_failures,
	'the queries that failed: ' . (@expected_failures ? "the 0.6 ones ($NO_FAILOVER)" : 'none'))
  or diag join("\n", @failed);
my $n_fail = @expected_failures;
is((grep { !/queryNamespaceMappings returned $n_fail errors/ } @errors), 0,
	'no other error logged') or diag join("\n", @errors);

$node->stop;
done_testing();
