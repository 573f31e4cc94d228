#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Public verification under load, through nginx over HTTPS (issue 9 item 2):
# one export of ~96 MiB of evidence, verified by 20 client IPs
# (127.0.3.1..20, 10 requests each per phase: at most 20 per IP in all,
# under the route's 30/min/IP limit) while a sampler measures GET
# /api/v1/whoami (two addresses of its own per window, one request every
# 25 ms each, under nginx's 50/s per IP).
#
# Phase 1, paced: after 4 s of idle samples, the 200 requests arrive
# open-loop, one every 20 ms (50/s offered, each IP one every 400 ms), each
# on its own pre-opened connection. The authenticated p99 during the phase
# must stay within max(2 x idle p99, idle p99 + 20 ms). The +20 ms floor:
# this is a 2-core machine shared with other stacks, where whoami's idle
# p99 is a few ms and a doubling of a few ms is scheduler noise; 20 ms is
# still far below what a verification that re-reads the artifact does to
# it (old code: each call re-hashed the 96 MiB artifact, ~0.2 s of a child,
# so 50/s is more than 4 children can serve and whoami waits seconds).
# Up to three trials (idle + paced), each with its own 20 addresses
# (127.0.3, .8, .9) and its own idle baseline: a neighbour's burst can put
# tens of ms into a few of the ~300 samples of either window and flip a
# p99; a trial more than 10x over its bound is final (that is not noise).
#
# Phase 2, simultaneous: 200 pre-opened connections send at once. No p99
# bound is asserted here: a prefork server answers a burst in accept order,
# so any request behind 200 others waits for them, whatever they cost
# (200 x ~2 ms / 2 cores, even for 200 whoami); what is asserted is that
# the burst drains in under 5 s (old code: 200 re-hashes, ~25 s). Its p99
# is printed for the record.
#
# Then: every answer was 200, the org's ledger did not grow (no ledger
# event per verification), and the export's verification_count grew by
# exactly the number of 200 answers. Measured figures are printed as
# "# " lines.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
# bw-test: alone (dev/test: its timings are compared with nothing beside it)
. "${BW_TOP:?}/tests/lib/common.sh"

# Its roots are signed for today: events and day on one side of midnight.
t_clear_of_midnight 60
t_need BULWARK_URL BW_CONFIG DATABASE_URL

URL=$BULWARK_URL
CURL=(curl -sk --max-time 60)
ORG=$(t_ctl org create --name "e2e-verify-load-$$" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)

# Four files of 24 MiB (the upload cap is 25 MiB).
: >"$TMP/ids"
for i in 1 2 3 4; do
	head -c $((24 * 1024 * 1024)) /dev/urandom >"$TMP/ev"
	"${CURL[@]}" -X POST "$URL/api/v1/evidence" \
	    -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary @"$TMP/ev" | jq -r .id >>"$TMP/ids"
done
rm -f "$TMP/ev"
t_eq "four evidence files uploaded" 4 "$(grep -c '^[0-9a-f-]\{36\}$' "$TMP/ids")"
# Sign today's root, so that the answers carry inclusion proofs.
t_ctl ledger roots --before "$(date -u -d tomorrow +%F)" >/dev/null
R=$("${CURL[@]}" -X POST "$URL/api/v1/exports" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "$(jq -Rn '{evidence_ids: [inputs]}' <"$TMP/ids")")
EXP=$(jq -r .id <<<"$R")
TOK=$(jq -r .verification_token <<<"$R")
t_wait_sql 120 ready "SELECT state FROM exports WHERE id = '$EXP'"
t_eq "export becomes ready" ready \
    "$(t_sql "SELECT state FROM exports WHERE id = '$EXP'")"
echo "# artifact: $(t_sql "SELECT size FROM exports WHERE id = '$EXP'") bytes"

# The answer's shape, from an address the load does not use.
"${CURL[@]}" --interface 127.0.7.1 -o "$TMP/v.json" \
    "$URL/api/v1/public/verify/$TOK"
t_eq "verify: manifest_valid" true "$(jq -r .manifest_valid "$TMP/v.json")"
t_eq "verify: chain intact" intact "$(jq -r .chain.status "$TMP/v.json")"
t_eq "verify: the signed root proves the 4 files" 4 \
    "$(jq '[.ledger_roots[].proofs[]] | length' "$TMP/v.json")"

ledger() {
	t_sql "SELECT count(*) FROM ledger_events WHERE org_id = '$ORG'"
}
count() {
	t_sql "SELECT verification_count FROM exports WHERE id = '$EXP'"
}
L0=$(ledger)
C0=$(count)

python3 - "$URL" "$KEY" "$TOK" >"$TMP/load.json" <<'EOF'
import http.client, json, math, ssl, sys, threading, time

url, key, token = sys.argv[1:4]
host, port = url.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
AUTH = {"Authorization": "Bearer " + key}
VERIFY = "/api/v1/public/verify/" + token
N_IP, PER_IP = 20, 10


def conn(ip):
    c = http.client.HTTPSConnection(host, int(port), context=ctx,
                                    timeout=120, source_address=(ip, 0))
    c.connect()
    return c


def get(c, path, hdr=None):
    t = time.perf_counter()
    c.request("GET", path, headers=hdr or {})
    r = c.getresponse()
    r.read()
    return t, r.status, time.perf_counter() - t


def p99(xs):
    xs = sorted(xs)
    return round(xs[max(0, math.ceil(0.99 * len(xs)) - 1)] * 1000, 2) \
        if xs else None


# whoami every 25 ms from each of two addresses (nginx allows 50/s per
# IP), until stop is set; (start, status, seconds) into out.
def sampler(ips, stop, out):
    def run(ip):
        c = conn(ip)
        t0 = time.perf_counter()
        k = 0
        while not stop.is_set():
            k += 1
            out.append(get(c, "/api/v1/whoami", AUTH))
            time.sleep(max(0.0, t0 + k * 0.025 - time.perf_counter()))
        c.close()
    ts = [threading.Thread(target=run, args=(ip,)) for ip in ips]
    for t in ts:
        t.start()
    return ts


def preopen(net):
    cs = [None] * (N_IP * PER_IP)

    def one(i):
        cs[i] = conn("%s.%d" % (net, i % N_IP + 1))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(cs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return cs


# A phase: 200 verify requests from the 20 addresses net.1..20, request i
# fired at t0 + delay(i) on its own connection, while a sampler runs from
# ips; returns what whoami and verify did inside it.
def phase(net, ips, delay):
    cs = preopen(net)
    res = [None] * len(cs)
    whoami = []
    stop = threading.Event()
    ss = sampler(ips, stop, whoami)
    time.sleep(0.5)
    t0 = time.perf_counter()

    def fire(i):
        time.sleep(max(0.0, t0 + delay(i) - time.perf_counter()))
        res[i] = get(cs[i], VERIFY)
        cs[i].close()
    vs = [threading.Thread(target=fire, args=(i,)) for i in range(len(cs))]
    for t in vs:
        t.start()
    for t in vs:
        t.join()
    t1 = time.perf_counter()
    stop.set()
    for t in ss:
        t.join()
    inside = [d for (s, st, d) in whoami if t0 <= s <= t1]
    return {
        "seconds": round(t1 - t0, 3),
        "whoami_n": len(inside),
        "whoami_p99_ms": p99(inside),
        "whoami_non200": sum(1 for (_, st, _) in whoami if st != 200),
        "verify_200": sum(1 for r in res if r[1] == 200),
        "verify_other": sorted(set(r[1] for r in res if r[1] != 200)),
        "verify_p99_ms": p99([r[2] for r in res]),
    }


def idle(ips):
    out = []
    stop = threading.Event()
    ss = sampler(ips, stop, out)
    time.sleep(4)
    stop.set()
    for t in ss:
        t.join()
    return {"whoami_n": len(out),
            "whoami_p99_ms": p99([d for (_, _, d) in out]),
            "whoami_non200": sum(1 for (_, st, _) in out if st != 200)}


# Request j of IP i at j * 400 ms + i * 20 ms: one every 20 ms.
def paced(n):
    return (n // N_IP) * 0.4 + (n % N_IP) * 0.02


trials = []
for k, net in enumerate(["127.0.3", "127.0.8", "127.0.9"]):
    t = {"net": net,
         "idle": idle(["127.0.4.%d" % (2 * k + 1), "127.0.4.%d" % (2 * k + 2)])}
    t["paced"] = phase(net, ["127.0.5.%d" % (2 * k + 1),
                             "127.0.5.%d" % (2 * k + 2)], paced)
    i, p = t["idle"]["whoami_p99_ms"], t["paced"]["whoami_p99_ms"]
    t["bound_ms"] = round(max(2 * i, i + 20), 2)
    trials.append(t)
    if p <= t["bound_ms"] or p > 10 * t["bound_ms"]:
        break
out = {"trials": trials,
       "burst": phase("127.0.3", ["127.0.6.1", "127.0.6.2"], lambda n: 0.0)}
print(json.dumps(out))
EOF
jq -c '.trials[]' "$TMP/load.json" | sed 's/^/# trial: /'
jq -c '.burst' "$TMP/load.json" | sed 's/^/# burst: /'
L1=$(ledger)
C1=$(count)

j() { jq -r "$1" "$TMP/load.json"; }
# x1000 X: X times 1000, whole (ms -> us, s -> ms).
x1000() { awk -v x="$1" 'BEGIN { printf "%d", x * 1000 }'; }
T='.trials[-1]'
t_ge "idle: at least 200 whoami samples" 200 "$(j "$T.idle.whoami_n")"
t_ge "paced load: at least 200 whoami samples inside it" 200 \
    "$(j "$T.paced.whoami_n")"
echo "# trials run: $(j '.trials | length')"
t_le "whoami p99 under 200 paced verifications <= max(2 x idle, idle + 20 ms) (us)" \
    "$(x1000 "$(j "$T.bound_ms")")" "$(x1000 "$(j "$T.paced.whoami_p99_ms")")"
t_eq "whoami always answered 200" 0 \
    "$(j '[.trials[] | .idle, .paced | .whoami_non200] + [.burst.whoami_non200] | add')"
t_eq "paced: every verification answered 200" "[]" \
    "$(j '[.trials[].paced | select(.verify_200 != 200)] | tojson')"
t_eq "burst: all 200 simultaneous verifications answered 200" "200 []" \
    "$(j '"\(.burst.verify_200) \(.burst.verify_other | tojson)"')"
t_le "burst: 200 simultaneous verifications drain within 5 s (ms)" 5000 \
    "$(x1000 "$(j .burst.seconds)")"
ok=$(j '[.trials[].paced.verify_200] + [.burst.verify_200] | add')
echo "# 200 answers: $ok"
t_eq "the org's ledger did not grow under the load" "$L0" "$L1"
t_eq "verification_count grew by the number of 200 answers" \
    "$ok" "$((${C1:-0} - ${C0:-0}))"
t_eq "GET /api/v1/exports/{id} shows the count" "$C1" \
    "$("${CURL[@]}" "$URL/api/v1/exports/$EXP" \
    -H "Authorization: Bearer $KEY" | jq -r .verification_count)"

t_done
