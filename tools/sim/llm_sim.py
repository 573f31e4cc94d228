#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OpenAI-compatible chat completions simulator for Bulwark's tests.

Speaks POST /v1/chat/completions and GET /v1/models like the real provider,
and injects faults (statuses, delays, hangs, malformed bodies) scripted per
test through a control API under /_sim/, optionally per org. Python 3
standard library only. See tools/sim/README.md.
"""

import argparse
import json
import math
import select
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 10 * 1024 * 1024     # request bodies we accept
HANG_LIMIT_S = 120.0            # a hang gives up after this long
REPLY_CHARS = 200               # "echo: " + this many chars of the message
RECENT_MAX = 200                # requests kept for GET /_sim/requests
LAST_MAX_ORGS = 1000            # orgs whose last messages are kept
STEP_WORDS = ("hang", "malformed", "close")

# OpenAI error type/code per status (what the real API sends, roughly).
ERRORS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Forbidden."),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None,
          "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None,
          "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


class Counter:
    """requests / in_flight / max_in_flight for one scope."""

    def __init__(self):
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def enter(self):
        self.requests += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self):
        self.in_flight -= 1

    def reset(self):
        # In-flight requests stay counted so that in_flight never goes
        # negative when they finish after the reset.
        self.requests = 0
        self.max_in_flight = self.in_flight

    def as_dict(self):
        return {"requests": self.requests, "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight}


class State:
    """Scripts and counters; every access holds self.lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {}        # org (None = every org) -> script dict
        self.total = Counter()
        self.by_org = {}         # org -> Counter
        self.by_status = {}      # outcome -> count
        self.by_model = {}       # model -> count
        self.recent = []         # last RECENT_MAX request summaries
        self.last = {}           # org ("" = no header) -> last messages
        self.started = time.time()

    def set_script(self, org, script):
        with self.lock:
            self.scripts[org] = script

    def reset(self):
        with self.lock:
            self.scripts.clear()
            self._reset_stats()

    def reset_stats(self):
        with self.lock:
            self._reset_stats()

    def _reset_stats(self):
        self.total.reset()
        for org in list(self.by_org):
            c = self.by_org[org]
            if c.in_flight > 0:
                c.reset()
            else:
                del self.by_org[org]
        self.by_status.clear()
        self.by_model.clear()
        self.recent = []
        self.last = {}

    def set_last(self, org, model, messages):
        """Keeps the messages of org's last valid chat request (texts only
        in memory, for GET /_sim/last-request; never logged)."""
        with self.lock:
            key = org or ""
            self.last.pop(key, None)
            if len(self.last) >= LAST_MAX_ORGS:
                del self.last[next(iter(self.last))]
            self.last[key] = {
                "org": org, "model": model, "ts": time.time(),
                "messages": [{"role": m.get("role"),
                              "content": content_text(m.get("content"))}
                             for m in messages]}

    def last_view(self, org):
        with self.lock:
            return self.last.get(org or "")

    def enter(self, org):
        with self.lock:
            self.total.enter()
            if org:
                self.by_org.setdefault(org, Counter()).enter()

    def depart(self, org):
        """The request stops counting as in flight (its answer is about to
        be written: the client may act on it before the write returns)."""
        with self.lock:
            self.total.leave()
            if org and org in self.by_org:
                self.by_org[org].leave()

    def leave(self, org, outcome, summary, departed=False):
        with self.lock:
            if not departed:
                self.total.leave()
                if org and org in self.by_org:
                    self.by_org[org].leave()
            self.by_status[outcome] = self.by_status.get(outcome, 0) + 1
            model = summary.get("model")
            if isinstance(model, str):
                self.by_model[model] = self.by_model.get(model, 0) + 1
            self.recent.append(summary)
            if len(self.recent) > RECENT_MAX:
                del self.recent[0]

    def next_step(self, org):
        """Pops the next scripted step for org: returns (step, script).

        The org's own script wins over the global one. step is an int
        status, one of STEP_WORDS, or None (default behaviour)."""
        with self.lock:
            script = None
            if org and org in self.scripts:
                script = self.scripts[org]
            elif None in self.scripts:
                script = self.scripts[None]
            if script is None:
                return None, {}
            step = None
            if script["statuses"]:
                step = script["statuses"].pop(0)
                if script.get("cycle"):
                    # A fault pattern that repeats for a long run.
                    script["statuses"].append(step)
            return step, dict(script)

    def stats(self):
        with self.lock:
            d = self.total.as_dict()
            d["by_org"] = {o: c.as_dict() for o, c in self.by_org.items()}
            d["by_status"] = dict(self.by_status)
            d["by_model"] = dict(self.by_model)
            d["uptime_s"] = round(time.time() - self.started, 3)
            return d

    def scripts_view(self):
        with self.lock:
            return {("*" if o is None else o): dict(s, statuses=list(
                s["statuses"])) for o, s in self.scripts.items()}

    def recent_view(self, limit):
        with self.lock:
            return list(self.recent[-limit:]) if limit > 0 else []


def parse_script(body):
    """Validates a POST /_sim/script body; returns (org, script) or raises
    ValueError naming the bad field."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    known = {"org", "statuses", "delay_ms", "hang", "malformed",
             "retry_after", "output_tokens", "cycle"}
    for k in body:
        if k not in known:
            raise ValueError("unknown field: " + k)
    org = body.get("org")
    if org is not None and (not isinstance(org, str) or org == ""):
        raise ValueError("org must be a non-empty string or null")
    statuses = body.get("statuses", [])
    if not isinstance(statuses, list):
        raise ValueError("statuses must be a list")
    for s in statuses:
        if isinstance(s, bool):
            raise ValueError("statuses: bad entry")
        if isinstance(s, int):
            if s < 200 or s > 599:
                raise ValueError("statuses: status out of range: %d" % s)
        elif s not in STEP_WORDS:
            raise ValueError("statuses: entries are statuses or one of "
                             + ", ".join(STEP_WORDS))

    def nonneg(name, default):
        v = body.get(name, default)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(name + " must be a number >= 0")
        return v

    def flag(name):
        v = body.get(name, False)
        if not isinstance(v, bool):
            raise ValueError(name + " must be a boolean")
        return v

    script = {
        "statuses": list(statuses),
        "delay_ms": nonneg("delay_ms", 0),
        "hang": flag("hang"),
        "malformed": flag("malformed"),
        "cycle": flag("cycle"),
        "retry_after": nonneg("retry_after", None),
        "output_tokens": nonneg("output_tokens", None),
    }
    if script["output_tokens"] is not None:
        script["output_tokens"] = int(script["output_tokens"])
    return org, script


def content_text(content):
    """The text of a message content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return ""


def validate_chat(body):
    """Returns (error message, param) or (None, None)."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object.", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", "model"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "'messages' must be a non-empty array.", "messages"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return "messages[%d] must be an object." % i, "messages"
        if m.get("role") not in ("system", "developer", "user",
                                 "assistant", "tool"):
            return ("Invalid value for 'messages[%d].role'." % i,
                    "messages[%d].role" % i)
        c = m.get("content")
        if c is not None and not isinstance(c, (str, list)):
            return ("Invalid type for 'messages[%d].content'." % i,
                    "messages[%d].content" % i)
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)
                              or v < 1):
            return ("Invalid '%s': must be an integer >= 1." % name, name)
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool)
                          or not isinstance(t, (int, float))
                          or t < 0 or t > 2):
        return "Invalid 'temperature': must be between 0 and 2.", \
            "temperature"
    if body.get("stream"):
        return "stream=true is not supported by the simulator.", "stream"
    return None, None


def completion(body, script):
    """Builds the 200 chat.completion object for a valid request."""
    msgs = body["messages"]
    prompt_bytes = sum(len(content_text(m.get("content")).encode("utf-8"))
                       for m in msgs)
    prompt_tokens = math.ceil(prompt_bytes / 4)
    last_user = ""
    for m in msgs:
        if m.get("role") == "user":
            last_user = content_text(m.get("content"))
    reply = "echo: " + last_user[:REPLY_CHARS]
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    words = reply.split()
    finish = "stop"
    if script.get("output_tokens") is not None:
        completion_tokens = script["output_tokens"]
        if max_tokens is not None and completion_tokens > max_tokens:
            completion_tokens = max_tokens
            finish = "length"
    else:
        completion_tokens = len(words)
        if max_tokens is not None and completion_tokens > max_tokens:
            completion_tokens = max_tokens
            reply = " ".join(words[:max_tokens])
            finish = "length"
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply,
                        "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_bulwark_sim",
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle
    # and the peer's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "bulwark-llm-sim/1"
    sys_version = ""

    # -- plumbing ---------------------------------------------------------

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    def log_json(self, **kv):
        kv["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps(kv, separators=(",", ":"), sort_keys=True)
        with self.server.log_lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def read_body(self):
        """Returns the body bytes, or None after answering an error."""
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            data = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self.send_error_json(400, "Bad chunked encoding.")
                    return None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    return bytes(data)
                if len(data) + n > MAX_BODY:
                    self.close_connection = True
                    self.send_error_json(413, "Request too large.")
                    return None
                data += self.rfile.read(n)
                self.rfile.readline(16)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.send_error_json(400, "Bad Content-Length.")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self.send_error_json(413, "Request too large.")
            return None
        return self.rfile.read(n)

    def send_bytes(self, status, body, ctype="application/json",
                   headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        depart = getattr(self, "_depart", None)
        if depart is not None:
            self._depart = None
            depart()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj, headers=None):
        self.send_bytes(status, (json.dumps(obj) + "\n").encode("utf-8"),
                        headers=headers)

    def send_error_json(self, status, message=None, param=None, code=None,
                        headers=None):
        etype, ecode, emsg = ERRORS.get(
            status, ("server_error" if status >= 500
                     else "invalid_request_error", None, "Error."))
        self.send_json(status, {"error": {
            "message": message or emsg,
            "type": etype,
            "param": param,
            "code": code if code is not None else ecode,
        }}, headers=headers)

    def client_gone(self, timeout):
        """Waits up to timeout seconds; True when the client closed."""
        try:
            r, _, _ = select.select([self.connection], [], [], timeout)
            if not r:
                return False
            data = self.connection.recv(1, socket.MSG_PEEK)
            return data == b""
        except (OSError, ValueError):
            return True

    def wait(self, seconds):
        """Sleeps seconds unless the client leaves; False when it left."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self.client_gone(min(left, 0.1)):
                return False

    # -- routes -----------------------------------------------------------

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_sim/health":
            self.send_json(200, {"ok": True})
        elif url.path == "/_sim/stats":
            self.send_json(200, self.server.state.stats())
        elif url.path == "/_sim/script":
            self.send_json(200, self.server.state.scripts_view())
        elif url.path == "/_sim/requests":
            q = parse_qs(url.query)
            try:
                limit = int(q.get("limit", ["50"])[0])
            except ValueError:
                limit = 50
            self.send_json(200, {"requests":
                                 self.server.state.recent_view(limit)})
        elif url.path == "/_sim/last-request":
            q = parse_qs(url.query)
            last = self.server.state.last_view(q.get("org", [""])[0])
            if last is None:
                self.send_json(404, {"ok": False,
                                     "error": "no request of that org"})
            else:
                self.send_json(200, last)
        elif url.path == "/v1/models":
            if not self.authorized():
                self.send_error_json(401)
                return
            now = int(self.server.state.started)
            self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": now,
                 "owned_by": "bulwark-sim"} for m in self.server.models]})
        else:
            self.send_error_json(404, "Unknown path: " + url.path,
                                 code="unknown_url")

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path == "/v1/chat/completions":
            self.chat()
            return
        body = self.read_body()
        if body is None:
            return
        st = self.server.state
        if url.path == "/_sim/script":
            try:
                org, script = parse_script(json.loads(body or b"{}"))
            except ValueError as e:
                self.send_json(400, {"ok": False, "error": str(e)})
                return
            st.set_script(org, script)
            self.send_json(200, {"ok": True, "org": org, "script": script})
        elif url.path == "/_sim/reset":
            st.reset()
            self.send_json(200, {"ok": True})
        elif url.path == "/_sim/stats/reset":
            st.reset_stats()
            self.send_json(200, {"ok": True})
        else:
            self.send_error_json(404, "Unknown path: " + url.path,
                                 code="unknown_url")

    def do_PUT(self):
        self.not_allowed()

    def do_DELETE(self):
        self.not_allowed()

    def do_PATCH(self):
        self.not_allowed()

    def not_allowed(self):
        self.close_connection = True
        self.send_error_json(405, "Method not allowed.")

    def authorized(self):
        key = self.server.api_key
        if not key:
            return True
        h = self.headers.get("Authorization", "")
        return h == "Bearer " + key

    def chat(self):
        st = self.server.state
        org = self.headers.get(self.server.org_header) or None
        t0 = time.monotonic()
        summary = {"ts": round(time.time(), 3), "org": org}
        outcome = "500"
        st.enter(org)
        departed = []

        def depart():
            departed.append(True)
            st.depart(org)
        self._depart = depart
        try:
            outcome = self.chat_inner(org, summary)
        except (BrokenPipeError, ConnectionResetError):
            outcome = "client_gone"
            self.close_connection = True
        finally:
            ms = round((time.monotonic() - t0) * 1000, 1)
            summary["status"] = outcome
            summary["ms"] = ms
            self._depart = None
            st.leave(org, outcome, summary, departed=bool(departed))
            # arrived_ms and request_id: which turn's provider call
            # started when (tests/cluster/redis_failover.sh).
            self.log_json(method="POST", path="/v1/chat/completions",
                          status=outcome, org=org,
                          arrived_ms=int(summary["ts"] * 1000),
                          request_id=self.headers.get("X-Request-ID"),
                          model=summary.get("model"), ms=ms,
                          prompt_tokens=summary.get("prompt_tokens"),
                          completion_tokens=summary.get(
                              "completion_tokens"))

    def chat_inner(self, org, summary):
        """Answers one chat completion; returns the outcome label."""
        raw = self.read_body()
        if raw is None:
            return "413"
        if not self.authorized():
            self.send_error_json(401)
            return "401"
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_error_json(
                400, "We could not parse the JSON body of your request.")
            return "400"
        msg, param = validate_chat(body)
        if msg is not None:
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                summary["model"] = body["model"]
            self.send_error_json(400, msg, param=param)
            return "400"
        summary["model"] = body["model"]
        summary["max_tokens"] = body.get("max_completion_tokens",
                                         body.get("max_tokens"))
        summary["messages"] = len(body["messages"])
        self.server.state.set_last(org, body["model"], body["messages"])

        step, script = self.server.state.next_step(org)
        summary["step"] = step
        delay = (script.get("delay_ms") or 0) / 1000.0
        if delay > 0 and not self.wait(delay):
            self.close_connection = True
            return "client_gone"
        if step == "hang" or (step is None and script.get("hang")):
            # Never answer; stop when the client leaves or after the bound.
            self.close_connection = True
            if self.wait(HANG_LIMIT_S):
                return "hang_timeout"
            return "hang"
        if step == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "close"
        if step == "malformed" or (step is None and script.get("malformed")):
            self.send_bytes(200, b'{"id":"chatcmpl-broken","object":'
                            b'"chat.completion","choices":[{"index":0,')
            return "malformed"
        if isinstance(step, int) and step != 200:
            headers = {}
            if step in (429, 503) and script.get("retry_after") is not None:
                ra = script["retry_after"]
                headers["Retry-After"] = str(int(ra)) if ra == int(ra) \
                    else str(ra)
            if step >= 400:
                self.send_error_json(step, headers=headers)
            else:
                self.send_json(step, {}, headers=headers)
            return str(step)
        resp = completion(body, script)
        summary["prompt_tokens"] = resp["usage"]["prompt_tokens"]
        summary["completion_tokens"] = resp["usage"]["completion_tokens"]
        self.send_json(200, resp)
        return "200"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--api-key", default=None,
                    help="require Authorization: Bearer KEY")
    ap.add_argument("--api-key-file", default=None,
                    help="read the required key from this file")
    ap.add_argument("--org-header", default="X-Bulwark-Org",
                    help="request header that names the org (for scoping)")
    ap.add_argument("--models", default="gpt-4o,gpt-4o-mini",
                    help="comma-separated ids listed by GET /v1/models")
    args = ap.parse_args(argv)

    api_key = args.api_key
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as f:
            api_key = f.read().strip()

    srv = Server((args.host, args.port), Handler)
    srv.state = State()
    srv.api_key = api_key or None
    srv.org_header = args.org_header
    srv.models = [m for m in args.models.split(",") if m]
    srv.log_lock = threading.Lock()
    sys.stderr.write(json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "msg": "llm_sim listening", "host": args.host,
        "port": srv.server_address[1], "auth": bool(srv.api_key),
        "org_header": srv.org_header}) + "\n")
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
