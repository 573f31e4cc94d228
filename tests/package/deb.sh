#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The package tier (issue 15, docs/packaging.md): builds bulwark_*.deb with
# `dpkg-buildpackage -us -uc -b` from the `make dist` tarball, runs lintian
# on it, installs it with `apt install ./bulwark_*.deb` into a fresh
# `debootstrap --variant=minbase bookworm` chroot (dependencies from the
# Debian mirror the host uses), checks the installed package there, purges
# it and checks that only /var/lib/bulwark is left. No services.
#
# Needs root (debootstrap, chroot) and the Debian packages debhelper,
# devscripts, lintian and debootstrap. The debootstrap result and the
# chroot with the test's own tools (man-db, systemd, openssl,
# ca-certificates) are cached as tarballs under $BW_PACKAGE_CACHE (default
# /var/cache/bulwark-package, remove it to start over; the tools layer is
# remade when older than 7 days or when the list changes) and so are the
# .debs apt fetched, so a later run downloads nothing but the package
# lists.
# Environment: BW_DEBIAN_MIRROR (default: the host's first Debian mirror),
# BW_PACKAGE_KEEP=1 keeps the work dir, BW_PACKAGE_DEB=FILE tests that .deb
# instead of building one (for working on the later checks; the build and
# lintian checks are then not run).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

cache=${BW_PACKAGE_CACHE:-/var/cache/bulwark-package}
suite=bookworm
tools="man-db systemd openssl ca-certificates"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-package.XXXXXX")
root=$tmp/chroot
mounts=()
t0=$(date +%s)

cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"
	done
	# Never remove a tree with something still mounted in it.
	if grep -q " $tmp/" /proc/self/mounts; then
		echo "# $tmp still has mounts; not removed" >&2
	elif [ "${BW_PACKAGE_KEEP:-0}" = 1 ]; then
		echo "# kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '# %s (%ds)\n' "$*" $(($(date +%s) - t0)); }
# ch CMD...: runs CMD in the chroot with a plain environment.
ch() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# The last lines of a log, indented, as a failure's detail.
tail_of() { tail -n "${2:-25}" "$1" | sed 's/^/    | /'; }

if [ "$(id -u)" != 0 ]; then
	t_fail "package tier runs as root (debootstrap, chroot)"
	t_done
fi
missing=
for c in dpkg-buildpackage dh lintian debootstrap; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
if [ -n "$missing" ]; then
	t_fail "build tools installed" "missing:$missing (apt-get install" \
	    "debhelper devscripts lintian debootstrap)"
	t_done
fi

# --- the mirror: the host's own ----------------------------------------
host_uri() { # host_uri security|main
	local f want=$1
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v w="$want" '
		/^URIs:/ { u = $2 }
		/^Suites:/ {
			s = ($0 ~ /-security/)
			if ((w == "security") == s) { print u; exit }
		}' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk -v w="$want" '$1 == "deb" {
			u = ($2 ~ /^\[/) ? $3 : $2
			s = ($0 ~ /-security/)
			if ((w == "security") == s) { print u; exit }
		}' /etc/apt/sources.list
	fi
}
mirror=${BW_DEBIAN_MIRROR:-$(host_uri main | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(host_uri security | head -n 1)
security=${security:-http://deb.debian.org/debian-security}

# One run at a time uses the cache (the chroot tarballs, the build dir).
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

# --- 1. the release tarball, and the .deb built from it -------------------
# `make dist` (in build/ when dev/test configured it, else in a scratch
# dir): the tarball must carry every file the repository tracks (so a
# release builds, tests and packages as the clone does), and the package is
# built from the unpacked tarball, not from the work tree -- together what
# `make distcheck` proved, without its third full build (the installed
# units' systemd-analyze verify is check 4 below, in the chroot).
# The tarball is unpacked in a fixed, emptied directory: the compiler flags
# name it (-ffile-prefix-map), so ccache (when installed; its cache in
# $cache/ccache) hits for the files that did not change and a rebuild
# takes seconds instead of minutes.
make_dist() {
	local mk=$top/build
	if [ ! -f "$mk/Makefile" ]; then
		mk=$tmp/dist
		mkdir -p "$mk"
		if [ ! -x "$top/configure" ]; then
			(cd "$top" && autoreconf -fi) >"$tmp/dist.log" 2>&1
		fi
		(cd "$mk" && "$top/configure" -q) >>"$tmp/dist.log" 2>&1
	fi
	rm -f "$mk"/bulwark-*.tar.gz
	if make -C "$mk" dist-gzip >>"$tmp/dist.log" 2>&1 &&
	    mv "$mk"/bulwark-*.tar.gz "$tmp/"; then
		tarball=$(ls "$tmp"/bulwark-*.tar.gz)
		t_ok "make dist: ${tarball##*/}"
	else
		t_fail "make dist" "$(tail_of "$tmp/dist.log" 30)"
		t_done
	fi
	if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$top" ls-files | grep -v -x -e .gitignore | sort \
		    >"$tmp/tracked"
		tar -tzf "$tarball" | sed 's|^[^/]*/||; /\/$/d' | sort \
		    >"$tmp/shipped"
		t_eq "the tarball carries every tracked file (but .gitignore)" "" \
		    "$(comm -23 "$tmp/tracked" "$tmp/shipped" | head -n 20 |
			tr '\n' ' ')"
	fi
	bdir=$cache/build
	rm -rf "$bdir"
	mkdir -p "$bdir/src"
	tar -C "$bdir/src" --strip-components=1 -xzf "$tarball"
}

build_deb() {
	local path=$PATH
	say "building the package"
	[ -d /usr/lib/ccache ] && path=/usr/lib/ccache:$PATH
	if (cd "$bdir/src" && PATH=$path CCACHE_DIR=$cache/ccache \
	    CCACHE_MAXSIZE=1G \
	    DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
	    dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
		mv "$bdir"/bulwark_*.deb "$tmp/"
		rm -rf "$bdir/src"
		t_ok "dpkg-buildpackage -us -uc -b from the tarball"
	else
		t_fail "dpkg-buildpackage -us -uc -b from the tarball" \
		    "$(tail_of "$tmp/build.log" 40)"
		t_done
	fi
	say "built"
}

# --- 2. lintian -----------------------------------------------------------
# Clean: no error, warning or info tag (overridden tags are justified in
# debian/bulwark.lintian-overrides and not shown).
run_lintian() {
	local rc=0
	lintian --allow-root --display-info --fail-on error,warning,info \
	    "$1" >"$tmp/lintian.log" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ] && ! grep -q '^[EWI]: ' "$tmp/lintian.log"; then
		t_ok "lintian clean"
	else
		t_fail "lintian clean" "exit $rc; $(tail_of "$tmp/lintian.log" 30)"
	fi
	say "lintian done"
}

if [ -n "${BW_PACKAGE_DEB:-}" ]; then
	cp "$BW_PACKAGE_DEB" "$tmp/"
	say "BW_PACKAGE_DEB: not building, testing $BW_PACKAGE_DEB"
	deb=$(ls "$tmp"/bulwark_*.deb 2>/dev/null | head -n 1)
else
	make_dist
	build_deb
	deb=$(ls "$tmp"/bulwark_*.deb 2>/dev/null | head -n 1)
	run_lintian "$deb"
fi

# --- 3. a fresh minbase chroot (cached) -----------------------------------
mkdir -p "$cache/archives"
base=$cache/$suite-minbase.tar
layer=$cache/$suite-tools-$(echo "$tools" | md5sum | cut -c1-8).tar
if [ ! -s "$base" ]; then
	say "debootstrap --variant=minbase $suite from $mirror (first run)"
	if debootstrap --variant=minbase "$suite" "$tmp/seed" "$mirror" \
	    >"$tmp/debootstrap.log" 2>&1 &&
	    tar -C "$tmp/seed" -cf "$base.tmp" . && mv "$base.tmp" "$base"; then
		rm -rf "$tmp/seed"
	else
		rm -f "$base.tmp"
		t_fail "debootstrap --variant=minbase $suite" \
		    "$(tail_of "$tmp/debootstrap.log")"
		t_done
	fi
fi
# prepare_root: resolver, the host's mirror, no daemon starts.
prepare_root() {
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	# A throwaway root: no fsync per file, no man-db index rebuilt on
	# every package with a man page (man -w needs no index).
	echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/bw-unsafe-io"
	rm -f "$root/var/lib/man-db/auto-update"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
}
# Cached .debs in and out, so that a later run downloads nothing.
debs_in() { find "$cache/archives" -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +; }
debs_out() { find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$cache/archives/" {} +; }
if [ ! -s "$layer" ] || [ -n "$(find "$layer" -mtime +7)" ]; then
	say "making the tools layer ($tools)"
	rm -rf "$root" && mkdir -p "$root"
	tar -C "$root" -xf "$base"
	prepare_root
	debs_in
	echo 'man-db man-db/auto-update boolean false' |
	    ch debconf-set-selections
	if ch apt-get -q update >"$tmp/tools.log" 2>&1 &&
	    ch apt-get -q install -y --no-install-recommends $tools \
	    >>"$tmp/tools.log" 2>&1; then
		debs_out
		ch apt-get clean
		tar -C "$root" -cf "$layer.tmp" . && mv "$layer.tmp" "$layer"
	else
		t_fail "chroot tools installed ($tools)" "$(tail_of "$tmp/tools.log")"
		t_done
	fi
fi
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$layer"
prepare_root
debs_in
cp "$deb" "$root/tmp/"
# A fresh chroot has no /proc; systemd-analyze needs it.
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
say "chroot ready"

# --- 4. apt install ./bulwark_*.deb ---------------------------------------
if ch apt-get -q update >"$tmp/install.log" 2>&1 &&
    ch apt-get -q install -y "/tmp/${deb##*/}" >>"$tmp/install.log" 2>&1; then
	t_ok "apt install ./${deb##*/} in a fresh $suite minbase chroot"
else
	t_fail "apt install ./${deb##*/} in a fresh $suite minbase chroot" \
	    "$(tail_of "$tmp/install.log" 40)"
	t_done
fi
debs_out
say "installed"

# --- 5. the installed package ---------------------------------------------
out=$(ch bulwarkctl --version 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q '0\.[0-9]'; then
	t_ok "bulwarkctl --version"
else
	t_fail "bulwarkctl --version" "exit $rc: $(printf '%s' "$out" | head -n 3)"
fi
for m in "8 bulwarkctl" "8 bulwark-fcgi" "5 bulwark.conf"; do
	if out=$(ch man -w $m 2>&1); then
		t_ok "man -w $m ($out)"
	else
		t_fail "man -w $m" "$out"
	fi
done

conf=/etc/bulwark/bulwark.conf
if out=$(ch bulwark-fcgi --check-config -c "$conf" 2>&1); then
	t_ok "bulwark-fcgi --check-config on the shipped $conf"
else
	t_fail "bulwark-fcgi --check-config on the shipped $conf" "$out"
fi
# Every key lib/core/config.c knows (--check-config's dump of an empty
# file) is in the conffile, with its default and a description.
ch sh -c ': >/tmp/empty.conf; bulwark-fcgi --check-config -c /tmp/empty.conf' \
    2>&1 | grep -v '^#' >"$tmp/defaults"
sed -n 's/^#\([a-z][a-z0-9_]*\) = .*/\1/p' "$root$conf" | sort >"$tmp/conf.keys"
sed 's/ = .*//' "$tmp/defaults" | sort >"$tmp/code.keys"
n=$(wc -l <"$tmp/code.keys")
if [ "$n" -gt 50 ] && cmp -s "$tmp/code.keys" "$tmp/conf.keys"; then
	t_ok "the conffile lists every key of config.c ($n)"
else
	t_fail "the conffile lists every key of config.c ($n)" \
	    "$(diff "$tmp/code.keys" "$tmp/conf.keys" | head -n 20 | tr '\n' ' ')"
fi
# Uncommented, it is the defaults: each value shown is the default.
sed -n 's/^#\([a-z][a-z0-9_]* = \)/\1/p' "$root$conf" >"$root/tmp/all.conf"
ch bulwark-fcgi --check-config -c /tmp/all.conf 2>&1 | grep -v '^#' \
    >"$tmp/uncommented"
if [ -s "$tmp/defaults" ] && cmp -s "$tmp/defaults" "$tmp/uncommented"; then
	t_ok "the conffile's values are the defaults"
else
	t_fail "the conffile's values are the defaults" \
	    "$(diff "$tmp/defaults" "$tmp/uncommented" | head -n 20 | tr '\n' ' ')"
fi
if ! grep -q 'no description in docs/operations.md' "$root$conf"; then
	t_ok "every key of the conffile is described (docs/operations.md)"
else
	t_fail "every key of the conffile is described (docs/operations.md)" \
	    "$(grep 'no description' "$root$conf" | head -n 10 | tr '\n' ' ')"
fi
if ch dpkg-query --showformat='${Conffiles}\n' --show bulwark |
    grep -q "^ $conf "; then
	t_ok "$conf is a conffile"
else
	t_fail "$conf is a conffile"
fi

# Units: the template as its two long-running instances, as installcheck.
unitdir=$(ch pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
unitdir=${unitdir:-/lib/systemd/system}
ch sh -c "set -e; d=\$(mktemp -d); cp $unitdir/bulwark* \$d/;
    for w in chat export; do
      cp \$d/bulwark-worker@.service \$d/bulwark-worker@\$w.service; done
    for u in sms errtrack; do
      mv \$d/bulwark-\$u@.service \$d/bulwark-\$u@1.service; done
    rm \$d/bulwark-worker@.service; cd \$d
    systemd-analyze verify --man=no *.service *.timer *.target" \
    >"$tmp/verify.log" 2>&1
rc=$?
n=$(ls "$root$unitdir"/bulwark* 2>/dev/null | wc -l)
if [ "$rc" -eq 0 ] && [ "$n" -ge 10 ] && [ ! -s "$tmp/verify.log" ]; then
	t_ok "systemd-analyze verify of the $n installed units"
else
	t_fail "systemd-analyze verify of the $n installed units" \
	    "exit $rc: $(head -n 20 "$tmp/verify.log" | tr '\n' ' ')"
fi
if grep -rq '/usr/local' "$root$unitdir"/bulwark*; then
	t_fail "no /usr/local in the units" \
	    "$(grep -l /usr/local "$root$unitdir"/bulwark* | sed "s|^$root||")"
else
	t_ok "no /usr/local in the units"
fi

# Users, directories, secrets.
st() { ch stat -c '%U:%G %a' "$1" 2>&1; }
t_eq "bulwark is a system user without a shell" \
    "/var/lib/bulwark /usr/sbin/nologin" \
    "$(ch getent passwd bulwark | awk -F: '$3 < 1000 { print $6, $7 }')"
t_match "bulwark is listed in its group (the units read root:bulwark)" \
    '(^|,)bulwark(,|$)' "$(ch getent group bulwark | cut -d: -f4)"
t_check "group bulwark-ledger exists" ch getent group bulwark-ledger >/dev/null
t_eq "bulwark is not in bulwark-ledger" "" \
    "$(ch getent group bulwark-ledger | cut -d: -f4)"
t_eq "/var/lib/bulwark is bulwark:www-data 0750" "bulwark:www-data 750" \
    "$(st /var/lib/bulwark)"
for f in /etc/bulwark/bulwark.env /etc/bulwark/bulwark-fcgi.env; do
	t_eq "$f is root:bulwark 0640" "root:bulwark 640" "$(st "$f")"
done
t_match "only bulwark-ledger.service gets the ledger key's group" \
    "^$unitdir/bulwark-ledger.service$" \
    "$(grep -l '^SupplementaryGroups=bulwark-ledger' "$root$unitdir"/bulwark* |
	sed "s|^$root||")"

# The nginx site: rendered, not enabled; valid with a certificate at the
# paths it names.
site=/etc/nginx/sites-available/bulwark
if [ -f "$root$site" ]; then
	t_ok "$site rendered at install"
	if [ -e "$root/etc/nginx/sites-enabled/bulwark" ]; then
		t_fail "$site not enabled"
	else
		t_ok "$site not enabled"
	fi
	crt=$(awk '$1 == "ssl_certificate" { sub(/;$/, "", $2); print $2; exit }' "$root$site")
	key=$(awk '$1 == "ssl_certificate_key" { sub(/;$/, "", $2); print $2; exit }' "$root$site")
	if [ -n "$crt" ] && [ -n "$key" ] && [ ! -e "$root$crt" ]; then
		ch mkdir -p "${crt%/*}" "${key%/*}"
		ch openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		    -subj /CN=bulwark.test -keyout "$key" -out "$crt" \
		    >/dev/null 2>&1
	fi
	ch ln -s "$site" /etc/nginx/sites-enabled/bulwark
	if out=$(ch nginx -t 2>&1); then
		t_ok "nginx -t with the rendered site enabled"
	else
		t_fail "nginx -t with the rendered site enabled" "$out"
	fi
else
	t_fail "$site rendered at install" \
	    "$(grep -i 'bulwark:' "$tmp/install.log" | head -n 5 | tr '\n' ' ')"
fi

# Every installed executable: --help exits 0 (usage on stdout), an
# unknown option exits 2.
mapfile -t exes < <(ch dpkg -L bulwark | grep -E '^/usr/s?bin/')
for x in "${exes[@]}"; do
	out=$(ch "$x" --help 2>/dev/null)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -n "$out" ]; then
		t_ok "$x --help: exit 0, usage on stdout"
	else
		t_fail "$x --help: exit 0, usage on stdout" "exit $rc, stdout ${#out} bytes"
	fi
	ch "$x" --no-such-option >/dev/null 2>&1
	t_eq "$x --no-such-option: exit 2" 2 "$?"
done
say "checks done"

# --- 6. purge: only /var/lib/bulwark is left -------------------------------
ch touch /var/lib/bulwark/exports/kept-file
ch chown bulwark /var/lib/bulwark/exports/kept-file
if ch apt-get -q purge -y bulwark >"$tmp/purge.log" 2>&1 &&
    [ -z "$(ch dpkg-query -W -f='${db:Status-Status}' bulwark 2>/dev/null |
	grep -v not-installed)" ]; then
	t_ok "apt purge bulwark"
else
	t_fail "apt purge bulwark" "$(tail_of "$tmp/purge.log")"
fi
t_check "/var/lib/bulwark and its files stay after purge" \
    test -f "$root/var/lib/bulwark/exports/kept-file"
left=$(cd "$root" && find . -xdev \( -path ./proc -o -path ./tmp \
    -o -path ./var/cache/apt -o -path ./var/lib/bulwark \) -prune -o \
    -name '*bulwark*' -print | head -n 20)
t_eq "nothing else named bulwark is left" "" "$left"
t_eq "no user or group bulwark, bulwark-ledger is left" "" \
    "$(ch sh -c 'getent passwd bulwark; getent group bulwark bulwark-ledger')"
t_eq "no file is left to a deleted user" "" \
    "$(ch find / -xdev \( -nouser -o -nogroup \) -print 2>/dev/null | head -n 5)"
t_eq "nginx -t after the purge (its link removed too)" 0 \
    "$(ch nginx -t >/dev/null 2>&1; echo $?)"

say "package tier done"
t_done
