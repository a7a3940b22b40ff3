# test/t/060_write_paths.pl - every write path invalidates (docs/architecture.md §2 C1, §3)
#
# For each way of changing a tracked relation: a cached read over it is a HIT
# before the write, and the first read after the write has committed is a
# MISS that returns the new data.  The expected rows are always those of the
# same query run directly.  Writes that change nothing (rolled back, rolled
# back savepoints, ROLLBACK PREPARED) leave the entry a HIT.
#
# Covered: a table (DML, upsert, writable CTE, COPY in three forms, MERGE,
# functions, procedures with COMMIT, DO, triggers on other tables, FK
# cascades, ALTER TABLE, TRUNCATE), a partitioned table (parent and
# partition writes, partitions created, attached with rows, detached,
# dropped, sub-partitions), an inheritance tree, a materialized view,
# transactions (rollback, savepoints, own writes, REPEATABLE READ and
# SERIALIZABLE), two-phase commit across sessions, the invalidation
# functions, cache_purge(), and logical-replication apply from a publisher.
# Beyond plain writes: a cached read in the same statement as a
# data-modifying CTE (read your own writes; nothing uncommitted stored), and
# DDL on an enum or composite type whose values a tracked table holds.

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
my $node = cache_ext_node('main', $redis, extra_conf => join("\n",
	"cache_ext.default_ttl = 600",
	"max_prepared_transactions = 4"));

# ---- helpers ----------------------------------------------------------------

# A query over the relation under test: one row whose digest changes with
# any change of the rows it reads.
sub qdef
{
	my ($name, $query, $cols, %o) = @_;
	return {
		name => $name,
		q    => $query,
		cols => $cols,
		call => $o{call} // cq($query, $cols),
	};
}

# count, sum, digest of "rel" over the given columns (all cast to text).
sub digest_query
{
	my ($rel, $sumcol, @cols) = @_;
	my $row = join(" || ':' || ", map { "coalesce(${_}::text, '-')" } @cols);
	return "SELECT count(*) AS n, coalesce(sum($sumcol), 0)::bigint AS total, "
	  . "md5(coalesce(string_agg($row, ',' ORDER BY $row), '')) AS digest FROM $rel";
}

my $DIGEST_COLS = 'n bigint, total bigint, digest text';

sub direct
{
	my ($qd) = @_;
	return direct_rows($node, $qd->{q}, []);
}

sub read_is
{
	my ($target, $qd, $re, $expected, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return call_is($target, $qd->{call}, $re, $expected, "$qd->{name}: $what");
}

# Read until stored: one call (any status, right rows), then a HIT.
sub prime
{
	my ($qd, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $expected = direct($qd);
	my $r = cache_call($node, $qd->{call});
	is($r->{rows}, $expected, "$qd->{name}: $what: priming read returns the direct rows")
	  or diag("status " . ($r->{status} // 'none') . ", stderr $r->{err}");
	read_is($node, $qd, qr/^HIT(?: \(local\))?$/, $expected, "$what: primed, HIT");
	return;
}

sub run_action
{
	my ($action) = @_;
	return ref($action) eq 'CODE' ? $action->() : $node->safe_psql('postgres', $action);
}

# write_path($name, $action, queries => [$qd | [$qd, $mode], ...])
#
# Every query must be a HIT before $action (SQL run in its own session, or
# a sub).  After it, per mode:
#   changed  (default) the direct result changed and the read is a MISS
#   miss     the read is a MISS (the result may be the same)
#   hit      the direct result is the same and the read is a HIT
#   any      the read returns the direct rows (HIT or MISS)
sub write_path
{
	my ($name, $action, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @qs = map { ref($_) eq 'ARRAY' ? $_ : [ $_, 'changed' ] } @{ $o{queries} };
	my %before;

	foreach my $e (@qs)
	{
		my $qd = $e->[0];
		$before{ $qd->{name} } = direct($qd);
		read_is($node, $qd, qr/^HIT(?: \(local\))?$/, $before{ $qd->{name} }, "before $name: HIT");
	}
	run_action($action);
	foreach my $e (@qs)
	{
		my ($qd, $mode) = @$e;
		my $after = direct($qd);
		my $changed = $after ne $before{ $qd->{name} };
		if ($mode eq 'changed')
		{
			ok($changed, "$qd->{name}: $name changed the direct result (test setup)");
			read_is($node, $qd, qr/^MISS/, $after, "first read after $name: MISS with the new rows");
		}
		elsif ($mode eq 'miss')
		{
			read_is($node, $qd, qr/^MISS/, $after, "first read after $name: MISS");
		}
		elsif ($mode eq 'hit')
		{
			ok(!$changed, "$qd->{name}: $name left the direct result as it was (test setup)");
			read_is($node, $qd, qr/^HIT(?: \(local\))?$/, $after, "read after $name: still a HIT");
		}
		else
		{
			read_is($node, $qd, qr/^(HIT|MISS)/, $after, "read after $name: the direct rows");
		}
	}
	return;
}

# ============================================================================
# A plain table
# ============================================================================

$node->safe_psql('postgres', q{
CREATE TABLE wp (id int PRIMARY KEY, grp int NOT NULL, qty int NOT NULL, note text NOT NULL);
INSERT INTO wp SELECT i, i % 3, i * 10, 'n' || i FROM generate_series(1, 50) AS i;
SELECT cache_track('wp');

-- a table whose trigger writes into wp
CREATE TABLE wp_feed (id int, qty int);
CREATE FUNCTION wp_feed_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wp VALUES (NEW.id, 2, NEW.qty, 'feed');
    RETURN NEW;
END $$;
CREATE TRIGGER wp_feed_trg AFTER INSERT ON wp_feed FOR EACH ROW EXECUTE FUNCTION wp_feed_fn();

CREATE FUNCTION wp_bump(int, int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE wp SET qty = qty + $2 WHERE id = $1;
END $$;

-- a write in an exception block, rolled back when fail is true
CREATE FUNCTION wp_try(id_ int, fail bool) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        UPDATE wp SET qty = qty + 7 WHERE id = id_;
        IF fail THEN RAISE EXCEPTION 'undo'; END IF;
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END $$;

CREATE TABLE proc_log (step int, status text);
});

my $Q = qdef('wp', digest_query('wp', 'qty', qw(id grp qty note)), $DIGEST_COLS);
my $QG = qdef('wp grp 1',
	"SELECT count(*) AS n, coalesce(sum(qty), 0)::bigint AS total FROM wp WHERE grp = 1",
	'n bigint, total bigint');
my $QT = qdef('wp tagged', $Q->{q}, $DIGEST_COLS,
	call => 'SELECT * FROM cached_query_with(cache_opts(tags => ARRAY[\'wp_tag\']), '
	  . sql_literal($Q->{q}) . ") AS t($DIGEST_COLS)");

like($node->safe_psql('postgres',
		"SELECT triggers || ' ' || covered FROM cache_tracked WHERE relation = 'wp'::regclass"),
	qr/cache_ext_apply \(row, replica\).*cache_ext_stmt \(statement, always\).*cache_ext_truncate \(statement, always\).* true$/,
	'cache_tracked: wp has its statement, truncate and apply triggers, covered');

prime($Q, 'setup');
prime($QG, 'setup');

write_path('INSERT', q{INSERT INTO wp VALUES (101, 1, 5, 'ins')}, queries => [ $Q, $QG ]);
write_path('UPDATE', q{UPDATE wp SET qty = qty + 1 WHERE id = 1}, queries => [ $Q, $QG ]);
write_path('DELETE', q{DELETE FROM wp WHERE id = 4}, queries => [ $Q, $QG ]);
write_path('INSERT ON CONFLICT DO UPDATE',
	q{INSERT INTO wp VALUES (7, 1, 777, 'upsert')
	  ON CONFLICT (id) DO UPDATE SET qty = excluded.qty, note = excluded.note},
	queries => [ $Q, $QG ]);
write_path('a writable CTE in a SELECT',
	q{WITH d AS (DELETE FROM wp WHERE id = 10 RETURNING *) SELECT count(*) FROM d},
	queries => [ $Q, $QG ]);
write_path('COPY FROM STDIN', "COPY wp FROM STDIN;\n201\t1\t3\tcopy_a\n202\t2\t4\tcopy_b\n\\.\n",
	queries => [ $Q, $QG ]);

my $copy_file = $node->basedir . '/wp_copy.txt';
append_to_file($copy_file, "211\t1\t30\tfile_a\n212\t1\t40\tfile_b\n");
write_path('COPY FROM a server file', "COPY wp FROM '$copy_file'", queries => [ $Q, $QG ]);

my $csv_file = $node->basedir . '/wp_copy.csv';
append_to_file($csv_file, "221,1,50,client_a\n");
write_path('psql \\copy FROM a client file', "\\copy wp FROM '$csv_file' WITH (FORMAT csv)",
	queries => [ $Q, $QG ]);

write_path('MERGE (update, delete and insert actions)', q{
MERGE INTO wp USING (VALUES (1, 500), (13, 0), (301, 9)) AS s(id, qty) ON wp.id = s.id
WHEN MATCHED AND s.qty = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET qty = s.qty
WHEN NOT MATCHED THEN INSERT (id, grp, qty, note) VALUES (s.id, 1, s.qty, 'merge')},
	queries => [ $Q, $QG ]);
write_path('MERGE with only a DELETE action', q{
MERGE INTO wp USING (VALUES (16)) AS s(id) ON wp.id = s.id
WHEN MATCHED THEN DELETE}, queries => [ $Q, $QG ]);

write_path('UPDATE in a plpgsql function', 'SELECT wp_bump(19, 3)', queries => [ $Q, $QG ]);
write_path('DELETE in a DO block', 'DO $$ BEGIN DELETE FROM wp WHERE id = 22; END $$',
	queries => [ $Q, $QG ]);
write_path('INSERT by a trigger on another table', 'INSERT INTO wp_feed VALUES (401, 4)',
	queries => [ $Q, [ $QG, 'any' ] ]);
write_path('a write in a plpgsql exception block that is rolled back',
	'SELECT wp_try(25, true)', queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);
write_path('a write in a plpgsql exception block that completes',
	'SELECT wp_try(25, false)', queries => [ $Q, $QG ]);

# A procedure that commits in the middle and reads through the cache after
# its COMMIT: that read must miss (the first write's bump was sent at the
# procedure's COMMIT), and the second write must invalidate what it stored.
$node->safe_psql('postgres', 'CREATE PROCEDURE wp_proc() LANGUAGE plpgsql AS $p$
BEGIN
    UPDATE wp SET qty = qty + 100 WHERE id = 28;
    COMMIT;
    PERFORM * FROM ' . substr($Q->{call}, length('SELECT * FROM ')) . ';
    INSERT INTO proc_log VALUES (1, cache_status());
    COMMIT;
    PERFORM * FROM ' . substr($Q->{call}, length('SELECT * FROM ')) . ';
    INSERT INTO proc_log VALUES (2, cache_status());
    UPDATE wp SET qty = qty + 1000 WHERE id = 28;
END $p$');
write_path('CALL of a procedure that commits between two writes', 'CALL wp_proc()',
	queries => [ $Q, $QG ]);
like($node->safe_psql('postgres', 'SELECT string_agg(step || \' \' || status, \', \' ORDER BY step) FROM proc_log'),
	qr/^1 MISS \(invalidated\), 2 HIT(?: \(local\))?$/,
	'inside the procedure: the read after its first COMMIT was a MISS, the next one a HIT');

# ---- transactions -----------------------------------------------------------

write_path('a rolled-back transaction',
	"BEGIN;\nUPDATE wp SET qty = qty + 1;\nDELETE FROM wp WHERE id < 5;\nROLLBACK;",
	queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);
write_path('a transaction whose only write is in a rolled-back savepoint',
	"BEGIN;\nSELECT count(*) FROM wp;\nSAVEPOINT a;\nUPDATE wp SET qty = qty + 1;\n"
	  . "ROLLBACK TO SAVEPOINT a;\nRELEASE SAVEPOINT a;\nCOMMIT;",
	queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);
write_path('a transaction with a released savepoint',
	"BEGIN;\nSAVEPOINT a;\nUPDATE wp SET qty = qty + 1 WHERE id = 31;\nRELEASE SAVEPOINT a;\nCOMMIT;",
	queries => [ $Q, $QG ]);
write_path('a write in a released savepoint inside a rolled-back savepoint',
	"BEGIN;\nSAVEPOINT a;\nSAVEPOINT b;\nUPDATE wp SET qty = qty + 1 WHERE id = 31;\n"
	  . "RELEASE SAVEPOINT b;\nROLLBACK TO SAVEPOINT a;\nCOMMIT;",
	queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);
write_path('a write before a savepoint that is rolled back after writing again',
	"BEGIN;\nUPDATE wp SET qty = qty + 1 WHERE id = 34;\nSAVEPOINT a;\n"
	  . "UPDATE wp SET qty = qty + 1 WHERE id = 34;\nROLLBACK TO SAVEPOINT a;\nCOMMIT;",
	queries => [ $Q, $QG ]);

# Own writes: the writer's reads bypass; others read the committed data.
{
	my $w = CacheExt::Session->new($node, timeout => 60);
	my $before = direct($Q);
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, 'before own writes: HIT');
	$w->query_ok("BEGIN;\nINSERT INTO wp VALUES (501, 1, 1, 'own');");
	my $in_tx = $w->query_ok($Q->{q});
	isnt($in_tx, $before, 'own writes: the writer sees its row (test setup)');
	read_is($w, $Q, qr/^BYPASS: this transaction changed public\.wp/, $in_tx,
		'read by the writer inside its transaction: BYPASS with its own write');
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before,
		'read by another session before the writer commits: HIT, the committed rows');
	$w->query_ok('COMMIT');
	my $after = direct($Q);
	is($after, $in_tx, 'own writes: committed (test setup)');
	read_is($node, $Q, qr/^MISS/, $after, 'first read after the writer committed: MISS');
	read_is($w, $Q, qr/^HIT(?: \(local\))?$/, $after, 'the writer, after its commit: HIT');
	$w->quit;
}

# Own writes of the same statement: a data-modifying CTE runs before the
# cached read in its statement (the read's argument depends on the CTE's
# result), but the statement's AFTER triggers fire only at its end.  The read
# must still bypass (read your own writes), and nothing it computed may be
# stored: after a rollback no session may see the rolled-back row.  Twice:
# with a valid entry in Redis, and with none (invalidated just before).
foreach my $entry ('a valid entry', 'no valid entry')
{
	my $w = CacheExt::Session->new($node, timeout => 60);
	my $before = direct($Q);
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, "data-modifying CTE with $entry: before, HIT");
	$node->safe_psql('postgres', "SELECT cache_invalidate('wp')") if $entry eq 'no valid entry';
	$w->query_ok('BEGIN');
	my $cte = "WITH ins AS (INSERT INTO wp VALUES (991, 1, 1, 'cte') RETURNING id)\n"
	  . "SELECT t.* FROM (SELECT count(*) AS c FROM ins) AS x,\n"
	  . "  LATERAL cached_query(" . sql_literal($Q->{q}) . " || repeat(' ', 0 * x.c::int))"
	  . " AS t($Q->{cols})";
	my $r = cache_call($w, $cte);
	unlike($r->{err}, qr/ERROR/, "data-modifying CTE with $entry: no error");
	my $in_tx = $w->query_ok($Q->{q});
	isnt($in_tx, $before, "data-modifying CTE with $entry: it inserted a row (test setup)");
	like($r->{status} // '', qr/^BYPASS/,
		"data-modifying CTE with $entry: the cached read in its statement is a BYPASS");
	is($r->{rows}, $in_tx, "data-modifying CTE with $entry: ... returning the statement's own write");
	$w->query_ok('ROLLBACK');
	$w->quit;
	is(direct($Q), $before, "data-modifying CTE with $entry: rolled back (test setup)");
	read_is($node, $Q, qr/^(HIT|MISS)/, $before,
		"data-modifying CTE with $entry, after its rollback: another session reads the committed rows");
	$node->safe_psql('postgres', "SELECT cache_invalidate('wp')");
	prime($Q, "after the data-modifying CTE with $entry");
}

# REPEATABLE READ and SERIALIZABLE: bypass, and nothing from their snapshot is stored.
foreach my $level ('REPEATABLE READ', 'SERIALIZABLE')
{
	my $s = CacheExt::Session->new($node, timeout => 60);
	my $reason = lc($level) . ' transaction';
	my $before = direct($Q);
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, "before a $level transaction: HIT");
	$s->query_ok("BEGIN ISOLATION LEVEL $level;\nSELECT count(*) FROM wp;");    # snapshot taken
	read_is($s, $Q, qr/^BYPASS: \Q$reason\E$/, $before, "$level, nothing changed: BYPASS");

	# a write commits after the snapshot
	$node->safe_psql('postgres', "UPDATE wp SET qty = qty + 1 WHERE id = 37");
	my $after = direct($Q);
	isnt($after, $before, "$level: the concurrent write changed the rows (test setup)");
	my $st0 = cache_stats($node);
	read_is($s, $Q, qr/^BYPASS: \Q$reason\E$/, $before,
		"$level, after a concurrent commit: BYPASS with the snapshot's rows");
	is(stats_delta($st0, cache_stats($node))->{stores}, 0,
		"$level: nothing was stored from the snapshot");
	$s->query_ok('COMMIT');
	read_is($node, $Q, qr/^MISS/, $after, "after the $level transaction: MISS with the new rows");
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $after, "after the $level transaction: then HIT");
	$s->quit;
}
prime($QG, 'after the isolation-level checks');

# ---- two-phase commit -------------------------------------------------------

# PREPARE records its invalidations in cache_ext_prepared, inside the
# prepared transaction: invisible until COMMIT PREPARED, which deletes them.
sub prepared_rows
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM cache_ext_prepared');
}

sub prepared_xacts
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts');
}

{
	my $p = CacheExt::Session->new($node, timeout => 60);
	my $before = direct($Q);
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, 'before PREPARE TRANSACTION: HIT');
	$p->query_ok("BEGIN;\nUPDATE wp SET qty = qty + 5 WHERE grp = 1;\nPREPARE TRANSACTION 'wp_2pc';");
	is(prepared_xacts(), 1, 'PREPARE TRANSACTION: prepared');
	is(prepared_rows(), 0, 'its invalidations are recorded inside it, invisible until it commits');
	read_is($node, $Q, qr/^(HIT|MISS)/, $before,
		'read between PREPARE and COMMIT PREPARED: the committed (old) rows');
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before,
		'read between PREPARE and COMMIT PREPARED: stored, HIT');
	$p->quit;    # the preparing session is gone

	$node->safe_psql('postgres', "COMMIT PREPARED 'wp_2pc'");    # another session
	my $after = direct($Q);
	isnt($after, $before, 'COMMIT PREPARED changed the rows (test setup)');
	read_is($node, $Q, qr/^MISS/, $after,
		'first read after COMMIT PREPARED in another session: MISS with the new rows');
	is(prepared_rows(), 0, 'COMMIT PREPARED deleted its record of invalidations');
	prime($QG, 'after COMMIT PREPARED');

	$p = CacheExt::Session->new($node, timeout => 60);
	write_path('PREPARE TRANSACTION then ROLLBACK PREPARED in another session', sub {
		$p->query_ok("BEGIN;\nDELETE FROM wp WHERE grp = 1;\nPREPARE TRANSACTION 'wp_2pc_rb';");
		$node->safe_psql('postgres', "ROLLBACK PREPARED 'wp_2pc_rb'");
	}, queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);
	is(prepared_rows(), 0, 'ROLLBACK PREPARED left no record of invalidations');

	# COMMIT PREPARED after a restart of the server
	$before = direct($Q);
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, 'before PREPARE TRANSACTION (restart): HIT');
	$p->query_ok("BEGIN;\nINSERT INTO wp VALUES (601, 1, 6, 'two-phase');\n"
		  . "PREPARE TRANSACTION 'wp_2pc_restart';");
	$p->quit;
	$node->restart;
	read_is($node, $Q, qr/^(HIT|MISS)/, $before,
		'read after the restart, before COMMIT PREPARED: the committed (old) rows');
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, $before, 'and then a HIT');
	$node->safe_psql('postgres', "COMMIT PREPARED 'wp_2pc_restart'");
	$after = direct($Q);
	isnt($after, $before, 'COMMIT PREPARED after the restart changed the rows (test setup)');
	read_is($node, $Q, qr/^MISS/, $after,
		'first read after COMMIT PREPARED run after a restart: MISS with the new rows');
	is(prepared_rows(), 0, 'COMMIT PREPARED after the restart deleted its record of invalidations');
	prime($QG, 'after COMMIT PREPARED after a restart');
}

# ---- FK cascades into a tracked child ---------------------------------------

$node->safe_psql('postgres', q{
CREATE TABLE fk_parent (id int PRIMARY KEY);
CREATE TABLE fk_child (id int PRIMARY KEY,
    parent_id int REFERENCES fk_parent ON DELETE CASCADE ON UPDATE CASCADE,
    other_id int REFERENCES fk_parent ON DELETE SET NULL ON UPDATE SET NULL,
    v int NOT NULL);
INSERT INTO fk_parent SELECT generate_series(1, 10);
INSERT INTO fk_child SELECT i, 1 + i % 10, 1 + (i + 3) % 10, i FROM generate_series(1, 40) AS i;
SELECT cache_track('fk_child');
});
my $QF = qdef('fk_child', digest_query('fk_child', 'v', qw(id parent_id other_id v)), $DIGEST_COLS);
prime($QF, 'setup');
write_path('DELETE on the parent cascading (ON DELETE CASCADE)',
	'DELETE FROM fk_parent WHERE id = 1', queries => [$QF]);
write_path('UPDATE of the parent key cascading (ON UPDATE CASCADE)',
	'UPDATE fk_parent SET id = 20 WHERE id = 2', queries => [$QF]);
# parent 3 is referenced by other_id only: deleting it only sets NULLs
$node->safe_psql('postgres', 'UPDATE fk_child SET parent_id = 4 WHERE parent_id = 3');
prime($QF, 'parent 3 referenced by other_id only');
write_path('DELETE on the parent setting the child key to NULL (ON DELETE SET NULL)',
	'DELETE FROM fk_parent WHERE id = 3', queries => [$QF]);
write_path('TRUNCATE of the parent, CASCADE', 'TRUNCATE fk_parent CASCADE', queries => [$QF]);

# ---- DDL, TRUNCATE and the invalidation functions on wp ---------------------

prime($QT, 'setup');
write_path('cache_invalidate(wp)', q{SELECT cache_invalidate('wp')},
	queries => [ [ $Q, 'miss' ], [ $QG, 'miss' ], [ $QT, 'miss' ] ]);
write_path('cache_invalidate_tag(wp_tag)', q{SELECT cache_invalidate_tag('wp_tag')},
	queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ], [ $QT, 'miss' ] ]);
write_path('cache_invalidate_tag(another tag)', q{SELECT cache_invalidate_tag('not_wp_tag')},
	queries => [ [ $Q, 'hit' ], [ $QT, 'hit' ] ]);
write_path('cache_invalidate in a rolled-back transaction',
	"BEGIN;\nSELECT cache_invalidate('wp');\nSELECT cache_invalidate_tag('wp_tag');\nROLLBACK;",
	queries => [ [ $Q, 'hit' ], [ $QT, 'hit' ] ]);
write_path('cache_flush()', 'SELECT cache_flush()',
	queries => [ [ $Q, 'miss' ], [ $QG, 'miss' ], [ $QT, 'miss' ] ]);

write_path('ALTER TABLE ALTER COLUMN TYPE USING',
	'ALTER TABLE wp ALTER COLUMN qty TYPE bigint USING qty * 10', queries => [ $Q, $QG ]);
write_path('ALTER TABLE ... USING in a transaction with other DDL',
	"BEGIN;\nALTER TABLE wp ADD COLUMN extra int;\n"
	  . "ALTER TABLE wp ALTER COLUMN note TYPE text USING upper(note);\nCOMMIT;",
	queries => [ $Q, [ $QG, 'any' ] ]);
write_path('TRUNCATE', 'TRUNCATE wp', queries => [ $Q, $QG ]);
write_path('INSERT ... SELECT into the emptied table',
	q{INSERT INTO wp SELECT i, i % 3, i, 'again' || i, NULL FROM generate_series(1, 30) AS i},
	queries => [ $Q, $QG ]);
write_path('TRUNCATE in a rolled-back transaction', "BEGIN;\nTRUNCATE wp;\nROLLBACK;",
	queries => [ [ $Q, 'hit' ], [ $QG, 'hit' ] ]);

# ---- views, rules, and the types the rows use -------------------------------

$node->safe_psql('postgres', q{
CREATE VIEW wpv AS SELECT * FROM wp;
CREATE TABLE wp_rule_src (id int);
CREATE RULE wp_rule AS ON INSERT TO wp_rule_src DO INSTEAD INSERT INTO wp VALUES (NEW.id, 1, 1, 'rule');
});
prime($Q, 'before the view and rule writes');
write_path('INSERT through an auto-updatable view', q{INSERT INTO wpv VALUES (901, 1, 1, 'view', NULL)},
	queries => [$Q]);
write_path('INSERT rewritten by a rule on another table', q{INSERT INTO wp_rule_src VALUES (902)},
	queries => [$Q]);

# DDL on a type changes what the rows of a tracked table read as, without
# any statement on the table itself.
$node->safe_psql('postgres', q{
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TYPE pair AS (a int, b int);
CREATE TABLE ty (id int PRIMARY KEY, m mood NOT NULL, p pair NOT NULL);
INSERT INTO ty VALUES (1, 'sad', ROW(1, 2)), (2, 'ok', ROW(3, 4));
SELECT cache_track('ty');
});
my $TYE = qdef('ty enum column', "SELECT string_agg(m::text, ',' ORDER BY id) AS ms FROM ty", 'ms text');
my $TYC = qdef('ty composite column',
	"SELECT string_agg(to_jsonb(p)::text, ',' ORDER BY id) AS ps FROM ty", 'ps text');
prime($_, 'setup') foreach ($TYE, $TYC);
write_path('ALTER TYPE ... RENAME VALUE of an enum a tracked table uses',
	q{ALTER TYPE mood RENAME VALUE 'sad' TO 'glum'}, queries => [$TYE]);
# type DDL invalidates the whole database (any table may use the type)
prime($TYC, 'again, after the enum rename invalidated everything');
write_path('ALTER TYPE ... RENAME ATTRIBUTE of a composite type a tracked table uses',
	q{ALTER TYPE pair RENAME ATTRIBUTE a TO x}, queries => [$TYC]);

# cache_purge: deletes every entry of this database, returns how many.
{
	prime($QT, 'before cache_purge');
	my @entries = $redis->scan_keys('cache_ext:*:e:*');
	cmp_ok(scalar(@entries), '>=', 3, 'entries in Redis before cache_purge()');
	my $purged = $node->safe_psql('postgres', 'SELECT cache_purge()');
	is($purged, scalar(@entries), 'cache_purge() returns the number of entries it deleted');
	is(scalar($redis->scan_keys('cache_ext:*:e:*')), 0, 'no entry is left after cache_purge()');
	cmp_ok(scalar($redis->scan_keys('cache_ext:*:g*')), '>', 0,
		'generation keys are not purged');
	read_is($node, $Q, qr/^MISS$/, direct($Q), 'first read after cache_purge(): MISS');
	read_is($node, $Q, qr/^HIT(?: \(local\))?$/, direct($Q), 'then HIT');
	is($node->safe_psql('postgres', 'SELECT cache_purge()'), 1,
		'cache_purge() again: only the entry stored since');
}


# ============================================================================
# A partitioned table
# ============================================================================

$node->safe_psql('postgres', q{
CREATE TABLE pt (id int NOT NULL, k int NOT NULL, qty int NOT NULL) PARTITION BY RANGE (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (10) TO (20);
INSERT INTO pt SELECT i, i % 20, i FROM generate_series(1, 60) AS i;
SELECT cache_track('pt');
});
my $P = qdef('pt', digest_query('pt', 'qty', qw(id k qty)), $DIGEST_COLS);
my $PK = qdef('pt k < 10 (pruned)',
	"SELECT count(*) AS n, coalesce(sum(qty), 0)::bigint AS total FROM pt WHERE k < 10",
	'n bigint, total bigint');
my $P1 = qdef('pt_1 directly', digest_query('pt_1', 'qty', qw(id k qty)), $DIGEST_COLS);

is($node->safe_psql('postgres',
		"SELECT string_agg(relation || ' ' || kind || ' ' || tracked_as || ' ' || covered, ', ' ORDER BY relation::text)
		   FROM cache_tracked WHERE relation::text LIKE 'pt%'"),
	'pt partitioned table pt true, pt_1 partition pt true, pt_2 partition pt true',
	'cache_tracked: pt and its partitions are covered, pt stands for them');

prime($_, 'setup') foreach ($P, $PK, $P1);
write_path('INSERT into the partitioned table', 'INSERT INTO pt VALUES (101, 3, 1), (102, 13, 2)',
	queries => [ $P, $PK, $P1 ]);
write_path('UPDATE moving a row to another partition',
	'UPDATE pt SET k = k + 10 WHERE id = 1', queries => [ $P, $PK, $P1 ]);
write_path('DELETE from the partitioned table', 'DELETE FROM pt WHERE id = 2',
	queries => [ $P, $PK, $P1 ]);
write_path('INSERT into a partition directly', 'INSERT INTO pt_1 VALUES (111, 5, 5)',
	queries => [ $P, $PK, $P1 ]);
write_path('UPDATE of a partition directly', 'UPDATE pt_2 SET qty = qty + 1',
	queries => [ $P, [ $PK, 'any' ], [ $P1, 'any' ] ]);
write_path('DELETE from a partition directly', 'DELETE FROM pt_1 WHERE id = 3',
	queries => [ $P, $PK, $P1 ]);
write_path('COPY into the partitioned table', "COPY pt FROM STDIN;\n121\t4\t7\n122\t14\t8\n\\.\n",
	queries => [ $P, $PK, $P1 ]);
write_path('MERGE into the partitioned table', q{
MERGE INTO pt USING (VALUES (5, 999), (131, 1)) AS s(id, qty) ON pt.id = s.id
WHEN MATCHED THEN UPDATE SET qty = s.qty
WHEN NOT MATCHED THEN INSERT VALUES (s.id, 6, s.qty)}, queries => [ $P, $PK, $P1 ]);
write_path('TRUNCATE of a partition directly', 'TRUNCATE pt_2',
	queries => [ $P, [ $PK, 'any' ], [ $P1, 'any' ] ]);
write_path('own transaction writing a partition, rolled back', sub {
	my $s = CacheExt::Session->new($node, timeout => 60);
	$s->query_ok("BEGIN;\nINSERT INTO pt_2 VALUES (141, 15, 1);");
	my $r = cache_call($s, $P->{call});
	like($r->{status} // '', qr/^BYPASS: this transaction changed public\.pt/,
		'pt: read in a transaction that wrote to a partition: BYPASS');
	is($r->{rows}, $s->query_ok($P->{q}), 'pt: ... with the transaction\'s own rows');
	$s->query_ok('ROLLBACK');
	$s->quit;
}, queries => [ [ $P, 'hit' ] ]);

# A partition created after tracking, and a partitioned partition.
$node->safe_psql('postgres', 'CREATE TABLE pt_3 PARTITION OF pt FOR VALUES FROM (20) TO (30)');
read_is($node, $P, qr/^(HIT|MISS)/, direct($P), 'after CREATE TABLE ... PARTITION OF: the direct rows');
prime($_, 'after CREATE TABLE ... PARTITION OF') foreach ($P, $PK);
write_path('INSERT into a partition created after tracking', 'INSERT INTO pt_3 VALUES (151, 21, 3)',
	queries => [ $P, [ $PK, 'any' ] ]);
write_path('INSERT routed to a partition created after tracking',
	'INSERT INTO pt VALUES (152, 22, 4)', queries => [$P]);
write_path('UPDATE of a partition created after tracking', 'UPDATE pt_3 SET qty = qty * 2',
	queries => [$P]);
write_path('TRUNCATE of a partition created after tracking', 'TRUNCATE pt_3', queries => [$P]);

$node->safe_psql('postgres', q{
CREATE TABLE pt_4 PARTITION OF pt FOR VALUES FROM (30) TO (50) PARTITION BY RANGE (k);
CREATE TABLE pt_4a PARTITION OF pt_4 FOR VALUES FROM (30) TO (40);
});
prime($P, 'after creating a sub-partitioned partition');
write_path('INSERT into a sub-partition created after tracking', 'INSERT INTO pt_4a VALUES (161, 31, 6)',
	queries => [$P]);
write_path('TRUNCATE of a sub-partition created after tracking', 'TRUNCATE pt_4a', queries => [$P]);
$node->safe_psql('postgres', 'INSERT INTO pt_4a VALUES (162, 32, 7)');
prime($P, 'sub-partition refilled');

# ATTACH of a table that already holds rows: the attach itself invalidates.
$node->safe_psql('postgres', q{
CREATE TABLE pt_5 (id int NOT NULL, k int NOT NULL, qty int NOT NULL);
INSERT INTO pt_5 SELECT 200 + i, 50 + i % 10, i FROM generate_series(1, 10) AS i;
});
prime($PK, 'before ATTACH');
write_path('ATTACH PARTITION of a table with rows',
	'ALTER TABLE pt ATTACH PARTITION pt_5 FOR VALUES FROM (50) TO (60)',
	queries => [ $P, [ $PK, 'any' ] ]);
like($node->safe_psql('postgres',
		"SELECT kind || ' ' || tracked_as || ' ' || covered FROM cache_tracked WHERE relation = 'pt_5'::regclass"),
	qr/^partition pt true$/, 'cache_tracked: the attached partition is covered');
write_path('UPDATE of an attached partition', 'UPDATE pt_5 SET qty = qty + 1', queries => [$P]);
write_path('TRUNCATE of an attached partition', 'TRUNCATE pt_5', queries => [$P]);
prime($PK, 'before DETACH');
write_path('DETACH PARTITION', 'ALTER TABLE pt DETACH PARTITION pt_1', queries => [ $P, $PK ]);
$node->safe_psql('postgres', q{
CREATE TABLE pt_6 PARTITION OF pt FOR VALUES FROM (60) TO (70);
INSERT INTO pt_6 SELECT 300 + i, 60 + i, i FROM generate_series(1, 5) AS i;
});
prime($P, 'pt_6 created and filled');
write_path('DETACH PARTITION ... CONCURRENTLY', 'ALTER TABLE pt DETACH PARTITION pt_6 CONCURRENTLY',
	queries => [$P]);
$node->safe_psql('postgres', 'INSERT INTO pt_3 VALUES (171, 23, 9), (172, 24, 10)');
prime($P, 'pt_3 refilled');
write_path('DROP TABLE of a partition that holds rows', 'DROP TABLE pt_3', queries => [$P]);
write_path('TRUNCATE of the partitioned table', 'TRUNCATE pt', queries => [$P]);

# ============================================================================
# Inheritance
# ============================================================================

$node->safe_psql('postgres', q{
CREATE TABLE ih (id int NOT NULL, qty int NOT NULL);
CREATE TABLE ih_c1 () INHERITS (ih);
INSERT INTO ih SELECT i, i FROM generate_series(1, 10) AS i;
INSERT INTO ih_c1 SELECT i, i FROM generate_series(11, 20) AS i;
SELECT cache_track('ih');
CREATE TABLE ih_x (id int NOT NULL, qty int NOT NULL);
INSERT INTO ih_x SELECT i, i FROM generate_series(31, 35) AS i;
});
my $I = qdef('ih', digest_query('ih', 'qty', qw(id qty)), $DIGEST_COLS);
prime($I, 'setup');
write_path('INSERT into an inheritance child', 'INSERT INTO ih_c1 VALUES (21, 21)', queries => [$I]);
write_path('UPDATE of an inheritance child', 'UPDATE ih_c1 SET qty = qty + 1', queries => [$I]);
write_path('DELETE from an inheritance child', 'DELETE FROM ih_c1 WHERE id = 11', queries => [$I]);
write_path('UPDATE through the parent touching only child rows',
	'UPDATE ih SET qty = qty + 1 WHERE id > 10', queries => [$I]);
write_path('TRUNCATE of an inheritance child', 'TRUNCATE ih_c1', queries => [$I]);
$node->safe_psql('postgres', 'CREATE TABLE ih_c2 () INHERITS (ih)');
prime($I, 'after creating a child');
write_path('INSERT into a child created after tracking', 'INSERT INTO ih_c2 VALUES (41, 41)',
	queries => [$I]);
write_path('TRUNCATE of a child created after tracking', 'TRUNCATE ih_c2', queries => [$I]);
write_path('ALTER TABLE ... INHERIT of a table with rows', 'ALTER TABLE ih_x INHERIT ih',
	queries => [$I]);
write_path('UPDATE of a table that became a child', 'UPDATE ih_x SET qty = 0', queries => [$I]);
write_path('ALTER TABLE ... NO INHERIT of a child with rows', 'ALTER TABLE ih_x NO INHERIT ih',
	queries => [$I]);
$node->safe_psql('postgres', 'INSERT INTO ih_c2 VALUES (42, 42)');
prime($I, 'child refilled');
write_path('DROP TABLE of a child with rows', 'DROP TABLE ih_c2', queries => [$I]);

# ============================================================================
# A materialized view
# ============================================================================

$node->safe_psql('postgres', q{
CREATE TABLE mvsrc (g int NOT NULL, v int NOT NULL);
INSERT INTO mvsrc SELECT i % 4, i FROM generate_series(1, 20) AS i;
CREATE MATERIALIZED VIEW mv AS SELECT g, sum(v)::bigint AS total FROM mvsrc GROUP BY g;
CREATE UNIQUE INDEX ON mv (g);
});
my $M = qdef('mv', digest_query('mv', 'total', qw(g total)), $DIGEST_COLS);
prime($M, 'setup');
write_path('a write to the base table of a materialized view (no REFRESH)',
	'INSERT INTO mvsrc VALUES (1, 1000)', queries => [ [ $M, 'hit' ] ]);
write_path('REFRESH MATERIALIZED VIEW', 'REFRESH MATERIALIZED VIEW mv', queries => [$M]);
write_path('REFRESH MATERIALIZED VIEW in a rolled-back transaction', sub {
	my $s = CacheExt::Session->new($node, timeout => 60);
	$s->query_ok("INSERT INTO mvsrc VALUES (3, 3000);\nBEGIN;\nREFRESH MATERIALIZED VIEW mv;");
	my $in_tx = $s->query_ok($M->{q});
	read_is($s, $M, qr/^BYPASS: this transaction changed public\.mv/, $in_tx,
		'read in the transaction that refreshed it: BYPASS with the refreshed rows');
	$s->query_ok('ROLLBACK');
	$s->quit;
}, queries => [ [ $M, 'hit' ] ]);
write_path('REFRESH MATERIALIZED VIEW CONCURRENTLY',
	"INSERT INTO mvsrc VALUES (2, 2000);\nREFRESH MATERIALIZED VIEW CONCURRENTLY mv",
	queries => [$M]);

# ============================================================================
# Logical-replication apply
# ============================================================================

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->start;
my $rep_table = 'CREATE TABLE rep (id int PRIMARY KEY, v int NOT NULL)';
$pub->safe_psql('postgres', "$rep_table;
INSERT INTO rep SELECT i, i FROM generate_series(1, 20) AS i;
CREATE PUBLICATION rep_pub FOR TABLE rep;");
$node->safe_psql('postgres', "$rep_table;\nSELECT cache_track('rep');");
$node->safe_psql('postgres', 'CREATE SUBSCRIPTION rep_sub CONNECTION '
	  . sql_literal($pub->connstr('postgres')) . ' PUBLICATION rep_pub');
$node->wait_for_subscription_sync($pub, 'rep_sub');
is($node->safe_psql('postgres', 'SELECT count(*) FROM rep'), 20,
	'subscriber: the initial copy arrived');

my $R = qdef('rep (subscriber)', digest_query('rep', 'v', qw(id v)), $DIGEST_COLS);
prime($R, 'setup');

# A write on the publisher; its apply on the subscriber has committed once
# the publisher sees the subscriber's confirmation.
sub on_publisher
{
	my ($sql) = @_;
	return sub {
		$pub->safe_psql('postgres', $sql);
		my $expect = $pub->safe_psql('postgres', digest_query('rep', 'v', qw(id v)));
		$pub->wait_for_catchup('rep_sub');
		$node->poll_query_until('postgres', digest_query('rep', 'v', qw(id v)), $expect)
		  or die "the subscriber did not apply: $sql";
	};
}
write_path('replicated INSERT', on_publisher('INSERT INTO rep VALUES (21, 21), (22, 22)'),
	queries => [$R]);
write_path('replicated UPDATE', on_publisher('UPDATE rep SET v = v * 2 WHERE id <= 5'),
	queries => [$R]);
write_path('replicated DELETE', on_publisher('DELETE FROM rep WHERE id > 15'), queries => [$R]);
write_path('replicated TRUNCATE', on_publisher('TRUNCATE rep'), queries => [$R]);
write_path('replicated INSERT after TRUNCATE',
	on_publisher('INSERT INTO rep SELECT i, -i FROM generate_series(1, 3) AS i'), queries => [$R]);

$node->safe_psql('postgres', 'DROP SUBSCRIPTION rep_sub');
$pub->stop;

# ---- the end ----------------------------------------------------------------

my $stats = cache_stats($node);
is($stats->{errors}, 0, 'cache_stats: no errors');
is($stats->{corrupt}, 0, 'cache_stats: nothing corrupt');
is($stats->{pending_invalidations}, 0, 'cache_stats: no invalidation waits in the outbox');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
note sprintf('060_write_paths ran in %.1f s', time() - $t_start);

$node->stop;
$redis->stop;
done_testing();
