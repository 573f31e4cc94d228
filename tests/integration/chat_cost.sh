#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The work of one warm chat turn, counted (issue 11, "a third of the cost
# per turn"): N turns of one org and one user through nginx, after a few
# warm-up turns (the per-child caches filled, the conversation at its
# steady length), with the stack's counters read before and after:
#   - Redis commands, those run inside scripts included (INFO
#     commandstats; our own INFO calls taken off);
#   - Redis round trips (INFO stats total_reads_processed: one read event
#     per request of a kept connection, however many commands it
#     pipelines);
#   - PostgreSQL statements of the backends that served the turns (every
#     one its own transaction), from the server's log with log_statement
#     set to all for the window (the stack's other workers poll and run
#     periodic jobs: pg_stat_database would count them too), and WAL
#     flushes (pg_stat_wal, printed only: the test stack runs without
#     fsync);
#   - lines and bytes bulwark-fcgi logged.
# Counts, not time: they do not depend on the machine's load, and each has
# a ceiling that fails the test when the per-turn work grows again. The
# ceilings and what each turn does are in docs/chat-cost.md. Bounded: 100
# measured turns after at most 600 warm-up ones (usually 150), about a minute.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_LLM_SIM_URL DATABASE_URL REDIS_URL BW_RUN

N=${CHAT_COST_TURNS:-100}
WARM=10
SFX="$$-$RANDOM"
SIM=$BW_LLM_SIM_URL
RPORT=${REDIS_URL##*:}
RPORT=${RPORT%%/*}
RHOST=${REDIS_URL#redis://}
RHOST=${RHOST%%:*}
LOG=$BW_RUN/log/bulwark-fcgi.log

# Ceilings per warm turn (docs/chat-cost.md has what they count).
MAX_REDIS_CMDS=${CHAT_COST_MAX_REDIS_CMDS:-36}
MAX_REDIS_TRIPS=${CHAT_COST_MAX_REDIS_TRIPS:-2}
MAX_PG_STMTS=${CHAT_COST_MAX_PG_STMTS:-0.5}
MAX_LOG_LINES=${CHAT_COST_MAX_LOG_LINES:-1}
MAX_LOG_BYTES=${CHAT_COST_MAX_LOG_BYTES:-700}

rcli() { redis-cli -h "$RHOST" -p "$RPORT" "$@"; }

# rsnap: "commands reads" Redis counted so far: commands run, those inside
# scripts included (INFO commandstats, summed), and read events, one per
# round trip of a kept connection whatever it pipelines (INFO stats
# total_reads_processed). One redis-cli per snapshot; what the snapshots
# themselves add is measured on an empty interval and taken off.
rsnap() {
	rcli INFO all | tr -d '\r' | awk -F'[:,=]' '
	    /^cmdstat_/ { n += $3 }
	    /^total_reads_processed:/ { r = $2 }
	    END { print n + 0, r + 0 }'
}
PGLOG=$BW_RUN/log/postgres.log
# pg_log_all on|off: log_statement = all for the window, or as configured.
pg_log_all() {
	if [ "$1" = on ]; then
		t_sql "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
	else
		t_sql "ALTER SYSTEM RESET log_statement" >/dev/null
	fi
	t_sql "SELECT pg_reload_conf()" >/dev/null
}
pg_wal_syncs() {
	t_sql "SELECT wal_sync FROM pg_stat_wal" 2>/dev/null || echo 0
}

ORG=$(t_ctl org create --name "chat-cost-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
    window_s) VALUES ('$ORG', 'chat', 'org', 1000000, 60),
    ('$ORG', 'chat', 'ip', 1000000, 10) ON CONFLICT DO NOTHING" >/dev/null
MODEL="chat-cost-$SFX"
t_ctl price set --model "$MODEL" --input-micros-per-mtok 2500 \
    --output-micros-per-mtok 10000 >/dev/null
t_ctl budget set --org "$ORG" --daily-micros 100000000 \
    --primary-model "$MODEL" --fallback-model "$MODEL" --no-downgrade \
    >/dev/null
curl -s -X POST "$SIM/_sim/reset" >/dev/null

# turns K: K turns of the org's one user; prints the statuses, one a line.
turns() {
	local i
	for i in $(seq "$1"); do
		curl -sk --max-time 30 -o /dev/null -w '%{http_code}\n' \
		    -X POST -H "Authorization: Bearer $KEY" \
		    -H 'Content-Type: application/json' \
		    --data-binary "{\"channel\":\"web\",\"user_id\":\"cost-user\",\"message\":\"turn $i of the cost test\"}" \
		    "$BULWARK_URL/api/v1/chat"
	done
}

# Warm: the children that serve these turns have this key, the org's
# limits and its chat settings in their per-child caches (a cold child adds
# three statements and a Redis round trip to its first turn). Which child
# accepts a turn is the kernel's choice: one turn at a time reaches the same
# two or three children, but a busy machine (CI runs two stacks) hands a
# measured turn to another, cold one. So the warm-up sends bursts of as many
# concurrent turns as the chat pool has children ("bw-fcgi-chat"), until
# this key's access lines (their pids) name every one, 20 bursts at most
# (the provider slowed down for them; then 10 turns of the measured user).
MASTER=$(cat "$BW_RUN/pid/bulwark-fcgi.pid")
NCHAT=$(pgrep -P "$MASTER" -x bw-fcgi-chat | wc -l)
KP=${KEY:0:12}
lw=$(wc -c <"$LOG")
: >"$TMP/warm"
# burst K: K concurrent turns (one curl, K transfers at once); prints the
# statuses, one a line.
burst() {
	local i args=()
	for i in $(seq "$1"); do
		[ "$i" -gt 1 ] && args+=(--next)
		args+=(-k -o /dev/null -w '%{http_code}\n' -X POST
		    -H "Authorization: Bearer $KEY"
		    -H 'Content-Type: application/json'
		    --data-binary "{\"channel\":\"web\",\"user_id\":\"cost-user-$i\",\"message\":\"warm-up $i of the cost test\"}"
		    "$BULWARK_URL/api/v1/chat")
	done
	curl -sk --max-time 30 --parallel --parallel-immediate \
	    --parallel-max "$1" "${args[@]}" 2>/dev/null # its progress meter
}
# served: the pids of the chat children that served this key since byte $1
# of the log, one a line.
served() {
	tail -c +"$(($1 + 1))" "$LOG" | grep "\"key_prefix\":\"$KP\"" |
	    grep -o '"pid":[0-9]*' | sort -u
}
# The provider answers the warm-up slowly, so that each concurrent turn
# keeps its child busy and the next one goes to another.
curl -s -X POST "$SIM/_sim/script" -d "{\"org\":\"$ORG\",\"delay_ms\":300}" >/dev/null
seen=0
for _ in $(seq 20); do
	burst "$NCHAT" >>"$TMP/warm"
	seen=$(served "$lw" | wc -l)
	[ "$seen" -ge "$NCHAT" ] && break
done
served "$lw" >"$TMP/warmed"
curl -s -X POST "$SIM/_sim/reset" >/dev/null
# The measured user's conversation at its steady length.
turns "$WARM" >>"$TMP/warm"
t_ge "the chat pool has children" 1 "$NCHAT"
t_ge "the warm-up reached every chat child ($NCHAT)" "$NCHAT" "$seen"
t_eq "warm-up turns answered 200" "$(wc -l <"$TMP/warm")" \
    "$(grep -c '^200$' "$TMP/warm")"
# PostgreSQL flushes a backend's stats at most once a second.
sleep 1.2

# The snapshots' own cost: two of them back to back.
read -r rc0 rr0 <<<"$(rsnap)"
read -r rc1 rr1 <<<"$(rsnap)"
rcal=$((rc1 - rc0))
rrcal=$((rr1 - rr0))
pg_log_all on
t_on_exit "pg_log_all off"
sleep 1 # every backend has read the new setting
g0=$(wc -c <"$PGLOG")
w0=$(pg_wal_syncs)
l0=$(wc -l <"$LOG")
b0=$(wc -c <"$LOG")
read -r rc0 rr0 <<<"$(rsnap)"
t0=$(t_sql "SELECT clock_timestamp()")
turns "$N" >"$TMP/statuses"
read -r rc1 rr1 <<<"$(rsnap)"
t1=$(t_sql "SELECT clock_timestamp()")
# A call in a budget block is kept by its child and written with its
# block's next batch (chat_block_record_batch, chat_block_record_ms): the
# window lasts until every measured turn's record is in llm_holds.
recs="SELECT count(*) FROM llm_holds WHERE org_id = '$ORG'
    AND created_at >= '$t0' AND created_at <= '$t1'"
t_wait_sql 10 "$N" "$recs" || true
g1=$(wc -c <"$PGLOG")
pg_log_all off
sleep 1.2 # PostgreSQL flushes a backend's stats at most once a second
w1=$(pg_wal_syncs)
l1=$(wc -l <"$LOG")
b1=$(wc -c <"$LOG")

# A child that replaced one in the window would be cold too.
t_eq "every measured turn was served by a warmed child" "" \
    "$(served "$b0" | grep -vxF -f "$TMP/warmed" | tr '\n' ' ')"
t_eq "every measured turn answered 200" "$N" "$(grep -c '^200$' "$TMP/statuses")"

cmds=$((rc1 - rc0 - rcal))
trips=$((rr1 - rr0 - rrcal))
# The backends that served the turns: those that placed a hold or recorded
# a call in a budget block; all they ran in the window (a statement is one
# "LOG:  execute" or "statement:" line).
tail -c +"$((g0 + 1))" "$PGLOG" | head -c "$((g1 - g0))" >"$TMP/pg.log"
pids=$(grep -E 'LOG:  execute (budget_hold|block_record|block_batch):' "$TMP/pg.log" |
    grep -o '^[^[]*\[[0-9]*\]' | grep -o '\[[0-9]*\]' | sort -u)
t_eq "every measured turn is recorded in llm_holds" "$N" "$(t_sql "$recs")"
# The tenant's set_config (row-level security: SET LOCAL of the org, sent
# in the same pipeline as each statement, lib/core/db.c) is counted apart:
# no round trip of its own, but a statement PostgreSQL runs.
stmts=0
orgsets=0
for p in $pids; do
	n=$(grep -F "$p" "$TMP/pg.log" | grep -c -E 'LOG:  (execute|statement)')
	o=$(grep -F "$p" "$TMP/pg.log" | grep -E 'LOG:  (execute|statement)' |
	    grep -c "set_config('bulwark.org_id'")
	stmts=$((stmts + n - o))
	orgsets=$((orgsets + o))
done
# What the served backends ran, by statement name (prepared) or first
# words (simple query): printed, so that a count above its ceiling says
# which statement grew.
for p in $pids; do
	grep -F "$p" "$TMP/pg.log" | grep -E 'LOG:  (execute|statement)'
done | sed -E 's/.*LOG:  execute ([^:]*):.*/\1/; s/.*LOG:  statement: (.{0,40}).*/\1/' |
    sort | uniq -c | sort -rn | sed 's/^/# statements: /'
walsyncs=$((w1 - w0))
lines=$((l1 - l0))
bytes=$((b1 - b0))

per() { awk -v a="$1" -v n="$N" 'BEGIN { printf "%.2f", a / n }'; }
# le NAME TOTAL MAX_PER_TURN: TOTAL <= MAX_PER_TURN x N.
le() {
	if awk -v a="$2" -v m="$3" -v n="$N" 'BEGIN { exit !(a <= m * n) }'
	then
		t_ok "$1: $(per "$2") per turn <= $3"
	else
		t_fail "$1" "$(per "$2") per turn, ceiling $3 ($2 in $N turns)"
	fi
}
printf '# per warm turn (%s turns): redis commands %s, redis round trips %s, pg statements %s (+ %s tenant set_config), wal flushes %s, log lines %s, log bytes %s\n' \
    "$N" "$(per "$cmds")" "$(per "$trips")" "$(per "$stmts")" "$(per "$orgsets")" \
    "$(per "$walsyncs")" "$(per "$lines")" "$(per "$bytes")"
printf 'CHAT_COST {"turns":%s,"redis_cmds":%s,"redis_trips":%s,"pg_statements":%s,"wal_syncs":%s,"log_lines":%s,"log_bytes":%s}\n' \
    "$N" "$(per "$cmds")" "$(per "$trips")" "$(per "$stmts")" \
    "$(per "$walsyncs")" "$(per "$lines")" "$(per "$bytes")" >&2

le "redis commands per warm turn" "$cmds" "$MAX_REDIS_CMDS"
le "redis round trips per warm turn" "$trips" "$MAX_REDIS_TRIPS"
le "postgresql statements per warm turn (without the tenant's set_config)" "$stmts" "$MAX_PG_STMTS"
le "the tenant's set_config per warm turn (at most one per statement)" "$orgsets" "$MAX_PG_STMTS"
le "log lines per warm turn" "$lines" "$MAX_LOG_LINES"
le "log bytes per warm turn" "$bytes" "$MAX_LOG_BYTES"

# Still one access line per request, and nothing of the message in it.
t_ge "an access line per turn" "$N" \
    "$(tail -c "$bytes" "$LOG" | grep -c '"msg":"request".*"route":"chat"')"
t_eq "no message text in the log" 0 \
    "$(tail -c "$bytes" "$LOG" | grep -c 'of the cost test')"
t_done
