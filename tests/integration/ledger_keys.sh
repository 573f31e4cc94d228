#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ledger's signing key stays out of the internet-facing process (issue
# 9 item 5): GET /api/v1/public/ledger-keys is served from the public key
# file alone. Checked: the stack's bulwark-fcgi runs with a config that
# names no ledger_key_file, and its binary holds no code that reads a seed;
# a bulwark-fcgi whose ledger_key_file is missing, or a FIFO that would
# hang any reader, answers the same keys as the stack and as `bulwarkctl
# ledger keys`, and roots signed by the seed verify with the key it serves;
# a rotated public key file is served at once; `ledger keygen` makes a seed
# (0640, never overwritten) and its public key (0644), `ledger pubkey`
# rewrites the latter; signing (bulwarkctl and the bulwark-ledger worker)
# refuses a public key file that does not publish the seed's key.
. "${BW_TOP:?}/tests/lib/common.sh"

# Its roots are signed for today: events and day on one side of midnight.
t_clear_of_midnight 60
t_need BW_BUILD BW_CONFIG BW_RUN BULWARK_URL DATABASE_URL

CFG=$BW_CONFIG
TOMORROW=$(date -u -d tomorrow +%F)
PUB=$(sed -n 's/^ledger_public_key_file *= *//p' "$CFG" | tail -n 1)

# --- the stack's bulwark-fcgi ---------------------------------------------
pid=$(cat "$BW_RUN/pid/bulwark-fcgi.pid" 2>/dev/null)
fconf=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
    sed -n '/^-c$/{n;p;q}')
t_check "the stack's bulwark-fcgi runs with a config file ($fconf)" \
    test -n "$fconf" -a -r "$fconf"
t_eq "its config names no ledger_key_file (the signing seed)" 0 \
    "$(grep -c '^[[:space:]]*ledger_key_file' "$fconf")"
t_eq "its config names the public key file" 1 \
    "$(grep -c '^[[:space:]]*ledger_public_key_file' "$fconf")"
t_eq "the bulwark-fcgi binary links no code that reads or makes a seed" "" \
    "$(nm "$BW_BUILD/bulwark-fcgi" | awk '$2 == "T" {print $3}' |
	grep -E '^ledger_(key_load|signing_key_load|keygen|pubkey_write)$')"

# --- a bulwark-fcgi that cannot read the seed -------------------------------
# own NAME VAR=VALUE...: a bulwark-fcgi of our own (one child) on
# $TMP/NAME.sock with the stack's full config (ledger_key_file set!) and
# these overrides; OWN is its pid.
own() {
	local name=$1
	shift
	env "$@" BULWARK_FCGI_SOCKET="$TMP/$name.sock" \
	    BULWARK_PID_FILE="$TMP/$name.pid" BULWARK_FCGI_CHILDREN=1 \
	    BULWARK_FCGI_CHAT_CHILDREN=1 \
	    bulwark-fcgi -c "$CFG" >>"$TMP/$name.log" 2>&1 &
	OWN=$!
	for _ in $(seq 100); do
		[ -S "$TMP/$name.sock" ] && return 0
		sleep 0.1
	done
	t_fail "$name: bulwark-fcgi started" "no socket; $(tail -n 3 \
	    "$TMP/$name.log")"
}
# keys NAME: "<status> <body>" of GET ledger-keys on own NAME's socket.
keys() {
	t_freq --socket "$TMP/$1.sock" --path /api/v1/public/ledger-keys \
	    --timeout 5 | cut -d' ' -f2-
}

curl -sk "$BULWARK_URL/api/v1/public/ledger-keys" >"$TMP/stack.json"
t_ctl ledger keys >"$TMP/ctl.json"
t_eq "the stack serves the keys bulwarkctl ledger keys prints" \
    "$(jq -cS .keys "$TMP/ctl.json")" "$(jq -cS .keys "$TMP/stack.json")"
want="200 $(jq -c . "$TMP/stack.json")"

own absent BULWARK_LEDGER_KEY_FILE="$TMP/no-such.key"
got=$(keys absent)
t_eq "ledger_key_file missing: 200, the same keys" "$want" \
    "$(printf '%s' "$got" | cut -d' ' -f1) $(printf '%s' "$got" |
	cut -d' ' -f2- | jq -c . 2>/dev/null)"
kill -TERM "$OWN" 2>/dev/null
wait "$OWN" 2>/dev/null

# A FIFO: any open() of it blocks until a writer comes, so a process that
# so much as opens its ledger_key_file hangs here.
mkfifo "$TMP/fifo.key"
own fifo BULWARK_LEDGER_KEY_FILE="$TMP/fifo.key"
got=$(keys fifo)
t_eq "ledger_key_file a FIFO nobody writes: answered at once, same keys" \
    "$want" "$(printf '%s' "$got" | cut -d' ' -f1) $(printf '%s' "$got" |
	cut -d' ' -f2- | jq -c . 2>/dev/null)"

# The keys it serves verify a root the seed signs today.
ORG=$(t_ctl org create --name "ledger-keys-$$" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
for i in 1 2 3; do
	curl -sk -o /dev/null -X POST "$BULWARK_URL/api/v1/evidence" \
	    -H "Authorization: Bearer $KEY" --data-binary "ledger keys $i"
done
t_ctl ledger roots --before "$TOMORROW" >/dev/null
t_sql "SELECT checkpoint FROM ledger_roots WHERE org_id = '$ORG'" \
    >"$TMP/checkpoint"
printf '%s' "$got" | cut -d' ' -f2- >"$TMP/fifo.json"
res=$(python3 - "$TMP/fifo.json" "$TMP/checkpoint" "$ORG" <<'EOF'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey)
keys, cp, org = sys.argv[1:4]
k = json.load(open(keys))["keys"][0]
name, kid, b64 = k["vkey"].split("+", 2)
raw = base64.b64decode(b64)
assert raw[1:] == base64.b64decode(k["public_key_b64"]), "raw key"
note = open(cp, "rb").read()
if note.endswith(b"\n\n"):
    note = note[:-1]
text, _, sigs = note.partition(b"\n\n")
text += b"\n"
assert text.decode().split("\n")[0] == "%s/ledger/%s" % (name, org)
for line in sigs.decode().splitlines():
    _, kname, s = line.split(" ")
    s = base64.b64decode(s)
    if kname == name and s[:4].hex() == kid:
        Ed25519PublicKey.from_public_bytes(raw[1:]).verify(s[4:], text)
        print("valid")
EOF
)
t_eq "today's root of a new org verifies with the key it serves" valid \
    "$res"

# A rotated public key file is served by the next request.
BULWARK_LEDGER_KEY_FILE="$TMP/rot.key" \
    BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/rot.pub" \
    t_ctl ledger keygen >"$TMP/rot.json" 2>"$TMP/rot.err"
kill -TERM "$OWN" 2>/dev/null
wait "$OWN" 2>/dev/null
cp "$PUB" "$TMP/own.pub"
own rot BULWARK_LEDGER_KEY_FILE="$TMP/fifo.key" \
    BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/own.pub"
before=$(keys rot | cut -d' ' -f2- | jq -r '.keys[0].vkey')
cp "$TMP/rot.pub" "$TMP/own.pub"
after=$(keys rot | cut -d' ' -f2- | jq -r '.keys[0].vkey')
t_eq "a replaced public key file is served without a restart" \
    "$(jq -r .keys[0].vkey "$TMP/stack.json") $(jq -r .keys[0].vkey \
	"$TMP/rot.json")" "$before $after"
printf 'not a key\n' >"$TMP/own.pub"
t_eq "a public key file holding no key: 503" 503 "$(keys rot | cut -d' ' -f1)"
kill -TERM "$OWN" 2>/dev/null
wait "$OWN" 2>/dev/null

# --- bulwarkctl ledger keygen / pubkey -------------------------------------
t_eq "keygen: seed 640, public key 644, prints the key it wrote" \
    "640 644 $(cat "$TMP/rot.pub")" \
    "$(stat -c %a "$TMP/rot.key") $(stat -c %a "$TMP/rot.pub") $(jq -r \
	.keys[0].vkey "$TMP/rot.json")"
sum=$(sha256sum <"$TMP/rot.key")
rc=0
BULWARK_LEDGER_KEY_FILE="$TMP/rot.key" \
    BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/rot2.pub" \
    t_ctl ledger keygen >/dev/null 2>"$TMP/again.err" || rc=$?
t_eq "keygen over an existing seed: exit 1, seed unchanged, nothing written" \
    "1 $sum no" "$rc $(sha256sum <"$TMP/rot.key") $([ -e \
	"$TMP/rot2.pub" ] && echo yes || echo no)"
BULWARK_LEDGER_KEY_FILE="$TMP/rot.key" \
    BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/rot2.pub" \
    t_ctl ledger pubkey >/dev/null 2>&1
t_check "pubkey writes the same public key from the seed" \
    cmp -s "$TMP/rot.pub" "$TMP/rot2.pub"

# --- signing refuses a public key file of another key ------------------------
ORG2=$(t_ctl org create --name "ledger-keys-b-$$" | jq -r .id)
KEY2=$(t_ctl key create --org "$ORG2" --role owner | jq -r .key)
curl -sk -o /dev/null -X POST "$BULWARK_URL/api/v1/evidence" \
    -H "Authorization: Bearer $KEY2" --data-binary "unsigned"
rc=0
BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/rot.pub" \
    t_ctl ledger roots --before "$TOMORROW" >/dev/null 2>"$TMP/roots.err" ||
    rc=$?
t_eq "ledger roots with another key published: exit 1, nothing signed" \
    "1 0" "$rc $(t_sql "SELECT count(*) FROM ledger_roots
	WHERE org_id = '$ORG2'")"
t_ctl ledger roots --before "$TOMORROW" >/dev/null
t_eq "with the right public key file the day is signed" 1 \
    "$(t_sql "SELECT count(*) FROM ledger_roots WHERE org_id = '$ORG2'")"

# The worker, in a slot of its own: the stack's ledger loop is stopped and
# today's slot made claimable again.
t_stack
t_on_exit 'stack_start_one ledger-loop >/dev/null 2>&1'
# Our own bulwark-fcgi left running, if any; registered after the restart
# so that it runs first and does not kill the restarted loop.
t_on_exit t_kill_jobs
stack_stop_one ledger-loop >/dev/null 2>&1
reopen() {
	t_sql "UPDATE periodic_runs SET state = 'failed' WHERE
	    job = 'ledger-roots' AND slot = date_trunc('day', now(), 'UTC')" \
	    >/dev/null
}
reopen
rc=0
BULWARK_LEDGER_PUBLIC_KEY_FILE="$TMP/rot.pub" \
    bulwark-ledger -c "$CFG" >"$TMP/worker.log" 2>&1 || rc=$?
t_eq "bulwark-ledger with another key published: exit 1, run failed" \
    "1 failed" "$rc $(t_sql "SELECT state FROM periodic_runs WHERE
	job = 'ledger-roots' ORDER BY slot DESC LIMIT 1")"
# By its name: a long enough run of the path's letters, digits and slashes
# (the random part of the run dir's name, say) is an opaque secret to the
# redactor (lib/core/redact.c, rule 9), so the directory may be masked.
t_eq "it logs why, naming the public key file" 1 \
    "$(grep -c "not the signing key's.*/rot\.pub\"" "$TMP/worker.log")"
reopen
rc=0
bulwark-ledger -c "$CFG" >>"$TMP/worker.log" 2>&1 || rc=$?
t_eq "bulwark-ledger with its own key published: exit 0, run ok" "0 ok" \
    "$rc $(t_sql "SELECT state FROM periodic_runs WHERE
	job = 'ledger-roots' ORDER BY slot DESC LIMIT 1")"

t_done
