#!/usr/bin/env bash
# test/bench/tpcb_bench.sh - what tracking costs a write workload, side by side in one run.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh), runs
# pgbench -i at scale BENCH_SCALE, and then runs pgbench's built-in
# tpcb-like transaction (-M prepared) with 1 client and with 8 clients
# (-j 2) over:
#   untracked  the four pgbench tables as pgbench made them
#   tracked    the same after SELECT cache_track(...) on pgbench_accounts,
#              pgbench_branches, pgbench_tellers and pgbench_history: every
#              commit now queues its generation bumps, which the commit
#              queue's worker sends to Redis (one MSET for every commit it
#              finds queued, over TCP on 127.0.0.1; after each it lets
#              commits gather for cache_ext.commit_queue_delay, 1 ms, which
#              CE_PG_EXTRA_CONF can set, 0 to compare); with
#              CE_PG_EXTRA_CONF='cache_ext.async_invalidation = off' each
#              commit sends its own MSET before COMMIT returns, as in 0.4
# Tracking is switched with cache_track()/cache_untrack() between runs, which
# alternate untracked, tracked, untracked, tracked, ... so that drift (a
# growing pgbench_history, other load on a shared machine) hits both alike.
# Before every run: VACUUM branches and tellers, TRUNCATE history, CHECKPOINT
# (what pgbench itself does without -n, plus the checkpoint), all outside
# the measured window.
#
# It prints, per client count, the median TPS and average latency of each
# mode, the TPS ratio tracked/untracked (issue 12 targets >= 0.9, with fsync = on) and the
# latency each commit gains from tracking (tracked - untracked average
# latency, in microseconds); and, counted only over the measured runs, the
# MSET calls Redis saw (INFO commandstats) against the transactions pgbench
# committed (expected: at most one MSET per tracked commit, fewer when the
# worker finds several commits queued; none untracked),
# and the generation bumps sent (cache_stats.invalidations_sent; expected:
# at most four keys per tracked commit: a batch sends each key once).  Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3); each round runs untracked then tracked
#   BENCH_REDIS    tcp (default) or unix: how the tracked runs reach Redis
#                  at 1 and at 8 clients, and each figure is the median over
#                  the rounds.  Defaults: 3 x 4 x 10 s, about 2.5 minutes in all
#   BENCH_SCALE    pgbench -i scale (default 10: 1,000,000 accounts)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#   CE_PG_EXTRA_CONF    more postgresql.conf lines (test/lib/common.sh); the
#                  harness runs with fsync = off, which makes a commit cheaper
#                  than on a real server, so the relative cost of the MSET is
#                  an upper bound; CE_PG_EXTRA_CONF='fsync = on' compares with
#                  durable commits
#
# Run as root from the repository root:
#   test/bench/tpcb_bench.sh
#   BENCH_SECONDS=30 BENCH_REPEAT=5 test/bench/tpcb_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_SCALE=${BENCH_SCALE:-10}

TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
CLIENTS="1 8"
MODES="untracked tracked"

ce_bench_servers

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

if [ "${BENCH_REDIS:-tcp}" = unix ]; then
	q -c "ALTER SYSTEM SET cache_ext.redis_url = 'unix://$CE_REDIS_SOCKET'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	ce_log "Redis over its unix socket ($CE_REDIS_SOCKET)"
fi

# Redis-side count of MSET calls since the server started (0 before the first).
redis_mset_calls() {
	redis-cli -h 127.0.0.1 -p "$CE_REDIS_PORT" INFO commandstats | tr -d '\r' |
		sed -n 's/^cmdstat_mset:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}
redis_mset_usec_per_call() {
	redis-cli -h 127.0.0.1 -p "$CE_REDIS_PORT" INFO commandstats | tr -d '\r' |
		sed -n 's/^cmdstat_mset:.*usec_per_call=\([0-9.]*\).*/\1/p' | grep . || echo 0
}
bumps_sent() { q -c "SELECT invalidations_sent FROM cache_stats"; }
tracked_count() {
	local t list=
	for t in $TABLES; do list+="${list:+, }'$t'::regclass"; done
	q -c "SELECT count(*) FROM cache_tracked WHERE relation IN ($list)"
}

set_mode() {
	local mode=$1 fn want t
	case "$mode" in
		tracked)   fn=cache_track;   want=4 ;;
		untracked) fn=cache_untrack; want=0 ;;
	esac
	for t in $TABLES; do
		q -c "SELECT $fn('$t')" >/dev/null
	done
	[ "$(tracked_count)" = "$want" ] ||
		ce_die "after $fn: $(tracked_count) of the 4 pgbench tables tracked, expected $want"
}

ce_log "pgbench -i -s $BENCH_SCALE"
q -c "CREATE EXTENSION cache_ext"
pgbench -i -q -s "$BENCH_SCALE" 2>&1 | grep -v '^$' | sed 's/^/    /' | tail -n 3

# A new cluster has no record of a clean shutdown, so cache_ext starts with a
# server-wide bump pending; the first cached_query() delivers it.  Then a
# sanity check: a tracked write reaches Redis as a bump, nothing is pending.
q -c "SELECT * FROM cached_query('SELECT 1') AS t(x int)" >/dev/null
[ "$(q -c "SELECT pending_invalidations FROM cache_stats")" = 0 ] ||
	ce_die "cache_ext still holds undelivered invalidations: is Redis reachable?"
set_mode tracked
before=$(bumps_sent)
q -c "UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1" >/dev/null
after=$(bumps_sent)
pending=$(q -c "SELECT pending_invalidations FROM cache_stats")
if [ "$after" -le "$before" ] || [ "$pending" != 0 ]; then
	ce_die "a write to a tracked table sent no bump (sent $before -> $after, pending $pending): is Redis reachable?"
fi
set_mode untracked

# median of a space-separated list (mean of the middle two for an even count)
median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio()  { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

declare -A TPS LAT XACTS MSETS BUMPS PAIRED

run() {
	local mode=$1 clients=$2 out tps lat n m0 m1 b0 b1
	q -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" \
		-c "TRUNCATE pgbench_history" -c "CHECKPOINT" >/dev/null
	m0=$(redis_mset_calls)
	b0=$(bumps_sent)
	out=$(pgbench -n -M prepared -b tpcb-like -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" 2>&1) || { echo "$out"; ce_die "pgbench ($mode, $clients clients) failed"; }
	m1=$(redis_mset_calls)
	b1=$(bumps_sent)
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$tps" ] && [ -n "$lat" ] && [ -n "$n" ] || { echo "$out"; ce_die "could not parse pgbench output"; }
	if [ "$mode" = tracked ]; then
		# this round's tracked run against the untracked run just before it
		PAIRED[$clients]+=" $(ratio "$tps" "${TPS[untracked,$clients]##* }")"
	fi
	TPS[$mode,$clients]+=" $tps"
	LAT[$mode,$clients]+=" $lat"
	XACTS[$mode,$clients]=$(( ${XACTS[$mode,$clients]:-0} + n ))
	MSETS[$mode,$clients]=$(( ${MSETS[$mode,$clients]:-0} + m1 - m0 ))
	BUMPS[$mode,$clients]=$(( ${BUMPS[$mode,$clients]:-0} + b1 - b0 ))
	printf '    round %d  %d client(s)  %-9s %9.1f TPS  %7.3f ms  %8d xacts  %8d MSET  %8d bumps\n' \
		"$round" "$clients" "$mode" "$tps" "$lat" "$n" $(( m1 - m0 )) $(( b1 - b0 ))
}


ce_log "pgbench tpcb-like -M prepared, scale $BENCH_SCALE, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	for clients in $CLIENTS; do
		for mode in $MODES; do
			set_mode "$mode"
			run "$mode" "$clients"
		done
	done
done

ce_log "results (medians over $BENCH_REPEAT rounds of $BENCH_SECONDS s; same run, same servers)"
printf '  %-10s %14s %14s %7s %8s %13s %11s %14s\n' clients "untracked TPS" "tracked TPS" ratio \
	"paired" "untracked ms" "tracked ms" "added us/xact"
for clients in $CLIENTS; do
	for mode in $MODES; do
		TPS[$mode,$clients]=$(median "${TPS[$mode,$clients]}")
		LAT[$mode,$clients]=$(median "${LAT[$mode,$clients]}")
	done
	printf '  %-10s %14.1f %14.1f %7s %8s %13.3f %11.3f %+14.1f\n' \
		"$clients$([ "$clients" -gt 1 ] && echo ' (-j 2)')" \
		"${TPS[untracked,$clients]}" "${TPS[tracked,$clients]}" \
		"$(ratio "${TPS[tracked,$clients]}" "${TPS[untracked,$clients]}")" \
		"$(median "${PAIRED[$clients]}")" \
		"${LAT[untracked,$clients]}" "${LAT[tracked,$clients]}" \
		"$(awk -v t="${LAT[tracked,$clients]}" -v u="${LAT[untracked,$clients]}" 'BEGIN { print (t - u) * 1000 }')"
done
echo "  ratio: median tracked TPS / median untracked TPS (issue 12 targets >= 0.9 with fsync = on); paired: median over the"
echo "  rounds of each tracked run / the untracked run just before it; added: tracked - untracked"
echo "  median average latency, in microseconds per transaction (one commit each)"

ce_log "Redis and cache_stats, summed over the measured runs"
printf '  %-10s %-9s %12s %12s %10s %12s %10s\n' clients mode "commits" "MSET calls" "MSET/xact" \
	"bumps sent" "bumps/xact"
for clients in $CLIENTS; do
	for mode in $MODES; do
		printf '  %-10s %-9s %12d %12d %10s %12d %10s\n' "$clients" "$mode" \
			"${XACTS[$mode,$clients]}" "${MSETS[$mode,$clients]}" \
			"$(ratio "${MSETS[$mode,$clients]}" "${XACTS[$mode,$clients]}")" \
			"${BUMPS[$mode,$clients]}" \
			"$(ratio "${BUMPS[$mode,$clients]}" "${XACTS[$mode,$clients]}")"
	done
done
echo "  expected: at most 1 MSET and 4 bumps (one per pgbench table) per tracked commit, fewer when several commits are queued together (one MSET, each key once), none untracked"
echo "  Redis INFO commandstats: mset calls=$(redis_mset_calls) in all, usec_per_call=$(redis_mset_usec_per_call) (server side)"
echo "  cache_stats (whole run, setup included):"
q -P footer=off -x -c "SELECT invalidations_sent, invalidations_deferred, outbox_overflows,
		pending_invalidations, errors FROM cache_stats" | sed 's/^/    /'
