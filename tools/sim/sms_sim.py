#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SMS provider simulator for Bulwark's tests.

Speaks POST /v1/messages (API-key auth, deduplication by client_reference)
like a common SMS provider, injects faults (latency, 429, 5xx, timeouts,
connections dropped after accepting) scripted through /_sim/faults, counts
every POST per client reference, and posts delivery reports (and inbound
messages on request) back signed with Standard Webhooks. Python 3 standard
library only. See tools/sim/README.md.
"""

import argparse
import base64
import binascii
import hashlib
import heapq
import hmac
import json
import os
import random
import re
import select
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024            # request bodies we accept
MAX_REF = 128                   # client_reference, bytes
MAX_URL = 2048                  # callback_url, bytes
HANG_LIMIT_S = 120.0            # default: a hang gives up after this long
DLR_LOG_MAX = 1000              # delivery attempts kept for GET /_sim/dlr
LOOKUP_MAX = 100000             # references/numbers per lookup request
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
STEP_WORDS = ("ok", "hang", "drop", "accept_hang", "close")
PROB_ORDER = ("429", "5xx", "hang", "drop", "accept_hang", "close")
FINAL_STATES = ("delivered", "undelivered", "failed")

# GSM 03.38 basic set (a character outside it makes the text UCS-2) and
# the extension table (two septets each).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = set("^{}\\[~]|€\f")

# Provider error body per status for scripted faults.
FAULT_ERRORS = {
    429: ("rate_limited", "Too many requests; retry later."),
    500: ("internal_error", "Internal server error."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service temporarily unavailable."),
    504: ("gateway_timeout", "Gateway timeout."),
}


def mask(number):
    """A phone number as logged: the first 4 and last 2 characters."""
    if not isinstance(number, str):
        return None
    if len(number) <= 6:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


def segments(text):
    """(encoding, segments) of an SMS text as a carrier splits it."""
    if all(c in GSM_BASIC or c in GSM_EXT for c in text):
        n = sum(2 if c in GSM_EXT else 1 for c in text)
        return "GSM-7", 1 if n <= 160 else -(-n // 153)
    # UTF-16 code units: astral characters take two.
    n = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if n <= 70 else -(-n // 67)


def rfc3339_ms(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%03dZ" % int((t % 1) * 1000)


def secret_key(secret):
    """The HMAC key of a Standard Webhooks secret (whsec_<base64>)."""
    s = secret[6:] if secret.startswith("whsec_") else secret
    key = base64.b64decode(s, validate=True)
    if not key:
        raise ValueError("empty key")
    return key


def sign(secret, wid, ts, body):
    """The webhook-signature header value: v1,base64(HMAC-SHA256)."""
    mac = hmac.new(secret_key(secret), wid.encode() + b"." +
                   str(ts).encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def match_number(number, numbers, prefixes):
    return number in numbers or any(number.startswith(p) for p in prefixes)


# -- configuration and fault scripts -------------------------------------------

def _num(body, name, default, lo=0, integer=False):
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise ValueError("%s must be a number >= %s" % (name, lo))
    return int(v) if integer else v


def _flag(body, name, default):
    v = body.get(name, default)
    if not isinstance(v, bool):
        raise ValueError(name + " must be a boolean")
    return v


def _strlist(body, name, default):
    v = body.get(name, default)
    if not isinstance(v, list) or not all(isinstance(x, str) and x
                                          for x in v):
        raise ValueError(name + " must be a list of non-empty strings")
    return list(v)


def _url(body, name, default):
    v = body.get(name, default)
    if v is None:
        return None
    if not isinstance(v, str) or not v.startswith(("http://", "https://")) \
            or len(v) > MAX_URL:
        raise ValueError(name + " must be an http(s) URL or null")
    return v


def _secret(name, v):
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(name + " must be a string")
    try:
        secret_key(v)
    except (ValueError, binascii.Error):
        raise ValueError(name + " must be whsec_<base64 of the key>")
    return v


DEFAULT_CONFIG = {
    "callback_url": None, "inbound_url": None,
    "webhook_secret": None, "webhook_secrets": {},
    "dlr_enabled": True, "dlr_delay_ms": 200, "dlr_out_of_order": False,
    "dlr_duplicates": 1, "dlr_max_attempts": 3, "dlr_retry_ms": 500,
    "dlr_timeout_ms": 5000,
    "undelivered_numbers": [], "undelivered_prefixes": [],
    "failed_numbers": [], "failed_prefixes": [],
    "unknown_numbers": [], "unknown_prefixes": ["+999"],
    "max_text": 1600, "sender_id": "BULWARK", "ca_file": None,
    "dedupe": True,
}


def parse_config(body, old):
    """A POST /_sim/config body merged into old; raises ValueError."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    for k in body:
        if k not in DEFAULT_CONFIG:
            raise ValueError("unknown field: " + k)
    c = dict(old)
    c["callback_url"] = _url(body, "callback_url", old["callback_url"])
    c["inbound_url"] = _url(body, "inbound_url", old["inbound_url"])
    if "webhook_secret" in body:
        c["webhook_secret"] = _secret("webhook_secret",
                                      body["webhook_secret"])
    if "webhook_secrets" in body:
        ws = body["webhook_secrets"]
        if not isinstance(ws, dict):
            raise ValueError("webhook_secrets must be an object")
        merged = dict(old["webhook_secrets"])
        for org, s in ws.items():
            if s is None:
                merged.pop(org, None)
            else:
                merged[org] = _secret("webhook_secrets." + org, s)
        c["webhook_secrets"] = merged
    c["dlr_enabled"] = _flag(body, "dlr_enabled", old["dlr_enabled"])
    c["dlr_out_of_order"] = _flag(body, "dlr_out_of_order",
                                  old["dlr_out_of_order"])
    c["dedupe"] = _flag(body, "dedupe", old["dedupe"])
    c["dlr_delay_ms"] = _num(body, "dlr_delay_ms", old["dlr_delay_ms"])
    c["dlr_duplicates"] = _num(body, "dlr_duplicates", old["dlr_duplicates"],
                               1, True)
    c["dlr_max_attempts"] = _num(body, "dlr_max_attempts",
                                 old["dlr_max_attempts"], 1, True)
    c["dlr_retry_ms"] = _num(body, "dlr_retry_ms", old["dlr_retry_ms"])
    c["dlr_timeout_ms"] = _num(body, "dlr_timeout_ms", old["dlr_timeout_ms"],
                               1)
    c["max_text"] = _num(body, "max_text", old["max_text"], 1, True)
    if c["dlr_duplicates"] > 100:
        raise ValueError("dlr_duplicates must be <= 100")
    for k in ("undelivered_numbers", "undelivered_prefixes", "failed_numbers",
              "failed_prefixes", "unknown_numbers", "unknown_prefixes"):
        c[k] = _strlist(body, k, old[k])
    sid = body.get("sender_id", old["sender_id"])
    if not isinstance(sid, str) or not sid:
        raise ValueError("sender_id must be a non-empty string")
    c["sender_id"] = sid
    ca = body.get("ca_file", old["ca_file"])
    if ca is not None and not isinstance(ca, str):
        raise ValueError("ca_file must be a path or null")
    c["ca_file"] = ca
    return c


def config_view(c):
    """The config as GET /_sim/config shows it: secrets are not echoed."""
    v = dict(c)
    v["webhook_secret"] = "(set)" if c["webhook_secret"] else None
    v["webhook_secrets"] = {o: "(set)" for o in c["webhook_secrets"]}
    return v


def parse_step(s):
    """One script entry: an HTTP status or a word. Returns it normalised."""
    if isinstance(s, bool):
        raise ValueError("script: bad entry")
    if isinstance(s, int):
        if s in (200, 202):
            return "ok"
        if s == 429 or 500 <= s <= 599:
            return s
        raise ValueError("script: a status is 200, 202, 429 or 5xx")
    if s in STEP_WORDS:
        return s
    raise ValueError("script: entries are 200, 202, 429, 5xx or one of "
                     + ", ".join(STEP_WORDS))


def parse_faults(body):
    """Validates a POST /_sim/faults body; returns the fault settings."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    known = {"script", "cycle", "latency_ms", "jitter_ms", "p", "retry_after",
             "status_5xx", "hang_s", "seed"}
    for k in body:
        if k not in known:
            raise ValueError("unknown field: " + k)
    script = []
    raw = body.get("script", [])
    if not isinstance(raw, list):
        raise ValueError("script must be a list")
    for e in raw:
        if isinstance(e, dict):
            if set(e) - {"fault", "count"}:
                raise ValueError("script: an object is {\"fault\",\"count\"}")
            n = _num(e, "count", 1, 1, True)
            if n > 100000:
                raise ValueError("script: count must be <= 100000")
            script.extend([parse_step(e.get("fault"))] * n)
        else:
            script.append(parse_step(e))
    if len(script) > 100000:
        raise ValueError("script: at most 100000 steps")
    p = body.get("p", {})
    if not isinstance(p, dict):
        raise ValueError("p must be an object")
    probs = {}
    for k, v in p.items():
        if k not in PROB_ORDER:
            raise ValueError("p: keys are " + ", ".join(PROB_ORDER))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                not 0 <= v <= 1:
            raise ValueError("p." + k + " must be in 0..1")
        probs[k] = v
    if sum(probs.values()) > 1:
        raise ValueError("p: the probabilities add up to more than 1")
    s5 = _num(body, "status_5xx", 503, 500, True)
    if s5 > 599:
        raise ValueError("status_5xx must be 500..599")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or
                             not isinstance(seed, int)):
        raise ValueError("seed must be an integer")
    return {
        "script": script,
        "cycle": _flag(body, "cycle", False),
        "latency_ms": _num(body, "latency_ms", 0),
        "jitter_ms": _num(body, "jitter_ms", 0),
        "p": probs,
        "retry_after": _num(body, "retry_after", 1),
        "status_5xx": s5,
        "hang_s": _num(body, "hang_s", HANG_LIMIT_S),
        "seed": seed,
    }


# -- state ---------------------------------------------------------------------

class State:
    """Messages, counters, faults, config; every access holds self.lock."""

    def __init__(self, config, seed):
        self.lock = threading.Lock()
        self.base_config = dict(config)
        self.config = dict(config)
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = parse_faults({})
        self.started = time.time()
        self._clear()

    def _clear(self):
        self.messages = {}      # message_id -> message dict
        self.by_ref = {}        # client_reference -> message_id
        self.posts_by_ref = {}  # client_reference -> POSTs
        self.accepted_by_to = {}  # number -> new messages accepted
        self.posts = 0
        self.accepted = 0
        self.duplicates = 0
        self.by_outcome = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.dlr = {"scheduled": 0, "attempts": 0, "delivered": 0,
                    "gave_up": 0, "by_http_status": {}}
        self.dlr_log = []
        self.inbound = {"sent": 0, "by_http_status": {}}
        self.generation = getattr(self, "generation", 0) + 1

    def reset(self, config=False):
        with self.lock:
            self._clear()
            self.faults = parse_faults({})
            self.rng = random.Random(self.seed)
            if config:
                self.config = dict(self.base_config)

    def enter(self):
        with self.lock:
            self.posts += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def depart(self):
        with self.lock:
            self.in_flight -= 1

    def outcome(self, what):
        with self.lock:
            self.by_outcome[what] = self.by_outcome.get(what, 0) + 1

    def count_ref(self, ref):
        with self.lock:
            self.posts_by_ref[ref] = self.posts_by_ref.get(ref, 0) + 1

    def next_step(self):
        """(step, latency seconds, faults) of the next valid send."""
        with self.lock:
            f = self.faults
            step = None
            if f["script"]:
                step = f["script"].pop(0)
                if f["cycle"]:
                    f["script"].append(step)
            elif f["p"]:
                r = self.rng.random()
                acc = 0.0
                for k in PROB_ORDER:
                    acc += f["p"].get(k, 0)
                    if r < acc:
                        step = 429 if k == "429" else \
                            f["status_5xx"] if k == "5xx" else k
                        break
            lat = f["latency_ms"]
            if f["jitter_ms"] > 0:
                lat += self.rng.uniform(0, f["jitter_ms"])
            return step, lat / 1000.0, dict(f)

    def accept(self, req, org):
        """Records a send. Returns (http status, message, new): 202 new,
        200 duplicate, 409 a reference reused for another message."""
        thash = hashlib.sha256(req["text"].encode()).hexdigest()
        with self.lock:
            mid = self.by_ref.get(req["client_reference"]) \
                if self.config["dedupe"] else None
            if mid is not None:
                m = self.messages[mid]
                if m["to"] != req["to"] or m["text_sha"] != thash:
                    return 409, m, False
                self.duplicates += 1
                return 200, m, False
            mid = "SM" + uuid.uuid4().hex
            enc, segs = segments(req["text"])
            m = {"message_id": mid, "client_reference":
                 req["client_reference"], "to": req["to"],
                 "text_sha": thash, "encoding": enc, "segments": segs,
                 "created": time.time(), "status": "accepted",
                 "org": org, "callback_url": req.get("callback_url") or
                 self.config["callback_url"], "gen": self.generation}
            self.messages[mid] = m
            self.by_ref[req["client_reference"]] = mid
            self.accepted += 1
            self.accepted_by_to[req["to"]] = \
                self.accepted_by_to.get(req["to"], 0) + 1
            return 202, m, True

    def stats(self, full=False):
        with self.lock:
            refs = {}
            for n in self.posts_by_ref.values():
                refs[n] = refs.get(n, 0) + 1
            dest = {}
            for n in self.accepted_by_to.values():
                dest[n] = dest.get(n, 0) + 1
            d = {
                "posts": self.posts, "accepted": self.accepted,
                "duplicates": self.duplicates,
                "by_outcome": dict(self.by_outcome),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "refs": {"count": len(self.posts_by_ref),
                         "max_posts": max(self.posts_by_ref.values(),
                                          default=0),
                         "histogram": {str(k): v for k, v in
                                       sorted(refs.items())}},
                "destinations": {"count": len(self.accepted_by_to),
                                 "max_accepted": max(
                                     self.accepted_by_to.values(),
                                     default=0),
                                 "histogram": {str(k): v for k, v in
                                               sorted(dest.items())}},
                "dlr": dict(self.dlr,
                            by_http_status=dict(self.dlr["by_http_status"])),
                "inbound": dict(self.inbound, by_http_status=dict(
                    self.inbound["by_http_status"])),
                "uptime_s": round(time.time() - self.started, 3),
            }
            if full:
                d["posts_by_ref"] = dict(self.posts_by_ref)
                d["accepted_by_to"] = dict(self.accepted_by_to)
            return d

    def refs_view(self, refs):
        with self.lock:
            out = {}
            for r in refs:
                mid = self.by_ref.get(r)
                out[r] = {"posts": self.posts_by_ref.get(r, 0),
                          "message_id": mid, "accepted": mid is not None}
            return out

    def dest_view(self, numbers):
        with self.lock:
            return {n: self.accepted_by_to.get(n, 0) for n in numbers}

    def message_view(self, m):
        with self.lock:
            return {"message_id": m["message_id"],
                    "client_reference": m["client_reference"],
                    "to": m["to"], "status": m["status"],
                    "segments": m["segments"], "encoding": m["encoding"],
                    "created_at": rfc3339_ms(m["created"])}

    def dlr_record(self, rec, final, http_status):
        with self.lock:
            self.dlr["attempts"] += 1
            k = str(http_status)
            self.dlr["by_http_status"][k] = \
                self.dlr["by_http_status"].get(k, 0) + 1
            if final == "ok":
                self.dlr["delivered"] += 1
            elif final == "gave_up":
                self.dlr["gave_up"] += 1
            self.dlr_log.append(rec)
            del self.dlr_log[:-DLR_LOG_MAX]


# -- outgoing webhooks (delivery reports, inbound messages) --------------------

class Poster:
    """Posts signed webhooks: a heap of due jobs and a few worker threads."""

    def __init__(self, server, workers):
        self.srv = server
        self.cv = threading.Condition()
        self.heap = []
        self.seq = 0
        self.ctx_cache = (None, None, None)
        for _ in range(workers):
            threading.Thread(target=self.run, daemon=True).start()

    def push(self, due, job):
        with self.cv:
            self.seq += 1
            heapq.heappush(self.heap, (due, self.seq, job))
            self.cv.notify()

    def pending(self):
        with self.cv:
            return len(self.heap)

    def drop_all(self):
        with self.cv:
            self.heap = []

    def run(self):
        while True:
            with self.cv:
                while not self.heap or self.heap[0][0] > time.time():
                    wait = self.heap[0][0] - time.time() if self.heap \
                        else None
                    self.cv.wait(wait)
                _, _, job = heapq.heappop(self.heap)
            try:
                self.deliver(job)
            except Exception as e:  # never let a worker die
                self.srv.log(msg="dlr worker error", error=type(e).__name__)

    def ssl_context(self, ca_file):
        if not ca_file:
            return None
        try:
            mt = os.stat(ca_file).st_mtime
        except OSError:
            return None
        path, mtime, ctx = self.ctx_cache
        if path != ca_file or mtime != mt:
            ctx = ssl.create_default_context(cafile=ca_file)
            self.ctx_cache = (ca_file, mt, ctx)
        return ctx

    def post(self, url, secret, wid, body, cfg):
        """One signed POST; returns (http status or 0, answer text)."""
        ts = int(time.time())
        headers = {"Content-Type": "application/json",
                   "User-Agent": "bulwark-sms-sim/1",
                   "webhook-id": wid, "webhook-timestamp": str(ts)}
        if secret:
            headers["webhook-signature"] = sign(secret, wid, ts, body)
        req = urllib.request.Request(url, data=body, headers=headers,
                                     method="POST")
        ctx = self.ssl_context(cfg["ca_file"]) \
            if url.startswith("https://") else None
        try:
            with urllib.request.urlopen(req, timeout=cfg["dlr_timeout_ms"] /
                                        1000.0, context=ctx) as r:
                return r.status, r.read(2000).decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read(2000).decode("utf-8", "replace")
        except (OSError, ValueError) as e:
            return 0, type(e).__name__

    def deliver(self, job):
        st = self.srv.state
        with st.lock:
            if job["gen"] != st.generation:
                return          # scheduled before a reset
            cfg = dict(st.config)
            secret = cfg["webhook_secrets"].get(job["org"]) \
                if job["org"] else None
            secret = secret or cfg["webhook_secret"]
            m = st.messages.get(job.get("message_id"))
            # The status GET /v1/messages/{id} shows: a final state is
            # never replaced by "sent" (out-of-order reports).
            if m is not None and m["status"] not in FINAL_STATES:
                m["status"] = job["status"]
        code, text = self.post(job["url"], secret, job["webhook_id"],
                               job["body"], cfg)
        job["attempt"] += 1
        ok = 200 <= code < 300
        final = "ok" if ok else (
            "gave_up" if job["attempt"] >= cfg["dlr_max_attempts"]
            else "retry")
        rec = {"ts": round(time.time(), 3), "webhook_id": job["webhook_id"],
               "kind": job["kind"], "message_id": job.get("message_id"),
               "status": job.get("status"), "copy": job.get("copy", 0),
               "attempt": job["attempt"], "http_status": code,
               "answer": text[:300], "signed": bool(secret)}
        st.dlr_record(rec, final, code)
        self.srv.log(msg="webhook", kind=job["kind"],
                     webhook_id=job["webhook_id"], status=job.get("status"),
                     attempt=job["attempt"], http_status=code, result=final)
        if final == "retry":
            self.push(time.time() + cfg["dlr_retry_ms"] / 1000.0 *
                      2 ** (job["attempt"] - 1), job)

    def schedule_reports(self, m, cfg):
        """Sent, then the final state, dlr_delay_ms apart (reversed in
        out-of-order mode), each posted dlr_duplicates times."""
        url = m["callback_url"]
        if not url or not cfg["dlr_enabled"]:
            return 0
        to = m["to"]
        final = "delivered"
        if match_number(to, cfg["failed_numbers"], cfg["failed_prefixes"]):
            final = "failed"
        elif match_number(to, cfg["undelivered_numbers"],
                          cfg["undelivered_prefixes"]):
            final = "undelivered"
        d = cfg["dlr_delay_ms"] / 1000.0
        t0 = m["created"]
        events = [("sent", t0 + d), (final, max(t0 + 2 * d, t0 + d + 0.001))]
        due = [t0 + d, t0 + 2 * d]
        if cfg["dlr_out_of_order"]:
            events.reverse()
        n = 0
        for (status, ets), when in zip(events, due):
            data = {"message_id": m["message_id"], "status": status,
                    "to": to, "client_reference": m["client_reference"]}
            if status in ("undelivered", "failed"):
                data["error_code"] = "unreachable" if status == "failed" \
                    else "handset_unavailable"
            body = json.dumps({"type": "message.status",
                               "timestamp": rfc3339_ms(ets), "data": data},
                              separators=(",", ":")).encode()
            wid = "msg_" + uuid.uuid4().hex
            for copy in range(cfg["dlr_duplicates"]):
                self.push(when + copy * 0.001, {
                    "kind": "dlr", "url": url, "org": m["org"],
                    "webhook_id": wid, "body": body, "attempt": 0,
                    "message_id": m["message_id"], "status": status,
                    "copy": copy, "gen": m["gen"]})
                n += 1
        st = self.srv.state
        with st.lock:
            st.dlr["scheduled"] += n
        return n


def org_of(url, header):
    """The org a webhook is for: the org header of the send, else the last
    path segment of the callback URL (Bulwark's /webhooks/sms/{org_id})."""
    if header:
        return header
    if not url:
        return None
    seg = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return seg or None


# -- HTTP ----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle
    # and the peer's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "bulwark-sms-sim/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    def read_body(self):
        """The body bytes, or None after answering an error."""
        cl = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self.send_error_json(411, "length_required",
                                 "Content-Length is required.")
            return None
        try:
            n = int(cl or "0")
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.send_error_json(400, "bad_request", "Bad Content-Length.")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self.send_error_json(413, "payload_too_large",
                                 "Request too large.")
            return None
        return self.rfile.read(n)

    def send_json(self, status, obj, headers=None):
        body = (json.dumps(obj) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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

    def send_error_json(self, status, code, message, headers=None):
        self.send_json(status, {"error": {"code": code, "message": message,
                                          "status": status}},
                       headers=headers)

    def client_gone(self, timeout):
        try:
            r, _, _ = select.select([self.connection], [], [], timeout)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
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

    def shut(self):
        self.close_connection = True
        depart = getattr(self, "_depart", None)
        if depart is not None:
            self._depart = None
            depart()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def authorized(self):
        key = self.server.api_key
        return not key or hmac.compare_digest(
            self.headers.get("Authorization", ""), "Bearer " + key)

    # -- routes -----------------------------------------------------------

    def do_GET(self):
        url = urlsplit(self.path)
        st = self.server.state
        q = parse_qs(url.query)
        if url.path == "/_sim/health":
            self.send_json(200, {"ok": True})
        elif url.path == "/_sim/stats":
            d = st.stats(full=q.get("full", ["0"])[0] == "1")
            d["dlr"]["pending"] = self.server.poster.pending()
            self.send_json(200, d)
        elif url.path == "/_sim/faults":
            with st.lock:
                f = dict(st.faults, script=list(st.faults["script"]))
            self.send_json(200, f)
        elif url.path == "/_sim/config":
            with st.lock:
                self.send_json(200, config_view(st.config))
        elif url.path == "/_sim/dlr":
            try:
                limit = int(q.get("limit", ["100"])[0])
            except ValueError:
                limit = 100
            with st.lock:
                log = list(st.dlr_log[-limit:]) if limit > 0 else []
            self.send_json(200, {"attempts": log})
        elif url.path.startswith("/v1/messages"):
            self.lookup(url, q)
        else:
            self.send_error_json(404, "not_found", "Unknown path.")

    def lookup(self, url, q):
        """GET /v1/messages/{id} and GET /v1/messages?client_reference=R."""
        if not self.authorized():
            self.send_error_json(401, "unauthorized",
                                 "Missing or invalid API key.",
                                 {"WWW-Authenticate": "Bearer"})
            return
        st = self.server.state
        m = None
        with st.lock:
            if url.path.startswith("/v1/messages/"):
                m = st.messages.get(url.path[len("/v1/messages/"):])
            elif url.path == "/v1/messages" and "client_reference" in q:
                mid = st.by_ref.get(q["client_reference"][0])
                m = st.messages.get(mid) if mid else None
        if m is None:
            self.send_error_json(404, "message_not_found",
                                 "No such message.")
        else:
            self.send_json(200, st.message_view(m))

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path == "/v1/messages":
            self.send_message()
            return
        raw = self.read_body()
        if raw is None:
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"ok": False, "error": "body is not JSON"})
            return
        st = self.server.state
        try:
            if url.path == "/_sim/faults":
                f = parse_faults(body)
                with st.lock:
                    st.faults = f
                    if f["seed"] is not None:
                        st.rng = random.Random(f["seed"])
                self.send_json(200, {"ok": True, "steps": len(f["script"])})
            elif url.path == "/_sim/config":
                with st.lock:
                    st.config = parse_config(body, st.config)
                    v = config_view(st.config)
                self.send_json(200, {"ok": True, "config": v})
            elif url.path == "/_sim/reset":
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                st.reset(config=_flag(body, "config", False))
                self.server.poster.drop_all()
                self.send_json(200, {"ok": True})
            elif url.path == "/_sim/refs":
                refs = body.get("refs") if isinstance(body, dict) else None
                if not isinstance(refs, list) or len(refs) > LOOKUP_MAX or \
                        not all(isinstance(r, str) for r in refs):
                    raise ValueError("refs must be a list of strings")
                self.send_json(200, {"refs": st.refs_view(refs)})
            elif url.path == "/_sim/destinations":
                nums = body.get("numbers") if isinstance(body, dict) \
                    else None
                if not isinstance(nums, list) or len(nums) > LOOKUP_MAX or \
                        not all(isinstance(r, str) for r in nums):
                    raise ValueError("numbers must be a list of strings")
                self.send_json(200, {"numbers": st.dest_view(nums)})
            elif url.path == "/_sim/inbound":
                self.inbound(body)
            else:
                self.send_error_json(404, "not_found", "Unknown path.")
        except ValueError as e:
            self.send_json(400, {"ok": False, "error": str(e)})

    def inbound(self, body):
        """POST /_sim/inbound {"from","text","to"?,"org"?,"url"?}: posts a
        signed message.inbound webhook now and answers what came back."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        frm, text = body.get("from"), body.get("text")
        if not isinstance(frm, str) or not E164.match(frm):
            raise ValueError("from must be an E.164 number")
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string")
        st = self.server.state
        with st.lock:
            cfg = dict(st.config)
        url = _url(body, "url", cfg["inbound_url"])
        if url is None:
            raise ValueError("no url and no inbound_url configured")
        to = body.get("to", cfg["sender_id"])
        if not isinstance(to, str) or not to:
            raise ValueError("to must be a non-empty string")
        org = org_of(url, body.get("org"))
        secret = cfg["webhook_secrets"].get(org) if org else None
        secret = secret or cfg["webhook_secret"]
        wid = "msg_" + uuid.uuid4().hex
        payload = json.dumps({
            "type": "message.inbound", "timestamp": rfc3339_ms(time.time()),
            "data": {"message_id": "MO" + uuid.uuid4().hex, "from": frm,
                     "to": to, "text": text}}, separators=(",", ":")).encode()
        code, answer = self.server.poster.post(url, secret, wid, payload, cfg)
        with st.lock:
            st.inbound["sent"] += 1
            k = str(code)
            st.inbound["by_http_status"][k] = \
                st.inbound["by_http_status"].get(k, 0) + 1
        self.server.log(msg="inbound", webhook_id=wid, **{"from": mask(frm)},
                        http_status=code)
        self.send_json(200, {"ok": 200 <= code < 300, "webhook_id": wid,
                             "http_status": code, "answer": answer[:500]})

    def do_PUT(self):
        self.not_allowed()

    def do_DELETE(self):
        self.not_allowed()

    def do_PATCH(self):
        self.not_allowed()

    def not_allowed(self):
        self.close_connection = True
        self.send_error_json(405, "method_not_allowed", "Method not allowed.")

    # -- POST /v1/messages --------------------------------------------------

    def send_message(self):
        st = self.server.state
        t0 = time.monotonic()
        info = {}
        st.enter()
        departed = []

        def depart():
            departed.append(True)
            st.depart()
        self._depart = depart
        outcome = "500"
        try:
            outcome = self.send_inner(info)
        except (BrokenPipeError, ConnectionResetError):
            outcome = "client_gone"
            self.close_connection = True
        finally:
            if not departed:
                st.depart()
            self._depart = None
            st.outcome(outcome)
            self.server.log(method="POST", path="/v1/messages",
                            outcome=outcome, ref=info.get("ref"),
                            to=mask(info.get("to")), step=info.get("step"),
                            message_id=info.get("message_id"),
                            ms=round((time.monotonic() - t0) * 1000, 1))

    def validate(self, body):
        """(http status, code, message) of an invalid send, else None."""
        if not isinstance(body, dict):
            return 400, "invalid_json", "The body must be a JSON object."
        for k in ("to", "text", "client_reference"):
            if not isinstance(body.get(k), str) or body[k] == "":
                return 400, "missing_field", \
                    "'%s' is required and must be a non-empty string." % k
        if len(body["client_reference"].encode()) > MAX_REF:
            return 400, "invalid_client_reference", \
                "'client_reference' is longer than %d bytes." % MAX_REF
        if not E164.match(body["to"]):
            return 400, "invalid_number", \
                "'to' is not an E.164 number (+ and 7 to 15 digits)."
        with self.server.state.lock:
            max_text = self.server.state.config["max_text"]
        if len(body["text"]) > max_text:
            return 400, "text_too_long", \
                "'text' is longer than %d characters." % max_text
        cb = body.get("callback_url")
        if cb is not None and (not isinstance(cb, str) or not cb.startswith(
                ("http://", "https://")) or len(cb) > MAX_URL):
            return 400, "invalid_callback_url", \
                "'callback_url' must be an http(s) URL."
        return None

    def send_inner(self, info):
        raw = self.read_body()
        if raw is None:
            return "413"
        if not self.authorized():
            self.send_error_json(401, "unauthorized",
                                 "Missing or invalid API key.",
                                 {"WWW-Authenticate": "Bearer"})
            return "401"
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_error_json(400, "invalid_json",
                                 "The body is not valid JSON.")
            return "400"
        st = self.server.state
        if isinstance(body, dict) and isinstance(
                body.get("client_reference"), str) and \
                body["client_reference"]:
            info["ref"] = body["client_reference"][:MAX_REF]
            st.count_ref(info["ref"])
        if isinstance(body, dict) and isinstance(body.get("to"), str):
            info["to"] = body["to"]
        bad = self.validate(body)
        if bad is not None:
            self.send_error_json(*bad)
            return str(bad[0])

        step, latency, faults = st.next_step()
        info["step"] = step
        if latency > 0 and not self.wait(latency):
            self.close_connection = True
            return "client_gone"
        if step == 429 or isinstance(step, int):
            code, msg = FAULT_ERRORS.get(step, ("server_error",
                                                "Server error."))
            headers = {}
            if step == 429 or step == 503:
                ra = faults["retry_after"]
                headers["Retry-After"] = str(int(ra)) if ra == int(ra) \
                    else str(ra)
            self.send_error_json(step, code, msg, headers)
            return str(step)
        if step == "hang":
            self.close_connection = True
            return "hang_timeout" if self.wait(faults["hang_s"]) else "hang"
        if step == "close":
            self.shut()
            return "close"

        with st.lock:
            cfg = dict(st.config)
        if match_number(body["to"], cfg["unknown_numbers"],
                        cfg["unknown_prefixes"]):
            self.send_error_json(422, "number_not_found",
                                 "The destination number does not exist.")
            return "422"
        org = org_of(body.get("callback_url") or cfg["callback_url"],
                     self.headers.get(self.server.org_header))
        status, m, new = st.accept(body, org)
        info["message_id"] = m["message_id"]
        if status == 409:
            self.send_error_json(409, "reference_conflict",
                                 "client_reference was used for another "
                                 "message.")
            return "409"
        if new:
            self.server.poster.schedule_reports(m, cfg)
        resp = {"message_id": m["message_id"], "status": "accepted",
                "client_reference": m["client_reference"], "to": m["to"],
                "segments": m["segments"], "encoding": m["encoding"],
                "duplicate": not new}
        if step == "drop":
            self.shut()
            return "drop"
        if step == "accept_hang":
            self.close_connection = True
            return "accept_hang_timeout" if self.wait(faults["hang_s"]) \
                else "accept_hang"
        self.send_json(status, resp)
        return str(status)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def log(self, **kv):
        kv["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps(kv, separators=(",", ":"), sort_keys=True)
        with self.log_lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18083)
    ap.add_argument("--api-key", default=None,
                    help="require Authorization: Bearer KEY")
    ap.add_argument("--api-key-file", default=None,
                    help="read the required key from this file")
    ap.add_argument("--org-header", default="X-Bulwark-Org",
                    help="request header that names the org (webhook secret)")
    ap.add_argument("--ca-file", default=None,
                    help="CA bundle for https callbacks (read when used)")
    ap.add_argument("--unknown-prefix", action="append", default=None,
                    help="numbers that do not exist (default +999)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the fault probabilities and jitter")
    ap.add_argument("--webhook-workers", type=int, default=4,
                    help="threads posting delivery reports")
    args = ap.parse_args(argv)

    api_key = args.api_key
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as f:
            api_key = f.read().strip()
    cfg = dict(DEFAULT_CONFIG)
    cfg["ca_file"] = args.ca_file
    if args.unknown_prefix is not None:
        cfg["unknown_prefixes"] = args.unknown_prefix

    srv = Server((args.host, args.port), Handler)
    srv.state = State(cfg, args.seed)
    srv.api_key = api_key or None
    srv.org_header = args.org_header
    srv.log_lock = threading.Lock()
    srv.poster = Poster(srv, max(1, args.webhook_workers))
    srv.log(msg="sms_sim listening", host=args.host,
            port=srv.server_address[1], auth=bool(srv.api_key),
            seed=args.seed)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
