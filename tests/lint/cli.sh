#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command-line conventions of every executable (issue 15,
# docs/operations.md "Command-line conventions"): for each program of
# bin_PROGRAMS and sbin_PROGRAMS in Makefile.am, --help and -h print the
# usage on stdout and exit 0, --version prints "NAME VERSION" (configure.ac's) and exits 0, an
# unknown option or argument prints the usage on stderr, nothing on stdout,
# and exits 2. bulwarkctl: `help`, `help COMMAND` and `COMMAND --help` of
# every command; progress only on a terminal; --human; and the nginx site
# of `bulwarkctl nginx-conf` passes `nginx -t` inside a Debian-like
# nginx.conf, with a self-signed certificate made here. No services.
# The binaries: $BW_BUILD, else build/ of this checkout (built here,
# incrementally, like dev/test does).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ -n "${BW_BUILD:-}" ]; then
	b=$BW_BUILD
else
	b=$top/build
	# shellcheck source=../../dev/lib/stack.sh
	(. "$top/dev/lib/stack.sh" && stack_build build) >"$tmp/build.log" 2>&1 ||
	    { t_fail "build" "$(tail -n 20 "$tmp/build.log")"; t_done; }
fi
version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' \
    "$top/configure.ac")
# bin_PROGRAMS and sbin_PROGRAMS of Makefile.am (continuation lines joined).
mapfile -t progs < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$top/Makefile.am" |
    sed -n 's/^s\{0,1\}bin_PROGRAMS[[:space:]]*+\{0,1\}=//p' | tr -s ' \t' '\n' |
    grep -v '^$')
t_ge "bin_PROGRAMS and sbin_PROGRAMS list the executables" 11 "${#progs[@]}"

# run NAME ARGS...: $tmp/out, $tmp/err and $rc of NAME ARGS.
run() {
	rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
}

for p in "${progs[@]}"; do
	x=$b/$p
	if [ ! -x "$x" ]; then
		t_fail "$p is built" "no $x"
		continue
	fi
	for h in --help -h; do
		run "$x" "$h"
		if [ "$rc" -eq 0 ] && head -n 1 "$tmp/out" | grep -q "^usage: $p " &&
		    [ ! -s "$tmp/err" ]; then
			t_ok "$p $h: usage on stdout, exit 0"
		else
			t_fail "$p $h: usage on stdout, exit 0" \
			    "exit $rc; stdout: $(head -c 200 "$tmp/out"); stderr: $(head -c 200 "$tmp/err")"
		fi
	done
	run "$x" --version
	if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "$p $version" ]; then
		t_ok "$p --version: '$p $version', exit 0"
	else
		t_fail "$p --version: '$p $version', exit 0" \
		    "exit $rc; stdout: $(head -c 200 "$tmp/out"); stderr: $(head -c 200 "$tmp/err")"
	fi
	for bad in --no-such-option no-such-argument; do
		run "$x" "$bad"
		if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] &&
		    grep -q "^usage: $p " "$tmp/err"; then
			t_ok "$p $bad: usage on stderr, nothing on stdout, exit 2"
		else
			t_fail "$p $bad: usage on stderr, nothing on stdout, exit 2" \
			    "exit $rc; stdout: $(head -c 200 "$tmp/out"); stderr: $(head -c 300 "$tmp/err")"
		fi
	done
done

ctl=$b/bulwarkctl
[ -x "$ctl" ] || t_done
unset BULWARK_CONFIG
# Every command of `bulwarkctl --help`: `help COMMAND` and `COMMAND --help`
# print its usage line on stdout, exit 0, without a config or a database.
run "$ctl" help
t_eq "bulwarkctl help: exit 0" 0 "$rc"
mapfile -t cmds < <(sed -n 's/^  bulwarkctl \([a-z][a-z-]*\( [a-z][a-z-]*\)\{0,1\}\)\( .*\)\{0,1\}$/\1/p' \
    "$tmp/out" | while read -r w1 w2; do
	# Two words when the second is part of the name (not a FILE, ID).
	case $w2 in
	'' | [A-Z]*) printf '%s\n' "$w1" ;;
	*) printf '%s %s\n' "$w1" "$w2" ;;
	esac
done)
t_ge "bulwarkctl help lists the commands" 25 "${#cmds[@]}"
bad=""
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	run "$ctl" $c --help
	if [ "$rc" -ne 0 ] || ! grep -q "^usage: bulwarkctl $c" "$tmp/out"; then
		bad+="'$c --help' (exit $rc) "
	fi
	# shellcheck disable=SC2086
	run "$ctl" help $c
	if [ "$rc" -ne 0 ] || ! grep -q "^usage: bulwarkctl $c" "$tmp/out"; then
		bad+="'help $c' (exit $rc) "
	fi
done
t_eq "bulwarkctl COMMAND --help and help COMMAND: its usage, exit 0" "" "$bad"
run "$ctl"
if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] && grep -q '^usage: ' "$tmp/err"; then
	t_ok "bulwarkctl without a command: usage on stderr, exit 2"
else
	t_fail "bulwarkctl without a command: usage on stderr, exit 2" "exit $rc"
fi
run "$ctl" help no-such-command
t_eq "bulwarkctl help no-such-command: exit 2" 2 "$rc"

# Progress: a long command (verify-export) says what it does on stderr
# only when stderr is a terminal; in a script, stderr has the error alone.
printf 'not a tar\n' >"$tmp/x.tar"
run "$ctl" verify-export "$tmp/x.tar"
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    ! grep -q $'\r\|checking' "$tmp/err"; then
	t_ok "bulwarkctl verify-export: no progress when stderr is not a terminal"
else
	t_fail "bulwarkctl verify-export: no progress when stderr is not a terminal" \
	    "exit $rc; stderr: $(od -c "$tmp/err" | head -n 5)"
fi
if command -v script >/dev/null; then
	script -qec "$ctl verify-export $tmp/x.tar" /dev/null >"$tmp/tty" 2>&1
	if grep -q 'verify-export: checking' "$tmp/tty"; then
		t_ok "bulwarkctl verify-export: progress on a terminal"
	else
		t_fail "bulwarkctl verify-export: progress on a terminal" \
		    "$(head -c 300 "$tmp/tty")"
	fi
fi

# The bash completion (completion/bulwarkctl) completes from --help.
comp() {
	bash -c '. "$1/completion/bulwarkctl" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_bulwarkctl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$top" "$ctl" "$@" 2>&1 |
	    sort | tr '\n' ' '
}
t_match "completion: the commands" ' help .*key .*nginx-conf .*user ' \
    " $(comp '')"
t_eq "completion: the subcommands of user" \
    "add disable invite list set-password set-role " "$(comp user '')"
t_eq "completion: the flags of nginx-conf" \
    "--help --human --output --template-dir " "$(comp nginx-conf --)"
t_eq "completion: the global options" \
    "--config --help --human --version " "$(comp --)"

# --human: a table instead of JSON (ledger keys needs no database).
cat >"$tmp/k.conf" <<EOF
ledger_key_file = $tmp/ledger.key
ledger_public_key_file = $tmp/ledger.pub
EOF
"$ctl" -c "$tmp/k.conf" ledger keygen >/dev/null 2>"$tmp/err"
run "$ctl" -c "$tmp/k.conf" ledger keys
t_match "bulwarkctl ledger keys: JSON by default" '^\{"keys":\[\{"key_id"' \
    "$(cat "$tmp/out")"
for form in "--human ledger keys" "ledger keys --human"; do
	# shellcheck disable=SC2086
	run "$ctl" -c "$tmp/k.conf" $form
	if [ "$rc" -eq 0 ] && grep -q '^  key_id  *name  *vkey' "$tmp/out" &&
	    ! grep -q '^{' "$tmp/out"; then
		t_ok "bulwarkctl $form: a table"
	else
		t_fail "bulwarkctl $form: a table" "exit $rc: $(head -c 300 "$tmp/out")"
	fi
done

# nginx-conf: the site from the config's values, in a Debian-like
# nginx.conf (which sets sendfile, default_type, access_log, ... itself:
# the site must not repeat an http-level directive), passes nginx -t.
if ! command -v nginx >/dev/null; then
	t_fail "nginx is installed (Debian package nginx)"
	t_done
fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" \
    -out "$tmp/cert.pem" -days 2 -subj /CN=bulwark.test >/dev/null 2>&1
mkdir -p "$tmp/log" "$tmp/console" "$tmp/storage/exports" "$tmp/tmp"
cat >"$tmp/b.conf" <<EOF
nginx_listen = 127.0.0.1:28443
nginx_server_name = bulwark.test www.bulwark.test
nginx_tls_certificate = $tmp/cert.pem
nginx_tls_certificate_key = $tmp/key.pem
nginx_access_log = $tmp/log/bulwark-access.log
nginx_rate = 20r/s
nginx_burst = 40
nginx_conn = 30
console_dir = $tmp/console
storage_dir = $tmp/storage
fcgi_socket = $tmp/api.sock
EOF
run "$ctl" -c "$tmp/b.conf" nginx-conf --template-dir "$top/nginx" \
    --output "$tmp/site"
t_eq "bulwarkctl nginx-conf --output: exit 0, nothing on stdout" "0:" \
    "$rc:$(cat "$tmp/out")"
t_eq "the site file is 0644" 644 "$(stat -c %a "$tmp/site" 2>/dev/null)"
run "$ctl" -c "$tmp/b.conf" nginx-conf --template-dir "$top/nginx"
t_check "nginx-conf on stdout: the same site" cmp -s "$tmp/out" "$tmp/site"
miss=""
for want in "listen 127.0.0.1:28443 ssl" "server_name bulwark.test www.bulwark.test;" \
    "ssl_certificate $tmp/cert.pem;" "ssl_certificate_key $tmp/key.pem;" \
    "access_log $tmp/log/bulwark-access.log bw_json;" \
    "server unix:$tmp/api.sock;" "server unix:$tmp/api-chat.sock;" \
    "alias $tmp/console/;" "alias $tmp/storage/exports/;" \
    "rate=20r/s;" "burst=40 nodelay;" "limit_conn bw_conn 30;" \
    "fastcgi_param" "add_header X-Content-Type-Options"; do
	grep -qF -- "$want" "$tmp/site" || miss+="'$want' "
done
t_eq "the site has the config's values and the snippets in line" "" "$miss"
t_eq "no template variable is left" "" \
    "$(grep -o '@[A-Z_]*@' "$tmp/site" | sort -u | tr '\n' ' ')"
t_eq "no include is left (one file)" "" "$(grep -n 'include ' "$tmp/site")"
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/log/error.log;
events { worker_connections 64; }
http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_prefer_server_ciphers on;
	access_log $tmp/log/access.log;
	gzip on;
	client_body_temp_path $tmp/tmp/body;
	fastcgi_temp_path $tmp/tmp/fastcgi;
	proxy_temp_path $tmp/tmp/proxy;
	uwsgi_temp_path $tmp/tmp/uwsgi;
	scgi_temp_path $tmp/tmp/scgi;
	include $tmp/site;
}
EOF
if nginx -t -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/log/error.log" \
    >"$tmp/nginx-t" 2>&1; then
	t_ok "nginx -t with the rendered site"
else
	t_fail "nginx -t with the rendered site" "$(cat "$tmp/nginx-t")"
fi
# A TCP socket: the upstream is host:port, not unix:.
printf 'fcgi_socket = 127.0.0.1:9000\nfcgi_chat_socket = 127.0.0.1:9001\n' \
    >"$tmp/tcp.conf"
run "$ctl" -c "$tmp/tcp.conf" nginx-conf --template-dir "$top/nginx"
t_match "a host:port fcgi_socket is the upstream's address" \
    'server 127\.0\.0\.1:9000;.*server 127\.0\.0\.1:9001;' \
    "$(tr '\n' ' ' <"$tmp/out")"
# A value that would break the file is refused by the config.
printf 'nginx_server_name = a;b\n' >"$tmp/bad.conf"
run "$ctl" -c "$tmp/bad.conf" nginx-conf --template-dir "$top/nginx"
t_match "nginx_server_name with a ';' is refused" \
    "^1:.*nginx_server_name" "$rc:$(cat "$tmp/err")"
t_done
