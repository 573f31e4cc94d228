# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Helpers of the chat budget tests (after tests/lib/common.sh).

# t_chat_org NAME BUDGET OUT_PRICE: a new org: ORG, KEY (a member's) and
# MODEL, a model of its own priced at 1 micro per input token and
# OUT_PRICE micros per million output tokens, whose prompt rule is the LLM
# simulator's (4 bytes per token, nothing per message); the daily budget
# BUDGET (none: no budget) on that model with no downgrade; the org's rate
# limits lifted.
t_chat_org() {
	MODEL="t-$1-$$-$RANDOM"
	ORG=$(t_ctl org create --name "t-chat-$1-$$-$RANDOM" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
	    window_s) VALUES ('$ORG', 'chat', 'org', 1000000, 60),
	    ('$ORG', 'chat', 'ip', 1000000, 10) ON CONFLICT DO NOTHING" >/dev/null
	t_ctl price set --model "$MODEL" --input-micros-per-mtok 1000000 \
	    --output-micros-per-mtok "$3" --prompt-bytes-per-token 4 \
	    --prompt-tokens-per-message 0 >/dev/null
	t_ctl budget set --org "$ORG" --daily-micros "$2" \
	    --primary-model "$MODEL" --fallback-model "$MODEL" \
	    --no-downgrade >/dev/null
}
