# test/t/130_privileges.pl - a hit is only for a role that could run the query
#
# docs/architecture.md §2 C4 and docs/reference.md "Privileges on a hit": before Redis is
# asked, the current role's rights are checked as the executor checks them
# (SELECT on every relation and column of the plan, views with their owner's
# rights, EXECUTE on functions).  Row-level security scopes an entry to the
# role, or bypasses the cache when a policy is not cacheable.
#
# Every case is a cell of a privilege matrix: the same query is run directly
# (PREPARE/EXECUTE) and through cached_query(), as the same role, each in its
# own psql with ON_ERROR_STOP and VERBOSITY verbose, after a role with more
# rights (usually the owner) has already stored the entry, so a leak would
# be a HIT with rows the role may not see.  Both must give the same rows, or
# fail with the same SQLSTATE and message; a refused call counts no hit.
#
# Roles: ce_owner (owns everything), ce_reader (SELECT on accounts),
# ce_colreader (SELECT on accounts.region only), ce_nobody (no rights),
# ce_viewer (SELECT on two views only), ce_lender (owns a view, holds SELECT
# on accounts until it is revoked), ce_bypass (BYPASSRLS), ce_tenant_a and
# ce_tenant_b (subject to RLS policies).
#
# Cases:
#   - table SELECT missing (nobody, viewer), REVOKE after the store (reader);
#   - column privilege: the granted column vs another one; REVOKE of it;
#   - SET ROLE after a HIT as owner in the same session (table, column, view,
#     functions, RLS, row_security);
#   - views: SELECT on the view only (allowed, entry shared with the owner),
#     no SELECT on the view, the view owner's rights revoked after the store
#     (and the entry kept), a security_invoker view;
#   - SECURITY DEFINER / INVOKER SQL functions wrapping cached_query(),
#     compared with the same functions running the query directly; then the
#     same query text at top level in the same backend, by the caller;
#   - EXECUTE revoked on a PL/pgSQL function after the store, and missing on
#     an inlinable SQL function (planned as the owner, the function is
#     inlined and no longer in the plan: fresh backend, SET ROLE, after a
#     SECURITY DEFINER call, and a MISS after a row change);
#   - RLS (tenant = current_user): tenants get their own rows, B's first call
#     is a MISS after A's HIT, one entry each, keys differ (cache_explain);
#     a BYPASSRLS role gets every row and its entry is not served to tenants;
#     a role with SELECT but no matching rows; no SELECT at all;
#   - RLS policies chosen by role (TO ce_tenant_a) whose expressions do not
#     mention the role, and one policy for everyone;
#   - policies calling current_setting() or a volatile function make the
#     call BYPASS (with the reason), rows right for every setting value;
#   - row_security = off: an error for a tenant or a role with no policy,
#     like the direct query, also in a session that just had a HIT; rows for
#     the owner and the BYPASSRLS role;
#   - cache_explain() refuses what cached_query() refuses.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CacheExt::Redis qw(cache_ext_node);
use CacheExt::Session;
use CacheExt::Util;

my $t_start = time();

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis,
	extra_conf => "cache_ext.default_ttl = 600");

# ---- fixture ----------------------------------------------------------------

$node->safe_psql('postgres', q{
CREATE ROLE ce_owner LOGIN;
CREATE ROLE ce_reader LOGIN;
CREATE ROLE ce_colreader LOGIN;
CREATE ROLE ce_nobody LOGIN;
CREATE ROLE ce_viewer LOGIN;
CREATE ROLE ce_lender LOGIN;
CREATE ROLE ce_bypass LOGIN BYPASSRLS;
CREATE ROLE ce_tenant_a LOGIN;
CREATE ROLE ce_tenant_b LOGIN;

CREATE TABLE accounts (id int PRIMARY KEY, region int NOT NULL, secret text NOT NULL);
INSERT INTO accounts SELECT i, 1 + i % 4, 'secret_' || i FROM generate_series(1, 20) AS i;
ALTER TABLE accounts OWNER TO ce_owner;
GRANT SELECT ON accounts TO ce_reader, ce_lender;
GRANT SELECT (region) ON accounts TO ce_colreader;

-- a view its owner may read through
CREATE VIEW acc_view AS SELECT id, region FROM accounts WHERE region <= 2;
ALTER VIEW acc_view OWNER TO ce_owner;
GRANT SELECT ON acc_view TO ce_viewer;

-- a view owned by a role whose right on the base table is revoked later
CREATE VIEW acc_lent AS SELECT id, secret FROM accounts WHERE region = 3;
ALTER VIEW acc_lent OWNER TO ce_lender;
GRANT SELECT ON acc_lent TO ce_viewer, ce_owner;

-- a security_invoker view: base tables checked as the caller
CREATE VIEW acc_invoker WITH (security_invoker = true) AS
  SELECT id, region FROM accounts WHERE region <= 2;
ALTER VIEW acc_invoker OWNER TO ce_owner;
GRANT SELECT ON acc_invoker TO ce_viewer, ce_reader;

-- functions used in queries: PL/pgSQL (never inlined) and inlinable SQL
CREATE FUNCTION mask(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN RETURN left(t, 3) || '***'; END $$;
CREATE FUNCTION mask_sql(t text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT left(t, 3) || '###' $$;
ALTER FUNCTION mask(text) OWNER TO ce_owner;
ALTER FUNCTION mask_sql(text) OWNER TO ce_owner;
REVOKE EXECUTE ON FUNCTION mask(text), mask_sql(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mask(text) TO ce_reader;

-- SECURITY DEFINER and INVOKER wrappers, through the cache and directly
CREATE FUNCTION acc_def(r int) RETURNS TABLE (o_id int, o_secret text)
LANGUAGE sql SECURITY DEFINER
AS $f$ SELECT * FROM cached_query('SELECT id, secret FROM accounts WHERE region = $1 ORDER BY id', r)
         AS t(id int, secret text) $f$;
CREATE FUNCTION acc_def_direct(r int) RETURNS TABLE (o_id int, o_secret text)
LANGUAGE sql SECURITY DEFINER
AS $f$ SELECT a.id, a.secret FROM accounts a WHERE a.region = r ORDER BY a.id $f$;
CREATE FUNCTION acc_inv(r int) RETURNS TABLE (o_id int, o_secret text)
LANGUAGE sql SECURITY INVOKER
AS $f$ SELECT * FROM cached_query('SELECT id, secret FROM accounts WHERE region = $1 ORDER BY id', r)
         AS t(id int, secret text) $f$;
CREATE FUNCTION acc_inv_direct(r int) RETURNS TABLE (o_id int, o_secret text)
LANGUAGE sql SECURITY INVOKER
AS $f$ SELECT a.id, a.secret FROM accounts a WHERE a.region = r ORDER BY a.id $f$;
ALTER FUNCTION acc_def(int) OWNER TO ce_owner;
ALTER FUNCTION acc_def_direct(int) OWNER TO ce_owner;
ALTER FUNCTION acc_inv(int) OWNER TO ce_owner;
ALTER FUNCTION acc_inv_direct(int) OWNER TO ce_owner;
CREATE FUNCTION mask_def(r int) RETURNS TABLE (o_id int, o_m text)
LANGUAGE sql SECURITY DEFINER
AS $f$ SELECT * FROM cached_query('SELECT id, mask_sql(secret) AS m FROM accounts WHERE region = $1 ORDER BY id', r)
         AS t(id int, m text) $f$;
ALTER FUNCTION mask_def(int) OWNER TO ce_owner;

-- row-level security: by current_user, by a setting, by a volatile function
CREATE FUNCTION ce_volatile_tenant() RETURNS text LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN current_user::text; END $$;
CREATE TABLE docs (id int PRIMARY KEY, tenant text NOT NULL, body text NOT NULL);
INSERT INTO docs VALUES
  (1, 'ce_tenant_a', 'a-one'), (2, 'ce_tenant_b', 'b-one'), (3, 'ce_tenant_a', 'a-two'),
  (4, 'someone_else', 'x-one'), (5, 'ce_tenant_b', 'b-two'), (6, 'ce_tenant_a', 'a-three'),
  (7, 'someone_else', 'x-two');
CREATE TABLE docs_s (LIKE docs INCLUDING ALL);
INSERT INTO docs_s SELECT * FROM docs;
CREATE TABLE docs_v (LIKE docs INCLUDING ALL);
INSERT INTO docs_v SELECT * FROM docs;
CREATE TABLE docs_r (LIKE docs INCLUDING ALL);
INSERT INTO docs_r SELECT * FROM docs;
CREATE TABLE docs_p (LIKE docs INCLUDING ALL);
INSERT INTO docs_p SELECT * FROM docs;
ALTER TABLE docs OWNER TO ce_owner;
ALTER TABLE docs_s OWNER TO ce_owner;
ALTER TABLE docs_v OWNER TO ce_owner;
ALTER TABLE docs_r OWNER TO ce_owner;
ALTER TABLE docs_p OWNER TO ce_owner;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs_s ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs_v ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs_r ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs_p ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_tenant ON docs USING (tenant = current_user);
CREATE POLICY docs_s_tenant ON docs_s USING (tenant = current_setting('app.tenant'));
CREATE POLICY docs_v_tenant ON docs_v USING (tenant = ce_volatile_tenant());
-- policies chosen by role, whose expressions do not mention the role
CREATE POLICY docs_r_a ON docs_r TO ce_tenant_a USING (tenant = 'ce_tenant_a');
CREATE POLICY docs_r_b ON docs_r TO ce_tenant_b USING (tenant = 'ce_tenant_b');
-- one policy for everyone, independent of the role
CREATE POLICY docs_p_all ON docs_p USING (tenant <> 'someone_else');
GRANT SELECT ON docs, docs_s, docs_v, docs_r, docs_p
  TO ce_reader, ce_bypass, ce_tenant_a, ce_tenant_b;

SELECT cache_track('accounts'), cache_track('docs'), cache_track('docs_s'),
       cache_track('docs_v'), cache_track('docs_r'), cache_track('docs_p');
});

# ---- queries ----------------------------------------------------------------

my $Q_ACC = 'SELECT id, secret FROM accounts WHERE region = $1 ORDER BY id';
my $C_ACC = 'id int, secret text';
my $Q_REG = 'SELECT region, count(*) AS n FROM accounts GROUP BY region ORDER BY region';
my $C_REG = 'region int, n bigint';
my $Q_SECRET = 'SELECT region, secret FROM accounts WHERE region = $1 ORDER BY secret';
my $C_SECRET = 'region int, secret text';
my $Q_VIEW = 'SELECT id, region FROM acc_view ORDER BY id';
my $C_VIEW = 'id int, region int';
my $Q_LENT = 'SELECT id, secret FROM acc_lent ORDER BY id';
my $C_LENT = 'id int, secret text';
my $Q_MASK = 'SELECT id, mask(secret) AS m FROM accounts WHERE region = $1 ORDER BY id';
my $Q_MASKSQL = 'SELECT id, mask_sql(secret) AS m FROM accounts WHERE region = $1 ORDER BY id';
my $C_MASK = 'id int, m text';
my $Q_DOCS = 'SELECT id, tenant, body FROM docs ORDER BY id';
my $Q_DOCS_S = 'SELECT id, tenant, body FROM docs_s ORDER BY id';
my $Q_DOCS_V = 'SELECT id, tenant, body FROM docs_v ORDER BY id';
my $Q_DOCS_R = 'SELECT id, tenant, body FROM docs_r ORDER BY id';
my $Q_DOCS_P = 'SELECT id, tenant, body FROM docs_p ORDER BY id';
my $Q_INVOKER = 'SELECT id, region FROM acc_invoker ORDER BY id';
my $C_DOCS = 'id int, tenant text, body text';

# ---- helpers ----------------------------------------------------------------

# The first "ERROR:  SQLSTATE: message" of psql's stderr (VERBOSITY verbose),
# as "SQLSTATE: message"; undef if none.
sub error_of
{
	my $err = shift // '';
	return $err =~ /\b(?:ERROR|FATAL):\s+([0-9A-Z]{5}): ([^\n]*)/ ? "$1: $2" : undef;
}

# Run $sql in a new psql as $role (ON_ERROR_STOP, VERBOSITY verbose).
sub psql_as
{
	my ($role, $sql) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out,
		stderr => \$err,
		on_error_stop => 1,
		extra_params => ['-U', $role],
		timeout => $PostgreSQL::Test::Utils::timeout_default,
		timed_out => \$timed_out);
	die "psql as $role timed out: $sql" if $timed_out;
	return ($out, $err);
}

# Directly: PREPARE/EXECUTE, as direct_rows() does, after $setup.
sub direct_as
{
	my ($role, $q, $params, $setup) = @_;
	my $exec = @$params ? 'EXECUTE ce_direct(' . join(', ', @$params) . ')' : 'EXECUTE ce_direct';
	my ($out, $err) = psql_as($role, ($setup // '') . "\nPREPARE ce_direct AS $q;\n$exec;");
	return { rows => $out, err => $err, error => error_of($err) };
}

# Through the cache, then cache_status() (not reached after an error).
sub cached_as
{
	my ($role, $q, $cols, $params, $setup) = @_;
	my $marker = 'ce_status_follows';
	my ($out, $err) = psql_as($role,
		($setup // '') . "\n" . cq($q, $cols, @$params) . ";\n\\echo $marker\nSELECT cache_status();");
	my ($rows, $status) = split /^\Q$marker\E\n?/m, $out, 2;
	$rows //= '';
	$rows =~ s/\n\z//;
	$status =~ s/\n\z// if defined $status;
	return { rows => $rows, status => $status, err => $err, error => error_of($err) };
}

sub hits { return cache_stats($node)->{hits}; }

sub entry_count { return scalar($redis->scan_keys('cache_ext:*:e:*')); }

# The matrix, for the summary at the end.
my @matrix;

sub record_cell
{
	my ($case, $role, $direct, $cached, $ok) = @_;
	push @matrix, sprintf("%-4s %-58s %-13s direct: %-42s cached: %s",
		$ok ? 'ok' : 'FAIL', $case, $role, $direct, $cached);
	return;
}

sub outcome
{
	my $r = shift;
	return "ERROR $r->{error}" if defined $r->{error};
	my $n = $r->{rows} eq '' ? 0 : scalar(split /\n/, $r->{rows});
	return "$n rows" . (defined $r->{status} ? " [$r->{status}]" : '');
}

# One cell: $role runs $q directly and through the cache.
#   expect => qr/SQLSTATE: message/   both must fail, with the same error
#   expect => 'rows'                  both must return the same rows
#   status => qr//                    cache_status() of the cached call
#   rows   => 'text'                  the rows both must return (psql -At)
#   setup  => 'SET ...;'              run before both
# Returns the cached call's result.
sub cell
{
	my ($case, $role, $q, $cols, $params, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $name = "$case [$role]";
	my $ok = 1;

	my $d = direct_as($role, $q, $params, $o{setup});
	my $h0 = hits();
	my $c = cached_as($role, $q, $cols, $params, $o{setup});
	my $dh = hits() - $h0;

	if (ref $o{expect} eq 'Regexp')
	{
		$ok &= like($d->{error} // "no error, rows: $d->{rows}", $o{expect},
			"$name: the direct query fails");
		$ok &= is($c->{error} // "no error, rows: $c->{rows}, status: " . ($c->{status} // ''),
			$d->{error} // '(direct did not fail)',
			"$name: cached_query fails with the same SQLSTATE and message");
		$ok &= is($c->{rows}, '', "$name: cached_query returned no rows");
		$ok &= is($dh, 0, "$name: no hit counted");
	}
	else
	{
		is($d->{error}, undef, "$name: the direct query runs")
		  or do { $ok = 0; diag($d->{err}); };
		is($c->{error}, undef, "$name: cached_query runs")
		  or do { $ok = 0; diag($c->{err}); };
		$ok &= is($c->{rows}, $d->{rows}, "$name: cached_query returns the direct query's rows");
		$ok &= is($d->{rows}, $o{rows}, "$name: the expected rows") if defined $o{rows};
		$ok &= like($c->{status} // '(no status)', $o{status}, "$name: status")
		  if $o{status};
		if (defined $c->{status})
		{
			$ok &= is($dh, ($c->{status} =~ /^HIT/ ? 1 : 0),
				"$name: hits counted as the status says");
		}
	}
	record_cell($case, $role, outcome($d), outcome($c), $ok);
	return $c;
}

# Store (or confirm) an entry as $role: MISS or HIT, then HIT, with the
# direct query's rows.
sub store_as
{
	my ($case, $role, $q, $cols, $params, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	cell("$case: store", $role, $q, $cols, $params, %o, expect => 'rows',
		status => qr/^(MISS|HIT)/);
	return cell("$case: stored", $role, $q, $cols, $params, %o, expect => 'rows',
		status => qr/^HIT/);
}

# Expected rows of a docs table for one tenant, or all (psql -At); the
# superuser sees all.
my %docs_rows = (all => direct_rows($node, $Q_DOCS, []));
foreach my $who ('ce_tenant_a', 'ce_tenant_b')
{
	$docs_rows{$who} = $node->safe_psql('postgres',
		"SELECT id, tenant, body FROM docs WHERE tenant = '$who' ORDER BY id");
}
is(scalar(split /\n/, $docs_rows{all}), 7, 'fixture: 7 docs rows');
is(scalar(split /\n/, $docs_rows{ce_tenant_a}), 3, 'fixture: 3 rows for tenant A');
is(scalar(split /\n/, $docs_rows{ce_tenant_b}), 2, 'fixture: 2 rows for tenant B');

# ---- table privileges -------------------------------------------------------

store_as('accounts by region', 'ce_owner', $Q_ACC, $C_ACC, [3]);
cell('accounts by region', 'ce_reader', $Q_ACC, $C_ACC, [3],
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
cell('accounts by region, no SELECT on the table', 'ce_nobody', $Q_ACC, $C_ACC, [3],
	expect => qr/^42501: permission denied for table accounts$/);
cell('accounts by region, SELECT on the views only', 'ce_viewer', $Q_ACC, $C_ACC, [3],
	expect => qr/^42501: permission denied for table accounts$/);
cell('accounts by region, column privilege on region only', 'ce_colreader',
	$Q_ACC, $C_ACC, [3],
	expect => qr/^42501: permission denied for table accounts$/);
cell('accounts by region, entry still there', 'ce_owner', $Q_ACC, $C_ACC, [3],
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);

# ---- column privileges ------------------------------------------------------

store_as('granted column', 'ce_owner', $Q_REG, $C_REG, []);
cell('granted column', 'ce_colreader', $Q_REG, $C_REG, [],
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
store_as('another column', 'ce_owner', $Q_SECRET, $C_SECRET, [2]);
cell('another column', 'ce_colreader', $Q_SECRET, $C_SECRET, [2],
	expect => qr/^42501: permission denied for table accounts$/);
cell('another column', 'ce_reader', $Q_SECRET, $C_SECRET, [2],
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);

# ---- REVOKE after the store -------------------------------------------------

cell('before REVOKE', 'ce_reader', $Q_ACC, $C_ACC, [3], expect => 'rows',
	status => qr/^HIT(?: \(local\))?$/);
$node->safe_psql('postgres', 'REVOKE SELECT ON accounts FROM ce_reader');
cell('after REVOKE SELECT ON accounts', 'ce_reader', $Q_ACC, $C_ACC, [3],
	expect => qr/^42501: permission denied for table accounts$/);
# GRANT and REVOKE invalidate every result of the database (0.3): a result
# may have been computed under privileges that no longer hold
cell('after REVOKE SELECT ON accounts, the owner recomputes', 'ce_owner', $Q_ACC, $C_ACC,
	[3], expect => 'rows', status => qr/^MISS \(invalidated\)$/);
$node->safe_psql('postgres', 'GRANT SELECT ON accounts TO ce_reader');
cell('after GRANT again', 'ce_reader', $Q_ACC, $C_ACC, [3], expect => 'rows',
	status => qr/^MISS \(invalidated\)$/);

$node->safe_psql('postgres', 'REVOKE SELECT (region) ON accounts FROM ce_colreader');
cell('after REVOKE SELECT (region)', 'ce_colreader', $Q_REG, $C_REG, [],
	expect => qr/^42501: permission denied for table accounts$/);
$node->safe_psql('postgres', 'GRANT SELECT (region) ON accounts TO ce_colreader');
cell('after GRANT SELECT (region) again', 'ce_colreader', $Q_REG, $C_REG, [],
	expect => 'rows', status => qr/^MISS \(invalidated\)$/);

# ---- views ------------------------------------------------------------------

store_as('view (owner has rights)', 'ce_owner', $Q_VIEW, $C_VIEW, []);
my $viewer = cell('view, SELECT on the view only', 'ce_viewer', $Q_VIEW, $C_VIEW, [],
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
is(scalar(split /\n/, $viewer->{rows}), 10, 'view: the viewer gets the 10 rows of regions 1-2');
cell('view, no SELECT on it', 'ce_nobody', $Q_VIEW, $C_VIEW, [],
	expect => qr/^42501: permission denied for view acc_view$/);
cell('view, SELECT on the base table but not on the view', 'ce_reader', $Q_VIEW, $C_VIEW,
	[], expect => qr/^42501: permission denied for view acc_view$/);

store_as('security_invoker view', 'ce_owner', $Q_INVOKER, $C_VIEW, []);
cell('security_invoker view, SELECT on it and on the table', 'ce_reader', $Q_INVOKER,
	$C_VIEW, [], expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
cell('security_invoker view, SELECT on the view only', 'ce_viewer', $Q_INVOKER, $C_VIEW,
	[], expect => qr/^42501: permission denied for table accounts$/);
cell('security_invoker view, no SELECT on it', 'ce_nobody', $Q_INVOKER, $C_VIEW, [],
	expect => qr/^42501: permission denied for view acc_invoker$/);

store_as('view owned by ce_lender', 'ce_viewer', $Q_LENT, $C_LENT, []);
cell('view owned by ce_lender', 'ce_owner', $Q_LENT, $C_LENT, [], expect => 'rows',
	status => qr/^HIT(?: \(local\))?$/);
$node->safe_psql('postgres', 'REVOKE SELECT ON accounts FROM ce_lender');
cell('view, its owner lost SELECT on the base table', 'ce_viewer', $Q_LENT, $C_LENT, [],
	expect => qr/^42501: permission denied for table accounts$/);
cell('view, its owner lost SELECT on the base table', 'ce_owner', $Q_LENT, $C_LENT, [],
	expect => qr/^42501: permission denied for table accounts$/);
$node->safe_psql('postgres', 'GRANT SELECT ON accounts TO ce_lender');
cell('view, its owner has SELECT again (the GRANT invalidated)', 'ce_viewer', $Q_LENT, $C_LENT,
	[], expect => 'rows', status => qr/^MISS \(invalidated\)$/);

# ---- SECURITY DEFINER / INVOKER wrappers ------------------------------------

# acc_def(3) runs $Q_ACC with 3, which the owner stored above.
sub function_cell
{
	my ($case, $role, $func, $direct_func, $arg, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $name = "$case [$role]";
	my $ok = 1;
	my ($dout, $derr) = psql_as($role, "SELECT * FROM $direct_func($arg);");
	my $d = { rows => $dout, error => error_of($derr) };
	my $h0 = hits();
	my ($out, $err) = psql_as($role,
		"SELECT * FROM $func($arg);\n\\echo ce_status_follows\nSELECT cache_status();");
	my $dh = hits() - $h0;
	my ($rows, $status) = split /^ce_status_follows\n?/m, $out, 2;
	$rows //= '';
	$rows =~ s/\n\z//;
	$status =~ s/\n\z// if defined $status;
	my $c = { rows => $rows, status => $status, error => error_of($err) };

	if (ref $o{expect} eq 'Regexp')
	{
		$ok &= like($d->{error} // 'no error', $o{expect}, "$name: $direct_func() fails");
		$ok &= is($c->{error} // "no error, rows: $rows", $d->{error} // '(direct did not fail)',
			"$name: $func() fails the same way");
		$ok &= is($rows, '', "$name: no rows");
		$ok &= is($dh, 0, "$name: no hit counted");
	}
	else
	{
		is($d->{error}, undef, "$name: $direct_func() runs")
		  or do { $ok = 0; diag($derr); };
		is($c->{error}, undef, "$name: $func() runs")
		  or do { $ok = 0; diag($err); };
		$ok &= is($rows, $d->{rows}, "$name: $func() returns what $direct_func() returns");
		$ok &= isnt($rows, '', "$name: some rows");
		$ok &= like($status // '(no status)', $o{status}, "$name: status") if $o{status};
	}
	record_cell($case, $role, outcome($d), outcome($c), $ok);
	return;
}

function_cell('SECURITY DEFINER wrapper (owner rights)', 'ce_nobody', 'acc_def',
	'acc_def_direct', 3, expect => 'rows', status => qr/^(MISS|HIT)/);
function_cell('SECURITY DEFINER wrapper, another parameter', 'ce_nobody', 'acc_def',
	'acc_def_direct', 4, expect => 'rows', status => qr/^MISS/);
function_cell('SECURITY DEFINER wrapper, stored by nobody', 'ce_nobody', 'acc_def',
	'acc_def_direct', 4, expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
cell('entry stored inside the SECURITY DEFINER wrapper', 'ce_nobody', $Q_ACC, $C_ACC, [4],
	expect => qr/^42501: permission denied for table accounts$/);
function_cell('SECURITY INVOKER wrapper', 'ce_nobody', 'acc_inv', 'acc_inv_direct', 3,
	expect => qr/^42501: permission denied for table accounts$/);
function_cell('SECURITY INVOKER wrapper', 'ce_reader', 'acc_inv', 'acc_inv_direct', 3,
	expect => 'rows', status => qr/^HIT(?: \(local\))?$/);

# ---- EXECUTE on functions ---------------------------------------------------

# mask() is an IMMUTABLE PL/pgSQL function the plan calls: opaque (0.3), so
# these calls bypass; sql/privileges.sql checks EXECUTE on a hit of an
# opted-in one (depends_on)
my $OPAQUE = qr/^BYPASS: opaque function mask\(\)/;
cell('PL/pgSQL function', 'ce_owner', $Q_MASK, $C_MASK, [1], expect => 'rows',
	status => $OPAQUE);
cell('PL/pgSQL function, EXECUTE granted', 'ce_reader', $Q_MASK, $C_MASK, [1],
	expect => 'rows', status => $OPAQUE);
$node->safe_psql('postgres', 'REVOKE EXECUTE ON FUNCTION mask(text) FROM ce_reader');
cell('PL/pgSQL function, EXECUTE revoked after the store', 'ce_reader', $Q_MASK, $C_MASK,
	[1], expect => qr/^42501: permission denied for function mask$/);
# The REVOKE wrote a new pg_proc row, whose version is part of the key: the
# owner stores again, and the reader is still refused that current entry.
cell('PL/pgSQL function, after the REVOKE', 'ce_owner', $Q_MASK, $C_MASK, [1],
	expect => 'rows', status => $OPAQUE);
cell('PL/pgSQL function, EXECUTE revoked, entry current', 'ce_reader', $Q_MASK, $C_MASK,
	[1], expect => qr/^42501: permission denied for function mask$/);
cell('PL/pgSQL function, again', 'ce_owner', $Q_MASK, $C_MASK, [1],
	expect => 'rows', status => $OPAQUE);

store_as('inlinable SQL function', 'ce_owner', $Q_MASKSQL, $C_MASK, [2]);
cell('inlinable SQL function, no EXECUTE', 'ce_reader', $Q_MASKSQL, $C_MASK, [2],
	expect => qr/^42501: permission denied for function mask_sql$/);

# ---- SET ROLE in one session, after a HIT as owner --------------------------

# One superuser session: SET ROLE, then the direct query (fresh PREPARE, so
# planned as that role) and the cached call, compared.
my $s = CacheExt::Session->new($node);
$s->query_ok('\set VERBOSITY verbose');

sub session_cell
{
	my ($case, $role, $q, $cols, $params, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $name = "$case [SET ROLE $role]";
	my $ok = 1;
	my $exec = @$params ? 'EXECUTE ce_sd(' . join(', ', @$params) . ')' : 'EXECUTE ce_sd';
	my $sess = $o{session} // $s;

	$sess->query_ok("SET ROLE $role");
	$sess->query_ok($o{setup}) if $o{setup};
	if ($o{before})
	{
		my ($bout, $berr) = $sess->query($o{before});
		is(error_of($berr), undef, "$name: before it, $o{before}");
	}
	my ($dout, $derr) = $sess->query("PREPARE ce_sd AS $q;\n$exec;");
	$sess->query('DEALLOCATE ALL');
	my $d = { rows => $dout, error => error_of($derr) };
	$node->safe_psql('postgres', $o{invalidate}) if $o{invalidate};
	my $h0 = hits();
	my $c = cache_call($sess, cq($q, $cols, @$params));
	my $dh = hits() - $h0;
	$c->{error} = error_of($c->{err});
	$sess->query_ok('RESET ROLE');
	$sess->query_ok('RESET ALL') if $o{setup};

	if (ref $o{expect} eq 'Regexp')
	{
		$ok &= like($d->{error} // "no error, rows: $d->{rows}", $o{expect},
			"$name: the direct query fails");
		$ok &= is($c->{error} // "no error, rows: $c->{rows}", $d->{error} // '(direct did not fail)',
			"$name: cached_query fails with the same SQLSTATE and message");
		$ok &= is($c->{rows}, '', "$name: no rows");
		$ok &= is($dh, 0, "$name: no hit counted");
		$ok &= is($c->{status}, undef, "$name: cache_status() empty after the error");
	}
	else
	{
		is($d->{error}, undef, "$name: the direct query runs")
		  or do { $ok = 0; diag($derr); };
		is($c->{error}, undef, "$name: cached_query runs")
		  or do { $ok = 0; diag($c->{err}); };
		$ok &= is($c->{rows}, $d->{rows}, "$name: cached_query returns the direct query's rows");
		$ok &= is($d->{rows}, $o{rows}, "$name: the expected rows") if defined $o{rows};
		$ok &= like($c->{status} // '(no status)', $o{status}, "$name: status") if $o{status};
	}
	record_cell("$case (one session)", "SET ROLE $role", outcome($d), outcome($c), $ok);
	return $c;
}

# (the GRANTs and REVOKEs above invalidated what the owner stored: a MISS
# stores again; the rows are compared with the direct query either way)
session_cell('table', 'ce_owner', $Q_ACC, $C_ACC, [3], expect => 'rows', status => qr/^(HIT|MISS)/);
session_cell('table', 'ce_nobody', $Q_ACC, $C_ACC, [3],
	expect => qr/^42501: permission denied for table accounts$/);
session_cell('table', 'ce_reader', $Q_ACC, $C_ACC, [3], expect => 'rows', status => qr/^HIT(?: \(local\))?$/);
session_cell('column', 'ce_owner', $Q_SECRET, $C_SECRET, [2], expect => 'rows',
	status => qr/^(HIT|MISS)/);
session_cell('column', 'ce_colreader', $Q_SECRET, $C_SECRET, [2],
	expect => qr/^42501: permission denied for table accounts$/);
session_cell('view', 'ce_owner', $Q_VIEW, $C_VIEW, [], expect => 'rows', status => qr/^(HIT|MISS)/);
session_cell('view', 'ce_nobody', $Q_VIEW, $C_VIEW, [],
	expect => qr/^42501: permission denied for view acc_view$/);
session_cell('PL/pgSQL function', 'ce_owner', $Q_MASK, $C_MASK, [1], expect => 'rows',
	status => $OPAQUE);
session_cell('PL/pgSQL function', 'ce_reader', $Q_MASK, $C_MASK, [1],
	expect => qr/^42501: permission denied for function mask$/);
session_cell('inlinable SQL function', 'ce_owner', $Q_MASKSQL, $C_MASK, [2],
	expect => 'rows', status => qr/^(HIT|MISS)/);
session_cell('inlinable SQL function', 'ce_reader', $Q_MASKSQL, $C_MASK, [2],
	expect => qr/^42501: permission denied for function mask_sql$/);

# A SECURITY DEFINER wrapper runs the query with the owner's rights in this
# backend; then the caller runs the same query text itself, at top level.
my $s2 = CacheExt::Session->new($node);
$s2->query_ok('\set VERBOSITY verbose');
session_cell('after a SECURITY DEFINER call of the same query', 'ce_nobody', $Q_ACC,
	$C_ACC, [3], session => $s2, before => 'SELECT * FROM acc_def(3)',
	expect => qr/^42501: permission denied for table accounts$/);
session_cell('inlinable SQL function, after a SECURITY DEFINER call of the same query',
	'ce_reader', $Q_MASKSQL, $C_MASK, [2], session => $s2,
	before => 'SELECT * FROM mask_def(2)',
	expect => qr/^42501: permission denied for function mask_sql$/);
# The same after a row change from another backend (no plan invalidation):
# the call is a MISS, and it must not run the plan the owner's rights built
# (the generic plan: with parameters, PostgreSQL may otherwise choose a
# custom plan, made for the current role).
session_cell('inlinable SQL function, after a SECURITY DEFINER call, entry stale',
	'ce_reader', $Q_MASKSQL, $C_MASK, [2], session => $s2,
	setup => 'SET plan_cache_mode = force_generic_plan',
	before => 'SELECT * FROM mask_def(2)',
	invalidate => 'UPDATE accounts SET secret = secret WHERE id = 2',
	expect => qr/^42501: permission denied for function mask_sql$/);
$s2->quit;

# ---- row-level security: tenant = current_user ------------------------------

my $entries0 = entry_count();
store_as('RLS docs', 'ce_owner', $Q_DOCS, $C_DOCS, [], rows => $docs_rows{all});
store_as('RLS docs, BYPASSRLS', 'ce_bypass', $Q_DOCS, $C_DOCS, [], rows => $docs_rows{all});
cell('RLS docs, SELECT but no rows of its own', 'ce_reader', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => '', status => qr/^MISS/);
cell('RLS docs, no SELECT', 'ce_nobody', $Q_DOCS, $C_DOCS, [],
	expect => qr/^42501: permission denied for table docs$/);
cell('RLS docs, tenant A first call', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^MISS/);
cell('RLS docs, tenant A again', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);
cell('RLS docs, tenant B first call after A\'s HIT', 'ce_tenant_b', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => qr/^MISS/);
cell('RLS docs, tenant B again', 'ce_tenant_b', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => qr/^HIT(?: \(local\))?$/);
cell('RLS docs, tenant A after B', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);
cell('RLS docs, BYPASSRLS after the tenants', 'ce_bypass', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
call_is($node, cq($Q_DOCS, $C_DOCS), qr/^(MISS|HIT)/, $docs_rows{all},
	'RLS docs, superuser after the tenants');
cell('RLS docs, owner after the tenants', 'ce_owner', $Q_DOCS, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
cmp_ok(entry_count() - $entries0, '>=', 4,
	'RLS docs: at least one entry each for owner/bypass (may be one), reader, tenant A, tenant B');

# The keys, as cache_explain() gives them: the role is part of each.
my %key;
foreach my $role ('ce_owner', 'ce_bypass', 'ce_reader', 'ce_tenant_a', 'ce_tenant_b')
{
	my ($out, $err) = psql_as($role,
		"SELECT e->>'key', e->>'role_in_key', e->'entry'->>'rows' FROM cache_explain("
		  . sql_literal($Q_DOCS) . ') AS e;');
	is(error_of($err), undef, "cache_explain of the RLS query as $role");
	my ($k, $in_key, $nrows) = split /\|/, $out;
	$key{$role} = $k // '';
	# The owner and the BYPASSRLS role see every row: they may share an
	# entry.  Under a policy on current_user, the role is in the key.
	is($in_key, 'true', "cache_explain as $role: role_in_key")
	  if $role =~ /tenant|reader/;
	is($nrows, { ce_owner => 7, ce_bypass => 7, ce_reader => 0, ce_tenant_a => 3,
			ce_tenant_b => 2 }->{$role},
		"cache_explain as $role: the entry under its key holds its own rows");
}
isnt($key{ce_tenant_a}, $key{ce_tenant_b}, 'tenant A and tenant B have different keys');
foreach my $t ('ce_tenant_a', 'ce_tenant_b', 'ce_reader')
{
	isnt($key{$t}, $key{ce_bypass}, "$t does not share the BYPASSRLS role's key");
	isnt($key{$t}, $key{ce_owner}, "$t does not share the owner's key");
}

# In one session: the owner's HIT, then each tenant.
session_cell('RLS docs', 'ce_owner', $Q_DOCS, $C_DOCS, [], expect => 'rows',
	rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS docs', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [], expect => 'rows',
	rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS docs', 'ce_bypass', $Q_DOCS, $C_DOCS, [], expect => 'rows',
	rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS docs', 'ce_tenant_b', $Q_DOCS, $C_DOCS, [], expect => 'rows',
	rows => $docs_rows{ce_tenant_b}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS docs', 'ce_nobody', $Q_DOCS, $C_DOCS, [],
	expect => qr/^42501: permission denied for table docs$/);

# ---- row-level security: policies chosen by role, or the same for all -------

# The expressions do not mention the role: what separates the tenants'
# entries is the policy the rewriter applied for each.
store_as('RLS per-role policies', 'ce_owner', $Q_DOCS_R, $C_DOCS, [], rows => $docs_rows{all});
cell('RLS per-role policies, tenant A first call', 'ce_tenant_a', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^MISS/);
cell('RLS per-role policies, tenant A again', 'ce_tenant_a', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);
cell('RLS per-role policies, tenant B first call after A\'s HIT', 'ce_tenant_b', $Q_DOCS_R,
	$C_DOCS, [], expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => qr/^MISS/);
cell('RLS per-role policies, tenant B again', 'ce_tenant_b', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => qr/^HIT(?: \(local\))?$/);
cell('RLS per-role policies, no policy for the role', 'ce_reader', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => '', status => qr/^MISS/);
cell('RLS per-role policies, BYPASSRLS', 'ce_bypass', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{all}, status => qr/^(MISS|HIT)/);
cell('RLS per-role policies, tenant A after all', 'ce_tenant_a', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS per-role policies', 'ce_owner', $Q_DOCS_R, $C_DOCS, [], expect => 'rows',
	rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS per-role policies', 'ce_tenant_b', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => qr/^HIT(?: \(local\))?$/);
session_cell('RLS per-role policies', 'ce_tenant_a', $Q_DOCS_R, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => qr/^HIT(?: \(local\))?$/);

my $docs_p_rows = $node->safe_psql('postgres',
	"SELECT id, tenant, body FROM docs_p WHERE tenant <> 'someone_else' ORDER BY id");
store_as('RLS policy for all', 'ce_owner', $Q_DOCS_P, $C_DOCS, [], rows => $docs_rows{all});
cell('RLS policy for all, tenant A after the owner', 'ce_tenant_a', $Q_DOCS_P, $C_DOCS, [],
	expect => 'rows', rows => $docs_p_rows, status => qr/^MISS/);
cell('RLS policy for all, tenant B (the same rows)', 'ce_tenant_b', $Q_DOCS_P, $C_DOCS, [],
	expect => 'rows', rows => $docs_p_rows, status => qr/^(MISS|HIT)/);
cell('RLS policy for all, BYPASSRLS', 'ce_bypass', $Q_DOCS_P, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{all}, status => qr/^(MISS|HIT)/);
cell('RLS policy for all, reader', 'ce_reader', $Q_DOCS_P, $C_DOCS, [],
	expect => 'rows', rows => $docs_p_rows, status => qr/^(MISS|HIT)/);
cell('RLS policy for all, owner again', 'ce_owner', $Q_DOCS_P, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);

# ---- row_security = off -----------------------------------------------------

my $RS_OFF = 'SET row_security = off;';
my $RLS_ERR = qr/^42501: query would be affected by row-level security policy for table "docs"$/;
cell('row_security = off', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [], setup => $RS_OFF,
	expect => $RLS_ERR);
cell('row_security = off', 'ce_tenant_b', $Q_DOCS, $C_DOCS, [], setup => $RS_OFF,
	expect => $RLS_ERR);
cell('row_security = off', 'ce_reader', $Q_DOCS, $C_DOCS, [], setup => $RS_OFF,
	expect => $RLS_ERR);
store_as('row_security = off, BYPASSRLS', 'ce_bypass', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, rows => $docs_rows{all});
store_as('row_security = off, owner', 'ce_owner', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, rows => $docs_rows{all});
cell('row_security = off, after the owner stored', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, expect => $RLS_ERR);
session_cell('row_security = off after a HIT', 'ce_tenant_a', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, expect => $RLS_ERR);
session_cell('row_security = off', 'ce_owner', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, expect => 'rows', rows => $docs_rows{all}, status => qr/^HIT(?: \(local\))?$/);
session_cell('row_security = off, owner then tenant', 'ce_tenant_b', $Q_DOCS, $C_DOCS, [],
	setup => $RS_OFF, expect => $RLS_ERR);

# ---- row-level security the key cannot hold ---------------------------------

my $SET_A = "SET app.tenant = 'ce_tenant_a';";
my $SET_B = "SET app.tenant = 'ce_tenant_b';";
my $SETTING_BYPASS = qr/^BYPASS: .*current_setting/;
store_as('policy on current_setting(), owner (not subject to it)', 'ce_owner',
	$Q_DOCS_S, $C_DOCS, [], setup => $SET_A, rows => $docs_rows{all});
cell('policy on current_setting()', 'ce_tenant_a', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_A, expect => 'rows', rows => $docs_rows{ce_tenant_a},
	status => $SETTING_BYPASS);
cell('policy on current_setting(), again', 'ce_tenant_a', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_A, expect => 'rows', rows => $docs_rows{ce_tenant_a},
	status => $SETTING_BYPASS);
cell('policy on current_setting(), other setting', 'ce_tenant_a', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_B, expect => 'rows', rows => $docs_rows{ce_tenant_b},
	status => $SETTING_BYPASS);
cell('policy on current_setting()', 'ce_tenant_b', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_B, expect => 'rows', rows => $docs_rows{ce_tenant_b},
	status => $SETTING_BYPASS);
cell('policy on current_setting(), SELECT, no matching rows', 'ce_reader', $Q_DOCS_S,
	$C_DOCS, [], setup => $SET_A, expect => 'rows', rows => $docs_rows{ce_tenant_a},
	status => $SETTING_BYPASS);
cell('policy on current_setting(), BYPASSRLS', 'ce_bypass', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_A, expect => 'rows', rows => $docs_rows{all}, status => qr/^(MISS|HIT)/);

my $VOLATILE_BYPASS = qr/^BYPASS: volatile function ce_volatile_tenant\(\)/;
store_as('policy on a volatile function, owner', 'ce_owner', $Q_DOCS_V, $C_DOCS, [],
	rows => $docs_rows{all});
cell('policy on a volatile function', 'ce_tenant_a', $Q_DOCS_V, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => $VOLATILE_BYPASS);
cell('policy on a volatile function', 'ce_tenant_b', $Q_DOCS_V, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_b}, status => $VOLATILE_BYPASS);
session_cell('policy on current_setting()', 'ce_tenant_b', $Q_DOCS_S, $C_DOCS, [],
	setup => $SET_B, expect => 'rows', rows => $docs_rows{ce_tenant_b},
	status => $SETTING_BYPASS);
session_cell('policy on a volatile function', 'ce_tenant_a', $Q_DOCS_V, $C_DOCS, [],
	expect => 'rows', rows => $docs_rows{ce_tenant_a}, status => $VOLATILE_BYPASS);

# ---- cache_explain() refuses what cached_query() refuses --------------------

foreach my $c (
	[ 'ce_nobody', $Q_ACC, [3], qr/^42501: permission denied for table accounts$/ ],
	[ 'ce_colreader', $Q_SECRET, [2], qr/^42501: permission denied for table accounts$/ ],
	[ 'ce_reader', $Q_VIEW, [], qr/^42501: permission denied for view acc_view$/ ],
	[ 'ce_reader', $Q_MASK, [1], qr/^42501: permission denied for function mask$/ ])
{
	my ($role, $q, $params, $re) = @$c;
	my ($out, $err) = psql_as($role,
		'SELECT cache_explain(' . join(', ', sql_literal($q), @$params) . ');');
	like(error_of($err) // "no error: $out", $re, "cache_explain refused to $role: $q");
}

$s->quit;

# ---- the matrix -------------------------------------------------------------

note("privilege matrix (direct query vs cached_query, same role):\n"
	  . join("\n", @matrix));
my @failed = grep { /^FAIL/ } @matrix;
diag("matrix cells that failed:\n" . join("\n", @failed)) if @failed;

my $elapsed = time() - $t_start;
note(sprintf('130_privileges took %.1f s', $elapsed));
cmp_ok($elapsed, '<', 120, 'the test stays well under its time budget');

done_testing();
