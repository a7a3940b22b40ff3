#!/usr/bin/env bash
# test/demo.sh - show cache_ext at work on a 1,000,000-row table
#
# Installs what is missing, builds and installs the extension, starts a
# throwaway Redis and PostgreSQL, and runs an expensive aggregate directly,
# then through cached_query() (MISS, then HIT), with cache_status() and the
# timings; then a write that invalidates, a cache rule that serves the
# application's own prepared statement, and an application value.  Both servers are stopped and their files removed at the end,
# whatever happens.  Run as root:   bash test/demo.sh
#
# Environment: CE_DEMO_ROWS (default 1000000), CE_SKIP_DEPS=1, CE_SKIP_BUILD=1.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROWS=${CE_DEMO_ROWS:-1000000}

ce_require_root
ce_install_traps

if [ "${CE_SKIP_DEPS:-0}" != 1 ]; then
	ce_log "Checking packages"
	ce_install_deps
fi
if [ "${CE_SKIP_BUILD:-0}" != 1 ]; then
	ce_log "Building and installing cache_ext"
	ce_build_install
	ce_note "installed into $("$PG_CONFIG" --pkglibdir)"
fi

ce_log "Starting Redis and PostgreSQL"
ce_start_redis
# the local tier: hits served from this server's shared memory
CE_PG_EXTRA_CONF="${CE_PG_EXTRA_CONF:-}
cache_ext.local_cache_size = '64MB'"
ce_start_pg

psql_demo() { "$CE_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

ce_log "Loading $ROWS rows into sales"
psql_demo -v rows="$ROWS" <<'SQL'
CREATE EXTENSION cache_ext;
CREATE TABLE sales (
    id       bigint PRIMARY KEY,
    region   int NOT NULL,            -- 1..50
    product  int NOT NULL,            -- 1..1000
    amount   numeric(12,2) NOT NULL,
    sold_at  timestamptz NOT NULL
);
-- Deterministic: plain arithmetic on the row number, no random().
INSERT INTO sales
SELECT i,
       1 + (i * 37) % 50,
       1 + (i * 7919 / 50) % 1000,
       ((i * 104729) % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + (i % 525600) * interval '1 minute'
FROM generate_series(1::bigint, :rows) AS i;
ANALYZE sales;
SQL
ce_note "done"

ce_log "The demo"
# Quoted heredoc: $1 below is SQL, not shell.  :q interpolates the query
# text as is, :'q' as a string literal, so both forms run the same query.
psql_demo <<'SQL'
\pset footer off
\set q 'SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS avg, count(DISTINCT product) AS products, percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM sales GROUP BY region ORDER BY region'
\set qp 'SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS avg, count(DISTINCT product) AS products, percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM sales WHERE region = $1 GROUP BY region'
\set cols 't(region int, n bigint, total numeric, avg numeric, products bigint, median float8)'

\echo '--- 0. Track sales: its writes now invalidate, at commit, what read it'
SELECT cache_track('sales');
SELECT relation, kind, covered FROM cache_tracked;

\echo
\echo '--- 1. The expensive query, run directly (twice, so both runs are warm):'
\echo :q
\echo '(all 50 rows are computed and fetched in every timed run; only the first 5 are shown)'
\o /dev/null
\timing on
:q;
:q;
\timing off
\o
SELECT * FROM (:q) AS q LIMIT 5;

\echo
\echo '--- 2. The same query through cached_query(): the first call computes and stores it (MISS)'
\o /dev/null
\timing on
SELECT * FROM cached_query(:'q') AS :cols;
\timing off
\o
SELECT cache_status();

\echo
\echo '--- 3. Again: a hit, from this server''s shared memory: HIT (local), no round trip to Redis'
\echo '(the entry is in Redis too: other servers, and this one after a restart, are served from there: HIT)'
\o /dev/null
\timing on
SELECT * FROM cached_query(:'q') AS :cols;
\timing off
\o
SELECT cache_status();

\echo
\echo '--- 4. With a parameter: each value of $1 is its own entry (region 7: MISS, then HIT)'
\echo :qp
\timing on
SELECT * FROM cached_query(:'qp', 7) AS :cols;
\timing off
SELECT cache_status();
\timing on
SELECT * FROM cached_query(:'qp', 7) AS :cols;
\timing off
SELECT cache_status();

\echo
\echo '--- 5. A write: UPDATE sales SET amount = amount + 1 WHERE region = 7'
\timing on
UPDATE sales SET amount = amount + 1 WHERE region = 7;
\timing off
\echo 'The commit did not wait for Redis: a background worker sends the invalidation, and a call that needs it waits for it.'
\echo 'sales is tracked, so the commit bumped its generation: expect MISS (invalidated) and the new totals.'
SELECT * FROM cached_query(:'qp', 7) AS :cols;
SELECT cache_status();
\echo 'And again: stored under the new generation (HIT, from the local tier).'
SELECT * FROM cached_query(:'qp', 7) AS :cols;
SELECT cache_status();
\echo 'Direct, for comparison:'
PREPARE direct(int) AS :qp;
EXECUTE direct(7);

\echo
\echo '--- 6. Without changing the application: a cache rule for the statement shape'
\echo 'The application keeps sending its own SQL (here with a constant, region 12); the rule answers every statement'
\echo 'of that shape, whatever its constants, from the cache, after PostgreSQL has checked its privileges.'
\set qc 'SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS avg, count(DISTINCT product) AS products, percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM sales WHERE region = 12 GROUP BY region'
SELECT cache_rule_create(:'qc', name => 'sales_by_region');
\timing on
:qc;
\timing off
SELECT cache_status();
\timing on
:qc;
\timing off
SELECT cache_status();
\echo 'The same statement prepared once and executed (as drivers and pools do): served too, once cache_ext'
\echo 'has checked that its text means now what its plan was made from.'
PREPARE app_stmt AS :qc;
EXECUTE app_stmt;
SELECT cache_status();
SELECT name, hits, misses FROM cache_rules;

\echo
\echo '--- 7. Application values in the same Redis: hashed key names, invalidated by namespace'
SELECT cache_set('dashboard', 'banner', '{"text": "Q3 results are in"}', ttl => '10 minutes');
SELECT cache_get('dashboard', 'banner');
SELECT cache_delete_namespace('dashboard');
SELECT cache_get('dashboard', 'banner') AS after_delete_namespace;

\echo
\echo '--- 8. Counters'
\x on
SELECT * FROM cache_stats;
\x off
SQL

ce_log "Stopping servers"
ce_stop_all
ce_note "demo finished"
