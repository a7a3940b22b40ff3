# test/lib/common.sh - shell helpers shared by test/demo.sh and test/run-tests.sh
#
# Source this file from a bash script that runs with `set -euo pipefail` as
# root.  It provides:
#
#   ce_install_deps     apt-get install whatever of the build/test packages is missing
#   ce_build_install    make clean all install, warnings as errors (CE_COPT overrides)
#   ce_start_redis      throwaway redis-server on a free 127.0.0.1 port
#   ce_start_pg         throwaway PostgreSQL 15 cluster (unix socket only) with
#                       cache_ext preloaded and pointed at that Redis
#   ce_stop_all         stop both servers by PID and remove their temp dirs
#   ce_install_traps    run ce_stop_all on any exit (success, failure, ^C)
#
# Every server this file starts listens on 127.0.0.1 or a unix socket in a
# private temp dir, and is stopped by its PID, never by name.

# Repository root: two levels above this file.
CE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

: "${PG_CONFIG:=/usr/lib/postgresql/15/bin/pg_config}"
# Everything else follows PG_CONFIG, so that a private copy of the server made
# by test/lib/private-pg.sh (one per developer working in parallel) is used
# whole: binaries, PGXS, and where `make install` puts the extension.
CE_PG_BINDIR=/usr/lib/postgresql/15/bin
CE_PGXS_TEST_DIR=/usr/lib/postgresql/15/lib/pgxs/src/test
if [ -x "$PG_CONFIG" ]; then
	CE_PG_BINDIR=$("$PG_CONFIG" --bindir)
	CE_PGXS_TEST_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/../test
	CE_PGXS_TEST_DIR=$(cd "$CE_PGXS_TEST_DIR" 2>/dev/null && pwd || echo "$CE_PGXS_TEST_DIR")
fi

# Warnings are errors by default; set CE_COPT (even to '') to override.
: "${CE_COPT=-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Werror}"

# What ce_start_pg preloads; CE_PG_PRELOAD='' starts a plain server (used to
# test the harness itself before the extension builds).
: "${CE_PG_PRELOAD=cache_ext}"

# Hooks for callers that start the server differently (test/valgrind.sh):
#   CE_PG_EXTRA_CONF       more postgresql.conf lines
#   CE_PG_SETUP_HOOK       a function called with the server's directory once
#                          it exists, before initdb; it may set
#   CE_PG_CTL_START_OPTS   extra pg_ctl start options (e.g. -p wrapper -t 600)
CE_PG_EXTRA_CONF=${CE_PG_EXTRA_CONF:-}
CE_PG_SETUP_HOOK=${CE_PG_SETUP_HOOK:-}
CE_PG_CTL_START_OPTS=${CE_PG_CTL_START_OPTS:-}

CE_PACKAGES=(
	build-essential gcc make pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	libhiredis-dev libssl-dev openssl liblz4-dev
	redis-server redis-tools
	libipc-run-perl perl
	clang clang-format valgrind
	iproute2 procps
	python3 python3-psycopg2
	locales libc-l10n
	prometheus-postgres-exporter prometheus
)

# State for ce_stop_all; empty means "nothing to stop".
CE_REDIS_PID=${CE_REDIS_PID:-}
CE_REDIS_DIR=
CE_PG_DIR=
CE_PG_DATA=

ce_log()  { printf '\n==> %s\n' "$*"; }
ce_note() { printf '    %s\n' "$*"; }
ce_warn() { printf 'WARNING: %s\n' "$*" >&2; }
ce_die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ce_require_root: the harness installs packages and switches to the postgres user.
ce_require_root()
{
	[ "$(id -u)" -eq 0 ] || ce_die "run this as root (it installs packages and runs servers as 'postgres')"
}

# ce_install_deps: install the packages in CE_PACKAGES that are missing.
# Runs apt-get update only when something is missing.  Package postinst
# scripts are kept from starting the distribution's default PostgreSQL and
# Redis services (a temporary policy-rc.d, only if the machine has none).
ce_install_deps()
{
	local pkg missing=() rc=0 policy=/usr/sbin/policy-rc.d made_policy=

	for pkg in "${CE_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		ce_note "all ${#CE_PACKAGES[@]} packages already installed"
		return 0
	fi

	ce_note "installing: ${missing[*]}"
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || rc=$?
	if [ "$rc" -eq 0 ]; then
		apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
	fi
	if [ -n "$made_policy" ]; then
		rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || ce_die "apt-get failed (exit $rc)"
	getent passwd postgres >/dev/null || ce_die "user 'postgres' missing after installing postgresql-15"
}

# ce_build_install: make clean all install in CE_ROOT with CE_COPT.  Quiet
# when it works; prints the end of the build output when it does not.
# CE_BUILD_VERBOSE=1 shows everything.
ce_build_install()
{
	local make_args=(-C "$CE_ROOT" PG_CONFIG="$PG_CONFIG" COPT="$CE_COPT")
	local log rc=0

	ce_note "COPT=$CE_COPT"
	if [ "${CE_BUILD_VERBOSE:-0}" = 1 ]; then
		make "${make_args[@]}" clean && make "${make_args[@]}" -j"$(nproc)" all &&
			make "${make_args[@]}" install
		return
	fi
	log=$(mktemp /tmp/cache_ext-build.XXXXXX)
	{ make "${make_args[@]}" clean && make "${make_args[@]}" -j"$(nproc)" all &&
		make "${make_args[@]}" install; } >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "---- build failed (exit $rc); last 80 lines of output ----"
		tail -n 80 "$log"
	fi
	rm -f "$log"
	return "$rc"
}

# ce_port_in_use PORT: true if anything listens on PORT (TCP, any address)
# or a PostgreSQL socket lock for it exists in /tmp.
ce_port_in_use()
{
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
			return 0
		fi
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 0
	fi
	[ -e "/tmp/.s.PGSQL.$port" ]
}

# ce_free_port: print a port in 20000-60000 that nothing listens on.
ce_free_port()
{
	local i port
	for i in $(seq 1 200); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		if ! ce_port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	ce_die "no free port found in 20000-60000"
}

# ce_pid_alive PID: true if PID exists and is not a zombie.
ce_pid_alive()
{
	local pid=$1 state
	[ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# ce_wait_pid_gone PID SECONDS: wait until PID is gone; false on timeout.
ce_wait_pid_gone()
{
	local pid=$1 deadline=$((SECONDS + $2))
	while ce_pid_alive "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# ce_start_redis: start redis-server on a free 127.0.0.1 port, without
# persistence, in its own temp dir.  Exports CE_REDIS_PORT, CE_REDIS_PID.
ce_start_redis()
{
	local attempt port dir deadline pid

	dir=$(mktemp -d /tmp/cache_ext-redis.XXXXXX)
	chmod 755 "$dir"	# the server (user postgres) may use the unix socket
	CE_REDIS_DIR=$dir
	for attempt in 1 2 3 4 5; do
		port=$(ce_free_port)
		rm -f "$dir/redis.pid"
		redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--unixsocket "$dir/redis.sock" --unixsocketperm 777 \
			--daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" \
			--logfile "$dir/redis.log" >/dev/null
		deadline=$((SECONDS + 15))
		while [ "$SECONDS" -lt "$deadline" ]; do
			pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
			if [ -n "$pid" ] && ce_pid_alive "$pid"; then
				CE_REDIS_PID=$pid
				if [ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ]; then
					CE_REDIS_SOCKET=$dir/redis.sock
					export CE_REDIS_PORT=$port CE_REDIS_PID CE_REDIS_SOCKET
					ce_note "redis-server pid $CE_REDIS_PID on 127.0.0.1:$CE_REDIS_PORT ($dir)"
					return 0
				fi
			fi
			sleep 0.1
		done
		# Lost a race for the port, or it failed: stop what is left, try another.
		ce_stop_redis
		ce_warn "redis-server did not answer on port $port (attempt $attempt); log tail:"
		tail -n 5 "$dir/redis.log" >&2 2>/dev/null || true
	done
	ce_die "could not start redis-server"
}

# ce_stop_redis: SIGTERM by PID (SIGCONT first, in case it was paused), then
# SIGKILL if it has not exited after 10 s.
ce_stop_redis()
{
	local pid=${CE_REDIS_PID:-}
	[ -n "$pid" ] || return 0
	if ce_pid_alive "$pid"; then
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		if ! ce_wait_pid_gone "$pid" 10; then
			ce_warn "redis-server $pid ignored SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			ce_wait_pid_gone "$pid" 10 || ce_warn "redis-server $pid still present"
		fi
	fi
	CE_REDIS_PID=
}

# ce_as_postgres CMD...: run CMD as the postgres OS user, from a directory it can read.
ce_as_postgres()
{
	(cd / && runuser -u postgres -- "$@")
}

# ce_bench_prepare: what every benchmark needs before its servers: root,
# the traps that stop what it starts, the build (unless BENCH_SKIP_BUILD=1)
# and a Redis.
ce_bench_prepare()
{
	ce_require_root
	ce_install_traps
	if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
		ce_install_deps
		ce_build_install
	fi
	ce_start_redis
}

# ce_bench_servers: what every benchmark starts with: as root, traps set,
# the extension built and installed (unless BENCH_SKIP_BUILD=1), a Redis
# and a PostgreSQL server started.
ce_bench_servers()
{
	ce_bench_prepare
	ce_start_pg
}

# ce_start_pg: initdb and start a throwaway cluster as the postgres user.
# Exports PGHOST PGPORT PGUSER PGDATABASE.  Needs ce_start_redis first
# unless CE_PG_PRELOAD is empty.
ce_start_pg()
{
	local dir port attempt

	dir=$(mktemp -d /tmp/cache_ext-pg.XXXXXX)
	chown postgres: "$dir"
	chmod 700 "$dir"
	CE_PG_DIR=$dir
	CE_PG_DATA=$dir/data
	[ -z "$CE_PG_SETUP_HOOK" ] || "$CE_PG_SETUP_HOOK" "$dir"

	ce_as_postgres "$CE_PG_BINDIR/initdb" -D "$CE_PG_DATA" -A trust -U postgres \
		--no-sync --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; ce_die "initdb failed"; }

	for attempt in 1 2 3; do
		port=$(ce_free_port)
		{
			echo
			echo "# added by test/lib/common.sh"
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$dir'"
			echo "port = $port"
			echo "fsync = off"
			echo "max_connections = 40"
			echo "log_line_prefix = '%m [%p] %q%a '"
			if [ -n "$CE_PG_PRELOAD" ]; then
				echo "shared_preload_libraries = '$CE_PG_PRELOAD'"
				echo "cache_ext.redis_url = 'redis://127.0.0.1:${CE_REDIS_PORT:?ce_start_redis first}/0'"
			fi
			[ -z "$CE_PG_EXTRA_CONF" ] || printf '%s\n' "$CE_PG_EXTRA_CONF"
		} >"$dir/test.conf"
		chown postgres: "$dir/test.conf"
		# include_if_exists keeps a retry from appending twice.
		grep -q "include_if_exists = '$dir/test.conf'" "$CE_PG_DATA/postgresql.conf" ||
			echo "include_if_exists = '$dir/test.conf'" >>"$CE_PG_DATA/postgresql.conf"

		# shellcheck disable=SC2086
		if ce_as_postgres "$CE_PG_BINDIR/pg_ctl" -D "$CE_PG_DATA" -l "$dir/postgresql.log" \
			-w -t 60 $CE_PG_CTL_START_OPTS start >/dev/null; then
			export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
			ce_note "postgres pid $(head -n 1 "$CE_PG_DATA/postmaster.pid") on socket $dir port $port"
			return 0
		fi
		ce_warn "PostgreSQL did not start on port $port (attempt $attempt); log tail:"
		tail -n 20 "$dir/postgresql.log" >&2 || true
		ce_stop_pg
		CE_PG_DIR=$dir CE_PG_DATA=$dir/data
	done
	ce_die "could not start PostgreSQL"
}

# ce_stop_pg: pg_ctl stop -m fast; if that fails, SIGKILL the postmaster by PID.
ce_stop_pg()
{
	local pid
	[ -n "$CE_PG_DATA" ] && [ -f "$CE_PG_DATA/postmaster.pid" ] || { CE_PG_DATA=; return 0; }
	pid=$(head -n 1 "$CE_PG_DATA/postmaster.pid")
	if ! ce_as_postgres "$CE_PG_BINDIR/pg_ctl" -D "$CE_PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1; then
		if ce_pid_alive "$pid"; then
			ce_warn "pg_ctl stop failed; sending SIGKILL to postmaster $pid"
			kill -KILL "$pid" 2>/dev/null || true
			ce_wait_pid_gone "$pid" 10 || ce_warn "postmaster $pid still present"
		fi
	fi
	CE_PG_DATA=
}

# ce_kill_strays DIR: stop servers left running from DIR by a test that was
# killed: every postmaster.pid or redis.pid below DIR whose process still has
# its working directory below DIR gets SIGKILL (a postmaster's children exit
# with it).  Processes elsewhere are never touched, whatever their name.
ce_kill_strays()
{
	local dir=$1 pidfile pid cwd
	[ -d "$dir" ] || return 0
	while IFS= read -r -d '' pidfile; do
		pid=$(head -n 1 "$pidfile" 2>/dev/null | tr -dc '0-9')
		[ -n "$pid" ] && ce_pid_alive "$pid" || continue
		cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
		case "$cwd" in
			"$dir"/*)
				ce_warn "stopping stray server pid $pid ($pidfile)"
				kill -CONT "$pid" 2>/dev/null || true
				kill -KILL "$pid" 2>/dev/null || true
				ce_wait_pid_gone "$pid" 10 || ce_warn "pid $pid still present" ;;
		esac
	done < <(find "$dir" \( -name postmaster.pid -o -name redis.pid \) -print0 2>/dev/null)
}

# ce_dump_logs: print the tail of the server logs (used on failure).
ce_dump_logs()
{
	if [ -n "$CE_PG_DIR" ] && [ -f "$CE_PG_DIR/postgresql.log" ]; then
		echo "---- tail of PostgreSQL log ($CE_PG_DIR/postgresql.log) ----"
		tail -n 40 "$CE_PG_DIR/postgresql.log" || true
	fi
	if [ -n "$CE_REDIS_DIR" ] && [ -f "$CE_REDIS_DIR/redis.log" ]; then
		echo "---- tail of Redis log ----"
		tail -n 10 "$CE_REDIS_DIR/redis.log" || true
	fi
}

# ce_stop_all: stop PostgreSQL and Redis, remove their temp dirs.  Idempotent.
ce_stop_all()
{
	ce_stop_pg
	ce_stop_redis
	if [ -n "$CE_PG_DIR" ]; then rm -rf "$CE_PG_DIR"; CE_PG_DIR=; fi
	if [ -n "$CE_REDIS_DIR" ]; then rm -rf "$CE_REDIS_DIR"; CE_REDIS_DIR=; fi
}

# Extra cleanup commands registered by the calling script (run before ce_stop_all).
CE_CLEANUP_HOOKS=()

ce_on_exit()
{
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ "$rc" -ne 0 ]; then
		ce_dump_logs
	fi
	local hook
	for hook in "${CE_CLEANUP_HOOKS[@]}"; do
		eval "$hook"
	done
	ce_stop_all
	exit "$rc"
}

# ce_install_traps: always clean up, whatever way the script ends.
ce_install_traps()
{
	trap ce_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
