#!/usr/bin/env bash
# test/bench/keys_bench.sh - what key-level tracking buys a read-mostly workload, side by side in one run.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh) and loads
# orders(id, customer_id, amount): BENCH_CUSTOMERS customers (default 10,000)
# with BENCH_ROWS_PER_CUSTOMER rows each (default 20; customer c owns the ids
# (c-1)*20+1 .. c*20).  Then:
#
# 1. A read-mostly pgbench workload (-M prepared, 1 client and 8 clients -j 2),
#    two weighted scripts: -f read.sql@9 -f write.sql@1
#      read   a random customer's aggregate through cached_query():
#             SELECT count(*), sum(amount) FROM orders WHERE customer_id = $1
#      write  UPDATE orders SET amount = amount + 1 WHERE id = <a random row of
#             a random customer>
#    under two modes of tracking, switched between runs:
#      table  SELECT cache_track('orders'): every commit of a write invalidates
#             every cached result that read orders
#      key    SELECT cache_track('orders', ARRAY['customer_id']): a write
#             invalidates only the results about the customer it changed
#    Switching the mode invalidates everything (cache_track starts clean), so
#    after switching to key the cache is warmed (every customer's entry, by
#    BENCH_WARM_SESSIONS psql sessions at once) before the run: the hit rate
#    measures invalidations by the workload's writes, not cold misses.  Table
#    mode needs no warming: its first write empties it.  Within a round the
#    modes run one after the other, each at 1 then 8 clients, table first in
#    odd rounds and key first in even rounds (table key | key table | ...), so
#    that drift on a shared machine hits both alike and a round that starts
#    with key continues the previous round's warm key runs.
#    Per run: TPS (pgbench, both scripts), and the hit rate of the reads from
#    the cache_stats deltas around the run: hits / (hits + misses + bypasses).
#    Targets: key hit rate >= 85% and key TPS >= 5 x table TPS.  The TPS ratio
#    can never exceed (cost of a miss) / (cost of a hit), so the direct
#    query's time is printed too: without an index on customer_id (the
#    default) the aggregate scans the table, as an expensive query would;
#    BENCH_INDEX=1 adds the index, and then a miss costs hardly more than a
#    hit and the ratio says so.
#
# 2. What tracking adds to a bulk write, per changed row: the time of
#      UPDATE orders SET amount = amount + 1 WHERE id <= 100000
#    (autocommit, so the commit and its bumps are included; psql \timing),
#    untracked (cache_untrack) vs table vs key, and key_all (key with
#    cache_ext.max_keys_per_xact = 100000 for that session: no escalation),
#    BENCH_BULK_REPEAT rounds with the order of the modes rotated, VACUUM and
#    CHECKPOINT before each one (outside the measured statement); median per
#    mode, and microseconds per row added against untracked.  In key mode the
#    row trigger notes each row's key values until max_keys_per_xact (100)
#    keys, then escalates to the table; key_all notes every row's key and bumps
#    every customer's generation at commit (5,000 keys in one MSET).  After each
#    bulk UPDATE in key mode the script checks that a customer the UPDATE did
#    not touch was invalidated (the escalation), in key_all that it was not.
#
# Nothing here asserts a timing; it stops only when the measurement is not what
# it claims to be (the cache does not hit, the query is not narrowed in key
# mode, a run left invalidations pending or counted errors).
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3); each runs table and key at 1 and 8
#                  clients, and each figure is the median over the rounds
#   BENCH_CUSTOMERS, BENCH_ROWS_PER_CUSTOMER  (default 10000, 20)
#   BENCH_INDEX=1  index orders(customer_id) (default 0: the aggregate scans)
#   BENCH_WARM_SESSIONS  psql sessions that warm the cache (default 2)
#   BENCH_BULK_ROWS     rows the bulk UPDATE changes (default 100000)
#   BENCH_BULK_REPEAT   rounds of the bulk UPDATE (default 7)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#   Defaults: 3 x 4 x 10 s of pgbench, two warm-ups (~30 s each without the
#   index), 29 bulk updates: about 4 minutes in all on 2 CPUs
#
# Run as root from the repository root:
#   test/bench/keys_bench.sh
#   BENCH_SKIP_BUILD=1 BENCH_SECONDS=30 BENCH_REPEAT=5 test/bench/keys_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_CUSTOMERS=${BENCH_CUSTOMERS:-10000}
BENCH_ROWS_PER_CUSTOMER=${BENCH_ROWS_PER_CUSTOMER:-20}
BENCH_INDEX=${BENCH_INDEX:-0}
BENCH_WARM_SESSIONS=${BENCH_WARM_SESSIONS:-2}
BENCH_BULK_ROWS=${BENCH_BULK_ROWS:-100000}
BENCH_BULK_REPEAT=${BENCH_BULK_REPEAT:-7}

ROWS=$((BENCH_CUSTOMERS * BENCH_ROWS_PER_CUSTOMER))
# the last customer is left out of the bulk UPDATE (it is the one checked),
# and key_all notes at most 100000 keys (max_keys_per_xact's maximum)
[ "$BENCH_BULK_ROWS" -le $((ROWS - BENCH_ROWS_PER_CUSTOMER)) ] &&
	[ $(( (BENCH_BULK_ROWS + BENCH_ROWS_PER_CUSTOMER - 1) / BENCH_ROWS_PER_CUSTOMER )) -le 100000 ] ||
	ce_die "BENCH_BULK_ROWS must leave the last customer alone and touch at most 100000 customers"
CLIENTS="1 8"

ce_bench_servers

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

QUERY='SELECT count(*), sum(amount) FROM orders WHERE customer_id = $1'
COLS='n bigint, total numeric'

ce_log "loading $ROWS orders of $BENCH_CUSTOMERS customers (index on customer_id: $([ "$BENCH_INDEX" = 1 ] && echo yes || echo no))"
q <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO orders
  SELECT g, 1 + (g - 1) / $BENCH_ROWS_PER_CUSTOMER, (g * 7919 % 100000) / 100.0
  FROM generate_series(1, $ROWS) AS g;
$([ "$BENCH_INDEX" = 1 ] && echo 'CREATE INDEX orders_customer_id ON orders (customer_id);')
VACUUM ANALYZE orders;
SQL

# A new cluster has a server-wide bump pending; the first call delivers it.
q -c "SELECT * FROM cached_query('SELECT 1') AS t(x int)" >/dev/null
[ "$(q -c "SELECT pending_invalidations FROM cache_stats")" = 0 ] ||
	ce_die "cache_ext still holds undelivered invalidations: is Redis reachable?"

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
cat >"$bench_dir/read.sql" <<EOF
\\set c random(1, $BENCH_CUSTOMERS)
SELECT * FROM cached_query('$QUERY', :c::int) AS t($COLS);
EOF
cat >"$bench_dir/write.sql" <<EOF
\\set c random(1, $BENCH_CUSTOMERS)
\\set r random(1, $BENCH_ROWS_PER_CUSTOMER)
\\set id (:c - 1) * $BENCH_ROWS_PER_CUSTOMER + :r
UPDATE orders SET amount = amount + 1 WHERE id = :id;
EOF

# ---- modes -------------------------------------------------------------------

MODE=
key_columns() { q -c "SELECT coalesce(array_to_string(key_columns, ','), '-') FROM cache_tracked WHERE relation = 'orders'::regclass"; }
scopes() { q -c "SELECT cache_explain('$QUERY', 7)->'scopes'"; }

set_mode() {
	local mode=$1 got
	case "$mode" in
		untracked) q -c "SELECT cache_untrack('orders')" >/dev/null ;;
		table)     q -c "SELECT cache_track('orders')" >/dev/null ;;
		key)       q -c "SELECT cache_track('orders', ARRAY['customer_id'])" >/dev/null ;;
	esac
	got=$(key_columns)
	case "$mode" in
		untracked) [ -z "$got" ] || ce_die "orders is still tracked after cache_untrack ($got)" ;;
		table)     [ "$got" = - ] || ce_die "orders: key columns '$got' after cache_track('orders')" ;;
		key)       [ "$got" = customer_id ] || ce_die "orders: key columns '$got', expected customer_id" ;;
	esac
	# what a read depends on: one customer's key, or the whole table
	case "$mode" in
		table) scopes | grep -q '"table public.orders"' || ce_die "table mode: scopes $(scopes)" ;;
		key)   { scopes | grep -q '"key public.orders.customer_id"' && ! scopes | grep -q '"table public.orders"'; } ||
			ce_die "key mode: the query is not narrowed to customer_id (scopes $(scopes))" ;;
	esac
	MODE=$mode
}

# Fill the cache with every customer's entry, BENCH_WARM_SESSIONS sessions at once.
warm() {
	local i n=$BENCH_WARM_SESSIONS pids=() t0=$SECONDS
	for i in $(seq 0 $((n - 1))); do
		q -c "SELECT count(*) FROM generate_series(1, $BENCH_CUSTOMERS) AS c,
			LATERAL cached_query('$QUERY', c) AS t($COLS) WHERE c % $n = $i" >/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || ce_die "warming the cache failed"; done
	ce_note "warmed $BENCH_CUSTOMERS entries in $((SECONDS - t0)) s"
}

stats() { q -F ' ' -c "SELECT hits, misses, bypasses, errors, pending_invalidations FROM cache_stats"; }

# ---- sanity: the cache hits, and in key mode a write leaves other customers alone

set_mode key
sanity=$(q <<SQL
SELECT count(*) FROM cached_query('$QUERY', 1) AS t($COLS) \g /dev/null
SELECT count(*) FROM cached_query('$QUERY', 2) AS t($COLS) \g /dev/null
UPDATE orders SET amount = amount + 1 WHERE id = 1;
SELECT count(*) FROM cached_query('$QUERY', 2) AS t($COLS) \g /dev/null
SELECT cache_status();
SELECT count(*) FROM cached_query('$QUERY', 1) AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
)
[ "$(echo $sanity)" = "HIT MISS (invalidated)" ] ||
	ce_die "key mode: after a write to customer 1, expected HIT for customer 2 and MISS (invalidated) for customer 1, got: $(echo $sanity)"

# the direct query, for scale: median of 7 runs in one session
direct_ms=$( { echo '\timing on'; for i in 1 2 3 4 5 6 7; do
		echo "SELECT count(*), sum(amount) FROM orders WHERE customer_id = $((i * 997 % BENCH_CUSTOMERS + 1));"; done; } |
	q 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -g | sed -n 4p)
ce_note "the direct query takes $direct_ms ms (median of 7)"

median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# ---- 1. the read-mostly workload ---------------------------------------------

declare -A TPS HIT PAIRED

run() {
	local mode=$1 clients=$2 out tps s0 s1 h m b e p rate
	q -c "VACUUM orders" -c "CHECKPOINT" >/dev/null
	read -r h m b e p <<<"$(stats)"
	s0="$h $m $b $e"
	out=$(pgbench -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$BENCH_SECONDS" \
		-f "$bench_dir/read.sql@9" -f "$bench_dir/write.sql@1" 2>&1) ||
		{ echo "$out"; ce_die "pgbench ($mode, $clients clients) failed"; }
	read -r h m b e p <<<"$(stats)"
	set -- $s0
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
	[ -n "$tps" ] || { echo "$out"; ce_die "could not parse pgbench output"; }
	[ "$((e - $4))" -eq 0 ] || ce_die "$mode, $clients clients: cache_stats counted $((e - $4)) errors"
	[ "$p" -eq 0 ] || ce_die "$mode, $clients clients: $p invalidations pending after the run"
	rate=$(awk -v h=$((h - $1)) -v m=$((m - $2)) -v b=$((b - $3)) \
		'BEGIN { printf "%.1f", (h + m + b) ? 100 * h / (h + m + b) : 0 }')
	TPS[$mode,$clients]+=" $tps"
	HIT[$mode,$clients]+=" $rate"
	printf '    round %d  %d client(s)  %-5s %9.1f TPS  hit rate %5.1f%%  (reads: %d hits, %d misses, %d bypasses)\n' \
		"$round" "$clients" "$mode" "$tps" "$rate" $((h - $1)) $((m - $2)) $((b - $3))
}

ce_log "pgbench -M prepared, read.sql@9 + write.sql@1, $BENCH_SECONDS s per run, $BENCH_REPEAT rounds (median)"
for round in $(seq "$BENCH_REPEAT"); do
	if [ $((round % 2)) = 1 ]; then modes="table key"; else modes="key table"; fi
	for mode in $modes; do
		if [ "$MODE" != "$mode" ]; then
			set_mode "$mode"
			[ "$mode" = table ] || warm
		fi
		for clients in $CLIENTS; do
			run "$mode" "$clients"
		done
	done
	for clients in $CLIENTS; do
		PAIRED[$clients]+=" $(ratio "${TPS[key,$clients]##* }" "${TPS[table,$clients]##* }")"
	done
done

# ---- 2. the bulk UPDATE --------------------------------------------------------

declare -A BULK CHECKED
bulk_modes=(untracked table key key_all)

# the time of the bulk UPDATE in mode $1 (key_all: key, and
# max_keys_per_xact at its maximum, so that every key is noted and bumped)
bulk_once() {
	local mode=$1 ms set=
	[ "$mode" != key_all ] || set="SET cache_ext.max_keys_per_xact = 100000;"
	q -c "VACUUM orders" -c "CHECKPOINT" >/dev/null
	ms=$(printf '%s\n' "$set" '\timing on' "UPDATE orders SET amount = amount + 1 WHERE id <= $BENCH_BULK_ROWS;" |
		q 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	[ -n "$ms" ] || ce_die "bulk UPDATE ($mode): no timing"
	BULK[$mode]+=" $ms"
	printf '    round %d  %-9s %10.1f ms\n' "$round" "$mode" "$ms"
}

# the status of a call for the last customer, which the bulk UPDATE does not touch
far_status() {
	q <<SQL
SELECT count(*) FROM cached_query('$QUERY', $BENCH_CUSTOMERS) AS t($COLS) \g /dev/null
SELECT cache_status();
SQL
}

ce_log "UPDATE orders SET amount = amount + 1 WHERE id <= $BENCH_BULK_ROWS, $BENCH_BULK_REPEAT rounds (median)"
# one unmeasured UPDATE first: the first one after the load pays for more
# (hint bits, pruning, the table growing to its steady size)
set_mode untracked
round=0
bulk_once warmup >/dev/null
for round in $(seq "$BENCH_BULK_REPEAT"); do
	for i in 0 1 2 3; do
		mode=${bulk_modes[$(( (round - 1 + i) % 4 ))]}
		set_mode "${mode%_all}"
		case "$mode" in key*) far_status >/dev/null ;; esac
		bulk_once "$mode"
		p=$(q -c "SELECT pending_invalidations FROM cache_stats")
		[ "$p" = 0 ] || ce_die "bulk UPDATE ($mode): $p invalidations pending"
		# key escalates past max_keys_per_xact: a customer the UPDATE did not
		# touch is invalidated too; key_all invalidates only what it touched
		case "$mode" in
			key) want="MISS (invalidated)" ;;
			key_all) want=HIT ;;
			*) continue ;;
		esac
		CHECKED[$mode]=$(far_status)
		[ "${CHECKED[$mode]}" = "$want" ] ||
			ce_die "$mode: after the bulk UPDATE, customer $BENCH_CUSTOMERS (untouched) is '${CHECKED[$mode]}', expected '$want'"
	done
done

# ---- results -------------------------------------------------------------------

ce_log "results (medians over $BENCH_REPEAT rounds of $BENCH_SECONDS s; same run, same servers)"
echo "  $BENCH_CUSTOMERS customers x $BENCH_ROWS_PER_CUSTOMER rows; 90% reads of a random customer's aggregate, 10% single-row updates"
echo "  direct query: $direct_ms ms (index on customer_id: $([ "$BENCH_INDEX" = 1 ] && echo yes || echo no))"
printf '  %-8s %12s %12s %9s %8s %10s %10s\n' clients "table TPS" "key TPS" "TPS ratio" paired \
	"table hit%" "key hit%"
for clients in $CLIENTS; do
	for mode in table key; do
		TPS[$mode,$clients]=$(median "${TPS[$mode,$clients]}")
		HIT[$mode,$clients]=$(median "${HIT[$mode,$clients]}")
	done
	printf '  %-8s %12.1f %12.1f %9s %8s %9.1f%% %9.1f%%\n' \
		"$clients$([ "$clients" -gt 1 ] && echo ' (-j 2)')" \
		"${TPS[table,$clients]}" "${TPS[key,$clients]}" \
		"$(ratio "${TPS[key,$clients]}" "${TPS[table,$clients]}")" "$(ratio "$(median "${PAIRED[$clients]}")" 1)" \
		"${HIT[table,$clients]}" "${HIT[key,$clients]}"
done
echo "  TPS ratio: median key TPS / median table TPS (target >= 5); paired: median over the rounds"
echo "  of key / table in the same round; hit%: hits / (hits + misses + bypasses) of the reads"
echo "  (cache_stats deltas around each run), median over the rounds (target for key >= 85%)"

echo
printf '  %-10s %12s %14s\n' mode "median ms" "added us/row"
for mode in "${bulk_modes[@]}"; do
	BULK[$mode]=$(median "${BULK[$mode]}")
	printf '  %-10s %12.1f %14s\n' "$mode" "${BULK[$mode]}" \
		"$([ "$mode" = untracked ] && echo - || awk -v t="${BULK[$mode]}" -v u="${BULK[untracked]}" \
			-v n="$BENCH_BULK_ROWS" 'BEGIN { printf "%+.3f", (t - u) * 1000 / n }')"
done
echo "  UPDATE of $BENCH_BULK_ROWS rows in one transaction; added: (mode - untracked) median time per row"
echo "  key: escalates to the table past cache_ext.max_keys_per_xact (100): a customer the UPDATE did"
echo "  not touch was '${CHECKED[key]}' afterwards; key_all: the same with max_keys_per_xact = 100000,"
echo "  every key noted and bumped ($(( BENCH_BULK_ROWS / BENCH_ROWS_PER_CUSTOMER )) customers), the untouched customer '${CHECKED[key_all]}'"
echo "  cache_stats (whole run, warm-ups and setup included):"
q -P footer=off -x -c "SELECT hits, misses, bypasses, errors, invalidations_sent, invalidations_deferred,
		pending_invalidations FROM cache_stats" | sed 's/^/    /'
