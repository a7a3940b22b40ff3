#!/usr/bin/env bash
# test/bench/sentinel_bench.sh - what Sentinel and WAIT cost, side by side in one run.
#
# Starts its own Redis master (test/lib/common.sh), a replica of it, one
# sentinel monitoring it, and a PostgreSQL server, all on 127.0.0.1 / unix
# sockets, stopped by PID at exit.  Then, alternating the two modes of each
# comparison in every round (BENCH_REPEAT rounds, medians reported):
#
#   hits    pgbench -M prepared, a cached_query() HIT of a 10-row aggregate,
#           1 client (latency) and 8 clients (TPS), through
#             single    cache_ext.redis_url = redis://<master>
#             sentinel  cache_ext.redis_url = redis-sentinel://<sentinel>/bench
#           (the same master: the difference is the ROLE sent before every
#           pipeline of a Sentinel connection)
#   commits pgbench tpcb-like on the four tracked pgbench tables, 1 and 8
#           clients, with
#             wait0     cache_ext.redis_wait_replicas = 0
#             wait1     cache_ext.redis_wait_replicas = 1 (each delivery
#                       waits for the replica's WAIT acknowledgement)
#
# It prints medians and the ratios sentinel/single and wait1/wait0.
# Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/sentinel_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-3}

bench_setup

# ---- the replica and the sentinel (stopped by PID at exit) ----------------------
bench_pid_dir EXTRA_DIR sentinel

REPLICA_PORT=$(ce_free_port)
redis-server --bind 127.0.0.1 --port "$REPLICA_PORT" --save '' --appendonly no \
	--replicaof 127.0.0.1 "$CE_REDIS_PORT" --daemonize yes \
	--pidfile "$EXTRA_DIR/replica.pid" --dir "$EXTRA_DIR" --logfile "$EXTRA_DIR/replica.log" >/dev/null
SENTINEL_PORT=$(ce_free_port)
cat >"$EXTRA_DIR/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
daemonize yes
pidfile $EXTRA_DIR/sentinel.pid
logfile $EXTRA_DIR/sentinel.log
dir $EXTRA_DIR
sentinel monitor bench 127.0.0.1 $CE_REDIS_PORT 1
sentinel down-after-milliseconds bench 5000
CONF
redis-server "$EXTRA_DIR/sentinel.conf" --sentinel >/dev/null
for _ in $(seq 100); do
	if redis-cli -h 127.0.0.1 -p "$CE_REDIS_PORT" INFO replication | grep -q 'connected_slaves:1' &&
		redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" SENTINEL get-master-addr-by-name bench 2>/dev/null |
		grep -q "$CE_REDIS_PORT"; then
		break
	fi
	sleep 0.1
done
ce_note "replica on 127.0.0.1:$REPLICA_PORT, sentinel on 127.0.0.1:$SENTINEL_PORT"

SINGLE="redis://127.0.0.1:$CE_REDIS_PORT/0"
SENTINEL="redis-sentinel://127.0.0.1:$SENTINEL_PORT/bench"

bench_start_pg main "max_connections = 40"
q() { bench_psql main -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION cache_ext" \
	-c "CREATE TABLE facts AS SELECT g % 10 AS k, g AS v FROM generate_series(1, 200000) g" \
	-c "SELECT cache_track('facts')" >/dev/null
pgbench $(bench_target main) -i -q -s 1 2>&1 | tail -n 1 | sed 's/^/    /'
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
	q -c "SELECT cache_track('$t')" >/dev/null
done
HIT_SQL="$EXTRA_DIR/hit.sql"
echo "SELECT * FROM cached_query('SELECT k, sum(v) FROM facts GROUP BY k') AS t(k int, s bigint);" >"$HIT_SQL"
chmod 644 "$HIT_SQL"

set_url() {
	q -c "ALTER SYSTEM SET cache_ext.redis_url = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}
set_wait() {
	q -c "ALTER SYSTEM SET cache_ext.redis_wait_replicas = $1" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

declare -A TPS LAT
pgb() {
	local clients=$1; shift
	pgbench $(bench_target main) -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" "$@" 2>&1
}
record() {
	local key=$1 out=$2
	TPS[$key]+=" $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)"
	LAT[$key]+=" $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

for round in $(seq "$BENCH_REPEAT"); do
	ce_log "round $round of $BENCH_REPEAT"
	for mode in single sentinel; do
		if [ "$mode" = single ]; then set_url "$SINGLE"; else set_url "$SENTINEL"; fi
		q -c "SELECT count(*) FROM cached_query('SELECT k, sum(v) FROM facts GROUP BY k') AS t(k int, s bigint)" >/dev/null
		status=$(q -c "SELECT count(*) FROM cached_query('SELECT k, sum(v) FROM facts GROUP BY k') AS t(k int, s bigint)" -c "SELECT cache_status()" | tail -1)
		[ "$status" = HIT ] || ce_die "$mode: the warm call is not a HIT ($status)"
		for c in 1 8; do
			record "hits:$mode:$c" "$(pgb "$c" -f "$HIT_SQL")"
		done
	done
	set_url "$SINGLE"
	for mode in wait0 wait1; do
		set_wait "${mode#wait}"
		for c in 1 8; do
			record "commits:$mode:$c" "$(pgb "$c" -b tpcb-like)"
		done
	done
	set_wait 0
done

[ "$(q -c "SELECT pending_invalidations FROM cache_stats")" = 0 ] ||
	ce_warn "invalidations still pending at the end"

ce_log "results (medians of $BENCH_REPEAT runs of ${BENCH_SECONDS}s; load $(bench_load))"
printf '    %-9s %-9s %8s %12s %12s\n' what mode clients tps 'latency ms'
for key in hits:single hits:sentinel commits:wait0 commits:wait1; do
	for c in 1 8; do
		printf '    %-9s %-9s %8s %12s %12s\n' "${key%%:*}" "${key#*:}" "$c" \
			"$(bench_median "${TPS[$key:$c]}")" "$(bench_median "${LAT[$key:$c]}")"
	done
done
for c in 1 8; do
	ce_note "hits, $c client(s): sentinel/single TPS $(bench_ratio "$(bench_median "${TPS[hits:sentinel:$c]}")" "$(bench_median "${TPS[hits:single:$c]}")"), latency $(bench_ratio "$(bench_median "${LAT[hits:sentinel:$c]}")" "$(bench_median "${LAT[hits:single:$c]}")")"
	ce_note "commits, $c client(s): wait1/wait0 TPS $(bench_ratio "$(bench_median "${TPS[commits:wait1:$c]}")" "$(bench_median "${TPS[commits:wait0:$c]}")")"
done
