# shellcheck shell=bash
# test/bench/bench_lib.sh - helpers shared by the benchmarks that run more
# than one PostgreSQL server, or restart one (hit_bench.sh, zipf_bench.sh).
#
# Source it after test/lib/common.sh.  It provides:
#
#   bench_setup           as root, traps set, the extension built and
#                         installed (unless BENCH_SKIP_BUILD=1), one Redis
#                         started (ce_start_redis)
#   bench_start_pg NAME CONF
#                         a throwaway server (ce_start_pg) with CONF as extra
#                         postgresql.conf lines, remembered under NAME and
#                         stopped by PID at exit (a cleanup hook), whatever
#                         servers are started after it
#   bench_restart_pg NAME restart it (pg_ctl restart -m fast), e.g. after an
#                         ALTER SYSTEM of a PGC_POSTMASTER setting
#   bench_psql NAME ARGS  psql -X -q against it
#   bench_target NAME     the pgbench/psql options that reach it (-h H -p P)
#   bench_backend_pid NAME PATTERN
#                         the PID of its backend whose application_name or
#                         query matches (for perf)
#   bench_pid_dir VAR NAME
#                         sets VAR to a new temp dir for servers a benchmark
#                         starts itself (a Redis replica, sentinels, cluster
#                         nodes): at exit every process named by a *.pid
#                         file below it is stopped by that PID, and the
#                         dir removed
#   bench_load            the load average (1, 5, 15 min) as one string
#   bench_median VALUES   the median of whitespace-separated numbers
#   bench_ratio A B       A / B with two decimals
#
# State (this file's, read by the caller): BENCH_PG_HOST[NAME],
# BENCH_PG_PORT[NAME], BENCH_PG_DATA[NAME], BENCH_PG_DIR[NAME].  Every
# server is on a unix socket in its own temp dir on a free port, and is
# stopped by the PID in its postmaster.pid (ce_stop_pg), never by name.

declare -A BENCH_PG_HOST BENCH_PG_PORT BENCH_PG_DATA BENCH_PG_DIR

# PostgreSQL's client programs from the installation the extension is
# built against (a private copy when PG_CONFIG points at one).
PATH=$CE_PG_BINDIR:$PATH

bench_setup()
{
	ce_bench_prepare
}

bench_start_pg()
{
	local name=$1 conf=$2

	CE_PG_EXTRA_CONF=$conf ce_start_pg
	BENCH_PG_HOST[$name]=$PGHOST
	BENCH_PG_PORT[$name]=$PGPORT
	BENCH_PG_DATA[$name]=$CE_PG_DATA
	BENCH_PG_DIR[$name]=$CE_PG_DIR
	CE_CLEANUP_HOOKS+=("bench_stop_pg $name")
	# ce_stop_all handles one server; this one is the hook's from now on
	CE_PG_DATA=
	CE_PG_DIR=
}

# bench_stop_pg NAME: stop it by PID (ce_stop_pg), print its log's tail if
# the script is failing (rc is ce_on_exit's), remove its directory.
bench_stop_pg()
{
	local name=$1 dir=${BENCH_PG_DIR[$1]}

	if [ "${rc:-0}" != 0 ] && [ -f "$dir/postgresql.log" ]; then
		echo "---- tail of the PostgreSQL log of server $name ----"
		tail -n 30 "$dir/postgresql.log" || true
	fi
	(CE_PG_DATA=${BENCH_PG_DATA[$name]} && ce_stop_pg)
	rm -rf "$dir"
}

bench_restart_pg()
{
	local name=$1

	ce_as_postgres "$CE_PG_BINDIR/pg_ctl" -D "${BENCH_PG_DATA[$name]}" \
		-l "${BENCH_PG_DIR[$name]}/postgresql.log" -m fast -w -t 60 restart >/dev/null ||
		ce_die "server $name did not restart"
}

bench_psql()
{
	local name=$1
	shift
	psql -X -q -h "${BENCH_PG_HOST[$name]}" -p "${BENCH_PG_PORT[$name]}" -U postgres -d postgres "$@"
}

bench_target()
{
	echo "-h ${BENCH_PG_HOST[$1]} -p ${BENCH_PG_PORT[$1]} -U postgres -d postgres"
}

bench_backend_pid()
{
	bench_psql "$1" -At -c "SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		  AND (application_name = '$2' OR query LIKE '%$2%') LIMIT 1"
}

bench_pid_dir()
{
	local dir
	dir=$(mktemp -d "/tmp/cache_ext-$2.XXXXXX")
	CE_CLEANUP_HOOKS+=("bench_stop_pid_dir '$dir'")
	printf -v "$1" '%s' "$dir"
}

# bench_stop_pid_dir DIR: SIGTERM each *.pid's process below DIR, SIGKILL
# what has not exited within 10 s, then remove DIR
bench_stop_pid_dir()
{
	local f pid
	while IFS= read -r f; do
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		ce_wait_pid_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
	done < <(find "$1" -name '*.pid' 2>/dev/null)
	rm -rf "$1"
}

bench_load()
{
	cut -d ' ' -f 1-3 /proc/loadavg
}

bench_median()
{
	tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

bench_ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'
}
