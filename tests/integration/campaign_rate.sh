#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The per-org SMS send rate holds across sender processes (issue 12:
# "per-org send rate (messages/s) from config"): 4 bulwark-sms processes of
# our own with sms_send_rate = 25 share org A's campaign of 300 (3
# batches, 3 senders at once) while org B sends 100 (1 batch). Counted at
# the simulator from each message's acceptance time: org A never has more
# than 30 messages accepted in any 1-second window (25/s plus jitter), and
# its 300 span at least 11.3 s (the mean rate is 25/s); nor org B, which
# is paced on its own (it finishes well before A). With the rate per
# process, org A's three senders went 71/s.
# Bounded: A needs 12 s at 25/s; the wait ends at 60 s.
# shellcheck disable=SC2016 # jq programs
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BW_FCGI_SOCKET DATABASE_URL BW_SMS_SIM_URL BW_BUILD
t_stack
SIM=$BW_SMS_SIM_URL
SFX="$$-$RANDOM"
RATE=25
SENDERS=4
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stack_start_one sms >/dev/null 2>&1
	curl -s -X POST "$SIM/_sim/reset" -d '{"config":true}' >/dev/null
}
t_on_exit cleanup

# Only our senders: the stack's stops for this test.
stack_stop_one sms
sed -e '/^sms_send_rate/d' "$BW_CONFIG" >"$TMP/sms.conf"
printf 'sms_send_rate = %d\n' "$RATE" >>"$TMP/sms.conf"
curl -s -X POST "$SIM/_sim/reset" -d '{"config":true}' >/dev/null
curl -s -X POST -H 'Content-Type: application/json' \
    --data '{"dlr_enabled":false}' "$SIM/_sim/config" >/dev/null

# camp ORG_PREFIX N: an org with credits and a campaign of N; "ORG KEY ID".
camp() {
	local o k r
	o=$(t_ctl org create --name "rate-$1-$SFX" | jq -r .id)
	k=$(t_ctl key create --org "$o" --role member | jq -r .key)
	t_ctl credits grant --org "$o" --user org --amount 1000 \
	    --anchor "rate-$1:$SFX" >/dev/null
	seq -f "+66$2%07g" 1 "$3" | jq -R . | jq -sc \
	    "{name:\"rate\",message:\"Paced\",recipients:.}" >"$TMP/body.$1"
	r=$(t_freq --socket "$BW_FCGI_SOCKET" --method POST \
	    --path /api/v1/campaigns --header "Authorization: Bearer $k" \
	    --header "Content-Type: application/json" \
	    --body-file "$TMP/body.$1" | cut -d' ' -f2-)
	echo "$o $k $(echo "$r" | jq -r 'objects | .id')"
}
read -r AORG AKEY AID <<<"$(camp a 85 300)"
read -r BORG BKEY BID <<<"$(camp b 86 100)"
send() {
	t_freq --socket "$BW_FCGI_SOCKET" --method POST \
	    --path "/api/v1/campaigns/$2/send" \
	    --header "Authorization: Bearer $1" >/dev/null
}
send "$AKEY" "$AID"
send "$BKEY" "$BID"
for i in $(seq 1 "$SENDERS"); do
	"$BW_BUILD/bulwark-sms" -c "$TMP/sms.conf" >>"$TMP/sender.$i.log" 2>&1 &
	PIDS+=($!)
done
for _ in $(seq 1 600); do
	[ "$(t_sql "SELECT count(*) FROM campaigns WHERE id IN ('$AID', '$BID') AND status = 'completed'")" = 2 ] && break
	sleep 0.1
done
t_eq "both campaigns completed (4 senders, sms_send_rate = $RATE)" \
    "completed completed" \
    "$(t_sql "SELECT status FROM campaigns WHERE id = '$AID'") $(t_sql "SELECT status FROM campaigns WHERE id = '$BID'")"
t_eq "org A's 300 went through at least 3 senders at once" t \
    "$(t_sql "SELECT count(DISTINCT locked_by) >= 3 FROM jobs WHERE job_key LIKE 'campaign:$AID:batch:%'" 2>/dev/null || echo '?')"

# The acceptance time of each message at the simulator, per org: the
# largest count in any 1-second window, and the span first..last.
rates() {
	t_sql "SELECT id FROM campaign_recipients WHERE campaign_id = '$1'" |
	    python3 -c '
import http.client, json, sys, urllib.parse
from datetime import datetime
u = urllib.parse.urlsplit(sys.argv[1])
key = open(sys.argv[2]).read().strip()
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
ts = []
for ref in sys.stdin.read().split():
    c.request("GET", "/v1/messages?client_reference=" + ref,
              headers={"Authorization": "Bearer " + key})
    r = c.getresponse()
    m = json.loads(r.read())
    if r.status == 200:
        ts.append(datetime.fromisoformat(
            m["created_at"].replace("Z", "+00:00")).timestamp())
ts.sort()
best, j = 0, 0
for i in range(len(ts)):
    while ts[i] - ts[j] >= 1.0:
        j += 1
    best = max(best, i - j + 1)
print(len(ts), best, "%.1f" % (ts[-1] - ts[0] if ts else 0))
' "$SIM" "$(sed -n 's/^sms_api_key_file = //p' "$BW_CONFIG")"
}
read -r an amax aspan <<<"$(rates "$AID")"
read -r bn bmax bspan <<<"$(rates "$BID")"
t_eq "org A: 300 messages accepted" 300 "$an"
# Slots are 1/RATE apart at Redis; each message then crosses the sender's
# HTTP client and the simulator's threads, whose jitter can bring a few
# closer together at the simulator: a 1 s window allows RATE * 1.2. The
# mean over the whole send is exact: 299 gaps of 40 ms, at least 11.3 s.
t_le "org A: at most $((RATE * 6 / 5)) accepted in any 1 s window (max $amax)" \
    $((RATE * 6 / 5)) "$amax"
t_ge "org A: the mean rate is $RATE/s: 300 messages span >= 11.3 s (${aspan} s)" \
    113 "$(python3 -c "print(int(float('$aspan') * 10))")"
t_eq "org B: 100 messages accepted" 100 "$bn"
t_le "org B: at most $((RATE * 6 / 5)) in any 1 s window (max $bmax)" \
    $((RATE * 6 / 5)) "$bmax"
t_ge "org B paced on its own: over 15/s while A sent (span ${bspan} s for 100)" \
    15 "$(python3 -c "print(int(100 / max(float('$bspan'), 0.1)))")"
t_done
