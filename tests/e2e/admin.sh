#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /api/v1/admin/overview (docs/api/admin.md) through nginx: owner only
# (admin and member keys 403), scoped to the caller's org, and every number
# is the stack's own: org A makes a chat turn, gets and spends credits, has
# a queued and a dead job, a stuck campaign, a refused webhook delivery, an
# LLM lease and a browser error report; the overview shows exactly what the database and Redis
# hold, and org B's overview shows none of it.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG DATABASE_URL REDIS_URL

URL=$BULWARK_URL
SFX=$$-$RANDOM
CURL=(curl -sk --max-time 30)
OV=/api/v1/admin/overview

ORG_A=$(t_ctl org create --name "e2e-admin-a-$SFX" | jq -r .id)
ORG_B=$(t_ctl org create --name "e2e-admin-b-$SFX" | jq -r .id)
declare -A KA
for role in owner admin member; do
	KA[$role]=$(t_ctl key create --org "$ORG_A" --role $role | jq -r .key)
done
KB=$(t_ctl key create --org "$ORG_B" --role owner | jq -r .key)

# get KEY: the overview into $TMP/o; prints the status.
get() {
	"${CURL[@]}" -o "$TMP/o" -D "$TMP/h" -w '%{http_code}' \
	    -H "Authorization: Bearer $1" "$URL$OV"
}
jo() { jq -r "$@" "$TMP/o"; }
rcli() { redis-cli -u "$REDIS_URL" "$@"; }

# --- roles --------------------------------------------------------------------
for role in admin member; do
	c=$(get "${KA[$role]}")
	t_eq "$role key: 403 FORBIDDEN" "403 FORBIDDEN" "$c $(jo .error.error_code)"
done
c=$(get "${KA[owner]}")
t_eq "owner key, a fresh org: 200 with nothing used" \
    "200 $ORG_A 0 0 0 0 [] 0 0 0" \
    "$c $(jo '"\(.org_id) \(.usage_today.chat_turns) \(.usage_today.tokens) \(.usage_today.credits.granted) \(.budget.spent_micros) \(.jobs.queues) \(.stuck_campaigns.count) \(.webhook_failures.total)"') $(jo .llm_leases.org.in_use)"
t_eq "the answer is not cached (Cache-Control: no-store)" "no-store" \
    "$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "cache-control" { print $2 }')"

# The same by cookie session (docs/api/auth.md): owner 200, admin and
# member 403.
PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
for role in owner admin member; do
	printf '%s' "$PW" | t_ctl user add --org "$ORG_A" --role $role \
	    --email "$role-$SFX@example.test" --password-stdin >/dev/null
	c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -c "$TMP/jar-$role" \
	    -X POST "$URL/api/v1/auth/login" -H 'Content-Type: application/json' \
	    -d "{\"email\":\"$role-$SFX@example.test\",\"password\":\"$PW\"}")
	c=$c/$("${CURL[@]}" -o "$TMP/o" -w '%{http_code}' -b "$TMP/jar-$role" "$URL$OV")
	if [ $role = owner ]; then
		t_eq "$role session: 200, its org" "200/200 $ORG_A" "$c $(jo .org_id)"
	else
		t_eq "$role session: 403 FORBIDDEN" "200/403 FORBIDDEN" \
		    "$c $(jo .error.error_code)"
	fi
done

# --- activity in org A ----------------------------------------------------------
M="e2e-admin-$SFX"
t_ctl price set --model "$M" --input-micros-per-mtok 1000000 \
    --output-micros-per-mtok 2000000 >/dev/null
t_ctl budget set --org "$ORG_A" --daily-micros 500000 --primary-model "$M" \
    --fallback-model "$M" --no-downgrade >/dev/null
# The chat route limits per client IP too (one window for every script on
# 127.0.0.1): wait a 429 out.
for _ in 1 2 3 4; do
	CHAT=$("${CURL[@]}" -o "$TMP/chat" -D "$TMP/chat.h" -w '%{http_code}' \
	    -X POST "$URL/api/v1/chat" -H "Authorization: Bearer ${KA[member]}" \
	    -H 'Content-Type: application/json' \
	    -d "{\"channel\":\"web\",\"user_id\":\"adm-$SFX\",\"message\":\"hello there\"}")
	[ "$CHAT" = 429 ] || break
	ra=$(tr -d '\r' <"$TMP/chat.h" | awk -F': ' 'tolower($1) == "retry-after" { print $2 + 0 }' | head -n 1)
	sleep "${ra:-1}"
done
t_eq "org A: a chat turn (200)" 200 "$CHAT"

t_ctl credits grant --org "$ORG_A" --user "adm-u-$SFX" --amount 50 \
    --anchor "adm-$SFX" >/dev/null
c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/bookings" \
    -H "Authorization: Bearer ${KA[member]}" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: adm-book-$SFX" \
    -d "{\"user_id\":\"adm-u-$SFX\",\"class_id\":\"yoga\",\"credits\":7}")
t_eq "org A: 50 credits granted, a booking of 7 (201)" 201 "$c"

# Jobs of a queue no worker reads: one runnable for 40 s, one dead.
Q=e2e-admin-$$
t_sql "INSERT INTO jobs (queue, job_key, org_id, state, run_at) VALUES
    ('$Q', 'a-$SFX', '$ORG_A', 'queued', now() - interval '40 seconds'),
    ('$Q', 'b-$SFX', '$ORG_A', 'dead', now())" >/dev/null

# A stuck campaign: sending, no progress for a day.
CAMP=$("${CURL[@]}" -X POST "$URL/api/v1/campaigns" \
    -H "Authorization: Bearer ${KA[member]}" -H "Idempotency-Key: adm-camp-$SFX" \
    -H 'Content-Type: application/json' \
    -d '{"name":"stuck one","message":"hello","recipients":["+66810000001"]}' |
    jq -r '.id // empty')

# A refused webhook delivery to org A (it has a secret), and one to org B
# (no secret: nothing may be counted for it).
t_ctl webhook-secret set --org "$ORG_A" --provider stripe \
    --secret "whsec_adm$SFX" >/dev/null
for org in "$ORG_A" "$ORG_B"; do
	"${CURL[@]}" -o /dev/null -X POST "$URL/api/v1/webhooks/stripe/$org" \
	    -H 'Content-Type: application/json' \
	    -H "Stripe-Signature: t=$(date +%s),v1=00" -d '{"id":"evt_x"}'
done

# An LLM lease of org A, as lib/chat/sem.c holds one (expiry in ms).
LEASE=e2e-admin-$SFX
exp=$(($(date +%s) * 1000 + 120000))
rcli ZADD "sem:{llm}:g" "$exp" "$LEASE" >/dev/null
rcli ZADD "sem:{llm}:o:$ORG_A" "$exp" "$LEASE" >/dev/null
cleanup() {
	rcli ZREM "sem:{llm}:g" "$LEASE" >/dev/null
	rcli ZREM "sem:{llm}:o:$ORG_A" "$LEASE" >/dev/null
	t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null
}
t_on_exit cleanup

# A browser error report of org A (lib/errtrack groups it at once).
c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/client-errors" \
    -H "Authorization: Bearer ${KA[member]}" -H 'Content-Type: application/json' \
    -d "{\"message\":\"TypeError: adm-$SFX is undefined\",\"source\":\"/console/console.js\",\"line\":7,\"column\":3}")
t_match "org A: a client error report is accepted (2xx)" '^2[0-9][0-9]$' "$c"

# The campaign is made stuck last: bulwark-reconcile settles stuck ones.
t_sql "UPDATE campaigns SET status = 'sending', started_at = now() - interval '1 day',
    progress_at = now() - interval '1 day' WHERE org_id = '$ORG_A' AND id = '$CAMP'" >/dev/null
c=$(get "${KA[owner]}")
t_eq "owner key after the activity: 200" 200 "$c"

# --- the numbers are the stack's -------------------------------------------------
db=$(t_sql "SELECT count(*), coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)
    FROM llm_holds WHERE org_id = '$ORG_A'" | tr '|' ' ')
t_eq "usage_today: chat turns and tokens are llm_holds' (one turn)" "1 ${db#* }" \
    "$(jo '"\(.usage_today.chat_turns) \(.usage_today.tokens)"')"
t_ge "usage_today: the turn used tokens" 1 "$(jo .usage_today.tokens)"
# A charge recorded in a budget block still held (sql/0040) is spent, not
# reserved: the day row moves it when the block is renewed or returned.
t_eq "budget: daily budget, spent and reserved are org_budget_days' (and its blocks')" \
    "500000 $(t_sql "SELECT d.spent_micros + k.u || ' ' || d.reserved_micros - k.u
    FROM org_budget_days d CROSS JOIN LATERAL (SELECT COALESCE(sum(used_micros
    - moved_micros), 0) AS u FROM llm_budget_blocks b WHERE b.org_id = d.org_id
    AND b.day = d.day AND b.state = 'held') k WHERE d.org_id = '$ORG_A'")" \
    "$(jo '"\(.budget.daily_micros) \(.budget.spent_micros) \(.budget.reserved_micros)"')"
t_eq "budget: remaining = daily - spent - reserved" \
    "$(jo '.budget.daily_micros - .budget.spent_micros - .budget.reserved_micros')" \
    "$(jo .budget.remaining_micros)"
t_eq "usage_today: credits granted 50, spent 7, one booking" "50 7 0 1" \
    "$(jo '.usage_today.credits | "\(.granted) \(.spent) \(.refunded) \(.bookings)"')"
t_eq "jobs: the org's queue with one queued and one dead job" \
    "[{\"queue\":\"$Q\",\"queued\":1,\"running\":0,\"dead\":1}]" "$(jo -c .jobs.queues)"
t_eq "jobs: the oldest runnable job is that queue's" "$Q" "$(jo .jobs.oldest_runnable_queue)"
t_ge "jobs: it has waited at least 40 s" 40 "$(jo '.jobs.oldest_runnable_s | floor')"
t_ge "jobs: the global oldest runnable is at least as old" \
    "$(jo '.jobs.oldest_runnable_s | floor')" "$(jo '.jobs.global_oldest_runnable_s | floor')"
t_eq "stuck_campaigns: the campaign sending without progress" "1 $CAMP stuck one 900" \
    "$(jo '.stuck_campaigns | "\(.count) \(.campaigns[0].id) \(.campaigns[0].name) \(.stuck_after_s)"')"
t_eq "webhook_failures: one refused stripe delivery (signature)" \
    '1 [{"provider":"stripe","reason":"signature","count":1}]' \
    "$(jo '"\(.webhook_failures.total) \(.webhook_failures.by|tojson)"')"
g=$(rcli ZCOUNT "sem:{llm}:g" "($(($(date +%s) * 1000))" +inf)
t_eq "llm_leases: the org's lease against its cap (5), global against 15" \
    "1 5 15" "$(jo '"\(.llm_leases.org.in_use) \(.llm_leases.org.cap) \(.llm_leases.global.cap)"')"
t_ge "llm_leases: global in use counts it (Redis has $g)" 1 "$(jo .llm_leases.global.in_use)"
t_eq "errors: the org's one error group, seen once" "1 1" \
    "$(jo '"\(.errors.groups | length) \(.errors.groups[0].count)"')"
t_eq "errors: 24 hourly counts summing to 1" "24 1" \
    "$(jo '"\(.errors.per_hour | length) \([.errors.per_hour[].count] | add)"')"
t_eq "nothing unavailable" "[]" "$(jo -c .unavailable)"

# --- another org sees none of it -------------------------------------------------
c=$(get "$KB")
t_eq "org B's owner: its own org, none of org A's numbers" \
    "200 $ORG_B 0 0 0 0 [] 0 0 0 0" \
    "$c $(jo '"\(.org_id) \(.usage_today.chat_turns) \(.usage_today.tokens) \(.usage_today.credits.granted) \(.budget.spent_micros) \(.jobs.queues) \(.stuck_campaigns.count) \(.webhook_failures.total) \(.llm_leases.org.in_use) \(.errors.groups | length)"')"
t_eq "org B: a refused delivery to an org without secrets is not counted" \
    "" "$(rcli --scan --pattern "wh:fail:$ORG_B:*")"

t_done
