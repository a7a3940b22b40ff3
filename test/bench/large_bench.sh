#!/usr/bin/env bash
# test/bench/large_bench.sh - what compression and chunks cost and save,
# for a 10k-row and a 1M-row result, in one run.
#
# Starts its own throwaway Redis and PostgreSQL server (test/lib/common.sh,
# test/bench/bench_lib.sh; the local tier off, so that every hit reads Redis;
# cache_ext.max_entry_size = 512MB so that the 1M-row result is stored).
# Each table has an int, a timestamptz, a numeric and a short text column.
# For each result size and each storage mode
#   lz4   cache_ext.compress_method = lz4 (the default where PostgreSQL has it)
#   pglz  cache_ext.compress_method = pglz
#   raw   cache_ext.compress_min_size = -1 (no compression)
# it prints the bytes the entry takes in Redis (cache_explain), its chunks
# (cache_ext.chunk_size, default 1MB), the time of the MISS that stored it
# (the query, encoding, compression and the writes) and the median time of
# a hit:
#   count   SELECT count(*) FROM cached_query(...): decoding into the
#           call's tuplestore, no rows to the client
#   rows    SELECT * FROM cached_query(...) through pgbench: the rows to
#           the client too (10k rows only)
# and the same for the direct query on the local table (a seq scan), with
# the ratios hit / seq scan; issue 14's target is <= 1.5 for the 10k-row
# decode.
#
# Then, for the small result only, the same count on three more servers
# (count ms, lz4), next to the seq scan and the floor of any set-returning
# function in FROM (a PL/pgSQL RETURN QUERY of the same table, which builds
# the same tuplestore):
#   l1      cache_ext.local_cache_size = 64MB: a HIT (local)
#   l1/k0   the same with cache_ext.backend_memory_keep = 0 (glibc's
#           defaults: every statement faults its tuplestore's pages in)
#   l2/k0   the local tier off, backend_memory_keep = 0
# Nothing here asserts a timing; the load average is printed.
#
#   BENCH_SMALL_ROWS  rows of the small result (default 10000)
#   BENCH_BIG_ROWS    rows of the large result (default 1000000; 0 leaves
#                     it out)
#   BENCH_SECONDS     seconds per pgbench run of the small result (default 5)
#   BENCH_BIG_HITS    hits timed for the large result (default 5)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/large_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SMALL_ROWS=${BENCH_SMALL_ROWS:-10000}
BENCH_BIG_ROWS=${BENCH_BIG_ROWS:-1000000}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_BIG_HITS=${BENCH_BIG_HITS:-5}

bench_setup
ce_log "load average at start: $(bench_load)"
bench_start_pg pg "cache_ext.local_cache_size = 0
cache_ext.max_entry_size = '512MB'
cache_ext.default_ttl = 3600
work_mem = '256MB'"

COLS="id int, at timestamptz, amount numeric, label text"
sizes=(small)
[ "$BENCH_BIG_ROWS" = 0 ] || sizes+=(big)
declare -A ROWS=([small]=$BENCH_SMALL_ROWS [big]=$BENCH_BIG_ROWS)

for s in "${sizes[@]}"; do
	ce_log "loading ${ROWS[$s]} rows into t_$s"
	bench_psql pg -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION IF NOT EXISTS cache_ext;
CREATE TABLE t_$s (id int, at timestamptz, amount numeric(12,2), label text);
INSERT INTO t_$s SELECT g, '2024-01-01'::timestamptz + g * interval '1 minute',
       (g::bigint * 7919 % 100000) / 100.0, 'customer ' || (g % 5000) || ' region ' || (g % 50)
  FROM generate_series(1, ${ROWS[$s]}) g;
VACUUM ANALYZE t_$s;
SELECT cache_track('t_$s');
SQL
done

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")

# setup_of MODE: the session settings of a storage mode
setup_of()
{
	case $1 in
		lz4) echo "SET cache_ext.compress_method = lz4;" ;;
		pglz) echo "SET cache_ext.compress_method = pglz;" ;;
		raw) echo "SET cache_ext.compress_min_size = -1;" ;;
	esac
}

# query_of SIZE MODE: the query (a comment keeps each mode's entry apart)
query_of() { echo "SELECT /* $2 */ * FROM t_$1"; }

# time_ms SQL N: the median over N runs of SQL's execution time in one
# session (psql's \timing), in ms
time_ms()
{
	local sql=$1 n=$2 script=''
	for _ in $(seq "$n"); do script+="$sql"$'\n'; done
	bench_median "$(bench_psql pg -At -v ON_ERROR_STOP=1 <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tr '\n' ' '
$(setup_of "${3:-lz4}")
\\timing on
$script
SQL
)"
}

# pgbench_ms FILE: average latency of pgbench -M prepared, 1 client
pgbench_ms()
{
	# shellcheck disable=SC2046
	pgbench -n -M prepared $(bench_target pg) -c 1 -T "$BENCH_SECONDS" -f "$1" 2>/dev/null |
		sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'
}

declare -A BYTES CHUNKED COUNT_MS ROWS_MS MISS_MS
for s in "${sizes[@]}"; do
	n=$([ "$s" = small ] && echo 20 || echo "$BENCH_BIG_HITS")
	for m in lz4 pglz raw; do
		q=$(query_of "$s" "$m")
		fill=$(bench_psql pg -At -v ON_ERROR_STOP=1 <<SQL
$(setup_of "$m")
\timing on
SELECT count(*) FROM cached_query('$q') AS t($COLS) \g /dev/null
\timing off
SELECT count(*) FROM cached_query('$q') AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
)
		MISS_MS[$s.$m]=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$fill" | head -n 1)
		fill=$(tail -n 1 <<<"$fill")
		[ "$fill" = HIT ] || ce_die "t_$s, $m: the second call was '$fill', not HIT"
		read -r BYTES[$s.$m] CHUNKED[$s.$m] < <(bench_psql pg -At -F ' ' -c \
			"SELECT e->>'bytes', coalesce(e->>'chunked', 'false') FROM (SELECT cache_explain('$q')->'entry' AS e) x")
		COUNT_MS[$s.$m]=$(time_ms "SELECT count(*) FROM cached_query('$q') AS t($COLS);" "$n" "$m")
		if [ "$s" = small ]; then
			{ setup_of "$m"; echo "SELECT * FROM cached_query('$q') AS t($COLS);"; } >"$bench_dir/$m.sql"
			ROWS_MS[$s.$m]=$(pgbench_ms "$bench_dir/$m.sql")
		fi
	done
	COUNT_MS[$s.scan]=$(time_ms "SELECT count(*) FROM (SELECT * FROM t_$s OFFSET 0) x;" "$n")
	if [ "$s" = small ]; then
		echo "SELECT * FROM t_$s;" >"$bench_dir/scan.sql"
		ROWS_MS[$s.scan]=$(pgbench_ms "$bench_dir/scan.sql")
	fi
	ce_log "load average after t_$s: $(bench_load)"
done

ce_log "results (medians; time in ms)"
printf '  %-7s %-5s %12s %8s %10s %10s %10s %11s %10s\n' result mode "bytes" chunked "miss ms" "count ms" "rows ms" "count/scan" "rows/scan"
for s in "${sizes[@]}"; do
	for m in lz4 pglz raw scan; do
		printf '  %-7s %-5s %12s %8s %10s %10s %10s %11s %10s\n' "${ROWS[$s]}" "$m" \
			"${BYTES[$s.$m]:--}" "${CHUNKED[$s.$m]:--}" "${MISS_MS[$s.$m]:--}" "${COUNT_MS[$s.$m]}" "${ROWS_MS[$s.$m]:--}" \
			"$(bench_ratio "${COUNT_MS[$s.$m]}" "${COUNT_MS[$s.scan]}")" \
			"$([ "$s" = small ] && bench_ratio "${ROWS_MS[$s.$m]}" "${ROWS_MS[$s.scan]}" || echo -)"
	done
	for m in lz4 pglz; do
		ce_note "t_$s: $m stores $(bench_ratio "${BYTES[$s.$m]}" "${BYTES[$s.raw]}") of the raw bytes"
	done
done
ce_note "target (issue 14): a 10k-row hit decodes in <= 1.5x the seq scan's time (count/scan of $BENCH_SMALL_ROWS rows)"

# small_counts SERVER: loads t_small there, stores the lz4 entry and prints
# "hit scan srf" (median count ms of a HIT, of the seq scan, of the
# PL/pgSQL set-returning function over the same table)
small_counts()
{
	local srv=$1 q="SELECT /* lz4 */ * FROM t_small" st
	bench_psql "$srv" -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS cache_ext;
CREATE TABLE t_small (id int, at timestamptz, amount numeric(12,2), label text);
INSERT INTO t_small SELECT g, '2024-01-01'::timestamptz + g * interval '1 minute',
       (g::bigint * 7919 % 100000) / 100.0, 'customer ' || (g % 5000) || ' region ' || (g % 50)
  FROM generate_series(1, $BENCH_SMALL_ROWS) g;
VACUUM ANALYZE t_small;
SELECT cache_track('t_small');
CREATE FUNCTION t_small_srf() RETURNS SETOF t_small LANGUAGE plpgsql
  AS 'BEGIN RETURN QUERY SELECT * FROM t_small; END';
SELECT count(*) FROM cached_query('$q') AS t($COLS);
SQL
	st=$(bench_psql "$srv" -At -c "SELECT count(*) FROM cached_query('$q') AS t($COLS)" -c "SELECT cache_status()" | tail -n 1)
	[[ $st == HIT* ]] || ce_die "server $srv: the second call was '$st', not a HIT"
	echo "$(time_ms_on "$srv" "SELECT count(*) FROM cached_query('$q') AS t($COLS);" 20) \
$(time_ms_on "$srv" "SELECT count(*) FROM (SELECT * FROM t_small OFFSET 0) x;" 20) \
$(time_ms_on "$srv" "SELECT count(*) FROM t_small_srf();" 20) $st"
}

# time_ms_on SERVER SQL N: time_ms on another server
time_ms_on()
{
	local srv=$1 sql=$2 n=$3 script=''
	for _ in $(seq "$n"); do script+="$sql"$'\n'; done
	bench_median "$(bench_psql "$srv" -At -v ON_ERROR_STOP=1 <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tr '\n' ' '
\\timing on
$script
SQL
)"
}

declare -A EXTRA=([l1]="cache_ext.local_cache_size = '64MB'"
	[l1/k0]="cache_ext.local_cache_size = '64MB'
cache_ext.backend_memory_keep = 0"
	[l2/k0]="cache_ext.local_cache_size = 0
cache_ext.backend_memory_keep = 0")
ce_log "the small result on three more servers (count ms, lz4)"
declare -A XOUT
for v in l1 l1/k0 l2/k0; do
	bench_start_pg "x${v//\//_}" "${EXTRA[$v]}
cache_ext.max_entry_size = '512MB'
cache_ext.default_ttl = 3600
work_mem = '256MB'"
	XOUT[$v]=$(small_counts "x${v//\//_}")
done
printf '  %-7s %-24s %10s %10s %10s %10s %9s\n' result server "hit ms" "scan ms" "srf ms" "hit/scan" "srf/scan"
for v in l1 l1/k0 l2/k0; do
	read -r hit scan srf st <<<"${XOUT[$v]}"
	printf '  %-7s %-24s %10s %10s %10s %10s %9s\n' "$BENCH_SMALL_ROWS" "$v ($st)" "$hit" "$scan" "$srf" \
		"$(bench_ratio "$hit" "$scan")" "$(bench_ratio "$srf" "$scan")"
done
ce_log "load average at the end: $(bench_load)"
