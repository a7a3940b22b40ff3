#!/usr/bin/env bash
# test/run-tests.sh - build cache_ext and run every test suite
#
# Suites: style (test/lib/check-style.sh: clang-format layout, file and
# function length; run first, needs no build), pg_regress (make installcheck
# against a throwaway server), each TAP
# file under test/t/ (run as the postgres user from a private copy of the
# tree), verify (pg_regress and every TAP file again with
# cache_ext.verify_rate = 1: every hit is also run directly and compared; any
# mismatch fails it), l1 (pg_regress and every TAP file again with the local
# tier on: cache_ext.local_cache_size = CE_L1, 64MB by default; a TAP file
# that ignores CE_L1 (it keeps the tier off, or sets it itself, and says
# why) is not run twice), diff
# (test/diff/run.sh, the differential test: thousands
# of read statements run directly and twice through cached_query_json),
# test/fuzz/run.sh, and test/valgrind.sh (pg_regress
# again with the server under valgrind memcheck; an error in cache_ext's code
# fails it).  Prints one line per suite and,
# last, exactly "N passed, N failed".  Exits non-zero if anything failed.
#
# Usage (as root):
#   bash test/run-tests.sh                       # everything
#   bash test/run-tests.sh --only regress        # or style, tap, verify, l1, diff, fuzz, valgrind; repeatable or comma-separated
#   TAP_TESTS='t/010_hit_miss.pl' bash test/run-tests.sh --only tap
#
# Environment:
#   TAP_TESTS        space-separated TAP files (t/NNN_x.pl or test/t/NNN_x.pl)
#   CE_COPT          compiler flags for the build (default: warnings as errors)
#   CE_SKIP_DEPS=1   do not check/install packages
#   CE_SKIP_BUILD=1  use the extension already installed
#   CE_LOG_DIR       copy the TAP logs (tmp_check/log) there, e.g. for CI artifacts
#   CE_TAP_TIMEOUT   seconds per TAP file before it is killed (default 600)
#   CE_TAP_JOBS      TAP files run at once, the three passes together (default 2)
#   CE_VERIFY_SKIP   TAP files the verify pass skips (default: see tap_add_jobs)
#   CE_L1_SKIP       TAP files the l1 pass skips (default: see tap_add_jobs)
#   CE_FUZZ_TIMEOUT  seconds for test/fuzz/run.sh before it is killed (default 900)
#   CE_FUZZ_SECONDS  passed to test/fuzz/run.sh as its time budget (default 60)
#   CE_DIFF_TIMEOUT  seconds for test/diff/run.sh before it is killed (default 900)
#   CE_DIFF_ARGS     more test/diff/difftest.py arguments, e.g. '--as-role regress_diff_reader'
#   CE_DIFF_PG_CONF  more postgresql.conf lines for the diff suite, e.g. 'cache_ext.verify_rate = 1'
#   CE_DIFF_FAILURES where the differential test writes its failures (JSON lines)
#   CE_L1            e.g. 64MB: run pg_regress and the TAP files with the local
#                    tier on (cache_ext.local_cache_size; the l1 suite's size);
#                    pg_regress outputs are then compared with "HIT (local" read
#                    as "HIT (" (table widths and cache_explain's "local" object
#                    ignored), the only differences L1 makes; TAP files that test
#                    the Redis path keep it off
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage()
{
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# ---- arguments ---------------------------------------------------------------
ONLY=()
while [ $# -gt 0 ]; do
	case "$1" in
		--only)
			[ $# -ge 2 ] || ce_die "--only needs an argument: style, tap, regress, verify, l1, diff, fuzz or valgrind"
			IFS=',' read -r -a parts <<<"$2"
			ONLY+=("${parts[@]}")
			shift 2 ;;
		--only=*)
			IFS=',' read -r -a parts <<<"${1#--only=}"
			ONLY+=("${parts[@]}")
			shift ;;
		-h|--help)
			usage; exit 0 ;;
		*)
			usage >&2; ce_die "unknown argument: $1" ;;
	esac
done
for s in "${ONLY[@]}"; do
	case "$s" in
		style|tap|regress|verify|l1|diff|fuzz|valgrind) ;;
		*) ce_die "--only takes style, tap, regress, verify, l1, diff, fuzz or valgrind, not '$s'" ;;
	esac
done

wanted()
{
	[ ${#ONLY[@]} -eq 0 ] && return 0
	local s
	for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done
	return 1
}

# ---- results -----------------------------------------------------------------
RESULTS=()
NPASS=0
NFAIL=0

record()
{
	local name=$1 ok=$2 secs=$3
	if [ "$ok" = pass ]; then
		NPASS=$((NPASS + 1))
		RESULTS+=("$(printf 'ok      %-32s %4ss' "$name" "$secs")")
	else
		NFAIL=$((NFAIL + 1))
		RESULTS+=("$(printf 'FAILED  %-32s %4ss' "$name" "$secs")")
	fi
}

summary()
{
	local line
	ce_log "Summary"
	for line in "${RESULTS[@]}"; do echo "    $line"; done
	echo "$NPASS passed, $NFAIL failed"
}

ce_require_root
ce_install_traps

# run_bounded SECS CMD...: run CMD under timeout(1), in the background so that
# ^C or SIGTERM reaches our trap at once; timeout(1) puts CMD in its own
# process group, which stop_bounded kills.  Returns CMD's status (124: killed).
BOUNDED_JOB=
run_bounded()
{
	local secs=$1 rc=0
	shift
	timeout --kill-after=30 "$secs" "$@" &
	BOUNDED_JOB=$!
	wait "$BOUNDED_JOB" || rc=$?
	BOUNDED_JOB=
	[ "$rc" -ne 124 ] || ce_warn "killed after ${secs}s: $*"
	return "$rc"
}
stop_bounded()
{
	if [ -n "$BOUNDED_JOB" ]; then
		kill -TERM -- "-$BOUNDED_JOB" 2>/dev/null || kill -TERM "$BOUNDED_JOB" 2>/dev/null || true
		sleep 2
		kill -KILL -- "-$BOUNDED_JOB" 2>/dev/null || true
		BOUNDED_JOB=
	fi
}
CE_CLEANUP_HOOKS+=(stop_bounded)

TAP_TMP=
cleanup_tap_tmp()
{
	if [ -n "$TAP_TMP" ]; then
		ce_kill_strays "$TAP_TMP"
		# CE_KEEP_TAP_TMP=1: keep the trees and server logs to read after a failure
		[ -z "${CE_KEEP_TAP_TMP:-}" ] || { ce_note "kept $TAP_TMP"; TAP_TMP=; return; }
		rm -rf "$TAP_TMP"
		TAP_TMP=
	fi
}
CE_CLEANUP_HOOKS+=(tap_stop_all cleanup_tap_tmp)

# ---- dependencies and build --------------------------------------------------
if [ "${CE_SKIP_DEPS:-0}" != 1 ]; then
	ce_log "Checking packages"
	ce_install_deps
fi

# ---- style -------------------------------------------------------------------
# First, and before the build: it reads the sources only.
if wanted style; then
	ce_log "style (test/lib/check-style.sh)"
	start=$SECONDS
	if bash "$CE_ROOT/test/lib/check-style.sh"; then
		record style pass $((SECONDS - start))
	else
		record style fail $((SECONDS - start))
	fi
fi

# Nothing to build when the style check is all that was asked for.
only_style=0
if [ ${#ONLY[@]} -gt 0 ]; then
	only_style=1
	for s in "${ONLY[@]}"; do [ "$s" = style ] || only_style=0; done
fi

if [ "${CE_SKIP_BUILD:-0}" != 1 ] && [ "$only_style" = 0 ]; then
	ce_log "Building and installing cache_ext"
	start=$SECONDS
	if ce_build_install; then
		ce_note "built and installed"
	else
		record build fail $((SECONDS - start))
		summary
		exit 1
	fi
fi

# ---- pg_regress --------------------------------------------------------------
# With CE_L1 set, a hit the local tier serves reports "HIT (local)": true when
# every result differs from its expected output only by that marker (and the
# table widths it changes), and by cache_explain's "local" object.
regress_same_but_local()
{
	local f name ok=0
	norm() { sed -e 's/HIT (local; /HIT (/g' -e 's/HIT (local)/HIT/g' -e 's/^-[-+]*$/---/' \
		-e '/"local": {/,/},/d' "$1"; }
	for f in "$CE_ROOT"/results/*.out; do
		[ -e "$f" ] || return 1
		name=${f##*/}
		if ! diff -w <(norm "$CE_ROOT/expected/$name") <(norm "$f") >/dev/null; then
			ce_warn "CE_L1: $name differs beyond the local marker:"
			diff -w <(norm "$CE_ROOT/expected/$name") <(norm "$f") | head -n 40 || true
			ok=1
		fi
	done
	return "$ok"
}

# With "verify" as the argument, every hit is also run directly and compared
# (cache_ext.verify_rate = 1): a single mismatch fails the suite.
run_regress()
{
	local rc=0 verify=${1:-} counts
	local saved_conf=$CE_PG_EXTRA_CONF
	[ "$verify" != verify ] || CE_PG_EXTRA_CONF="$CE_PG_EXTRA_CONF
cache_ext.verify_rate = 1"
	[ -z "${CE_L1:-}" ] || CE_PG_EXTRA_CONF="$CE_PG_EXTRA_CONF
cache_ext.local_cache_size = '$CE_L1'"
	ce_start_redis
	ce_start_pg
	CE_PG_EXTRA_CONF=$saved_conf
	# (PGXS would run TAP_TESTS itself if it saw the variable)
	env -u TAP_TESTS make -C "$CE_ROOT" PG_CONFIG="$PG_CONFIG" installcheck || rc=$?
	if [ "$rc" -ne 0 ] && [ -n "${CE_L1:-}" ] && regress_same_but_local; then
		ce_note "CE_L1: the outputs differ only by the local tier's \"HIT (local\" marker"
		rc=0
	fi
	if [ "$verify" = verify ]; then
		# the counters are server-wide; the extension is in pg_regress's database
		counts=$("$CE_PG_BINDIR/psql" -X -d contrib_regression -Atc \
			"SELECT verified || ' ' || verify_mismatches FROM cache_stats" 2>&1) || rc=1
		ce_note "cache_ext.verify_rate = 1: verified and mismatches: $counts"
		case "$counts" in
			*' 0') [ "${counts%% *}" -gt 0 ] || { ce_warn "no hit was verified"; rc=1; } ;;
			*) ce_warn "verification found mismatches (see the server log)"; rc=1 ;;
		esac
	fi
	if [ "$rc" -ne 0 ]; then
		if [ -f "$CE_ROOT/regression.diffs" ]; then
			echo "---- regression.diffs (first 400 lines) ----"
			head -n 400 "$CE_ROOT/regression.diffs"
		fi
		ce_dump_logs
	fi
	ce_stop_all
	return "$rc"
}

if wanted regress; then
	ce_log "pg_regress (make installcheck)"
	start=$SECONDS
	if run_regress; then
		record pg_regress pass $((SECONDS - start))
	else
		record pg_regress fail $((SECONDS - start))
	fi
fi
if wanted l1; then
	ce_log "pg_regress with the local tier on (cache_ext.local_cache_size = ${CE_L1:-64MB})"
	start=$SECONDS
	if CE_L1=${CE_L1:-64MB} run_regress; then
		record l1:pg_regress pass $((SECONDS - start))
	else
		record l1:pg_regress fail $((SECONDS - start))
	fi
fi
if wanted verify; then
	ce_log "pg_regress with cache_ext.verify_rate = 1"
	start=$SECONDS
	if run_regress verify; then
		record verify:pg_regress pass $((SECONDS - start))
	else
		record verify:pg_regress fail $((SECONDS - start))
	fi
fi

# ---- TAP ---------------------------------------------------------------------
# The TAP framework's servers run as the postgres OS user, who must be able to
# write tmp_check/ next to the tests: so run from a private copy of the tree.
#
# The tap, verify and l1 passes make one queue of (pass, file) jobs, run
# CE_TAP_JOBS at a time (2 by default): most files spend most of their time
# waiting (Sentinel's timers, failovers, timeouts, phases of a fixed length),
# so that two at once on 2 cores take little more than half the time.  Each
# slot has its own copy of the tree (its own tmp_check/ and logs) and its own
# HOME and TMPDIR; every port a file uses comes from get_free_port(), whose
# reservations (PG_TEST_PORT_DIR, shared by the slots) keep two files off
# each other's ports.  A file's output is printed whole when it ends; the
# summary keeps the order of the passes and files.

TAP_JOB_PASS=()		# per job: tap, verify or l1
TAP_JOB_REL=()		# per job: test/t/NNN_x.pl
TAP_JOB_RESULT=()	# per job: "pass SECS" or "fail SECS" once it ended
TAP_SLOT_PID=()		# per busy slot: the pid of its timeout(1)
TAP_SLOT_JOB=()
TAP_SLOT_START=()

tap_label()
{
	case "$1" in
		tap) echo tap ;;
		*) echo "$1:tap" ;;
	esac
}

# tap_add_jobs [tap|verify|l1]: queue the files of one pass (TAP_TESTS, or
# every test/t/*.pl), less those the pass skips.
tap_add_jobs()
{
	local pass=$1 label files=() f rel name
	label=$(tap_label "$pass")

	if [ -n "${TAP_TESTS:-}" ]; then
		for f in $TAP_TESTS; do
			if [ -f "$CE_ROOT/test/$f" ]; then files+=("test/$f")
			elif [ -f "$CE_ROOT/$f" ]; then files+=("$f")
			else ce_warn "TAP test $f not found"; record "$label:$f" fail 0
			fi
		done
	else
		for f in "$CE_ROOT"/test/t/*.pl; do
			[ -e "$f" ] && files+=("test/t/${f##*/}")
		done
	fi

	for rel in "${files[@]}"; do
		name=${rel##*/}
		# these roll Redis back behind cache_ext's back on purpose, to prove
		# that their checkers see the stale hits: verification would hide them;
		# 230 and 231 also hold commits and replay in the windows a hit may be
		# older (primary, before COMMIT returns) or newer (a standby) than the
		# caller's snapshot, which verification counts as mismatches
		# (240 starts no PostgreSQL, 250 checks the exporter's figures, 241
		# and 242 check every read of their failovers against the commits
		# directly); and, to keep the run under 25 minutes, the files whose
		# hits are few and not their subject (Redis down, hung, hostile,
		# recovering, TLS, ACLs, managed services, settings, leaks, the
		# statistics under concurrency): verification would re-run little;
		# 244 and 316 run the consistency checker while commits land (a hit
		# may be older than a direct read a moment later, which verification
		# counts; their checkers find 0 stale reads); 306, 308 and 309 test
		# which statements a rule serves, not the hits' rows; 012 sets its own
		# settings (no preload, no verify_rate); 319 reviews 318 (timing);
		# 245 tests the TLS cluster
		# client (its hits are few and not its subject); 246 (like 244) runs
		# the checker through a cluster's migrations and failovers; 233
		# counts Redis clients and MSETs while commits gather (timing); 318 (like 312) times the
		# refresh workers of several databases, whose hits are few
		case " ${CE_VERIFY_SKIP:-070_consistency.pl 170_verify.pl 230_async_commit.pl 231_review13_async.pl 240_cluster_map.pl 241_sentinel.pl 242_review15_sentinel.pl 250_monitoring.pl 020_redis_down.pl 030_redis_hung.pl 040_leaks.pl 050_hostile_redis.pl 080_recovery.pl 091_query_stats_concurrency.pl 120_tls.pl 150_acl.pl 160_settings.pl 243_managed.pl 260_values.pl 262_review15b.pl 270_sessions.pl 280_single_flight.pl 282_review_flight.pl 292_review_compress.pl 300_rules.pl 302_review_rules.pl 303_review_rules2.pl 304_policies.pl 310_warming.pl 312_refresh_ahead.pl 314_review_refresh.pl 244_cluster_wired.pl 306_rules_protocols.pl 308_review_meaning.pl 309_review_meaning2.pl 316_refresh_consistency.pl 012_no_preload.pl 318_refresh_databases.pl 245_cluster_tls.pl 319_review_refresh_db.pl 246_review_spread.pl 233_review_gather.pl} " in
			*" $name "*) [ "$pass" != verify ] || { ce_note "verify: $name skipped (see CE_VERIFY_SKIP in run-tests.sh)"; continue; } ;;
		esac
		# a file that keeps the local tier off or sets it itself (it says
		# why) would only repeat the tap pass
		if [ "$pass" = l1 ] && grep -q '^delete \$ENV{CE_L1};' "$CE_ROOT/$rel"; then
			ce_note "l1: $name skipped (it ignores CE_L1: the tap pass runs it as it is)"
			continue
		fi
		# the statistics under concurrency, values and sessions do not
		# depend on the tier, and single flight starts only after a miss of
		# the tier; 244 tests the cluster client (Redis, not the tier); 306,
		# 308 and 309 which statements a rule serves (300's l1 pass serves
		# rules from the tier); 245 the TLS cluster client (it keeps the tier
		# off); 246 reviews the cluster client's spread entries; 318 and 319 schedule refresh workers (the tier adds
		# nothing to it)
		case " ${CE_L1_SKIP:-091_query_stats_concurrency.pl 260_values.pl 262_review15b.pl 270_sessions.pl 280_single_flight.pl 282_review_flight.pl 302_review_rules.pl 303_review_rules2.pl 312_refresh_ahead.pl 244_cluster_wired.pl 306_rules_protocols.pl 308_review_meaning.pl 309_review_meaning2.pl 318_refresh_databases.pl 245_cluster_tls.pl 319_review_refresh_db.pl 246_review_spread.pl} " in
			*" $name "*) [ "$pass" != l1 ] || { ce_note "l1: $name skipped (see CE_L1_SKIP in run-tests.sh)"; continue; } ;;
		esac
		TAP_JOB_PASS+=("$pass")
		TAP_JOB_REL+=("$rel")
	done
}

# tap_start SLOT JOB: start a job in SLOT's tree, in the background, under
# timeout(1) (which leads its own process group: tap_stop_all kills it).
tap_start()
{
	local slot=$1 j=$2 dir=$TAP_TMP/w$1 pass=${TAP_JOB_PASS[$2]} rel=${TAP_JOB_REL[$2]}
	local l1=${CE_L1:-} verify= perl_lib=$CE_PGXS_TEST_DIR/perl
	[ "$pass" != l1 ] || l1=${CE_L1:-64MB}
	[ "$pass" != verify ] || verify=1

	ce_note "$(tap_label "$pass"):${rel##*/} started (slot $slot)"
	rm -rf "$dir/tree/tmp_check/log"
	timeout --kill-after=30 "${CE_TAP_TIMEOUT:-600}" runuser -u postgres -- env -C "$dir/tree" \
		CE_VERIFY_RATE="$verify" \
		CE_L1="$l1" \
		PATH="$CE_PG_BINDIR:/usr/local/bin:/usr/bin:/bin" \
		HOME="$dir" \
		TMPDIR="$dir" \
		PG_TEST_PORT_DIR="$TAP_TMP/portlock" \
		PG_REGRESS="$CE_PGXS_TEST_DIR/regress/pg_regress" \
		TESTDIR="$dir/tree" \
		PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-60}" \
		prove -v -I "$perl_lib" -I test/perl "$rel" >"$dir/out" 2>&1 &
	TAP_SLOT_PID[$slot]=$!
	TAP_SLOT_JOB[$slot]=$j
	TAP_SLOT_START[$slot]=$SECONDS
}

# tap_finish SLOT RC: the job in SLOT ended with RC: stop what it left
# running, print its output and, if it failed, the ends of its logs.
tap_finish()
{
	local slot=$1 rc=$2 dir=$TAP_TMP/w$1 j=${TAP_SLOT_JOB[$1]} secs log
	local pass=${TAP_JOB_PASS[$j]} name=${TAP_JOB_REL[$j]##*/} tree=$TAP_TMP/w$1/tree
	secs=$((SECONDS - TAP_SLOT_START[slot]))
	unset "TAP_SLOT_PID[$slot]"

	# A test that was killed leaves its servers behind.
	ce_kill_strays "$dir"
	case "$pass" in
		verify) ce_log "TAP $name (cache_ext.verify_rate = 1): ${secs}s" ;;
		l1) ce_log "TAP $name (cache_ext.local_cache_size = ${CE_L1:-64MB}): ${secs}s" ;;
		*) ce_log "TAP $name: ${secs}s" ;;
	esac
	[ "$rc" -ne 124 ] || ce_warn "killed after ${CE_TAP_TIMEOUT:-600}s: $name"
	cat "$dir/out"
	if [ "$pass" = verify ] && [ -d "$tree/tmp_check/log" ] &&
		grep -l 'a stored result differed from the direct result' "$tree"/tmp_check/log/*.log 2>/dev/null; then
		ce_warn "$name: cache_ext.verify_rate found a hit that differed from the direct result"
		grep -h -A2 'a stored result differed' "$tree"/tmp_check/log/*.log | head -n 40 || true
		rc=1
	fi
	if [ "$rc" -ne 0 ]; then
		log=$tree/tmp_check/log/regress_log_${name%.pl}
		if [ -f "$log" ]; then
			echo "---- last 150 lines of $log ----"
			tail -n 150 "$log"
		fi
		for log in "$tree"/tmp_check/log/"${name%.pl}"_*.log; do
			[ -f "$log" ] || continue
			echo "---- last 60 lines of server log ${log##*/} ----"
			tail -n 60 "$log"
		done
	fi
	if [ -n "${CE_LOG_DIR:-}" ] && [ -d "$tree/tmp_check/log" ]; then
		# (the verify and l1 passes in subdirectories)
		log=$CE_LOG_DIR
		[ "$pass" = tap ] || log=$CE_LOG_DIR/$pass
		mkdir -p "$log"
		cp -a "$tree/tmp_check/log/." "$log/"
	fi
	if [ "$rc" -eq 0 ]; then
		TAP_JOB_RESULT[$j]="pass $secs"
	else
		TAP_JOB_RESULT[$j]="fail $secs"
	fi
}

# tap_stop_all: kill the jobs still running (on exit or interrupt).
tap_stop_all()
{
	local pid
	[ -n "${TAP_SLOT_PID[*]:-}" ] || return 0
	for pid in "${TAP_SLOT_PID[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 2
	for pid in "${TAP_SLOT_PID[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	TAP_SLOT_PID=()
}

# run_tap PASS...: run the jobs of the passes given (tap, verify, l1) and
# record them.  The files that take longest start first, in TAP_LONG's
# order (from a full run's summary), so that the short ones fill in around
# them; the passes of one file are kept apart in it, so that they do not
# run side by side (060 twice at once, each spawning thousands of psql,
# starved Redis on a loaded machine).  The order only: a name missing from
# it is harmless.
TAP_LONG='tap:241_sentinel.pl tap:242_review15_sentinel.pl
l1:tap:070_consistency.pl l1:tap:241_sentinel.pl tap:070_consistency.pl
tap:231_review13_async.pl tap:230_async_commit.pl tap:233_review_gather.pl tap:240_cluster_map.pl
tap:110_key_tracking.pl verify:tap:060_write_paths.pl l1:tap:110_key_tracking.pl
tap:091_query_stats_concurrency.pl verify:tap:110_key_tracking.pl
tap:312_refresh_ahead.pl tap:318_refresh_databases.pl tap:319_review_refresh_db.pl tap:060_write_paths.pl tap:040_leaks.pl
tap:292_review_compress.pl tap:310_warming.pl l1:tap:060_write_paths.pl
tap:314_review_refresh.pl tap:280_single_flight.pl tap:250_monitoring.pl
l1:tap:314_review_refresh.pl tap:244_cluster_wired.pl tap:246_review_spread.pl tap:316_refresh_consistency.pl
l1:tap:316_refresh_consistency.pl tap:300_rules.pl'
# TAP_HEAVY: files that keep both cores busy by themselves (the consistency
# checker's writers and readers at full speed; 060's thousands of psql) and,
# for the Sentinel ones, fail over on their own when a server stalls for a
# second: never two of them at once (on a loaded machine, l1:241 beside
# l1:070 saw its sentinels fail over again after the test's failovers, and
# two 060 starved their Redis past cache_ext's deadlines).  The other slots
# take lighter files meanwhile.
TAP_HEAVY='060_write_paths.pl 070_consistency.pl 241_sentinel.pl 242_review15_sentinel.pl 244_cluster_wired.pl 246_review_spread.pl 316_refresh_consistency.pl'

# TAP_ALONE: files whose Redis Sentinel fails over by itself when a server
# stalls for a second (down-after 1 s): run with nothing beside them (the
# CI run paired with 230 saw tap:241's sentinels fail over again after the
# test's failovers, so its last phase found no master to hit).
TAP_ALONE='241_sentinel.pl 242_review15_sentinel.pl'

tap_alone()
{
	case " $TAP_ALONE " in
		*" ${TAP_JOB_REL[$1]##*/} "*) return 0 ;;
	esac
	return 1
}

tap_heavy()
{
	case " $TAP_HEAVY " in
		*" ${TAP_JOB_REL[$1]##*/} "*) return 0 ;;
	esac
	return 1
}

run_tap()
{
	local pass j slot s pid rc nslots=${CE_TAP_JOBS:-2} order=() long=() rest=() key
	local heavy_busy alone_busy any_busy k
	local -A first=()

	for pass in "$@"; do tap_add_jobs "$pass"; done
	if [ ${#TAP_JOB_REL[@]} -eq 0 ]; then
		ce_note "no TAP tests to run"
		return 0
	fi
	[ "$nslots" -ge 1 ] 2>/dev/null || ce_die "CE_TAP_JOBS must be a positive number, not '$nslots'"

	for j in "${!TAP_JOB_REL[@]}"; do
		first["$(tap_label "${TAP_JOB_PASS[$j]}"):${TAP_JOB_REL[$j]##*/}"]=$j
	done
	for key in $TAP_LONG; do
		[ -z "${first[$key]:-}" ] || { long+=("${first[$key]}"); unset "first[$key]"; }
	done
	for j in "${!TAP_JOB_REL[@]}"; do
		key="$(tap_label "${TAP_JOB_PASS[$j]}"):${TAP_JOB_REL[$j]##*/}"
		[ -z "${first[$key]:-}" ] || rest+=("$j")
	done
	# (the jobs not started yet, in the order they should start)
	order=("${long[@]}" "${rest[@]}")

	TAP_TMP=$(mktemp -d /tmp/cache_ext-tap.XXXXXX)
	chmod 755 "$TAP_TMP"
	mkdir "$TAP_TMP/portlock"
	for slot in $(seq 1 "$nslots"); do
		mkdir -p "$TAP_TMP/w$slot/tree"
		tar -C "$CE_ROOT" --exclude=./.git --exclude=./tmp_check -cf - . | tar -C "$TAP_TMP/w$slot/tree" -xf -
	done
	chown -R postgres: "$TAP_TMP"
	ce_log "TAP: ${#order[@]} files (${*}), $nslots at a time"

	while [ ${#order[@]} -gt 0 ] || [ ${#TAP_SLOT_PID[@]} -gt 0 ]; do
		for slot in $(seq 1 "$nslots"); do
			[ -z "${TAP_SLOT_PID[$slot]:-}" ] || continue
			heavy_busy=0
			alone_busy=0
			any_busy=0
			for s in "${!TAP_SLOT_PID[@]}"; do
				any_busy=1
				if tap_heavy "${TAP_SLOT_JOB[$s]}"; then heavy_busy=1; fi
				if tap_alone "${TAP_SLOT_JOB[$s]}"; then alone_busy=1; fi
			done
			[ "$alone_busy" = 0 ] || continue
			for k in "${!order[@]}"; do
				if tap_alone "${order[$k]}" && [ "$any_busy" = 1 ]; then
					continue
				fi
				if [ "$heavy_busy" = 0 ] || ! tap_heavy "${order[$k]}"; then
					tap_start "$slot" "${order[$k]}"
					unset "order[$k]"
					break
				fi
			done
		done
		rc=0
		wait -n -p pid "${TAP_SLOT_PID[@]}" || rc=$?
		for slot in "${!TAP_SLOT_PID[@]}"; do
			[ "${TAP_SLOT_PID[$slot]}" != "$pid" ] || tap_finish "$slot" "$rc"
		done
	done

	for j in "${!TAP_JOB_REL[@]}"; do
		record "$(tap_label "${TAP_JOB_PASS[$j]}"):${TAP_JOB_REL[$j]##*/}" ${TAP_JOB_RESULT[$j]:-fail 0}
	done
	cleanup_tap_tmp
}

passes=()
if wanted tap; then passes+=(tap); fi
if wanted verify; then passes+=(verify); fi
if wanted l1; then passes+=(l1); fi
if [ ${#passes[@]} -gt 0 ]; then
	run_tap "${passes[@]}"
fi

# ---- fuzz --------------------------------------------------------------------
# One core: it runs in the background while the differential test and
# valgrind (which use the other) run, and its output is shown after them.
FUZZ_PID=
if wanted fuzz; then
	if [ -f "$CE_ROOT/test/fuzz/run.sh" ]; then
		ce_log "fuzz (test/fuzz/run.sh, budget ${CE_FUZZ_SECONDS:-60}s): started in the background"
		FUZZ_LOG=$(mktemp /tmp/cache_ext-fuzz.XXXXXX)
		FUZZ_START=$SECONDS
		# (timeout(1) leads its own process group: the exit hook kills it)
		timeout --kill-after=30 "${CE_FUZZ_TIMEOUT:-900}" env -C "$CE_ROOT" \
			CE_FUZZ_SECONDS="${CE_FUZZ_SECONDS:-60}" bash test/fuzz/run.sh >"$FUZZ_LOG" 2>&1 &
		FUZZ_PID=$!
		CE_CLEANUP_HOOKS+=('[ -z "$FUZZ_PID" ] || kill -TERM -- "-$FUZZ_PID" 2>/dev/null || true')
	else
		ce_note "fuzz: skipped (test/fuzz/run.sh does not exist yet)"
	fi
fi

# Wait for the fuzz run, show its output and record it.
finish_fuzz()
{
	local rc=0
	[ -n "$FUZZ_PID" ] || return 0
	wait "$FUZZ_PID" || rc=$?
	ce_log "fuzz (test/fuzz/run.sh): its output"
	[ "$rc" -ne 124 ] || ce_warn "fuzz: killed after ${CE_FUZZ_TIMEOUT:-900}s"
	cat "$FUZZ_LOG"
	rm -f "$FUZZ_LOG"
	if [ "$rc" -eq 0 ]; then
		record fuzz pass $((SECONDS - FUZZ_START))
	else
		record fuzz fail $((SECONDS - FUZZ_START))
	fi
	FUZZ_PID=
}

# ---- differential test -------------------------------------------------------
# Starts and stops its own Redis and PostgreSQL.
if wanted diff; then
	ce_log "differential test (test/diff/run.sh)"
	start=$SECONDS
	if run_bounded "${CE_DIFF_TIMEOUT:-900}" env -C "$CE_ROOT" PG_CONFIG="$PG_CONFIG" \
		bash test/diff/run.sh; then
		record diff pass $((SECONDS - start))
	else
		record diff fail $((SECONDS - start))
	fi
fi

# ---- valgrind ----------------------------------------------------------------
# Last: it installs its own -O0 build of the extension.
if wanted valgrind; then
	ce_log "valgrind (test/valgrind.sh: pg_regress with the server under memcheck)"
	start=$SECONDS
	if run_bounded 1800 env -C "$CE_ROOT" CE_SKIP_DEPS=1 bash test/valgrind.sh; then
		record valgrind pass $((SECONDS - start))
	else
		record valgrind fail $((SECONDS - start))
	fi
fi

finish_fuzz
summary
[ "$NFAIL" -eq 0 ]
