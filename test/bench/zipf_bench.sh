#!/usr/bin/env bash
# test/bench/zipf_bench.sh - the local tier with a working set larger than it.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh,
# test/bench/bench_lib.sh) and loads a table of BENCH_KEYS groups of
# BENCH_ROWS_PER_KEY rows.  One cached query, SELECT ... WHERE k = $1, has a
# result per key: the working set is BENCH_KEYS entries.  pgbench -M
# prepared runs it with keys drawn by random_zipfian(1, BENCH_KEYS,
# BENCH_ZIPF_S): a few keys are hot, most are cold.
#
# First, with a local tier large enough for everything (BENCH_L1_MAX), every
# key is called once (a miss: stored in Redis and in L1); the working set's
# size is then cache_stats.l1_bytes (what L1 counts: 256-byte chunks and an
# entry header per entry) and local_cache_entries must equal BENCH_KEYS.
# Then, for each percentage in BENCH_FRACTIONS, local_cache_size is set to
# that share of the working set's bytes (ALTER SYSTEM; it is PGC_POSTMASTER,
# so the server restarts, which starts L1 empty while Redis keeps every
# entry), every key is called once in random order (Redis hits: L1 starts
# full of entries, most of them cold), pgbench warms it up for BENCH_WARMUP
# seconds (the hot keys must displace the cold ones), the statistics are
# reset, and pgbench runs BENCH_SECONDS with BENCH_CLIENTS clients.  Per
# step it prints:
#   setting, % ws  local_cache_size, and as a share of the working set's bytes
#   cap %          what L1 can hold (cache_health().local_cache_size: chunks
#                  and entry headers), as a share of the working set's bytes
#   entries        local_cache_entries at the end (and as a share of keys)
#   L1 hit rate    l1_hits / hits over the measured run (the rest are Redis
#                  hits; misses are printed too, and should be 0)
#   top-k share    the share of calls that go to the `entries` hottest keys
#                  under this Zipf law: the hit rate of an ideal cache that
#                  holds as many entries (what eviction and admission aim for)
#   evictions      l1_evictions over the measured run
#   TPS, latency   pgbench's
# and the same with the local tier off (Redis only) and with the large one.
# The load average is printed per step.  Nothing here asserts a timing.
#
#   BENCH_KEYS          distinct keys (default 20000)
#   BENCH_ROWS_PER_KEY  rows per result (default 8: an entry of about 700
#                       bytes, three chunks)
#   BENCH_ZIPF_S        Zipf exponent (default 1.01; pgbench takes 1.001-1000)
#   BENCH_FRACTIONS     L1 sizes in percent of the working set (default
#                       "1 2 5 10 25 50 100")
#   BENCH_SECONDS       seconds per measured run (default 10)
#   BENCH_WARMUP        seconds of warm-up per step (default BENCH_SECONDS)
#   BENCH_CLIENTS       pgbench clients (default 8)
#   BENCH_L1_MAX        the large local tier (default 256MB)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
# With the defaults: 9 steps of 2 x 10 s plus a restart: about 4 minutes.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_KEYS=${BENCH_KEYS:-20000}
BENCH_ROWS_PER_KEY=${BENCH_ROWS_PER_KEY:-8}
BENCH_ZIPF_S=${BENCH_ZIPF_S:-1.01}
BENCH_FRACTIONS=${BENCH_FRACTIONS:-1 2 5 10 25 50 100}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-$BENCH_SECONDS}
BENCH_CLIENTS=${BENCH_CLIENTS:-8}
BENCH_L1_MAX=${BENCH_L1_MAX:-256MB}

bench_setup
ce_log "load average at start: $(bench_load)"
# a long TTL: nothing expires during the run (Redis keeps every entry)
bench_start_pg z "cache_ext.local_cache_size = '$BENCH_L1_MAX'
cache_ext.default_ttl = 3600"

# shellcheck disable=SC2016
QUERY='SELECT id, label, price FROM items WHERE k = $1 ORDER BY id'
COLS="id bigint, label text, price numeric"

ce_log "loading $BENCH_KEYS keys x $BENCH_ROWS_PER_KEY rows"
bench_psql z -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cache_ext;
CREATE TABLE items (id bigint PRIMARY KEY, k int NOT NULL, label text NOT NULL, price numeric(10,2) NOT NULL);
INSERT INTO items
  SELECT g, 1 + (g - 1) / $BENCH_ROWS_PER_KEY, 'item ' || md5(g::text), (g * 7919 % 100000) / 100.0
  FROM generate_series(1, $BENCH_KEYS * $BENCH_ROWS_PER_KEY) g;
CREATE INDEX ON items (k);
ANALYZE items;
SELECT cache_track('items');
SQL

bench_dir=$(mktemp -d)
CE_CLEANUP_HOOKS+=("rm -rf '$bench_dir'")
cat >"$bench_dir/zipf.sql" <<SQL
\\set key random_zipfian(1, $BENCH_KEYS, $BENCH_ZIPF_S)
SELECT * FROM cached_query('$QUERY', :key::int) AS t($COLS);
SQL

# every_key ORDER: call every key once (ORDER BY it), in one session.
every_key() {
	bench_psql z -v ON_ERROR_STOP=1 <<SQL
DO \$\$
DECLARE
  i int;
BEGIN
  FOR i IN SELECT g FROM generate_series(1, $BENCH_KEYS) g ORDER BY $1 LOOP
    PERFORM count(*) FROM cached_query('$QUERY', i::int) AS t($COLS);
  END LOOP;
END
\$\$;
SQL
}

# Every key once: a miss each, stored in Redis and (room for all) in L1.
ce_log "warm-up: every key once, local_cache_size = $BENCH_L1_MAX"
every_key g
read -r WS_BYTES WS_ENTRIES < <(bench_psql z -At -F ' ' -c \
	"SELECT s.l1_bytes, h.local_cache_entries FROM cache_stats s, cache_health() h")
[ "$WS_ENTRIES" = "$BENCH_KEYS" ] ||
	ce_die "after the warm-up L1 holds $WS_ENTRIES entries, not $BENCH_KEYS: raise BENCH_L1_MAX"
ce_note "working set: $BENCH_KEYS entries, $WS_BYTES bytes in L1 ($(awk -v b="$WS_BYTES" -v n="$BENCH_KEYS" 'BEGIN { printf "%.0f", b / n }') per entry)"

# topk K: the share of calls that go to the K hottest keys (Zipf, s).
topk() {
	awk -v k="$1" -v n="$BENCH_KEYS" -v s="$BENCH_ZIPF_S" 'BEGIN {
		for (i = 1; i <= n; i++) { w = i ^ (-s); all += w; if (i <= k) top += w }
		printf "%.3f", top / all }'
}

# pgbench_zipf SECONDS: run the workload; prints "TPS latency".
pgbench_zipf() {
	local out
	# shellcheck disable=SC2046
	out=$(pgbench -n -M prepared $(bench_target z) -c "$BENCH_CLIENTS" -j "$((BENCH_CLIENTS < 2 ? 1 : 2))" \
		-T "$1" -f "$bench_dir/zipf.sql" 2>&1) || { echo "$out"; ce_die "pgbench failed"; }
	echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1) $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

# step LABEL: warm up, reset the statistics, measure, print one line.
step() {
	local label=$1 tps lat hits l1h misses ev entries cap setting
	# a restarted L1 is empty: fill it with every key in random order (Redis
	# hits), then let the Zipf load replace the cold ones for a while
	every_key 'random()'
	[ "$BENCH_WARMUP" = 0 ] || pgbench_zipf "$BENCH_WARMUP" >/dev/null
	bench_psql z -c "SELECT cache_stats_reset()" >/dev/null
	read -r tps lat < <(pgbench_zipf "$BENCH_SECONDS")
	read -r hits l1h misses ev entries cap setting < <(bench_psql z -At -F ' ' -c \
		"SELECT s.hits, s.l1_hits, s.misses, s.l1_evictions, coalesce(h.local_cache_entries, 0), coalesce(h.local_cache_size, 0),
		        (SELECT setting::bigint FROM pg_settings WHERE name = 'cache_ext.local_cache_size')
		   FROM cache_stats s, cache_health() h")
	awk -v lab="$label" -v set="$setting" -v cap="$cap" -v ws="$WS_BYTES" -v e="$entries" -v n="$BENCH_KEYS" \
		-v h="$hits" -v l="$l1h" -v m="$misses" -v top="$(topk "$entries")" -v ev="$ev" \
		-v tps="$tps" -v lat="$lat" -v load="$(bench_load)" 'BEGIN {
		printf "  %-6s %9d kB %6.1f%% %6.1f%% %7d %6.1f%% %8.3f %8.3f %7d %9d %10.1f %8.3f  %s\n",
			lab, set, 100 * set * 1024 / ws, 100 * cap / ws, e, 100 * e / n, h ? l / h : 0, top, m, ev, tps, lat, load }'
}

ce_log "pgbench -M prepared, $BENCH_CLIENTS clients, random_zipfian(1, $BENCH_KEYS, $BENCH_ZIPF_S); warm-up $BENCH_WARMUP s, measured $BENCH_SECONDS s per step"
printf '  %-6s %12s %7s %7s %7s %7s %8s %8s %7s %9s %10s %8s  %s\n' step "setting" "% ws" "cap %" entries "% keys" \
	"L1 rate" "top-k" misses evictions TPS "lat ms" "load average"
step max
for pct in off $BENCH_FRACTIONS; do
	if [ "$pct" = off ]; then
		kb=0
	else
		kb=$(awk -v b="$WS_BYTES" -v p="$pct" 'BEGIN { k = b * p / 100 / 1024; printf "%d", (k == int(k)) ? k : int(k) + 1 }')
	fi
	bench_psql z -c "ALTER SYSTEM SET cache_ext.local_cache_size = '${kb}kB'" >/dev/null
	bench_restart_pg z
	if [ "$pct" = off ]; then step off; else step "$pct%"; fi
done
ce_note "(L1 rate: l1_hits / hits; top-k: the share of calls to the hottest 'entries' keys; load average at the end of each step)"
