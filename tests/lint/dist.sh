#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The release gates (issue 10): `make distcheck` from a scratch build dir
# (the tarball has everything, builds out of tree, its unit tests pass, it
# installs and uninstalls cleanly), whose installcheck verifies the
# installed systemd units with systemd-analyze, their paths taken from
# configure's prefix (Makefile.am, installcheck-local). No services.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-dist.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

if [ ! -x "$top/configure" ]; then
	(cd "$top" && autoreconf -fi) >"$tmp/autoreconf.log" 2>&1
fi
if ! command -v systemd-analyze >/dev/null; then
	t_fail "systemd-analyze is installed (Debian package systemd)"
	t_done
fi
cd "$tmp" || exit 1
rc=0
{ "$top/configure" -q && make -j2 distcheck; } >"$tmp/dist.log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q 'archives ready for distribution' "$tmp/dist.log"; then
	t_ok "make distcheck"
else
	t_fail "make distcheck" "$(tail -n 30 "$tmp/dist.log")"
fi
n=$(grep -c '^units verified$' "$tmp/dist.log" || true)
if [ "$n" -ge 1 ]; then
	t_ok "systemd-analyze verify of the installed units (paths from the prefix)"
else
	t_fail "systemd-analyze verify of the installed units (paths from the prefix)" \
	    "$(grep '^systemd-analyze: ' "$tmp/dist.log" | head -n 20)"
fi
t_done
