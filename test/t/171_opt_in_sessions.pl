# test/t/171_opt_in_sessions.pl - an opt-in never widens what a session reads
#
# A call that names what its opaque functions read (cache_opts(depends_on))
# is cached; but such a function may read state only its own session has:
# its temporary tables, its prepared statements.  Two sessions of the same
# role, each with its own state: neither ever gets the other's (review
# findings F11 and N9 of issue 10).  Within one session the opted-in result
# is cached.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

$node->safe_psql('postgres', q{
CREATE TABLE anchor (a int);
SELECT cache_track('anchor');
CREATE FUNCTION tmp_read() RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT string_agg(v, '','') FROM tt' INTO r;
    RETURN r;
END $$;
CREATE FUNCTION my_prep() RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE r text;
BEGIN
    SELECT string_agg(statement, ';' ORDER BY name) INTO r FROM pg_prepared_statements;
    RETURN coalesce(r, '(none)');
END $$;
});

my $OPTS = q{cache_opts(depends_on => ARRAY['anchor'::regclass])};

sub call
{
	my ($s, $q) = @_;
	my ($out, $err) = $s->query(
		"SELECT cached_query_json_with($OPTS, '$q')->0->>'r';\nSELECT cache_status();");
	my ($rows, $status) = split /\n/, $out, 2;
	return ($rows // '', $status // '', $err);
}

my $s1 = CacheExt::Session->new($node);
my $s2 = CacheExt::Session->new($node);

# temporary tables of the same name, different rows
$s1->query_ok(q{CREATE TEMP TABLE tt (v text); INSERT INTO tt VALUES ('s1-private')});
$s2->query_ok(q{CREATE TEMP TABLE tt (v text); INSERT INTO tt VALUES ('s2')});
my ($r, $st) = call($s1, 'SELECT tmp_read() AS r');
is($r, 's1-private', 'session 1 reads its temporary table');
like($st, qr/^MISS/, 'and stores it');
($r, $st) = call($s1, 'SELECT tmp_read() AS r');
like($st, qr/^HIT(?: \(local\))?$/, 'session 1 hits its own result');
($r, $st) = call($s2, 'SELECT tmp_read() AS r');
is($r, 's2', "session 2 gets its own temporary table's rows, never session 1's");

# prepared statements
$s1->query_ok(q{PREPARE s1 AS SELECT 'password=hunter2'});
($r, $st) = call($s1, 'SELECT my_prep() AS r');
like($r, qr/password=hunter2/, "session 1 sees its prepared statement");
($r, $st) = call($s2, 'SELECT my_prep() AS r');
is($r, '(none)', "session 2 never gets session 1's prepared statement text");
unlike($r, qr/hunter2/, 'not even in part');

$s1->quit;
$s2->quit;
$node->stop;
$redis->stop;
done_testing();
