#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exports through nginx: 202 create with a one-time token; a queued export
# cannot be downloaded (409) and can be canceled once (then 409); a ready
# one downloads only for its own org (other orgs 404) with Range support
# (206, the right bytes) from nginx's internal location; unknown, malformed
# and expired verification tokens answer the same 404 body shape.
. "${BW_TOP:?}/tests/lib/common.sh"
t_stack

CFG=$BW_CONFIG
URL=$BULWARK_URL
CURL=(curl -sk --max-time 20)
t_on_exit 'stack_start_one export >/dev/null 2>&1 || true'

mkorg() {
	ORG=$(bulwarkctl -c "$CFG" org create --name "e2e-exports-$$" |
	    jq -r .id)
	KEY=$(bulwarkctl -c "$CFG" key create --org "$ORG" --role owner |
	    jq -r .key)
}
mkorg
OKEY=$KEY
OORG=$ORG
mkorg
head -c 5000 /dev/urandom >"$TMP/ev"
EV=$("${CURL[@]}" -X POST "$URL/api/v1/evidence" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/ev" |
    jq -r .id)
mkexport() {
	R=$("${CURL[@]}" -w '\n%{http_code}' -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\":[\"$EV\"]}")
	CODE=$(tail -n 1 <<<"$R")
	R=$(head -n 1 <<<"$R")
	EXP=$(jq -r .id <<<"$R")
	TOK=$(jq -r .verification_token <<<"$R")
}
get() { "${CURL[@]}" -o "$TMP/out" -w '%{http_code}' "$@"; }

# Queued: no worker runs for a moment.
stack_stop_one export >/dev/null 2>&1
mkexport
t_eq "create answers 202" 202 "$CODE"
t_eq "create answers state queued" queued "$(jq -r .state <<<"$R")"
t_eq "token is 43 base64url chars" 43 "$(printf %s "$TOK" | tr -d 'A-Za-z0-9_-' | wc -c | awk -v n=${#TOK} '{print n - $1}')"
t_eq "download of a queued export: 409" 409 \
    "$(get "$URL/api/v1/exports/$EXP/download" -H "Authorization: Bearer $KEY")"
t_eq "409 carries INVALID_STATE" INVALID_STATE "$(jq -r .error.error_code "$TMP/out")"
t_eq "cancel a queued export: 200" 200 \
    "$(get -X POST "$URL/api/v1/exports/$EXP/cancel" -H "Authorization: Bearer $KEY")"
t_eq "cancel again: 409" 409 \
    "$(get -X POST "$URL/api/v1/exports/$EXP/cancel" -H "Authorization: Bearer $KEY")"
t_eq "another org cannot cancel it: 404" 404 \
    "$(get -X POST "$URL/api/v1/exports/$EXP/cancel" -H "Authorization: Bearer $OKEY")"
stack_start_one export >/dev/null 2>&1

mkexport
for i in $(seq 1 100); do
	s=$("${CURL[@]}" "$URL/api/v1/exports/$EXP" -H "Authorization: Bearer $KEY" |
	    jq -r .state)
	[ "$s" = ready ] && break
	sleep 0.2
done
t_eq "export becomes ready" ready "$s"
t_eq "download by its org: 200" 200 \
    "$(get "$URL/api/v1/exports/$EXP/download" -H "Authorization: Bearer $KEY")"
cp "$TMP/out" "$TMP/a.tar"
t_check "the download is the export tar (manifest.json first)" \
    bash -c "tar tf '$TMP/a.tar' | head -n 1 | grep -qx manifest.json"
t_check "downloaded evidence equals the upload" \
    bash -c "tar xOf '$TMP/a.tar' evidence/$EV | cmp -s - '$TMP/ev'"
t_eq "download by another org: 404" 404 \
    "$(get "$URL/api/v1/exports/$EXP/download" -H "Authorization: Bearer $OKEY")"
t_eq "GET by another org: 404" 404 \
    "$(get "$URL/api/v1/exports/$EXP" -H "Authorization: Bearer $OKEY")"
t_eq "Range request: 206" 206 \
    "$(get -r 100-1123 "$URL/api/v1/exports/$EXP/download" -H "Authorization: Bearer $KEY")"
t_check "Range body is bytes 100..1123 of the artifact" \
    bash -c "tail -c +101 '$TMP/a.tar' | head -c 1024 | cmp -s - '$TMP/out'"
t_eq "the internal location is not reachable from outside" 404 \
    "$(get "$URL/internal/$(t_sql "SELECT artifact_path FROM exports
      WHERE id = '$EXP'")")"

VALID='bulwark_export_verifications_total{outcome="valid"}'
before=$(t_metric "$VALID")
t_eq "verify with the token: 200" 200 "$(get "$URL/api/v1/public/verify/$TOK")"
t_eq "verify: manifest_valid" true "$(jq -r .manifest_valid "$TMP/out")"
# The fcgi children share their counters: whichever child served the
# verification, the scrape (maybe another child) sees it.
t_eq "metrics: a valid verification is counted" "$((${before:-0} + 1))" \
    "$(t_metric "$VALID")"
t_match "metrics: exports by state include this ready export" \
    '^[1-9][0-9]*$' "$(t_metric 'bulwark_exports{state="ready"}')"
shape() { jq -c '{s: .error.error_code, k: (.error | keys)}' "$TMP/out"; }
t_eq "unknown token: 404" 404 \
    "$(get "$URL/api/v1/public/verify/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"
unknown=$(shape)
t_eq "malformed token: 404" 404 "$(get "$URL/api/v1/public/verify/nope")"
t_eq "malformed token: same body shape" "$unknown" "$(shape)"
psql "$DATABASE_URL" -qAtX -c "UPDATE exports SET token_expires_at = now()
    - interval '1 second' WHERE id = '$EXP'" >/dev/null
t_eq "expired token: 404" 404 "$(get "$URL/api/v1/public/verify/$TOK")"
t_eq "expired token: same body shape as unknown" "$unknown" "$(shape)"
# Export of evidence the caller does not own: checked at creation, 404
# naming the field, the same for another org's id and a made-up one, and
# nothing created.
notmine() {
	"${CURL[@]}" -w '\n%{http_code}' -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer $OKEY" -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\":[\"$1\"]}"
}
R1=$(notmine "$EV")
R2=$(notmine "$(cat /proc/sys/kernel/random/uuid)")
t_eq "export of another org's evidence: 404" 404 "$(tail -n 1 <<<"$R1")"
t_eq "export of made-up evidence: 404" 404 "$(tail -n 1 <<<"$R2")"
t_eq "the 404 is NOT_FOUND naming evidence_ids" "NOT_FOUND evidence_ids not_found" \
    "$(head -n 1 <<<"$R1" | jq -r '[.error.error_code, .error.fields[0].field, .error.fields[0].problem] | join(" ")')"
t_eq "foreign and made-up ids answer the same body" \
    "$(head -n 1 <<<"$R1" | jq -c 'del(.error.request_id, .error.error_id)')" \
    "$(head -n 1 <<<"$R2" | jq -c 'del(.error.request_id, .error.error_id)')"
t_eq "no export row was created for them" 0 \
    "$(t_sql "SELECT count(*) FROM exports WHERE org_id = '$OORG'")"

t_done
