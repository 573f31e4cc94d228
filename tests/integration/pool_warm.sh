#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bulwark-fcgi's children start warm (fcgi/main.c child_warm, db_warm()):
# before its first request each child has connected to PostgreSQL and
# prepared, and run once with ids no row has, the statements of its pool's
# hot path, so that a fresh server process's catalog look-ups (about 15 ms
# of CPU for the chat hold's first parse and plan, against 1 ms later) are
# not paid by 32 cold chat children at once in a burst's first second
# (issue 11, e2e/chat_burst.sh). Shown from the server's side: after a
# SIGHUP roll, with no request sent, the session of every new chat child
# has last run the chat's settlement (the last statement of its warm-up)
# and every new api child the rate-limit overrides look-up (the last of
# the api pool's); no new child logged a failed warm-up or a failed
# statement (the warm parameters are valid for every statement); and a
# chat turn and a whoami on the new children answer 200. Then, after every
# child's session is cut (as a restart or a failover cuts them), every
# idle child opens a new session at once, with no request, and warms it;
# and the session that serves a request is warmed before its statements.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_RUN DATABASE_URL BW_CONFIG BULWARK_URL BULWARK_DEMO_KEY

MASTER=$(cat "$BW_RUN/pid/bulwark-fcgi.pid" 2>/dev/null)
FCONF=$BW_RUN/fcgi.conf
if [ -z "$MASTER" ] || ! kill -0 "$MASTER" 2>/dev/null; then
	t_fail "pool warm-up: bulwark-fcgi runs" "no master pid in $BW_RUN/pid"
	t_done
fi
# The pools' children counts, as the master reads its config.
pools=$(bulwark-fcgi -c "$FCONF" --check-config 2>/dev/null)
NAPI=$(printf '%s\n' "$pools" | sed -n 's/^# pool api: .* children=\([0-9]*\) .*/\1/p')
NCHAT=$(printf '%s\n' "$pools" | sed -n 's/^# pool chat: .* children=\([0-9]*\) .*/\1/p')
if [ -z "$NAPI" ] || [ -z "$NCHAT" ]; then
	t_fail "pool warm-up: the pools' children counts" "$pools"
	t_done
fi

# The backends of the fcgi children connected after T0 (the roll), by the
# statement each last ran.
T0=$(t_sql "SELECT now()")
LOG=$BW_RUN/log/bulwark-fcgi.log
LOG0=$(wc -l <"$LOG")
kill -HUP "$MASTER"
new_sessions() {
	t_sql "SELECT count(*) FROM pg_stat_activity
	    WHERE application_name = 'bulwark-fcgi' AND backend_start > '$T0'
	    AND state = 'idle' $1"
}
nwant=$((NAPI + NCHAT))
# sessions_within TENTHS: new_sessions once there are nwant, or at the end.
sessions_within() {
	local got=0
	for _ in $(seq 1 "$1"); do
		got=$(new_sessions "")
		[ "$got" -ge "$nwant" ] && break
		sleep 0.1
	done
	echo "$got"
}
# The last statement of each pool's warm-up: the chat's budget block
# records' batch, the api pool's rate-limit overrides look-up.
CHAT_LAST="AND query LIKE 'SELECT bw_block_records(%'"
API_LAST="AND query LIKE 'SELECT scope, \"limit\", window_s FROM org_rate_limits%'"
t_ge "after a SIGHUP roll every new child has its PostgreSQL session ($nwant)" \
    "$nwant" "$(sessions_within 150)"
# Let the warm-ups finish (each is a few statements on an idle server).
sleep 1
t_eq "every new chat child ran the chat's statements before any request ($NCHAT)" \
    "$NCHAT" "$(new_sessions "$CHAT_LAST")"
t_eq "every new api child ran the api pool's before any request ($NAPI)" \
    "$NAPI" "$(new_sessions "$API_LAST")"
t_eq "no new child logged a failed warm-up or statement" "" \
    "$(tail -n +"$((LOG0 + 1))" "$LOG" |
    grep -E '"child warm-up: statements not prepared"|"level":"error"' |
    head -n 3)"

code=$(curl -sk -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $BULWARK_DEMO_KEY" "$BULWARK_URL/api/v1/whoami")
t_eq "the warm api children serve (whoami 200)" 200 "$code"
# The chat turn on an org of its own whose per-IP chat limit is raised:
# the per-IP log is shared by every org's turns from 127.0.0.1, and the
# default 5 in 10 s refused the demo key's turn (429) when this ran right
# after another chat test.
WORG=$(t_ctl org create --name "pool-warm-$$-$RANDOM" | jq -r .id)
WKEY=$(t_ctl key create --org "$WORG" --role member | jq -r .key)
t_ctl ratelimit set --org "$WORG" --route chat --scope ip --limit 100000 \
    --window-s 10 >/dev/null
code=$(curl -sk -o "$TMP/chat" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $WKEY" \
    -H 'Content-Type: application/json' \
    --data-binary '{"channel":"api","user_id":"warm-1","message":"hi"}' \
    "$BULWARK_URL/api/v1/chat")
t_eq "the warm chat children serve (chat 200)" 200 "$code"

# --- A new session after a lost one is warmed too -----------------------
# A restart or a failover breaks every child's session; an idle child
# opens a new one at once (its wait watches the session's socket), a busy
# one on its next statement (db_connect()); either warms it before any of
# a request's statements. Shown from PostgreSQL's statement log (the app
# role's log_statement = all, for new sessions): after every fcgi session
# is terminated, the child that serves the next chat turn and the one that
# serves the next api request (a new key: a cache miss, so a key look-up)
# each executed the warm-up, with its all-zero parameters, on their new
# session before the request's own statements.
t_sql "ALTER ROLE bulwark_app SET log_statement = 'all'" >/dev/null
restore_role() {
	t_sql "ALTER ROLE bulwark_app RESET log_statement" >/dev/null 2>&1
}
t_on_exit restore_role
PGLOG=$BW_RUN/log/postgres.log
PG0=$(wc -l <"$PGLOG")
ORG=$(curl -sk -H "Authorization: Bearer $BULWARK_DEMO_KEY" \
    "$BULWARK_URL/api/v1/whoami" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["org_id"])')
KEY2=$(bulwarkctl -c "$BW_CONFIG" key create --org "$ORG" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
T0=$(t_sql "SELECT now()")
LOG0=$(wc -l <"$LOG")
cut=$(t_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE application_name = 'bulwark-fcgi'")
t_ge "every child's session cut ($nwant)" "$nwant" "$cut"
# The children are idle: each watches its session's socket
# (fcgi/main.c child_watch) and connects again at once, warm, with no
# request sent.
t_ge "after the cut, with no request, every child has a new session within 5 s ($nwant)" \
    "$nwant" "$(sessions_within 50)"
sleep 1
t_eq "every chat child warmed its new session before any request ($NCHAT)" \
    "$NCHAT" "$(new_sessions "$CHAT_LAST")"
t_eq "every api child warmed its new session before any request ($NAPI)" \
    "$NAPI" "$(new_sessions "$API_LAST")"
t_ge "each child logged its reconnect while idle" "$nwant" \
    "$(tail -n +"$((LOG0 + 1))" "$LOG" |
    grep -c '"database session ended while idle: connected again"')"
code=$(curl -sk -o "$TMP/chat2" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $BULWARK_DEMO_KEY" \
    -H 'Content-Type: application/json' \
    --data-binary '{"channel":"api","user_id":"warm-2","message":"hi"}' \
    "$BULWARK_URL/api/v1/chat")
t_eq "after the cut a chat turn answers 200" 200 "$code"
code=$(curl -sk -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $KEY2" "$BULWARK_URL/api/v1/whoami")
t_eq "after the cut a new key's whoami answers 200" 200 "$code"
# Per backend pid, in log order: how many executions with a warm-up's
# all-zero parameter came before its first other one, and the statement
# names of its non-warm executions. "pid warm names".
tail -n +"$((PG0 + 1))" "$PGLOG" |
    awk -v z="'00000000-0000-0000-0000-000000000000'" -v h="'\\\\x00'" '
	match($0, /\[[0-9]+\]/) { pid = substr($0, RSTART + 1, RLENGTH - 2) }
	/ LOG:  execute [a-z_]*:/ {
		n = $0
		sub(/.* LOG:  execute /, "", n)
		sub(/:.*/, "", n)
		name[pid] = n
		seen[pid] = 1
		next
	}
	/ DETAIL:  parameters: / && name[pid] != "" {
		if (index($0, z) > 0 || index($0, h) > 0) {
			if (real[pid] == "") warm[pid]++
		} else
			real[pid] = real[pid] name[pid] ","
		name[pid] = ""
	}
	END { for (p in seen) printf "%s %d %s\n", p, warm[p], real[p] }
' >"$TMP/sessions"
chat_warm=$(awk '$3 ~ /budget_hold,|block_r[a-z]*,/ { print $2; exit }' "$TMP/sessions")
api_warm=$(awk '$3 ~ /auth_/ && $3 !~ /budget_hold,|block_r[a-z]*,/ { print $2; exit }' \
    "$TMP/sessions")
t_ge "the chat child's new session ran the warm-up before the turn" 6 \
    "${chat_warm:-0}"
t_ge "the api child's new session ran the warm-up before the key look-up" 2 \
    "${api_warm:-0}"
t_done
