#!/usr/bin/env bash
# test/bench/hit_bench.sh - what a cache hit costs, side by side in one run.
#
# Starts its own throwaway Redis and two PostgreSQL servers (test/lib/common.sh,
# test/bench/bench_lib.sh), identical but for the local tier:
#   l1  cache_ext.local_cache_size = BENCH_L1_SIZE (default 64MB)
#   l2  cache_ext.local_cache_size = 0 (every hit is a Redis hit)
# local_cache_size takes effect at server start only, so two servers run side
# by side (no restart between variants: the variants stay interleaved).  Both
# use the one Redis, each with its own cache_ext.key_prefix.  Each loads the
# same sales table; then pgbench -M prepared, with 1 and 8 clients, runs:
#   direct       the expensive aggregate itself                         (l1)
#   l1_hit       the same query through cached_query(): a HIT (local),
#                no call to Redis                                       (l1)
#   l2_hit       the same, a HIT from Redis over TCP on 127.0.0.1       (l2)
#   l2_hit_unix  the same, Redis over its unix socket (BENCH_UNIX=1)    (l2)
#   matview      SELECT * FROM a materialized view holding the result   (l1)
#   select1      SELECT 1 (the floor: a round trip to PostgreSQL)       (l1)
#   pgpool_simple, pgpool_prepared
#                the expensive aggregate through pgpool-II 4.3 (Debian's
#                pgpool2) in front of server l1, its query cache in shared
#                memory (memory_cache_enabled, memqcache_method = shmem): the
#                peer's hit, with pgbench's simple and extended protocols
#                (BENCH_PGPOOL=0 leaves them out)
# The baselines (direct, matview, SELECT 1, pgpool) run against server l1,
# the one with the local tier, so that the local tier's ratios compare
# figures of one server.
#
# First, over BENCH_HITS (default 2000) hits in one connection on each
# server, it prints the round trips to Redis and the plans built per hit
# (cache_stats), the local hits (l1_hits), and the commands Redis saw per
# hit (INFO commandstats): an L1 hit makes none, an L2 hit one GETRANGE and
# one MGET.  Then TPS, average latency, with 1 client the backend's CPU time
# per call (/proc/PID/schedstat over the middle of the run: less sensitive
# to other load than the latency), and the ratios issue 12 targets:
#   L1 hit TPS / matview TPS, 8 clients           >= 0.9
#   L1 hit latency / matview latency, 1 client    <= 1.2
#   L1 hit TPS / pgpool simple-protocol TPS, 8    >= 1.5
#   L2 hit: no slower than before (0.4: compare with the README's figures)
# Nothing here asserts a timing.  The load average is printed at the start,
# after each round and at the end: on a shared machine, read the figures
# with it.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3); the variants are interleaved within a
#                  round so that drift on a shared machine hits them alike,
#                  and each figure is the median over the rounds
#   BENCH_ROWS     rows in sales (default 1000000)
#   BENCH_L1_SIZE  local_cache_size of server l1 (default 64MB)
#   BENCH_UNIX=1   add l2_hit_unix
#   BENCH_PGPOOL=0 leave pgpool out
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#   BENCH_CHART    where to draw the chart (gnuplot, SVG: TPS by variant at 1
#                  and 8 clients; default docs/img/hit_bench.svg; "" for none)
#   BENCH_PERF=1   after the runs, perf record one backend serving L1 hits and
#                  one serving the matview (BENCH_PERF_CLIENTS, default 1;
#                  BENCH_SECONDS each) and print where their time goes
# With the defaults: 2 servers x 1,000,000 rows, then 3 rounds x 14 runs x
# 10 s: about 9 minutes.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_L1_SIZE=${BENCH_L1_SIZE:-64MB}
BENCH_UNIX=${BENCH_UNIX:-0}
BENCH_PERF=${BENCH_PERF:-0}

BENCH_PGPOOL=${BENCH_PGPOOL:-1}
BENCH_CHART=${BENCH_CHART-$CE_ROOT/docs/img/hit_bench.svg}
[ "$BENCH_PGPOOL" = 0 ] || CE_PACKAGES+=(pgpool2)
[ -z "$BENCH_CHART" ] || CE_PACKAGES+=(gnuplot-nox)
[ "$BENCH_PERF" = 0 ] || CE_PACKAGES+=(linux-perf)

bench_setup
ce_log "load average at start: $(bench_load)"
# a long TTL: no entry expires during the run (an expired one is a miss)
bench_start_pg l1 "cache_ext.local_cache_size = '$BENCH_L1_SIZE'
cache_ext.key_prefix = 'bench_l1:'
cache_ext.default_ttl = 3600"
bench_start_pg l2 "cache_ext.local_cache_size = 0
cache_ext.key_prefix = 'bench_l2:'
cache_ext.default_ttl = 3600"

QUERY="SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM sales GROUP BY region ORDER BY region"
COLS="region int, n bigint, total numeric, mean numeric"

for srv in l1 l2; do
	ce_log "server $srv: loading $BENCH_ROWS rows"
	bench_psql "$srv" -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE sales (id bigint PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT g, g % 50, (g::bigint * 7919 % 100000) / 100.0 FROM generate_series(1, $BENCH_ROWS) g;
ANALYZE sales;
CREATE MATERIALIZED VIEW sales_mv AS $QUERY;
ANALYZE sales_mv;
SELECT cache_track('sales');
SQL
done

# Warm each server's cache and check that it hits the tier it is meant to.
warm_check() {
	local srv=$1 want=$2 got
	got=$(bench_psql "$srv" -At -v ON_ERROR_STOP=1 <<SQL
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
)
	[ "$got" = "$want" ] || ce_die "server $srv: cache_status is '$got', not '$want'"
}
warm_check l1 "HIT (local)"
warm_check l2 HIT
ce_note "server l1: $(bench_psql l1 -At -F ', ' -c "SELECT 'local_cache ' || local_cache, 'size ' || pg_size_pretty(local_cache_size::bigint) FROM cache_health()")"

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
echo "$QUERY;" >"$bench_dir/direct.sql"
echo "SELECT * FROM cached_query('$QUERY') AS t($COLS);" >"$bench_dir/hit.sql"
echo "SELECT * FROM sales_mv;" >"$bench_dir/matview.sql"
echo "SELECT 1;" >"$bench_dir/select1.sql"

# Per hit, over a fixed number of hits in one connection: round trips to
# Redis and plans built (cache_stats), local hits, and what reached Redis
# (its commandstats).  An L1 hit: 0 round trips, 0 commands; an L2 hit: 1
# round trip, one GETRANGE and one MGET; both: no plan but the
# connection's first call's.
redis_calls() {
	redis-cli -h 127.0.0.1 -p "$CE_REDIS_PORT" INFO commandstats |
		sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0
}
HITS_N=${BENCH_HITS:-2000}
per_hit() {
	local srv=$1 hits rts plans l1h gr0 mg0 gr1 mg1
	bench_psql "$srv" -c "SELECT cache_stats_reset()" >/dev/null
	gr0=$(redis_calls getrange)
	mg0=$(redis_calls mget)
	# shellcheck disable=SC2046
	pgbench -n -M prepared $(bench_target "$srv") -c 1 -t "$HITS_N" -f "$bench_dir/hit.sql" >/dev/null 2>&1 ||
		ce_die "pgbench (hit count, server $srv) failed"
	read -r hits rts plans l1h < <(bench_psql "$srv" -At -F ' ' -c "SELECT hits, round_trips, plans_built, l1_hits FROM cache_stats")
	gr1=$(redis_calls getrange)
	mg1=$(redis_calls mget)
	awk -v s="$srv" -v n="$HITS_N" -v h="$hits" -v l="$l1h" -v r="$rts" -v p="$plans" \
		-v g=$((gr1 - gr0)) -v m=$((mg1 - mg0)) 'BEGIN {
		printf "  server %s, %d calls in one connection: %d hits (%d local); per hit: %.3f round trips to Redis, %.4f plans built (%d in all), Redis commands GETRANGE %.3f, MGET %.3f\n",
			s, n, h, l, r / h, p / h, p, g / h, m / h }'
}
ce_log "per hit"
per_hit l1
per_hit l2

# pgpool-II in front of server l1: raw mode, one backend on its unix
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
backend_hostname0 = '${BENCH_PG_HOST[l1]}'
backend_port0 = ${BENCH_PG_PORT[l1]}
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
	touch "$dir/pcp.conf" "$dir/pool_hba.conf"
	pgpool -n -f "$conf" -F "$dir/pcp.conf" -a "$dir/pool_hba.conf" >"$dir/log/pgpool.out" 2>&1 &
	PGPOOL_PID=$!
	CE_CLEANUP_HOOKS+=("kill $PGPOOL_PID 2>/dev/null; wait $PGPOOL_PID 2>/dev/null")
	for _ in $(seq 100); do
		psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -At -c 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.1
	done
	psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -At -c 'SELECT 1' >/dev/null ||
		{ cat "$dir/log/pgpool.out" >&2; ce_die "pgpool did not start"; }
	PGPOOL_PORT=$port
}

NAMES="direct l1_hit l2_hit"
[ "$BENCH_UNIX" = 0 ] || NAMES="$NAMES l2_hit_unix"
NAMES="$NAMES matview select1"
if [ "$BENCH_PGPOOL" != 0 ]; then
	pgpool_dir=$(mktemp -d /tmp/cache_ext-pgpool.XXXXXX)
	CE_CLEANUP_HOOKS+=("rm -rf '$pgpool_dir'")
	start_pgpool "$pgpool_dir"
	ce_note "pgpool-II $(pgpool --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p') on port $PGPOOL_PORT in front of server l1, query cache in shared memory"
	# warm its cache: the first run of the text stores it
	for mode in simple extended; do
		pgbench -n -M "$mode" -h 127.0.0.1 -p "$PGPOOL_PORT" -U postgres -d postgres -t 3 -f "$bench_dir/direct.sql" >/dev/null 2>&1 ||
			ce_die "pgbench through pgpool failed"
	done
	NAMES="$NAMES pgpool_simple pgpool_prepared"
fi

declare -A TPS LAT CPU LABEL
LABEL=([direct]="direct query" [l1_hit]="L1 hit (local)" [l2_hit]="L2 hit (Redis TCP)"
	[l2_hit_unix]="L2 hit (Redis unix)" [matview]="materialized view" [select1]="SELECT 1"
	[pgpool_simple]="pgpool simple" [pgpool_prepared]="pgpool prepared")

redis_url() {
	bench_psql l2 -c "ALTER SYSTEM SET cache_ext.redis_url = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

# backend_cpu SERVER APPNAME: the CPU time (from /proc/PID/schedstat) its
# backend of that application_name spends over the middle of the run,
# printed as "ns_on_cpu ns_elapsed"; "" if it was not found.
backend_cpu() {
	local pid c0 c1 t0 t1 window
	sleep 0.5
	pid=$(bench_backend_pid "$1" "$2")
	[ -n "$pid" ] && [ -r "/proc/$pid/schedstat" ] || return 0
	window=$(awk -v s="$BENCH_SECONDS" 'BEGIN { print (s > 1.5) ? s - 1 : 0.5 }')
	read -r c0 _ </proc/"$pid"/schedstat
	t0=$(date +%s%N)
	sleep "$window"
	read -r c1 _ </proc/"$pid"/schedstat || return 0
	t1=$(date +%s%N)
	echo "$((c1 - c0)) $((t1 - t0))"
}

# run NAME CLIENTS: one pgbench run of the variant, its TPS and average
# latency appended to TPS[NAME,CLIENTS] and LAT[NAME,CLIENTS]; with 1
# client, the backend's CPU time per call (in microseconds) to CPU[NAME].
run() {
	local name=$1 clients=$2 out mode=prepared target file server='' pgb cpu=''
	file=$name
	case $name in
		direct | l1_hit | matview | select1) server=l1 ;;
		l2_hit | l2_hit_unix) server=l2 ;;
		pgpool_*) target="-h 127.0.0.1 -p $PGPOOL_PORT -U postgres -d postgres" file=direct ;;
	esac
	[ -z "$server" ] || target=$(bench_target "$server")
	case $name in
		l1_hit | l2_hit | l2_hit_unix) file=hit ;;
		pgpool_simple) mode=simple ;;
	esac
	if [ "$name" = l2_hit_unix ]; then redis_url "unix://$CE_REDIS_SOCKET"; fi
	# shellcheck disable=SC2086
	PGAPPNAME=bench_$name pgbench -n -M "$mode" $target -c "$clients" -j "$((clients < 2 ? 1 : 2))" \
		-T "$BENCH_SECONDS" -f "$bench_dir/$file.sql" >"$bench_dir/pgbench.out" 2>&1 &
	pgb=$!
	if [ "$clients" = 1 ] && [ -n "$server" ]; then cpu=$(backend_cpu "$server" "bench_$name"); fi
	wait "$pgb" || { cat "$bench_dir/pgbench.out"; ce_die "pgbench $name failed"; }
	out=$(cat "$bench_dir/pgbench.out")
	if [ "$name" = l2_hit_unix ]; then redis_url "redis://127.0.0.1:$CE_REDIS_PORT/0"; fi
	TPS[$name,$clients]+=" $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)"
	LAT[$name,$clients]+=" $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
	if [ -n "$cpu" ]; then
		CPU[$name]+=" $(awk -v c="${cpu% *}" -v t="${cpu#* }" -v tps="${TPS[$name,$clients]##* }" \
			'BEGIN { printf "%.2f", c / 1000 / (tps * t / 1e9) }')"
	fi
}

ce_log "pgbench -M prepared, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	for clients in 1 8; do
		for name in $NAMES; do
			run "$name" "$clients"
		done
	done
	ce_note "round $round done, load average $(bench_load)"
done
printf '  %-20s %7s %12s %10s %14s %16s\n' variant clients TPS "lat (ms)" "TPS / matview" "backend us/call"
for clients in 1 8; do
	for name in $NAMES; do
		TPS[$name,$clients]=$(bench_median "${TPS[$name,$clients]}")
		LAT[$name,$clients]=$(bench_median "${LAT[$name,$clients]}")
	done
	for name in $NAMES; do
		cpu=-
		if [ "$clients" = 1 ] && [ -n "${CPU[$name]:-}" ]; then cpu=$(bench_median "${CPU[$name]}"); fi
		printf '  %-20s %7d %12.1f %10.3f %14s %16s\n' "${LABEL[$name]}" "$clients" \
			"${TPS[$name,$clients]}" "${LAT[$name,$clients]}" \
			"$(bench_ratio "${TPS[$name,$clients]}" "${TPS[matview,$clients]}")" "$cpu"
	done
done
LOAD_END=$(bench_load)

for srv in l1 l2; do
	ce_note "server $srv: $(bench_psql "$srv" -At -F ' ' -c "SELECT 'hits', hits, 'l1_hits', l1_hits, 'misses', misses, 'bypasses', bypasses, 'errors', errors FROM cache_stats")"
done

# target: print "ratio (target OP bound: met|MISSED)"
target() {
	local r=$1 op=$2 bound=$3
	awk -v r="$r" -v op="$op" -v b="$bound" 'BEGIN {
		ok = (op == ">=") ? (r >= b) : (r <= b)
		printf "%s   (target %s %s: %s)", r, op, b, ok ? "met" : "MISSED" }'
}
ce_log "ratios (same run; load average at the end $LOAD_END)"
echo "  L1 hit TPS / matview TPS, 8 clients:           $(target "$(bench_ratio "${TPS[l1_hit,8]}" "${TPS[matview,8]}")" '>=' 0.9)"
echo "  L1 hit latency / matview latency, 1 client:    $(target "$(bench_ratio "${LAT[l1_hit,1]}" "${LAT[matview,1]}")" '<=' 1.2)"
if [ "$BENCH_PGPOOL" != 0 ]; then
	echo "  L1 hit TPS / pgpool simple TPS, 8 clients:     $(target "$(bench_ratio "${TPS[l1_hit,8]}" "${TPS[pgpool_simple,8]}")" '>=' 1.5)"
	echo "  L1 hit TPS / pgpool prepared TPS, 8 clients:   $(bench_ratio "${TPS[l1_hit,8]}" "${TPS[pgpool_prepared,8]}")"
fi
echo "  L1 hit latency / SELECT 1 latency, 1 client:   $(bench_ratio "${LAT[l1_hit,1]}" "${LAT[select1,1]}")"
if [ -n "${CPU[l1_hit]:-}" ] && [ -n "${CPU[matview]:-}" ]; then
	echo "  L1 hit / matview backend CPU per call, 1 client: $(bench_ratio "$(bench_median "${CPU[l1_hit]}")" "$(bench_median "${CPU[matview]}")")   (the load-independent view of the latency ratio)"
fi
echo "  L1 hit TPS / L2 hit TPS, 1 client, 8 clients:  $(bench_ratio "${TPS[l1_hit,1]}" "${TPS[l2_hit,1]}"), $(bench_ratio "${TPS[l1_hit,8]}" "${TPS[l2_hit,8]}")"
echo "  L2 hit: $(printf '%.3f' "${LAT[l2_hit,1]}") ms at 1 client, $(printf '%.0f' "${TPS[l2_hit,8]}") TPS at 8 clients (no target but no slower than 0.4)"
echo "  L2 hit TPS / matview TPS, 8 clients:           $(bench_ratio "${TPS[l2_hit,8]}" "${TPS[matview,8]}")   (0.1's target >= 0.5)"
echo "  L2 hit latency / matview latency, 1 client:    $(bench_ratio "${LAT[l2_hit,1]}" "${LAT[matview,1]}")   (0.1's target <= 2.5)"
if [ "$BENCH_UNIX" != 0 ]; then
	echo "  L2 hit (unix socket) TPS / matview TPS, 8 clients: $(bench_ratio "${TPS[l2_hit_unix,8]}" "${TPS[matview,8]}")"
fi

# The chart: TPS by variant at 1 and 8 clients (the README shows it).
if [ -n "$BENCH_CHART" ]; then
	mkdir -p "$(dirname "$BENCH_CHART")"
	data=$bench_dir/chart.dat
	for name in $NAMES; do
		echo "\"${LABEL[$name]}\" ${TPS[$name,1]} ${TPS[$name,8]}"
	done >"$data"
	gnuplot <<PLOT || ce_die "gnuplot failed"
set terminal svg size 960,520 font "sans,12" background rgb "white"
set output "$BENCH_CHART"
set title "cache_ext hit benchmark: TPS by variant\\n(pgbench -M prepared, median of $BENCH_REPEAT x $BENCH_SECONDS s; $(nproc) CPUs, load average $LOAD_END)" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "transactions per second (log scale)"
set logscale y
set yrange [1:*]
set grid ytics
set key top left
set xtics nomirror font ",10" noenhanced
plot "$data" using 2:xtic(1) title "1 client" lc rgb "#4a7ab5", \\
	"" using 3 title "8 clients" lc rgb "#e08a2c", \\
	"" using (\$0 - 1.0 / 6):2:(sprintf("%.0f", \$2)) with labels center offset 0,0.6 font ",8" notitle, \\
	"" using (\$0 + 1.0 / 6):3:(sprintf("%.0f", \$3)) with labels center offset 0,0.6 font ",8" notitle
PLOT
	ce_log "chart: $BENCH_CHART"
fi

# Where an L1 hit's time goes: one backend serving L1 hits, and one serving
# the materialized view, profiled (perf, DWARF call graphs): the top
# functions by self time, then the parts of a call by time inclusive of
# callees, side by side, in % of each backend's CPU time and in
# microseconds per call (that share of the backend CPU per call measured
# above).
perf_record() {
	local name=$1 file=$2 clients=${BENCH_PERF_CLIENTS:-1} pgb pid
	# shellcheck disable=SC2046
	PGAPPNAME=bench_perf_$name pgbench -n -M prepared $(bench_target l1) -c "$clients" -j "$((clients < 2 ? 1 : 2))" \
		-T "$((BENCH_SECONDS + 4))" -f "$bench_dir/$file.sql" >/dev/null 2>&1 &
	pgb=$!
	sleep 2
	pid=$(bench_backend_pid l1 "bench_perf_$name")
	[ -n "$pid" ] || ce_die "no backend to profile"
	perf record -q --call-graph dwarf,16384 -F 2000 -o "$bench_dir/perf_$name.data" -p "$pid" -- sleep "$BENCH_SECONDS" \
		>/dev/null 2>&1 || ce_die "perf record failed"
	wait "$pgb" || true
	ce_note "$name: self time, top functions (backend $pid, ${clients} client(s); load average $(bench_load)):"
	perf report -i "$bench_dir/perf_$name.data" --no-children --percent-limit 0.8 --stdio \
		--sort dso,symbol -g none 2>/dev/null | awk '/^ *[0-9.]+%/ { printf "    %7s  %-18s %s\n", $1, $2, $4 }' | head -25
	perf report -i "$bench_dir/perf_$name.data" --children --stdio --sort symbol -g none 2>/dev/null |
		awk '/^ *[0-9.]+%/ { sub("%", "", $1); if (!seen[$4]++) print $4, $1 }' >"$bench_dir/incl_$name"
	[ -z "${BENCH_PERF_KEEP:-}" ] || cp "$bench_dir/perf_$name.data" "$BENCH_PERF_KEEP.$name"
}
if [ "$BENCH_PERF" != 0 ]; then
	ce_log "perf: one backend serving L1 hits, one serving the materialized view, $BENCH_SECONDS s each"
	perf_record l1_hit hit
	perf_record matview matview
	ce_note "time inclusive of callees: % of the backend's CPU, and us per call (from the backend CPU per call above)"
	printf '    %-30s %8s %8s %8s %8s\n' function "L1 %" "L1 us" "mv %" "mv us"
	for sym in PortalRun standard_ExecutorRun ExecMakeTableFunctionResult cached_query_call \
		settings_material get_prepared GetCachedPlan check_privileges call_scopes bypass_reasons \
		entry_key KeyHash L1Lookup EntryLoad CeEntryParse decode_rows tuplestore_putvalues finish_call \
		ExecScan printtup numeric_out secure_write secure_read PortalStart standard_ExecutorStart \
		standard_ExecutorEnd CommitTransactionCommand StartTransactionCommand; do
		awk -v s="$sym" -v cl="$(bench_median "${CPU[l1_hit]:-0}")" -v cm="$(bench_median "${CPU[matview]:-0}")" \
			-v fl="$bench_dir/incl_l1_hit" -v fm="$bench_dir/incl_matview" 'BEGIN {
			while ((getline l < fl) > 0) { split(l, a, " "); if (a[1] == s) pl = a[2] }
			while ((getline l < fm) > 0) { split(l, a, " "); if (a[1] == s) pm = a[2] }
			if (pl == "" && pm == "") exit
			printf "    %-30s %8.2f %8.2f %8.2f %8.2f\n", s, pl, pl * cl / 100, pm, pm * cm / 100 }'
	done
fi
