#!/usr/bin/env bash
# test/bench/stats_bench.sh - what per-query statistics cost a cache hit, side by side in one run.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh), loads a
# small sales table, warms the cache for one cheap query (a single-row
# aggregate: the entry is tiny and cheap to decode, so that the cost of the
# statistics - one shared hash lookup and a spinlocked counter update per
# cached_query call - is as large a share of a hit as it can be), and runs
# pgbench -M prepared over that query through cached_query() (always a HIT
# after the warm-up; Redis over TCP on 127.0.0.1), with 1 client and with
# 8 clients (-j 2), in two modes:
#   on   cache_ext.query_stats = on (the default): every call is counted in
#        the cache_query_stats view
#   off  cache_ext.query_stats = off: nothing is collected
# The mode is switched with ALTER SYSTEM SET + pg_reload_conf() between runs
# (each pgbench run opens new sessions, which see the new value; the script
# waits until a new session does).  Within a round the two modes run back to
# back at each client count, in the order on, off in odd rounds and off, on
# in even rounds, so that drift on a shared machine hits both alike.
#
# Then, with no client round trip in the way, an in-server loop: a PL/pgSQL
# function makes BENCH_LOOP_CALLS cached_query() hits in one backend and
# returns the microseconds per hit, with cache_ext.query_stats SET on or off
# for that session (the modes alternate the same way).
#
# It prints, per client count, the median TPS and average latency of each
# mode (latency per hit = clients / TPS, in microseconds: pgbench prints its
# average to the microsecond only), the TPS ratio on/off (the requirement:
# statistics cost a hit at most 2%, i.e. ratio >= 0.98), the median of the
# per-round ratios, and the time each hit gains from statistics (on - off
# median latency, in microseconds); and the same for the in-server loop.
# After every run it checks, from the counters, that the measurement is what
# it claims to be: cache_stats hits grew by the calls made, misses, bypasses
# and errors did not grow (every call was a HIT), and the query's calls and
# hits in cache_query_stats grew by the same number in the 'on' runs and not
# at all in the 'off' runs.  Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 5); each round runs on and off at 1 and
#                  at 8 clients, and each figure is the median over the
#                  rounds.  Defaults: 5 x 4 x 10 s + the loop, about 4 minutes in all
#   BENCH_LOOP_CALLS  hits per in-server loop run (default 200000)
#   BENCH_ROWS     rows in sales (default 10000; the aggregate runs only on
#                  the warm-up miss, so this hardly matters)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/stats_bench.sh
#   BENCH_SKIP_BUILD=1 BENCH_SECONDS=30 BENCH_REPEAT=7 test/bench/stats_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-5}
BENCH_ROWS=${BENCH_ROWS:-10000}
BENCH_LOOP_CALLS=${BENCH_LOOP_CALLS:-200000}
RUS=

CLIENTS="1 8"

ce_bench_servers

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

QUERY="SELECT count(*) AS n, sum(amount) AS total FROM sales"
COLS="n bigint, total numeric"

ce_log "loading $BENCH_ROWS rows, warming the cache"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE sales (id bigint PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT g, g % 50, (g::bigint * 7919 % 100000) / 100.0 FROM generate_series(1, $BENCH_ROWS) g;
ANALYZE sales;
-- tracked, as a cached table should be: its hits are plain HITs, not ttl-only
SELECT cache_track('sales');
-- the in-server loop: N hits in one backend, microseconds per hit
CREATE FUNCTION bench_loop(calls int) RETURNS double precision LANGUAGE plpgsql AS \$f\$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	FOR i IN 1..calls LOOP
		PERFORM * FROM cached_query('$QUERY') AS t($COLS);
	END LOOP;
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / calls;
END
\$f\$;
SQL
# a miss that stores, then a hit, in one session
status=$(q -c "SELECT count(*) FROM cached_query('$QUERY') AS t($COLS)" \
	-c "SELECT count(*) FROM cached_query('$QUERY') AS t($COLS)" -c "SELECT cache_status()" | tail -n 1)
[ "$status" = HIT ] || ce_die "the warm cache does not hit (cache_status: $status): is Redis reachable?"

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
echo "SELECT * FROM cached_query('$QUERY') AS t($COLS);" >"$bench_dir/hit.sql"

# counters: the server-wide hits misses bypasses errors (cache_stats), then
# the benchmarked query's calls and hits in cache_query_stats (0 0 if absent).
counters() {
	q -F ' ' -c "SELECT s.hits, s.misses, s.bypasses, s.errors, coalesce(qs.calls, 0), coalesce(qs.hits, 0)
		FROM cache_stats s LEFT JOIN cache_query_stats qs
		ON qs.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND qs.query = \$q\$$QUERY\$q\$"
}

# check_counters WHAT MODE N BEFORE AFTER: N calls were made between the two
# counters snapshots; every one must have been a HIT, and counted in
# cache_query_stats exactly when MODE is on.  Prints the calls counted there.
check_counters() {
	local what=$1 mode=$2 n=$3 h0 m0 b0 e0 qc0 qh0 h1 m1 b1 e1 qc1 qh1
	read -r h0 m0 b0 e0 qc0 qh0 <<<"$4"
	read -r h1 m1 b1 e1 qc1 qh1 <<<"$5"
	[ $((h1 - h0)) = "$n" ] ||
		ce_die "$what, stats $mode: $n calls made but cache_stats hits grew by $((h1 - h0))"
	[ "$m1" = "$m0" ] && [ "$b1" = "$b0" ] && [ "$e1" = "$e0" ] ||
		ce_die "$what, stats $mode: not every call was a HIT (misses +$((m1 - m0)), bypasses +$((b1 - b0)), errors +$((e1 - e0)))"
	case "$mode" in
		on)  [ $((qc1 - qc0)) = "$n" ] && [ $((qh1 - qh0)) = "$n" ] ||
				ce_die "$what, stats on: $n calls made, but cache_query_stats calls +$((qc1 - qc0)), hits +$((qh1 - qh0))" ;;
		off) [ "$qc1" = "$qc0" ] && [ "$qh1" = "$qh0" ] ||
				ce_die "$what, stats off: cache_query_stats grew (calls +$((qc1 - qc0)), hits +$((qh1 - qh0))) with collection off" ;;
	esac
	echo $((qc1 - qc0))
}

# set_mode on|off: switch cache_ext.query_stats for new sessions and wait
# until a new session sees it.
set_mode() {
	local want=$1 deadline=$((SECONDS + 10))
	q -c "ALTER SYSTEM SET cache_ext.query_stats = $want" -c "SELECT pg_reload_conf()" >/dev/null
	while [ "$(q -c "SHOW cache_ext.query_stats")" != "$want" ]; do
		[ "$SECONDS" -lt "$deadline" ] || ce_die "cache_ext.query_stats is not $want 10 s after pg_reload_conf()"
		sleep 0.1
	done
}

# Sanity: the mode switch reaches new sessions, and a call is counted only when on.
for mode in off on; do
	set_mode "$mode"
	before=$(counters)
	q -c "SELECT * FROM cached_query('$QUERY') AS t($COLS)" >/dev/null
	check_counters "one call" "$mode" 1 "$before" "$(counters)" >/dev/null
done

# median of a space-separated list (mean of the middle two for an even count)
median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }

declare -A TPS LAT XACTS QCALLS RTPS US

run() {
	local mode=$1 clients=$2 out tps lat n before counted
	before=$(counters)
	out=$(pgbench -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" -f "$bench_dir/hit.sql" 2>&1) ||
		{ echo "$out"; ce_die "pgbench ($mode, $clients clients) failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
	# pgbench prints the average latency to the microsecond only: work it out
	# from the TPS instead (what pgbench does without -R), in microseconds
	lat=$(awk -v c="$clients" -v t="$tps" 'BEGIN { if (t > 0) printf "%.4f", c * 1e6 / t }')
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$tps" ] && [ -n "$lat" ] && [ -n "$n" ] || { echo "$out"; ce_die "could not parse pgbench output"; }
	counted=$(check_counters "pgbench, $clients client(s)" "$mode" "$n" "$before" "$(counters)")

	TPS[$mode,$clients]+=" $tps"
	LAT[$mode,$clients]+=" $lat"
	XACTS[$mode,$clients]=$(( ${XACTS[$mode,$clients]:-0} + n ))
	QCALLS[$mode,$clients]=$(( ${QCALLS[$mode,$clients]:-0} + counted ))
	printf '    round %d  %d client(s)  stats %-3s %9.1f TPS  %8.3f us  %8d hits  %8d counted\n' \
		"$round" "$clients" "$mode" "$tps" "$lat" "$n" "$counted"
}

# loop MODE: BENCH_LOOP_CALLS hits in one backend (bench_loop()), with
# cache_ext.query_stats set for that session; records microseconds per hit.
loop() {
	local mode=$1 before us counted
	before=$(counters)
	us=$(q -c "SET cache_ext.query_stats = $mode" -c "SELECT bench_loop($BENCH_LOOP_CALLS)")
	counted=$(check_counters "in-server loop" "$mode" "$BENCH_LOOP_CALLS" "$before" "$(counters)")
	US[$mode]+=" $us"
	XACTS[$mode,loop]=$(( ${XACTS[$mode,loop]:-0} + BENCH_LOOP_CALLS ))
	QCALLS[$mode,loop]=$(( ${QCALLS[$mode,loop]:-0} + counted ))
	printf '    round %d  in-server loop  stats %-3s %9.3f us/hit  %8d hits  %8d counted\n' \
		"$round" "$mode" "$us" "$BENCH_LOOP_CALLS" "$counted"
}

ce_log "pgbench -M prepared, cached single-row aggregate (HIT), $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
	for clients in $CLIENTS; do
		for mode in $order; do
			set_mode "$mode"
			run "$mode" "$clients"
		done
		# this round's on run against its off run
		RTPS[$clients]+=" $(ratio "${TPS[on,$clients]##* }" "${TPS[off,$clients]##* }")"
	done
done
set_mode on

ce_log "in-server loop: $BENCH_LOOP_CALLS hits per run in one backend (PL/pgSQL), $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
	for mode in $order; do
		loop "$mode"
	done
	RUS+=" $(ratio "${US[on]##* }" "${US[off]##* }")"
done

ce_log "results (medians over $BENCH_REPEAT rounds of $BENCH_SECONDS s; same run, same servers)"
printf '  %-10s %12s %12s %8s %8s %10s %10s %13s %9s\n' clients "on TPS" "off TPS" "on/off" \
	"paired" "on us" "off us" "added us/hit" "cost"
for clients in $CLIENTS; do
	for mode in on off; do
		TPS[$mode,$clients]=$(median "${TPS[$mode,$clients]}")
		LAT[$mode,$clients]=$(median "${LAT[$mode,$clients]}")
	done
	printf '  %-10s %12.1f %12.1f %8s %8.3f %10.3f %10.3f %+13.3f %+8.2f%%\n' \
		"$clients$([ "$clients" -gt 1 ] && echo ' (-j 2)')" \
		"${TPS[on,$clients]}" "${TPS[off,$clients]}" \
		"$(ratio "${TPS[on,$clients]}" "${TPS[off,$clients]}")" \
		"$(median "${RTPS[$clients]}")" \
		"${LAT[on,$clients]}" "${LAT[off,$clients]}" \
		"$(awk -v a="${LAT[on,$clients]}" -v b="${LAT[off,$clients]}" 'BEGIN { print a - b }')" \
		"$(awk -v a="${TPS[on,$clients]}" -v b="${TPS[off,$clients]}" 'BEGIN { print (1 - a / b) * 100 }')"
done
echo "  on/off: median TPS with stats on / off (requirement: >= 0.98, stats cost a hit at most 2%);"
echo "  paired: median over the rounds of each round's on run / its off run; on us, off us: median"
echo "  average latency per hit (clients / TPS), microseconds; added: on - off (at 8 clients the"
echo "  8 sessions share $(nproc) CPU(s), so a hit's latency includes waiting for the others' hits);"
echo "  cost: 1 - on/off TPS (negative: on was faster, i.e. the difference is below the noise)"
echo
printf '  %-16s %10s %10s %8s %8s %13s %9s\n' "" "on us/hit" "off us/hit" "on/off" paired "added us/hit" cost
us_on=$(median "${US[on]}")
us_off=$(median "${US[off]}")
printf '  %-16s %10.3f %10.3f %8s %8.3f %+13.3f %+8.2f%%\n' "in-server loop" "$us_on" "$us_off" \
	"$(ratio "$us_on" "$us_off")" "$(median "$RUS")" \
	"$(awk -v a="$us_on" -v b="$us_off" 'BEGIN { print a - b }')" \
	"$(awk -v a="$us_on" -v b="$us_off" 'BEGIN { print (a / b - 1) * 100 }')"
echo "  in-server loop: time per hit inside one backend, no client round trip (the statistics are a"
echo "  larger share of it than of a pgbench hit); on/off here is a time ratio, cost = on/off - 1"

ce_log "counters, summed over the measured runs"
printf '  %-10s %-5s %14s %18s\n' clients stats "hits made" "cache_query_stats"
for clients in $CLIENTS loop; do
	for mode in on off; do
		printf '  %-10s %-5s %14d %18d\n' "$clients" "$mode" "${XACTS[$mode,$clients]}" "${QCALLS[$mode,$clients]}"
	done
done
echo "  checked after every run: cache_stats hits grew by the calls made, misses, bypasses and"
echo "  errors did not grow; cache_query_stats calls grew by the same count when on, not at all when off"
echo "  cache_stats (whole run, setup included):"
q -P footer=off -x -c "SELECT hits, misses, bypasses, errors, stores FROM cache_stats" | sed 's/^/    /'
echo "  cache_query_stats (whole run, setup included; 'off' calls are not in it):"
q -P footer=off -x -c "SELECT calls, hits, misses, bypasses, stores, round(mean_hit_ms::numeric, 4) AS mean_hit_ms,
		round(max_hit_ms::numeric, 3) AS max_hit_ms FROM cache_query_stats
		WHERE query = \$q\$$QUERY\$q\$" | sed 's/^/    /'
