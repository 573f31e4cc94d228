#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Stuck SMS campaigns (lib/campaign/reconcile.c), with the clock shortened
# by config (campaign_stuck_after_s = 2 instead of 900): the stack's sender
# is stopped; a campaign of 3 batches whose jobs for batches 1 and 2 are
# lost and whose batch 0 was sent (bulwark-sms --once) is found by two
# reconcile runs at once, which re-enqueue the 2 missing batch jobs once
# in all (one found it, the other found it moving); the sender then
# completes it. A campaign whose recipients are all final but whose
# batches never finished (a sender killed between its last record and the
# batch's capture) is completed by reconcile, the unused credits released.
# Each decision is a log line and counted (campaign_counts,
# bulwark_campaigns_stuck_found_total).
# shellcheck disable=SC2016 # jq programs
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BW_FCGI_SOCKET DATABASE_URL BW_SMS_SIM_URL BW_BUILD
t_stack

SIM=$BW_SMS_SIM_URL
SFX="$$-$RANDOM"
t_on_exit 'stack_start_one sms >/dev/null 2>&1'
stack_stop_one sms
sed '/^campaign_stuck_after_s/d' "$BW_CONFIG" >"$TMP/c.conf"
printf 'campaign_stuck_after_s = 2\n' >>"$TMP/c.conf"
curl -s -X POST -H 'Content-Type: application/json' \
    --data '{"dlr_enabled":false}' "$SIM/_sim/config" >/dev/null

ORG=$(t_ctl org create --name "reconcile-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
t_ctl credits grant --org "$ORG" --user org --amount 1000 \
    --anchor "reconcile:$SFX" >/dev/null
api() {
	local a=(--socket "$BW_FCGI_SOCKET" --method "$1" --path "$2"
	    --header "Authorization: Bearer $KEY")
	[ $# -ge 3 ] && a+=(--header "Content-Type: application/json" --body "$3")
	t_freq "${a[@]}" | sed 's/^[0-9]* //'
}
numbers() {
	seq -f "\"$1%07g\"" 1 "$2" | paste -sd, | sed 's/^/[/; s/$/]/'
}
jobs_of() {
	t_sql "SELECT count(*) FROM jobs WHERE queue = 'sms'
	    AND job_key LIKE 'campaign:$1:batch:%'"
}
status_of() { t_sql "SELECT status FROM campaigns WHERE id = '$1'"; }

# --- missing batches re-enqueued once, by two runs at once ------------------
r=$(api POST /api/v1/campaigns "{\"name\":\"stuck\",\"message\":\"m\",\"recipients\":$(numbers +6686 250)}")
ID=$(echo "${r#* }" | jq -r .id)
api POST "/api/v1/campaigns/$ID/send" '{}' >/dev/null
t_eq "send: 3 batches, 3 jobs" 3 "$(jobs_of "$ID")"
# Lost jobs (an enqueue that never happened, a purge): batches 1 and 2.
t_sql "DELETE FROM jobs WHERE queue = 'sms' AND job_key IN
    ('campaign:$ID:batch:1', 'campaign:$ID:batch:2')" >/dev/null
"$BW_BUILD/bulwark-sms" -c "$TMP/c.conf" --once >"$TMP/once1.log" 2>&1
t_eq "the sender ran batch 0 only; the campaign still sends" \
    "sending done queued queued" \
    "$(status_of "$ID") $(t_sql "SELECT string_agg(state, ' ' ORDER BY n) FROM campaign_batches WHERE campaign_id = '$ID'")"
t_eq "not stuck before campaign_stuck_after_s: reconcile finds nothing" \
    '{"found":0,"completed":0,"requeued":0,"dead":0}' \
    "$(t_sql "UPDATE campaigns SET progress_at = now() WHERE id = '$ID'" >/dev/null
    bulwarkctl -c "$TMP/c.conf" campaign reconcile 2>/dev/null | jq -c .)"
sleep 3
# Both runs list the campaign as stuck, then queue on its row lock (held
# here for 2 s): the second must find it moving once the first is done.
psql -qAt "$DATABASE_URL" -c "BEGIN; SELECT 1 FROM campaigns WHERE id = '$ID'
    FOR UPDATE; SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1 &
p0=$!
sleep 0.5
bulwarkctl -c "$TMP/c.conf" campaign reconcile >"$TMP/r1.out" 2>"$TMP/r1.err" &
p1=$!
bulwarkctl -c "$TMP/c.conf" campaign reconcile >"$TMP/r2.out" 2>"$TMP/r2.err" &
p2=$!
wait "$p0" "$p1" "$p2"
t_eq "two reconcile runs at once: found once, 2 batch jobs re-enqueued in all" \
    "1 2" \
    "$(jq -s '"\(map(.found) | add) \(map(.requeued) | add)"' -r "$TMP/r1.out" "$TMP/r2.out")"
t_eq "  3 jobs, one per batch key" "3 3" \
    "$(jobs_of "$ID") $(t_sql "SELECT count(DISTINCT job_key) FROM jobs WHERE queue = 'sms' AND job_key LIKE 'campaign:$ID:batch:%'")"
"$BW_BUILD/bulwark-sms" -c "$TMP/c.conf" --once >"$TMP/once2.log" 2>&1
t_eq "the sender completes it; 250 debited" "completed 250 0" \
    "$(status_of "$ID") $(t_sql "SELECT credits_debited || ' ' || credits_released FROM campaigns WHERE id = '$ID'")"

# --- all final, batches never finished: reconcile completes it --------------
r=$(api POST /api/v1/campaigns "{\"name\":\"final\",\"message\":\"m\",\"recipients\":$(numbers +6687 150)}")
ID2=$(echo "${r#* }" | jq -r .id)
api POST "/api/v1/campaigns/$ID2/send" '{}' >/dev/null
# What a sender killed after its last record leaves: every recipient
# final (refused here, so no message), no batch finished, jobs gone.
t_sql "UPDATE campaign_recipients SET state = 'failed', error = 'test'
    WHERE campaign_id = '$ID2'" >/dev/null
t_sql "DELETE FROM jobs WHERE queue = 'sms' AND job_key LIKE 'campaign:$ID2:batch:%'" >/dev/null
t_sql "UPDATE campaigns SET progress_at = now() - interval '16 minutes'
    WHERE id = '$ID2'" >/dev/null
# bulwark-reconcile itself (the timer's oneshot); this slot is the test's.
t_sql "DELETE FROM periodic_runs WHERE job = 'reconcile'
    AND slot > now() - interval '2 min'" >/dev/null
"$BW_BUILD/bulwark-reconcile" -c "$TMP/c.conf" >"$TMP/r3.log" 2>&1
t_match "bulwark-reconcile: the decision is a log line" \
    "\"msg\":\"reconcile stuck campaign\".*\"campaign_id\":\"$ID2\".*\"decision\":\"completed\"" \
    "$(cat "$TMP/r3.log")"
t_match "  and the pass says 1 stuck, 1 completed" \
    '"msg":"reconcile pass".*"campaigns_stuck":"1","campaigns_completed":"1"' \
    "$(cat "$TMP/r3.log")"
t_eq "  completed; 0 debited, 150 returned (refused) and nothing left" \
    "completed 150 0 150" \
    "$(status_of "$ID2") $(t_sql "SELECT credits_reserved || ' ' || credits_debited || ' ' || credits_released FROM campaigns WHERE id = '$ID2'")"
t_eq "  the reservation released, the account holds nothing" "released 0" \
    "$(t_sql "SELECT r.state || ' ' || a.reserved FROM credit_reservations r JOIN credit_accounts a ON a.org_id = r.org_id AND a.id = r.account_id WHERE r.org_id = '$ORG' AND r.reservation_key = 'campaign:$ID2'")"
t_ge "  counted: campaigns_stuck_found" 2 \
    "$(t_sql "SELECT n FROM campaign_counts WHERE name = 'campaigns_stuck_found'")"
t_match "  and in /metrics" 'bulwark_campaigns_stuck_found_total [0-9]+' \
    "$(t_freq --socket "$BW_FCGI_SOCKET" --method GET --path /metrics | grep '^200\|bulwark_campaigns_stuck_found_total ' | tail -1)"
t_check "ledger check clean" t_ctl ledger check --org "$ORG"
t_done
