#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exports against the real stack, counted: the artifact verifies offline
# and a flipped byte is caught (public verify and bulwarkctl verify-export);
# public verify answers from the check stored at ready (and checks once an
# export without one, 503 while another request does), counts on the row;
# a changed event row breaks the chain at that seq; four export workers and
# 20 queued exports of one org never have more than 3 processing at once
# (from export_events); a worker killed mid-export has its export finished
# by another, once; a missing evidence file fails three times, then stays
# failed (storage) with no fourth attempt; a stale attempt resumed after a
# newer one made the export ready loses the fence, says so and leaves the
# ready artifact alone; retention with a shortened clock keeps what ready
# rows name, expires, deletes and logs, and two concurrent passes never act
# twice.
. "${BW_TOP:?}/tests/lib/common.sh"

# Its exports carry today's signed root: events and day on one side of midnight.
t_clear_of_midnight 120
t_stack

CFG=$BW_CONFIG
STORAGE=$(sed -n 's/^storage_dir = //p' "$CFG")
URL=$BULWARK_URL
CURL=(curl -sk --max-time 20)
WPIDS=()

cleanup() {
	local p
	for p in "${WPIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	# The stack's own export worker was stopped for the counted runs.
	stack_start_one export >/dev/null 2>&1 || true
}
t_on_exit cleanup

# mkorg TIER: a fresh org with an owner key in ORG / KEY; its export rate
# limit is raised so that one test can queue 20 exports.
mkorg() {
	ORG=$(bulwarkctl -c "$CFG" org create --name "exports-$$" \
	    --tier "$1" | jq -r .id)
	KEY=$(bulwarkctl -c "$CFG" key create --org "$ORG" --role owner |
	    jq -r .key)
	t_sql "INSERT INTO org_rate_limits (org_id, route, scope, \"limit\",
	    window_s) VALUES ('$ORG', 'export_create', 'org', 1000, 3600)" \
	    >/dev/null
}

# upload N: N evidence files of ORG; their ids (one a line) in $TMP/ids.
upload() {
	local i
	: >"$TMP/ids"
	for i in $(seq 1 "$1"); do
		head -c $((1000 + i)) /dev/urandom >"$TMP/ev"
		"${CURL[@]}" -X POST "$URL/api/v1/evidence" \
		    -H "Authorization: Bearer $KEY" \
		    -H 'Content-Type: application/octet-stream' \
		    -H "X-Evidence-Name: file-$i.bin" \
		    --data-binary @"$TMP/ev" | jq -r .id >>"$TMP/ids"
	done
}

# mkexport: an export of every id in $TMP/ids; EXP and TOK are set.
mkexport() {
	local body r
	body=$(jq -Rn '{evidence_ids: [inputs]}' <"$TMP/ids")
	r=$("${CURL[@]}" -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "$body")
	EXP=$(jq -r .id <<<"$r")
	TOK=$(jq -r .verification_token <<<"$r")
}


state() { t_sql "SELECT state FROM exports WHERE id = '$1'"; }

# artifact ID: the file the export's row names (exports/<org>/<id>.<n>.tar).
artifact() {
	printf '%s/%s' "$STORAGE" \
	    "$(t_sql "SELECT artifact_path FROM exports WHERE id = '$1'")"
}

# start_workers N PAUSE_MS: N bulwark-export processes with a 5 s lease.
start_workers() {
	local i
	for i in $(seq 1 "$1"); do
		BULWARK_JOB_LEASE_S=5 BULWARK_EXPORT_FILE_PAUSE_MS=$2 \
		    bulwark-export -c "$CFG" >>"$TMP/workers.log" 2>&1 &
		WPIDS+=($!)
	done
}

stop_workers() {
	local p
	for p in "${WPIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	wait "${WPIDS[@]}" 2>/dev/null
	WPIDS=()
}

curl_keys() { "${CURL[@]}" "$URL/api/v1/public/ledger-keys" >"$TMP/keys.json"; }

# Counted runs need exactly our workers.
stack_stop_one export >/dev/null 2>&1

# --- 1. artifact, tampering, offline verifier -------------------------------
mkorg pro
upload 3
# Sign today's root so the events have inclusion proofs.
bulwarkctl -c "$CFG" ledger roots --before "$(date -u -d tomorrow +%F)" \
    >/dev/null
mkexport
start_workers 1 0
t_wait_sql 20 ready "SELECT state FROM exports WHERE id = '$EXP'"
t_eq "export becomes ready" ready "$(state "$EXP")"
ART=$(artifact "$EXP")
curl_keys
bulwarkctl verify-export "$ART" --keys "$TMP/keys.json" >"$TMP/v.json"
rc=$?
t_eq "offline verifier accepts a real export (exit 0)" 0 "$rc"
t_eq "offline verifier proves every exported event" 3 \
    "$(jq -r .events_proved "$TMP/v.json")"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "public verify: manifest_valid true before tampering" true \
    "$(jq -r .manifest_valid <<<"$v")"
t_eq "public verify: chain intact" intact "$(jq -r .chain.status <<<"$v")"
t_eq "public verify: covering root carries 3 proofs" 3 \
    "$(jq '[.ledger_roots[].proofs[]] | length' <<<"$v")"
t_eq "verification counted on the export, not in the ledger" "1 0" \
    "$(t_sql "SELECT verification_count, (SELECT count(*) FROM ledger_events
      WHERE org_id = '$ORG' AND type = 'export.verified') FROM exports
      WHERE id = '$EXP'" | tr '|' ' ')"
# The worker checked the artifact once, at ready, and stored the result.
t_eq "check stored at ready: valid, with the artifact's SHA-256" \
    "t $(sha256sum "$ART" | cut -c1-64)" \
    "$(t_sql "SELECT artifact_valid, artifact_sha256 FROM exports
      WHERE id = '$EXP'" | tr '|' ' ')"
t_eq "public verify reports that SHA-256 and when it was checked" \
    "$(sha256sum "$ART" | cut -c1-64) true" \
    "$(jq -r '"\(.artifact_sha256) \(.checked_at != null)"' <<<"$v")"
# The answer is the stored result: a stored "false" for the unchanged file
# is answered as such (the file, which is intact, is not read again).
t_sql "UPDATE exports SET artifact_valid = false WHERE id = '$EXP'" >/dev/null
t_eq "the stored result is answered, the file is not re-read" false \
    "$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK" | jq -r .manifest_valid)"
# An export made before migration 0010 has no stored result: the first
# verification checks it once and stores the result; while another request
# holds that check, the answer is 503 with Retry-After.
t_sql "UPDATE exports SET artifact_valid = NULL, artifact_sha256 = NULL,
    artifact_stat = NULL, checked_at = NULL, check_claimed_at = now()
    WHERE id = '$EXP'" >/dev/null
code=$("${CURL[@]}" -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' \
    "$URL/api/v1/public/verify/$TOK")
t_eq "check held by another request: 503 CAPACITY_EXHAUSTED" \
    "503 CAPACITY_EXHAUSTED" "$code $(jq -r .error.error_code "$TMP/b")"
t_check "the 503 carries Retry-After" grep -qi '^retry-after: 5' "$TMP/h"
t_sql "UPDATE exports SET check_claimed_at = now() - interval '16 minutes'
    WHERE id = '$EXP'" >/dev/null
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "export without a stored result (stale claim): checked, valid" true \
    "$(jq -r .manifest_valid <<<"$v")"
t_eq "its result is stored, the claim dropped" \
    "t $(sha256sum "$ART" | cut -c1-64) t" \
    "$(t_sql "SELECT artifact_valid, artifact_sha256,
      check_claimed_at IS NULL FROM exports WHERE id = '$EXP'" | tr '|' ' ')"

# Rebuild of the same inputs gives the same bytes (deterministic tar).
cp "$ART" "$TMP/first.tar"
mkexport
t_wait_sql 20 ready "SELECT state FROM exports WHERE id = '$EXP'"
ART=$(artifact "$EXP")
t_check "same inputs give the same artifact bytes" \
    cmp -s "$TMP/first.tar" "$ART"

# Flip one byte of the manifest region, then of the last evidence file.
cp "$ART" "$TMP/orig.tar"
flip() {
	local off=$1 b
	b=$(od -An -tu1 -j "$off" -N1 "$ART" | tr -d ' ')
	printf "$(printf '\\%03o' $(((b ^ 1) & 255)))" |
	    dd of="$ART" bs=1 seek="$off" conv=notrunc status=none
}
flip 700
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "flipped manifest byte: manifest_valid false" false \
    "$(jq -r .manifest_valid <<<"$v")"
bulwarkctl verify-export "$ART" --keys "$TMP/keys.json" >/dev/null
t_eq "offline verifier rejects a tampered manifest (exit 1)" 1 "$?"
cp "$TMP/orig.tar" "$ART"
size=$(stat -c %s "$ART")
# The last file's data ends before the two zero blocks and its padding.
last=$(tail -n 1 "$TMP/ids")
lsize=$(t_sql "SELECT size FROM evidence WHERE id = '$last'")
pad=$(((512 - lsize % 512) % 512))
flip $((size - 1024 - pad - 5))
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "flipped evidence byte: manifest_valid false" false \
    "$(jq -r .manifest_valid <<<"$v")"
bulwarkctl verify-export "$ART" --keys "$TMP/keys.json" >/dev/null
t_eq "offline verifier rejects a tampered file (exit 1)" 1 "$?"
cp "$TMP/orig.tar" "$ART"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "restored artifact: manifest_valid true again" true \
    "$(jq -r .manifest_valid <<<"$v")"
# Bytes after the end blocks: no member changed, but the file is not the
# one that was checked.
printf 'x' >>"$ART"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "bytes appended to the artifact: manifest_valid false" false \
    "$(jq -r .manifest_valid <<<"$v")"
cp "$TMP/orig.tar" "$ART"
rm -f "$ART"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "artifact missing: manifest_valid false" false \
    "$(jq -r .manifest_valid <<<"$v")"
cp "$TMP/orig.tar" "$ART"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "artifact put back: manifest_valid true" true \
    "$(jq -r .manifest_valid <<<"$v")"
# A wrong key: the checkpoint signatures must not verify.
jq '.keys[0].vkey = "other.example+12345678+AfXqDlv8VJafzS7ACKepWXv5qehmkz20V5N6p975NsCT"' \
    "$TMP/keys.json" >"$TMP/badkeys.json"
bulwarkctl verify-export "$ART" --keys "$TMP/badkeys.json" >/dev/null 2>&1
t_eq "offline verifier rejects checkpoints under a foreign key" 1 "$?"

# Change one event row's payload hash: the chain breaks at that seq.
seq2=$(t_sql "SELECT ledger_seq FROM evidence WHERE id = '$(sed -n 2p "$TMP/ids")'")
t_sql "UPDATE ledger_events SET payload_hash = decode(repeat('ab', 32), 'hex')
    WHERE org_id = '$ORG' AND seq = $seq2" >/dev/null
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "tampered event row: chain broken" broken "$(jq -r .chain.status <<<"$v")"
t_eq "tampered event row: broken at that seq" "$seq2" \
    "$(jq -r .chain.broken_at <<<"$v")"
stop_workers

# --- 2. four workers, 20 exports, cap 3 ------------------------------------
mkorg business
upload 4
for i in $(seq 1 20); do mkexport; done
start_workers 4 100
t_wait_sql 90 20 "SELECT count(*) FROM exports WHERE org_id = '$ORG'
    AND state = 'ready'"
t_eq "20 exports ready with 4 workers" 20 \
    "$(t_sql "SELECT count(*) FROM exports WHERE org_id = '$ORG'
      AND state = 'ready'")"
# Max overlap of processing intervals over the whole run.
maxc=$(t_sql "WITH e AS (SELECT state, at, lead(at) OVER (PARTITION BY
    export_id ORDER BY at, id) AS nxt FROM export_events
    WHERE org_id = '$ORG'),
    iv AS (SELECT at AS s, coalesce(nxt, 'infinity') AS f FROM e
    WHERE state = 'processing')
    SELECT max((SELECT count(*) FROM iv b WHERE b.s <= a.s AND b.f > a.s))
    FROM iv a")
t_le "never more than 3 processing at once (org cap)" 3 "$maxc"
t_eq "the cap was reached (3 at once)" 3 "$maxc"
t_eq "each export marked ready exactly once" 20 \
    "$(t_sql "SELECT count(*) FROM export_events WHERE org_id = '$ORG'
      AND state = 'ready'")"
m=$("${CURL[@]}" "$URL/api/v1/metrics/exports" -H "Authorization: Bearer $KEY")
t_eq "metrics: queue depth counts 20 ready" 20 "$(jq -r .queue_depth.ready <<<"$m")"
t_match "metrics: average time in processing" '^[0-9.]+$' \
    "$(jq -r .avg_seconds_in_state.processing <<<"$m")"
stop_workers

# --- 3. kill -9 mid-export ---------------------------------------------------
mkorg pro
upload 12
mkexport
start_workers 2 400
t_wait_sql 20 processing "SELECT state FROM exports WHERE id = '$EXP'"
sleep 1
holder=$(t_sql "SELECT locked_by FROM jobs WHERE queue = 'export'
    AND job_key = '$EXP' AND state = 'running'")
hpid=${holder##*:}
victim=""
for p in "${WPIDS[@]}"; do [ "$p" = "$hpid" ] && victim=$p; done
t_check "the export is held by one of our workers" test -n "$victim"
[ -n "$victim" ] && kill -9 "$victim"
t_wait_sql 60 ready "SELECT state FROM exports WHERE id = '$EXP'"
t_eq "killed worker's export finished by another" ready "$(state "$EXP")"
t_eq "it was marked ready once" 1 \
    "$(t_sql "SELECT count(*) FROM export_events WHERE export_id = '$EXP'
      AND state = 'ready'")"
t_eq "two workers processed it" 2 \
    "$(t_sql "SELECT count(DISTINCT worker) FROM export_events
      WHERE export_id = '$EXP' AND state = 'processing'")"
bulwarkctl verify-export "$(artifact "$EXP")" >/dev/null
t_eq "the finished artifact verifies" 0 "$?"
stop_workers

# --- 4. poison pill: missing evidence file ---------------------------------
mkorg starter
upload 2
rm -f "$STORAGE/evidence/$ORG/$(sed -n 1p "$TMP/ids")"
mkexport
start_workers 2 0
t_wait_sql 40 failed "SELECT state FROM exports WHERE id = '$EXP'"
sleep 8	# longer than the next backoff: a fourth attempt would show
t_eq "missing file: export failed" failed "$(state "$EXP")"
t_eq "missing file: failure_count 3" 3 \
    "$(t_sql "SELECT failure_count FROM exports WHERE id = '$EXP'")"
t_eq "missing file: category storage" storage \
    "$(t_sql "SELECT error_category FROM exports WHERE id = '$EXP'")"
t_eq "missing file: exactly three attempts" 3 \
    "$(t_sql "SELECT count(*) FROM export_events WHERE export_id = '$EXP'
      AND state = 'processing'")"
t_eq "missing file: the job is dead" dead \
    "$(t_sql "SELECT state FROM jobs WHERE queue = 'export'
      AND job_key = '$EXP'")"
g=$("${CURL[@]}" "$URL/api/v1/exports/$EXP" -H "Authorization: Bearer $KEY")
t_eq "GET shows failed with its category" "failed storage 3" \
    "$(jq -r '"\(.state) \(.error_category) \(.failure_count)"' <<<"$g")"
stop_workers

# --- 5. a stale attempt finishing after a newer one: the fence --------------
# Worker A starts the export and is stopped (SIGSTOP) past its 5 s lease;
# worker B rescues the job and makes the export ready. Today's root is
# signed in between, so B's manifest (with the root and its proofs) differs
# from A's (without). A is then resumed and finishes its build: it must
# lose the fence, say so and remove its file, and the file the ready row
# names must still be B's, byte for byte.
mkorg pro
upload 3
mkexport
BULWARK_JOB_LEASE_S=5 BULWARK_EXPORT_FILE_PAUSE_MS=1000 \
    bulwark-export -c "$CFG" >"$TMP/fence-a.log" 2>&1 &
A=$!
WPIDS+=("$A")
t_wait_sql 20 processing "SELECT state FROM exports WHERE id = '$EXP'"
kill -STOP "$A"
t_on_exit "kill -CONT $A 2>/dev/null || true"
sleep 6	# A's lease (5 s) runs out while it is stopped
bulwarkctl -c "$CFG" ledger roots --before "$(date -u -d tomorrow +%F)" \
    >/dev/null
BULWARK_JOB_LEASE_S=5 bulwark-export -c "$CFG" >"$TMP/fence-b.log" 2>&1 &
WPIDS+=("$!")
t_wait_sql 30 ready "SELECT state FROM exports WHERE id = '$EXP'"
t_eq "fence: the newer attempt made the export ready" ready "$(state "$EXP")"
ART=$(artifact "$EXP")
before=$(sha256sum <"$ART")
kill -CONT "$A"
for i in $(seq 1 300); do
	grep -q "$EXP" "$TMP/fence-a.log" &&
	    grep -Eq '"export (attempt lost the fence|no longer ours at the end|ready)"' \
		"$TMP/fence-a.log" && break
	sleep 0.1
done
t_match "fence: the stale attempt logs that it lost the fence" \
    '"export attempt lost the fence"' "$(grep "$EXP" "$TMP/fence-a.log")"
t_eq "fence: the ready artifact is still the newer attempt's bytes" \
    "$before" "$(sha256sum <"$(artifact "$EXP")")"
v=$("${CURL[@]}" "$URL/api/v1/public/verify/$TOK")
t_eq "fence: public verify: the artifact matches the stored manifest hash" \
    true "$(jq -r .manifest_valid <<<"$v")"
t_eq "fence: the stale attempt left no file (only the ready artifact)" \
    "$(basename "$ART")" "$(ls -A "$STORAGE/exports/$ORG")"
t_eq "fence: two attempts, marked ready once" "2 1" \
    "$(t_sql "SELECT attempt || ' ' || (SELECT count(*) FROM export_events
      WHERE export_id = '$EXP' AND state = 'ready') FROM exports
      WHERE id = '$EXP'")"
stop_workers

# --- 6. retention with a shortened clock ------------------------------------
mkorg starter
upload 1
for i in 1 2 3; do mkexport; done
start_workers 1 0
t_wait_sql 20 3 "SELECT count(*) FROM exports WHERE org_id = '$ORG'
    AND state = 'ready'"
stop_workers
ids=$(t_sql "SELECT id FROM exports WHERE org_id = '$ORG'")
# 29 days: a starter org keeps exports 30 days.
BULWARK_RETENTION_CLOCK_OFFSET_S=$((29 * 86400)) \
    bulwark-retention -c "$CFG" --pass 2>"$TMP/ret0.log"
t_eq "retention at 29 days expires nothing" 0 \
    "$(t_sql "SELECT count(*) FROM exports WHERE org_id = '$ORG'
      AND state = 'expired'")"
# Its orphan sweep (files an hour old at that clock) keeps what rows name.
n=0
for id in $ids; do
	[ -f "$(artifact "$id")" ] && n=$((n + 1))
done
t_eq "retention at 29 days keeps the 3 ready artifacts" 3 "$n"
for i in 1 2; do
	BULWARK_RETENTION_CLOCK_OFFSET_S=$((31 * 86400)) \
	    bulwark-retention -c "$CFG" --pass 2>"$TMP/ret$i.log" &
done
wait
t_eq "retention at 31 days expires all 3" 3 \
    "$(t_sql "SELECT count(*) FROM exports WHERE org_id = '$ORG'
      AND state = 'expired'")"
t_eq "expired artifacts deleted" 0 \
    "$(find "$STORAGE/exports/$ORG" -name '*.tar' | wc -l)"
logged=$(cat "$TMP/ret1.log" "$TMP/ret2.log" | grep '"export expired"' |
    grep -c "$ORG")
t_eq "each expiry logged once across two concurrent passes" 3 "$logged"
t_eq "each expiry recorded once" 3 \
    "$(t_sql "SELECT count(*) FROM export_events WHERE org_id = '$ORG'
      AND state = 'expired'")"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
    "$URL/api/v1/exports/$(head -n 1 <<<"$ids")/download" \
    -H "Authorization: Bearer $KEY")
t_eq "download of an expired export: 410" 410 "$code"

t_done
