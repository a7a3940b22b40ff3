#!/usr/bin/env bash
# test/fuzz/run.sh - build and run the libFuzzer targets with ASan and UBSan:
#
#   entry  fuzz_entry.c: the stored-entry decoder (src/entry_format.c)
#   resp   fuzz_resp.c: Redis replies, as the system libhiredis's reader
#          (configured and fed as src/redis/client.c does) turns them into
#          reply trees, and as the store layer interprets them (the real
#          src/store/store_reply.c); and
#          src/redis/text.c, which escapes all text from Redis: what users
#          are shown is printable ASCII
#   sealed fuzz_sealed.c: sealed (AES-256-GCM) entries, CeSealedOpen and
#          CeSealedSeal (src/entry_format.c) against an independent reading
#          of the layout, round trips and tampering, and the opened plaintext
#          on to CeEntryParse
#   cluster fuzz_cluster.c: Redis Cluster's routing (src/redis/cluster_map.c):
#          replies to CLUSTER SLOTS / CLUSTER SHARDS through hiredis's reader
#          into the slot map, error replies into MOVED / ASK / TRYAGAIN /
#          CLUSTERDOWN, and the hash slot of a key against a reference
#   session fuzz_session.c: stored sessions (src/session_format.c) against
#          an independent reading of their layout, written sessions round
#          trips and alterations, sessions sealed as sessions.c seals them,
#          and session ids
#   frame  fuzz_frame.c: compressed entries (pglz, and lz4 where PostgreSQL
#          has it) and the heads and chunks of chunked entries
#          (src/entry_frame.c): lying lengths, damaged streams, round trips
#   value  fuzz_value.c: stored application values (src/value_format.c),
#          CvValueParse against an independent reading of the layout, and
#          CvValueBuild round trips, flipped and truncated values refused
#
# Builds the targets and their seed generators (make_seeds.c,
# make_resp_seeds.c, and fuzz_sealed.c built with -DFZ_SEALED_MAKE_SEEDS,
# which seals make_seeds.c's entries, and fuzz_cluster.c built with
# -DFZ_CLUSTER_MAKE_SEEDS, fuzz_session.c built with -DFZ_SESSION_MAKE_SEEDS,
# and fuzz_value.c built with -DFZ_VALUE_MAKE_SEEDS) into a temporary work
# directory
# (nothing is written into the repository), generates seed corpora there,
# fuzzes each target in turn for its share of FUZZ_SECONDS, and prints the
# libFuzzer numbers of each.  Exits non-zero on any crash, leak, timeout or
# out-of-memory in any of them, after printing the offending inputs in hex
# and the command that reproduces them.
#
# Usage (as root on a fresh Debian 12 machine: installs clang if missing):
#   bash test/fuzz/run.sh                  # fuzz for FUZZ_SECONDS in all
#   FUZZ_SECONDS=600 bash test/fuzz/run.sh
#   FUZZ_TARGETS=resp bash test/fuzz/run.sh
#   bash test/fuzz/run.sh FILE...          # build, then run just these inputs
#                                          # (through each of FUZZ_TARGETS)
#
# Environment:
#   FUZZ_SECONDS    time budget in seconds for all targets together (default:
#                   CE_FUZZ_SECONDS, else 60), split evenly between them (at
#                   least 1 s each), except the value target's; 0 runs the
#                   seed corpora once and stops
#   FUZZ_SECONDS_ENTRY, FUZZ_SECONDS_RESP, FUZZ_SECONDS_SEALED, FUZZ_SECONDS_CLUSTER,
#   FUZZ_SECONDS_SESSION, FUZZ_SECONDS_FRAME
#                   the budget of one target, instead of its share
#   FUZZ_SECONDS_VALUE  the value target's budget, on top of FUZZ_SECONDS
#                   (default 10, at most FUZZ_SECONDS): its format is small
#   FUZZ_TARGETS    the targets to build and run, of "entry resp sealed cluster
#                   session frame value" (default all seven; session's share is
#                   at most 15 s)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_MAX_LEN    largest input libFuzzer generates (default 65536)
#   FUZZ_CORPUS     a directory to keep the entry target's grown corpus in
#                   across runs (default: a directory inside the work directory)
#   FUZZ_RESP_CORPUS  the same for the resp target (default: FUZZ_CORPUS-resp
#                   when FUZZ_CORPUS is set, else inside the work directory)
#   FUZZ_SEALED_CORPUS  the same for the sealed target (default:
#                   FUZZ_CORPUS-sealed when FUZZ_CORPUS is set, else inside
#                   the work directory)
#   FUZZ_CLUSTER_CORPUS  the same for the cluster target (default:
#                   FUZZ_CORPUS-cluster when FUZZ_CORPUS is set, else inside
#                   the work directory)
#   FUZZ_SESSION_CORPUS  the same for the session target (default:
#                   FUZZ_CORPUS-session when FUZZ_CORPUS is set, else inside
#                   the work directory)
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
FUZZ_TARGETS=${FUZZ_TARGETS:-entry resp sealed cluster session frame value}
: "${PG_CONFIG:=/usr/lib/postgresql/15/bin/pg_config}"

log()  { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die()  { printf 'fuzz: ERROR: %s\n' "$*" >&2; exit 1; }

for v in FUZZ_SECONDS FUZZ_TIMEOUT FUZZ_MAX_LEN FUZZ_SECONDS_ENTRY FUZZ_SECONDS_RESP \
		FUZZ_SECONDS_SEALED FUZZ_SECONDS_CLUSTER FUZZ_SECONDS_SESSION FUZZ_SECONDS_FRAME \
		FUZZ_SECONDS_VALUE; do
	[ -n "${!v:-}" ] || continue
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, not '${!v}'"
done
targets=()
for t in ${FUZZ_TARGETS//,/ }; do
	case $t in
		entry|resp|sealed|cluster|session|frame|value) targets+=("$t") ;;
		*) die "FUZZ_TARGETS takes entry, resp, sealed, cluster, session, frame and value, not '$t'" ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || die "FUZZ_TARGETS names no target"
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }

# ---- packages ------------------------------------------------------------------
missing=()
dpkg -s clang >/dev/null 2>&1 || missing+=(clang)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
[ -x "$PG_CONFIG" ] || missing+=(postgresql-server-dev-15)
if wants resp || wants cluster; then
	dpkg -s libhiredis-dev >/dev/null 2>&1 || missing+=(libhiredis-dev)
	command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
fi
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
# pglz (common/pg_lzcompress.h) for the frame target; lz4 where PostgreSQL
# was built with it and its header is installed, as the Makefile decides
PGCOMMON=
for lib in "$PKGLIBDIR/libpgcommon.a" "$("$PG_CONFIG" --libdir)/libpgcommon.a"; do
	if [ -f "$lib" ]; then
		PGCOMMON=$lib
		break
	fi
done
LZ4=()
if grep -qs '^#define USE_LZ4 1' "$SERVER_INC/pg_config.h" && [ -f /usr/include/lz4.h ]; then
	LZ4=(-DCE_HAVE_LZ4 -llz4)
fi

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
if [ -n "${FUZZ_RESP_CORPUS:-}" ]; then
	RESP_CORPUS=$FUZZ_RESP_CORPUS
elif [ -n "${FUZZ_CORPUS:-}" ]; then
	RESP_CORPUS=${FUZZ_CORPUS%/}-resp
else
	RESP_CORPUS=$W/corpus-resp
fi
RESP_SEEDS=$W/seeds-resp
RESP_ARTIFACTS=$W/artifacts-resp
if [ -n "${FUZZ_SEALED_CORPUS:-}" ]; then
	SEALED_CORPUS=$FUZZ_SEALED_CORPUS
elif [ -n "${FUZZ_CORPUS:-}" ]; then
	SEALED_CORPUS=${FUZZ_CORPUS%/}-sealed
else
	SEALED_CORPUS=$W/corpus-sealed
fi
SEALED_SEEDS=$W/seeds-sealed
SEALED_ARTIFACTS=$W/artifacts-sealed
if [ -n "${FUZZ_CLUSTER_CORPUS:-}" ]; then
	CLUSTER_CORPUS=$FUZZ_CLUSTER_CORPUS
elif [ -n "${FUZZ_CORPUS:-}" ]; then
	CLUSTER_CORPUS=${FUZZ_CORPUS%/}-cluster
else
	CLUSTER_CORPUS=$W/corpus-cluster
fi
CLUSTER_SEEDS=$W/seeds-cluster
CLUSTER_ARTIFACTS=$W/artifacts-cluster
if [ -n "${FUZZ_SESSION_CORPUS:-}" ]; then
	SESSION_CORPUS=$FUZZ_SESSION_CORPUS
elif [ -n "${FUZZ_CORPUS:-}" ]; then
	SESSION_CORPUS=${FUZZ_CORPUS%/}-session
else
	SESSION_CORPUS=$W/corpus-session
fi
SESSION_SEEDS=$W/seeds-session
SESSION_ARTIFACTS=$W/artifacts-session
FRAME_CORPUS=$W/corpus-frame
FRAME_SEEDS=$W/seeds-frame
FRAME_ARTIFACTS=$W/artifacts-frame
VALUE_CORPUS=${FUZZ_CORPUS:+${FUZZ_CORPUS%/}-value}
VALUE_CORPUS=${VALUE_CORPUS:-$W/corpus-value}
VALUE_SEEDS=$W/seeds-value
VALUE_ARTIFACTS=$W/artifacts-value
mkdir -p "$ARTIFACTS" "$RESP_ARTIFACTS" "$SEALED_ARTIFACTS" "$CLUSTER_ARTIFACTS" "$SESSION_ARTIFACTS" "$FRAME_ARTIFACTS" "$VALUE_ARTIFACTS"
if wants entry; then mkdir -p "$CORPUS"; fi
if wants resp; then mkdir -p "$RESP_CORPUS"; fi
if wants sealed; then mkdir -p "$SEALED_CORPUS"; fi
if wants cluster; then mkdir -p "$CLUSTER_CORPUS"; fi
if wants session; then mkdir -p "$SESSION_CORPUS"; fi
if wants frame; then mkdir -p "$FRAME_CORPUS" "$FRAME_SEEDS"; fi
if wants value; then mkdir -p "$VALUE_CORPUS"; fi
rm -rf "$SEEDS" "$RESP_SEEDS" "$SEALED_SEEDS" "$CLUSTER_SEEDS" "$SESSION_SEEDS" "$VALUE_SEEDS"

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

log "building ${targets[*]} (clang $(clang -dumpversion), $(basename "$PGPORT"), work dir $W)"
if wants entry; then
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${INC[@]}" \
		"$HERE/fuzz_entry.c" "$ROOT/src/entry_format.c" "$PGPORT" \
		-lcrypto -o "$W/fuzz_entry"
fi
if wants frame; then
	[ -n "$PGCOMMON" ] || die "libpgcommon not found under $PKGLIBDIR"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${INC[@]}" "${LZ4[@]:0:1}" \
		"$HERE/fuzz_frame.c" "$ROOT/src/entry_frame.c" "$ROOT/src/entry_format.c" \
		"$PGCOMMON" "$PGPORT" -lcrypto "${LZ4[@]:1}" -o "$W/fuzz_frame"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" "${LZ4[@]:0:1}" -DFZ_FRAME_MAKE_SEEDS \
		"$HERE/fuzz_frame.c" "$ROOT/src/entry_frame.c" "$ROOT/src/entry_format.c" \
		"$PGCOMMON" "$PGPORT" -lcrypto "${LZ4[@]:1}" -o "$W/make_frame_seeds"
fi
if wants entry || wants sealed || wants frame; then
	# the sealed target's seeds are make_seeds.c's entries, sealed
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" \
		"$HERE/make_seeds.c" "$ROOT/src/entry_format.c" "$PGPORT" \
		-lcrypto -o "$W/make_seeds"
fi
if wants sealed; then
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${INC[@]}" \
		"$HERE/fuzz_sealed.c" "$ROOT/src/entry_format.c" "$PGPORT" \
		-lcrypto -o "$W/fuzz_sealed"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" -DFZ_SEALED_MAKE_SEEDS \
		"$HERE/fuzz_sealed.c" "$ROOT/src/entry_format.c" "$PGPORT" \
		-lcrypto -o "$W/make_sealed_seeds"
fi
if wants resp; then
	# the system libhiredis, as the extension links it: its reader is the
	# code under test (not instrumented; fuzz_resp.c's reference reader
	# gives the fuzzer its coverage of the grammar)
	read -r -a HIREDIS_CFLAGS <<<"$(pkg-config --cflags hiredis)"
	read -r -a HIREDIS_LIBS <<<"$(pkg-config --libs hiredis)"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${HIREDIS_CFLAGS[@]}" "${INC[@]}" \
		"$HERE/fuzz_resp.c" "$ROOT/src/store/store_reply.c" "$ROOT/src/redis/text.c" \
		"$ROOT/src/redis/resp.c" \
		"$PGPORT" "${HIREDIS_LIBS[@]}" -o "$W/fuzz_resp"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" \
		"$HERE/make_resp_seeds.c" \
		-o "$W/make_resp_seeds"
fi
if wants cluster; then
	# the real cluster_map.c and resp.c; hiredis's reader as for resp
	read -r -a HIREDIS_CFLAGS <<<"$(pkg-config --cflags hiredis)"
	read -r -a HIREDIS_LIBS <<<"$(pkg-config --libs hiredis)"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${HIREDIS_CFLAGS[@]}" "${INC[@]}" \
		"$HERE/fuzz_cluster.c" "$ROOT/src/redis/cluster_map.c" "$ROOT/src/redis/resp.c" \
		"${HIREDIS_LIBS[@]}" -o "$W/fuzz_cluster"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${HIREDIS_CFLAGS[@]}" "${INC[@]}" \
		-DFZ_CLUSTER_MAKE_SEEDS "$HERE/fuzz_cluster.c" -o "$W/make_cluster_seeds"
fi
if wants session; then
	# the real session_format.c, and entry_format.c for the sealing
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${INC[@]}" \
		"$HERE/fuzz_session.c" "$ROOT/src/session_format.c" "$ROOT/src/entry_format.c" \
		"$PGPORT" -lcrypto -o "$W/fuzz_session"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" -DFZ_SESSION_MAKE_SEEDS \
		"$HERE/fuzz_session.c" "$ROOT/src/session_format.c" "$ROOT/src/entry_format.c" \
		"$PGPORT" -lcrypto -o "$W/make_session_seeds"
fi
if wants value; then
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"${WARN[@]}" "${INC[@]}" \
		"$HERE/fuzz_value.c" "$ROOT/src/value_format.c" "$PGPORT" -o "$W/fuzz_value"
	clang -g -O1 "${SAN[@]}" "${WARN[@]}" "${INC[@]}" -DFZ_VALUE_MAKE_SEEDS \
		"$HERE/fuzz_value.c" "$ROOT/src/value_format.c" "$PGPORT" -o "$W/make_value_seeds"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- reproduce mode --------------------------------------------------------------
if [ $# -gt 0 ]; then
	for t in "${targets[@]}"; do
		log "running $# given input(s) through fuzz_$t"
		rc=0
		"$W/fuzz_$t" -timeout="$FUZZ_TIMEOUT" "$@" || rc=$?
		[ "$rc" -eq 0 ] || die "fuzz_$t failed on the given input(s) (exit status $rc)"
	done
	failed=0
	exit 0
fi

# ---- seeds -----------------------------------------------------------------------
if wants entry || wants sealed || wants frame; then
	"$W/make_seeds" "$SEEDS" | sed 's/^/    /'
fi
if wants frame; then
	"$W/make_frame_seeds" "$SEEDS" "$FRAME_SEEDS" | sed 's/^/    /'
fi
if wants sealed; then
	"$W/make_sealed_seeds" "$SEEDS" "$SEALED_SEEDS" "$W/sealed.dict" | sed 's/^/    /'
fi
if wants resp; then
	"$W/make_resp_seeds" "$RESP_SEEDS" "$W/resp.dict" | sed 's/^/    /'
fi
if wants cluster; then
	mkdir -p "$CLUSTER_SEEDS"
	"$W/make_cluster_seeds" "$CLUSTER_SEEDS" "$W/cluster.dict" | sed 's/^/    /'
fi
if wants session; then
	"$W/make_session_seeds" "$SESSION_SEEDS" "$W/session.dict" | sed 's/^/    /'
fi
if wants value; then
	mkdir -p "$VALUE_SEEDS"
	"$W/make_value_seeds" "$VALUE_SEEDS" | sed 's/^/    /'
fi

# ---- time budget -------------------------------------------------------------------
# FUZZ_SECONDS is for all targets together: each gets an even share (the
# first one the remainder), at least 1 s, unless FUZZ_SECONDS_<TARGET> says.
# The value target is not in the split: it gets FUZZ_SECONDS_VALUE (default
# 10 s, at most FUZZ_SECONDS) on top, so the others keep their shares.
declare -A budget
shared=()
for t in "${targets[@]}"; do
	[ "$t" = value ] || shared+=("$t")
done
if wants value; then
	v=$((FUZZ_SECONDS < 10 ? FUZZ_SECONDS : 10))
	budget[value]=${FUZZ_SECONDS_VALUE:-$v}
fi
nshared=${#shared[@]}
[ "$nshared" -gt 0 ] || nshared=1
share=$((FUZZ_SECONDS / nshared))
rest=$((FUZZ_SECONDS - share * nshared))
for t in "${shared[@]}"; do
	b=$((share + rest))
	rest=0
	if [ "$FUZZ_SECONDS" -gt 0 ] && [ "$b" -lt 1 ]; then
		b=1
	fi
	# the session target's share is at most 15 s (the CI budget)
	if [ "$t" = session ] && [ "$b" -gt 15 ]; then
		b=15
	fi
	var=FUZZ_SECONDS_${t^^}
	budget[$t]=${!var:-$b}
done

# ---- fuzz ------------------------------------------------------------------------
# run_target NAME CORPUS SEEDS ARTIFACTS LOG [LIBFUZZER_ARG...]: fuzz one
# target for its budget and print its summary; returns 1 if it failed.
run_target()
{
	local name=$1 corpus=$2 seeds=$3 artifacts=$4 flog=$5
	shift 5
	local secs=${budget[$name]}
	local bin=$W/fuzz_$name
	local args=(
		-max_len="$FUZZ_MAX_LEN"
		-timeout="$FUZZ_TIMEOUT"
		-rss_limit_mb=2048
		-artifact_prefix="$artifacts/"
		-print_final_stats=1
		"$@"
	)
	local rc=0

	if [ "$secs" -eq 0 ]; then
		args+=(-runs=0)
		log "fuzz_$name: running the seed corpus once"
	else
		args+=(-max_total_time="$secs")
		log "fuzz_$name: fuzzing for ${secs}s (per-input timeout ${FUZZ_TIMEOUT}s, max_len $FUZZ_MAX_LEN)"
	fi

	if [ -n "${FUZZ_VERBOSE:-}" ]; then
		"$bin" "${args[@]}" "$corpus" "$seeds" 2>&1 | tee "$flog" || rc=${PIPESTATUS[0]}
	else
		"$bin" "${args[@]}" "$corpus" "$seeds" >"$flog" 2>&1 || rc=$?
	fi

	# ---- summary ----
	local execs eps rss units covline cov ft corp
	fstat() { sed -n "s/^stat::$1: *//p" "$flog" | tail -n 1; }
	execs=$(fstat number_of_executed_units)
	eps=$(fstat average_exec_per_sec)
	rss=$(fstat peak_rss_mb)
	units=$(fstat new_units_added)
	covline=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$flog" | tail -n 1 || true)
	cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$covline")
	ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$covline")
	corp=$(sed -n 's/.*corp: \([^ ]*\).*/\1/p' <<<"$covline")

	local bad
	shopt -s nullglob
	bad=("$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*)
	shopt -u nullglob

	log "fuzz_$name: libFuzzer summary"
	note "total execs:   ${execs:-?}"
	note "execs/sec:     ${eps:-?}"
	note "coverage:      cov ${cov:-?} (edges), ft ${ft:-?} (features), corpus ${corp:-?}"
	note "new units:     ${units:-?}, peak RSS ${rss:-?} MB"
	note "exit status:   $rc, failing inputs: ${#bad[@]}"

	if [ "$rc" -ne 0 ] || [ ${#bad[@]} -gt 0 ] || [ -z "$execs" ]; then
		local start f size
		log "fuzz_$name: FAILED; end of the libFuzzer output ($flog):"
		# the report starts at the sanitizer's or our own first line
		start=$(grep -n -m1 -E "^(==[0-9]+==|fuzz_$name: |.*runtime error:|INFO: a leak)" "$flog" | cut -d: -f1 || true)
		if [ -n "$start" ]; then
			sed -n "${start},\$p" "$flog" | head -n 120
		else
			tail -n 60 "$flog"
		fi
		for f in "${bad[@]}"; do
			size=$(wc -c <"$f")
			log "$(basename "$f") ($size bytes), hex:"
			od -An -tx1 -v "$f" | head -n 256
			[ "$size" -le 4096 ] || note "(first 4096 bytes shown)"
			note "reproduce: $bin $f"
			note "       or: FUZZ_TARGETS=$name bash test/fuzz/run.sh $f"
		done
		return 1
	fi
	return 0
}

status=0
if wants entry; then
	run_target entry "$CORPUS" "$SEEDS" "$ARTIFACTS" "$W/fuzz.log" || status=1
fi
if wants resp; then
	run_target resp "$RESP_CORPUS" "$RESP_SEEDS" "$RESP_ARTIFACTS" "$W/fuzz-resp.log" \
		-dict="$W/resp.dict" || status=1
fi
if wants sealed; then
	run_target sealed "$SEALED_CORPUS" "$SEALED_SEEDS" "$SEALED_ARTIFACTS" \
		"$W/fuzz-sealed.log" -dict="$W/sealed.dict" || status=1
fi
if wants cluster; then
	run_target cluster "$CLUSTER_CORPUS" "$CLUSTER_SEEDS" "$CLUSTER_ARTIFACTS" \
		"$W/fuzz-cluster.log" -dict="$W/cluster.dict" || status=1
fi
if wants session; then
	run_target session "$SESSION_CORPUS" "$SESSION_SEEDS" "$SESSION_ARTIFACTS" \
		"$W/fuzz-session.log" -dict="$W/session.dict" || status=1
fi
if wants frame; then
	run_target frame "$FRAME_CORPUS" "$FRAME_SEEDS" "$FRAME_ARTIFACTS" "$W/fuzz-frame.log" || status=1
fi
if wants value; then
	run_target value "$VALUE_CORPUS" "$VALUE_SEEDS" "$VALUE_ARTIFACTS" \
		"$W/fuzz-value.log" || status=1
fi
if [ "$status" -ne 0 ]; then
	exit 1
fi

log "fuzz: OK, no crashes, leaks or timeouts (${targets[*]})"
failed=0
