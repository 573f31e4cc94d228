#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OpenAI-compatible chat completions simulator for Bulwark's tests.

Speaks POST /v1/chat/completions and GET /v1/models like the real provider,
and injects faults (statuses, delays, hangs, malformed bodies) scripted per
test through a control API under /_sim/, optionally per org. Python 3
standard library only. See tools/sim/README.md.
"""

import argparse
import asyncio
import json
import math
import socket
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
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


class Sim:
    """What every connection shares: the state and the options."""

    def __init__(self, api_key, org_header, models):
        self.state = State()
        self.api_key = api_key or None
        self.org_header = org_header.lower()
        self.models = models


class BadRequest(Exception):
    """A request we cannot parse: answered with 400 and the connection
    closed."""


class Conn:
    """One client connection: HTTP/1.1 requests in turn, kept alive.

    The simulator serves every connection from one thread (asyncio): a
    thread per kept-alive connection (http.server) cost 0.42 ms of CPU per
    call with 32 busy connections, most of it waking threads and passing
    the GIL, where one loop costs 0.06 (docs/chat-cost.md)."""

    def __init__(self, sim, reader, writer):
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.close_connection = False
        self.headers = {}
        self.depart_hook = None

    # -- plumbing ---------------------------------------------------------

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @staticmethod
    def log_json(**kv):
        kv["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sys.stderr.write(json.dumps(kv, separators=(",", ":"),
                                    sort_keys=True) + "\n")
        sys.stderr.flush()

    async def read_head(self):
        """Reads a request line and headers; None at a clean end of the
        connection. Raises BadRequest."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if e.partial.strip():
                raise BadRequest("Incomplete request.") from e
            return None
        except asyncio.LimitOverrunError as e:
            raise BadRequest("Request header too large.") from e
        lines = head.decode("iso-8859-1").split("\r\n")
        while lines and lines[0] == "":    # a stray CRLF between requests
            lines.pop(0)
        parts = lines[0].split() if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise BadRequest("Bad request line.")
        method, target, version = parts
        self.headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest("Bad header line.")
            self.headers.setdefault(name.lower(), value.strip())
        if len(self.headers) > 100:
            raise BadRequest("Too many headers.")
        conn = self.header("connection", "").lower()
        if version == "HTTP/1.1":
            self.close_connection = conn == "close"
        else:
            self.close_connection = conn != "keep-alive"
        if (version == "HTTP/1.1"
                and self.header("expect", "").lower() == "100-continue"):
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, target

    async def read_body(self):
        """Returns the body bytes, or None after answering an error."""
        r = self.reader
        if self.header("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                line = await r.readline()
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    await self.send_error_json(400, "Bad chunked encoding.")
                    return None
                if n == 0:
                    while (await r.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                if len(data) + n > MAX_BODY:
                    self.close_connection = True
                    await self.send_error_json(413, "Request too large.")
                    return None
                data += await r.readexactly(n)
                await r.readline()
        cl = self.header("content-length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            await self.send_error_json(400, "Bad Content-Length.")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            await self.send_error_json(413, "Request too large.")
            return None
        return await r.readexactly(n)

    async def send_bytes(self, status, body, ctype="application/json",
                         headers=None):
        """Writes one answer, head and body in one write."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        head = ["HTTP/1.1 %d %s" % (status, reason),
                "Server: bulwark-llm-sim/1",
                "Date: " + formatdate(usegmt=True),
                "Content-Type: " + ctype,
                "Content-Length: %d" % len(body)]
        for k, v in (headers or {}).items():
            head.append("%s: %s" % (k, v))
        if self.close_connection:
            head.append("Connection: close")
        if self.depart_hook is not None:
            depart, self.depart_hook = self.depart_hook, None
            depart()
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
                          + body)
        await self.writer.drain()

    async def send_json(self, status, obj, headers=None):
        await self.send_bytes(status,
                              (json.dumps(obj) + "\n").encode("utf-8"),
                              headers=headers)

    async def send_error_json(self, status, message=None, param=None,
                              code=None, headers=None):
        etype, ecode, emsg = ERRORS.get(
            status, ("server_error" if status >= 500
                     else "invalid_request_error", None, "Error."))
        await self.send_json(status, {"error": {
            "message": message or emsg,
            "type": etype,
            "param": param,
            "code": code if code is not None else ecode,
        }}, headers=headers)

    async def wait(self, seconds):
        """Sleeps seconds unless the client leaves; False when it left.

        The client's end is seen at once: the wait is a read. An HTTP/1.1
        client sends nothing while its request is open; a byte that comes
        anyway (a pipelined request) is not put back: the answer then
        closes the connection."""
        end = time.monotonic() + seconds
        try:
            data = await asyncio.wait_for(self.reader.read(1), seconds)
        except asyncio.TimeoutError:
            return True
        except ConnectionError:
            return False
        if not data:
            return False
        self.close_connection = True
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        return True

    # -- the connection ---------------------------------------------------

    async def serve(self):
        try:
            while not self.close_connection:
                try:
                    req = await self.read_head()
                except BadRequest as e:
                    self.close_connection = True
                    await self.send_error_json(400, str(e))
                    break
                if req is None:
                    break
                method, target = req
                handler = {"GET": self.do_get, "POST": self.do_post}.get(
                    method)
                if handler is None and method in ("PUT", "DELETE", "PATCH"):
                    handler = self.not_allowed
                if handler is None:
                    self.close_connection = True
                    await self.send_error_json(
                        501, "Unsupported method (%r)." % method)
                    break
                await handler(urlsplit(target))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writer.close()

    # -- routes -----------------------------------------------------------

    async def do_get(self, url):
        st = self.sim.state
        if url.path == "/_sim/health":
            await self.send_json(200, {"ok": True})
        elif url.path == "/_sim/stats":
            await self.send_json(200, st.stats())
        elif url.path == "/_sim/script":
            await self.send_json(200, st.scripts_view())
        elif url.path == "/_sim/requests":
            q = parse_qs(url.query)
            try:
                limit = int(q.get("limit", ["50"])[0])
            except ValueError:
                limit = 50
            await self.send_json(200, {"requests": st.recent_view(limit)})
        elif url.path == "/_sim/last-request":
            q = parse_qs(url.query)
            last = st.last_view(q.get("org", [""])[0])
            if last is None:
                await self.send_json(404, {"ok": False,
                                           "error": "no request of that org"})
            else:
                await self.send_json(200, last)
        elif url.path == "/v1/models":
            if not self.authorized():
                await self.send_error_json(401)
                return
            now = int(st.started)
            await self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": now,
                 "owned_by": "bulwark-sim"} for m in self.sim.models]})
        else:
            await self.send_error_json(404, "Unknown path: " + url.path,
                                       code="unknown_url")

    async def do_post(self, url):
        if url.path == "/v1/chat/completions":
            await self.chat()
            return
        body = await self.read_body()
        if body is None:
            return
        st = self.sim.state
        if url.path == "/_sim/script":
            try:
                org, script = parse_script(json.loads(body or b"{}"))
            except ValueError as e:
                await self.send_json(400, {"ok": False, "error": str(e)})
                return
            st.set_script(org, script)
            await self.send_json(200, {"ok": True, "org": org,
                                       "script": script})
        elif url.path == "/_sim/reset":
            st.reset()
            await self.send_json(200, {"ok": True})
        elif url.path == "/_sim/stats/reset":
            st.reset_stats()
            await self.send_json(200, {"ok": True})
        else:
            await self.send_error_json(404, "Unknown path: " + url.path,
                                       code="unknown_url")

    async def not_allowed(self, _url):
        self.close_connection = True
        await self.send_error_json(405, "Method not allowed.")

    def authorized(self):
        key = self.sim.api_key
        if not key:
            return True
        return self.header("authorization", "") == "Bearer " + key

    async def chat(self):
        st = self.sim.state
        org = self.header(self.sim.org_header) or None
        t0 = time.monotonic()
        summary = {"ts": round(time.time(), 3), "org": org}
        outcome = "500"
        st.enter(org)
        departed = []

        def depart():
            departed.append(True)
            st.depart(org)
        self.depart_hook = depart
        try:
            outcome = await self.chat_inner(org, summary)
        except (asyncio.IncompleteReadError, ConnectionError):
            outcome = "client_gone"
            self.close_connection = True
        finally:
            ms = round((time.monotonic() - t0) * 1000, 1)
            summary["status"] = outcome
            summary["ms"] = ms
            self.depart_hook = None
            st.leave(org, outcome, summary, departed=bool(departed))
            # arrived_ms and request_id: which turn's provider call
            # started when (tests/cluster/redis_failover.sh).
            self.log_json(method="POST", path="/v1/chat/completions",
                          status=outcome, org=org,
                          arrived_ms=int(summary["ts"] * 1000),
                          request_id=self.header("x-request-id"),
                          model=summary.get("model"), ms=ms,
                          prompt_tokens=summary.get("prompt_tokens"),
                          completion_tokens=summary.get(
                              "completion_tokens"))

    async def chat_inner(self, org, summary):
        """Answers one chat completion; returns the outcome label."""
        raw = await self.read_body()
        if raw is None:
            return "413"
        if not self.authorized():
            await self.send_error_json(401)
            return "401"
        try:
            body = json.loads(raw)
        except ValueError:
            await self.send_error_json(
                400, "We could not parse the JSON body of your request.")
            return "400"
        msg, param = validate_chat(body)
        if msg is not None:
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                summary["model"] = body["model"]
            await self.send_error_json(400, msg, param=param)
            return "400"
        summary["model"] = body["model"]
        summary["max_tokens"] = body.get("max_completion_tokens",
                                         body.get("max_tokens"))
        summary["messages"] = len(body["messages"])
        self.sim.state.set_last(org, body["model"], body["messages"])

        step, script = self.sim.state.next_step(org)
        summary["step"] = step
        delay = (script.get("delay_ms") or 0) / 1000.0
        if delay > 0 and not await self.wait(delay):
            self.close_connection = True
            return "client_gone"
        if step == "hang" or (step is None and script.get("hang")):
            # Never answer; stop when the client leaves or after the bound.
            self.close_connection = True
            if await self.wait(HANG_LIMIT_S):
                return "hang_timeout"
            return "hang"
        if step == "close":
            self.close_connection = True
            return "close"
        if step == "malformed" or (step is None and script.get("malformed")):
            await self.send_bytes(200, b'{"id":"chatcmpl-broken","object":'
                                  b'"chat.completion","choices":[{"index":0,')
            return "malformed"
        if isinstance(step, int) and step != 200:
            headers = {}
            if step in (429, 503) and script.get("retry_after") is not None:
                ra = script["retry_after"]
                headers["Retry-After"] = str(int(ra)) if ra == int(ra) \
                    else str(ra)
            if step >= 400:
                await self.send_error_json(step, headers=headers)
            else:
                await self.send_json(step, {}, headers=headers)
            return str(step)
        resp = completion(body, script)
        summary["prompt_tokens"] = resp["usage"]["prompt_tokens"]
        summary["completion_tokens"] = resp["usage"]["completion_tokens"]
        await self.send_json(200, resp)
        return "200"


async def serve(sim, host, port):
    async def on_conn(reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Nagle and the peer's delayed ACK would add ~40 ms to an
            # answer that leaves in more than one segment.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await Conn(sim, reader, writer).serve()

    srv = await asyncio.start_server(on_conn, host, port, backlog=256,
                                     limit=64 * 1024)
    sys.stderr.write(json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "msg": "llm_sim listening", "host": host,
        "port": srv.sockets[0].getsockname()[1], "auth": bool(sim.api_key),
        "org_header": sim.org_header}) + "\n")
    sys.stderr.flush()
    async with srv:
        await srv.serve_forever()


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

    sim = Sim(api_key, args.org_header,
              [m for m in args.models.split(",") if m])
    try:
        asyncio.run(serve(sim, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
