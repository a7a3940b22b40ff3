#!/usr/bin/env bash
# test/valgrind.sh - run the pg_regress suite against a PostgreSQL under Valgrind
#
# Builds cache_ext with -O0 -g (in a private copy of the tree, so the work
# tree's objects and results/ are left alone) and installs it, starts a
# throwaway Redis and a throwaway PostgreSQL 15 cluster whose postmaster runs
# under valgrind memcheck (every backend is a forked child, so it is checked
# too), runs `make installcheck` against it, stops everything by PID and then
# reads the valgrind logs.
#
# An error is ours when any of its stacks (the error itself, the block it
# touched, where an uninitialised value came from, where a leaked block was
# allocated) has a frame in cache_ext.so or in hiredis, which only cache_ext
# loads; libcrypto/libssl frames count when a cache_ext frame called them.
# Ours: invalid reads/writes/frees, uses of uninitialised values, overlapping
# copies, bad syscall arguments, fatal signals, and blocks "definitely lost"
# whose allocation stack has a cache_ext frame (PostgreSQL leaves memory
# behind at exit by design, so other leaks are not counted).  Everything else
# is listed separately as "not ours".
#
# Note: Debian's PostgreSQL is not built with USE_VALGRIND, so memcheck sees
# palloc'd memory only as the malloc'd blocks behind memory contexts: misuse
# of palloc'd chunks inside a live context is mostly invisible.  malloc'd
# memory (hiredis, OpenSSL, our own malloc) and uninitialised values are
# fully checked.
#
# Usage (as root, on Debian 12):
#   bash test/valgrind.sh
#   bash test/valgrind.sh --scan DIR   # only read logs kept with CE_VG_KEEP_LOGS=DIR
#
# Exit status: 0 no error in our code and installcheck passed; 1 errors in our
# code (printed with their stacks); 2 installcheck failed or timed out but no
# error in our code was found; anything else: the harness itself failed (the
# message says why).
#
# Environment:
#   CE_SKIP_DEPS=1       do not check/install packages (valgrind is still required)
#   CE_SKIP_BUILD=1      use the extension already installed (built with -g, ideally)
#   CE_VG_COPT           compiler flags for the build (default: -O0 -g)
#   CE_VG_TIMEOUT        seconds for make installcheck before it is killed (default 900)
#   CE_L1                e.g. 64MB: the local tier on as well (then installcheck
#                        differs by "HIT (local)": read the valgrind verdict)
#   CE_VG_PG_TIMEOUT     pg_ctl -t for starting and stopping the server (default 600)
#   CE_VG_PG_SUPP        PostgreSQL's own src/tools/valgrind.supp, if you have a
#                        source tree; used in addition to test/valgrind.supp
#   CE_VG_LEAK_CHECK     valgrind --leak-check value (default full)
#   CE_VG_EXTRA_OPTS     more valgrind options, e.g. --gen-suppressions=all
#   CE_VG_KEEP_LOGS      a directory to copy the valgrind logs and server log into
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage()
{
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

SCAN_ONLY=
case "${1:-}" in
	-h|--help) usage; exit 0 ;;
	--scan)
		if [ $# -ne 2 ] || [ ! -d "$2" ]; then
			ce_die "--scan needs a directory of vg.*.log files"
		fi
		SCAN_ONLY=$2 ;;
	'') ;;
	*) usage >&2; ce_die "unknown argument: $1" ;;
esac

: "${CE_VG_COPT=-O0 -g}"
: "${CE_VG_TIMEOUT:=900}"
: "${CE_VG_PG_TIMEOUT:=600}"
: "${CE_VG_LEAK_CHECK:=full}"
: "${CE_VG_EXTRA_OPTS:=}"
: "${CE_VG_KEEP_LOGS:=}"

VG_SUPP_OURS="$CE_ROOT/test/valgrind.supp"

# State for vg_cleanup; empty means "nothing to do".
VG_TMP=				# private copy of the tree (root's)
VG_TREE=
VG_LOGDIR=			# valgrind logs, inside CE_PG_DIR (postgres')
VG_INSTALLCHECK_PID=	# the `timeout make installcheck` job
VG_PM_PID=

# ---- stopping ----------------------------------------------------------------

# vg_log_pids: the PID of every process valgrind wrote a log for.
vg_log_pids()
{
	local f
	[ -n "$VG_LOGDIR" ] && [ -d "$VG_LOGDIR" ] || return 0
	for f in "$VG_LOGDIR"/vg.*.log; do
		[ -e "$f" ] || continue
		f=${f##*/vg.}
		echo "${f%.log}"
	done
}

# vg_ours PID: true if PID is alive and works below our cluster directory
# (a postmaster and its children run in the data directory).
vg_ours()
{
	local pid=$1 cwd
	ce_pid_alive "$pid" || return 1
	cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
	case "$cwd" in
		"$CE_PG_DIR"/*) return 0 ;;
	esac
	return 1
}

# vg_stop_pg: stop the valgrind'd cluster.  pg_ctl stop -m fast with a long
# timeout; then -m immediate; then SIGKILL the postmaster.  Then wait for (or
# SIGKILL) every process that wrote a valgrind log and still runs in our
# cluster directory: valgrind writes its leak report after the postmaster has
# removed postmaster.pid, so pg_ctl returning is not the end.
vg_stop_pg()
{
	local pid
	if [ -n "$CE_PG_DATA" ] && [ -f "$CE_PG_DATA/postmaster.pid" ]; then
		VG_PM_PID=$(head -n 1 "$CE_PG_DATA/postmaster.pid" | tr -dc '0-9')
		if ! ce_as_postgres "$CE_PG_BINDIR/pg_ctl" -D "$CE_PG_DATA" -m fast -w \
			-t "$CE_VG_PG_TIMEOUT" stop >/dev/null 2>&1; then
			ce_warn "pg_ctl stop -m fast failed; trying -m immediate"
			ce_as_postgres "$CE_PG_BINDIR/pg_ctl" -D "$CE_PG_DATA" -m immediate -w \
				-t 120 stop >/dev/null 2>&1 || true
		fi
	fi
	CE_PG_DATA=
	if [ -n "$VG_PM_PID" ] && ! ce_wait_pid_gone "$VG_PM_PID" 300; then
		if vg_ours "$VG_PM_PID"; then
			ce_warn "postmaster $VG_PM_PID still running; sending SIGKILL"
			kill -KILL "$VG_PM_PID" 2>/dev/null || true
			ce_wait_pid_gone "$VG_PM_PID" 30 || ce_warn "postmaster $VG_PM_PID still present"
		fi
	fi
	VG_PM_PID=
	for pid in $(vg_log_pids); do
		vg_ours "$pid" || continue
		if ! ce_wait_pid_gone "$pid" 120 && vg_ours "$pid"; then
			ce_warn "server process $pid still running; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			ce_wait_pid_gone "$pid" 30 || ce_warn "process $pid still present"
		fi
	done
}

# vg_cleanup: runs on any exit, before common.sh's ce_stop_all (which stops
# Redis and removes the server directories).  Idempotent.
vg_cleanup()
{
	if [ -n "$VG_INSTALLCHECK_PID" ]; then
		if ce_pid_alive "$VG_INSTALLCHECK_PID"; then
			# timeout(1) passes the signal on to its whole process group.
			kill -TERM "$VG_INSTALLCHECK_PID" 2>/dev/null || true
			ce_wait_pid_gone "$VG_INSTALLCHECK_PID" 40 ||
				kill -KILL "$VG_INSTALLCHECK_PID" 2>/dev/null || true
		fi
		wait "$VG_INSTALLCHECK_PID" 2>/dev/null || true
		VG_INSTALLCHECK_PID=
	fi
	vg_stop_pg
	if [ -n "$VG_TMP" ]; then rm -rf "$VG_TMP"; VG_TMP=; fi
}

# ---- starting ----------------------------------------------------------------

# vg_setup_dir DIR: ce_start_pg's setup hook.  Puts the valgrind logs, the
# suppression files (where the postgres user can read them) and a postgres
# wrapper that execs valgrind in the server's directory; pg_ctl -p names the
# wrapper, so the PID pg_ctl waits for is the postmaster's.
vg_setup_dir()
{
	local dir=$1 supp vgopts=() f

	VG_LOGDIR=$dir/vg
	mkdir -p "$VG_LOGDIR" "$dir/supp"
	for f in "$VG_SUPP_OURS" ${CE_VG_PG_SUPP:+"$CE_VG_PG_SUPP"}; do
		[ -f "$f" ] || ce_die "suppression file $f not found"
		supp=$dir/supp/$(printf '%02d' "${#vgopts[@]}")-${f##*/}
		cp "$f" "$supp"
		vgopts+=("--suppressions=$supp")
	done
	chown -R postgres: "$VG_LOGDIR" "$dir/supp"

	vgopts=(
		--tool=memcheck
		--trace-children=yes
		--track-origins=yes
		--error-exitcode=0
		--read-var-info=no
		--num-callers=30
		--leak-check="$CE_VG_LEAK_CHECK"
		--show-leak-kinds=definite
		--errors-for-leak-kinds=definite
		--vgdb=no
		--fullpath-after="${VG_TREE:-$CE_ROOT}/"
		"${vgopts[@]}"
		--log-file="$VG_LOGDIR/vg.%p.log"
	)
	# shellcheck disable=SC2206
	[ -z "$CE_VG_EXTRA_OPTS" ] || vgopts+=($CE_VG_EXTRA_OPTS)
	{
		echo '#!/bin/sh'
		echo '# postgres under valgrind, for pg_ctl -p (written by test/valgrind.sh)'
		printf 'exec %q' "$(command -v valgrind)"
		printf ' %q' "${vgopts[@]}" "$CE_PG_BINDIR/postgres"
		printf ' "$@"\n'
	} >"$dir/postgres-valgrind"
	chmod 755 "$dir/postgres-valgrind"
	chown postgres: "$dir/postgres-valgrind"
	CE_PG_CTL_START_OPTS="-p $dir/postgres-valgrind -t $CE_VG_PG_TIMEOUT"
}

# vg_start_pg: ce_start_pg with the postmaster under valgrind and JIT off.
vg_start_pg()
{
	CE_PG_PRELOAD=cache_ext
	CE_PG_EXTRA_CONF="jit = off"
	# CE_L1: the local tier on too (installcheck then differs by "HIT (local)")
	[ -z "${CE_L1:-}" ] || CE_PG_EXTRA_CONF="$CE_PG_EXTRA_CONF
cache_ext.local_cache_size = '$CE_L1'"
	CE_PG_SETUP_HOOK=vg_setup_dir
	ce_start_pg
	VG_PM_PID=$(head -n 1 "$CE_PG_DATA/postmaster.pid" | tr -dc '0-9')
	ce_note "the postmaster runs under valgrind (logs in $VG_LOGDIR)"
}

# ---- reading the logs --------------------------------------------------------

# vg_scan PGLOG SRCFILES LOGFILE...: print the errors in our code and the others;
# exit status 1 if any error is ours.
vg_scan()
{
	perl -e '
use strict;
use warnings;

my ($pglog, $srcfiles, @files) = @ARGV;

# A frame in our code: our .so (no debug info), or one of our source files.
my $src_re = join("|", map { quotemeta } grep { length } split(/\s+/, $srcfiles));
$src_re = qr{[(/](?:$src_re):\d+\)};

# Which regression test a backend ran: pg_regress sets application_name.
my %app;
if (open(my $fh, "<", $pglog)) {
	while (<$fh>) {
		$app{$1} //= $2 if /\[(\d+)\] (pg_regress\/\S+) /;
	}
	close $fh;
}

my (%seen, @order);
my ($nerr, $nctx, $nsupp, $nsuppctx, $nprocs) = (0, 0, 0, 0, 0);

sub is_ours {
	my ($text, $kind) = @_;
	my $ours = $text =~ /cache_ext\.so/ || $text =~ $src_re || $text =~ /libhiredis/;
	return 0 unless $ours;
	# Only blocks "definitely lost" count among leaks.
	return 0 if $kind =~ /\blost in loss record\b/ && $kind !~ /definitely lost/;
	return 1;
}

sub flush {
	my ($pid, $file, @block) = @_;
	return unless @block;
	return unless grep { /^\s+(?:at|by) 0x/ } @block;
	return if $block[0] =~ /^(?:Warning:|HEAP SUMMARY|LEAK SUMMARY|Memcheck,)/;
	my $text = join("\n", @block);
	(my $key = $text) =~ s/0x[0-9A-Fa-f]+/0x_/g;
	$key =~ s/^[\d,]+ (?:\([\d,]+ direct, [\d,]+ indirect\) )?bytes in [\d,]+ blocks/N bytes in N blocks/;
	$key =~ s/loss record [\d,]+ of [\d,]+/loss record/;
	$key =~ s/ of size \d+/ of size N/g;
	$key =~ s/is [\d,]+ bytes (inside|after|before)/is N bytes $1/g;
	unless ($seen{$key}) {
		$seen{$key} = { text => $text, ours => is_ours($text, $block[0]),
			pids => [], file => $file };
		push @order, $key;
	}
	$seen{$key}{count}++;
	push @{ $seen{$key}{pids} }, $pid unless grep { $_ eq $pid } @{ $seen{$key}{pids} };
}

for my $file (@files) {
	my ($pid) = $file =~ /vg\.(\d+)\.log$/;
	open(my $fh, "<", $file) or die "$file: $!\n";
	$nprocs++;
	my @block;
	while (my $line = <$fh>) {
		chomp $line;
		next unless $line =~ s/^==\d+== ?//;
		if ($line =~ /ERROR SUMMARY: ([\d,]+) errors from ([\d,]+) contexts \(suppressed: ([\d,]+) from ([\d,]+)\)/) {
			my @n = map { (my $x = $_) =~ tr/,//d; $x } ($1, $2, $3, $4);
			$nerr += $n[0]; $nctx += $n[1]; $nsupp += $n[2]; $nsuppctx += $n[3];
		}
		if ($line =~ /^\s*$/) {
			flush($pid, $file, @block);
			@block = ();
			next;
		}
		push @block, $line;
	}
	flush($pid, $file, @block);
	close $fh;
}

sub where {
	my ($e) = @_;
	my @p = @{ $e->{pids} };
	my @shown = map { $app{$_} ? "$_ ($app{$_})" : "$_" } @p[0 .. ($#p < 5 ? $#p : 4)];
	my $more = @p > 5 ? sprintf(", and %d more", @p - 5) : "";
	my $file = $e->{file};
	$file =~ s{.*/}{};
	return sprintf("%d time%s in %d process%s: pid %s%s; first in %s", $e->{count},
		$e->{count} == 1 ? "" : "s", scalar(@p), @p == 1 ? "" : "es",
		join(", ", @shown), $more, $file);
}

sub show {
	my ($title, @keys) = @_;
	printf "\n==> %s: %d distinct\n", $title, scalar(@keys);
	my $i = 0;
	for my $k (@keys) {
		my $e = $seen{$k};
		$i++;
		printf "\n---- [%d] %s\n", $i, (split /\n/, $e->{text})[0];
		printf "     in %s\n", where($e);
		print "$e->{text}\n";
	}
}

my @ours = grep { $seen{$_}{ours} } @order;
my @theirs = grep { !$seen{$_}{ours} } @order;
printf "    %d valgrind logs; %d errors (%d contexts) reported, %d (%d contexts) suppressed\n",
	$nprocs, $nerr, $nctx, $nsupp, $nsuppctx;
show("not ours (PostgreSQL or system libraries only)", @theirs);
show("ERRORS IN cache_ext (a cache_ext.so or hiredis frame)", @ours);
exit(@ours ? 1 : 0);
' "$@"
}

# ---- main --------------------------------------------------------------------

if [ -n "$SCAN_ONLY" ]; then
	shopt -s nullglob
	logs=("$SCAN_ONLY"/vg.*.log)
	shopt -u nullglob
	[ ${#logs[@]} -gt 0 ] || ce_die "no vg.*.log files in $SCAN_ONLY"
	srcfiles=$(cd "$CE_ROOT" && find src -name '*.[ch]' | sort | tr '\n' ' ')
	vg_scan "$SCAN_ONLY/postgresql.log" "$srcfiles" "${logs[@]}"
	exit
fi

ce_require_root
ce_install_traps
CE_CLEANUP_HOOKS+=(vg_cleanup)
T0=$SECONDS

if [ "${CE_SKIP_DEPS:-0}" != 1 ]; then
	ce_log "Checking packages"
	ce_install_deps
fi
command -v valgrind >/dev/null || ce_die "valgrind is not installed (apt-get install valgrind)"
[ -f "$VG_SUPP_OURS" ] || ce_die "$VG_SUPP_OURS is missing"

VG_TMP=$(mktemp -d /tmp/cache_ext-vg.XXXXXX)
VG_TREE=$VG_TMP/tree
mkdir "$VG_TREE"
ce_log "Copying the tree to $VG_TREE"
tar -C "$CE_ROOT" --exclude=./.git --exclude=./results --exclude=./tmp_check \
	--exclude=./log --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
	--exclude=./regression.diffs --exclude=./regression.out -cf - . |
	tar -C "$VG_TREE" -xf -

if [ "${CE_SKIP_BUILD:-0}" != 1 ]; then
	ce_log "Building and installing cache_ext (COPT=$CE_VG_COPT)"
	start=$SECONDS
	build_log=$VG_TMP/build.log
	if ! { make -C "$VG_TREE" PG_CONFIG="$PG_CONFIG" clean &&
		make -C "$VG_TREE" PG_CONFIG="$PG_CONFIG" COPT="$CE_VG_COPT" -j"$(nproc)" all &&
		make -C "$VG_TREE" PG_CONFIG="$PG_CONFIG" COPT="$CE_VG_COPT" install; } >"$build_log" 2>&1; then
		tail -n 80 "$build_log"
		ce_die "build failed"
	fi
	ce_note "built and installed ($((SECONDS - start))s)"
fi

ce_log "Starting Redis and PostgreSQL under valgrind"
start=$SECONDS
ce_start_redis
vg_start_pg
ce_note "server up after $((SECONDS - start))s"

ce_log "make installcheck (timeout ${CE_VG_TIMEOUT}s)"
start=$SECONDS
regress_rc=0
# In the background, so that ^C (trapped) interrupts the wait at once.
timeout -k 30 "$CE_VG_TIMEOUT" make -C "$VG_TREE" PG_CONFIG="$PG_CONFIG" installcheck &
VG_INSTALLCHECK_PID=$!
wait "$VG_INSTALLCHECK_PID" || regress_rc=$?
VG_INSTALLCHECK_PID=
regress_secs=$((SECONDS - start))
regress_result=passed
if [ "$regress_rc" -eq 124 ] || [ "$regress_rc" -eq 137 ]; then
	regress_result="TIMED OUT after ${CE_VG_TIMEOUT}s"
	ce_warn "make installcheck timed out"
elif [ "$regress_rc" -ne 0 ]; then
	regress_result="FAILED (exit $regress_rc)"
	if [ -f "$VG_TREE/regression.diffs" ]; then
		echo "---- regression.diffs (first 200 lines) ----"
		head -n 200 "$VG_TREE/regression.diffs"
	fi
fi
ce_note "installcheck $regress_result in ${regress_secs}s"

ce_log "Stopping the servers"
start=$SECONDS
vg_stop_pg
ce_stop_redis
ce_note "stopped in $((SECONDS - start))s"

if [ -n "$CE_VG_KEEP_LOGS" ]; then
	mkdir -p "$CE_VG_KEEP_LOGS"
	cp "$VG_LOGDIR"/vg.*.log "$CE_PG_DIR/postgresql.log" "$CE_VG_KEEP_LOGS"/ 2>/dev/null || true
	[ ! -f "$VG_TREE/regression.diffs" ] || cp "$VG_TREE/regression.diffs" "$CE_VG_KEEP_LOGS"/
	ce_note "logs copied to $CE_VG_KEEP_LOGS"
fi

ce_log "Valgrind findings"
shopt -s nullglob
logs=("$VG_LOGDIR"/vg.*.log)
shopt -u nullglob
[ ${#logs[@]} -gt 0 ] || ce_die "valgrind wrote no logs in $VG_LOGDIR"
scan_rc=0
srcfiles=$(cd "$VG_TREE" && find src -name '*.[ch]' | sort | tr '\n' ' ')
vg_scan "$CE_PG_DIR/postgresql.log" "$srcfiles" "${logs[@]}" || scan_rc=$?
[ "$scan_rc" -le 1 ] || ce_die "reading the valgrind logs failed"

vg_cleanup
ce_stop_all

ce_log "Summary"
echo "    installcheck under valgrind: $regress_result (${regress_secs}s)"
if [ "$scan_rc" -eq 1 ]; then
	echo "    valgrind: ERRORS IN cache_ext (listed above)"
else
	echo "    valgrind: no error in cache_ext"
fi
echo "    total time: $((SECONDS - T0))s"
if [ "$scan_rc" -eq 1 ]; then
	exit 1
elif [ "$regress_rc" -ne 0 ]; then
	exit 2
fi
exit 0
