#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The console in a real browser (docs/console.md): headless chromium
# (Debian's chromium + chromium-driver, driven by python3-selenium,
# tests/browser/console.py) against the stack's nginx. Set-up here: an org
# with some activity (a chat turn, credits granted and booked), an owner
# key to read the same overview the page shows, and an owner and a member
# user. The browser then checks: a wrong password is refused on the page;
# the owner's login shows the overview with the API's numbers and its
# charts; a member is refused (the server's 403 shown); the cookie's
# attributes; a cookie POST without X-CSRF-Token is 403; logout returns to
# the login form and the old cookie replayed with curl is 401; an invite
# link sets a password once, then that user logs in.
# Screenshots: $BW_RUN/artifacts/browser/*.png (kept with --keep).
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG BW_RUN

for b in chromium chromedriver; do
	if ! command -v "$b" >/dev/null; then
		t_fail "$b is installed" "apt-get install chromium chromium-driver python3-selenium (dev/up does)"
		t_done
	fi
done

URL=$BULWARK_URL
SFX=$$-$RANDOM
CURL=(curl -sk --max-time 30)

ORG=$(t_ctl org create --name "browser-$SFX" | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)
MKEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
OWNER=owner-$SFX@example.test
MEMBER=member-$SFX@example.test
PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
ok=0
printf '%s' "$PW" | t_ctl user add --org "$ORG" --email "$OWNER" --role owner \
    --password-stdin >/dev/null && ok=$((ok + 1))
printf '%s' "$PW" | t_ctl user add --org "$ORG" --email "$MEMBER" --role member \
    --password-stdin >/dev/null && ok=$((ok + 1))
t_eq "bulwarkctl user add: an owner and a member" 2 "$ok"
# An admin with an invite link instead of a password.
ADMIN=admin-$SFX@example.test
INVITE=$(t_ctl user add --org "$ORG" --email "$ADMIN" --role admin </dev/null |
    jq -r '.invite_token // empty')
t_match "bulwarkctl user add without a password: an invite token" \
    '^[A-Za-z0-9_-]{43}$' "$INVITE"

# Activity the overview must show: a budget and a priced model, a chat
# turn, credits, a job waiting in a queue no worker reads, an error report.
M="browser-$SFX"
t_ctl price set --model "$M" --input-micros-per-mtok 1000000 \
    --output-micros-per-mtok 2000000 >/dev/null
t_ctl budget set --org "$ORG" --daily-micros 2000 --primary-model "$M" \
    --fallback-model "$M" --no-downgrade >/dev/null
Q=browser-$$
t_sql "INSERT INTO jobs (queue, job_key, org_id, run_at) VALUES
    ('$Q', 'j-$SFX', '$ORG', now() - interval '90 seconds')" >/dev/null
t_on_exit "t_sql \"DELETE FROM jobs WHERE queue = '$Q'\" >/dev/null"
c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/client-errors" \
    -H "Authorization: Bearer $MKEY" -H 'Content-Type: application/json' \
    -d "{\"message\":\"TypeError: browser-$SFX\",\"source\":\"/console/x.js\",\"line\":1,\"column\":1}")
t_match "an error report of the org (2xx)" '^2[0-9][0-9]$' "$c"
for _ in 1 2 3 4; do
	c=$("${CURL[@]}" -o /dev/null -D "$TMP/chat.h" -w '%{http_code}' \
	    -X POST "$URL/api/v1/chat" -H "Authorization: Bearer $MKEY" \
	    -H 'Content-Type: application/json' \
	    -d "{\"channel\":\"web\",\"user_id\":\"b-$SFX\",\"message\":\"hello\"}")
	[ "$c" = 429 ] || break
	sleep "$(tr -d '\r' <"$TMP/chat.h" | awk -F': ' 'tolower($1) == "retry-after" { print $2 + 0 }' | head -n 1)"
done
t_eq "a chat turn in the org (200)" 200 "$c"
t_ctl credits grant --org "$ORG" --user "b-$SFX" --amount 40 \
    --anchor "browser-$SFX" >/dev/null
c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/bookings" \
    -H "Authorization: Bearer $MKEY" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: browser-$SFX" \
    -d "{\"user_id\":\"b-$SFX\",\"class_id\":\"spin\",\"credits\":3}")
t_eq "40 credits granted, a booking of 3 (201)" 201 "$c"

ART=$BW_RUN/artifacts/browser
mkdir -p "$ART"
BROWSER_URL=$URL BROWSER_KEY=$KEY BROWSER_OWNER=$OWNER \
    BROWSER_MEMBER=$MEMBER BROWSER_PW=$PW BROWSER_ART=$ART \
    BROWSER_ADMIN=$ADMIN BROWSER_INVITE=$INVITE \
    BROWSER_TMP=$TMP /usr/bin/python3 "$BW_TOP/tests/browser/console.py" ||
    T_FAILED=$((T_FAILED + 1)) # its "not ok" lines are counted as printed
t_done
