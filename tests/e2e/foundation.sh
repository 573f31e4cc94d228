#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The foundation through nginx (CONTRACT.md): request and correlation ids,
# the error contract for 404/405/401/413, API-key authentication, health,
# metrics, HTTP/2, TLS versions, security headers, and the access log line
# (exactly one per request, no secrets in any log).
# Needs curl, jq, openssl, promtool (Debian package prometheus), bulwarkctl.

# shellcheck disable=SC2317 # trap handlers and helpers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_DEMO_KEY BW_DEMO_ORG BW_CONFIG BW_RUN

U=$BULWARK_URL
H=$BW_TMP/headers
B=$BW_TMP/body
FCGI_LOG=$BW_RUN/log/bulwark-fcgi.log
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
ID_RE='^[A-Za-z0-9._-]{1,128}$'
NGX_ID_RE='^[0-9a-f]{32}$'	# nginx's $request_id
CTL_PIDS=

cleanup() {
	local p
	for p in $CTL_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
t_on_exit cleanup

# req METHOD PATH [curl args...]: answer in $B (body), $H (headers), $ST.
req() {
	local m=$1 p=$2
	shift 2
	ST=$(curl -sk -o "$B" -D "$H" -w '%{http_code}' -X "$m" "$@" "$U$p")
}

# hdr NAME: the value of header NAME in the last response ($H).
hdr() {
	tr -d '\r' <"$H" | awk -v n="$1" '
		{ k = tolower(substr($0, 1, index($0, ":") - 1)) }
		k == tolower(n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v) }
		END { printf "%s", v }'
}

# jqb FILTER: jq -r FILTER on the last body; empty on invalid JSON.
jqb() { jq -r "$1" "$B" 2>/dev/null; }

# error_contract NAME STATUS CODE RETRYABLE STRATEGY: the last response is
# STATUS with the JSON error body of CONTRACT.md naming CODE.
error_contract() {
	local name=$1 status=$2 code=$3 retryable=$4 strategy=$5 rid why=
	rid=$(hdr X-Request-ID)
	if [ "$ST" != "$status" ]; then
		why="status $ST, expected $status"
	elif ! hdr Content-Type | grep -qi '^application/json'; then
		why="content-type '$(hdr Content-Type)'"
	elif ! jq -e --arg code "$code" --arg rid "$rid" \
	    --argjson retryable "$retryable" --arg strat "$strategy" '
		.error.error_code == $code and (.error.message | type) == "string"
		and (.error.message | length) > 0
		and (.error.error_hint | type) == "string"
		and .error.retryable == $retryable
		and .error.retry_strategy == $strat
		and (.error.error_id | type) == "string"
		and .error.request_id == $rid and $rid != ""' "$B" >/dev/null 2>&1; then
		why="body $(head -c 400 "$B") (X-Request-ID '$rid')"
	fi
	if [ -z "$why" ]; then t_ok "$name"; else t_fail "$name" "$why"; fi
}

# ctl ARGS...: bulwarkctl against the stack; JSON on stdout.
ctl() { bulwarkctl -c "$BW_CONFIG" "$@" 2>>"$BW_TMP/bulwarkctl.err"; }

# ctlerr: the last bulwarkctl error lines, on one line.
ctlerr() { tail -n 3 "$BW_TMP/bulwarkctl.err" 2>/dev/null | tr '\n' ' ' | head -c 300; }

# jqe ARGS...: jq -e without output.
jqe() { jq -e "$@" >/dev/null 2>&1; }

whoami() { req GET /api/v1/whoami -H "Authorization: $1"; }

# ---------------------------------------------------------------- /health
req GET /health
t_eq "health 200" 200 "$ST"
t_eq "health body" '{"status":"ok"}' "$(jq -cS . "$B" 2>/dev/null)"
t_match "health content-type json" '^application/json' "$(hdr Content-Type)"
t_match "health X-Request-ID present and valid" "$ID_RE" "$(hdr X-Request-ID)"

# ------------------------------------------------------------ request ids
req GET /health -H 'X-Request-ID: abc-123'
t_eq "X-Request-ID valid is echoed" abc-123 "$(hdr X-Request-ID)"

long128=$(printf 'r%.0s' $(seq 1 128))
req GET /health -H "X-Request-ID: $long128"
t_eq "X-Request-ID of 128 chars is echoed" "$long128" "$(hdr X-Request-ID)"

for bad in 'has space' "${long128}x" "$(printf 'x%.0s' $(seq 1 200))" 'a/b' 'semi;colon'; do
	req GET /health -H "X-Request-ID: $bad"
	got=$(hdr X-Request-ID)
	if [ "$got" != "$bad" ] && printf '%s' "$got" | grep -Eq "$NGX_ID_RE"; then
		t_ok "X-Request-ID invalid (${bad:0:12}...) replaced by a generated id"
	else
		t_fail "X-Request-ID invalid (${bad:0:12}...) replaced by a generated id" "got '$got'"
	fi
done

req GET /health
a=$(hdr X-Request-ID)
req GET /health
t_check "generated request ids differ" test -n "$a" -a "$a" != "$(hdr X-Request-ID)"

# -------------------------------------------------------- correlation ids
req GET /health -H 'X-Correlation-ID: corr-42.x_y'
t_eq "X-Correlation-ID valid is echoed" corr-42.x_y "$(hdr X-Correlation-ID)"

TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
req GET /health -H "traceparent: $TP"
t_eq "traceparent gives the correlation id" \
	4bf92f3577b34da6a3ce929d0e0e4736 "$(hdr X-Correlation-ID)"

req GET /health -H 'X-Correlation-ID: client-corr' -H "traceparent: $TP"
t_eq "X-Correlation-ID wins over traceparent" client-corr "$(hdr X-Correlation-ID)"

req GET /health
t_check "no correlation header: correlation id == request id" \
	test -n "$(hdr X-Request-ID)" -a "$(hdr X-Correlation-ID)" = "$(hdr X-Request-ID)"

req GET /health -H 'X-Correlation-ID: bad value!' -H 'X-Request-ID: rid-77'
t_eq "invalid X-Correlation-ID falls back to the request id" rid-77 "$(hdr X-Correlation-ID)"

req GET /health -H 'traceparent: 00-xyz-00f067aa0ba902b7-01' -H 'X-Request-ID: rid-78'
t_eq "malformed traceparent falls back to the request id" rid-78 "$(hdr X-Correlation-ID)"

# ------------------------------------------------------- error contract
req GET /nope -H 'X-Request-ID: e2e-nope-1'
error_contract "404 in the error contract" 404 NOT_FOUND false none
t_eq "404 request_id is the client's X-Request-ID" e2e-nope-1 "$(jqb .error.request_id)"
t_match "404 error_id is a UUID" "$UUID_RE" "$(jqb .error.error_id)"

req POST /health --data ''
error_contract "POST /health 405 in the error contract" 405 METHOD_NOT_ALLOWED false none
t_match "405 Allow header names GET" '(^|[ ,])GET($|[ ,])' "$(hdr Allow)"

# ------------------------------------------------------- authentication
req GET /api/v1/whoami
error_contract "whoami without key 401" 401 UNAUTHENTICATED false none
whoami 'Bearer xyz'
error_contract "whoami malformed key 401" 401 UNAUTHENTICATED false none
fake=bwk_$(openssl rand 32 | basenc --base64url | tr -d '=\n')
whoami "Bearer $fake"
error_contract "whoami unknown well-formed key 401" 401 UNAUTHENTICATED false none
whoami "Basic $(printf 'user:%s' "$BW_DEMO_KEY" | base64 -w0)"
error_contract "whoami Basic auth 401" 401 UNAUTHENTICATED false none

whoami "Bearer $BW_DEMO_KEY"
t_eq "whoami demo key 200" 200 "$ST"
t_eq "whoami demo key org and role" "$BW_DEMO_ORG owner" "$(jqb '"\(.org_id) \(.role)"')"
pfx=$(jqb .key_prefix)
if [[ "$pfx" == bwk_* ]] && [[ "$BW_DEMO_KEY" == "$pfx"* ]] && [ "$pfx" != "$BW_DEMO_KEY" ]; then
	t_ok "whoami key_prefix is a bwk_ prefix of the key"
else
	t_fail "whoami key_prefix is a bwk_ prefix of the key" "key_prefix '$pfx'"
fi
t_eq "whoami body has no key text" 0 "$(grep -cF -- "${BW_DEMO_KEY:12}" "$B")"

SECRETS=("${BW_DEMO_KEY:12}")
mk=$(ctl key create --org "$BW_DEMO_ORG" --role member)
member_key=$(jq -r .key <<<"$mk" 2>/dev/null)
if [ -n "$member_key" ] && [ "$member_key" != null ]; then
	SECRETS+=("${member_key:12}")
	whoami "Bearer $member_key"
	t_eq "whoami member key role" "200 $BW_DEMO_ORG member" "$ST $(jqb '"\(.org_id) \(.role)"')"
else
	t_fail "whoami member key role" "bulwarkctl key create failed: $(ctlerr)"
fi

rk=$(ctl key create --org "$BW_DEMO_ORG" --role member)
rk_id=$(jq -r .id <<<"$rk" 2>/dev/null)
rk_key=$(jq -r .key <<<"$rk" 2>/dev/null)
if [ -n "$rk_key" ] && [ "$rk_key" != null ]; then
	SECRETS+=("${rk_key:12}")
	whoami "Bearer $rk_key"
	before=$ST
	rv=$(ctl key revoke "$rk_id")
	t_eq "bulwarkctl key revoke answers" "$rk_id" "$(jq -r .revoked <<<"$rv" 2>/dev/null)"
	whoami "Bearer $rk_key"
	if [ "$before" = 200 ]; then
		error_contract "whoami revoked key 401" 401 UNAUTHENTICATED false none
	else
		t_fail "whoami revoked key 401" "the key answered $before before revocation"
	fi
else
	t_fail "whoami revoked key 401" "bulwarkctl key create failed: $(ctlerr)"
fi

oc=$(ctl org create --name "e2e-foundation-$RANDOM$RANDOM")
other_org=$(jq -r .id <<<"$oc" 2>/dev/null)
ok_=$(ctl key create --org "$other_org")
other_key=$(jq -r .key <<<"$ok_" 2>/dev/null)
if [[ "$other_org" =~ $UUID_RE ]] && [ -n "$other_key" ] && [ "$other_key" != null ]; then
	SECRETS+=("${other_key:12}")
	whoami "Bearer $other_key"
	t_eq "whoami other org's key names that org" "200 $other_org" "$ST $(jqb .org_id)"
	t_check "other org differs from the demo org" test "$other_org" != "$BW_DEMO_ORG"
else
	t_fail "whoami other org's key names that org" "bulwarkctl org/key create failed: $oc / $(ctlerr)"
fi

# ------------------------------------------------------------ /health/full
# Loopback sees the details (e2e/health.sh has the rest). Other scripts of
# the run may have left dead or stale jobs, which degrade the queue
# judgement: the dependencies are what this script checks.
req GET /health/full
t_eq "health/full: 200 when ok, 503 when degraded" \
	"$(jqb '{"ok": "200", "degraded": "503"}[.status] // "?"')" "$ST"
if jqe '.checks.postgres.ok == true and (.checks.postgres.latency_ms | type) == "number"
	and .checks.redis.ok == true and (.checks.redis.latency_ms | type) == "number"
	and ([.reasons[] | select(test("^(postgres|redis)_"))] | length) == 0' "$B"; then
	t_ok "health/full postgres and redis ok with latency"
else
	t_fail "health/full postgres and redis ok with latency" "body $(head -c 400 "$B")"
fi

# ----------------------------------------------------------------- /metrics
# metric_value: bulwark_http_requests_total{route="health",code="2xx"} in $B.
metric_value() {
	grep -E '^bulwark_http_requests_total\{' "$B" |
	    grep -F 'route="health"' | grep -F 'code="2xx"' |
	    awk '{ s += $NF; n++ } END { if (n) printf "%d", s }'
}
req GET /metrics
t_eq "metrics 200" 200 "$ST"
t_match "metrics content-type text/plain" '^text/plain' "$(hdr Content-Type)"
if promtool check metrics <"$B" >"$BW_TMP/promtool.out" 2>&1; then
	t_ok "promtool check metrics accepts /metrics"
else
	t_fail "promtool check metrics accepts /metrics" "$(head -c 400 "$BW_TMP/promtool.out")"
fi
m1=$(metric_value)
for _ in 1 2 3; do req GET /health; done
req GET /metrics
m2=$(metric_value)
if [ -n "$m1" ] && [ -n "$m2" ] && [ "$m2" -ge $((m1 + 3)) ]; then
	t_ok "bulwark_http_requests_total{route=health,2xx} grows by the requests"
else
	t_fail "bulwark_http_requests_total{route=health,2xx} grows by the requests" "before '$m1', after 3 requests '$m2'"
fi

# ---------------------------------------------------------- body limit 413
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$BW_TMP/big"
req POST /api/v1/whoami -H "Authorization: Bearer $BW_DEMO_KEY" \
	-H 'Content-Type: application/json' --data-binary @"$BW_TMP/big"
error_contract "2 MiB body 413 PAYLOAD_TOO_LARGE in the error contract" \
	413 PAYLOAD_TOO_LARGE false none
t_match "413 carries X-Request-ID" "$ID_RE" "$(hdr X-Request-ID)"

# ------------------------------------------------------------ HTTP/2, TLS
t_eq "HTTP/2 negotiated" 2 \
	"$(curl -sk --http2 -o /dev/null -w '%{http_version}' "$U/health")"

# The client must be able to speak TLS 1.1 for the refusal to mean
# anything (OpenSSL 3 disables it below security level 0): check that
# against a local TLS 1.1 server first.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$BW_TMP/k.pem" -out "$BW_TMP/c.pem" -days 1 -subj /CN=localhost \
	>/dev/null 2>&1
CPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$CPORT" -cert "$BW_TMP/c.pem" -key "$BW_TMP/k.pem" \
	-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -www -quiet >/dev/null 2>&1 &
CTL_PIDS="$CTL_PIDS $!"
TLS11=(--tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0')
ctl_ok=1
for _ in $(seq 1 30); do
	if curl -sk -o /dev/null "${TLS11[@]}" "https://127.0.0.1:$CPORT/"; then ctl_ok=0; break; fi
	sleep 0.1
done
if [ "$ctl_ok" != 0 ]; then
	t_fail "TLS 1.1 refused" "control: this curl cannot speak TLS 1.1 even to a TLS 1.1 server"
elif curl -sk -o /dev/null "${TLS11[@]}" "$U/health"; then
	t_fail "TLS 1.1 refused" "nginx accepted a TLS 1.1 handshake"
else
	t_ok "TLS 1.1 refused"
fi
t_eq "TLS 1.2 accepted" 200 \
	"$(curl -sk -o /dev/null -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$U/health")"
t_eq "TLS 1.3 accepted" 200 \
	"$(curl -sk -o /dev/null -w '%{http_code}' --tlsv1.3 "$U/health")"

# ------------------------------------------------------- security headers
for p in /health /nope /api/v1/whoami; do
	req GET "$p"
	t_eq "$p ($ST) X-Content-Type-Options nosniff" nosniff "$(hdr X-Content-Type-Options)"
	t_match "$p ($ST) Strict-Transport-Security" '^max-age=[1-9][0-9]*' \
		"$(hdr Strict-Transport-Security)"
done
req GET /health
t_eq "X-Frame-Options DENY" DENY "$(hdr X-Frame-Options)"
t_eq "Referrer-Policy no-referrer" no-referrer "$(hdr Referrer-Policy)"
t_match "Content-Security-Policy default-src 'none'" "default-src 'none'" \
	"$(hdr Content-Security-Policy)"
t_eq "no nginx version in Server" "" "$(hdr Server | grep -Eo '[0-9]+\.[0-9]+')"

# ------------------------------------------------------------- access log
LOGID=e2e-log-$RANDOM$RANDOM$RANDOM
req GET /api/v1/whoami -H "X-Request-ID: $LOGID" -H "Authorization: Bearer $BW_DEMO_KEY"
t_eq "logged request answered" 200 "$ST"
n=0
for _ in $(seq 1 30); do
	n=$(jq -R --arg id "$LOGID" 'fromjson? | select(.request_id == $id and .msg == "request")' \
		"$FCGI_LOG" 2>/dev/null | jq -s length)
	[ "${n:-0}" -ge 1 ] && break
	sleep 0.1
done
sleep 0.3
n=$(jq -R --arg id "$LOGID" 'fromjson? | select(.request_id == $id and .msg == "request")' \
	"$FCGI_LOG" 2>/dev/null | jq -s length)
t_eq "exactly one access line for the request id" 1 "$n"
line=$(grep -F -- "\"$LOGID\"" "$FCGI_LOG" 2>/dev/null | jq -c 'select(.msg == "request")' 2>/dev/null | head -n1)
if jqe '.method == "GET" and .path == "/api/v1/whoami"
	and (.status | tostring) == "200" and has("duration_ms")
	and (.ts | type) == "string" and has("correlation_id")' <<<"${line:-null}"; then
	t_ok "access line names method, path, status, duration"
else
	t_fail "access line names method, path, status, duration" "line: ${line:0:400}"
fi
if [ -n "$line" ] && ! grep -qiF -e "${BW_DEMO_KEY:12}" -e 'bearer' -e '"authorization"' <<<"$line"; then
	t_ok "access line has no Authorization value or key"
else
	t_fail "access line has no Authorization value or key" "line: ${line:0:400}"
fi

leaks=
for s in "${SECRETS[@]}"; do
	[ -n "$s" ] || continue
	f=$(grep -rlF -- "$s" "$BW_RUN/log" 2>/dev/null)
	[ -n "$f" ] && leaks="$leaks $f"
done
nlogs=$(find "$BW_RUN/log" -type f 2>/dev/null | wc -l)
if [ "$nlogs" -gt 0 ] && [ -z "$leaks" ]; then
	t_ok "no API key secret in any log ($nlogs files, ${#SECRETS[@]} keys)"
else
	t_fail "no API key secret in any log" "files: ${leaks:-none found under $BW_RUN/log}"
fi

t_done
