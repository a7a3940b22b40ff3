#!/usr/bin/env bash
# test/bench/values_bench.sh - application values: cache_get and cache_set
# per second against Redis's own GET and SET on the same server.
#
# Starts its own Redis (test/lib/common.sh) and PostgreSQL server, on
# 127.0.0.1 / unix sockets, stopped by PID at exit.  Then, in each round
# (BENCH_REPEAT rounds, medians reported), at 1 and 8 clients:
#
#   select1   pgbench -M prepared "SELECT 1": what pgbench and a backend
#             cost with no Redis at all
#   get       pgbench -M prepared "SELECT cache_get('bench', 'k')": a HIT
#             of a 160-byte jsonb value (one round trip: GETRANGE + MGET
#             of its three generations)
#   set       pgbench -M prepared "SELECT cache_set('bench', 'k2', ...)"
#             (two round trips: SET NX + MGET of the generations, then SET)
#   redis GET / SET
#             redis-benchmark -t get,set -d 160 with as many clients, over
#             TCP to the same Redis as the extension: the ceiling
#
# It prints medians (per second) and the ratios get/GET, set/SET and
# get/select1.  With BENCH_ENCRYPT=1, values are sealed (AES-256-GCM,
# cache_ext.encryption_key_file).  Nothing here asserts a timing.
#
#   BENCH_SECONDS  seconds per pgbench run (default 10)
#   BENCH_REPEAT   rounds (default 3)
#   BENCH_REQUESTS redis-benchmark requests per run (default 200000)
#   BENCH_SKIP_BUILD=1  use the installed extension as it is
#
# Run as root from the repository root:
#   test/bench/values_bench.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_REQUESTS=${BENCH_REQUESTS:-200000}

bench_setup

WORK=$(mktemp -d /tmp/cache_ext-values-bench.XXXXXX)
chmod 755 "$WORK"
cleanup_work() { rm -rf "$WORK"; }
CE_CLEANUP_HOOKS+=(cleanup_work)

conf="max_connections = 40"
if [ "${BENCH_ENCRYPT:-0}" = 1 ]; then
	printf '%s\n' "$(openssl rand -hex 32)" >"$WORK/keys"
	chown postgres "$WORK/keys" 2>/dev/null || true
	chmod 600 "$WORK/keys"
	conf="$conf
cache_ext.encryption_key_file = '$WORK/keys'"
fi
bench_start_pg main "$conf"
q() { bench_psql main -At -v ON_ERROR_STOP=1 "$@"; }
VALUE='{"user": 42, "name": "Ada Lovelace", "roles": ["admin", "editor"], "prefs": {"theme": "dark", "lang": "en", "tz": "Europe/London"}, "n": 1234567}'
q -c "CREATE EXTENSION cache_ext" >/dev/null
# a server's first contact with a Redis bumps the server generation (its
# history is unknown): values set before that bump are stale, set again
for _ in $(seq 20); do
	q -c "SELECT cache_set('bench', 'k', '$VALUE', '1 hour')" >/dev/null
	status=$(q -c "SELECT cache_get('bench', 'k') IS NOT NULL" -c "SELECT cache_status()" | tail -1)
	[ "$status" != HIT ] || break
	sleep 0.2
done
[ "$status" = HIT ] || ce_die "the warm cache_get is not a HIT ($status)"

echo "SELECT 1;" >"$WORK/select1.sql"
echo "SELECT cache_get('bench', 'k');" >"$WORK/get.sql"
echo "SELECT cache_set('bench', 'k2', '$VALUE', '1 hour');" >"$WORK/set.sql"
chmod 644 "$WORK"/*.sql

declare -A RATE
pgb() {
	local clients=$1; shift
	pgbench $(bench_target main) -n -M prepared -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
		-T "$BENCH_SECONDS" "$@" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1
}
# redis-benchmark -q prints "GET: 81234.56 requests per second, p50=..."
rb() {
	local clients=$1 cmd=$2
	redis-benchmark -h 127.0.0.1 -p "$CE_REDIS_PORT" -c "$clients" -n "$BENCH_REQUESTS" \
		-d 160 -t "$cmd" -q 2>/dev/null | tr '\r' '\n' |
		sed -n "s/^${cmd^^}: \([0-9.]*\) requests per second.*/\1/p" | tail -1
}

for round in $(seq "$BENCH_REPEAT"); do
	ce_log "round $round of $BENCH_REPEAT"
	for c in 1 8; do
		RATE[select1:$c]+=" $(pgb "$c" -f "$WORK/select1.sql")"
		RATE[get:$c]+=" $(pgb "$c" -f "$WORK/get.sql")"
		RATE[set:$c]+=" $(pgb "$c" -f "$WORK/set.sql")"
		RATE[GET:$c]+=" $(rb "$c" get)"
		RATE[SET:$c]+=" $(rb "$c" set)"
	done
done
last=$(q -c "SELECT cache_get('bench', 'k2') IS NOT NULL" -c "SELECT cache_status()" | tail -1)
[ "$last" = HIT ] || ce_warn "the value cache_set wrote does not read back ($last)"

ce_log "results (medians of $BENCH_REPEAT runs of ${BENCH_SECONDS}s; per second; load $(bench_load))"
printf '    %-24s %12s %12s\n' what '1 client' '8 clients'
for key in select1 get set GET SET; do
	case $key in
		select1) label='pgbench SELECT 1' ;;
		get) label='cache_get (HIT)' ;;
		set) label='cache_set' ;;
		GET) label='redis-benchmark GET' ;;
		SET) label='redis-benchmark SET' ;;
	esac
	printf '    %-24s %12s %12s\n' "$label" "$(bench_median "${RATE[$key:1]}")" "$(bench_median "${RATE[$key:8]}")"
done
for c in 1 8; do
	ce_note "$c client(s): cache_get/GET $(bench_ratio "$(bench_median "${RATE[get:$c]}")" "$(bench_median "${RATE[GET:$c]}")"), cache_set/SET $(bench_ratio "$(bench_median "${RATE[set:$c]}")" "$(bench_median "${RATE[SET:$c]}")"), cache_get/SELECT 1 $(bench_ratio "$(bench_median "${RATE[get:$c]}")" "$(bench_median "${RATE[select1:$c]}")")"
done
