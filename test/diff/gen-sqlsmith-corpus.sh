#!/usr/bin/env bash
# test/diff/gen-sqlsmith-corpus.sh - regenerate test/diff/corpus/sqlsmith.jsonl.gz
#
# Builds the regression database by replaying the regression corpus directly
# (a throwaway server without cache_ext), lets sqlsmith (Debian package
# sqlsmith) generate queries against it with a fixed seed (--dry-run: nothing
# is executed by sqlsmith), and keeps those that run directly without error,
# fast and with a bounded number of rows (corpus.py filter-sqlsmith).
#
# Usage (as root): bash test/diff/gen-sqlsmith-corpus.sh [SEED [N-GENERATED [N-KEPT]]]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
ce_require_root
ce_install_traps
command -v sqlsmith >/dev/null || ce_die "sqlsmith is not installed (apt-get install sqlsmith)"

SEED=${1:-4242}
GENERATE=${2:-12000}
KEEP=${3:-3000}
DIR=$CE_ROOT/test/diff
WORK=$(mktemp -d /tmp/cache_ext-gensmith.XXXXXX)
cleanup_work() { rm -rf "$WORK"; }
CE_CLEANUP_HOOKS+=(cleanup_work)

CE_PG_PRELOAD='' CE_PG_EXTRA_CONF="lc_messages = 'C'
max_connections = 60" ce_start_pg

ce_log "Replaying the regression corpus directly"
/usr/bin/python3 "$DIR/difftest.py" --direct-only --failures "$WORK/f.jsonl" "$DIR/corpus/regress.jsonl.gz" | tail -n 3

ce_log "sqlsmith --seed=$SEED --max-queries=$GENERATE --dry-run"
sqlsmith --target="host=$PGHOST port=$PGPORT user=postgres dbname=regression" \
	--seed="$SEED" --max-queries="$GENERATE" --dry-run >"$WORK/queries.sql" 2>"$WORK/sqlsmith.err" || true
grep -c ';$' "$WORK/queries.sql" || true

ce_log "Keeping the queries that run directly"
PGTZ=America/Los_Angeles PGDATESTYLE='Postgres, MDY' /usr/bin/python3 "$DIR/corpus.py" filter-sqlsmith \
	--keep "$KEEP" --out "$DIR/corpus/sqlsmith.jsonl.gz" "$WORK/queries.sql"
