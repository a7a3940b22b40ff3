#!/usr/bin/env bash
# test/bench/sessions_bench.sh - cache_session_get per second against Redis's own GET.
#
# Starts its own Redis (test/lib/common.sh) and a PostgreSQL server with
# cache_ext.encryption_key_file (sessions sealed, as in production), on
# 127.0.0.1 / unix sockets, stopped by PID at exit.  Then, in every round
# (BENCH_REPEAT rounds, medians reported), at 1 and 8 clients:
#
#   read     pgbench -M prepared -f: cache_session_get of one of 1,000
#            sessions (idle timeout 30 min: no read extends it, one round
#            trip per call), its id taken from a table by a random key
#   touch    the same over 2,000 sessions with a 4 s idle timeout: a read
#            extends the idle timeout (a second round trip, PEXPIRE) when
#            more than 0.5 s of it has passed since the last extension
#   pg       the same statement without cache_session_get (what PostgreSQL
#            and pgbench cost alone, for scale)
#   ceiling  redis-benchmark -t get (no pipelining) on the same Redis, with
#            as many connections
#
# It prints the medians, the ratios read/ceiling and touch/ceiling, and
# the share of reads that extended a session (from cache_stats.round_trips:
# one per read, one more per extension).  Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/sessions_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-3}

bench_setup

EXTRA_DIR=$(mktemp -d /tmp/cache_ext-sessions.XXXXXX)
chmod 755 "$EXTRA_DIR"
stop_extra() { rm -rf "$EXTRA_DIR"; }
CE_CLEANUP_HOOKS+=(stop_extra)
KEYFILE=$EXTRA_DIR/keys
head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$KEYFILE"
echo >>"$KEYFILE"
chown postgres: "$KEYFILE"
chmod 600 "$KEYFILE"

bench_start_pg main "max_connections = 40
cache_ext.encryption_key_file = '$KEYFILE'"
q() { bench_psql main -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION cache_ext" \
	-c "CREATE TABLE read_ids (i int PRIMARY KEY, id text)" \
	-c "CREATE TABLE touch_ids (i int PRIMARY KEY, id text)" >/dev/null

for kind in read touch; do
	if [ "$kind" = read ]; then n=1000; else n=2000; fi
	cat >"$EXTRA_DIR/$kind.sql" <<SQL
\\set i random(1, $n)
SELECT cache_session_get(id) FROM ${kind}_ids WHERE i = :i;
SQL
done
cat >"$EXTRA_DIR/pg.sql" <<SQL
\\set i random(1, 1000)
SELECT id FROM read_ids WHERE i = :i;
SQL
chmod 644 "$EXTRA_DIR"/*.sql

# (re)create the sessions, so that none has expired
make_sessions() {
	q -c "TRUNCATE read_ids, touch_ids" \
		-c "INSERT INTO read_ids SELECT g, cache_session_create('user' || g % 100, jsonb_build_object('user', g, 'cart', jsonb_build_array(1, 2, 3), 'csrf', md5(g::text))) FROM generate_series(1, 1000) g" \
		-c "INSERT INTO touch_ids SELECT g, cache_session_create('user' || g % 100, jsonb_build_object('user', g, 'cart', jsonb_build_array(1, 2, 3), 'csrf', md5(g::text)), '4 s') FROM generate_series(1, 2000) g" >/dev/null
}

declare -A TPS TOUCH
round_trips() { q -c "SELECT round_trips FROM cache_stats"; }
pgb() {
	local clients=$1 kind=$2
	pgbench $(bench_target main) -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" -f "$EXTRA_DIR/$kind.sql" 2>&1
}

for round in $(seq "$BENCH_REPEAT"); do
	ce_log "round $round of $BENCH_REPEAT"
	for c in 1 8; do
		for kind in read touch; do
			make_sessions
			rt0=$(round_trips)
			out=$(pgb "$c" "$kind")
			rt1=$(round_trips)
			tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
			calls=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
			alive=$(q -c "SELECT count(*) FROM ${kind}_ids WHERE cache_session_get(id) IS NOT NULL")
			[ "$alive" -gt 0 ] || ce_die "$kind: every session expired during the run"
			TPS[$kind:$c]+=" $tps"
			TOUCH[$kind:$c]+=" $(awk -v r=$((rt1 - rt0)) -v n="$calls" 'BEGIN { printf "%.3f", (r - n) / n }')"
		done
		TPS[pg:$c]+=" $(pgb "$c" pg | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1)"
		out=$(redis-benchmark -h 127.0.0.1 -p "$CE_REDIS_PORT" -c "$c" -n $((c * 60000)) -t get -P 1 -q 2>&1)
		TPS[ceiling:$c]+=" $(sed -n 's/.*GET: \([0-9.]*\) requests per second.*/\1/p' <<<"$out" | tail -1)"
	done
done

ce_log "results (medians of $BENCH_REPEAT runs of ${BENCH_SECONDS}s; load $(bench_load); $(nproc) CPUs)"
printf '    %-8s %8s %12s %18s\n' what clients 'calls/s' 'extensions/read'
for c in 1 8; do
	for kind in read touch pg ceiling; do
		printf '    %-8s %8s %12s %18s\n' "$kind" "$c" "$(bench_median "${TPS[$kind:$c]}")" \
			"$(case $kind in read | touch) bench_median "${TOUCH[$kind:$c]}" ;; *) echo - ;; esac)"
	done
done
for c in 1 8; do
	ce_note "$c client(s): read/ceiling $(bench_ratio "$(bench_median "${TPS[read:$c]}")" "$(bench_median "${TPS[ceiling:$c]}")"), touch/ceiling $(bench_ratio "$(bench_median "${TPS[touch:$c]}")" "$(bench_median "${TPS[ceiling:$c]}")")"
done
