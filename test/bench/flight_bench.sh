#!/usr/bin/env bash
# test/bench/flight_bench.sh - single flight: BENCH_SESSIONS sessions (default
# 64) ask for one invalidated expensive result at the same moment.
#
# Starts its own Redis and PostgreSQL (test/lib/common.sh).  Each round
# invalidates the result (an UPDATE of its tracked table), connects the
# sessions, holds them at a barrier (a table locked by a gate session that
# commits after BENCH_GATE seconds; each session's first statement reads
# that table), and lets them all call cached_query at once.  Rounds with
# single flight on (cache_ext.fill_wait = BENCH_FILL_WAIT ms) and off
# (fill_wait = 0) alternate, BENCH_REPEAT of each.  Per round it prints:
#   execs   executions of the query, counted outside cache_ext: auto_explain
#           (log_nested_statements) logs each execution of the inner
#           statement under its own text; cached_query's own misses agree
#   p50 p99 max   latency of the sessions, from the barrier's release (the
#           gate's clock_timestamp() just before it commits) to the end of
#           each call (the session's clock_timestamp() after it), in ms
#   statuses      cache_status() of the calls, counted
# The query: a sort over a cross join, BENCH_QUERY_ROWS x 1000 rows (no
# pg_sleep: it is volatile, and volatile queries are not cached), about
# 0.3 s on one core by default.  Nothing here asserts a timing.
#
#   BENCH_SESSIONS    concurrent sessions (default 64)
#   BENCH_REPEAT      rounds of each mode (default 3)
#   BENCH_FILL_WAIT   cache_ext.fill_wait of the "on" rounds (default 10000)
#   BENCH_QUERY_ROWS  the generate_series side of the cross join (default 600)
#   BENCH_GATE        seconds the barrier stays closed (default 3)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

SESSIONS=${BENCH_SESSIONS:-64}
REPEAT=${BENCH_REPEAT:-3}
FILL_WAIT=${BENCH_FILL_WAIT:-10000}
QROWS=${BENCH_QUERY_ROWS:-600}
GATE=${BENCH_GATE:-3}

CE_PG_PRELOAD=cache_ext,auto_explain
CE_PG_EXTRA_CONF="max_connections = $((SESSIONS + 20))
auto_explain.log_min_duration = 0
auto_explain.log_nested_statements = on
max_parallel_workers_per_gather = 0
cache_ext.verify_rate = 0"
ce_bench_servers
PATH=$CE_PG_BINDIR:$PATH

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

QUERY="SELECT /*flight_exec*/ count(DISTINCT s.v * 100000 + g.i) AS d, sum(s.v::bigint * g.i) AS total FROM flight_src s CROSS JOIN generate_series(1, $QROWS) AS g(i)"
CALL="SELECT * FROM cached_query(\$q\$$QUERY\$q\$) AS t(d bigint, total numeric)"

q <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE flight_src (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO flight_src SELECT i, i % 97 FROM generate_series(1, 1000) AS i;
SELECT cache_track('flight_src');
CREATE TABLE flight_barrier (x int);
SQL

LOG=$CE_PG_DIR/postgresql.log
WORK=$(mktemp -d /tmp/flight_bench.XXXXXX)
CE_CLEANUP_HOOKS+=("rm -rf $WORK")

t0=$(date +%s.%N)
q -c "$QUERY" >/dev/null
ce_log "the query alone: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f ms", (b - a) * 1000 }')"

# round MODE FILL_WAIT: one stampede; prints its line
round()
{
	local mode=$1 fw=$2 pos release i pids=() misses0 misses1

	q -c "UPDATE flight_src SET v = v + 1 WHERE id = 1" >/dev/null
	misses0=$(q -c "SELECT misses FROM cache_stats")
	pos=$(stat -c %s "$LOG")
	# the gate: holds the barrier table, prints its clock when it lets go
	q -c "BEGIN" -c "LOCK flight_barrier IN ACCESS EXCLUSIVE MODE" \
		-c "SELECT pg_sleep($GATE)" \
		-c "SELECT extract(epoch FROM clock_timestamp())" -c "COMMIT" >"$WORK/gate" &
	pids+=($!)
	sleep 0.3
	for i in $(seq 1 "$SESSIONS"); do
		PGOPTIONS="-c cache_ext.fill_wait=$fw" q -c "SELECT count(*) FROM flight_barrier" \
			-c "$CALL" -c "SELECT extract(epoch FROM clock_timestamp()) || ' ' || cache_status()" \
			>"$WORK/s$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	release=$(grep -E '^[0-9.]+$' "$WORK/gate" | tail -n 1)
	misses1=$(q -c "SELECT misses FROM cache_stats")
	for i in $(seq 1 "$SESSIONS"); do
		tail -n 1 "$WORK/s$i"
	done >"$WORK/ends"
	awk -v r="$release" '{ printf "%.1f\n", ($1 - r) * 1000 }' "$WORK/ends" | sort -g >"$WORK/lat"
	local n p50 p99 max execs statuses
	n=$(wc -l <"$WORK/lat")
	p50=$(awk -v n="$n" 'NR == int((n + 1) / 2)' "$WORK/lat")
	p99=$(awk -v n="$n" 'NR == int(n * 0.99 + 0.999)' "$WORK/lat")
	max=$(tail -n 1 "$WORK/lat")
	execs=$(tail -c +"$((pos + 1))" "$LOG" | grep -c 'Query Text: SELECT /\*flight_exec\*/' || true)
	statuses=$(cut -d ' ' -f 2- "$WORK/ends" |
		sed -e 's/ (after waiting for a concurrent fill)/ (waited)/' \
			-e 's/waited for a concurrent fill/waited/' | sort | uniq -c |
		awk '{ c = $1; $1 = ""; printf "%s%s x%s", (NR > 1 ? ", " : ""), substr($0, 2), c }')
	printf '%-4s fill_wait=%-6s sessions=%-3s execs=%-3s misses=%-3s p50=%8s ms  p99=%8s ms  max=%8s ms  %s\n' \
		"$mode" "$fw" "$n" "$execs" "$((misses1 - misses0))" "$p50" "$p99" "$max" "$statuses"
}

ce_log "$SESSIONS sessions, one invalidated result, $REPEAT rounds of each mode (load: $(cut -d ' ' -f 1-3 /proc/loadavg))"
for r in $(seq 1 "$REPEAT"); do
	round on "$FILL_WAIT"
	round off 0
done
ce_log "done (load: $(cut -d ' ' -f 1-3 /proc/loadavg))"
