#!/usr/bin/env bash
# test/bench/hit_bench.sh - what a cache hit costs, side by side in one run.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh), loads a
# sales table, and runs pgbench -M prepared with 1 and 8 clients over:
#   direct  the expensive aggregate itself
#   hit     the same query through cached_query() (always a HIT after warm-up),
#           Redis over TCP on 127.0.0.1
#   hit_unix the same, Redis over its unix socket
#   matview SELECT * FROM a materialized view holding the same result
#   select1 SELECT 1 (the floor: a round trip to PostgreSQL)
# First, over BENCH_HITS (default 2000) hits in one connection, it prints
# the round trips to Redis and the plans built per hit (cache_stats) and
# the commands Redis saw per hit (INFO commandstats): 1, 0 (but the
# connection's first call) and one GETRANGE and one MGET.
# and prints TPS, average latency, and the ratios the Foundation issue
# targets: hit TPS >= 0.5 x matview TPS at 8 clients, hit latency <= 2.5 x
# matview latency at 1 client.  Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3); the variants are interleaved within a
#                  round so that drift on a shared machine hits them alike,
#                  and each figure is the median over the rounds
#   BENCH_ROWS     rows in sales (default 1000000)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}

ce_bench_servers

QUERY="SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM sales GROUP BY region ORDER BY region"
COLS="region int, n bigint, total numeric, mean numeric"

ce_log "loading $BENCH_ROWS rows"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE sales (id bigint PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT g, g % 50, (g::bigint * 7919 % 100000) / 100.0 FROM generate_series(1, $BENCH_ROWS) g;
ANALYZE sales;
CREATE MATERIALIZED VIEW sales_mv AS $QUERY;
ANALYZE sales_mv;
SELECT cache_track('sales');
SQL

# warm the cache and check that it hits (a tracked table: a plain HIT)
warm=$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
)
# (HIT (local) when CE_PG_EXTRA_CONF sets cache_ext.local_cache_size)
case "$warm" in
	HIT | "HIT (local)") ;;
	*) ce_die "the cache does not hit (cache_status: '$warm'): is Redis reachable?" ;;
esac

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
echo "$QUERY;" > "$bench_dir/direct.sql"
echo "SELECT * FROM cached_query('$QUERY') AS t($COLS);" > "$bench_dir/hit.sql"
cp "$bench_dir/hit.sql" "$bench_dir/hit_unix.sql"
echo "SELECT * FROM sales_mv;" > "$bench_dir/matview.sql"
echo "SELECT 1;" > "$bench_dir/select1.sql"

# A hit makes one round trip to Redis and no planning: count both over a
# fixed number of hits in one connection (cache_stats.round_trips counts the
# store's exchanges, plans_built the statements cached_query prepared or
# analysed again; Redis's commandstats count what reached Redis).
redis_calls() {
	redis-cli -h 127.0.0.1 -p "$CE_REDIS_PORT" INFO commandstats |
		sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0
}
HITS_N=${BENCH_HITS:-2000}
psql -X -q -c "SELECT cache_stats_reset()" >/dev/null
gr0=$(redis_calls getrange); mg0=$(redis_calls mget)
pgbench -n -M prepared -c 1 -t "$HITS_N" -f "$bench_dir/hit.sql" >/dev/null 2>&1 || ce_die "pgbench (hit count) failed"
read -r hits rts plans < <(psql -X -q -At -F ' ' -c "SELECT hits, round_trips, plans_built FROM cache_stats")
gr1=$(redis_calls getrange); mg1=$(redis_calls mget)
ce_log "$HITS_N calls in one connection: $hits hits"
awk -v h="$hits" -v r="$rts" -v p="$plans" -v g=$((gr1 - gr0)) -v m=$((mg1 - mg0)) 'BEGIN {
	printf "  per hit: %.3f round trips to Redis, %.4f plans built (%d in all: the connection'"'"'s first call prepares), Redis commands GETRANGE %.3f, MGET %.3f\n", r / h, p / h, p, g / h, m / h }'

declare -A TPS LAT

redis_url() {
	psql -X -q -c "ALTER SYSTEM SET cache_ext.redis_url = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

run() {
	local name=$1 clients=$2 out
	if [ "$name" = hit_unix ]; then redis_url "unix://$CE_REDIS_SOCKET"; fi
	out=$(pgbench -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" -f "$bench_dir/$name.sql" 2>&1) || { echo "$out"; ce_die "pgbench $name failed"; }
	if [ "$name" = hit_unix ]; then redis_url "redis://127.0.0.1:$CE_REDIS_PORT/0"; fi
	TPS[$name,$clients]+=" $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)"
	LAT[$name,$clients]+=" $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

NAMES="direct hit hit_unix matview select1"
ce_log "pgbench -M prepared, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	for clients in 1 8; do
		for name in $NAMES; do
			run "$name" "$clients"
		done
	done
	ce_note "round $round done"
done
for clients in 1 8; do
	for name in $NAMES; do
		TPS[$name,$clients]=$(median "${TPS[$name,$clients]}")
		LAT[$name,$clients]=$(median "${LAT[$name,$clients]}")
		printf '  %-9s %d client(s): %12.1f TPS  %10.3f ms\n' "$name" "$clients" \
			"${TPS[$name,$clients]}" "${LAT[$name,$clients]}"
	done
done

psql -X -q -c "SELECT hits, misses, bypasses, errors FROM cache_stats"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ce_log "ratios (same run)"
echo "  hit TPS / matview TPS, 8 clients:       $(ratio "${TPS[hit,8]}" "${TPS[matview,8]}")   (target >= 0.5)"
echo "  hit latency / matview latency, 1 client: $(ratio "${LAT[hit,1]}" "${LAT[matview,1]}")   (target <= 2.5)"
echo "  unix socket: hit TPS / matview TPS, 8 clients:       $(ratio "${TPS[hit_unix,8]}" "${TPS[matview,8]}")"
echo "  unix socket: hit latency / matview latency, 1 client: $(ratio "${LAT[hit_unix,1]}" "${LAT[matview,1]}")"
echo "  hit TPS / direct TPS, 1 client:          $(ratio "${TPS[hit,1]}" "${TPS[direct,1]}")"
echo "  hit TPS / direct TPS, 8 clients:         $(ratio "${TPS[hit,8]}" "${TPS[direct,8]}")"
echo "  hit latency / SELECT 1 latency, 1 client: $(ratio "${LAT[hit,1]}" "${LAT[select1,1]}")"
