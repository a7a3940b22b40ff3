#!/usr/bin/env bash
# test/fuzz/run.sh - build and run the libFuzzer target for the stored-entry
# decoder (src/entry_format.c) with ASan and UBSan.
#
# Builds test/fuzz/fuzz_entry.c and test/fuzz/make_seeds.c into a temporary
# work directory (nothing is written into the repository), generates a seed
# corpus there, fuzzes for FUZZ_SECONDS, and prints the libFuzzer numbers.
# Exits non-zero on any crash, leak, timeout or out-of-memory, after printing
# the offending inputs in hex and the command that reproduces them.
#
# Usage (as root on a fresh Debian 12 machine: installs clang if missing):
#   bash test/fuzz/run.sh                  # fuzz for FUZZ_SECONDS
#   FUZZ_SECONDS=600 bash test/fuzz/run.sh
#   bash test/fuzz/run.sh FILE...          # build, then run just these inputs
#
# Environment:
#   FUZZ_SECONDS    time budget in seconds (default: CE_FUZZ_SECONDS, else 60);
#                   0 runs the seed corpus once and stops
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_MAX_LEN    largest input libFuzzer generates (default 65536)
#   FUZZ_CORPUS     a directory to keep the grown corpus in across runs
#                   (default: a directory inside the work directory)
#   FUZZ_WORKDIR    work directory (default: a new mktemp -d under $TMPDIR or /tmp)
#   FUZZ_KEEP=1     keep the work directory even when everything passed
#   FUZZ_VERBOSE=1  show libFuzzer's whole output, not just its summary
#   PG_CONFIG       pg_config of PostgreSQL 15 (default /usr/lib/postgresql/15/bin/pg_config)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

FUZZ_SECONDS=${FUZZ_SECONDS:-${CE_FUZZ_SECONDS:-60}}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-65536}
: "${PG_CONFIG:=/usr/lib/postgresql/15/bin/pg_config}"

log()  { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die()  { printf 'fuzz: ERROR: %s\n' "$*" >&2; exit 1; }

for v in FUZZ_SECONDS FUZZ_TIMEOUT FUZZ_MAX_LEN; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, not '${!v}'"
done

# ---- packages ------------------------------------------------------------------
missing=()
dpkg -s clang >/dev/null 2>&1 || missing+=(clang)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
[ -x "$PG_CONFIG" ] || missing+=(postgresql-server-dev-15)
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root to install them"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v clang >/dev/null || die "clang not found after installing it"

SERVER_INC=$("$PG_CONFIG" --includedir-server)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
[ -f "$SERVER_INC/c.h" ] || die "no c.h in $SERVER_INC (is postgresql-server-dev-15 installed?)"
PGPORT=
for lib in "$PKGLIBDIR/libpgport_shlib.a" "$PKGLIBDIR/libpgport.a" \
		"$("$PG_CONFIG" --libdir)/libpgport.a"; do
	if [ -f "$lib" ]; then
		PGPORT=$lib
		break
	fi
done
[ -n "$PGPORT" ] || die "libpgport not found under $PKGLIBDIR"

# ---- work directory --------------------------------------------------------------
if [ -n "${FUZZ_WORKDIR:-}" ]; then
	W=$FUZZ_WORKDIR
	mkdir -p "$W"
else
	W=$(mktemp -d "${TMPDIR:-/tmp}/cache_ext_fuzz.XXXXXX")
fi
ARTIFACTS=$W/artifacts
CORPUS=${FUZZ_CORPUS:-$W/corpus}
SEEDS=$W/seeds
mkdir -p "$ARTIFACTS" "$CORPUS"
rm -rf "$SEEDS"

failed=1
cleanup()
{
	if [ "$failed" -eq 0 ] && [ -z "${FUZZ_KEEP:-}" ] && [ -z "${FUZZ_WORKDIR:-}" ]; then
		rm -rf "$W"
	else
		printf '    work directory kept: %s\n' "$W"
	fi
}
trap cleanup EXIT

# ---- build -----------------------------------------------------------------------
# shellcheck disable=SC2054
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all)
INC=(-I"$SERVER_INC" -I"$ROOT/src" -I"$HERE")
WARN=(-Wall -Wno-unused-function -Wno-ignored-attributes)

log "building (clang $(clang -dumpversion), $(basename "$PGPORT"), work dir $W)"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	"${WARN[@]}" "${INC[@]}" \
	"$HERE/fuzz_entry.c" "$ROOT/src/entry_format.c" "$PGPORT" \
	-lcrypto -o "$W/fuzz_entry"
clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" \
	"$HERE/make_seeds.c" "$ROOT/src/entry_format.c" "$PGPORT" \
	-lcrypto -o "$W/make_seeds"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- reproduce mode --------------------------------------------------------------
if [ $# -gt 0 ]; then
	log "running $# given input(s)"
	"$W/fuzz_entry" -timeout="$FUZZ_TIMEOUT" "$@"
	failed=0
	exit 0
fi

# ---- seeds -----------------------------------------------------------------------
"$W/make_seeds" "$SEEDS" | sed 's/^/    /'

# ---- fuzz ------------------------------------------------------------------------
args=(
	-max_len="$FUZZ_MAX_LEN"
	-timeout="$FUZZ_TIMEOUT"
	-rss_limit_mb=2048
	-artifact_prefix="$ARTIFACTS/"
	-print_final_stats=1
)
if [ "$FUZZ_SECONDS" -eq 0 ]; then
	args+=(-runs=0)
	log "running the seed corpus once"
else
	args+=(-max_total_time="$FUZZ_SECONDS")
	log "fuzzing for ${FUZZ_SECONDS}s (per-input timeout ${FUZZ_TIMEOUT}s, max_len $FUZZ_MAX_LEN)"
fi

FLOG=$W/fuzz.log
rc=0
if [ -n "${FUZZ_VERBOSE:-}" ]; then
	"$W/fuzz_entry" "${args[@]}" "$CORPUS" "$SEEDS" 2>&1 | tee "$FLOG" || rc=${PIPESTATUS[0]}
else
	"$W/fuzz_entry" "${args[@]}" "$CORPUS" "$SEEDS" >"$FLOG" 2>&1 || rc=$?
fi

# ---- summary ---------------------------------------------------------------------
fstat() { sed -n "s/^stat::$1: *//p" "$FLOG" | tail -n 1; }
execs=$(fstat number_of_executed_units)
eps=$(fstat average_exec_per_sec)
rss=$(fstat peak_rss_mb)
units=$(fstat new_units_added)
covline=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$FLOG" | tail -n 1 || true)
cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$covline")
ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$covline")
corp=$(sed -n 's/.*corp: \([^ ]*\).*/\1/p' <<<"$covline")

shopt -s nullglob
bad=("$ARTIFACTS"/crash-* "$ARTIFACTS"/leak-* "$ARTIFACTS"/timeout-* "$ARTIFACTS"/oom-*)
shopt -u nullglob

log "libFuzzer summary"
note "total execs:   ${execs:-?}"
note "execs/sec:     ${eps:-?}"
note "coverage:      cov ${cov:-?} (edges), ft ${ft:-?} (features), corpus ${corp:-?}"
note "new units:     ${units:-?}, peak RSS ${rss:-?} MB"
note "exit status:   $rc, failing inputs: ${#bad[@]}"

if [ "$rc" -ne 0 ] || [ ${#bad[@]} -gt 0 ] || [ -z "$execs" ]; then
	log "FAILED; end of the libFuzzer output ($FLOG):"
	# the report starts at the sanitizer's or our own first line
	start=$(grep -n -m1 -E '^(==[0-9]+==|fuzz_entry: |.*runtime error:|INFO: a leak)' "$FLOG" | cut -d: -f1 || true)
	if [ -n "$start" ]; then
		sed -n "${start},\$p" "$FLOG" | head -n 120
	else
		tail -n 60 "$FLOG"
	fi
	for f in "${bad[@]}"; do
		size=$(wc -c <"$f")
		log "$(basename "$f") ($size bytes), hex:"
		od -An -tx1 -v "$f" | head -n 256
		[ "$size" -le 4096 ] || note "(first 4096 bytes shown)"
		note "reproduce: $W/fuzz_entry $f"
		note "       or: bash test/fuzz/run.sh $f"
	done
	exit 1
fi

log "fuzz: OK, no crashes, leaks or timeouts"
failed=0
