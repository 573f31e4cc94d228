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
# chat turn and a whoami on the new children answer 200.
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
got=0
for _ in $(seq 1 150); do
	got=$(new_sessions "")
	[ "$got" -ge "$nwant" ] && break
	sleep 0.1
done
t_ge "after a SIGHUP roll every new child has its PostgreSQL session ($nwant)" \
    "$nwant" "$got"
# Let the warm-ups finish (each is a few statements on an idle server).
sleep 1
settle=$(new_sessions "AND query LIKE 'WITH h AS (UPDATE llm_holds SET state = ''settled''%'")
t_eq "every new chat child ran the chat's statements before any request ($NCHAT)" \
    "$NCHAT" "$settle"
rl=$(new_sessions "AND query LIKE 'SELECT scope, \"limit\", window_s FROM org_rate_limits%'")
t_eq "every new api child ran the api pool's before any request ($NAPI)" \
    "$NAPI" "$rl"
t_eq "no new child logged a failed warm-up or statement" "" \
    "$(tail -n +"$((LOG0 + 1))" "$LOG" |
    grep -E '"child warm-up: statements not prepared"|"level":"error"' |
    head -n 3)"

code=$(curl -sk -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $BULWARK_DEMO_KEY" "$BULWARK_URL/api/v1/whoami")
t_eq "the warm api children serve (whoami 200)" 200 "$code"
code=$(curl -sk -o "$TMP/chat" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $BULWARK_DEMO_KEY" \
    -H 'Content-Type: application/json' \
    --data-binary '{"channel":"api","user_id":"warm-1","message":"hi"}' \
    "$BULWARK_URL/api/v1/chat")
t_eq "the warm chat children serve (chat 200)" 200 "$code"
t_done
