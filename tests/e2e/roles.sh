#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Roles through nginx, driven by the route table (`bulwark-fcgi --routes`,
# docs/api.md "Roles"), not by a list kept here. For every route:
# - RA_KEY ("key"): no key and a made-up key answer 401 UNAUTHENTICATED
#   with WWW-Authenticate; an owner, admin and member key of org A below
#   the route's min_role answer 403 FORBIDDEN with the contract's error
#   body; at or above it, anything but 401/403;
# - "optional": no key and every role pass (not 401/403), a made-up key 401;
# - "none": no key is never 401/403;
# - "session" (a cookie session only, tests/e2e/sessions.sh): no
#   credentials and every role's key answer 401 UNAUTHENTICATED;
# - limited routes (rate not null): every 401/403 answer carries
#   X-RateLimit-Limit, -Remaining and -Reset (CONTRACT.md "Rate limits");
# - key routes with placeholders: org A's real resource (reservation,
#   export, account user, chat session) called with org B's key of the
#   route's min_role answers exactly like a made-up id (404 NOT_FOUND, the
#   same body but for error_id/request_id; accounts: 200 zeros, never A's
#   balance); so does org A's evidence id in org B's export request.
# A key route whose placeholders name a resource kind this script does not
# create fails: add the kind to res_for below.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG BW_BUILD

URL=$BULWARK_URL
CURL=(curl -sk --max-time 20)
SFX=$$-$RANDOM
# A status that is an answer, but neither 401 nor 403.
NOT_401_403='^([1235][0-9][0-9]|4(0[02-9]|[1-9][0-9]))$'
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# The table.
ROUTES=$TMP/routes.jsonl
if "$BW_BUILD/bulwark-fcgi" --routes >"$ROUTES" 2>"$TMP/routes.err" &&
    [ -s "$ROUTES" ] &&
    jq -se 'all(.[]; (.method|type) == "string" and (.pattern|type) == "string"
	    and (.name|type) == "string" and (.auth|IN("none","key","optional","session"))
	    and ((.auth|IN("key","session")|not) or (.min_role|IN("member","admin","owner")))
	    and (.flags|type) == "array")' "$ROUTES" \
	>/dev/null 2>&1; then
	t_ok "bulwark-fcgi --routes prints one JSON line per route ($(wc -l <"$ROUTES") routes)"
else
	t_fail "bulwark-fcgi --routes prints one JSON line per route" \
	    "$(head -c 300 "$TMP/routes.err" "$ROUTES" 2>/dev/null | tr '\n' ' ')"
	t_done
fi
t_eq "the table has as many rows as routes.c" \
    "$(grep -c '\.pattern = ' "$BW_TOP/fcgi/routes.c")" "$(wc -l <"$ROUTES")"

# docs/api.md "Roles" holds the table as the dump prints it.
jq -r '"| `\(.method) \(.pattern)` | `\(.name)` | \(.auth) | \(.min_role // "") | \(if .rate then "yes" else "" end) |"' \
    "$ROUTES" >"$TMP/roles.md"
sed -n '/<!-- roles:begin -->/,/<!-- roles:end -->/p' "$BW_TOP/docs/api.md" |
    grep '^| `' >"$TMP/roles.doc" || true
t_check "docs/api.md \"Roles\" table matches bulwark-fcgi --routes" \
    cmp -s "$TMP/roles.md" "$TMP/roles.doc"

rank() { case $1 in member) echo 0 ;; admin) echo 1 ;; owner) echo 2 ;; esac; }

mkorg() { t_ctl org create --name "e2e-roles-$1-$SFX" --tier pro | jq -r .id; }
mkkey() { t_ctl key create --org "$1" --role "$2" | jq -r .key; }
ORG_A=$(mkorg a)
ORG_B=$(mkorg b)
declare -A KA KB
for role in owner admin member; do
	KA[$role]=$(mkkey "$ORG_A" $role)
	KB[$role]=$(mkkey "$ORG_B" $role)
done
BADKEY=bwk_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | head -c 43)

# call METHOD PATH KEY [RAW]: headers in $TMP/h, body in $TMP/b; prints the
# status. POSTs send {} (or one byte for raw-body routes) and a fresh
# Idempotency-Key.
call() {
	local a=(-X "$1" -D "$TMP/h" -o "$TMP/b" -w '%{http_code}')
	[ -n "$3" ] && a+=(-H "Authorization: Bearer $3")
	if [ "$1" = POST ]; then
		a+=(-H "Idempotency-Key: roles-$SFX-$RANDOM$RANDOM")
		if [ "${4:-}" = raw ]; then
			a+=(-H 'Content-Type: application/octet-stream' --data-binary x)
		else
			a+=(-H 'Content-Type: application/json' -d '{}')
		fi
	fi
	"${CURL[@]}" "${a[@]}" "$URL$2"
}
hdr() { tr -d '\r' <"$TMP/h" | awk -v h="$1" \
    -F': ' 'tolower($1) == tolower(h) { print $2; exit }'; }
# The error body without the per-request ids.
shape() { jq -c '.error | del(.error_id, .request_id)' "$TMP/b" 2>/dev/null; }

# Resources of org A.
t_ctl credits grant --org "$ORG_A" --user "roles-u-$SFX" --amount 50 \
    --anchor "roles-$SFX" >/dev/null
"${CURL[@]}" -o "$TMP/res" -X POST "$URL/api/v1/credit-reservations" \
    -H "Authorization: Bearer ${KA[owner]}" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: roles-res-$SFX" \
    -d "{\"user_id\":\"roles-u-$SFX\",\"amount\":5,\"reservation_key\":\"roles-$SFX\"}"
RES_ID=$(jq -r '.id // .reservation_id // empty' "$TMP/res")
EV_ID=$("${CURL[@]}" -X POST "$URL/api/v1/evidence" \
    -H "Authorization: Bearer ${KA[owner]}" -H "Idempotency-Key: roles-ev-$SFX" \
    -H 'Content-Type: application/octet-stream' --data-binary "roles $SFX" |
    jq -r '.id // empty')
EXP_ID=$("${CURL[@]}" -X POST "$URL/api/v1/exports" \
    -H "Authorization: Bearer ${KA[owner]}" -H "Idempotency-Key: roles-exp-$SFX" \
    -H 'Content-Type: application/json' -d "{\"evidence_ids\":[\"$EV_ID\"]}" |
    jq -r '.id // empty')
CAMP_ID=$("${CURL[@]}" -X POST "$URL/api/v1/campaigns" \
    -H "Authorization: Bearer ${KA[owner]}" -H "Idempotency-Key: roles-camp-$SFX" \
    -H 'Content-Type: application/json' \
    -d '{"name":"roles","message":"hello","recipients":["+66810000001"]}' |
    jq -r '.id // empty')
# An error group of org A: a browser report under its key.
"${CURL[@]}" -o /dev/null -X POST "$URL/api/v1/client-errors" \
    -H "Authorization: Bearer ${KA[owner]}" -H 'Content-Type: application/json' \
    -d "{\"message\":\"roles $SFX\"}"
ERR_ID=$("${CURL[@]}" -H "Authorization: Bearer ${KA[owner]}" \
    "$URL/api/v1/admin/errors?limit=1" | jq -r '.groups[0].id // empty')
# The chat route limits per client IP too (one window for every org on
# 127.0.0.1): a script just before may have used it up, so wait it out.
for _ in 1 2 3; do
	CHAT=$("${CURL[@]}" -o /dev/null -D "$TMP/chat.h" -w '%{http_code}' \
	    -X POST "$URL/api/v1/chat" \
	    -H "Authorization: Bearer ${KA[owner]}" -H 'Content-Type: application/json' \
	    -d "{\"channel\":\"web\",\"user_id\":\"roles-c-$SFX\",\"message\":\"hello\"}")
	[ "$CHAT" = 429 ] || break
	ra=$(tr -d '\r' <"$TMP/chat.h" | awk -F': ' 'tolower($1) == "retry-after" { print $2 + 0 }' | head -n 1)
	sleep "${ra:-1}"
done
t_match "org A has a reservation, an evidence, an export, a campaign and an error group" \
    "^[0-9a-f-]{36} [0-9a-f-]{36} [0-9a-f-]{36} [0-9a-f-]{36} [0-9a-f-]{36}$" \
    "$RES_ID $EV_ID $EXP_ID $CAMP_ID $ERR_ID"
t_eq "org A has a chat session (POST /api/v1/chat)" 200 "$CHAT"

# res_for PATTERN real|fake: the path with org A's resource (real) or a
# made-up one (fake) in its placeholders; empty when the kind is unknown.
res_for() {
	local p=$1 fake
	fake=$(cat /proc/sys/kernel/random/uuid)
	case $p in
	/api/v1/accounts/\{\})
		[ "$2" = real ] && echo "/api/v1/accounts/roles-u-$SFX" ||
		    echo "/api/v1/accounts/roles-nobody-$SFX"
		;;
	/api/v1/credit-reservations/\{\}/*)
		[ "$2" = real ] && echo "${p/\{\}/$RES_ID}" || echo "${p/\{\}/$fake}"
		;;
	/api/v1/exports/\{\}*)
		[ "$2" = real ] && echo "${p/\{\}/$EXP_ID}" || echo "${p/\{\}/$fake}"
		;;
	/api/v1/campaigns/\{\}*)
		[ "$2" = real ] && echo "${p/\{\}/$CAMP_ID}" || echo "${p/\{\}/$fake}"
		;;
	/api/v1/admin/errors/\{\})
		[ "$2" = real ] && echo "${p/\{\}/$ERR_ID}" || echo "${p/\{\}/$fake}"
		;;
	/api/v1/chat/sessions/\{\}/\{\})
		[ "$2" = real ] && echo "/api/v1/chat/sessions/web/roles-c-$SFX" ||
		    echo "/api/v1/chat/sessions/web/roles-nobody-$SFX"
		;;
	esac
}

# Another org's ids: org B's key of the route's min_role, before the role
# matrix (which may commit, cancel or delete org A's resources).
while IFS= read -r row; do
	auth=$(jq -r .auth <<<"$row")
	pat=$(jq -r .pattern <<<"$row")
	name=$(jq -r .name <<<"$row")
	m=$(jq -r .method <<<"$row")
	case $pat in *'{}'*) ;; *) continue ;; esac
	[ "$auth" = key ] || continue # public ids: no org to cross
	real=$(res_for "$pat" real)
	if [ -z "$real" ]; then
		t_fail "$name: org A has a resource for $pat" \
		    "res_for in tests/e2e/roles.sh knows no resource kind for it"
		continue
	fi
	key=${KB[$(jq -r .min_role <<<"$row")]}
	c1=$(call "$m" "$(res_for "$pat" fake)" "$key")
	s1=$(shape)
	b1=$(cat "$TMP/b")
	c2=$(call "$m" "$real" "$key")
	s2=$(shape)
	if [ "$name" = account_get ]; then
		t_eq "$name: another org's user id answers like a made-up one" \
		    "$c1 $(jq -c 'del(.user_id)' <<<"$b1")" \
		    "$c2 $(jq -c 'del(.user_id)' "$TMP/b")"
		t_eq "$name: another org's user shows none of org A's credits" \
		    0 "$(jq -r .balance "$TMP/b")"
		continue
	fi
	t_eq "$name: another org's id is 404 NOT_FOUND" "404 NOT_FOUND" \
	    "$c2 $(jq -r .error.error_code "$TMP/b")"
	t_eq "$name: another org's id answers like a made-up id" "$c1 $s1" "$c2 $s2"
done <"$ROUTES"

# An evidence id is only ever named in a body: POST /api/v1/exports.
ev_export() {
	"${CURL[@]}" -o "$TMP/b" -w '%{http_code}' -X POST "$URL/api/v1/exports" \
	    -H "Authorization: Bearer ${KB[member]}" -H 'Content-Type: application/json' \
	    -d "{\"evidence_ids\":[\"$1\"]}"
}
c1=$(ev_export "$(cat /proc/sys/kernel/random/uuid)")
s1=$(shape)
c2=$(ev_export "$EV_ID")
t_eq "export_create: another org's evidence id is 404 NOT_FOUND" "404 NOT_FOUND" \
    "$c2 $(jq -r .error.error_code "$TMP/b")"
t_eq "export_create: another org's evidence id answers like a made-up one" \
    "$c1 $s1" "$c2 $(shape)"

# The role matrix, on org A's real resources where the path has ids.
check_rate_headers() { # NAME: the last answer carries the three headers
	local h missing=
	for h in X-RateLimit-Limit X-RateLimit-Remaining X-RateLimit-Reset; do
		[ -n "$(hdr $h)" ] || missing="$missing $h"
	done
	if [ -z "$missing" ]; then t_ok "$1"; else t_fail "$1" "missing:$missing"; fi
}
check_403() { # NAME: the last answer is the contract's 403
	local rid
	rid=$(hdr X-Request-ID)
	t_eq "$1" "403 FORBIDDEN false none application/json true true $rid" \
	    "$2 $(jq -r '.error | "\(.error_code) \(.retryable) \(.retry_strategy)"' "$TMP/b") $(hdr Content-Type | cut -d';' -f1) $(jq -r '.error | (.message|type == "string" and length > 0) and (.error_hint|type == "string")' "$TMP/b") $(jq -r --arg re "$UUID_RE" '.error.error_id | test($re)' "$TMP/b") $(jq -r .error.request_id "$TMP/b")"
}
while IFS= read -r row; do
	auth=$(jq -r .auth <<<"$row")
	pat=$(jq -r .pattern <<<"$row")
	name=$(jq -r .name <<<"$row")
	m=$(jq -r .method <<<"$row")
	raw=$(jq -r 'if (.flags|index("raw_body")) then "raw" else "" end' <<<"$row")
	limited=$(jq -r 'if .rate then 1 else "" end' <<<"$row")
	path=$pat
	case $pat in *'{}'*)
		path=$(res_for "$pat" real)
		[ -n "$path" ] || path=${pat//\{\}/roles-x}
		;;
	esac
	case $auth in
	none)
		c=$(call "$m" "$path" "" "$raw")
		t_match "$name: no key is not 401/403 (public)" "$NOT_401_403" "$c"
		;;
	session)
		c=$(call "$m" "$path" "" "$raw")
		t_eq "$name: no session is 401 UNAUTHENTICATED" "401 UNAUTHENTICATED" \
		    "$c $(jq -r .error.error_code "$TMP/b")"
		for role in owner admin member; do
			c=$(call "$m" "$path" "${KA[$role]}" "$raw")
			t_eq "$name: an $role key is 401 (a session route)" \
			    "401 UNAUTHENTICATED" "$c $(jq -r .error.error_code "$TMP/b")"
		done
		;;
	key | optional)
		c=$(call "$m" "$path" "" "$raw")
		if [ "$auth" = key ]; then
			t_eq "$name: no key is 401 UNAUTHENTICATED with WWW-Authenticate" \
			    "401 UNAUTHENTICATED Bearer" \
			    "$c $(jq -r .error.error_code "$TMP/b") $(hdr WWW-Authenticate)"
			[ -z "$limited" ] ||
			    check_rate_headers "$name: the 401 without a key carries X-RateLimit-*"
			rem=$(hdr X-RateLimit-Remaining)
		else
			t_match "$name: no key is not 401/403 (optional)" "$NOT_401_403" "$c"
		fi
		c=$(call "$m" "$path" "$BADKEY" "$raw")
		t_eq "$name: a made-up key is 401 UNAUTHENTICATED" "401 UNAUTHENTICATED" \
		    "$c $(jq -r .error.error_code "$TMP/b")"
		if [ -n "$limited" ]; then
			check_rate_headers "$name: the 401 of a made-up key carries X-RateLimit-*"
			[ "$auth" = optional ] ||
			    t_ge "$name: a 401 is not counted (Remaining not lower after one)" \
				"${rem:-x}" "$(hdr X-RateLimit-Remaining)"
		fi
		min=$(jq -r '.min_role // "member"' <<<"$row")
		for role in owner admin member; do
			c=$(call "$m" "$path" "${KA[$role]}" "$raw")
			if [ "$auth" = key ] && [ "$(rank $role)" -lt "$(rank "$min")" ]; then
				check_403 "$name: $role (below $min) is 403 FORBIDDEN, contract body" "$c"
				[ -z "$limited" ] ||
				    check_rate_headers "$name: the 403 of $role carries X-RateLimit-*"
			else
				t_match "$name: $role (min $min) is not 401/403 (got $c)" \
				    "$NOT_401_403" "$c"
			fi
		done
		;;
	esac
done <"$ROUTES"

t_done
