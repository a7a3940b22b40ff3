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
#   pgpool_simple, pgpool_prepared
#           the expensive aggregate through pgpool-II 4.3 (Debian's pgpool2)
#           in front of the same server, with its query cache in shared
#           memory (memory_cache_enabled, memqcache_method = shmem): the
#           peer's hit, with pgbench's simple and extended protocols
#           (BENCH_PGPOOL=0 leaves them out)
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
#   BENCH_CHART    where to draw the chart (gnuplot, SVG: TPS by variant at 1
#                  and 8 clients; default docs/img/hit_bench.svg; "" for none)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}

BENCH_PGPOOL=${BENCH_PGPOOL:-1}
BENCH_CHART=${BENCH_CHART-$(dirname "${BASH_SOURCE[0]}")/../../docs/img/hit_bench.svg}
[ "$BENCH_PGPOOL" = 0 ] || CE_PACKAGES+=(pgpool2)
[ -z "$BENCH_CHART" ] || CE_PACKAGES+=(gnuplot-nox)

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

# pgpool-II in front of the server: raw mode, one backend on its unix
# socket, its query cache in shared memory, listening on 127.0.0.1 on a
# free port (clients reach it over TCP); stopped by its PID at exit.
start_pgpool() {
	local dir=$1 conf port pcp
	command -v pgpool >/dev/null || ce_die "pgpool not found: apt-get install pgpool2 (or BENCH_PGPOOL=0)"
	port=$(ce_free_port)
	pcp=$(ce_free_port)
	mkdir -p "$dir/log"
	conf=$dir/pgpool.conf
	cat >"$conf" <<CONF
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
pcp_listen_addresses = ''
pcp_port = $pcp
pcp_socket_dir = '$dir'
backend_hostname0 = '$PGHOST'
backend_port0 = $PGPORT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = off
pool_passwd = ''
num_init_children = 16
max_pool = 1
connection_cache = on
load_balance_mode = off
health_check_period = 0
sr_check_period = 0
use_watchdog = off
logdir = '$dir/log'
pid_file_name = '$dir/pgpool.pid'
memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = 64MB
memqcache_max_num_cache = 100000
memqcache_expire = 0
memqcache_auto_cache_invalidation = on
memqcache_maxcache = 409600
memqcache_oiddir = '$dir/oiddir'
CONF
	pgpool -n -f "$conf" -F "$dir/pcp.conf" -a "$dir/pool_hba.conf" >"$dir/log/pgpool.out" 2>&1 &
	PGPOOL_PID=$!
	CE_CLEANUP_HOOKS+=("kill $PGPOOL_PID 2>/dev/null; wait $PGPOOL_PID 2>/dev/null")
	touch "$dir/pcp.conf" "$dir/pool_hba.conf"
	for _ in $(seq 100); do
		psql -X -q -h 127.0.0.1 -p "$port" -At -c 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.1
	done
	psql -X -q -h 127.0.0.1 -p "$port" -At -c 'SELECT 1' >/dev/null ||
		{ cat "$dir/log/pgpool.out" >&2; ce_die "pgpool did not start"; }
	PGPOOL_HOST=127.0.0.1
	PGPOOL_PORT=$port
}

NAMES="direct hit hit_unix matview select1"
if [ "$BENCH_PGPOOL" != 0 ]; then
	pgpool_dir=$(mktemp -d /tmp/cache_ext-pgpool.XXXXXX)
	CE_CLEANUP_HOOKS+=("rm -rf '$pgpool_dir'")
	start_pgpool "$pgpool_dir"
	ce_note "pgpool-II $(pgpool --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p') on port $PGPOOL_PORT, query cache in shared memory"
	# warm its cache: the first run of the text stores it
	for mode in simple extended; do
		pgbench -n -M "$mode" -h "$PGPOOL_HOST" -p "$PGPOOL_PORT" -t 3 -f "$bench_dir/direct.sql" >/dev/null 2>&1 ||
			ce_die "pgbench through pgpool failed"
	done
	NAMES="$NAMES pgpool_simple pgpool_prepared"
fi

declare -A TPS LAT

redis_url() {
	psql -X -q -c "ALTER SYSTEM SET cache_ext.redis_url = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

run() {
	local name=$1 clients=$2 out
	if [ "$name" = hit_unix ]; then redis_url "unix://$CE_REDIS_SOCKET"; fi
	local mode=prepared target=() file=$name
	case $name in
		pgpool_simple) mode=simple target=(-h "$PGPOOL_HOST" -p "$PGPOOL_PORT") file=direct ;;
		pgpool_prepared) mode=prepared target=(-h "$PGPOOL_HOST" -p "$PGPOOL_PORT") file=direct ;;
	esac
	out=$(pgbench -n -M "$mode" "${target[@]}" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" -f "$bench_dir/$file.sql" 2>&1) || { echo "$out"; ce_die "pgbench $name failed"; }
	if [ "$name" = hit_unix ]; then redis_url "redis://127.0.0.1:$CE_REDIS_PORT/0"; fi
	TPS[$name,$clients]+=" $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)"
	LAT[$name,$clients]+=" $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

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
if [ "$BENCH_PGPOOL" != 0 ]; then
	echo "  hit TPS / pgpool simple-protocol hit TPS, 8 clients:  $(ratio "${TPS[hit,8]}" "${TPS[pgpool_simple,8]}")"
	echo "  hit TPS / pgpool prepared hit TPS, 8 clients:        $(ratio "${TPS[hit,8]}" "${TPS[pgpool_prepared,8]}")"
fi

# The chart: TPS by variant at 1 and 8 clients (the README shows it).
if [ -n "$BENCH_CHART" ]; then
	mkdir -p "$(dirname "$BENCH_CHART")"
	data=$bench_dir/chart.dat
	{
		echo "variant 1 8"
		for name in $NAMES; do
			echo "$name ${TPS[$name,1]} ${TPS[$name,8]}"
		done
	} >"$data"
	gnuplot <<PLOT || ce_die "gnuplot failed"
set terminal svg size 900,480 font "sans,12" background rgb "white"
set output "$BENCH_CHART"
set title "cache hit: TPS by variant (pgbench, $BENCH_SECONDS s x $BENCH_REPEAT rounds, median; $(nproc) cores)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "transactions per second"
set logscale y
set yrange [10:*]
set grid ytics
set key top left
set xtics rotate by -30
plot "$data" using 2:xtic(1) title "1 client", "" using 3 title "8 clients"
PLOT
	ce_log "chart: $BENCH_CHART"
fi

