#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Chaos: no double debit when a COMMIT's answer is lost (issue 9 item 1).
# Three bulwark-fcgi masters (three "hosts", each its own socket) reach
# PostgreSQL through tools/sim/pg_fault.py, which breaks connections at
# COMMIT: it drops the COMMIT before the server sees it, drops the
# connection right after forwarding it (the server commits, the client
# never hears), or lets it commit and then SIGKILLs the child that sent it.
# A contract-following client (tests/chaos/idem_client.py) books BOOKINGS
# times, one Idempotency-Key each, retrying on 5xx, lost connections and
# 409 IDEMPOTENCY_KEY_IN_USE, each retry to the next master. Counted after:
# bookings = debits = distinct keys = BOOKINGS, every key answered with the
# one booking the database holds for it, the balance moved by exactly
# BOOKINGS, and `bulwarkctl ledger check` clean. The faults must really
# have happened (each kind counted by the proxy).
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG DATABASE_URL BW_BUILD

BOOKINGS=${BW_IDEM_CHAOS_BOOKINGS:-1000}
T=$TMP
PROXY_PID=
MASTERS=()

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local m
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	for m in "${MASTERS[@]}"; do
		kill -KILL "$m" 2>/dev/null
		pkill -KILL -P "$m" 2>/dev/null
	done
	t_kill_jobs
}
t_on_exit cleanup

# The stack's database, reached through the proxy.
PG_HOSTPORT=$(t_pg_hostport "$DATABASE_URL")
PPORT=$(t_free_port)
PROXY_URL=$(t_pg_via "$DATABASE_URL" "$PPORT")

ORG=$(t_ctl org create --name "idem-chaos-$$" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
USER_ID=chaos-$$
t_ctl credits grant --org "$ORG" --user "$USER_ID" --amount $((BOOKINGS * 2)) \
    --anchor "idem-chaos-grant-$$" >/dev/null

# Three masters, two children each, behind the proxy; a short lock timeout
# so that a killed child's key is taken over within the test's time.
i=0
for _ in 1 2 3; do
	i=$((i + 1))
	BULWARK_DATABASE_URL=$PROXY_URL BULWARK_FCGI_SOCKET=$T/m$i.sock \
	    BULWARK_PID_FILE=$T/m$i.pid BULWARK_FCGI_CHILDREN=2 \
	    BULWARK_FCGI_CHAT_CHILDREN=1 \
	    BULWARK_IDEM_LOCK_TIMEOUT_S=2 BULWARK_FCGI_MAX_REQUESTS=0 \
	    bulwark-fcgi -c "$BW_CONFIG" >>"$T/m$i.log" 2>&1 &
	MASTERS+=("$!")
done
PIDS=$(IFS=,; echo "${MASTERS[*]}")
python3 "$BW_TOP/tools/sim/pg_fault.py" --listen "127.0.0.1:$PPORT" \
    --upstream "$PG_HOSTPORT" --drop-before 0.06 --drop-after 0.06 \
    --kill-after 0.06 --kill-pids "$PIDS" --stats "$T/faults.json" \
    >"$T/proxy.log" 2>&1 &
PROXY_PID=$!

up=0
for _ in $(seq 100); do
	if [ -S "$T/m1.sock" ] && [ -S "$T/m2.sock" ] && [ -S "$T/m3.sock" ]; then
		up=1
		break
	fi
	sleep 0.1
done
t_eq "three masters listen" 1 "$up"

BAL0=$(t_sql "SELECT balance FROM credit_accounts WHERE org_id = '$ORG'
    AND kind = 'user' AND name = '$USER_ID'")

SUMMARY=$(timeout 600 python3 "$BW_TOP/tests/chaos/idem_client.py" \
    --socket "$T/m1.sock" --socket "$T/m2.sock" --socket "$T/m3.sock" \
    --api-key "$KEY" --user "$USER_ID" --count "$BOOKINGS" \
    --prefix "ik-$$" --out "$T/keys.txt" --concurrency 12 --deadline 120)
echo "# client: $SUMMARY"
echo "# faults: $(cat "$T/faults.json" 2>/dev/null)"

fault() { jq -r ".$1 // 0" "$T/faults.json" 2>/dev/null || echo 0; }
t_ge "faults: COMMITs dropped before the server" 10 "$(fault drop_before)"
t_ge "faults: COMMITs dropped after the server got them" 10 "$(fault drop_after)"
t_ge "faults: children killed right after COMMIT" 10 "$(fault kill_after)"

t_eq "every key got its booking (client)" "$BOOKINGS" \
    "$(echo "$SUMMARY" | jq -r .booked)"
t_eq "distinct booking ids answered = keys" "$BOOKINGS" \
    "$(awk '$2 != "FAILED" { print $2 }' "$T/keys.txt" | sort -u | wc -l)"
t_eq "bookings in the database = keys" "$BOOKINGS" \
    "$(t_sql "SELECT count(*) FROM bookings WHERE org_id = '$ORG'")"
t_eq "one booking per key (request_key distinct)" "$BOOKINGS" \
    "$(t_sql "SELECT count(DISTINCT request_key) FROM bookings
        WHERE org_id = '$ORG'")"
t_eq "debits = keys" "$BOOKINGS" \
    "$(t_sql "SELECT count(*) FROM credit_transfers WHERE org_id = '$ORG'
        AND kind = 'booking'")"
BAL1=$(t_sql "SELECT balance FROM credit_accounts WHERE org_id = '$ORG'
    AND kind = 'user' AND name = '$USER_ID'")
t_eq "balance moved by exactly the bookings" "$BOOKINGS" "$((BAL0 - BAL1))"

# The ids each key was answered with are the ones the database holds.
awk '$2 != "FAILED" { print $1 " " $2 }' "$T/keys.txt" |
    python3 -c '
import hashlib, sys
for ln in sys.stdin:
    k, b = ln.split()
    print("%s,%s" % (hashlib.sha256(k.encode()).hexdigest(), b))' \
    >"$T/keys.csv"
MISMATCH=$(psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 <<EOF
CREATE TEMP TABLE k (rk text, bid uuid);
\copy k FROM '$T/keys.csv' CSV
SELECT count(*) FROM k LEFT JOIN bookings b
    ON b.org_id = '$ORG' AND b.request_key = k.rk
    WHERE b.id IS DISTINCT FROM k.bid;
EOF
)
t_eq "each key's answer is the booking stored for it" 0 "$MISMATCH"

CHECK=$(t_ctl ledger check --org "$ORG" 2>/dev/null | jq -r .clean)
t_eq "ledger check clean" true "$CHECK"

# The ambiguous outcomes were settled, never released blindly.
t_ge "ambiguous commits settled as committed (logged)" 1 \
    "$(cat "$T"/m*.log | grep -c 'ambiguous_committed')"
t_done
