#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Chaos: budget blocks when a statement's answer is lost (issue 11; lib/
# chat/block.h). A bulwark-fcgi master with four chat children reaches
# PostgreSQL through tools/sim/pg_fault.py, which breaks the connection at
# every block statement it picks (a take or renewal, a call's record, a
# return): drops it before the server sees it, drops the connection right
# after forwarding it (the server commits, the child never hears), or lets
# it commit and SIGKILLs the child. Turns of two orgs, one with a daily
# budget (run until it is spent) and one without (blocks with no cap).
# Counted after the children are idle and the lost blocks have expired
# (bulwark-maint):
#   - 0 overshoot: spent <= the budget;
#   - 0 lost: spent >= what every provider call the simulator answered
#     costs (each 102 micros): a call whose record died is paid by its
#     block's expiry;
#   - every recorded charge in spent, nothing reserved, no block or hold
#     left held; the faults really happened.
. "${BW_TOP:?}/tests/lib/common.sh"
. "$BW_TOP/tests/lib/chat.sh"
t_need BW_CONFIG DATABASE_URL BW_BUILD BW_LLM_SIM_URL

TURNS=${BW_BLOCK_CHAOS_TURNS:-600}
BUDGET=40000 # micros: about 390 calls of 102
SIM=$BW_LLM_SIM_URL
T=$TMP
SFX="$$-$RANDOM"
PROXY_PID=
MPID=
IDLE=$(sed -n 's/^chat_block_idle_ms *= *//p' "$BW_CONFIG" | tail -n 1)
IDLE=${IDLE:-2000}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[ -n "$MPID" ] && kill -KILL "$MPID" 2>/dev/null &&
	    pkill -KILL -P "$MPID" 2>/dev/null
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	curl -s -X POST "$SIM/_sim/reset" >/dev/null
	t_kill_jobs
}
t_on_exit cleanup

PG_HOSTPORT=$(t_pg_hostport "$DATABASE_URL")
PPORT=$(t_free_port)
# The app role's URL (the master's config), through the proxy.
PROXY_URL=$(t_pg_via "$(sed -n 's/^database_url *= *//p' "$BW_CONFIG" | tail -n 1)" "$PPORT")

# new_org NAME BUDGET: ORG and KEY (tests/lib/chat.sh), output 0.1 micro
# per token: a turn of 100 + 20 tokens costs 102.
new_org() {
	t_chat_org "block-chaos-$1" "$2" 100000
	t_ctl prompt set --org "$ORG" --org-cap 64 >/dev/null
	curl -s -X POST "$SIM/_sim/script" \
	    -d "{\"org\":\"$ORG\",\"output_tokens\":20}" >/dev/null
}
curl -s -X POST "$SIM/_sim/reset" >/dev/null
# One org with a budget (its blocks may hold half of it: several children
# hold blocks at once), one without (no cap: every child holds a block).
new_org budget "$BUDGET"
BO=$ORG BK=$KEY
new_org free none
FO=$ORG FK=$KEY

BULWARK_DATABASE_URL=$PROXY_URL BULWARK_FCGI_SOCKET=$T/m.sock \
    BULWARK_PID_FILE=$T/m.pid BULWARK_FCGI_CHILDREN=1 \
    BULWARK_FCGI_CHAT_CHILDREN=4 BULWARK_FCGI_CHAT_MAX_REQUESTS=0 \
    BULWARK_CHAT_BLOCK_PCT=50 \
    bulwark-fcgi -c "$BW_CONFIG" >>"$T/m.log" 2>&1 &
MPID=$!
python3 "$BW_TOP/tools/sim/pg_fault.py" --listen "127.0.0.1:$PPORT" \
    --upstream "$PG_HOSTPORT" --match llm_budget_blocks --match bw_block_ \
    --drop-before 0.03 --drop-after 0.03 --kill-after 0.03 \
    --kill-pids "$MPID" --stats "$T/faults.json" >"$T/proxy.log" 2>&1 &
PROXY_PID=$!
t_check "the master's chat pool listens" t_fcgi_ready 10 "$T/m-chat.sock"

# 400 bytes: the simulator counts 100 prompt tokens; 20 output tokens.
MSG=$(printf 'chaos block %.0s' $(seq 1 40) | head -c 400)
for i in $(seq "$TURNS"); do
	printf '{"channel":"web","user_id":"c%d","message":"%s"}\n' "$i" "$MSG"
done >"$T/bodies"
LOAD=()
for o in B F; do
	k=${o}K
	t_freq --socket "$T/m-chat.sock" --method POST --path /api/v1/chat \
	    --header "Authorization: Bearer ${!k}" --bodies-file "$T/bodies" \
	    --concurrency 4 --timeout 60 >"$T/out.$o" &
	LOAD+=("$!")
done
wait "${LOAD[@]}"
echo "# statuses, budget org: $(awk '{ print $2 }' "$T/out.B" | sort | uniq -c | tr -s ' \n' ' ')"
echo "# statuses, org without a budget: $(awk '{ print $2 }' "$T/out.F" | sort | uniq -c | tr -s ' \n' ' ')"
echo "# faults: $(cat "$T/faults.json" 2>/dev/null)"

# The children return their blocks when idle and at exit; what a fault
# cut off stays held until it expires.
sleep $((IDLE / 1000 + 2))
kill -TERM "$MPID" 2>/dev/null
wait "$MPID" 2>/dev/null
MPID=
kill "$PROXY_PID" 2>/dev/null
PROXY_PID=
held() { t_sql "SELECT count(*) FROM llm_budget_blocks WHERE org_id = '$1' AND state = 'held'"; }
spent() { t_sql "SELECT spent_micros FROM org_budget_days WHERE org_id = '$1'"; }
lost=$(($(held "$BO") + $(held "$FO")))
t_le "0 overshoot while lost blocks are held" "$BUDGET" "$(spent "$BO")"
t_sql "UPDATE llm_budget_blocks SET expires_at = now() - interval '1 s'
    WHERE org_id IN ('$BO', '$FO') AND state = 'held'" >/dev/null
t_sql "DELETE FROM periodic_runs WHERE job = 'maint'" >/dev/null
"$BW_BUILD/bulwark-maint" -c "$BW_CONFIG" >>"$T/maint.log" 2>&1

fault() { jq -r ".$1 // 0" "$T/faults.json" 2>/dev/null || echo 0; }
t_ge "faults: block statements dropped before the server" 3 "$(fault drop_before)"
t_ge "faults: block statements dropped after the server got them" 3 "$(fault drop_after)"
t_ge "faults: children killed right after a block statement" 2 "$(fault kill_after)"
t_ge "lost blocks expired (the faults cut some off)" 3 "$lost"

# check NAME ORG OUT: the org's invariants.
check() {
	local s calls rec
	s=$(spent "$2")
	calls=$(curl -s "$SIM/_sim/stats" | jq ".by_org[\"$2\"].requests // 0")
	rec=$(t_sql "SELECT COALESCE(sum(charged_micros), 0) FROM llm_holds
	    WHERE org_id = '$2'")
	echo "# $1: spent $s; provider calls $calls (x 102 = $((calls * 102))); recorded charges $rec; blocks $(t_sql "SELECT count(*) || ' (' || count(*) FILTER (WHERE state = 'expired') || ' expired)' FROM llm_budget_blocks WHERE org_id = '$2'")"
	t_ge "$1: turns were answered 200" 100 "$(awk '$2 == 200' "$3" | wc -l)"
	t_ge "$1: 0 lost: spent >= every provider call's cost (102 each)" \
	    $((calls * 102)) "$s"
	t_ge "$1: every recorded charge is in spent" "$rec" "$s"
	t_eq "$1: nothing reserved, no block or hold held" "0 0 0" \
	    "$(t_sql "SELECT reserved_micros FROM org_budget_days WHERE org_id = '$2'") $(held "$2") $(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$2' AND state = 'held'")"
}
check budget "$BO" "$T/out.B"
t_le "budget: 0 overshoot: spent <= the budget" "$BUDGET" "$(spent "$BO")"
check "no budget" "$FO" "$T/out.F"
t_done
