# test/t/161_prepared_transactions.pl - two-phase commit is safe from every role
#
# Breaks 1 and 20 of issue 10:
#  - COMMIT PREPARED read the prepared transaction's invalidations with SQL
#    run as the bootstrap superuser under the caller's search_path, so a
#    role's own =(text, text) operator ran as superuser (any role that can
#    create an operator became superuser).  Now the table is read and written
#    with direct heap access: the role's operator never runs with raised
#    privileges, the role stays what it was, and the invalidation still
#    happens.
#  - PREPARE TRANSACTION with a GID already in use hung in the insert into
#    cache_ext_prepared (its unique index waited on the other prepared
#    transaction, and statement_timeout did not stop it).  Now it fails at
#    once with 42710, as without cache_ext, and the first prepared
#    transaction still commits with its invalidation.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"max_prepared_transactions = 4"));

$node->safe_psql('postgres', q{
CREATE TABLE pt (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO pt SELECT i, i FROM generate_series(1, 20) AS i;
SELECT cache_track('pt');
CREATE ROLE mallory LOGIN;
GRANT CREATE ON DATABASE postgres TO mallory;
GRANT SELECT, UPDATE ON pt TO mallory;
});

my $Q = 'SELECT count(*) AS n, sum(v)::bigint AS total FROM pt';
my $COLS = 'n bigint, total bigint';
my $CALL = cq($Q, $COLS);

sub direct { return direct_rows($node, $Q, []); }

sub prime
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	cache_call($node, $CALL);
	call_is($node, $CALL, qr/^HIT(?: \(local\))?$/, direct(), "$what: primed, HIT");
	return;
}

sub prepared_rows
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM cache_ext_prepared');
}

# psql as mallory, one session; returns (stdout, stderr)
sub as_mallory
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', 'mallory' ], on_error_stop => 0);
	return ($out, $err);
}

# ============================================================================
# Break 1: a role's operator never runs with raised privileges
# ============================================================================

my ($out, $err) = as_mallory(q{
CREATE SCHEMA mallory_s;
CREATE TABLE mallory_s.log (who text, su bool);
-- the operator every "gid = $1" would pick with this search_path: it logs
-- who runs it and tries to make mallory superuser
CREATE FUNCTION mallory_s.texteq(a text, b text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mallory_s.log
        SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
    BEGIN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mallory_s.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mallory_s.texteq);
});
is($err, '', 'mallory created a schema with her own =(text, text) operator');

# the trap is armed: with her search_path, her own comparisons run it
($out, $err) = as_mallory(q{
SET search_path = mallory_s, pg_catalog;
SELECT 'a'::text = 'a'::text;
SELECT count(*) FROM mallory_s.log WHERE who = 'mallory' AND NOT su;
});
is($out, "t\n1", "mallory's =(text, text) operator runs for her own text comparisons (test setup)");

prime('before the prepared transaction');
my $before = direct();
($out, $err) = as_mallory(q{
SET search_path = mallory_s, pg_catalog;
BEGIN;
UPDATE public.pt SET v = v + 100 WHERE id = 1;
PREPARE TRANSACTION 'mallory_2pc';
COMMIT PREPARED 'mallory_2pc';
});
unlike($err, qr/ERROR/, 'mallory prepared and committed a transaction that wrote a tracked table')
  or diag($err);

is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'mallory is not superuser');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM mallory_s.log WHERE su OR who <> 'mallory'"),
	'0', "mallory's operator never ran as another role or with superuser rights");
my $after = direct();
isnt($after, $before, 'COMMIT PREPARED changed the rows (test setup)');
call_is($node, $CALL, qr/^MISS \(invalidated\)$/, $after,
	'first read after her COMMIT PREPARED: MISS (invalidated) with the new rows');
is(prepared_rows(), '0', 'COMMIT PREPARED deleted the record of its invalidations');

($out, $err) = as_mallory('SELECT count(*) FROM public.cache_ext_prepared');
like($err, qr/permission denied/, 'no role but the extension reads cache_ext_prepared');
($out, $err) = as_mallory(q{INSERT INTO public.cache_ext_prepared VALUES ('x', '{}')});
like($err, qr/permission denied/, 'no role but the extension writes cache_ext_prepared');

# ============================================================================
# Break 20: a GID already in use fails at once with 42710
# ============================================================================

prime('before the duplicate GID');
$before = direct();
my $a = CacheExt::Session->new($node, timeout => 60);
my $b = CacheExt::Session->new($node, timeout => 60);
$a->query_ok("BEGIN;\nUPDATE pt SET v = v + 1 WHERE id = 2;\nPREPARE TRANSACTION 'dup_gid';");
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'dup_gid'"),
	'1', 'the first transaction is prepared');

my $t0 = time();
my $tag = $b->send("\\set VERBOSITY verbose\nBEGIN;\nUPDATE pt SET v = v + 1000 WHERE id = 3;\n"
	  . "PREPARE TRANSACTION 'dup_gid';");
my @r = $b->wait($tag, 30);
ok(@r, 'PREPARE TRANSACTION with a GID in use returned (did not hang)')
  or do
{
	# the old code waits forever: end that backend so the test can go on
	$node->safe_psql('postgres', 'SELECT pg_terminate_backend(' . $b->backend_pid . ')');
	@r = ('', '', 30);
};
like($r[1] // '', qr/ERROR:\s+42710: transaction identifier "dup_gid" is already in use/,
	'PREPARE TRANSACTION with a GID in use fails with 42710');
cmp_ok(time() - $t0, '<', 10, 'and fails fast');
$b->quit;

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'dup_gid'"),
	'1', 'the first prepared transaction is still there');
call_is($node, $CALL, qr/^HIT(?: \(local\))?$/, $before,
	'read before COMMIT PREPARED: the committed rows, HIT (the failed one changed nothing)');
$node->safe_psql('postgres', "COMMIT PREPARED 'dup_gid'");
$after = direct();
isnt($after, $before, 'COMMIT PREPARED of the first one changed the rows (test setup)');
call_is($node, $CALL, qr/^MISS/, $after,
	'first read after COMMIT PREPARED of the first one: MISS with the new rows');
is(prepared_rows(), '0',
	'no record of invalidations is left behind (the failed PREPARE rolled its own back)');
$a->quit;

# the same GID can be used again once free, and still invalidates
prime('before reusing the GID');
$before = direct();
$node->safe_psql('postgres',
	"BEGIN; UPDATE pt SET v = v + 1 WHERE id = 4; PREPARE TRANSACTION 'dup_gid';");
$node->safe_psql('postgres', "COMMIT PREPARED 'dup_gid'");
$after = direct();
call_is($node, $CALL, qr/^MISS/, $after, 'a reused GID: the read after COMMIT PREPARED is a MISS');

# ============================================================================
# Role changes in a database without the extension: the server generation
# ============================================================================

$node->safe_psql('postgres', 'CREATE DATABASE other');    # no cache_ext in it
$node->safe_psql('postgres', 'CREATE ROLE ce_other');

prime('before a role change in another database');
$node->safe_psql('other', 'GRANT mallory TO ce_other');
call_is($node, $CALL, qr/^MISS/, direct(),
	'GRANT of a role membership run in a database without the extension: the next read is a MISS');

prime('before a prepared role change in another database');
my ($rc, $o, $e) = (0, '', '');
$rc = $node->psql('other',
	"BEGIN; REVOKE mallory FROM ce_other; PREPARE TRANSACTION 'other_2pc';",
	stdout => \$o, stderr => \$e);
is($rc, 0, 'PREPARE TRANSACTION of a role change in a database without the extension succeeds');
like($e, qr/WARNING:.*cannot carry the invalidations/, 'with a warning that it invalidated everything now');
$node->safe_psql('other', "COMMIT PREPARED 'other_2pc'");
call_is($node, $CALL, qr/^MISS/, direct(),
	'after that prepared role change: the next read is a MISS');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_auth_members WHERE member = 'ce_other'::regrole"),
	'0', 'the prepared REVOKE committed (test setup)');

# ============================================================================
# COMMIT PREPARED interrupted while it waits for Redis: the prepared
# transaction is committed, so its invalidations may not be lost.  Before
# 0.4 a statement_timeout (or a cancel) during the wait left COMMIT
# PREPARED by an ERROR before the keys reached the outbox; interrupts are
# now held as at COMMIT, the wait ends, and the keys go to the outbox.
# That wait is the synchronous path (async_invalidation = off; 0.5 queues
# by default, and 230_async_commit.pl covers the queue with a hung Redis).
# ============================================================================

prime('before a COMMIT PREPARED interrupted while Redis hangs');
$node->safe_psql('postgres',
	"BEGIN; UPDATE pt SET v = v + 1000 WHERE id = 1; PREPARE TRANSACTION 'hung_2pc';");
my $deferred0 = $node->safe_psql('postgres', 'SELECT invalidations_deferred FROM cache_stats');
$redis->pause;
$t0 = time();
$rc = $node->psql('postgres',
	"SET cache_ext.async_invalidation = off; SET statement_timeout = '1s'; SET cache_ext.invalidation_timeout = '20s'; COMMIT PREPARED 'hung_2pc';",
	stdout => \$o, stderr => \$e);
my $waited = time() - $t0;
ok($waited < 15, sprintf('the interrupted COMMIT PREPARED returned at once (%.1f s), not after invalidation_timeout', $waited));
my $deferred1 = $node->safe_psql('postgres', 'SELECT invalidations_deferred FROM cache_stats');
cmp_ok($deferred1, '>', $deferred0,
	'its invalidations went to the outbox (they were lost before: the ERROR left before OutboxAdd)');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'hung_2pc'"),
	'0', 'the prepared transaction is committed');
my $r = cache_call($node, $CALL);
unlike($r->{status} // '', qr/^HIT/, 'while Redis hangs, no hit: ' . ($r->{status} // ''));
$redis->resume;
call_is($node, $CALL, qr/^MISS/, direct(), 'Redis back: the outbox is delivered, MISS with the new rows');

done_testing();
