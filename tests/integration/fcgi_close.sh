#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A child closes its connection as soon as it has answered (fcgi/req.c,
# req_stdin_end()): libfcgi's own close shuts down its sending side and
# then waits, reading, until nginx closes first. That wait is one more
# wake-up of the child per request, and a child that lingers is not
# accepting. Shown on the sockets: a client that has read the whole answer
# (up to FCGI_END_REQUEST) and keeps its end open finds the child's end
# closed (a write fails: EPIPE) when the request's stdin had ended: a GET,
# a chat POST whose body was read whole. A POST refused before its body is
# read keeps libfcgi's lingering close (the write is still taken: the
# child drains what nginx still sends), and through nginx such a refusal
# with 512 KiB behind it is a 401, never a 502 (nginx never meets a
# reset while it sends). Bounded: a handful of requests, a few seconds.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_FCGI_SOCKET BW_RUN BW_DEMO_KEY BULWARK_URL

API=$BW_FCGI_SOCKET
CHAT=$BW_RUN/fcgi-chat.sock

# probe SOCKET METHOD PATH AUTH BODY_BYTES|JSON: "<status> closed|lingers"
probe() {
	python3 - "$@" <<'EOF'
import os, socket, struct, sys, time
sock, method, path, auth, body = sys.argv[1:6]
sys.path.insert(0, os.environ["BW_TOP"] + "/tests/lib")
from fcgi_req import record, nv, FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN, \
    FCGI_STDOUT, FCGI_END
data = (b"x" * int(body)) if body.isdigit() else body.encode()
params = {"REQUEST_METHOD": method, "DOCUMENT_URI": path,
          "REQUEST_URI": path, "SCRIPT_NAME": path, "QUERY_STRING": "",
          "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
          "HTTPS": "on", "CONTENT_TYPE": "application/json",
          "CONTENT_LENGTH": str(len(data)),
          "HTTP_AUTHORIZATION": "Bearer " + auth}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sock)
msg = record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0))
msg += record(FCGI_PARAMS, 1, b"".join(nv(k, v) for k, v in params.items()))
msg += record(FCGI_PARAMS, 1, b"")
msg += record(FCGI_STDIN, 1, data) + record(FCGI_STDIN, 1, b"")
s.sendall(msg)
buf, out, ended = b"", b"", False
while not ended:
    b = s.recv(65536)
    if not b:
        break
    buf += b
    while len(buf) >= 8:
        _, t, _, n, pad, _ = struct.unpack(">BBHHBB", buf[:8])
        if len(buf) < 8 + n + pad:
            break
        if t == FCGI_STDOUT:
            out += buf[8:8 + n]
        elif t == FCGI_END:
            ended = True
        buf = buf[8 + n + pad:]
status = "000"
for line in out.split(b"\r\n\r\n")[0].split(b"\r\n"):
    if line.lower().startswith(b"status:"):
        status = line.split()[1].decode()
# The answer is whole and our end stays open: does the child's?
state = "lingers"
end = time.monotonic() + 1.0
try:
    while time.monotonic() < end:
        s.send(b"\0" * 8)
        time.sleep(0.1)
except OSError:
    state = "closed"
print(status if ended else "000", state)
EOF
}

got=$(probe "$API" GET /health - 0)
t_match "GET /health (no body): the child closed once it answered" \
    '^(200|503) closed$' "$got"
got=$(probe "$CHAT" POST /api/v1/chat "$BW_DEMO_KEY" '{}')
t_match "a chat POST whose body was read whole: closed once answered" \
    '^4[0-9][0-9] closed$' "$got"
got=$(probe "$CHAT" POST /api/v1/chat "bwk_not_a_key" 65536)
t_eq "a POST refused before its body is read: 401, libfcgi's lingering close kept" \
    "401 lingers" "$got"

# Through nginx: refusals with a body behind them are answered, never 502.
# From an address of this run's own (nginx's limit per address is shared
# with whatever called from 127.0.0.1 just before).
NET=127.$((RANDOM % 150 + 100)).$((RANDOM % 250 + 1))
head -c 524288 /dev/zero | tr '\0' 'x' >"$TMP/big"
codes=""
for i in $(seq 1 20); do
	codes+="$(curl -sk --max-time 20 -o /dev/null -w '%{http_code}' \
	    --interface "$NET.1" -H 'Authorization: Bearer bwk_not_a_key' \
	    -H 'Content-Type: application/json' --data-binary @"$TMP/big" \
	    "$BULWARK_URL/api/v1/chat") "
done
t_eq "20 refused POSTs of 512 KiB through nginx: each 401" \
    "$(printf '401 %.0s' $(seq 1 20))" "$codes"
codes=""
for i in $(seq 1 20); do
	codes+="$(curl -sk --max-time 20 -o /dev/null -w '%{http_code}' \
	    --interface "$NET.2" -H "Authorization: Bearer $BW_DEMO_KEY" \
	    -H 'Content-Type: application/json' --data-binary '{}' \
	    "$BULWARK_URL/api/v1/chat") "
done
t_match "20 chat POSTs through nginx, their bodies read whole: each answered (4xx), none 502" \
    '^(4[0-9][0-9] )+$' "$codes"
t_done
