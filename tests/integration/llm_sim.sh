#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The LLM provider simulator (tools/sim/llm_sim.py): OpenAI wire format,
# scripted statuses, Retry-After, delays, concurrency counters, per-org
# stats. Starts its own simulator on a free port; needs python3, curl, jq.

# shellcheck disable=SC2317 # trap handlers and helpers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"

SIM_PID=
cleanup() {
	if [ -n "$SIM_PID" ]; then
		kill "$SIM_PID" 2>/dev/null
		wait "$SIM_PID" 2>/dev/null
	fi
}
t_on_exit cleanup

KEY=sk-test-$RANDOM$RANDOM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$BW_TMP/llm_sim.log
python3 "$BW_TOP/tools/sim/llm_sim.py" --host 127.0.0.1 --port "$PORT" \
	--api-key "$KEY" 2>"$LOG" &
SIM_PID=$!
SIM=http://127.0.0.1:$PORT

up=0
for _ in $(seq 1 50); do
	if curl -sf "$SIM/_sim/health" >/dev/null 2>&1; then up=1; break; fi
	sleep 0.1
done
if [ "$up" != 1 ]; then
	t_fail "sim starts" "no answer on $SIM; log: $(head -c 500 "$LOG")"
	t_done
fi
# jqe FILTER FILE: jq -e without output.
jqe() { jq -e "$@" >/dev/null; }

t_eq "sim health" '{"ok":true}' "$(curl -s "$SIM/_sim/health" | jq -c .)"

# chat ORG BODY: POST a completion; writes headers to $BW_TMP/h, body to
# $BW_TMP/b, prints the status.
chat() {
	local org=$1 body=$2
	curl -s -o "$BW_TMP/b" -D "$BW_TMP/h" -w '%{http_code}' \
		-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		${org:+-H "X-Bulwark-Org: $org"} \
		--data "$body" "$SIM/v1/chat/completions"
}
REQ='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there simulator"}],"max_tokens":64,"temperature":0.2}'

# --- 200 shape ---
st=$(chat "" "$REQ")
t_eq "200 status" 200 "$st"
t_eq "200 content-type json" 1 "$(grep -ci '^content-type: application/json' "$BW_TMP/h")"
t_check "200 shape" jqe '
	(.id | startswith("chatcmpl-")) and .object == "chat.completion"
	and (.created | type == "number") and .model == "gpt-4o-mini"
	and (.choices | length == 1) and .choices[0].index == 0
	and .choices[0].message.role == "assistant"
	and .choices[0].message.content == "echo: hello there simulator"
	and .choices[0].finish_reason == "stop"' "$BW_TMP/b"
# prompt bytes: "be brief" (8) + "hello there simulator" (21) = 29 → ceil/4 = 8;
# completion: 4 words of the reply.
t_eq "200 usage" '8 4 12' \
	"$(jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens) \(.total_tokens)"' "$BW_TMP/b")"

st=$(chat "" '{"model":"m","messages":[{"role":"user","content":"one two three four five six"}],"max_tokens":3}')
t_eq "max_tokens caps completion (finish length)" '200 3 length' \
	"$st $(jq -r '"\(.usage.completion_tokens) \(.choices[0].finish_reason)"' "$BW_TMP/b")"

st=$(curl -s -o "$BW_TMP/b" -w '%{http_code}' -H 'Authorization: Bearer wrong' \
	--data "$REQ" "$SIM/v1/chat/completions")
t_eq "bad key 401 in OpenAI error shape" '401 invalid_api_key' \
	"$st $(jq -r '.error | select(has("message") and has("type") and has("param")) | .code' "$BW_TMP/b")"

st=$(chat "" '{"model":"m","messages":[]}')
t_eq "invalid request 400" '400 invalid_request_error messages' \
	"$st $(jq -r '"\(.error.type) \(.error.param)"' "$BW_TMP/b")"

st=$(curl -s -o "$BW_TMP/b" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$SIM/v1/models")
t_eq "models list" '200 list true' \
	"$st $(jq -r '"\(.object) \(.data | length > 0 and all(.object == "model"))"' "$BW_TMP/b")"

# --- scripted status sequence ---
curl -s -o /dev/null -X POST "$SIM/_sim/stats/reset"
curl -s -o /dev/null --data '{"statuses":[503,503,200],"retry_after":1}' "$SIM/_sim/script"
seq_got=
ra=
for _ in 1 2 3 4; do
	st=$(chat "" "$REQ")
	seq_got="$seq_got $st"
	if [ "$st" = 503 ] && [ -z "$ra" ]; then
		ra=$(tr -d '\r' <"$BW_TMP/h" | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
		etype=$(jq -r .error.type "$BW_TMP/b")
	fi
done
t_eq "status sequence 503,503,200 then default" ' 503 503 200 200' "$seq_got"
t_eq "503 Retry-After header" 1 "$ra"
t_eq "503 error type" server_error "${etype:-}"
t_eq "by_status counts" '2 2' \
	"$(curl -s "$SIM/_sim/stats" | jq -r '"\(.by_status["503"]) \(.by_status["200"])"')"

curl -s -o /dev/null --data '{"statuses":[429]}' "$SIM/_sim/script"
st=$(chat "" "$REQ")
t_eq "429 without retry_after has no Retry-After" '429 0' \
	"$st $(grep -ci '^retry-after:' "$BW_TMP/h")"

curl -s -o /dev/null --data '{"statuses":["malformed"]}' "$SIM/_sim/script"
st=$(chat "" "$REQ")
if [ "$st" = 200 ] && ! jq -e . "$BW_TMP/b" >/dev/null 2>&1; then
	t_ok "malformed is 200 with invalid JSON"
else
	t_fail "malformed is 200 with invalid JSON" "status $st, body $(head -c 200 "$BW_TMP/b")"
fi

t_eq "bad script rejected" 400 \
	"$(curl -s -o /dev/null -w '%{http_code}' --data '{"statuses":["nope"]}' "$SIM/_sim/script")"

# --- delay ---
curl -s -o /dev/null -X POST "$SIM/_sim/reset"
curl -s -o /dev/null --data '{"delay_ms":600}' "$SIM/_sim/script"
t0=$(date +%s%N)
st=$(chat "" "$REQ")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
t_eq "delayed request answers 200" 200 "$st"
t_ge "delay honoured (>= 600 ms)" 600 "$ms"
t_le "delay not excessive (< 2500 ms)" 2500 "$ms"

# --- hang: never answers; the client gives up ---
curl -s -o /dev/null --data '{"hang":true}' "$SIM/_sim/script"
t0=$(date +%s%N)
curl -s -o /dev/null -m 1 -H "Authorization: Bearer $KEY" --data "$REQ" "$SIM/v1/chat/completions"
rc=$?
t_eq "hang: client times out (curl 28)" 28 "$rc"
sleep 0.5
t_eq "hang: in_flight back to 0 after client left" 0 "$(curl -s "$SIM/_sim/stats" | jq .in_flight)"

# --- concurrency: 5 parallel delayed requests ---
curl -s -o /dev/null -X POST "$SIM/_sim/reset"
curl -s -o /dev/null --data '{"delay_ms":800}' "$SIM/_sim/script"
pids=
for i in 1 2 3 4 5; do
	curl -s -o "$BW_TMP/p$i" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
		-H "X-Bulwark-Org: org-a" --data "$REQ" "$SIM/v1/chat/completions" >"$BW_TMP/s$i" &
	pids="$pids $!"
done
sleep 0.4
mid=$(curl -s "$SIM/_sim/stats" | jq .in_flight)
# shellcheck disable=SC2086
wait $pids
t_eq "5 parallel: in_flight while running" 5 "$mid"
t_eq "5 parallel: all 200" 200200200200200 "$(cat "$BW_TMP"/s[1-5])"
stats=$(curl -s "$SIM/_sim/stats")
t_eq "5 parallel: max_in_flight" 5 "$(jq .max_in_flight <<<"$stats")"
t_eq "5 parallel: in_flight after" 0 "$(jq .in_flight <<<"$stats")"

# --- per-org scripts and stats ---
curl -s -o /dev/null -X POST "$SIM/_sim/reset"
curl -s -o /dev/null --data '{"org":"org-b","statuses":[503]}' "$SIM/_sim/script"
a=$(chat org-a "$REQ")
b1=$(chat org-b "$REQ")
b2=$(chat org-b "$REQ")
n=$(chat "" "$REQ")
t_eq "org script applies to that org only" '200 503 200 200' "$a $b1 $b2 $n"
stats=$(curl -s "$SIM/_sim/stats")
t_eq "per-org stats" '4 1 2 0 1' \
	"$(jq -r '"\(.requests) \(.by_org["org-a"].requests) \(.by_org["org-b"].requests) \(.by_org["org-b"].in_flight) \(.by_org["org-b"].max_in_flight)"' <<<"$stats")"
t_eq "stats reset" '0 {}' \
	"$(curl -s -o /dev/null -X POST "$SIM/_sim/stats/reset"; curl -s "$SIM/_sim/stats" | jq -c '"\(.requests) \(.by_org)"' -r)"

# --- the request log: one JSON line per chat request, no key text ---
if grep -v '"msg"' "$LOG" | jq -e -s 'length > 10 and all(has("status") and has("org"))' >/dev/null 2>&1; then
	t_ok "request log is JSON lines"
else
	t_fail "request log is JSON lines" "$(head -c 300 "$LOG")"
fi
t_eq "request log has no API key" 0 "$(grep -c -- "$KEY" "$LOG")"

t_done
