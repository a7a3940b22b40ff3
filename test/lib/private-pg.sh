#!/usr/bin/env bash
# test/lib/private-pg.sh - a private, relocated copy of PostgreSQL 15
#
# Usage: bash test/lib/private-pg.sh DIR
#   Copies Debian's PostgreSQL 15 (binaries, libraries, PGXS, headers, share)
#   under DIR and prints the PG_CONFIG to use.  PostgreSQL finds its share and
#   lib directories relative to its binaries, so `make install` and every
#   test run with that PG_CONFIG use the copy and leave the system's
#   installation alone: several people (or agents) can build and test
#   different trees on one machine at once.
#     PG_CONFIG=$(bash test/lib/private-pg.sh /tmp/pg-me) bash test/run-tests.sh
set -euo pipefail
dir=${1:?usage: private-pg.sh DIR}
src_lib=/usr/lib/postgresql/15
src_share=/usr/share/postgresql/15
src_inc=/usr/include/postgresql
[ -x "$src_lib/bin/pg_config" ] || { echo "PostgreSQL 15 is not installed" >&2; exit 1; }
if [ ! -x "$dir/lib/postgresql/15/bin/pg_config" ]; then
	mkdir -p "$dir/lib/postgresql" "$dir/share/postgresql" "$dir/include"
	cp -a "$src_lib" "$dir/lib/postgresql/"
	cp -a "$src_share" "$dir/share/postgresql/"
	cp -a "$src_inc" "$dir/include/"
	chmod 755 "$dir" "$dir/lib" "$dir/share" "$dir/include"
fi
echo "$dir/lib/postgresql/15/bin/pg_config"
