#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""LINE Messaging API reply simulator for Bulwark's tests.

Speaks POST /v2/bot/message/reply like the real API (a reply token works
once; a second use answers 400 "Invalid reply token") and records every
reply for tests: GET /_sim/replies, POST /_sim/reset, GET /_sim/health.
Faults are scripted with POST /_sim/script (see tools/sim/README.md).
Python 3 standard library only.

  python3 tools/sim/line_sim.py --port 18082 [--host 127.0.0.1] [--token T]

--token: when given, the Authorization header must be "Bearer T", else 401.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 1024 * 1024
ATTEMPTS_MAX = 1000     # reply API requests kept for GET /_sim/replies

# The real API's error messages per scripted status.
MESSAGES = {
    400: "Invalid reply token",
    401: "Authentication failed. Confirm that the access token in the "
         "authorization header is valid.",
    403: "The request is not authorized.",
    429: "The API rate limit has been exceeded. Try again later.",
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.replies = []       # accepted replies
        self.used = set()       # reply tokens used
        self.refused = 0
        self.attempts = []      # every reply API request (last ATTEMPTS_MAX)
        self.scripts = {}       # reply token ("*": any) -> statuses left

    def reset(self):
        with self.lock:
            self.replies = []
            self.used = set()
            self.refused = 0
            self.attempts = []
            self.scripts = {}

    def next_step(self, rt):
        """Pops the scripted status of a reply to rt (its own script, else
        the global one); None for the default behaviour. Under lock."""
        for key in (rt, "*"):
            left = self.scripts.get(key)
            if left:
                return left.pop(0)
        return None

    def attempt(self, rt, status, auth):
        """Records one reply API request. Under lock."""
        self.attempts.append({"ts": round(time.time(), 3),
                              "reply_token": rt, "status": status,
                              "bearer": auth[7:] if auth[:7] == "Bearer "
                              else None})
        del self.attempts[:-ATTEMPTS_MAX]


def parse_script(body):
    """Validates a POST /_sim/script body; returns (key, statuses)."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    rt = body.get("reply_token", "*")
    if not isinstance(rt, str) or not rt:
        raise ValueError("reply_token must be a non-empty string")
    sts = body.get("statuses", [])
    if not isinstance(sts, list) or len(sts) > 100:
        raise ValueError("statuses must be a list of at most 100")
    for v in sts:
        if v != "close" and (not isinstance(v, int) or isinstance(v, bool)
                             or not 200 <= v <= 599):
            raise ValueError("a status is 200..599 or \"close\"")
    return rt, list(sts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle
    # and the peer's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "bulwark-line-sim/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def do_GET(self):
        st = self.server.state
        path = urlsplit(self.path).path
        if path == "/_sim/health":
            self.send_json(200, {"ok": True})
        elif path == "/_sim/replies":
            with st.lock:
                self.send_json(200, {"replies": list(st.replies),
                                     "refused": st.refused,
                                     "attempts": list(st.attempts)})
        elif path == "/_sim/script":
            with st.lock:
                self.send_json(200, {k: list(v)
                                     for k, v in st.scripts.items()})
        else:
            self.send_json(404, {"message": "Not found"})

    def do_POST(self):
        st = self.server.state
        path = urlsplit(self.path).path
        raw = self.body()
        if raw is None:
            self.close_connection = True
            self.send_json(413, {"message": "Request too large"})
            return
        if path == "/_sim/reset":
            st.reset()
            self.send_json(200, {"ok": True})
            return
        if path == "/_sim/script":
            try:
                key, sts = parse_script(json.loads(raw))
            except ValueError as e:
                self.send_json(400, {"ok": False, "error": str(e)})
                return
            with st.lock:
                st.scripts[key] = sts
            self.send_json(200, {"ok": True})
            return
        if path != "/v2/bot/message/reply":
            self.send_json(404, {"message": "Not found"})
            return
        tok = self.server.token
        auth = self.headers.get("Authorization", "")
        if tok and auth != "Bearer " + tok:
            self.send_json(401, {"message": "Authentication failed"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_json(400, {"message": "The request body has 1 "
                                 "error(s)"})
            return
        rt = body.get("replyToken") if isinstance(body, dict) else None
        msgs = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(rt, str) or not rt or not isinstance(msgs, list) \
                or not 1 <= len(msgs) <= 5:
            self.send_json(400, {"message": "The request body has 1 "
                                 "error(s)"})
            return
        with st.lock:
            step = st.next_step(rt)
            if step is None or (isinstance(step, int) and step < 300):
                if rt in st.used:
                    st.refused += 1
                    step = 400
                else:
                    st.used.add(rt)
                    st.replies.append({"ts": round(time.time(), 3),
                                       "reply_token": rt, "messages": msgs,
                                       "auth": auth[:7] == "Bearer "})
                    step = 200
            st.attempt(rt, step if isinstance(step, int) else 0, auth)
        if step == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if step == 200:
            self.send_json(200, {})
            return
        self.send_json(step, {"message": MESSAGES.get(
            step, "An error occurred in the backend server.")})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18082)
    ap.add_argument("--token", default=None)
    a = ap.parse_args(argv)
    srv = Server((a.host, a.port), Handler)
    srv.state = State()
    srv.token = a.token
    sys.stderr.write(json.dumps({"msg": "line_sim listening",
                                 "port": srv.server_address[1]}) + "\n")
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
