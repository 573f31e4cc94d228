#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nginx in front of bulwark-fcgi, on the whole stack (issue 9 item 6):
# (1) every answer carries exactly one Cache-Control header: GET
# /api/v1/public/ledger-keys "public, max-age=300" (bulwark-fcgi used to
# add its no-store beside it, so clients saw both), its 503 and every other
# answer no-store; (2) no export verify token reaches an nginx log: a burst
# past the per-IP limit_req and an upstream failure (bulwark-fcgi stopped)
# on /api/v1/public/verify/<token> leave the token in no nginx log file,
# while the same events on another path are logged (so the check sees
# them when they are written).
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_RUN REDIS_URL

CURL=(curl -sk --max-time 20)

# cache_control NAME URL WANT_STATUS WANT_VALUE: exactly one Cache-Control
# header, with that value, on an answer of that status.
cache_control() {
	local code n v
	code=$("${CURL[@]}" -D "$TMP/h" -o /dev/null -w '%{http_code}' "$2")
	n=$(grep -ci '^cache-control:' "$TMP/h")
	v=$(sed -n 's/^[Cc]ache-[Cc]ontrol: *//p' "$TMP/h" | tr -d '\r' |
	    paste -sd '|')
	t_eq "$1: $3, one Cache-Control: $4" "$3 1 $4" "$code $n $v"
}

# --- 1. one Cache-Control per answer -------------------------------------
cache_control "ledger-keys" "$BULWARK_URL/api/v1/public/ledger-keys" 200 \
    "public, max-age=300"
cache_control "health" "$BULWARK_URL/health" 200 no-store
cache_control "an unknown route (bulwark-fcgi's 404)" \
    "$BULWARK_URL/api/v1/nope" 404 no-store
cache_control "whoami without a key (401)" "$BULWARK_URL/api/v1/whoami" \
    401 no-store

# Without its public key file the answer is a 503, and not cacheable.
PUB=$(sed -n 's/^ledger_public_key_file *= *//p' "$BW_CONFIG" | tail -n 1)
if [ -n "$PUB" ] && [ -f "$PUB" ]; then
	mv "$PUB" "$TMP/ledger.pub"
	t_on_exit '[ -f "$TMP/ledger.pub" ] && mv "$TMP/ledger.pub" "$PUB"'
	cache_control "ledger-keys without the public key file" \
	    "$BULWARK_URL/api/v1/public/ledger-keys" 503 no-store
	mv "$TMP/ledger.pub" "$PUB"
	cache_control "ledger-keys with it back" \
	    "$BULWARK_URL/api/v1/public/ledger-keys" 200 "public, max-age=300"
else
	t_fail "ledger-keys without the public key file" \
	    "no ledger_public_key_file in $BW_CONFIG"
fi

# --- 2. no verify token in any nginx log ---------------------------------
# A token as bulwark makes them (32 random bytes, base64url), and a marker
# for the control path.
TOK=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
CTL=ctl$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

# burst PATH: 300 requests, 60 at a time; prints how many nginx refused
# itself (its 429 has no X-RateLimit-Limit; bulwark-fcgi's has).
burst() {
	local i
	for i in $(seq 1 300); do
		printf 'url = "%s%s"\noutput = "/dev/null"\n' "$BULWARK_URL" "$1"
	done >"$TMP/burst.cfg"
	curl -sk --max-time 60 --parallel --parallel-max 60 -K "$TMP/burst.cfg" \
	    -w '%{http_code} %header{x-ratelimit-limit}\n' 2>/dev/null |
	    awk '$1 == 429 && NF == 1' | wc -l
}

n=$(burst "/api/v1/public/verify/$TOK")
t_ge "a burst on /api/v1/public/verify/<token> hits nginx's limit_req" \
    1 "$n"
# The burst's requests nginx let through reached bulwark-fcgi, whose
# access lines must not carry the token either (the log redactor caught
# it as a secret; the access line now names the path without it, so the
# route stays readable). Read now: the restart below starts the log anew.
sleep 0.3
t_ge "bulwark-fcgi logged the verify requests it answered" 1 \
    "$(grep -c '"path":"/api/v1/public/verify/\[redacted\]"' \
	"$BW_RUN/log/bulwark-fcgi.log")"
t_eq "the verify token is not in bulwark-fcgi's log either" 0 \
    "$(grep -c -- "$TOK" "$BW_RUN/log/bulwark-fcgi.log")"
n=$(burst "/api/v1/public/$CTL")
t_ge "the same burst on a control path hits it too" 1 "$n"

# The burst used up bulwark-fcgi's own per-IP verify window too (30 a
# minute in Redis): give it back, so later scripts can verify at once.
rl_reset() {
	redis-cli -u "$REDIS_URL" DEL "rl:{rl}:public_verify:ip:127.0.0.1" \
	    >/dev/null 2>&1
}
t_on_exit rl_reset

t_stack
t_on_exit 'stack_start_one bulwark-fcgi >/dev/null 2>&1'
stack_stop_one bulwark-fcgi >/dev/null 2>&1
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
    "$BULWARK_URL/api/v1/public/verify/$TOK")
t_eq "verify with bulwark-fcgi down: nginx answers 502" 502 "$code"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
    "$BULWARK_URL/api/v1/public/$CTL/down")
t_eq "control path with bulwark-fcgi down: 502" 502 "$code"
stack_start_one bulwark-fcgi >/dev/null 2>&1
t_eq "bulwark-fcgi back: health 200" 200 \
    "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BULWARK_URL/health")"

# nginx writes its log lines at once; give a slow machine a moment.
sleep 0.5
logs=("$BW_RUN"/log/nginx*)
t_ge "nginx log files found" 2 "${#logs[@]}"
t_ge "control: the limit_req warning for the other path is logged" 1 \
    "$(cat "${logs[@]}" | grep 'limiting requests' | grep -c "$CTL")"
t_ge "control: the upstream error for the other path is logged" 1 \
    "$(cat "${logs[@]}" | grep 'while connecting to upstream' |
	grep -c "$CTL/down")"
t_eq "the verify token is in no nginx log file (limit_req, upstream error)" \
    "" "$(grep -l -- "$TOK" "${logs[@]}")"
t_ge "the verify requests are in the access log, token masked" 300 \
    "$(grep -c '/api/v1/public/verify/\[redacted\]' \
	"$BW_RUN/log/nginx-access.log")"

t_done
