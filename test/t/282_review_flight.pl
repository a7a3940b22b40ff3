# test/t/282_review_flight.pl - review of single flight (issue 14): the
# holes found by the adversarial review, one part per finding of
# /work/review-flight-findings.md.  Each part fails on the code reviewed.
#
#   1. RF1: the fill lock's value in Redis holds this server's system
#      identifier in clear text (the key names hash it).
#   2. RF2: a lock key that cache_ext cannot have written (no TTL, a value
#      that is not a token) makes every miss of its entry on the primary
#      wait the whole of cache_ext.fill_wait.
#   2b. the same with a 2 kB value that has a TTL.
#   3. RF3: on a hot standby, one miss while the primary was not filling
#      marks the key's slot "unstorable"; the next stampede on the standby
#      while the primary fills is not coalesced (each session runs it).
#
# Executions are counted with auto_explain, as in 280.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

delete $ENV{CE_VERIFY_RATE};

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"shared_preload_libraries = 'cache_ext,auto_explain'",
	'auto_explain.log_min_duration = 0',
	'auto_explain.log_nested_statements = on',
	'max_parallel_workers_per_gather = 0',
	'cache_ext.verify_rate = 0',
	'cache_ext.fill_wait = 8000',
	'cache_ext.fill_lock = on',
	'wal_level = replica', 'max_wal_senders = 5', 'hot_standby = on'));

$node->safe_psql('postgres', q{
CREATE TABLE rf_src (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO rf_src SELECT i, i % 97 FROM generate_series(1, 1000) AS i;
SELECT cache_track('rf_src');
});

# slow (a sort of a cross join), cacheable, counted by its comment
my $N = $ENV{CE_RF_ROWS} // 1200;
my $Q = 'SELECT /*rf_exec*/ count(DISTINCT s.v * 100000 + g.i) AS d '
  . "FROM rf_src s CROSS JOIN generate_series(1, $N) AS g(i)";
my $CALL = 'SELECT \'R:\' || d FROM cached_query(' . sql_literal($Q)
  . ") AS t(d bigint);\nSELECT 'S:' || cache_status();";

sub execs
{
	my ($n, $from) = @_;
	my @m = substr(slurp_file($n->logfile), $from) =~ m{Query Text: SELECT /\*rf_exec\*/}g;
	return scalar @m;
}
sub log_pos { return -s $_[0]->logfile; }
sub invalidate { $node->safe_psql('postgres', 'UPDATE rf_src SET v = v + 1 WHERE id = 1'); }

my $t = time();
$node->safe_psql('postgres', $Q);
my $tq = time() - $t;
note sprintf('the query takes %.2f s directly', $tq);

my $filler = CacheExt::Session->new($node);

# ---- 1. RF1: the lock's value names the server in clear ------------------------

invalidate();
my $ftag = $filler->send($CALL);
my @locks;
my $deadline = time() + 10;
while (time() < $deadline)
{
	@locks = $redis->scan_keys('*:f:*');
	last if @locks;
	sleep(0.01);
}
is(scalar(@locks), 1, 'RF1: the filler holds one fill lock in Redis');
my $token = @locks ? $redis->cli('GET', $locks[0]) : '';
my $sysid = $node->safe_psql('postgres',
	"SELECT lpad(to_hex(system_identifier), 16, '0') FROM pg_control_system()");
note "lock value $token, system identifier $sysid";
unlike($token, qr/\Q$sysid\E/i,
	'RF1: the fill lock\'s value does not hold the system identifier in clear text');
$filler->wait($ftag, 60);

# ---- 2. RF2: a lock cache_ext cannot have written is waited for -----------------

# a cheap query: any wait is the lock's
my $QC = 'SELECT /*rf_cheap*/ count(*) AS n FROM rf_src';
my $CALLC = 'SELECT \'R:\' || n FROM cached_query(' . sql_literal($QC)
  . ") AS t(n bigint);\nSELECT 'S:' || cache_status();";
my @before = $redis->scan_keys('*:e:*');
$filler->query_ok($CALLC);
my %old = map { $_ => 1 } @before;
my @entry = grep { !$old{$_} } $redis->scan_keys('*:e:*');
is(scalar(@entry), 1, 'RF2: the cheap query stored one entry');
(my $lock = $entry[0] // '') =~ s/:e:([^:]*)$/:f:$1/;
invalidate();
# no TTL, and a value that is not a token (48 hex digits)
$redis->cli('SET', $lock, 'not-a-token');
my ($out, $err, $secs) = $filler->query("SET cache_ext.fill_wait = 3000;\n$CALLC", 30);
note "status: $out; $secs s";
like($out, qr/^S:MISS/m, 'RF2: the call missed and filled');
cmp_ok($secs, '<', 1.5,
	sprintf('RF2: a lock key with no TTL and no token does not hold the call for fill_wait (%.2f s)', $secs));
$redis->cli('DEL', $lock);
$filler->query_ok('RESET cache_ext.fill_wait');

# ---- 2b. RF2: nor is a value of 2 kB (read with bounded replies) ----------

# another stored result, which must keep hitting (no breaker opened)
my $QD = 'SELECT /*rf_other*/ sum(v) AS n FROM rf_src';
my $CALLD = 'SELECT \'R:\' || n FROM cached_query(' . sql_literal($QD)
  . ") AS t(n bigint);\nSELECT 'S:' || cache_status();";
invalidate();
$filler->query_ok($CALLD);
like(scalar($filler->query($CALLD)), qr/^S:HIT/m, 'RF2: the other result hits');
$redis->cli('SET', $lock, 'x' x 2000, 'PX', '5000');
($out, $err, $secs) = $filler->query($CALLC, 30);
note "status: $out; $secs s";
like($out, qr/^S:MISS/m, 'RF2: a call whose lock key holds 2 kB misses and fills');
cmp_ok($secs, '<', 1.5,
	sprintf('RF2: a 2 kB value that is not a token does not hold the call (%.2f s)', $secs));
($out) = $filler->query($CALLD, 30);
like($out, qr/^S:HIT/m, 'RF2: the next call of this backend still uses Redis');
$redis->cli('DEL', $lock);

# ---- 3. RF3: a standby's earlier miss defeats its single flight ---------------

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
my @ss = map { CacheExt::Session->new($standby) } 1 .. 4;

# a miss on the standby while nobody fills: its slot ends "unstorable"
invalidate();
$node->wait_for_catchup($standby);
my ($o1) = $ss[0]->query($CALL, 60);
like($o1, qr/^S:MISS .*hot standby/m, 'RF3: a standby miss while the primary does not fill');

invalidate();
$node->wait_for_catchup($standby);
my $spos = log_pos($standby);
my $ppos = log_pos($node);
$ftag = $filler->send($CALL);
$deadline = time() + 10;
sleep(0.01) while time() < $deadline && !$redis->scan_keys('*:f:*');
my @stags = map { $_->send($CALL) } @ss;
my $fr = ($filler->wait($ftag, 60))[0] // '';
my @res = map { ($ss[$_]->wait($stags[$_], 60))[0] // '' } 0 .. 3;
like($fr, qr/^S:MISS/m, 'RF3: the primary filled');
is(execs($node, $ppos), 1, 'RF3: the primary ran the query once');
is(scalar(grep { /^S:HIT/m } @res), 4, 'RF3: every standby session hit the primary\'s fill');
is(execs($standby, $spos), 0,
	'RF3: the standby ran the query 0 times (its earlier miss does not defeat single flight)');
note join(' | ', map { /^S:(.*)$/m ? $1 : '?' } @res);

$_->quit for (@ss, $filler);
$standby->stop;
$node->stop;
$redis->stop;
done_testing();
