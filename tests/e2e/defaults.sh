#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The shipped defaults asserted as shipped (issue 10), not raised or
# lowered first: a config that sets nothing prints them (--check-config)
# and the stack's config overrides none of them; through nginx, with fresh
# orgs and fresh loopback source addresses so every window starts empty:
# the 11th export of an org in an hour, the 101st evidence upload in a day
# and the 31st verification from one IP in a minute are 429 with
# Retry-After and the contract body; verification tokens live 30 days;
# ready exports are kept per plan tier (30/90/365/730 days) and failed or
# canceled ones go after 7 days; a provider 401 or 403 is tried once; no
# LLM slot within the 10 s queue deadline is 503 CAPACITY_EXHAUSTED with
# Retry-After; after 10 failed provider attempts the breaker answers fast
# without calling the provider. Bounded: about a minute.
# bw-test: alone (dev/test: its timings are compared with nothing beside it)
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG BW_LLM_SIM_URL REDIS_URL DATABASE_URL
t_stack

URL=$BULWARK_URL
SIM=$BW_LLM_SIM_URL
SFX="$$-$(date +%s)"
CURL=(curl -sk --max-time 40)
# Loopback source addresses of this run: nginx passes each as REMOTE_ADDR,
# so the per-IP windows of this script start at zero.
NET="127.$((RANDOM % 200 + 50)).$((RANDOM % 250))"
IPN=0
newip() { IPN=$((IPN + 1)); IP="$NET.$IPN"; }

HPIDS=()
cleanup() {
	# Not t_kill_jobs: the export worker restarted below is a job too.
	[ ${#HPIDS[@]} -eq 0 ] || kill -9 "${HPIDS[@]}" 2>/dev/null
	curl -s -X POST "$SIM/_sim/reset" >/dev/null
	# The breaker is shared by every org: leave it closed for what runs next.
	redis-cli -u "$REDIS_URL" del 'brk:{llm}:llm' >/dev/null 2>&1
	stack_start_one export >/dev/null 2>&1 || true
}
t_on_exit cleanup

# mkorg NAME [TIER]: ORG and KEY of a fresh org and its owner key.
mkorg() {
	ORG=$(t_ctl org create --name "e2e-defaults-$1-$SFX" \
	    --tier "${2:-starter}" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
}
# req OUT ARGS...: one request from $IP; headers in OUT.h (CR stripped),
# body in OUT; prints the status.
req() {
	local out=$1
	shift
	"${CURL[@]}" --interface "$IP" -D "$out.h.raw" -o "$out" \
	    -w '%{http_code}' "$@"
	tr -d '\r' <"$out.h.raw" >"$out.h"
}
hdr() { sed -n "s/^$1: //Ip" "$2.h" | head -n 1; }
upload() {
	req "$TMP/ev" -X POST "$URL/api/v1/evidence" \
	    -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/octet-stream' --data-binary "$1"
}
mkexport() {
	req "$TMP/exp" -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\":[\"$EV\"]}"
}
# limited NAME OUT LIMIT WINDOW: the contract of a 429 from a route limit.
limited() {
	local ra
	t_eq "$1: X-RateLimit-Limit is the default $3" "$3" \
	    "$(hdr X-RateLimit-Limit "$2")"
	ra=$(hdr Retry-After "$2")
	t_check "$1: Retry-After whole seconds in 1..$4 (got '$ra')" \
	    bash -c "[[ '$ra' =~ ^[0-9]+$ ]] && [ '$ra' -ge 1 ] && [ '$ra' -le $4 ]"
	t_eq "$1: contract body" 'RATE_LIMITED true after_retry_after' \
	    "$(jq -r '.error | "\(.error_code) \(.retryable) \(.retry_strategy)"' "$2")"
}
sim_requests() {
	curl -s "$SIM/_sim/stats" | jq -r ".by_org[\"$1\"].requests // 0"
}
chat() {
	newip
	req "$TMP/chat" -X POST "$URL/api/v1/chat" \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "{\"channel\":\"api\",\"user_id\":\"u-$1\",\"message\":\"hello\"}"
}

# --- 1. a config that sets nothing -----------------------------------------
: >"$TMP/empty.conf"
env -i PATH="$PATH" bulwark-fcgi -c "$TMP/empty.conf" --check-config \
    >"$TMP/defaults.txt" 2>"$TMP/defaults.err"
t_eq "check-config with an empty config exits 0" 0 "$?"
env -i PATH="$PATH" bulwark-fcgi -c "$BW_CONFIG" --check-config \
    >"$TMP/stack.txt" 2>/dev/null
for kv in chat_queue_deadline_ms=10000 chat_deadline_ms=30000 \
    llm_global_cap=15 llm_org_cap=5 llm_attempt_timeout_ms=8000 \
    llm_retry_timeout_ms=10000 llm_max_retries=2 llm_breaker_failures=10 \
    llm_breaker_open_ms=15000 retention_clock_offset_s=0; do
	k=${kv%%=*}
	t_eq "default $k = ${kv#*=}" "${kv#*=}" \
	    "$(sed -n "s/^$k = //p" "$TMP/defaults.txt")"
	t_eq "the stack's config leaves $k at its default" "${kv#*=}" \
	    "$(sed -n "s/^$k = //p" "$TMP/stack.txt")"
done

# --- 2. exports: 10 per hour per org ---------------------------------------
mkorg exports
newip
upload x >/dev/null
EV=$(jq -r .id "$TMP/ev")
codes=""
for i in $(seq 1 10); do
	codes="$codes$(mkexport) "
	[ "$i" = 1 ] && FIRST=$(jq -r .id "$TMP/exp")
done
t_eq "exports: 10 in an hour admitted" "$(printf '202 %.0s' $(seq 10))" "$codes"
t_eq "exports: the 11th in an hour is 429" 429 "$(mkexport)"
limited "exports" "$TMP/exp" 10 3600
t_eq "exports: the verification token lives 30 days" 2592000 \
    "$(t_sql "SELECT extract(epoch FROM token_expires_at - created_at)::bigint
      FROM exports WHERE id = '$FIRST'")"
t_eq "exports: no 11th row" 10 \
    "$(t_sql "SELECT count(*) FROM exports WHERE org_id = '$ORG'")"

# --- 3. evidence: 100 per day per org --------------------------------------
mkorg evidence
newip
codes=$(for i in $(seq 1 100); do upload "$i"; echo; done | sort | uniq -c |
    awk '{print $2 "x" $1}' | tr '\n' ' ')
t_eq "evidence: 100 one-byte uploads in a day admitted" "201x100 " "$codes"
t_eq "evidence: the 101st in a day is 429" 429 "$(upload 0)"
limited "evidence" "$TMP/ev" 100 86400

# --- 4. public verification: 30 per minute per IP ---------------------------
newip
codes=$(for i in $(seq 1 30); do
	req "$TMP/ver" "$URL/api/v1/public/verify/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$((i % 10))"
	echo
done | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
t_eq "verify: 30 from one IP in a minute answered (unknown token 404)" \
    "404x30 " "$codes"
t_eq "verify: the 31st from that IP in a minute is 429" 429 \
    "$(req "$TMP/ver" "$URL/api/v1/public/verify/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"
limited "verify" "$TMP/ver" 30 60
newip
t_eq "verify: another IP is not limited" 404 \
    "$(req "$TMP/ver" "$URL/api/v1/public/verify/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"

# --- 5. retention: plan tiers and the 7 days of failed/canceled exports -----
declare -A TEXP
for tier in starter:30 pro:90 business:365 enterprise:730; do
	mkorg "tier-${tier%%:*}" "${tier%%:*}"
	newip
	upload t >/dev/null
	EV=$(jq -r .id "$TMP/ev")
	mkexport >/dev/null
	TEXP[${tier%%:*}]=$(jq -r .id "$TMP/exp")
done
for tier in starter:30 pro:90 business:365 enterprise:730; do
	id=${TEXP[${tier%%:*}]}
	t_wait_sql 30 ready "SELECT state FROM exports WHERE id = '$id'"
	t_eq "retention: a ${tier%%:*} org keeps a ready export ${tier#*:} days" \
	    "${tier#*:}" "$(t_sql "SELECT extract(day FROM expires_at -
	      finished_at)::int FROM exports WHERE id = '$id'")"
done
mkorg removal
newip
upload r >/dev/null
EV=$(jq -r .id "$TMP/ev")
stack_stop_one export >/dev/null 2>&1
mkexport >/dev/null
CAN=$(jq -r .id "$TMP/exp")
req "$TMP/can" -X POST "$URL/api/v1/exports/$CAN/cancel" \
    -H "Authorization: Bearer $KEY" >/dev/null
mkexport >/dev/null
FAIL=$(jq -r .id "$TMP/exp")
# A failed export as the worker leaves one after its last attempt.
t_sql "UPDATE exports SET state = 'failed', finished_at = now(),
    error = 'e2e', error_category = 'internal' WHERE id = '$FAIL'" >/dev/null
stack_start_one export >/dev/null 2>&1
gone() {
	t_sql "SELECT count(*) FROM exports WHERE id IN ('$CAN', '$FAIL')"
}
t_eq "retention: a canceled and a failed export" "canceled failed" \
    "$(t_sql "SELECT string_agg(state::text, ' ' ORDER BY state::text)
      FROM exports WHERE id IN ('$CAN', '$FAIL')")"
BULWARK_RETENTION_CLOCK_OFFSET_S=$((7 * 86400 - 600)) \
    bulwark-retention -c "$BW_CONFIG" --pass 2>"$TMP/ret1.log"
t_eq "retention: failed and canceled exports kept just under 7 days" 2 "$(gone)"
BULWARK_RETENTION_CLOCK_OFFSET_S=$((7 * 86400 + 600)) \
    bulwark-retention -c "$BW_CONFIG" --pass 2>"$TMP/ret2.log"
t_eq "retention: ... and removed just after 7 days" 0 "$(gone)"

# --- 6. the provider's 401 and 403 are tried once ---------------------------
for st in 401 403; do
	mkorg "no-retry-$st"
	curl -s -o /dev/null -X POST "$SIM/_sim/script" \
	    -d "{\"org\":\"$ORG\",\"statuses\":[$st]}"
	t_eq "llm $st: chat answers 502" 502 "$(chat "$st")"
	t_eq "llm $st: 502 is UPSTREAM_UNAVAILABLE" UPSTREAM_UNAVAILABLE \
	    "$(jq -r .error.error_code "$TMP/chat")"
	t_eq "llm $st: one attempt only (the next would have been 200)" 1 \
	    "$(sim_requests "$ORG")"
done

# --- 7. the 10 s queue deadline ---------------------------------------------
# The org's 5 slots (llm_org_cap) held through the semaphore itself: the
# stack has fewer fcgi children than 6 concurrent chats would need.
mkorg queue
for i in 1 2 3 4 5; do
	"$BW_BUILD/tests/integration/sem_driver" sem-one --org "$ORG" \
	    --gcap 15 --ocap 5 --lease-ms 30000 --hold-ms 14000 \
	    >"$TMP/hold$i" 2>&1 &
	HPIDS+=($!)
done
for _ in $(seq 50); do
	[ "$(cat "$TMP"/hold? | grep -c '^acquired')" = 5 ] && break
	sleep 0.1
done
t_eq "queue: the org's 5 slots are held" 5 \
    "$(cat "$TMP"/hold? | grep -c '^acquired')"
t0=$(date +%s%N)
st=$(chat queue)
ms=$((($(date +%s%N) - t0) / 1000000))
t_eq "queue: no slot within the deadline is 503" 503 "$st"
t_eq "queue: 503 is CAPACITY_EXHAUSTED" CAPACITY_EXHAUSTED \
    "$(jq -r .error.error_code "$TMP/chat")"
t_match "queue: with Retry-After" '^[1-9][0-9]*$' "$(hdr Retry-After "$TMP/chat")"
t_ge "queue: waited the 10 s deadline ($ms ms)" 9800 "$ms"
t_le "queue: ... and not much longer ($ms ms)" 12500 "$ms"
t_eq "queue: no provider call" 0 "$(sim_requests "$ORG")"
# Only the holders: the stack's services started here are jobs too.
wait "${HPIDS[@]}"

# --- 8. the breaker fails fast after 10 failed attempts ---------------------
mkorg breaker
redis-cli -u "$REDIS_URL" del 'brk:{llm}:llm' >/dev/null
curl -s -o /dev/null -X POST "$SIM/_sim/script" \
    -d "{\"org\":\"$ORG\",\"statuses\":[503],\"cycle\":true,\"retry_after\":0}"
for i in 1 2 3; do
	chat "brk$i" >/dev/null
done
t_eq "breaker: 3 chats made 3 attempts each (1 + 2 retries)" 9 \
    "$(sim_requests "$ORG")"
# No "st" field yet is closed too.
st=$(redis-cli -u "$REDIS_URL" hget 'brk:{llm}:llm' st)
t_eq "breaker: still closed after 9 failures" 0 "${st:-0}"
t_eq "breaker: chat 4 answers 502" 502 "$(chat brk4)"
t_eq "breaker: the 10th failed attempt opened it (no 11th)" 10 \
    "$(sim_requests "$ORG")"
t_eq "breaker: open" 1 "$(redis-cli -u "$REDIS_URL" hget 'brk:{llm}:llm' st)"
t0=$(date +%s%N)
st=$(chat brk5)
ms=$((($(date +%s%N) - t0) / 1000000))
t_eq "breaker open: chat answers 502" 502 "$st"
t_eq "breaker open: UPSTREAM_UNAVAILABLE with the fallback reply" \
    "UPSTREAM_UNAVAILABLE true" \
    "$(jq -r '"\(.error.error_code) \(.reply != null)"' "$TMP/chat")"
t_le "breaker open: answered fast ($ms ms)" 1000 "$ms"
t_eq "breaker open: the provider was not called" 10 "$(sim_requests "$ORG")"

t_done
