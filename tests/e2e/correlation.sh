#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The correlation id follows a request into the workers (issue 10): a
# client's X-Correlation-ID, sent through nginx over HTTPS, names the
# fcgi's log lines of the request, the job row it enqueues, and every log
# line the worker writes for that job: the export worker for an export, the
# chat worker for a LINE webhook's turn.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_RUN

URL=$BULWARK_URL
CURL=(curl -sk --max-time 20)
FCGI_LOG=$BW_RUN/log/bulwark-fcgi.log
EXPORT_LOG=$BW_RUN/log/export.log
CHAT_LOG=$BW_RUN/log/chat.log
SFX=$$-$(date +%s)

lines() { grep -c "\"correlation_id\":\"$2\"" "$1" 2>/dev/null || true; }

ORG=$(t_ctl org create --name "corr-$SFX" --tier pro | jq -r .id)
KEY=$(t_ctl key create --org "$ORG" --role owner | jq -r .key)

# --- an export ---------------------------------------------------------
C1="corr-export-$SFX"
R=$("${CURL[@]}" -w '\n%{http_code}' -X POST "$URL/api/v1/exports" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -H "X-Correlation-ID: $C1" \
    -d '{"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z"}')
t_eq "export: created (202)" 202 "$(tail -n 1 <<<"$R")"
EXP=$(head -n 1 <<<"$R" | jq -r .id)
t_eq "export: the job row carries the correlation id" "$C1" \
    "$(t_sql "SELECT correlation_id FROM jobs WHERE queue = 'export'
        AND job_key = '$EXP'")"
# An empty range fails for good ("no evidence to export"): the job is
# still claimed, run and ended by the worker, which is what is looked at.
t_wait_sql 60 t "SELECT state IN ('ready', 'failed') FROM exports
    WHERE id = '$EXP'" || t_fail "export: finished within 60 s"
sleep 0.5 # the worker's last lines after the commit
t_ge "export: fcgi log lines of the request carry it" 1 \
    "$(lines "$FCGI_LOG" "$C1")"
t_ge "export: the export worker's lines of the job carry it" 2 \
    "$(lines "$EXPORT_LOG" "$C1")"
t_eq "export: no export worker line of this job without it" 0 \
    "$(grep "\"job_id\":\"$(t_sql "SELECT id FROM jobs WHERE queue = 'export'
        AND job_key = '$EXP'")\"" "$EXPORT_LOG" |
        grep -vc "\"correlation_id\":\"$C1\"")"

# --- a LINE webhook ----------------------------------------------------
t_ctl webhook-secret set --org "$ORG" --provider line \
    --secret "ls-$SFX" >/dev/null
t_ctl prompt set --org "$ORG" --line-token "tok-$SFX" >/dev/null
C2="corr-line-$SFX"
EV="01CORR$SFX"
printf '{"destination":"U0","events":[{"type":"message","mode":"active","webhookEventId":"%s","deliveryContext":{"isRedelivery":false},"timestamp":%d000,"source":{"type":"user","userId":"Ucorr%s"},"replyToken":"rt-corr-%s","message":{"type":"text","id":"1","text":"hello"}}]}' \
    "$EV" "$(date +%s)" "$SFX" "$SFX" >"$TMP/line.json"
SIG=$(openssl dgst -sha256 -hmac "ls-$SFX" -binary <"$TMP/line.json" | base64)
ST=$("${CURL[@]}" -o "$TMP/out" -w '%{http_code}' -X POST \
    "$URL/api/v1/webhooks/line/$ORG" -H 'Content-Type: application/json' \
    -H "X-Line-Signature: $SIG" -H "X-Correlation-ID: $C2" \
    --data-binary @"$TMP/line.json")
t_eq "line: webhook processed (200)" "200 processed" \
    "$ST $(jq -r .status "$TMP/out")"
t_eq "line: the job row carries the correlation id" "$C2" \
    "$(t_sql "SELECT correlation_id FROM jobs WHERE queue = 'chat_line'
        AND job_key = 'line:$ORG:$EV'")"
t_wait_sql 60 t "SELECT state IN ('done', 'dead') FROM jobs
    WHERE queue = 'chat_line' AND job_key = 'line:$ORG:$EV'" ||
    t_fail "line: the turn's job ended within 60 s"
sleep 0.5
t_ge "line: the chat worker's lines of the turn carry it" 1 \
    "$(lines "$CHAT_LOG" "$C2")"
t_done
