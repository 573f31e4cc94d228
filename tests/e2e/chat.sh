#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# POST /api/v1/chat the way a client calls it: through nginx over HTTPS,
# against the LLM simulator (issue 10; tests/integration/chat.sh speaks
# FastCGI to the masters). An answer with the X-RateLimit-* headers; the
# client-IP limit (5 / 10 s) answering 429 RATE_LIMITED with Retry-After;
# conversations kept per org (two orgs, one user id); a spent budget
# answering 402 BUDGET_EXCEEDED with the org's fallback reply and no
# provider call; the provider's 5xx retried, then 200, or after the retries
# 502 UPSTREAM_UNAVAILABLE with the fallback reply in the contract's error
# body. Bounded: about 20 turns, under a minute.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL DATABASE_URL

URL=$BULWARK_URL
SIM=$BW_LLM_SIM_URL
SFX="$$-$RANDOM"
OUT=$TMP/out

cleanup() { curl -s -X POST "$SIM/_sim/reset" >/dev/null; }
t_on_exit cleanup

# new_org NAME [raise]: sets ORG and KEY; with "raise" the org's chat
# limits are lifted (the limiter is proved once, with the defaults).
new_org() {
	ORG=$(t_ctl org create --name "e2e-chat-$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
	if [ "${2:-}" = raise ]; then
		t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
		    window_s) VALUES ('$ORG', 'chat', 'org', 1000000, 60),
		    ('$ORG', 'chat', 'ip', 1000000, 10) ON CONFLICT DO NOTHING" \
		    >/dev/null
	fi
}
# chat KEY USER MESSAGE: one turn through nginx; the status; the body in
# $OUT, the headers in $OUT.h.
chat() {
	curl -sk --max-time 60 -o "$OUT" -D "$OUT.h" -w '%{http_code}' \
	    -X POST -H "Authorization: Bearer $1" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"channel\":\"web\",\"user_id\":\"$2\",\"message\":\"$3\"}" \
	    "$URL/api/v1/chat"
}
session() {
	curl -sk --max-time 20 -o "$OUT" -w '%{http_code}' \
	    -H "Authorization: Bearer $1" "$URL/api/v1/chat/sessions/web/$2"
}
hdr() { tr -d '\r' <"$OUT.h" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" \
    'tolower($0) ~ "^" n ":" { sub(/^[^:]*: */, ""); print; exit }'; }
code() { jq -r '.error.error_code // empty' "$OUT" 2>/dev/null; }
sim_script() { curl -s -X POST "$SIM/_sim/script" -d "$1" >/dev/null; }
sim_requests() { curl -s "$SIM/_sim/stats" | jq ".by_org[\"$1\"].requests // 0"; }

curl -s -X POST "$SIM/_sim/reset" >/dev/null
# Nothing else of ours used the client-IP window in the last 10 s.
sleep 10

# --- an answer, the rate limit headers, the client-IP limit ----------------
new_org rl
RK=$KEY
t0=$(date +%s%N)
c=$(chat "$RK" alice "hello through nginx")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# one chat turn through nginx: $c in $ms ms"
t_eq "a turn through nginx: 200 with the simulator's answer" \
    "200 echo: hello through nginx" "$c $(jq -r .reply "$OUT")"
t_eq "  model, usage and session in the answer" "true true 1" \
    "$(jq -r '(.model | type == "string") , (.usage.cost_micros | type == "number"), .session.turns' "$OUT" | xargs)"
t_eq "  X-RateLimit-Limit / -Remaining / -Reset of the client-IP rule" \
    "5 4 ok" "$(hdr X-RateLimit-Limit) $(hdr X-RateLimit-Remaining) $(
    r=$(hdr X-RateLimit-Reset); [ -n "$r" ] && [ "$r" -ge 1 ] && [ "$r" -le 10 ] && echo ok)"
codes=""
for i in 2 3 4 5 6; do
	codes="$codes $(chat "$RK" alice "turn $i")"
done
t_eq "turns 2..6 in the same 10 s: four 200, the sixth 429" \
    " 200 200 200 200 429" "$codes"
t_eq "  429 RATE_LIMITED, retryable, with Retry-After and X-RateLimit-Remaining 0" \
    "RATE_LIMITED true 0 ok" "$(code) $(jq -r .error.retryable "$OUT") $(hdr X-RateLimit-Remaining) $(
    r=$(hdr Retry-After); [ -n "$r" ] && [ "$r" -ge 1 ] && [ "$r" -le 10 ] && echo ok)"
t_match "  the 429 names its request (X-Request-ID = error.request_id)" \
    "^$(jq -r .error.request_id "$OUT")\$" "$(hdr X-Request-ID)"
t_eq "  the refused turn reached no model and no conversation" 5 \
    "$(session "$RK" alice >/dev/null; jq -r .turns "$OUT")"

# --- conversations are per org ----------------------------------------------
new_org iso-a raise
AK=$KEY
new_org iso-b raise
BO=$ORG BK=$KEY
chat "$AK" carol "the secret word is heron-$SFX" >/dev/null
chat "$AK" carol "second" >/dev/null
t_eq "org A: carol has 2 turns" "200 2" "$(session "$AK" carol) $(jq -r .turns "$OUT")"
t_eq "org B: no conversation for the same user id: 404 NOT_FOUND" \
    "404 NOT_FOUND" "$(session "$BK" carol) $(code)"
c=$(chat "$BK" carol "what was the word?")
t_eq "org B's turn for carol starts a conversation of its own (turns 1)" \
    "200 1" "$c $(jq -r .session.turns "$OUT")"
t_eq "  org A's turns are not in org B's prompt" 0 \
    "$(curl -s "$SIM/_sim/requests?limit=200" | jq --arg o "$BO" \
    '[.requests[] | select(.org == $o) | tostring
    | select(test("heron"))] | length')"
session "$BK" carol >/dev/null
t_eq "  org B's session holds only its own turn" "1 false" \
    "$(jq -r '.turns, (tostring | test("heron"))' "$OUT" | xargs)"
t_eq "  org A's conversation is unchanged (2 turns)" "2" \
    "$(session "$AK" carol >/dev/null; jq -r .turns "$OUT")"
c=$(curl -sk -o "$OUT" -w '%{http_code}' -X DELETE \
    -H "Authorization: Bearer $BK" "$URL/api/v1/chat/sessions/web/carol")
t_eq "org B deletes its carol: 204; org A's still there" "204 200" \
    "$c $(session "$AK" carol)"

# --- budget exceeded -----------------------------------------------------------
new_org budget raise
GO=$ORG GK=$KEY
t_ctl price set --model "e2e-prim-$SFX" --input-micros-per-mtok 1000000 \
    --output-micros-per-mtok 10000000 >/dev/null
t_ctl price set --model "e2e-fb-$SFX" --input-micros-per-mtok 1000000 \
    --output-micros-per-mtok 2000000 >/dev/null
t_ctl budget set --org "$GO" --daily-micros 6000 --primary-model \
    "e2e-prim-$SFX" --fallback-model "e2e-fb-$SFX" >/dev/null
t_ctl prompt set --org "$GO" --fallback-reply "Budget gone, back tomorrow ($SFX)." \
    >/dev/null
c=$(chat "$GK" dave "within budget")
t_eq "budget: a turn within the budget: 200" 200 "$c"
t_sql "UPDATE org_budget_days SET spent_micros = 6000 WHERE org_id = '$GO'" \
    >/dev/null
n0=$(sim_requests "$GO")
c=$(chat "$GK" dave "over budget")
t_eq "budget spent: 402 BUDGET_EXCEEDED, not retryable" \
    "402 BUDGET_EXCEEDED false" "$c $(code) $(jq -r .error.retryable "$OUT")"
t_eq "  with the org's fallback reply" "Budget gone, back tomorrow ($SFX)." \
    "$(jq -r .reply "$OUT")"
t_eq "  and no provider call" "$n0" "$(sim_requests "$GO")"
t_match "  the X-RateLimit headers on the refusal too" '^[0-9]+$' \
    "$(hdr X-RateLimit-Remaining)"

# --- the provider's 5xx: retried ----------------------------------------------
new_org retry raise
PO=$ORG PK=$KEY
sim_script "{\"org\":\"$PO\",\"statuses\":[503,500,200]}"
t0=$(date +%s%N)
c=$(chat "$PK" erin "retry me")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# 503, 500, 200 from the provider: $c in $ms ms"
t_eq "provider 503, 500, then 200: the client gets 200 with the answer" \
    "200 echo: retry me" "$c $(jq -r .reply "$OUT")"
t_eq "  three attempts at the provider" 3 "$(sim_requests "$PO")"
sim_script "{\"org\":\"$PO\",\"statuses\":[503,502,500,503]}"
t0=$(date +%s%N)
c=$(chat "$PK" erin "always failing")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# 5xx on every attempt: $c in $ms ms"
t_eq "provider 5xx on every attempt: 502 UPSTREAM_UNAVAILABLE, retryable" \
    "502 UPSTREAM_UNAVAILABLE true" "$c $(code) $(jq -r .error.retryable "$OUT")"
t_eq "  3 more attempts (2 retries), not 4" 6 "$(sim_requests "$PO")"
t_match "  the contract's error body: message, retry_strategy, error_id, request_id" \
    '^[^ ]+ [a-z_]+ [0-9a-f-]{36} [A-Za-z0-9._-]+$' \
    "$(jq -r '.error | "\(.message | length) \(.retry_strategy) \(.error_id) \(.request_id)"' "$OUT")"
t_eq "  the fallback reply" true "$(jq -r '.reply | type == "string" and length > 0' "$OUT")"
t_eq "  it is bulwark-fcgi's answer, not nginx's own 502 page" false \
    "$(jq -r '.error.message == "The application server is unavailable."' "$OUT")"
t_match "  X-RateLimit headers on it" '^[0-9]+$' "$(hdr X-RateLimit-Limit)"
t_eq "  the failed turn is not in the conversation (1 turn)" 1 \
    "$(session "$PK" erin >/dev/null; jq -r .turns "$OUT")"
sim_script "{\"org\":\"$PO\"}"

# --- the provider drops the connection after reading the request ----------
# Each child keeps its connection to the provider alive between turns; a
# reused connection that dies without an answer must count as one attempt
# (libcurl would otherwise resend the request itself, unseen).
new_org close raise
CO=$ORG CK=$KEY
kids=$(sed -n 's/^fcgi_children *= *//p' "$BW_CONFIG" | tail -n 1)
sim_script "{\"org\":\"$CO\",\"delay_ms\":300}"
for i in $(seq 1 $((2 * ${kids:-4}))); do
	(OUT=$TMP/warm$i; chat "$CK" "w$i" "warm up" >/dev/null) &
done
wait
sim_script "{\"org\":\"$CO\",\"statuses\":[\"close\",\"close\",\"close\"]}"
n0=$(sim_requests "$CO")
c=$(chat "$CK" frank "dropped")
t_eq "provider closes the connection after each request: 502 UPSTREAM_UNAVAILABLE with the reply" \
    "502 UPSTREAM_UNAVAILABLE true" "$c $(code) $(jq -r '.reply | type == "string"' "$OUT")"
t_eq "  3 attempts at the provider (2 retries), none resent unseen" 3 \
    $(($(sim_requests "$CO") - n0))
sim_script "{\"org\":\"$CO\"}"

t_eq "every hold of this run settled" 0 "$(t_sql "SELECT count(*) FROM
    llm_holds h JOIN orgs o ON o.id = h.org_id WHERE o.name LIKE
    'e2e-chat-%-$SFX' AND h.state = 'held'")"
t_done
