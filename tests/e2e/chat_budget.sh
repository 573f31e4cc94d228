#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The budget stream (issue 11): an org with a small daily budget sends
# identical chat turns through nginx until the first 402 BUDGET_EXCEEDED.
# At least 90 % of the budget must be spent by then, and never more than
# the budget: spend <= budget in the database, no hold left, and
# bulwark_llm_budget_overshoot_total unchanged. Three streams: every
# attempt answered; the first attempt of every turn failing with 503 (the
# retry extends the hold by one attempt's input bound first); and one turn
# whose budget has no room for that extension (no retry, the fallback
# reply). Also prints PostgreSQL transactions and Redis commands per turn.
# Bounded: about 100 turns, the simulator answering at once.
. "${BW_TOP:?}/tests/lib/common.sh"

# Its budgets are daily: a stream must not straddle the date change.
t_clear_of_midnight 60
. "$BW_TOP/tests/lib/chat.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL DATABASE_URL REDIS_URL

URL=$BULWARK_URL
SIM=$BW_LLM_SIM_URL
SFX="$$-$RANDOM"
OUT=$TMP/out
BUDGET=5000 # micros: 1 micro per input token, 2 per output token
MAXTURNS=120
# 400 bytes: the simulator counts ceil(400 / 4) = 100 prompt tokens.
MSG=$(printf 'budget stream %.0s' $(seq 1 40) | head -c 400)

cleanup() { curl -s -X POST "$SIM/_sim/reset" >/dev/null; }
t_on_exit cleanup

sim_script() { curl -s -X POST "$SIM/_sim/script" -d "$1" >/dev/null; }
sim_requests() { curl -s "$SIM/_sim/stats" | jq ".by_org[\"$1\"].requests // 0"; }
code() { jq -r '.error.error_code // empty' "$OUT" 2>/dev/null; }
chat() {
	curl -sk --max-time 60 -o "$OUT" -w '%{http_code}' \
	    -X POST -H "Authorization: Bearer $1" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"channel\":\"web\",\"user_id\":\"$2\",\"message\":\"$MSG\"}" \
	    "$URL/api/v1/chat"
}
# new_org NAME BUDGET: ORG and KEY (tests/lib/chat.sh): limits lifted, a
# priced model whose prompt rule is the simulator's (4 bytes per token,
# nothing per message), the budget set, no downgrade.
new_org() {
	t_chat_org "budget-$1" "$2" 2000000
	t_eq "$1: the model's prompt rule is the simulator's (4 bytes per token)" \
	    "4|0" "$(t_sql "SELECT prompt_bytes_per_token,
	    prompt_tokens_per_message FROM llm_prices WHERE model = '$MODEL'")"
	t_ctl prompt set --org "$ORG" --fallback-reply "No more today ($SFX)." \
	    >/dev/null
}
spent() { t_sql "SELECT COALESCE(sum(spent_micros), 0) FROM org_budget_days WHERE org_id = '$1'"; }
reserved() { t_sql "SELECT COALESCE(sum(reserved_micros), 0) FROM org_budget_days WHERE org_id = '$1'"; }
held() { t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$1' AND state = 'held'"; }
xacts() { t_sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }
# rstats FILE: Redis calls by command (INFO commandstats counts the
# commands a script runs too), "name calls" lines.
rstats() { redis-cli -u "$REDIS_URL" INFO commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { sub(/^cmdstat_/, "", $1); print $1, $3 }' | sort >"$1"; }

# stream NAME: chat turns until the first 402 (or MAXTURNS); sets N (turns
# before it), CODES (status counts), FIRST402 (the 402's code and reply).
stream() {
	local i c
	N=0 CODES="" FIRST402=""
	: >"$TMP/codes"
	for i in $(seq 1 $MAXTURNS); do
		c=$(chat "$KEY" "u$i")
		echo "$c" >>"$TMP/codes"
		if [ "$c" = 402 ]; then
			FIRST402="$(code) $(jq -r .reply "$OUT")"
			break
		fi
		N=$i
	done
	CODES=$(sort "$TMP/codes" | uniq -c | awk '{ printf "%s%s:%s", s, $2, $1; s = " " }')
}
# judge NAME ORG: the stream's checks.
judge() {
	local s r
	s=$(spent "$2")
	r=$(reserved "$2")
	echo "# $1: $N turns before the first 402 ($CODES); spent $s of $BUDGET micros ($((100 * s / BUDGET)) %)"
	t_eq "$1: the stream ends with 402 BUDGET_EXCEEDED and the fallback reply" \
	    "BUDGET_EXCEEDED No more today ($SFX)." "$FIRST402"
	t_ge "$1: >= 90 % of the daily budget spent before the first 402" \
	    $((BUDGET * 9 / 10)) "$s"
	t_le "$1: spend never above the budget (0 overshoot)" "$BUDGET" "$s"
	t_eq "$1: nothing reserved and no hold left after the stream" "0 0" \
	    "$r $(held "$2")"
	t_eq "$1: every settled charge within its hold" 0 "$(t_sql "SELECT count(*)
	    FROM llm_holds WHERE org_id = '$2' AND charged_micros > held_micros")"
	# The slot's first try rides with the conversation read, before the
	# budget holds: the refused turn gave its slot back.
	t_eq "$1: the 402 kept no provider slot and left no waiter" "0 0" \
	    "$(redis-cli -u "$REDIS_URL" ZCARD "sem:{llm}:o:$2" | tr -d '\r') $(redis-cli -u "$REDIS_URL" ZCARD "sem:{llm}:q:$2" | tr -d '\r')"
}

curl -s -X POST "$SIM/_sim/reset" >/dev/null
over0=$(t_metric bulwark_llm_budget_overshoot_total)

# --- every attempt answered --------------------------------------------------
new_org plain $BUDGET
PO=$ORG
sim_script "{\"org\":\"$PO\",\"output_tokens\":20}"
# Transactions and Redis calls per turn: the stream's, less what the
# stack's workers do in as long a quiet spell (measured right after).
sleep 1.5 # backends report their counters at most once a second
x0=$(xacts) && rstats "$TMP/r0" && t0=$(date +%s%N)
stream
sleep 1.5
x1=$(xacts) && rstats "$TMP/r1" && t1=$(date +%s%N)
sleep $(((t1 - t0) / 1000000000)).$(((t1 - t0) / 1000000 % 1000))
x2=$(xacts) && rstats "$TMP/r2"
turns=$((N + 1))
rdelta() { join -a 2 -e 0 -o 2.1,1.2,2.2 "$1" "$2" | awk '{ print $1, $3 - $2 }'; }
rdelta "$TMP/r0" "$TMP/r1" >"$TMP/rs" && rdelta "$TMP/r1" "$TMP/r2" >"$TMP/rq"
echo "# per turn over $turns turns: PostgreSQL transactions (pg_stat_database xact_commit + xact_rollback) $(((x1 - x0) * 100 / turns)) / 100, less $(((x2 - x1) * 100 / turns)) / 100 in as long a quiet spell"
echo "# Redis calls per turn x100 (INFO commandstats, stream minus quiet): $(join "$TMP/rs" "$TMP/rq" | awk -v n=$turns '$2 - $3 != 0 { printf "%s=%d ", $1, ($2 - $3) * 100 / n; t += $2 - $3 } END { printf "total=%d", t * 100 / n }')"
judge "plain" "$PO"
t_eq "plain: one provider attempt per answered turn" "$N" "$(sim_requests "$PO")"
t_eq "plain: the simulator's prompt tokens never above the hold's input bound" 0 \
    "$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$PO'
    AND input_tokens > input_bound")"

# --- the first attempt of every turn fails: the retry extends the hold ------
EXT='bulwark_llm_hold_extensions_total{result="extended"}'
REF='bulwark_llm_hold_extensions_total{result="refused"}'
new_org retry $BUDGET
RO=$ORG
e0=$(t_metric "$EXT")
sim_script "{\"org\":\"$RO\",\"statuses\":[503,200],\"cycle\":true,\"retry_after\":0,\"output_tokens\":20}"
stream
judge "retry" "$RO"
# (A turn refused its retry takes the 503 alone; the next turn's first
# attempt then gets the 200: the script's cycle moved on by one.)
t_ge "retry: most answered turns took a retry (2 attempts, the hold extended)" \
    $((N / 2)) "$(t_sql "SELECT count(*) FROM llm_holds WHERE
    org_id = '$RO' AND attempts = 2 AND input_tokens > 0")"
t_ge "retry: each retry's extension counted in $EXT" \
    "$(t_sql "SELECT count(*) FROM llm_holds WHERE org_id = '$RO' AND
    attempts = 2")" $(($(t_metric "$EXT") - ${e0:-0}))

# --- no room to extend the hold: no retry, the fallback reply --------------
new_org noroom 300
NO=$ORG
f0=$(t_metric "$REF")
sim_script "{\"org\":\"$NO\",\"statuses\":[503,200],\"retry_after\":0,\"output_tokens\":20}"
c=$(chat "$KEY" nr)
t_eq "noroom: 503 and no budget for a retry: 502 UPSTREAM_UNAVAILABLE with the fallback reply" \
    "502 UPSTREAM_UNAVAILABLE No more today ($SFX)." "$c $(code) $(jq -r .reply "$OUT")"
t_eq "noroom: one attempt at the provider, no retry" 1 "$(sim_requests "$NO")"
t_eq "noroom: the refused extension counted in $REF" $((${f0:-0} + 1)) \
    "$(t_metric "$REF")"
t_eq "noroom: the failed attempt charged its input bound (100), hold settled" \
    "100 0 0" "$(spent "$NO") $(reserved "$NO") $(held "$NO")"

t_eq "bulwark_llm_budget_overshoot_total unchanged" "${over0:-0}" \
    "$(t_metric bulwark_llm_budget_overshoot_total)"
t_done
