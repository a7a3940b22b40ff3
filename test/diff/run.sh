#!/usr/bin/env bash
# test/diff/run.sh - the differential test suite: a throwaway Redis and
# PostgreSQL (cache_ext preloaded), then test/diff/difftest.py over the
# committed corpora (PostgreSQL's regression statements, then the sqlsmith
# queries).  Exit status is difftest.py's (non-zero on any MISMATCH, CRASH or
# ERROR-ONLY-CACHED).  Called by test/run-tests.sh (--only diff); runs alone
# as root with the extension already installed for PG_CONFIG.
#
# Environment:
#   CE_DIFF_DEFAULT_ARGS  difftest.py arguments for CI (default: --jobs 2 --track-all --max-ms 500)
#   CE_DIFF_ARGS      more difftest.py arguments (e.g. '--as-role regress_diff_reader',
#                     '--sample 0.5', '--set work_mem=64kB')
#   CE_DIFF_PG_CONF   more postgresql.conf lines (e.g. 'cache_ext.verify_rate = 1')
#   CE_DIFF_FAILURES  where the failures go (default /tmp/cache_ext-diff-failures.jsonl;
#                     also copied to CE_LOG_DIR/diff-failures.jsonl when CE_LOG_DIR is set)
#   CE_DIFF_CORPORA   corpus files (default: every test/diff/corpus/*.jsonl.gz, regress first)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
ce_require_root
ce_install_traps

DIR=$CE_ROOT/test/diff
corpora=${CE_DIFF_CORPORA:-}
if [ -z "$corpora" ]; then
	corpora="$DIR/corpus/regress.jsonl.gz"
	for f in "$DIR"/corpus/*.jsonl.gz; do
		[ "$f" = "$DIR/corpus/regress.jsonl.gz" ] || corpora="$corpora $f"
	done
fi

ce_start_redis
CE_PG_EXTRA_CONF="max_connections = 60
lc_messages = 'C'
restart_after_crash = on
${CE_DIFF_PG_CONF:-}" ce_start_pg

rc=0
# shellcheck disable=SC2086
/usr/bin/python3 "$DIR/difftest.py" --failures "${CE_DIFF_FAILURES:-/tmp/cache_ext-diff-failures.jsonl}" \
	${CE_DIFF_DEFAULT_ARGS:---jobs 2 --track-all --max-ms 500} ${CE_DIFF_ARGS:-} $corpora || rc=$?
if [ -n "${CE_LOG_DIR:-}" ]; then
	mkdir -p "$CE_LOG_DIR"
	cp "${CE_DIFF_FAILURES:-/tmp/cache_ext-diff-failures.jsonl}" "$CE_LOG_DIR/diff-failures.jsonl" 2>/dev/null || true
fi
exit "$rc"
