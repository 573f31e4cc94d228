#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The manual pages (issue 15, man/): `mandoc -Tlint` finds nothing in any
# of them (only "referenced manual not found" for a page outside man/ is
# let through: it depends on the host's installed pages, and each
# cross-reference to a bulwark page must name one of man/); make install
# installs every one (dist_man_MANS); and they stay complete: every key of
# lib/core/config.c's table is in bulwark.conf(5) and in docs/operations.md,
# every bulwarkctl command of tools/ in bulwarkctl(8), every executable of
# bin_PROGRAMS and sbin_PROGRAMS has a page (bulwark-workers(8) names each worker).
# Needs mandoc (Debian package mandoc). No services, no build.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

man=$top/man
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v mandoc >/dev/null; then
	t_fail "mandoc is installed (Debian package mandoc)"
	t_done
fi
pages=()
for f in "$man"/*.[0-9]; do [ -f "$f" ] && pages+=("$f"); done
t_ge "man/ has the pages" 4 "${#pages[@]}"
for f in "${pages[@]}"; do
	n=${f##*/}
	mandoc -Tlint "$f" >"$tmp/lint" 2>&1
	# Environment-dependent: a page of another package not installed
	# here, or the host's stale mandoc.db. Our own pages must exist.
	bad=$(grep -v -e 'referenced manual not found: Xr [a-z]' \
	    -e 'outdated mandoc.db' "$tmp/lint"
	    sed -n 's/.*referenced manual not found: Xr \(bulwark[^ ]*\) \([0-9]\).*/\1.\2/p' \
	        "$tmp/lint" | while read -r x; do
		[ -f "$man/$x" ] || echo "Xr to $x, which is not in man/"
	    done)
	t_eq "mandoc -Tlint $n" "" "$bad"
	case " $(tr -s ' \t\\\n' ' ' <"$top/Makefile.am") " in
	*" man/$n "*) t_ok "$n is in Makefile.am (make install)" ;;
	*) t_fail "$n is in Makefile.am (make install)" "not in dist_man_MANS" ;;
	esac
done

# Every config key in bulwark.conf(5) and in docs/operations.md's table.
miss_man=""
miss_doc=""
while read -r k; do
	grep -sqE "^\.It Cm $k( |$)" "$man/bulwark.conf.5" || miss_man+="$k "
	grep -qF "| \`$k\`" "$top/docs/operations.md" || miss_doc+="$k "
done < <(sed -n 's/.*\.name = "\([a-z0-9_]*\)".*/\1/p' "$top/lib/core/config.c")
t_eq "every key of lib/core/config.c is in bulwark.conf(5)" "" "$miss_man"
t_eq "every key of lib/core/config.c is in docs/operations.md" "" "$miss_doc"

# Every bulwarkctl command (each row of the command table, in
# tools/bulwarkctl.c and the CTL_*_CMDS of tools/ctl.h: a name, then a
# usage that starts with it).
miss=""
n=0
while read -r c; do
	n=$((n + 1))
	grep -sqE "^\.It Cm $c( |$)" "$man/bulwarkctl.8" || miss+="'$c' "
done < <(cat "$top"/tools/bulwarkctl.c "$top"/tools/ctl.h | tr -d '\\\n\t' |
    grep -oE '\{ *"([a-z][a-z-]*( [a-z][a-z-]*)?)", *"\1' |
    sed 's/^{ *"\([^"]*\)".*/\1/' | sort -u)
t_ge "the command table of tools/ is read" 25 "$n"
t_eq "every bulwarkctl command is in bulwarkctl(8)" "" "$miss"

# Every executable has a page.
miss=""
for p in $(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$top/Makefile.am" |
    sed -n 's/^s\{0,1\}bin_PROGRAMS[[:space:]]*+\{0,1\}=//p'); do
	[ -f "$man/$p.8" ] && continue
	grep -sqE "^\.Nm $p( ,)?$" "$man/bulwark-workers.8" || miss+="$p "
done
t_eq "every executable of bin_PROGRAMS and sbin_PROGRAMS has a page" "" "$miss"
t_done
