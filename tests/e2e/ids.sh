#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# X-Request-ID and X-Correlation-ID on every response (CONTRACT.md), through
# nginx over HTTPS, including the answers bulwark-fcgi does not write: an
# export download (X-Accel-Redirect: nginx serves the file, the upstream's
# headers are gone), and nginx's own 413, 429 (limit_req) and 502 (the
# upstream is down). The client's well-formed ids are echoed; without them
# the answer still names a request id.
. "${BW_TOP:?}/tests/lib/common.sh"
t_stack
t_need BW_CONFIG BULWARK_URL

URL=$BULWARK_URL
CURL=(curl -sk --max-time 20)
H=$TMP/h
SFX=$$-$(date +%s)
t_on_exit 'stack_start_one bulwark-fcgi >/dev/null 2>&1 || true'

hdr() {
	tr -d '\r' <"$H" | awk -v n="$1" '
		{ k = tolower(substr($0, 1, index($0, ":") - 1)) }
		k == tolower(n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v) }
		END { printf "%s", v }'
}
# ids WHAT RID CID: both headers echo what the client sent.
ids() {
	t_eq "$1: X-Request-ID echoed, X-Correlation-ID echoed" "$2 $3" \
	    "$(hdr X-Request-ID) $(hdr X-Correlation-ID)"
}

ORG=$(t_ctl org create --name "ids-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)

# --- an export download (X-Accel-Redirect) -------------------------------
head -c 3000 /dev/urandom >"$TMP/ev"
EV=$("${CURL[@]}" -X POST "$URL/api/v1/evidence" \
    -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/ev" |
    jq -r .id)
EXP=$("${CURL[@]}" -X POST "$URL/api/v1/exports" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"evidence_ids\":[\"$EV\"]}" | jq -r .id)
t_wait_sql 60 ready "SELECT state FROM exports WHERE id = '$EXP'" ||
    t_fail "download: the export is ready within 60 s"
ST=$("${CURL[@]}" -o "$TMP/dl" -D "$H" -w '%{http_code}' \
    -H "Authorization: Bearer $KEY" -H "X-Request-ID: rid-dl-$SFX" \
    -H "X-Correlation-ID: cid-dl-$SFX" "$URL/api/v1/exports/$EXP/download")
t_eq "download: 200 with the file" 200 "$ST"
ids download "rid-dl-$SFX" "cid-dl-$SFX"
ST=$("${CURL[@]}" -o /dev/null -D "$H" -w '%{http_code}' \
    -H "Authorization: Bearer $KEY" "$URL/api/v1/exports/$EXP/download")
t_match "download without ids: a request id is made, the correlation id is it" \
    '^([0-9a-f]{32}) \1$' "$(hdr X-Request-ID) $(hdr X-Correlation-ID)"

# --- nginx's own 413 -------------------------------------------------------
head -c 2000000 /dev/zero >"$TMP/big"
ST=$("${CURL[@]}" -o "$TMP/out" -D "$H" -w '%{http_code}' -X POST \
    -H "X-Request-ID: rid-413-$SFX" -H "X-Correlation-ID: cid-413-$SFX" \
    -H 'Content-Type: application/json' --data-binary @"$TMP/big" \
    "$URL/api/v1/webhooks/stripe/$ORG")
t_eq "nginx 413: PAYLOAD_TOO_LARGE" "413 PAYLOAD_TOO_LARGE" \
    "$ST $(jq -r .error.error_code "$TMP/out" 2>/dev/null)"
ids "nginx 413" "rid-413-$SFX" "cid-413-$SFX"

# --- nginx's own 429 (limit_req per client address) -----------------------
# 400 requests at once from one address of our own (127.0.5.x) overflow
# nginx's per-IP burst on /api/ (without a key bulwark-fcgi answers 401
# and counts nothing, so every 429 is nginx's own).
A=127.0.5.$(((RANDOM % 200) + 20))
# One curl, 20 connections at a time, kept alive: far faster than nginx's
# 50 r/s refill, whatever the machine's load.
mkdir -p "$TMP/b"
curl -sk --no-progress-meter --max-time 60 --interface "$A" --parallel \
    --parallel-max 20 -H "X-Request-ID: rid-429-$SFX" \
    -H "X-Correlation-ID: cid-429-$SFX" -o "$TMP/b/#1" \
    -w '%{http_code} %header{x-request-id} %header{x-correlation-id}\n' \
    "$URL/api/v1/whoami?n=[1-400]" >"$TMP/codes" 2>/dev/null
echo "# burst answers: $(cut -d' ' -f1 "$TMP/codes" | sort | uniq -c | tr '\n' ' ')"
N429=$(grep -c '^429 ' "$TMP/codes")
t_ge "nginx 429: the burst was limited by nginx" 1 "$N429"
t_eq "nginx 429: every one carries both ids" "$N429" \
    "$(grep -c "^429 rid-429-$SFX cid-429-$SFX\$" "$TMP/codes")"

# --- nginx's own 502 (bulwark-fcgi is down) --------------------------------
stack_stop_one bulwark-fcgi >/dev/null 2>&1
sleep 0.5
ST=$("${CURL[@]}" -o "$TMP/out" -D "$H" -w '%{http_code}' \
    -H "Authorization: Bearer $KEY" -H "X-Request-ID: rid-502-$SFX" \
    -H "X-Correlation-ID: cid-502-$SFX" "$URL/api/v1/whoami")
stack_start_one bulwark-fcgi >/dev/null 2>&1
t_match "upstream down: nginx answers 502/503 in the contract's body" \
    '^50[23] [A-Z_]+$' "$ST $(jq -r .error.error_code "$TMP/out" 2>/dev/null)"
ids "upstream down" "rid-502-$SFX" "cid-502-$SFX"
t_done
