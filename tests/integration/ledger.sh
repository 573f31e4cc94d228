#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Evidence ledger and uploads against the real stack, counted: 8 concurrent
# uploaders x 200 uploads of one org get ledger_seq 1..1600 with no gap and
# no fork, the chain verifies and every row has its file with its hash;
# the canonical event encoding recomputes in Python; a tampered payload
# hash is reported broken at that seq; daily roots are signed once (two
# concurrent runs), their C2SP checkpoint verifies with the published vkey
# and its root equals an independent RFC 6962 computation; a broken chain
# is never signed; uploads: 400 empty, 413 over 25 MiB (nginx), sha256 and
# stored file match, Idempotency-Key replays; a child killed mid-upload
# leaves no row, and the orphan temp file is swept.
. "${BW_TOP:?}/tests/lib/common.sh"

# Its roots are signed for today: events and day on one side of midnight.
t_clear_of_midnight 120

CFG=$BW_CONFIG
STORAGE=$(sed -n 's/^storage_dir *= *//p' "$CFG")
TOMORROW=$(date -u -d tomorrow +%F)
TODAY=$(date -u +%F)

t_on_exit t_kill_jobs

# new_org NAME: sets ORG and KEY (owner), with a high evidence limit so
# that the counted run is not rate limited.
new_org() {
	ORG=$(bulwarkctl -c "$CFG" org create --name "$1" | jq -r .id)
	KEY=$(bulwarkctl -c "$CFG" key create --org "$ORG" --role owner |
	    jq -r .key)
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
	    window_s) VALUES ('$ORG', 'evidence', 'org', 1000000, 86400)" \
	    >/dev/null 2>&1 || true
}

new_org "ledger-test-$$"
ORG1=$ORG KEY1=$KEY

# --- 8 concurrent uploaders x 200 uploads -------------------------------
for i in $(seq 1 1600); do
	printf 'evidence %d %s\n' "$i" "$RANDOM$RANDOM"
done >"$TMP/bodies"
t_freq --socket "$BW_FCGI_SOCKET" --method POST --path /api/v1/evidence \
    --header "Authorization: Bearer $KEY1" \
    --header "Content-Type: text/plain" \
    --header "X-Evidence-Name: note.txt" \
    --bodies-file "$TMP/bodies" --count 1600 --concurrency 8 \
    --timeout 60 >"$TMP/up.out"
t_eq "1600 concurrent uploads answered 201" 1600 \
    "$(awk '$2 == 201' "$TMP/up.out" | wc -l)"
t_eq "answers carry 1600 distinct ledger_seq 1..1600" "1600 1 1600" \
    "$(cut -d' ' -f3- "$TMP/up.out" | jq -r '.ledger_seq // empty' |
	sort -n | uniq | awk 'NR==1{min=$1} {n++; max=$1}
	    END {print n, min, max}')"
t_eq "ledger rows: count = max(seq) = 1600, min 1" "1600|1|1600" \
    "$(t_sql "SELECT count(*), min(seq), max(seq) FROM ledger_events
	WHERE org_id = '$ORG1'")"
t_eq "no fork: 1600 distinct prev_hash, each the hash of seq-1" "1600|1599" \
    "$(t_sql "SELECT count(DISTINCT e.prev_hash), count(p.seq)
	FROM ledger_events e LEFT JOIN ledger_events p ON p.org_id = e.org_id
	AND p.seq = e.seq - 1 AND p.hash = e.prev_hash
	WHERE e.org_id = '$ORG1'")"
t_eq "seq 1 links to the zero hash" "$(printf '0%.0s' $(seq 64))" \
    "$(t_sql "SELECT encode(prev_hash, 'hex') FROM ledger_events
	WHERE org_id = '$ORG1' AND seq = 1")"
t_eq "head row agrees (seq 1600, hash of seq 1600)" "1600|t" \
    "$(t_sql "SELECT h.seq, h.hash = e.hash FROM ledger_heads h JOIN
	ledger_events e ON e.org_id = h.org_id AND e.seq = h.seq
	WHERE h.org_id = '$ORG1'")"
t_eq "1600 evidence rows, one per ledger event" "1600|1600" \
    "$(t_sql "SELECT count(*), count(DISTINCT ledger_seq) FROM evidence
	WHERE org_id = '$ORG1'")"
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1")
rc=$?
t_eq "ledger verify: chain intact over 1..1600 (exit 0)" "0 intact 1 1600" \
    "$rc $(jq -r '.chain | "\(.status) \(.first_seq) \(.last_seq)"' \
	<<<"$out")"

# Every row has its file, and the file has the row's hash.
t_sql "SELECT storage_path || ' ' || encode(sha256, 'hex') FROM evidence
    WHERE org_id = '$ORG1'" >"$TMP/rows"
bad=0
while read -r path sum; do
	[ "$(sha256sum <"$STORAGE/$path" 2>/dev/null | cut -d' ' -f1)" = \
	    "$sum" ] || bad=$((bad + 1))
done <"$TMP/rows"
t_eq "every evidence row has its file with that sha256" 0 "$bad"

# The canonical encoding of docs/verification.md recomputes every hash.
t_sql "SELECT org_id, seq, type, encode(payload_hash, 'hex'),
    encode(prev_hash, 'hex'), encode(hash, 'hex'),
    (extract(epoch FROM created_at) * 1000000)::bigint
    FROM ledger_events WHERE org_id = '$ORG1' ORDER BY seq" |
    python3 -c '
import hashlib, sys
bad = 0
for line in sys.stdin:
    org, seq, typ, pl, pv, h, t = line.rstrip("\n").split("|")
    enc = ("bulwark-ledger-v1\norg %s\nseq %s\ntype %s\npayload %s\n"
           "prev %s\ntime %s\n" % (org, seq, typ, pl, pv, t)).encode()
    bad += hashlib.sha256(enc).hexdigest() != h
print(bad)' >"$TMP/canon"
t_eq "documented canonical encoding recomputes all 1600 hashes" 0 \
    "$(cat "$TMP/canon")"

# --- daily roots ----------------------------------------------------------
# Today's events get a root now (--before tomorrow); two runs at once.
bulwarkctl -c "$CFG" ledger roots --before "$TOMORROW" >"$TMP/r1" 2>&1 &
p1=$!
bulwarkctl -c "$CFG" ledger roots --before "$TOMORROW" >"$TMP/r2" 2>&1 &
p2=$!
wait $p1
rc1=$?
wait $p2
rc2=$?
t_eq "two concurrent root runs exit 0" "0 0" "$rc1 $rc2"
t_eq "exactly one root row for (org, today), 1600 events, seqs 1..1600" \
    "1|1600|1|1600" \
    "$(t_sql "SELECT count(*), max(event_count), min(first_seq),
	max(last_seq) FROM ledger_roots WHERE org_id = '$ORG1'
	AND day = '$TODAY'")"
t_eq "a third run signs nothing for this org" 0 \
    "$(bulwarkctl -c "$CFG" ledger roots --before "$TOMORROW" >/dev/null;
	t_sql "SELECT count(*) - 1 FROM ledger_roots
	WHERE org_id = '$ORG1'")"

curl -sk "$BULWARK_URL/api/v1/public/ledger-keys" -o "$TMP/keys" \
    -w '%{http_code}' >"$TMP/keys.code"
t_eq "GET /api/v1/public/ledger-keys without login: 200" 200 \
    "$(cat "$TMP/keys.code")"
t_eq "published key id is the root's key_id" \
    "$(t_sql "SELECT key_id FROM ledger_roots WHERE org_id = '$ORG1'")" \
    "$(jq -r '.keys[0].key_id' "$TMP/keys")"

# Independent check in Python: vkey key id, the note signature, the origin,
# and the RFC 6962 root over the day's event hashes.
t_sql "SELECT checkpoint FROM ledger_roots WHERE org_id = '$ORG1'" \
    >"$TMP/checkpoint"
t_sql "SELECT encode(hash, 'hex') FROM ledger_events WHERE
    org_id = '$ORG1' ORDER BY seq" >"$TMP/hashes"
res=$(python3 - "$TMP/keys" "$TMP/checkpoint" "$TMP/hashes" "$ORG1" <<'EOF'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey)
keys, cp, hashes, org = sys.argv[1:5]
vkey = json.load(open(keys))["keys"][0]["vkey"]
name, kid, b64 = vkey.split("+", 2)
raw = base64.b64decode(b64)
assert raw[0] == 1 and len(raw) == 33, "vkey type"
pub = raw[1:]
want_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
assert want_id.hex() == kid, "key id"
note = open(cp, "rb").read()
if note.endswith(b"\n\n"):   # psql adds one newline
    note = note[:-1]
text, _, sigs = note.partition(b"\n\n")
text += b"\n"
ok = False
for line in sigs.decode().splitlines():
    assert line.startswith("\u2014 "), "sig line"
    _, kname, s = line.split(" ")
    s = base64.b64decode(s)
    if kname == name and s[:4] == want_id:
        Ed25519PublicKey.from_public_bytes(pub).verify(s[4:], text)
        ok = True
assert ok, "no signature by the published key"
origin, size, root = text.decode().rstrip("\n").split("\n")[:3]
assert origin == "%s/ledger/%s" % (name, org), "origin " + origin
hs = [bytes.fromhex(l.strip()) for l in open(hashes) if l.strip()]
def mth(d):
    if len(d) == 1:
        return hashlib.sha256(b"\0" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\1" + mth(d[:k]) + mth(d[k:])).digest()
assert int(size) == len(hs), "size"
assert base64.b64decode(root) == mth(hs), "root"
print("valid")
EOF
)
t_eq "checkpoint: vkey id, Ed25519 signature, origin and RFC 6962 root" \
    valid "$res"
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1")
t_eq "ledger verify checks the root and 1600 inclusion proofs" "1 true" \
    "$(jq -r '.roots | "\(.checked) \(.valid)"' <<<"$out")"
t_eq "bulwark-ledger worker: two runs at once both exit 0" "0 0" \
    "$(bulwark-ledger -c "$CFG" >/dev/null 2>&1 & a=$!
	bulwark-ledger -c "$CFG" >/dev/null 2>&1; b=$?; wait $a; echo "$? $b")"

# --- tampering ------------------------------------------------------------
t_sql "UPDATE ledger_events SET payload_hash = decode(repeat('ab', 32),
    'hex') WHERE org_id = '$ORG1' AND seq = 777" >/dev/null
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1")
rc=$?
t_eq "tampered payload hash: verify exits 1, broken at seq 777" \
    "1 broken 777 hash_mismatch" \
    "$rc $(jq -r '.chain | "\(.status) \(.broken_at) \(.reason)"' \
	<<<"$out")"
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1" --from 1 --to 776)
t_eq "the range before the tampered seq is intact" "intact" \
    "$(jq -r .chain.status <<<"$out")"
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1" --from 900 --to 1000)
t_eq "a range after it is intact too (anchored at seq 899)" "intact" \
    "$(jq -r .chain.status <<<"$out")"
t_sql "DELETE FROM evidence WHERE org_id = '$ORG1' AND ledger_seq = 1200;
    DELETE FROM ledger_events WHERE org_id = '$ORG1' AND seq = 1200" \
    >/dev/null
out=$(bulwarkctl -c "$CFG" ledger verify --org "$ORG1" --from 1000)
t_eq "a deleted event: broken at 1200, missing" "broken 1200 missing" \
    "$(jq -r '.chain | "\(.status) \(.broken_at) \(.reason)"' <<<"$out")"

# A broken chain is never signed.
new_org "ledger-broken-$$"
for i in 1 2 3; do
	curl -sk -o /dev/null -X POST "$BULWARK_URL/api/v1/evidence" \
	    -H "Authorization: Bearer $KEY" --data-binary "x$i"
done
t_sql "UPDATE ledger_events SET type = 'evidence.forged' WHERE
    org_id = '$ORG' AND seq = 2" >/dev/null
bulwarkctl -c "$CFG" ledger roots --before "$TOMORROW" >/dev/null 2>&1
t_eq "roots: a day with a broken chain is not signed" 0 \
    "$(t_sql "SELECT count(*) FROM ledger_roots WHERE org_id = '$ORG'")"
t_sql "UPDATE ledger_events SET type = 'evidence.uploaded' WHERE
    org_id = '$ORG' AND seq = 2" >/dev/null
bulwarkctl -c "$CFG" ledger roots --before "$TOMORROW" >/dev/null 2>&1
t_eq "roots: the repaired day is signed on the next run" "1|3" \
    "$(t_sql "SELECT count(*), max(event_count) FROM ledger_roots
	WHERE org_id = '$ORG'")"

# --- uploads through nginx ------------------------------------------------
new_org "ledger-uploads-$$"
head -c 300000 /dev/urandom >"$TMP/ev.bin"
code=$(curl -sk -o "$TMP/ev.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    -H "Content-Type: application/pdf" -H "X-Evidence-Name: Rapport été.pdf" \
    --data-binary @"$TMP/ev.bin")
t_eq "upload through nginx: 201" 201 "$code"
sum=$(sha256sum <"$TMP/ev.bin" | cut -d' ' -f1)
t_eq "answer's sha256 = sha256sum of the file" "$sum" \
    "$(jq -r .sha256 "$TMP/ev.json")"
id=$(jq -r .id "$TMP/ev.json")
t_eq "stored file exists with that hash" "$sum" \
    "$(sha256sum <"$STORAGE/evidence/$ORG/$id" | cut -d' ' -f1)"
t_eq "row keeps size, Content-Type, X-Evidence-Name and the ledger hash" \
    "300000|application/pdf|Rapport été.pdf|t" \
    "$(t_sql "SELECT v.size, v.content_type, v.name,
	encode(l.hash, 'hex') = '$(jq -r .ledger_hash "$TMP/ev.json")'
	AND l.payload_hash = v.sha256 FROM evidence v JOIN ledger_events l
	ON l.org_id = v.org_id AND l.seq = v.ledger_seq
	WHERE v.org_id = '$ORG' AND v.id = '$id'")"

code=$(curl -sk -o "$TMP/e.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY")
t_eq "empty body: 400 VALIDATION_FAILED" "400 VALIDATION_FAILED body" \
    "$code $(jq -r '.error.error_code + " " + .error.fields[0].field' \
	"$TMP/e.json")"
code=$(curl -sk -o "$TMP/e.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    -H "Content-Type: not a type" --data-binary x)
t_eq "bad Content-Type: 400" 400 "$code"
code=$(curl -sk -o "$TMP/e.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    -H "X-Evidence-Name: $(printf 'n%.0s' $(seq 256))" --data-binary x)
t_eq "X-Evidence-Name of 256 bytes: 400" 400 "$code"
head -c $((25 * 1024 * 1024 + 1)) /dev/zero >"$TMP/big"
code=$(curl -sk -o "$TMP/e.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    --data-binary @"$TMP/big")
t_eq "25 MiB + 1: 413 PAYLOAD_TOO_LARGE (JSON)" "413 PAYLOAD_TOO_LARGE" \
    "$code $(jq -r .error.error_code "$TMP/e.json" 2>/dev/null)"
truncate -s $((25 * 1024 * 1024)) "$TMP/big"
code=$(curl -sk -o "$TMP/e.json" -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    --data-binary @"$TMP/big")
t_eq "exactly 25 MiB: 201 with that size" "201 26214400" \
    "$code $(jq -r .size "$TMP/e.json")"

# Idempotency-Key: a replay answers the same upload and appends nothing.
before=$(t_sql "SELECT count(*) FROM ledger_events WHERE org_id = '$ORG'")
for n in 1 2; do
	curl -sk -o "$TMP/i$n.json" -D "$TMP/i$n.h" -X POST \
	    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
	    -H "Idempotency-Key: ev-$$" --data-binary @"$TMP/ev.bin"
done
t_eq "Idempotency-Key replay: same id, Idempotent-Replayed, one event" \
    "$(jq -r .id "$TMP/i1.json") 1 $((before + 1))" \
    "$(jq -r .id "$TMP/i2.json") $(grep -ci '^idempotent-replayed: true' \
	"$TMP/i2.h") $(t_sql "SELECT count(*) FROM ledger_events
	WHERE org_id = '$ORG'")"
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    -H "Idempotency-Key: ev-$$" --data-binary "other body")
t_eq "same Idempotency-Key, other body: 422" 422 "$code"
t_eq "no temp file left by the replay and the 422" 0 \
    "$(find "$STORAGE/evidence/tmp" -name "$ORG.*" | wc -l)"

# --- a child killed mid-upload -------------------------------------------
rows_before=$(t_sql "SELECT count(*) FROM evidence WHERE org_id = '$ORG'")
python3 - "$BW_FCGI_SOCKET" "$KEY" <<'EOF' &
import socket, struct, sys, time
sys.path.insert(0, __import__("os").environ["BW_TOP"] + "/tests/lib")
from fcgi_req import record, nv, FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN
sock, key = sys.argv[1:3]
p = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/api/v1/evidence",
     "REQUEST_URI": "/api/v1/evidence", "SCRIPT_NAME": "/api/v1/evidence",
     "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
     "REMOTE_ADDR": "127.0.0.1", "HTTPS": "on",
     "CONTENT_TYPE": "application/octet-stream",
     "CONTENT_LENGTH": str(4 * 1024 * 1024),
     "HTTP_AUTHORIZATION": "Bearer " + key}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
body = b"".join(nv(k, v) for k, v in p.items())
s.sendall(record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0)) +
          record(FCGI_PARAMS, 1, body) + record(FCGI_PARAMS, 1, b"") +
          record(FCGI_STDIN, 1, b"y" * (1024 * 1024)))
time.sleep(30)
EOF
py=$!
victim=
# Only the stack's api children can hold the upload (a scan of every
# process's fds is slow on a busy machine: many masters, pools, backends).
master=$(cat "$BW_RUN/pid/bulwark-fcgi.pid")
for i in $(seq 1 100); do
	for c in $(pgrep -x -P "$master" bulwark-fcgi); do
		if [ -n "$(find "/proc/$c/fd" -lname \
		    "$STORAGE/evidence/tmp/$ORG.*.part" 2>/dev/null)" ]; then
			victim=$c
			break 2
		fi
	done
	sleep 0.1
done
if [ -n "$victim" ]; then
	kill -9 "$victim"
	t_ok "found the child streaming the upload (pid $victim) and killed it"
else
	t_fail "found the child streaming the upload" "no open .part file"
fi
kill "$py" 2>/dev/null
wait "$py" 2>/dev/null
sleep 0.5
t_eq "killed upload: no row added" "$rows_before" \
    "$(t_sql "SELECT count(*) FROM evidence WHERE org_id = '$ORG'")"
t_sql "SELECT storage_path FROM evidence WHERE org_id = '$ORG'" >"$TMP/p"
t_eq "no row without its file" 0 \
    "$(while read -r p; do [ -f "$STORAGE/$p" ] || echo x; done <"$TMP/p" |
	wc -l)"
t_eq "the interrupted upload left its temp file" 1 \
    "$(find "$STORAGE/evidence/tmp" -name "$ORG.*.part" | wc -l)"
# A stored file without a row (crash between rename and commit).
touch -d '2 hours ago' "$STORAGE/evidence/tmp/$ORG."*.part
cp "$TMP/ev.bin" "$STORAGE/evidence/$ORG/00000000-0000-4000-8000-000000000000"
touch -d '2 hours ago' \
    "$STORAGE/evidence/$ORG/00000000-0000-4000-8000-000000000000"
bulwarkctl -c "$CFG" evidence sweep --older-than 3600 >"$TMP/sweep"
t_eq "sweep removes the temp file and the file without a row" "0 0" \
    "$(find "$STORAGE/evidence/tmp" -name "$ORG.*.part" | wc -l) $(find \
	"$STORAGE/evidence/$ORG" -name '00000000-*' | wc -l)"
t_eq "sweep keeps every file that has a row" 0 \
    "$(while read -r p; do [ -f "$STORAGE/$p" ] || echo x; done <"$TMP/p" |
	wc -l)"
curl -sk -o /dev/null -w '%{http_code}' -X POST \
    "$BULWARK_URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    --data-binary "after the kill" >"$TMP/after"
t_eq "uploads work after the kill (child replaced)" 201 "$(cat "$TMP/after")"

t_done
