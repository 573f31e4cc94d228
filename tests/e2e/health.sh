#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /health/full through nginx. Who sees what: a public caller (a client
# bound to $NET.x: nginx passes that address as REMOTE_ADDR, and only
# 127.0.0.1 and ::1 count as loopback) gets the status alone, loopback and
# an owner key get the details, a member key the status, a bad key 401.
# The per-IP limit answers 429 in the error contract after 30 calls. The
# queue judgement: a dead job, an old runnable job and an overdue periodic
# job each make it 503 degraded with the reason named. Its statements read
# a bounded number of rows of jobs (pg_stat counters around five calls over
# 20,000 done jobs). Redis down and PostgreSQL down: 503 degraded, for the
# public status only, with the reason for loopback; while PostgreSQL is
# down each bulwark-fcgi process logs its failed reconnects once.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG BW_RUN BW_DEMO_ORG BW_DEMO_KEY

U=$BULWARK_URL
B=$TMP/body
H=$TMP/headers
SFX="$$$RANDOM"
Q="t-health-$SFX"
JOB="e2e-health-$SFX"
LO=127.0.0.1
# The public addresses: a /24 of loopback this run alone uses. The per-IP
# limit is counted per address and route for a minute, and other scripts
# call /health/full from 127.0.3.x (e2e/auth_cache: 127.0.3.1-32); one that
# ran just before in the same lane used up part of 127.0.3.4's 30.
NET=127.$((RANDOM % 150 + 100)).$((RANDOM % 250 + 1))
DOWN=

cleanup() {
	[ -n "$DOWN" ] && (t_stack && stack_start_one "$DOWN") >/dev/null 2>&1
	t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null 2>&1
	t_sql "DELETE FROM periodic_runs WHERE job = '$JOB'" >/dev/null 2>&1
}
t_on_exit cleanup

# hf FROM [curl args...]: GET /health/full from the client address FROM;
# body in $B, headers in $H, status in $ST.
hf() {
	local from=$1
	shift
	ST=$(curl -sk --max-time 20 --interface "$from" -o "$B" -D "$H" \
	    -w '%{http_code}' "$@" "$U/health/full")
}

# hdr NAME: the value of header NAME in the last response.
hdr() {
	tr -d '\r' <"$H" | awk -v n="$1" '
		{ k = tolower(substr($0, 1, index($0, ":") - 1)) }
		k == tolower(n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v) }
		END { printf "%s", v }'
}

# jb FILTER: jq -c FILTER on the last body ("" when it is not JSON).
jb() { jq -c "$1" "$B" 2>/dev/null; }

# jbe FILTER: the last body is JSON and FILTER is true for it.
jbe() { jq -e "$1" "$B" >/dev/null 2>&1; }

# has_reason R: the last body's reasons name R.
has_reason() { jq -e --arg r "$1" '.reasons | index($r) != null' "$B" >/dev/null 2>&1; }

# code_of_status: 200 for ok, 503 for degraded, as the last body says.
code_of_status() { jq -r '{"ok": "200", "degraded": "503"}[.status] // "?"' "$B" 2>/dev/null; }

# --- who sees what ----------------------------------------------------------
hf "$NET.1"
t_eq "public: the body is the status alone" '["status"]' "$(jb 'keys')"
t_eq "public: 200 when ok, 503 when degraded" "$(code_of_status)" "$ST"

hf "$LO"
t_check "loopback: latencies, queue figures, periodic runs and reasons" \
    jbe '(.checks.postgres.latency_ms | type) == "number"
	and (.checks.redis.latency_ms | type) == "number"
	and (.checks.queues.queued | type) == "number"
	and (.checks.periodic | type) == "object"
	and (.reasons | type) == "array"'
t_eq "loopback: 200 when ok, 503 when degraded" "$(code_of_status)" "$ST"

hf "$NET.2" -H "Authorization: Bearer $BW_DEMO_KEY"
t_check "owner key from a public address: the details" \
    jbe '(.checks.postgres.latency_ms | type) == "number"
	and (.reasons | type) == "array"'
MKEY=$(bulwarkctl -c "$BW_CONFIG" key create --org "$BW_DEMO_ORG" \
    --role member | jq -r .key)
hf "$NET.2" -H "Authorization: Bearer $MKEY"
t_eq "member key from a public address: the status alone" '["status"]' \
    "$(jb 'keys')"
hf "$NET.2" -H "Authorization: Bearer bwk_$(head -c 32 /dev/urandom |
    base64 | tr '+/' '-_' | tr -d '=' | head -c 43)"
t_eq "an unknown key: 401 UNAUTHENTICATED" "401 UNAUTHENTICATED" \
    "$ST $(jq -r .error.error_code "$B" 2>/dev/null)"

# --- the per-IP limit -------------------------------------------------------
bad=0
for i in $(seq 1 30); do
	hf "$NET.4"
	case $ST in 200 | 503) ;; *) bad=$((bad + 1)) ;; esac
done
t_eq "limit: 30 calls a minute from one address are answered" 0 "$bad"
hf "$NET.4"
t_eq "limit: the 31st is 429" 429 "$ST"
t_check "limit: 429 in the error contract (RATE_LIMITED, after_retry_after)" \
    jbe '.error.error_code == "RATE_LIMITED" and .error.retryable == true
	and .error.retry_strategy == "after_retry_after"
	and (.error.error_id | type) == "string"'
t_match "limit: Retry-After on the 429" '^[1-9][0-9]*$' "$(hdr Retry-After)"
t_eq "limit: X-RateLimit-Limit 30" 30 "$(hdr X-RateLimit-Limit)"
hf "$NET.5"
t_eq "limit: another address is not limited by it" "$(code_of_status)" "$ST"

# --- queue judgement --------------------------------------------------------
hf "$LO"
dead0=$(jq -r '.checks.queues.dead_recent // 0' "$B" 2>/dev/null)
[[ "$dead0" =~ ^[0-9]+$ ]] || dead0=0
t_sql "INSERT INTO jobs (queue, job_key, state, attempts, finished_at,
    last_error) VALUES ('$Q', 'dead', 'dead', 5, now(), 'e2e')" >/dev/null
hf "$LO"
t_eq "a dead job: 503 degraded" "503 degraded" "$ST $(jq -r .status "$B")"
t_check "a dead job: the reason is dead_jobs" has_reason dead_jobs
t_eq "a dead job: dead_recent counts it" "$((dead0 + 1))" \
    "$(jb .checks.queues.dead_recent)"
hf "$NET.5"
t_eq "a dead job: the public answer is 503 with the status alone" \
    '503 {"status":"degraded"}' "$ST $(jb .)"
t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null
hf "$LO"
t_eq "the dead job gone: dead_recent back" "$dead0" \
    "$(jb .checks.queues.dead_recent)"

t_sql "INSERT INTO jobs (queue, job_key, run_at) VALUES ('$Q', 'old',
    now() - interval '2 hours')" >/dev/null
hf "$LO"
t_eq "a runnable job 2 h old: 503" 503 "$ST"
t_check "a runnable job 2 h old: the reason is job_backlog" \
    has_reason job_backlog
t_check "a runnable job 2 h old: oldest_runnable_s says so" \
    jbe '.checks.queues.oldest_runnable_s >= 7200'
t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null

t_sql "INSERT INTO periodic_runs (job, slot, state, started_at, finished_at,
    period_s) VALUES ('$JOB', date_trunc('minute', now()) - interval '1 hour',
    'ok', now() - interval '1 hour', now() - interval '1 hour', 60)" \
    >/dev/null
hf "$LO"
t_eq "a periodic job with no run for an hour (60 s period): 503" 503 "$ST"
t_check "an overdue periodic job: the reason names it" \
    has_reason "periodic_overdue:$JOB"
t_eq "an overdue periodic job: marked overdue" true \
    "$(jq -r --arg j "$JOB" '.checks.periodic[$j].overdue' "$B")"
t_sql "DELETE FROM periodic_runs WHERE job = '$JOB'" >/dev/null

# --- bounded reads ----------------------------------------------------------
# Rows of jobs read by every session so far (sequential and index reads);
# the fcgi children report theirs within PostgreSQL's 10 s idle flush.
reads() {
	t_sql "SELECT coalesce((SELECT seq_tup_read FROM pg_stat_user_tables
	    WHERE relname = 'jobs'), 0) + coalesce((SELECT sum(idx_tup_read)
	    FROM pg_stat_user_indexes WHERE relname = 'jobs'), 0)"
}
t_sql "INSERT INTO jobs (queue, job_key, state, finished_at)
    SELECT '$Q', 'done-' || g, 'done', now() FROM generate_series(1, 20000) g" \
    >/dev/null
t_sql "ANALYZE jobs" >/dev/null
r0=$(reads)
for i in 1 2 3 4 5; do hf "$LO"; done
sleep 12
r1=$(reads)
echo "# rows of jobs read during the five calls: $((r1 - r0))"
t_le "five calls over 20,000 done jobs read fewer than 20,000 rows of jobs" \
    19999 "$((r1 - r0))"
t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null

# --- dependencies down ------------------------------------------------------
# wait_up: polls loopback until no reason names a dependency (5 s at most).
wait_up() {
	local i
	for i in 1 2 3 4 5; do
		sleep 1
		hf "$LO"
		jbe '[.reasons[] | select(test("_unavailable$"))] | length == 0' &&
		    return 0
	done
	return 1
}

(t_stack && stack_stop_one redis) >/dev/null 2>&1
DOWN=redis
hf "$NET.6"
t_eq "redis down: the public answer is 503 with the status alone" \
    '503 {"status":"degraded"}' "$ST $(jb .)"
hf "$LO"
t_eq "redis down: loopback 503 degraded" "503 degraded" \
    "$ST $(jq -r .status "$B")"
t_check "redis down: the reason is redis_unavailable, postgres is ok" \
    jbe '(.reasons | index("redis_unavailable")) != null
	and .checks.postgres.ok == true and .checks.redis.ok == false'
(t_stack && stack_start_one redis) >/dev/null 2>&1
DOWN=
t_check "redis back: no dependency reason" wait_up

FLOG=$BW_RUN/log/bulwark-fcgi.log
fl0=$(wc -c <"$FLOG")
(t_stack && stack_stop_one postgres) >/dev/null 2>&1
DOWN=postgres
hf "$NET.7"
t_eq "postgres down: the public answer is 503 with the status alone" \
    '503 {"status":"degraded"}' "$ST $(jb .)"
hf "$LO"
t_eq "postgres down: loopback 503 degraded" "503 degraded" \
    "$ST $(jq -r .status "$B")"
t_check "postgres down: the reason is postgres_unavailable, redis is ok" \
    jbe '(.reasons | index("postgres_unavailable")) != null
	and .checks.postgres.ok == false and .checks.redis.ok == true'
# Every idle child retries its session (250 ms doubling): about five
# attempts each in 4 s, one "db connect failed" line each (lib/core/db.c).
sleep 4
tail -c +"$((fl0 + 1))" "$FLOG" | grep '"msg":"db connect failed"' |
    grep -o '"pid":[0-9]*' | sort | uniq -c | sort -rn >"$TMP/dbfail"
t_ge "postgres down: idle children noticed and tried to connect again" 2 \
    "$(wc -l <"$TMP/dbfail")"
t_eq "postgres down 4 s: one \"db connect failed\" line per process (the most of one)" \
    1 "$(head -1 "$TMP/dbfail" | awk '{ print $1 }')"
(t_stack && stack_start_one postgres) >/dev/null 2>&1
DOWN=
for _ in $(seq 1 100); do
	t_sql "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done
t_check "postgres back: no dependency reason" wait_up

t_done
