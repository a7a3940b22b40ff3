#!/usr/bin/env bash
# test/lib/check-style.sh - the style check: layout, file length, function length
#
# Usage: bash test/lib/check-style.sh            (from anywhere; exit 0 = clean)
#
# Checks, and fails on any violation (each is listed, one line each):
#   1. layout: clang-format --dry-run --Werror over src/**/*.{c,h} and
#      test/fuzz/*.{c,h}, with src/.clang-format (PostgreSQL's pgindent layout
#      as closely as clang-format allows; test/fuzz/.clang-format links to it).
#      To fix: clang-format -i FILE... (never by hand).
#   2. no .c file under src/ over 1,000 lines;
#   3. no function under src/ over 120 lines, unless the comment just above
#      it (its contract comment) holds the marker "Long because:" followed by
#      the reason.
# Limits 2 and 3 apply to the extension's own code (src/), not to the test
# programs under test/fuzz/.  docs/CONTRIBUTING.md describes all three.
#
# Environment:
#   CLANG_FORMAT          the clang-format to use (default: clang-format-14, else
#                         clang-format; other major versions than 14 lay code out
#                         differently, so the check refuses them unless
#                         CE_STYLE_ANY_VERSION=1)
#   CE_STYLE_MAX_FILE     file limit in lines (default 1000)
#   CE_STYLE_MAX_FUNCTION function limit in lines (default 120)
#   CE_STYLE_SHOW         how many clang-format complaints to print (default 40)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

MAX_FILE=${CE_STYLE_MAX_FILE:-1000}
MAX_FUNCTION=${CE_STYLE_MAX_FUNCTION:-120}
SHOW=${CE_STYLE_SHOW:-40}
MARKER='Long because:'

failed=0
fail()
{
	printf 'style: %s\n' "$*"
	failed=1
}

# ---- 1. layout ---------------------------------------------------------------
if [ -z "${CLANG_FORMAT:-}" ]; then
	if command -v clang-format-14 >/dev/null 2>&1; then
		CLANG_FORMAT=clang-format-14
	else
		CLANG_FORMAT=clang-format
	fi
fi
command -v "$CLANG_FORMAT" >/dev/null 2>&1 ||
	{ echo "style: $CLANG_FORMAT not found (Debian package clang-format)" >&2; exit 2; }
version=$("$CLANG_FORMAT" --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p')
if [ "$version" != 14 ] && [ "${CE_STYLE_ANY_VERSION:-0}" != 1 ]; then
	echo "style: $CLANG_FORMAT is version ${version:-unknown}, the layout is defined by version 14" >&2
	echo "style: (set CLANG_FORMAT to a clang-format 14, or CE_STYLE_ANY_VERSION=1)" >&2
	exit 2
fi

mapfile -t c_files < <(find src test/fuzz -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ ${#c_files[@]} -gt 0 ] || { echo "style: no C files found under $ROOT/src" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
nbad=0
for f in "${c_files[@]}"; do
	if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >>"$out" 2>&1; then
		nbad=$((nbad + 1))
		n=$("$CLANG_FORMAT" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
		fail "$f: clang-format would change $n lines (clang-format -i $f)"
	fi
done
if [ "$nbad" -gt 0 ]; then
	echo "style: first complaints:"
	awk -v n="$SHOW" '/error:/ && shown++ < n { print "    " $0 }' "$out"
fi

# ---- 2. file length ----------------------------------------------------------
for f in "${c_files[@]}"; do
	case "$f" in src/*.c) ;; *) continue ;; esac
	n=$(wc -l <"$f")
	[ "$n" -le "$MAX_FILE" ] || fail "$f: $n lines (at most $MAX_FILE per .c file: split it by concern)"
done

# ---- 3. function length ------------------------------------------------------
# A definition, in the layout above: the return type on its own line, the
# name at column 0 followed by "(", the parameter list ending with ")", then
# "{" alone on a line; the body ends at the next "}" alone on a line.  The
# length counts from the return type's line to that "}".  A comment block
# ending on the line just above the return type is the function's comment;
# the marker anywhere in it excuses the length.
for f in "${c_files[@]}"; do
	case "$f" in src/*) ;; *) continue ;; esac
	awk -v max="$MAX_FUNCTION" -v marker="$MARKER" -v file="$f" '
		{ line[NR] = $0 }
		/^[A-Za-z_][A-Za-z0-9_]*\(/ && !inbody { name_at = NR; name = $0; sub(/\(.*/, "", name) }
		/^\{$/ && !inbody && name_at && line[NR - 1] ~ /\)[ \t]*$/ { inbody = 1; next }
		/^\}/ && inbody {
			inbody = 0
			start = name_at - 1		# the return type line
			len = NR - start + 1
			if (len > max) {
				excused = 0
				i = start - 1
				if (line[i] ~ /\*\/[ \t]*$/) {
					for (; i > 0; i--) {
						if (index(line[i], marker)) { excused = 1; break }
						if (line[i] ~ /^[ \t]*\/\*/) break
					}
				}
				if (!excused)
					printf "style: %s:%d: %s() is %d lines (at most %d, or say why above it with \"%s\")\n", file, start, name, len, max, marker
			}
			name_at = 0
		}
	' "$f" >>"$out.fn"
done
if [ -s "$out.fn" ]; then
	cat "$out.fn"
	failed=1
fi
rm -f "$out.fn"

if [ "$failed" -ne 0 ]; then
	echo "style: FAILED (${#c_files[@]} files checked; see docs/CONTRIBUTING.md, \"Style\")"
	exit 1
fi
echo "style: ok (${#c_files[@]} files: layout, files <= $MAX_FILE lines, functions <= $MAX_FUNCTION lines)"
