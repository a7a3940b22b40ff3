#!/usr/bin/env bash
# test/bench/stats_evict_bench.sh - what evicting from a full cache_query_stats costs one call.
#
# Starts its own throwaway Redis and PostgreSQL (test/lib/common.sh) with
# cache_ext.query_stats_max = BENCH_MAX (default 100000, the maximum), and
# fills cache_query_stats with that many distinct query texts (each a cheap
# constant query through cached_query, about half of them called twice, so
# that the counts vary as real ones do: equal counts would hide a quadratic
# sort).  When the table is full, the next
# new query text evicts the 5% of the entries with the lowest usage (calls,
# decayed at each eviction; src/stats.c): it decays and copies the usages
# under the table's lock in shared mode, sorts them with no lock held
# (O(n log n)), and removes the victims by key under the exclusive lock.
# Calls of texts already in the table go on meanwhile; only backends that
# need room wait for the evicting one (0.2 sorted the counts by insertion
# under the exclusive lock, O(n^2): about 9 s at 100000, stalling every
# call).
#
# In one backend, with no client round trip in the way (PL/pgSQL, timed by
# clock_timestamp()):
#   baseline  a call with a new query text while the table has room (median
#             of BENCH_PROBES calls): what a new text costs anyway
#   evicting  the one call with a new query text that finds the table full
#             and evicts; then the table is refilled to full and it is timed
#             again, BENCH_REPEAT times
# It prints the median and maximum of the evicting calls, the baseline, and
# the ratio evicting / baseline.  Each evicting call is checked to have
# evicted (the table shrank by about 5%).
#
# Meanwhile, in a second backend, a text already in the table is called in a
# loop for a window that covers the evicting call (BENCH_WINDOW ms, the
# evicting call starting 300 ms in): the slowest of those calls, against the
# slowest of a window with no eviction, shows how long an eviction stalls
# the calls that need no room (the lock they wait for).  Nothing here
# asserts a timing.
#
#   BENCH_MAX      cache_ext.query_stats_max (default 100000)
#   BENCH_REPEAT   evicting calls timed (default 5)
#   BENCH_PROBES   baseline calls (default 200)
#   BENCH_WINDOW   ms of calls in the second backend per round (default 2000)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/stats_evict_bench.sh
#   BENCH_SKIP_BUILD=1 BENCH_MAX=20000 test/bench/stats_evict_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BENCH_MAX=${BENCH_MAX:-100000}
BENCH_REPEAT=${BENCH_REPEAT:-5}
BENCH_PROBES=${BENCH_PROBES:-200}
BENCH_WINDOW=${BENCH_WINDOW:-2000}

CE_PG_EXTRA_CONF="cache_ext.query_stats_max = $BENCH_MAX"
ce_bench_servers

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION cache_ext;
-- the next query number to use: every call below has a text never seen before
CREATE SEQUENCE bench_next;
-- n new query texts, about half of them called twice: varied counts, as
-- real statistics have (equal counts would hide a quadratic sort)
CREATE FUNCTION bench_fill(n int) RETURNS int
LANGUAGE plpgsql AS $f$
DECLARE
	k bigint;
BEGIN
	FOR i IN 1..n LOOP
		k := nextval('bench_next');
		PERFORM * FROM cached_query(format('SELECT %s AS x', k)) AS t(x int);
		IF random() < 0.5 THEN
			PERFORM * FROM cached_query(format('SELECT %s AS x', k)) AS t(x int);
		END IF;
	END LOOP;
	RETURN n;
END
$f$;
-- n calls, each with a new query text; returns the milliseconds of each
CREATE FUNCTION bench_new_texts(n int) RETURNS double precision[]
LANGUAGE plpgsql AS $f$
DECLARE
	t0 timestamptz;
	ms double precision[] := '{}';
	k bigint;
BEGIN
	FOR i IN 1..n LOOP
		k := nextval('bench_next');
		t0 := clock_timestamp();
		PERFORM * FROM cached_query(format('SELECT %s AS x', k)) AS t(x int);
		ms := ms || extract(epoch FROM clock_timestamp() - t0) * 1000;
	END LOOP;
	RETURN ms;
END
$f$;
-- calls of one text already in the table (called often, so never a victim)
-- for ms milliseconds; returns {the slowest call in ms, the calls made}
CREATE FUNCTION bench_old_text(ms int) RETURNS double precision[]
LANGUAGE plpgsql AS $f$
DECLARE
	stop timestamptz := clock_timestamp() + make_interval(secs => ms / 1000.0);
	t0 timestamptz;
	worst double precision := 0;
	n int := 0;
BEGIN
	WHILE clock_timestamp() < stop LOOP
		t0 := clock_timestamp();
		PERFORM * FROM cached_query('SELECT 0 AS x') AS t(x int);
		worst := greatest(worst, extract(epoch FROM clock_timestamp() - t0) * 1000);
		n := n + 1;
	END LOOP;
	RETURN ARRAY[worst, n];
END
$f$;
SQL

entries() { q -c "SELECT count(*) FROM cache_query_stats"; }
median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# fill_to N: add new query texts until the table holds N entries
fill_to() {
	local want=$1 have
	have=$(entries)
	while [ "$have" -lt "$want" ]; do
		q -c "SELECT bench_fill(least($want - $have, 20000))" >/dev/null
		have=$(entries)
	done
}

# room for the baseline's texts, the quiet window's one, and one more
ce_log "filling cache_query_stats with $BENCH_MAX - $BENCH_PROBES - 2 query texts"
start=$SECONDS
fill_to $((BENCH_MAX - BENCH_PROBES - 2))
ce_note "$(entries) entries in $((SECONDS - start)) s"

ce_log "baseline: $BENCH_PROBES calls with a new query text, table not full"
base=$(q -c "SELECT array_to_string(bench_new_texts($BENCH_PROBES), ' ')")
base_med=$(median "$base")
[ "$(entries)" -lt "$BENCH_MAX" ] || ce_die "the table filled up during the baseline"

ce_log "quiet window: a text in the table called for $BENCH_WINDOW ms, no eviction"
read -r quiet_worst quiet_n <<<"$(q -c "SELECT array_to_string(bench_old_text($BENCH_WINDOW), ' ')")"
[ "$(entries)" -lt "$BENCH_MAX" ] || ce_die "the table filled up during the quiet window"

ce_log "evicting calls: table full, one call with a new query text"
EVICT=
WORST=
for r in $(seq 1 "$BENCH_REPEAT"); do
	fill_to "$BENCH_MAX"
	before=$(entries)
	[ "$before" = "$BENCH_MAX" ] || ce_die "expected $BENCH_MAX entries, have $before"
	window=$(mktemp)
	q -c "SELECT array_to_string(bench_old_text($BENCH_WINDOW), ' ')" >"$window" &
	window_pid=$!
	sleep 0.3
	ms=$(q -c "SELECT (bench_new_texts(1))[1]")
	wait "$window_pid"
	read -r worst n <"$window"
	rm -f "$window"
	after=$(entries)
	[ "$after" -lt $((BENCH_MAX - BENCH_MAX / 40)) ] ||
		ce_die "round $r: the call did not evict ($before -> $after entries)"
	awk -v m="$ms" -v w="$BENCH_WINDOW" 'BEGIN { exit !(m > w - 300) }' &&
		ce_note "round $r: the evicting call outlasted the window: raise BENCH_WINDOW"
	EVICT+=" $ms"
	WORST+=" $worst"
	printf '    round %d  evicting call %10.3f ms  (%d -> %d entries); meanwhile the slowest call of a text in the table %8.3f ms of %d\n' \
		"$r" "$ms" "$before" "$after" "$worst" "$n"
done

evict_med=$(median "$EVICT")
evict_max=$(tr ' ' '\n' <<<"$EVICT" | grep . | sort -g | tail -n 1)
ce_log "results (cache_ext.query_stats_max = $BENCH_MAX)"
printf '    baseline (new text, room)  median %10.3f ms over %d calls\n' "$base_med" "$BENCH_PROBES"
printf '    evicting call              median %10.3f ms, max %10.3f ms over %d\n' \
	"$evict_med" "$evict_max" "$BENCH_REPEAT"
awk -v e="$evict_med" -v b="$base_med" 'BEGIN { if (b > 0) printf "    ratio evicting / baseline  %10.1f\n", e / b }'
worst_med=$(median "$WORST")
printf '    text in the table, slowest call: quiet %10.3f ms (of %d calls), during an eviction median %10.3f ms\n' \
	"$quiet_worst" "$quiet_n" "$worst_med"
awk -v e="$worst_med" -v b="$quiet_worst" 'BEGIN { if (b > 0) printf "    ratio slowest call during an eviction / quiet  %10.1f\n", e / b }'
