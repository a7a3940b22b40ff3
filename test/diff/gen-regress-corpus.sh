#!/usr/bin/env bash
# test/diff/gen-regress-corpus.sh - regenerate test/diff/corpus/regress.jsonl.gz
#
# Runs PostgreSQL 15's own regression suite (from Debian's source package
# postgresql-15) with pg_regress against a throwaway server without cache_ext
# that logs every statement, and turns the log into the committed corpus: the
# statements of every test script in schedule order, each with the test name,
# session, role and duration, read statements marked.  The data files the
# scripts COPY from are copied (gzipped) to test/diff/corpus/data/.
#
# Usage (as root, from anywhere):
#   bash test/diff/gen-regress-corpus.sh [PATH-TO/src/test/regress]
# Without a path it fetches the source package with `apt-get source
# --download-only postgresql-15` (needs a deb-src line in /etc/apt/sources.list.d/).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
ce_require_root
ce_install_traps

OUT=$CE_ROOT/test/diff/corpus
WORK=$(mktemp -d /tmp/cache_ext-gen.XXXXXX)
cleanup_work() { rm -rf "$WORK"; }
CE_CLEANUP_HOOKS+=(cleanup_work)

SRC=${1:-}
if [ -z "$SRC" ]; then
	ce_log "Fetching Debian's postgresql-15 source package"
	(cd "$WORK" && apt-get source --download-only postgresql-15 >/dev/null)
	tarball=$(ls "$WORK"/postgresql-15_*.orig.tar.* | head -n 1)
	top=$(tar tf "$tarball" | head -n 1 | cut -d/ -f1)
	tar -C "$WORK" -xf "$tarball" "$top/src/test/regress"
	SRC=$WORK/$top/src/test/regress
fi
[ -f "$SRC/parallel_schedule" ] || ce_die "$SRC has no parallel_schedule"

# pg_regress runs as postgres from a private copy (it writes results/ there).
cp -a "$SRC" "$WORK/regress"
chown -R postgres: "$WORK"
chmod 755 "$WORK"

ce_log "Running the regression suite with every statement logged"
CE_PG_PRELOAD='' CE_PG_EXTRA_CONF="log_statement = 'all'
log_duration = on
log_min_error_statement = error
lc_messages = 'C'
log_line_prefix = '@@|%p|%a|%d|%u|@@ '
max_connections = 60" ce_start_pg

runuser -u postgres -- env -C "$WORK/regress" "$CE_PGXS_TEST_DIR/regress/pg_regress" \
	--inputdir="$WORK/regress" --outputdir="$WORK/regress" --bindir="$CE_PG_BINDIR" \
	--dlpath=/nonexistent --host="$PGHOST" --port="$PGPORT" --user=postgres \
	--max-connections=1 --schedule=parallel_schedule >"$WORK/pg_regress.out" 2>&1 || true
tail -n 3 "$WORK/pg_regress.out"
ce_stop_pg
cp "$CE_PG_DIR/postgresql.log" "$WORK/statements.log"

ce_log "Writing $OUT/regress.jsonl.gz"
mkdir -p "$OUT/data"
/usr/bin/python3 "$CE_ROOT/test/diff/corpus.py" from-log --schedule "$SRC/parallel_schedule" \
	--datadir "$SRC/data" --srcdir "$WORK/regress" --out "$OUT/regress.jsonl.gz" \
	--data-out "$OUT/data" "$WORK/statements.log"
