#!/usr/bin/env bash
# test/bench/cluster_bench.sh - what a Redis Cluster costs against a single
# Redis, side by side in one run (issue 13).
#
# Starts its own throwaway Redis (test/lib/common.sh), a Redis Cluster of
# three masters and no replica (redis-server --cluster-enabled yes, each
# with its own cluster bus port, created with redis-cli --cluster create),
# and two PostgreSQL servers (test/bench/bench_lib.sh), identical but for
# cache_ext.redis_url:
#   single   redis://127.0.0.1:<the single Redis>/0
#   cluster  redis-cluster://<master 1>,<master 2> (two seeds)
# Both with cache_ext.local_cache_size = 0 (every hit is a Redis hit), all
# on 127.0.0.1 / unix sockets, every process stopped by PID at exit.  Each
# server gets the same data: a 200,000-row table whose 10-row aggregate is
# the cached query, and pgbench -i at BENCH_SCALE.  Then, in every round
# (the servers alternate within a round so that drift on a shared machine
# hits both alike; each figure is the median over the rounds):
#   hits     pgbench -M prepared, the cached_query() HIT, 1 client
#            (latency) and 8 clients (-j 2; TPS)
#   commits  pgbench -M prepared tpcb-like, 1 and 8 clients, with the four
#            pgbench tables untracked, then tracked (cache_track): the
#            tracked run's TPS over the untracked run's is what the
#            generation bumps cost a commit, to a single Redis or to the
#            cluster (async_invalidation: the commit queue's worker sends
#            them).  Before every run: VACUUM branches and tellers,
#            TRUNCATE history, CHECKPOINT, outside the measured window.
# It prints per-hit round trips (cache_stats), which master of the cluster
# serves the database's generations (its hash slot) and how many of the
# 100 entries each master holds (0.10: entries spread over the masters, a
# lookup reads its entry and its generations in parallel), the medians of TPS, latency and (1 client) the
# backend's CPU time per transaction, the commands Redis processed per
# transaction and the connections it accepted (a client that reconnected
# would show there), the ratios cluster/single and tracked/untracked, and
# the load average at the start, after each round and at the end.
# Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 5)
#   BENCH_REPEAT   rounds (default 3)
#   BENCH_SCALE    pgbench -i scale (default 5)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#   CE_PG_EXTRA_CONF    more postgresql.conf lines for both servers (the
#                  harness runs with fsync = off: a commit is cheaper than
#                  on a real server, so the bumps' relative cost is an
#                  upper bound)
# With the defaults: 3 rounds x 12 runs x 5 s, plus setup: about 4 minutes.
#
# Run as root from the repository root:
#   test/bench/cluster_bench.sh
#   BENCH_SECONDS=10 BENCH_REPEAT=5 test/bench/cluster_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_SCALE=${BENCH_SCALE:-5}

TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
SERVERS="single cluster"
CLIENTS="1 8"

bench_setup
ce_log "load average at start: $(bench_load)"

# ---- the cluster: three masters, stopped by PID at exit -------------------------
bench_pid_dir CLUSTER_DIR cluster

NODES=()
for i in 1 2 3; do
	port=$(ce_free_port)
	bus=$(ce_free_port)
	mkdir -p "$CLUSTER_DIR/$i"
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--cluster-enabled yes --cluster-config-file "$CLUSTER_DIR/$i/nodes.conf" \
		--cluster-port "$bus" --daemonize yes --pidfile "$CLUSTER_DIR/$i/redis.pid" \
		--dir "$CLUSTER_DIR/$i" --logfile "$CLUSTER_DIR/$i/redis.log" >/dev/null
	NODES+=("127.0.0.1:$port")
done
for n in "${NODES[@]}"; do
	for _ in $(seq 100); do
		[ "$(redis-cli -h 127.0.0.1 -p "${n#*:}" PING 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
done
redis-cli --cluster create "${NODES[@]}" --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
	{ cat "$CLUSTER_DIR/create.log"; ce_die "redis-cli --cluster create failed"; }
for n in "${NODES[@]}"; do
	for _ in $(seq 200); do
		redis-cli -h 127.0.0.1 -p "${n#*:}" CLUSTER INFO | grep -q '^cluster_state:ok' && break
		sleep 0.1
	done
	redis-cli -h 127.0.0.1 -p "${n#*:}" CLUSTER INFO | grep -q '^cluster_state:ok' ||
		ce_die "cluster node $n is not ok"
done
ce_note "redis cluster: ${NODES[*]} (3 masters, no replica)"

# ---- two PostgreSQL servers ---------------------------------------------------------
# a long TTL: no entry expires during the run (an expired one is a miss)
bench_start_pg single "cache_ext.local_cache_size = 0
cache_ext.default_ttl = 3600"
bench_start_pg cluster "cache_ext.local_cache_size = 0
cache_ext.default_ttl = 3600
cache_ext.redis_url = 'redis-cluster://${NODES[0]},${NODES[1]}'"

# 100 results (one parameter), so that with the cluster their entries
# spread over the masters (0.10): about two lookups in three read their
# entry from another master than their generations' (in parallel)
QUERY='SELECT k, sum(v) + $1 FROM facts GROUP BY k'
NRESULTS=100
bench_dir=$(mktemp -d)
chmod 755 "$bench_dir"
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
printf '\\set id random(1, %d)\nSELECT * FROM cached_query(%s, CAST(:id AS int)) AS t(k int, s bigint);\n' \
	"$NRESULTS" "'$QUERY'" >"$bench_dir/hit.sql"

q() {
	local srv=$1
	shift
	bench_psql "$srv" -At -v ON_ERROR_STOP=1 "$@"
}

for srv in $SERVERS; do
	ce_log "server $srv: pgbench -i -s $BENCH_SCALE and the hit's table"
	q "$srv" -c "CREATE EXTENSION cache_ext" \
		-c "CREATE TABLE facts AS SELECT g % 10 AS k, g AS v FROM generate_series(1, 200000) g" \
		-c "ANALYZE facts" -c "SELECT cache_track('facts')" >/dev/null
	# shellcheck disable=SC2046
	pgbench $(bench_target "$srv") -i -q -s "$BENCH_SCALE" 2>&1 | tail -n 1 | sed 's/^/    /'
	# the first calls deliver the server-wide bump a new cluster starts
	# with, then store the results
	for pass in 1 2; do
		q "$srv" -c "SELECT count(*) FROM generate_series(1, $NRESULTS) i,
			LATERAL cached_query('$QUERY', i::int) AS t(k int, s bigint)" >/dev/null
	done
	got=$(q "$srv" -c "SELECT count(*) FROM cached_query('$QUERY', $NRESULTS) AS t(k int, s bigint)" \
		-c "SELECT cache_status()" | tail -1)
	[ "$got" = HIT ] || ce_die "server $srv: the warm call is '$got', not a HIT"
	ce_note "server $srv: $(q "$srv" -F ' ' -c "SELECT 'mode', redis_mode, 'master', redis_master FROM cache_health()")"
done
for n in "${NODES[@]}"; do
	ce_note "cluster master $n holds $(redis-cli -h 127.0.0.1 -p "${n#*:}" --scan --pattern '*}:e:*' | wc -l) entries"
done

# tracked or untracked: the four pgbench tables
set_mode() {
	local srv=$1 mode=$2 fn want t
	case "$mode" in
		tracked)   fn=cache_track;   want=4 ;;
		untracked) fn=cache_untrack; want=0 ;;
	esac
	for t in $TABLES; do
		q "$srv" -c "SELECT $fn('$t')" >/dev/null
	done
	got=$(q "$srv" -c "SELECT count(*) FROM cache_tracked WHERE relation::text LIKE 'pgbench_%'")
	[ "$got" = "$want" ] || ce_die "server $srv: $got pgbench tables tracked after $fn, expected $want"
}

# A tracked write reaches Redis as a bump on both servers.
for srv in $SERVERS; do
	set_mode "$srv" tracked
	before=$(q "$srv" -c "SELECT invalidations_sent FROM cache_stats")
	q "$srv" -c "UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1" >/dev/null
	sleep 0.3
	after=$(q "$srv" -c "SELECT invalidations_sent FROM cache_stats")
	[ "$after" -gt "$before" ] || ce_die "server $srv: a tracked write sent no bump: is Redis reachable?"
	set_mode "$srv" untracked
done

# Per hit, over 2000 hits in one connection: round trips to Redis.
ce_log "per hit"
for srv in $SERVERS; do
	q "$srv" -c "SELECT cache_stats_reset()" >/dev/null
	# shellcheck disable=SC2046
	pgbench -n -M prepared $(bench_target "$srv") -c 1 -t 2000 -f "$bench_dir/hit.sql" >/dev/null 2>&1 ||
		ce_die "pgbench (hit count, server $srv) failed"
	read -r hits rts misses byp < <(q "$srv" -F ' ' -c "SELECT hits, round_trips, misses, bypasses FROM cache_stats")
	ce_note "server $srv: $hits hits, $misses misses, $byp bypasses; $(bench_ratio "$rts" "$hits") round trips per hit"
done

declare -A TPS LAT PAIRED CPU XACTS CMDS CONNS

# The ports of a server's Redis: the single one, or the cluster's masters.
redis_ports() {
	local n
	if [ "$1" = single ]; then
		echo "$CE_REDIS_PORT"
	else
		for n in "${NODES[@]}"; do echo "${n#*:}"; done
	fi
}
# redis_stats SERVER: "commands connections" (INFO stats
# total_commands_processed, total_connections_received), summed over the
# server's Redis; one INFO per port, whose own command is not counted yet
# and whose own connection is.
redis_stats() {
	local p cmds=0 conns=0 c k
	for p in $(redis_ports "$1"); do
		read -r c k < <(redis-cli -h 127.0.0.1 -p "$p" INFO stats | tr -d '\r' |
			awk -F: '$1 == "total_commands_processed" { c = $2 }
				$1 == "total_connections_received" { k = $2 } END { print c + 0, k + 0 }')
		cmds=$((cmds + c))
		conns=$((conns + k))
	done
	echo "$cmds $conns"
}

# backend_cpu SERVER APPNAME: the CPU time (/proc/PID/schedstat) of its
# backend of that application_name over the middle of the run, as
# "ns_on_cpu ns_elapsed"; "" if it was not found.
backend_cpu() {
	local pid c0 c1 t0 t1 window
	sleep 0.5
	pid=$(bench_backend_pid "$1" "$2")
	[ -n "$pid" ] && [ -r "/proc/$pid/schedstat" ] || return 0
	window=$(awk -v s="$BENCH_SECONDS" 'BEGIN { print (s > 1.5) ? s - 1 : 0.5 }')
	read -r c0 _ <"/proc/$pid/schedstat"
	t0=$(date +%s%N)
	sleep "$window"
	read -r c1 _ <"/proc/$pid/schedstat" || return 0
	t1=$(date +%s%N)
	echo "$((c1 - c0)) $((t1 - t0))"
}

# run KEY SERVER CLIENTS PGBENCH-ARGS...: one pgbench run; its TPS and
# average latency appended to TPS[KEY], LAT[KEY]; the transactions, the
# commands the server's Redis processed and the connections it accepted
# added to XACTS[KEY], CMDS[KEY], CONNS[KEY]; with 1 client, the
# backend's CPU time per transaction (us) appended to CPU[KEY].
run() {
	local key=$1 srv=$2 clients=$3 out tps lat n c0 c1 k0 k1 np pgb cpu=''
	shift 3
	read -r c0 k0 < <(redis_stats "$srv")
	# shellcheck disable=SC2046
	PGAPPNAME=bench_run pgbench $(bench_target "$srv") -n -M prepared -c "$clients" \
		-j "$((clients < 2 ? 1 : 2))" -T "$BENCH_SECONDS" "$@" >"$bench_dir/pgbench.out" 2>&1 &
	pgb=$!
	if [ "$clients" = 1 ]; then cpu=$(backend_cpu "$srv" bench_run); fi
	wait "$pgb" || { cat "$bench_dir/pgbench.out"; ce_die "pgbench ($key) failed"; }
	out=$(cat "$bench_dir/pgbench.out")
	read -r c1 k1 < <(redis_stats "$srv")
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$tps" ] && [ -n "$lat" ] && [ -n "$n" ] || { echo "$out"; ce_die "could not parse pgbench output ($key)"; }
	TPS[$key]+=" $tps"
	LAT[$key]+=" $lat"
	XACTS[$key]=$((${XACTS[$key]:-0} + n))
	# less the first INFO's command and the second one's connection, per port
	np=$(redis_ports "$srv" | wc -l)
	CMDS[$key]=$((${CMDS[$key]:-0} + c1 - c0 - np))
	CONNS[$key]=$((${CONNS[$key]:-0} + k1 - k0 - np))
	if [ -n "$cpu" ]; then
		CPU[$key]+=" $(awk -v c="${cpu% *}" -v t="${cpu#* }" -v tps="$tps" \
			'BEGIN { printf "%.1f", c / 1000 / (tps * t / 1e9) }')"
	fi
	printf '    round %d  %-26s %9.1f TPS  %7.3f ms  %7s us CPU/xact\n' "$round" "$key" "$tps" "$lat" \
		"${cpu:+${CPU[$key]##* }}"
}

ce_log "pgbench -M prepared, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	for c in $CLIENTS; do
		for srv in $SERVERS; do
			run "hits:$srv:$c" "$srv" "$c" -f "$bench_dir/hit.sql"
		done
	done
	for c in $CLIENTS; do
		for srv in $SERVERS; do
			for mode in untracked tracked; do
				set_mode "$srv" "$mode"
				q "$srv" -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" \
					-c "TRUNCATE pgbench_history" -c "CHECKPOINT" >/dev/null
				run "commits:$srv:$mode:$c" "$srv" "$c" -b tpcb-like
			done
			# this round's tracked run against the untracked run just before it
			PAIRED[$srv:$c]+=" $(bench_ratio "${TPS[commits:$srv:tracked:$c]##* }" "${TPS[commits:$srv:untracked:$c]##* }")"
		done
	done
	set_mode single untracked
	set_mode cluster untracked
	ce_note "round $round done, load average $(bench_load)"
done

for srv in $SERVERS; do
	pending=$(q "$srv" -c "SELECT pending_invalidations FROM cache_stats")
	[ "$pending" = 0 ] || ce_warn "server $srv: $pending invalidations still pending at the end"
	ce_note "server $srv: $(q "$srv" -F ' ' -c "SELECT 'hits', hits, 'misses', misses, 'bypasses', bypasses, 'errors', errors, 'bumps sent', invalidations_sent FROM cache_stats")"
done

med() { bench_median "${TPS[$1]}"; }
medl() { bench_median "${LAT[$1]}"; }
medc() { if [ -n "${CPU[$1]:-}" ]; then bench_median "${CPU[$1]}"; else echo -; fi; }
row() {
	local what=$1 srv=$2 mode=$3 c=$4 key=$5
	printf '    %-8s %-8s %-10s %7s %10.1f %10.3f %8s %9s %9s\n' "$what" "$srv" "$mode" "$c" \
		"$(med "$key")" "$(medl "$key")" "$(medc "$key")" \
		"$(bench_ratio "${CMDS[$key]}" "${XACTS[$key]}")" "${CONNS[$key]}"
}
ce_log "results (medians of $BENCH_REPEAT runs of ${BENCH_SECONDS}s; load average at the end $(bench_load))"
printf '    %-8s %-8s %-10s %7s %10s %10s %8s %9s %9s\n' what server mode clients TPS 'lat ms' \
	'us CPU' 'cmds/xact' 'conns'
for c in $CLIENTS; do
	for srv in $SERVERS; do
		row hits "$srv" - "$c" "hits:$srv:$c"
	done
done
for c in $CLIENTS; do
	for srv in $SERVERS; do
		for mode in untracked tracked; do
			row commits "$srv" "$mode" "$c" "commits:$srv:$mode:$c"
		done
	done
done
echo "  us CPU: the backend's CPU time per transaction (1 client only: /proc/PID/schedstat over the"
echo "  middle of each run), less sensitive to other load than TPS; cmds/xact: commands the server's"
echo "  Redis processed (INFO stats, all its masters) per pgbench transaction; conns: connections it"
echo "  accepted during the runs, summed over the rounds (a backend of the cluster server opens one"
echo "  to a seed for the slot map, one to its database's master, one to each other master it reads)"
ce_log "ratios (same run)"
for c in $CLIENTS; do
	echo "  hits, $c client(s): cluster/single TPS $(bench_ratio "$(med "hits:cluster:$c")" "$(med "hits:single:$c")"), latency $(bench_ratio "$(medl "hits:cluster:$c")" "$(medl "hits:single:$c")")$([ "$c" = 1 ] && echo ", backend CPU $(bench_ratio "$(medc "hits:cluster:$c")" "$(medc "hits:single:$c")")")"
done
for c in $CLIENTS; do
	for srv in $SERVERS; do
		echo "  commits, $c client(s), $srv: tracked/untracked TPS $(bench_ratio "$(med "commits:$srv:tracked:$c")" "$(med "commits:$srv:untracked:$c")") (paired median $(bench_median "${PAIRED[$srv:$c]}")), added $(awk -v t="$(medl "commits:$srv:tracked:$c")" -v u="$(medl "commits:$srv:untracked:$c")" 'BEGIN { printf "%+.1f", (t - u) * 1000 }') us/xact$([ "$c" = 1 ] && echo ", backend CPU $(bench_ratio "$(medc "commits:$srv:tracked:$c")" "$(medc "commits:$srv:untracked:$c")")")"
	done
	echo "  commits, $c client(s): tracked TPS cluster/single $(bench_ratio "$(med "commits:cluster:tracked:$c")" "$(med "commits:single:tracked:$c")"), untracked $(bench_ratio "$(med "commits:cluster:untracked:$c")" "$(med "commits:single:untracked:$c")")"
done
echo "  paired: median over the rounds of each tracked run / the untracked run just before it, same server"
