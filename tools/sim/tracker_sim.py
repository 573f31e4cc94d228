#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue tracker simulator for Bulwark's tests (GitHub's issues REST shape).

Speaks what bulwark-errtrack calls (lib/errtrack/file.c):

  POST /repos/{owner}/{repo}/issues            {"title","body","labels"}
       -> 201 {"number","html_url","id","title","body","labels","state"}
  GET  /repos/{owner}/{repo}/issues?state=all&labels=a,b&per_page=N
       -> 200 [issue, ...] newest first
  POST /repos/{owner}/{repo}/issues/{number}/comments  {"body"}
       -> 201 {"id","body","html_url"}; 404 when no such issue

Authorization must be "Bearer TOKEN" (--token or --token-file), else 401
{"message":"Bad credentials"}. For tests: GET /_sim/issues (every issue
with its comments, and counters), POST /_sim/reset, GET /_sim/health, and
faults through POST /_sim/faults (GET shows them):

  {"script": [503, 429, "lost", "drop", "ok", {"fault": 503, "count": 5}],
   "cycle": false, "latency_ms": 0, "retry_after": 1,
   "p": {"429": 0.1, "5xx": 0.1}, "status_5xx": 503, "seed": 1}

Each API request (not /_sim/) takes the next script entry, else one drawn
from p: a status answers it at once (429 with Retry-After); "drop" closes
the connection without an answer and without doing anything; "lost" does
the work (the issue or comment is recorded) and then closes the connection
without an answer, as when the answer is lost on the way back. latency_ms
delays every API answer. Python 3 standard library only.

  python3 tools/sim/tracker_sim.py --port 18084 [--host 127.0.0.1]
      [--token T | --token-file F]
"""

import argparse
import json
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 256 * 1024
STEP_WORDS = ("ok", "drop", "lost")
ISSUES = re.compile(r"^/repos/([A-Za-z0-9._-]+)/([A-Za-z0-9._-]+)/issues$")
COMMENTS = re.compile(
    r"^/repos/([A-Za-z0-9._-]+)/([A-Za-z0-9._-]+)/issues/([0-9]+)/comments$")


def parse_step(s):
    if isinstance(s, bool):
        raise ValueError("script: bad entry")
    if isinstance(s, int):
        if s in (200, 201):
            return "ok"
        if s == 429 or 400 <= s <= 599:
            return s
        raise ValueError("script: a status is 201, 4xx or 5xx")
    if s in STEP_WORDS:
        return s
    raise ValueError("script: entries are statuses or one of "
                     + ", ".join(STEP_WORDS))


def _num(body, name, default, lo=0):
    v = body.get(name, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise ValueError(name + " must be a number >= " + str(lo))
    return v


def parse_faults(body):
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    known = {"script", "cycle", "latency_ms", "retry_after", "p",
             "status_5xx", "seed"}
    for k in body:
        if k not in known:
            raise ValueError("unknown field: " + k)
    script = []
    raw = body.get("script", [])
    if not isinstance(raw, list):
        raise ValueError("script must be a list")
    for e in raw:
        if isinstance(e, dict):
            n = int(_num(e, "count", 1, 1))
            script.extend([parse_step(e.get("fault"))] * min(n, 100000))
        else:
            script.append(parse_step(e))
    p = body.get("p", {})
    if not isinstance(p, dict) or set(p) - {"429", "5xx"}:
        raise ValueError("p: keys are 429 and 5xx")
    for v in p.values():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                not 0 <= v <= 1:
            raise ValueError("p values must be in 0..1")
    s5 = int(_num(body, "status_5xx", 503, 500))
    if s5 > 599:
        raise ValueError("status_5xx must be 500..599")
    return {
        "script": script,
        "cycle": bool(body.get("cycle", False)),
        "latency_ms": _num(body, "latency_ms", 0),
        "retry_after": int(_num(body, "retry_after", 1)),
        "p": p,
        "status_5xx": s5,
        "seed": body.get("seed"),
    }


NO_FAULTS = parse_faults({})


class State:
    """Issues, comments, counters and faults; every access holds lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rng = random.Random(0)
        self.reset()

    def reset(self):
        self.issues = []        # dicts, in filing order
        self.comment_seq = 0
        self.requests = 0       # API requests (not /_sim/)
        self.refused = 0        # 401 answers
        self.faulted = 0        # scripted or drawn faults
        self.faults = dict(NO_FAULTS)

    def next_step(self):
        f = self.faults
        if f["script"]:
            step = f["script"].pop(0)
            if f["cycle"]:
                f["script"].append(step)
            return step
        r = self.rng.random()
        if r < f["p"].get("429", 0):
            return 429
        if r < f["p"].get("429", 0) + f["p"].get("5xx", 0):
            return f["status_5xx"]
        return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tracker_sim/1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        raw = self.rfile.read(n) if n > 0 else b""
        return json.loads(raw.decode() or "null")

    def shut(self):
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def base(self):
        host = self.headers.get("Host") or "tracker.local"
        return "http://" + host

    # -- the simulator's own routes ---------------------------------------

    def sim_get(self, url):
        st = self.server.state
        if url.path == "/_sim/health":
            self.send_json(200, {"ok": True})
        elif url.path == "/_sim/issues":
            with st.lock:
                self.send_json(200, {
                    "issues": st.issues, "requests": st.requests,
                    "refused": st.refused, "faulted": st.faulted})
        elif url.path == "/_sim/faults":
            with st.lock:
                self.send_json(200, st.faults)
        else:
            self.send_json(404, {"message": "Not Found"})

    def sim_post(self, url):
        st = self.server.state
        if url.path == "/_sim/reset":
            with st.lock:
                st.reset()
            self.send_json(200, {"ok": True})
            return
        if url.path == "/_sim/faults":
            try:
                f = parse_faults(self.read_json())
            except ValueError as e:
                self.send_json(400, {"message": str(e)})
                return
            with st.lock:
                st.faults = f
                if f["seed"] is not None:
                    st.rng.seed(f["seed"])
            self.send_json(200, f)
            return
        self.send_json(404, {"message": "Not Found"})

    # -- the API -------------------------------------------------------

    def authorized(self):
        return self.headers.get("Authorization") == \
            "Bearer " + self.server.token

    def begin(self):
        """Counts the request, checks the token, applies latency and the
        next fault. Returns the step ("ok" or "lost") to go on with, or
        None when the request was answered or dropped."""
        st = self.server.state
        with st.lock:
            st.requests += 1
            if not self.authorized():
                st.refused += 1
                step = 401
            else:
                step = st.next_step()
                if step != "ok":
                    st.faulted += 1
            lat = st.faults["latency_ms"] / 1000.0
            ra = st.faults["retry_after"]
        if lat > 0:
            time.sleep(lat)
        if step == 401:
            self.send_json(401, {"message": "Bad credentials"})
            return None
        if step == "drop":
            self.shut()
            return None
        if isinstance(step, int):
            hdr = {"Retry-After": str(ra)} if step == 429 else None
            self.send_json(step, {"message": "simulated fault"}, hdr)
            return None
        return step

    def answer(self, step, status, obj):
        if step == "lost":
            self.shut()
        else:
            self.send_json(status, obj)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            self.sim_get(url)
            return
        m = ISSUES.match(url.path)
        if not m:
            self.send_json(404, {"message": "Not Found"})
            return
        step = self.begin()
        if step is None:
            return
        q = parse_qs(url.query)
        want = set(x for x in (q.get("labels", [""])[0]).split(",") if x)
        per = min(int(q.get("per_page", ["30"])[0] or 30), 100)
        repo = m.group(1) + "/" + m.group(2)
        st = self.server.state
        with st.lock:
            out = [i for i in reversed(st.issues) if i["repo"] == repo and
                   want <= set(lb["name"] for lb in i["labels"])][:per]
            out = [{k: v for k, v in i.items() if k != "comment_list"}
                   for i in out]
        self.answer(step, 200, out)

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            self.sim_post(url)
            return
        mi = ISSUES.match(url.path)
        mc = COMMENTS.match(url.path)
        if not mi and not mc:
            self.send_json(404, {"message": "Not Found"})
            return
        try:
            body = self.read_json()
        except ValueError:
            body = None
        step = self.begin()
        if step is None:
            return
        if not isinstance(body, dict) or \
                not isinstance(body.get("title" if mi else "body"), str):
            self.send_json(422, {"message": "Validation Failed"})
            return
        st = self.server.state
        if mi:
            repo = mi.group(1) + "/" + mi.group(2)
            labels = [x for x in body.get("labels", []) if isinstance(x, str)]
            with st.lock:
                n = len(st.issues) + 1
                issue = {
                    "id": 1000 + n, "number": n, "repo": repo,
                    "html_url": "%s/%s/issues/%d" % (self.base(), repo, n),
                    "title": body["title"], "body": body.get("body") or "",
                    "labels": [{"name": x} for x in labels],
                    "state": "open", "comments": 0, "comment_list": [],
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                time.gmtime()),
                }
                st.issues.append(issue)
                ans = {k: v for k, v in issue.items() if k != "comment_list"}
            self.answer(step, 201, ans)
            return
        repo = mc.group(1) + "/" + mc.group(2)
        num = int(mc.group(3))
        with st.lock:
            issue = next((i for i in st.issues if i["repo"] == repo and
                          i["number"] == num), None)
            if issue is not None:
                st.comment_seq += 1
                c = {"id": 5000 + st.comment_seq, "body": body["body"],
                     "html_url": "%s#issuecomment-%d" % (
                         issue["html_url"], 5000 + st.comment_seq)}
                issue["comment_list"].append(c)
                issue["comments"] = len(issue["comment_list"])
        if issue is None:
            self.send_json(404, {"message": "Not Found"})
            return
        self.answer(step, 201, c)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18084)
    ap.add_argument("--token", default=None)
    ap.add_argument("--token-file", default=None)
    args = ap.parse_args(argv)
    token = args.token
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    if not token:
        ap.error("--token or --token-file is required")
    srv = Server((args.host, args.port), Handler)
    srv.state = State()
    srv.token = token
    sys.stderr.write(json.dumps({"msg": "tracker_sim listening",
                                 "host": args.host,
                                 "port": srv.server_address[1]}) + "\n")
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
