#!/usr/bin/env bash
# test/bench/rules_bench.sh - the plain statement under a cache rule, side by
# side with cached_query(), the direct statement and a materialized view, in
# one run (docs/rules.md).
#
# Starts its own throwaway Redis and one PostgreSQL server (test/lib/common.sh,
# test/bench/bench_lib.sh), loads a sales table and runs pgbench (-M prepared,
# as the issue asks; BENCH_PROTOCOL=simple or extended for the others), with 1
# and 8 clients:
#   direct        the expensive aggregate itself, with "WHERE true" so that
#                 no rule matches its shape
#   rule          the same aggregate as the application sends it, under a
#                 cache rule: served from the executor hooks (a HIT)
#   cached_query  the same through cached_query(): a HIT
#   matview       SELECT * FROM a materialized view holding the result
# and prints the median TPS and latency of each, and the ratios
#   rule / direct, rule / cached_query, rule / matview.
# The local tier is off (every hit is a Redis hit) unless BENCH_L1_SIZE is set.
# Nothing here asserts a timing; read the figures with the load average it
# prints.
#
#   BENCH_SECONDS  seconds per pgbench run (default 5)
#   BENCH_REPEAT   rounds (default 3), the variants interleaved in each round;
#                  each figure is the median over the rounds
#   BENCH_ROWS     rows in sales (default 1000000)
#   BENCH_L1_SIZE  cache_ext.local_cache_size (default 0: off)
#   BENCH_VARIANTS which of the four to run (default all, in that order)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
# With the defaults: 3 rounds x 8 runs x 5 s, about 2.5 minutes.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_L1_SIZE=${BENCH_L1_SIZE:-0}

bench_setup
ce_log "load average at start: $(bench_load)"
# a long TTL: no entry expires during the run (an expired one is a miss)
bench_start_pg r "cache_ext.local_cache_size = '$BENCH_L1_SIZE'
cache_ext.key_prefix = 'bench_rules:'
cache_ext.default_ttl = 3600"

QUERY="SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM sales GROUP BY region ORDER BY region"
DIRECT="SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM sales WHERE true GROUP BY region ORDER BY region"
COLS="region int, n bigint, total numeric, mean numeric"

ce_log "loading $BENCH_ROWS rows"
bench_psql r -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE sales (id bigint PRIMARY KEY, region int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sales SELECT g, g % 50, (g::bigint * 7919 % 100000) / 100.0 FROM generate_series(1, $BENCH_ROWS) g;
ANALYZE sales;
CREATE MATERIALIZED VIEW sales_mv AS $QUERY;
ANALYZE sales_mv;
SELECT cache_track('sales');
SELECT cache_rule_create('$QUERY', name => 'bench');
SQL

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
echo "$DIRECT;" >"$bench_dir/direct.sql"
echo "$QUERY;" >"$bench_dir/rule.sql"
echo "SELECT * FROM cached_query('$QUERY') AS t($COLS);" >"$bench_dir/cached_query.sql"
echo "SELECT * FROM sales_mv;" >"$bench_dir/matview.sql"

# Warm both entries; the rows must be the direct statement's.
got=$(bench_psql r -At -v ON_ERROR_STOP=1 <<SQL
$QUERY;
$QUERY;
SELECT cache_status();
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT count(*) FROM cached_query('$QUERY') AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
)
want=$(bench_psql r -At -c "$DIRECT")
[ "$got" = "$want
$want
HIT
HIT" ] || [ "$got" = "$want
$want
HIT (local)
HIT (local)" ] || ce_die "warm-up: not two hits with the direct rows: $got"

declare -A TPS LAT
# run NAME CLIENTS: one pgbench run of the variant: its TPS and latency
run() {
	local name=$1 clients=$2 out
	# shellcheck disable=SC2046
	out=$(pgbench -n -M "${BENCH_PROTOCOL:-prepared}" $(bench_target r) -c "$clients" -j "$((clients < 2 ? 1 : 2))" \
		-T "$BENCH_SECONDS" -f "$bench_dir/$name.sql" 2>&1) || { echo "$out"; ce_die "pgbench $name failed"; }
	TPS[$name,$clients]+=" $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)"
	LAT[$name,$clients]+=" $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

read -r -a VARIANTS <<<"${BENCH_VARIANTS:-direct rule cached_query matview}"
ce_log "pgbench -M ${BENCH_PROTOCOL:-prepared}, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq 1 "$BENCH_REPEAT"); do
	for clients in 1 8; do
		for v in "${VARIANTS[@]}"; do
			run "$v" "$clients"
		done
	done
	ce_note "round $round done; load average $(bench_load)"
done

hits=$(bench_psql r -At -c "SELECT hits || ' hits, ' || misses || ' misses, ' || bypasses || ' bypasses' FROM cache_rules WHERE name = 'bench'")
ce_log "results (rule 'bench': $hits)"
printf '  %-13s %12s %10s %12s %10s\n' variant "TPS (1)" "ms (1)" "TPS (8)" "ms (8)"
for v in "${VARIANTS[@]}"; do
	printf '  %-13s %12s %10s %12s %10s\n' "$v" \
		"$(bench_median "${TPS[$v,1]}")" "$(bench_median "${LAT[$v,1]}")" \
		"$(bench_median "${TPS[$v,8]}")" "$(bench_median "${LAT[$v,8]}")"
done
for c in 1 8; do
	[ "${#VARIANTS[@]}" -eq 4 ] || break # the ratios need all four
	r=$(bench_median "${TPS[rule,$c]}")
	echo "  $c client(s): rule / direct $(bench_ratio "$r" "$(bench_median "${TPS[direct,$c]}")"), rule / cached_query $(bench_ratio "$r" "$(bench_median "${TPS[cached_query,$c]}")"), rule / matview $(bench_ratio "$r" "$(bench_median "${TPS[matview,$c]}")") (TPS)"
done
ce_log "load average at end: $(bench_load); $(nproc) CPUs"
