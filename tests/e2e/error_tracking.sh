#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Error tracking end to end (docs/runbooks/error-tracking.md), through
# nginx and the tracker simulator (tools/sim/tracker_sim.py, SIM_PORT + 3):
# - 1,000 browser reports of one bug (other e-mail addresses, phone numbers
#   and ids in each), from 32 client addresses at once: one error group
#   with count exactly 1,000, one issue at the tracker and exactly three
#   threshold comments (10, 100, 1,000);
# - bulwark-fcgi children killed with SIGSEGV: a crash group (the master
#   spools, the next child records) counting each kill, and its own issue;
#   then a storm of 1,000 more, each of a child that served: counted
#   exactly, one issue, exactly the threshold comments, no spool drop;
# - a real 5xx (the LLM provider fails every attempt: POST /chat answers
#   502): an http_5xx group of the caller's org, and its issue;
# - a oneshot worker's failed periodic run (bulwark-ledger without its
#   key): a job_failure group, site periodic:ledger-roots, and its issue;
# - no planted e-mail address or phone number (Thai ones too) in any issue
#   or comment at the tracker, nor in any stored sample;
# - GET /api/v1/admin/errors[/{id}]: the owner sees the org's groups;
#   admin and member keys 403; another org's owner 404;
# - the tracker down: the filing job fails, retries, and files once it is
#   back, once; an answer lost after the issue was made: the retry finds
#   it, no second issue.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL DATABASE_URL BW_RUN BW_DEMO_KEY
t_stack || {
	t_fail "the stack's variables load" "stack_load $BW_RUN"
	t_done
}
URL=$BULWARK_URL
SIM=${BW_TRACKER_SIM_URL:-${TRACKER_SIM_URL:-}}
LLM=${BW_LLM_SIM_URL:-${LLM_SIM_URL:-}}
CURL=(curl -sk --max-time 20)
# Letters only: digits would be normalised away, and runs must not group
# with one another.
SFX=$(tr -dc 'a-z' </dev/urandom | head -c 12)
# Planted PII, each must never reach the tracker or a stored sample.
PII=(planted.alice@example.com bob.planted@example.org +66812345678
    0812345678 66812345678 0898765432 +14155550100)

issues() { curl -s "$SIM/_sim/issues"; }
# The issues at the tracker of group $1 (by the marker in their body).
issues_of() {
	issues | jq --arg m "bulwark-error-group: $1 -->" \
	    '[.issues[] | select(.body | contains($m))]'
}
gid() { t_sql "SELECT id FROM error_groups WHERE $1"; }
# wait_sql SECS WANT SQL: t_wait_sql by the wall clock (psql is slow on a
# busy machine: 10 polls a second would stretch SECS many times over).
wait_sql() {
	local end=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$end" ]; do
		[ "$(t_sql "$3" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.3
	done
	return 1
}

# --- 1,000 identical reports -------------------------------------------------
MSG="TypeError: e2e $SFX cannot read property of undefined"
t_sql "SELECT count(*) FROM error_groups" >/dev/null ||
    t_fail "error_groups exists (sql/0028)" "no table"
mkcfg() { # mkcfg WORKER N: N reports from 127.0.3.(WORKER+1)
	local w=$1 n=$2 i k
	for ((i = 0; i < n; i++)); do
		k=$((w * 100 + i))
		[ "$i" -gt 0 ] && printf 'next\n'
		printf 'insecure\nmax-time = 30\nwrite-out = "%%{http_code}\\n"\n'
		printf 'output = "/dev/null"\ninterface = "127.0.3.%d"\n' $((w + 1))
		printf 'header = "Content-Type: application/json"\n'
		printf 'data = "{\\"message\\":\\"%s for user%d.planted@example.com (+6681%07d) id %d order 0812345678\\",' \
		    "$MSG" "$k" "$k" "$k"
		printf '\\"source\\":\\"https://app.example/e2e-%s.js?user=planted.alice@example.com\\",\\"line\\":12,\\"column\\":7,' "$SFX"
		printf '\\"stack\\":\\"at f (app.js:12:7) bob.planted@example.org +14155550100\\",'
		printf '\\"url\\":\\"https://app.example/p?phone=0898765432\\",\\"user_agent\\":\\"e2e\\"}"\n'
		printf 'url = "%s/api/v1/client-errors"\n' "$URL"
	done
}
for w in $(seq 0 31); do
	mkcfg "$w" $((w < 8 ? 32 : 31)) >"$TMP/w$w.cfg"
done
t0=$(date +%s%N)
for w in $(seq 0 31); do
	curl -s -K "$TMP/w$w.cfg" >"$TMP/w$w.codes" 2>/dev/null &
done
wait
ms=$((($(date +%s%N) - t0) / 1000000))
cat "$TMP"/w*.codes >"$TMP/codes"
echo "# 1,000 reports from 32 addresses in $ms ms: $(sort "$TMP/codes" | uniq -c | tr '\n' ' ')"
t_eq "1,000 browser reports answered 202" "1000" "$(grep -c '^202$' "$TMP/codes")"
t_eq "  one error group of kind client for them" 1 \
    "$(t_sql "SELECT count(*) FROM error_groups WHERE site LIKE 'client:%e2e-$SFX.js%'")"
G1=$(gid "site LIKE 'client:%e2e-$SFX.js%'")
t_eq "  its count is exactly 1,000, org-less, code TypeError" "1000 t TypeError" \
    "$(t_sql "SELECT occurrence_count, org_id IS NULL, code FROM error_groups WHERE id = '$G1'" | tr '|' ' ')"
t_eq "  the site has no query string" "client:https://app.example/e2e-$SFX.js:12" \
    "$(t_sql "SELECT site FROM error_groups WHERE id = '$G1'")"
t_eq "  1,000 occurrences in its hours" 1000 \
    "$(t_sql "SELECT sum(n) FROM error_group_hours WHERE group_id = '$G1'")"
if wait_sql 60 "t|1000" "SELECT issue_number IS NOT NULL, last_comment_threshold FROM error_groups WHERE id = '$G1'"; then
	t_ok "  bulwark-errtrack filed its issue and its comments"
else
	t_fail "  bulwark-errtrack filed its issue and its comments" \
	    "$(t_sql "SELECT issue_number, last_comment_threshold, filing_failures FROM error_groups WHERE id = '$G1'") $(t_sql "SELECT job_key, state, attempts, last_error FROM jobs WHERE queue = 'errtrack'" | tail -n 5 | tr '\n' ' ')"
fi
sleep 1 # a duplicate, were there one, has its chance to arrive
issues_of "$G1" >"$TMP/g1.json"
t_eq "  exactly one issue at the tracker for the group" 1 "$(jq length "$TMP/g1.json")"
t_eq "  the issue carries the labels and the group's site" \
    "bulwark,error true" \
    "$(jq -r --arg s "e2e-$SFX.js" '.[0] | "\([.labels[].name] | join(",")) \(.title | contains($s))"' "$TMP/g1.json")"
t_eq "  exactly three comments, at 10, 100 and 1,000" "3 10 100 1000" \
    "$(jq -r '.[0].comment_list | "\(length) \([.[].body | capture("passed (?<n>[0-9]+) occ").n] | join(" "))"' "$TMP/g1.json")"
t_match "  the issue is a troubleshooting prompt with the sample's ids" \
    '^true true true true$' \
    "$(jq -r '.[0].body | "\(contains("## What to look at")) \(contains("Troubleshooting prompt")) \(contains("request id: `")) \(contains("error-tracking.md"))"' "$TMP/g1.json")"
t_eq "  the issue's url is stored with the group" \
    "$(jq -r '.[0].html_url // "no issue"' "$TMP/g1.json")" \
    "$(t_sql "SELECT coalesce(issue_url, 'unset') FROM error_groups WHERE id = '$G1'")"

# --- crashes ---------------------------------------------------------------------
MASTER=$(cat "$BW_RUN/pid/bulwark-fcgi.pid")
before=$(t_sql "SELECT coalesce(sum(occurrence_count), 0) FROM error_groups WHERE kind = 'crash' AND code = 'SIGSEGV' AND org_id IS NULL")
mapfile -t KIDS < <(pgrep -x -P "$MASTER" bulwark-fcgi | head -n 2)
t_eq "two api children to crash" 2 "${#KIDS[@]}"
for k in "${KIDS[@]}"; do
	kill -SEGV "$k"
	sleep 0.5
done
if wait_sql 30 "$((before + 2))" "SELECT coalesce(sum(occurrence_count), 0) FROM error_groups WHERE kind = 'crash' AND code = 'SIGSEGV' AND org_id IS NULL"; then
	t_ok "2 children killed by SIGSEGV: the crash group counts 2 more ($before -> $((before + 2)))"
else
	t_fail "2 children killed by SIGSEGV: the crash group counts 2 more" \
	    "$(t_sql "SELECT kind, code, site, occurrence_count FROM error_groups WHERE kind = 'crash'" | tr '\n' ' ')"
fi
G2=$(gid "kind = 'crash' AND code = 'SIGSEGV' AND org_id IS NULL AND site = 'fcgi:pool api'")
t_match "  one crash group, site fcgi:pool api" '^[0-9a-f-]{36}$' "$G2"
wait_sql 30 t "SELECT issue_number IS NOT NULL FROM error_groups WHERE id = '$G2'" ||
    true
t_eq "  a new kind, a second issue: exactly one for the crash group" 1 \
    "$(issues_of "$G2" | jq length)"
t_eq "  the api pool is whole again" 200 \
    "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/health")"

# A storm of crashes: 1,000 SIGSEGVs of api children, each one a child that
# served at least one request first (its access line is in the log) and
# is idle again (blocked in epoll_pwait, /proc/PID/syscall: between
# requests, holding no record taken from the crash spool) - a working
# child's crash, as a poisoned request makes. Rounds: 8 requests to
# /health at once, then every served idle child is killed. The master
# replaces a child that served at once (fcgi/master.c: only deaths before
# serving back off), so the storm is bounded by the work of each crash,
# not by minutes of backoff; the crash group counts every one exactly,
# still one issue, the threshold comments its count crossed and no other,
# no spool drop, no core file, the same master, the pool whole and
# serving.
STORM=1000
# The storm's cap: each crash costs a fork, a PostgreSQL connection and the
# crash's recording: about 100 ms a crash measured at a load average of
# 17-20 on 2 cores; the old master's backoff stretches it to minutes.
STORM_S=150
NAPI=$(sed -n 's/^fcgi_children *= *//p' "$BW_RUN/fcgi.conf" 2>/dev/null)
NAPI=${NAPI:-4}
CRASHES="SELECT coalesce(sum(occurrence_count), 0) FROM error_groups WHERE kind = 'crash'"
drop0=$(t_metric bulwark_errtrack_spool_dropped_total)
rfail0=$(t_metric 'bulwark_errtrack_record_failures_total{kind="crash"}')
all0=$(t_sql "$CRASHES")
c0=$(t_sql "SELECT occurrence_count FROM error_groups WHERE id = '$G2'")
# The storm's driver, one process (a fork per round would cost more than
# the round): rounds of 8 concurrent GET /health on keep-alive connections
# to nginx (loopback), then SIGSEGV to every api child (by name, a child of
# the master) whose access line is in the log and which waits in
# epoll_pwait; no request is in flight while it kills. Prints "KILLED
# ROUNDS PASSED_OVER MS NON200 MS_IN_REQUESTS".
storm() {
	python3 - "$MASTER" "$URL" "$1" "$2" "$BW_RUN"/log/bulwark-fcgi*.log <<'EOF'
import http.client, os, re, signal, ssl, sys, time
from urllib.parse import urlsplit

master, url, want, secs = int(sys.argv[1]), urlsplit(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
logs = {f: 0 for f in sys.argv[5:]}
line_re = re.compile(rb'"msg":"request","service":"[^"]*","pid":([0-9]+),')
ctx = ssl._create_unverified_context()
served, bad = set(), [0]

def conn():
    c = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    kw = {"context": ctx} if url.scheme == "https" else {}
    return c(url.hostname, url.port, timeout=20, **kw)

N = 8
conns = [conn() for _ in range(N)]
path = url.path.rstrip("/") + "/health"

def requests():  # N at once: all sent, then all read
    for i, c in enumerate(conns):
        try:
            c.request("GET", path)
        except Exception:
            c.close()
            conns[i] = conn()
            conns[i].request("GET", path)
    for i, c in enumerate(conns):
        try:
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad[0] += 1
        except Exception:
            bad[0] += 1
            c.close()
            conns[i] = conn()

def read_logs():
    for f, off in logs.items():
        try:
            with open(f, "rb") as fh:
                fh.seek(off)
                data = fh.read()
        except OSError:
            continue
        end = data.rfind(b"\n") + 1  # a half-written line waits
        for m in line_re.finditer(data[:end]):
            served.add(int(m.group(1)))
        logs[f] = off + end

def kids():
    with open(f"/proc/{master}/task/{master}/children") as fh:
        pids = [int(p) for p in fh.read().split()]
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/comm") as fh:
                if fh.read().strip() == "bulwark-fcgi":
                    out.append(p)
        except OSError:
            pass
    return out

def idle(p):  # epoll_pwait (281) or epoll_pwait2 (441), x86_64
    try:
        with open(f"/proc/{p}/syscall") as fh:
            return fh.read().split(" ", 1)[0] in ("281", "441")
    except OSError:
        return False

read_logs()
served &= set(kids())  # pids of the dead are not the living's
killed = rounds = passed = 0
t_req = 0.0
t0 = time.monotonic()
while killed < want and time.monotonic() - t0 < secs:
    rounds += 1
    t1 = time.monotonic()
    requests()
    t2 = time.monotonic()
    read_logs()
    # A child that served may still be recording after its answer: a
    # little while for it to be idle again, then it is passed over.
    todo = [p for p in kids() if p in served]
    for _ in range(20):
        busy = []
        for p in todo:
            if not idle(p):
                busy.append(p)
                continue
            try:
                os.kill(p, signal.SIGSEGV)
            except OSError:
                continue
            served.discard(p)
            killed += 1
            if killed >= want:
                break
        todo = busy
        if not todo or killed >= want:
            break
        time.sleep(0.002)
    passed += len(todo)
    t_req += t2 - t1
# flush: os._exit() drops what stdout's buffer still holds when stdout is a
# pipe (unseen where PYTHONUNBUFFERED=1 is in the environment).
print(killed, rounds, passed, int((time.monotonic() - t0) * 1000), bad[0],
    int(t_req * 1000), flush=True)
os._exit(0)
EOF
}
touch "$TMP/storm.start"
read -r killed rounds skipped storm_ms non200 req_ms < <(storm "$STORM" "$STORM_S")
echo "# crash storm: $killed kills in $storm_ms ms ($req_ms ms in requests), $rounds rounds, $skipped busy children passed over, $non200 of $((rounds * 8)) GET /health not 200; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
t_eq "crash storm: $STORM api children killed with SIGSEGV, each idle after serving (${storm_ms} ms)" \
    "$STORM" "$killed"
t_le "  within $STORM_S s (the master does not back off for children that served)" \
    $((STORM_S * 1000)) "$storm_ms"
# A record still in the spool is taken by the next child that starts or
# serves: a request now and then until the count is in.
want=$((c0 + killed))
got=
for _ in $(seq 1 100); do
	got=$(t_sql "SELECT occurrence_count FROM error_groups WHERE id = '$G2'")
	[ "$got" = "$want" ] && break
	"${CURL[@]}" -o /dev/null "$URL/health"
	sleep 0.3
done
sleep 1 # a record counted twice, were there one, has its chance to land
t_eq "  the crash group counts every one exactly: $c0 + $killed" "$want" \
    "$(t_sql "SELECT occurrence_count FROM error_groups WHERE id = '$G2'")"
t_eq "  and no crash landed in another group" "$((all0 + killed))" \
    "$(t_sql "$CRASHES")"
t_eq "  one crash group of the api pool's SIGSEGV, idle, no core" \
    "1 bulwark-fcgi child died on a signal (signal SIGSEGV, core dumped: no) while idle" \
    "$(t_sql "SELECT count(*) FROM error_groups WHERE kind = 'crash' AND code = 'SIGSEGV' AND site = 'fcgi:pool api'") $(t_sql "SELECT sample_message FROM error_groups WHERE id = '$G2'")"
t_eq "  its hours sum to its count" "$want" \
    "$(t_sql "SELECT sum(n) FROM error_group_hours WHERE group_id = '$G2'")"
t_eq "  the crash spool dropped nothing, every record was written" \
    "$drop0 $rfail0" \
    "$(t_metric bulwark_errtrack_spool_dropped_total) $(t_metric 'bulwark_errtrack_record_failures_total{kind="crash"}')"
# The comments: one per threshold (10, 100, 1,000) the count reached, the
# count growing by one per crash (lib/errtrack/group.c).
final=$want
expect=
for th in 10 100 1000; do
	[ "$final" -ge "$th" ] && expect="$expect $th"
done
wait_sql 60 "$(echo "$expect" | awk '{ print $NF }')" \
    "SELECT coalesce(last_comment_threshold, 0) FROM error_groups WHERE id = '$G2'" || true
sleep 1 # a duplicate, were there one, has its chance to arrive
t_eq "  still exactly one issue for the group, its comments at$expect" \
    "1$expect" \
    "$(issues_of "$G2" | jq -r '"\(length) \([.[0].comment_list[].body | capture("passed (?<n>[0-9]+) occ").n] | join(" "))"')"
t_eq "  no core file next to the master" "" \
    "$(find "/proc/$MASTER/cwd/" "$BW_RUN" -maxdepth 1 -name 'core*' -newer "$TMP/storm.start" 2>/dev/null)"
t_eq "  the same master, the api pool whole again ($NAPI children)" \
    "$MASTER $NAPI" \
    "$(cat "$BW_RUN/pid/bulwark-fcgi.pid") $(sleep 1; pgrep -x -P "$MASTER" bulwark-fcgi | wc -l)"
t_eq "  and it serves" 200 \
    "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/health")"

# --- a real 5xx, and the admin routes ---------------------------------------------
ORG=$(t_ctl org create --name "e2e-errtrack-$SFX" | jq -r .id)
declare -A K
for role in owner admin member; do
	K[$role]=$(t_ctl key create --org "$ORG" --role $role | jq -r .key)
done
# The per-IP chat log is shared by every org's turns from 127.0.0.1: the
# default 5 in 10 s would refuse this turn (429) right after another chat
# test.
t_ctl ratelimit set --org "$ORG" --route chat --scope ip --limit 100000 \
    --window-s 10 >/dev/null
curl -s -X POST "$LLM/_sim/script" \
    -d "{\"org\":\"$ORG\",\"statuses\":[503,502,500,503]}" >/dev/null
c=$("${CURL[@]}" --max-time 60 -o "$TMP/chat" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer ${K[member]}" -H 'Content-Type: application/json' \
    -d "{\"channel\":\"web\",\"user_id\":\"u-$SFX\",\"message\":\"hi planted.alice@example.com\"}" \
    "$URL/api/v1/chat")
curl -s -X POST "$LLM/_sim/script" -d "{\"org\":\"$ORG\"}" >/dev/null
t_eq "the LLM fails every attempt: POST /chat answers 502" 502 "$c"
wait_sql 10 1 "SELECT count(*) FROM error_groups WHERE org_id = '$ORG' AND kind = 'http_5xx'" ||
    true
G3=$(gid "org_id = '$ORG' AND kind = 'http_5xx'")
t_eq "  an http_5xx group of the caller's org: code, site, the request id" \
    "UPSTREAM_UNAVAILABLE route:chat 1 t" \
    "$(t_sql "SELECT code, site, occurrence_count, sample_request_id IS NOT NULL FROM error_groups WHERE id = '$G3'" | tr '|' ' ')"
wait_sql 30 t "SELECT issue_number IS NOT NULL FROM error_groups WHERE id = '$G3'" ||
    true
t_eq "  exactly one issue for it" 1 "$(issues_of "$G3" | jq length)"

admin() { "${CURL[@]}" -o "$TMP/adm" -w '%{http_code}' -H "Authorization: Bearer $1" "$URL$2"; }
t_eq "GET /admin/errors as the owner: 200, the org's group, only the org's" \
    "200 true true" \
    "$(admin "${K[owner]}" /api/v1/admin/errors) $(jq --arg g "$G3" '[.groups[].id] | index($g) != null' "$TMP/adm") $(jq --arg o "$ORG" 'all(.groups[]; .org_id == $o)' "$TMP/adm")"
t_eq "GET /admin/errors/{id} as the owner: 200, kind http_5xx, the sample" \
    "200 http_5xx true" \
    "$(admin "${K[owner]}" "/api/v1/admin/errors/$G3") $(jq -r '"\(.kind) \(.sample.message | type == "string")"' "$TMP/adm")"
for role in admin member; do
	t_eq "  $role key: 403 on the list and on the group" "403 403 FORBIDDEN" \
	    "$(admin "${K[$role]}" /api/v1/admin/errors) $(admin "${K[$role]}" "/api/v1/admin/errors/$G3") $(jq -r .error.error_code "$TMP/adm")"
done
t_eq "  another org's owner: 404 for the group" "404 NOT_FOUND" \
    "$(admin "$BW_DEMO_KEY" "/api/v1/admin/errors/$G3") $(jq -r .error.error_code "$TMP/adm")"
t_eq "  an org-less group is nobody's: 404" "404" \
    "$(admin "${K[owner]}" "/api/v1/admin/errors/$G1")"

# --- validation and limits ----------------------------------------------------------
post() { "${CURL[@]}" -o "$TMP/p" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --interface 127.0.2.9 "$@" "$URL/api/v1/client-errors"; }
t_eq "a report without message: 400 naming it" "400 message" \
    "$(post -d '{"line":1}') $(jq -r '.error.fields[0].field' "$TMP/p")"
t_eq "an unknown field: 400" 400 "$(post -d '{"message":"x","password":"p"}')"
head -c 20000 /dev/zero | tr '\0' a >"$TMP/big"
t_eq "a 20 KB body: 413 (nginx's 16k)" 413 \
    "$(post --data-binary "{\"message\":\"$(cat "$TMP/big")\"}")"
t_eq "a bad key: 401" 401 "$(post -H 'Authorization: Bearer bwk_nope' -d '{"message":"x"}')"

# --- no PII anywhere ----------------------------------------------------------------
issues >"$TMP/all.json"
t_sql "SELECT sample_message || ' ' || site || ' ' || code FROM error_groups" >"$TMP/samples"
leaks=
[ "$(jq '.issues | length' "$TMP/all.json" 2>/dev/null)" -ge 3 ] 2>/dev/null ||
    leaks="fewer than 3 issues to look at"
for p in "${PII[@]}"; do
	grep -qF -- "$p" "$TMP/all.json" && leaks="$leaks tracker:$p"
	grep -qF -- "$p" "$TMP/samples" && leaks="$leaks samples:$p"
done
t_eq "no planted e-mail or phone in $(jq '.issues | length' "$TMP/all.json") issues, their comments or any stored sample" "" "$leaks"
t_match "  yet the sample keeps the bug's text" "cannot read property" \
    "$(t_sql "SELECT sample_message FROM error_groups WHERE id = '$G1'")"

# --- metrics ---------------------------------------------------------------------------
"${CURL[@]}" --interface 127.0.0.1 "$URL/metrics" >"$TMP/metrics"
t_match "/metrics: occurrences, groups and issues filed by kind" \
    '^[0-9]+ [0-9]+ [0-9]+$' \
    "$(awk '/^bulwark_error_occurrences_total\{kind="client"\}/ { a = $2 }
	/^bulwark_error_groups_total\{kind="crash"\}/ { b = $2 }
	/^bulwark_errtrack_issues_filed_total\{kind="http_5xx"\}/ { c = $2 }
	END { print a, b, c }' "$TMP/metrics")"

# --- a oneshot's failed run ---------------------------------------------------------
# A periodic run that fails is a worker job failure too: bulwark-ledger
# (job ledger-roots, the UTC day's slot) with a signing key file that is
# not there fails its run twice, exit 1 each; both land in one group of
# kind job_failure, site periodic:ledger-roots, code RUN_FAILED, with one
# issue. The real key then makes the day's slot ok again.
grep -v '^ledger_key_file' "$BW_CONFIG" >"$TMP/ledger.conf"
echo "ledger_key_file = $TMP/no-such.key" >>"$TMP/ledger.conf"
GW="kind = 'job_failure' AND site = 'periodic:ledger-roots'"
# Each group's count before (an earlier failed run with another reason,
# e.g. integration/ledger_keys.sh's wrong key, is a group of its own).
declare -A W0=()
while IFS='|' read -r id c; do
	[ -n "$id" ] && W0[$id]=$c
done < <(t_sql "SELECT id, occurrence_count FROM error_groups WHERE $GW")
# The stack's ledger-loop ran the day's slot: it is open again for ours.
t_sql "UPDATE periodic_runs SET state = 'failed' WHERE job = 'ledger-roots' AND slot > now() - interval '1 day'" >/dev/null
"$BW_BUILD/bulwark-ledger" -c "$TMP/ledger.conf" >>"$TMP/ledger.log" 2>&1
rc1=$?
"$BW_BUILD/bulwark-ledger" -c "$TMP/ledger.conf" >>"$TMP/ledger.log" 2>&1
rc2=$?
t_eq "bulwark-ledger without its key: both runs fail, exit 1" "1 1 failed" \
    "$rc1 $rc2 $(t_sql "SELECT state FROM periodic_runs WHERE job = 'ledger-roots' ORDER BY slot DESC LIMIT 1")"
changed=
G6=
while IFS='|' read -r id code c msg; do
	[ -n "$id" ] && [ "${W0[$id]:-0}" != "$c" ] || continue
	changed+="$code +$((c - ${W0[$id]:-0})) $msg;"
	G6=$id
done < <(t_sql "SELECT id, code, occurrence_count, sample_message LIKE 'periodic run of ledger-roots failed: %' FROM error_groups WHERE $GW")
t_eq "  one group for them: job_failure, periodic:ledger-roots, RUN_FAILED, +2" \
    "RUN_FAILED +2 t;" "$changed"
wait_sql 30 t "SELECT issue_number IS NOT NULL FROM error_groups WHERE id = '$G6'" ||
    true
t_eq "  exactly one issue for it" 1 "$(issues_of "$G6" | jq length)"
"$BW_BUILD/bulwark-ledger" -c "$BW_CONFIG" >>"$TMP/ledger.log" 2>&1
t_eq "  with its key again: exit 0, the day's slot ok" "0 ok" \
    "$? $(t_sql "SELECT state FROM periodic_runs WHERE job = 'ledger-roots' ORDER BY slot DESC LIMIT 1")"

# --- the tracker down, then back; an answer lost ------------------------------------
stack_stop_one tracker-sim >/dev/null 2>&1
post -d "{\"message\":\"RangeError: e2e down $SFX\"}" >/dev/null
G4=$(gid "sample_message LIKE 'RangeError: e2e down $SFX%'")
if wait_sql 30 t "SELECT attempts >= 1 AND state = 'queued' AND last_error LIKE 'tracker issue: connect%' FROM jobs WHERE queue = 'errtrack' AND job_key = 'errtrack:file:$G4'"; then
	t_ok "the tracker down: the filing job failed its attempt and waits to retry"
else
	t_fail "the tracker down: the filing job failed its attempt and waits to retry" \
	    "$(t_sql "SELECT state, attempts, last_error FROM jobs WHERE job_key = 'errtrack:file:$G4'")"
fi
stack_start_one tracker-sim >/dev/null 2>&1
if wait_sql 60 t "SELECT issue_number IS NOT NULL FROM error_groups WHERE id = '$G4'"; then
	t_ok "  back up: the retry filed it"
else
	t_fail "  back up: the retry filed it" \
	    "$(t_sql "SELECT state, attempts, last_error FROM jobs WHERE job_key = 'errtrack:file:$G4'")"
fi
t_eq "  exactly one issue for it" 1 "$(issues_of "$G4" | jq length)"
t_match "  its failed attempt is counted" '^[1-9][0-9]*$' \
    "$(t_sql "SELECT filing_failures FROM error_groups WHERE id = '$G4'")"

curl -s -X POST "$SIM/_sim/faults" -d '{"script":["lost"]}' >/dev/null
post -d "{\"message\":\"SyntaxError: e2e lost $SFX\"}" >/dev/null
G5=$(gid "sample_message LIKE 'SyntaxError: e2e lost $SFX%'")
wait_sql 60 t "SELECT issue_number IS NOT NULL FROM error_groups WHERE id = '$G5'" ||
    true
t_eq "the tracker made the issue but the answer was lost: one issue, found by the retry" \
    "1 $(t_sql "SELECT issue_number FROM error_groups WHERE id = '$G5'")" \
    "$(issues_of "$G5" | jq -r '"\(length) \(.[0].number)"')"
t_done
