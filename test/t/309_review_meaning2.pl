# test/t/309_review_meaning2.pl - second adversarial review of serving
# statements prepared before they run (commit 20ff86e and later: looked up
# at start, a MISS filled at its first read).  Each block reproduces one
# finding of /work/review-meaning2-findings.md and asserts what PostgreSQL
# returns without the extension; the direct answer is read with the same
# statement plus "AND true", which no rule serves.  The blocks are expected
# to FAIL until the findings are fixed.
#
# N1  a pending MISS is filled at its first read with a fresh snapshot:
#     rows another session committed after DECLARE / Bind (which the
#     direct cursor / portal cannot see) are returned.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use JSON::PP;

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('review_meaning2', $redis, extra_conf => 'cache_ext.default_ttl = 300');
my $super = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', q{
CREATE TABLE pt (id int PRIMARY KEY, region int NOT NULL, ts timestamptz NOT NULL);
INSERT INTO pt SELECT i, 1 + i % 5, '2024-01-01 00:00+00'::timestamptz + i * interval '1 hour'
  FROM generate_series(1, 50) i;
SELECT cache_track('pt');
});

# the messages of test/lib/pgwire_steps.py, one session; returns its output
sub steps
{
	my (@steps) = @_;
	my $json = JSON::PP->new->canonical;
	my @cmd = ('python3', "$FindBin::Bin/../lib/pgwire_steps.py",
		'--socket', $node->host, '--port', $node->port, '--user', $super,
		map { $json->encode($_) } @steps);
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	diag($err) if $err;
	chomp $out;
	return $out;
}

# ---- N1: a pending MISS filled with a snapshot newer than the cursor's ----------
$node->safe_psql('postgres', q{
SELECT cache_rule_create($q$SELECT id FROM pt WHERE region = 3 ORDER BY id$q$, name => 'n1');
});
{
	my %got;
	my %id;
	my $id = 1000;
	for my $form ('ruled', 'direct')
	{
		my $and = $form eq 'direct' ? ' AND true' : '';
		$id{"declare $form"} = ++$id;
		# DECLARE, another session commits a row, FETCH ALL
		$got{"declare $form"} = steps(['Q', 'BEGIN'],
			['Q', "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM pt WHERE region = 3$and ORDER BY id"],
			['X', "INSERT INTO pt VALUES ($id, 3, now())"],
			['Q', 'FETCH ALL c'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
		$id{"bind $form"} = ++$id;
		# Bind, Sync (in a block), another session commits a row, Execute
		$got{"bind $form"} = steps(['Q', 'BEGIN'],
			['P', 's', "SELECT id FROM pt WHERE region = 4$and ORDER BY id"],
			['B', 'p', 's', []], ['S'],
			['X', "INSERT INTO pt VALUES ($id, 4, now())"],
			['E', 'p', 0], ['S'], ['Q', 'SELECT cache_status()'], ['Q', 'COMMIT']);
	}
	for my $k ('declare', 'bind')
	{
		note("N1 $k ruled: " . join(' ', split /\n/, $got{"$k ruled"}));
		note("N1 $k direct: " . join(' ', split /\n/, $got{"$k direct"}));
		my ($r, $d) = ($id{"$k ruled"}, $id{"$k direct"});
		unlike($got{"$k direct"}, qr/^$d$/m,
			"N1 $k: the direct cursor does not see the row committed after it started");
		unlike($got{"$k ruled"}, qr/^$r$/m,
			"N1 $k: the ruled statement (a pending MISS) does not either (filled at its first read with a newer snapshot)");
	}
}

done_testing();
