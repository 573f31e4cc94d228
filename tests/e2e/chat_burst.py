#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The load of tests/e2e/chat_burst.sh, through nginx over HTTPS (python3
stdlib only, one thread per connection, keep-alive where it matters).

  chat_burst.py SPEC.json > SUMMARY.json

SPEC: {"url", "chat": [{"key", "ip"}...], "per_org", "webhook": {"org",
"secret", "ip"}, "booking": {"key", "user", "ip"}, "side": N, "gap_s"}

1. Idle: N signed Stripe deliveries and N bookings, each stream on one
   keep-alive connection from its own source address, one request at a
   time, gap_s apart (the streams span the burst); their latencies.
2. Burst: len(chat) x per_org chat requests, each on its own connection from
   its org's source address, all connected first and then sent at once;
   the same two streams again (N each), from a process of their own,
   starting 100 ms after the release.

SUMMARY: {"chat": {"status": {code: n}, "bad": [...], "n503": {...}},
"idle"/"burst": {"webhook"/"booking": {"ok", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms",
"fail": [...]}}, "burst_s"}
"""
import hashlib
import hmac
import http.client
import json
import math
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def conn(url, ip):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPSConnection(u.hostname, u.port, context=CTX,
                                       source_address=(ip, 0), timeout=60)


def pct(xs, q):
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)] if s else None


def p99(xs):
    return pct(xs, 0.99)


def stripe_body(org, tag, i):
    now = int(time.time())
    pi = "pi_burst_%s_%d" % (tag, i)
    ev = {"id": "evt_burst_%s_%d" % (tag, i), "object": "event",
          "api_version": "2024-06-20", "created": now,
          "data": {"object": {
              "id": "cs_burst_%s_%d" % (tag, i),
              "object": "checkout.session", "amount_subtotal": 100,
              "amount_total": 100, "currency": "usd",
              "customer": "cus_burst", "livemode": False,
              "metadata": {"user_id": "wh-user", "credits": "1"},
              "mode": "payment", "payment_intent": pi,
              "payment_status": "paid", "status": "complete"}},
          "livemode": False, "pending_webhooks": 1,
          "request": {"id": None, "idempotency_key": None},
          "type": "checkout.session.completed"}
    return json.dumps(ev).encode()


def side_stream(spec, kind, tag, n, out):
    """n requests of one kind, one at a time on one connection."""
    lat, fail, at = [], [], []
    start = time.monotonic()
    if kind == "webhook":
        w = spec["webhook"]
        c = conn(spec["url"], w["ip"])
    else:
        b = spec["booking"]
        c = conn(spec["url"], b["ip"])
    for i in range(-1, n):  # -1: the warm-up (TLS handshake), not counted
        if kind == "webhook":
            body = stripe_body(w["org"], tag, i)
            t = str(int(time.time()))
            mac = hmac.new(w["secret"].encode(), t.encode() + b"." + body,
                           hashlib.sha256).hexdigest()
            path = "/api/v1/webhooks/stripe/" + w["org"]
            hdr = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0",
                   "Stripe-Signature": "t=%s,v1=%s" % (t, mac)}
            want = (200, b'"processed"')
        else:
            body = json.dumps({"user_id": b["user"],
                               "class_id": "burst-%s-%d" % (tag, i),
                               "credits": 1}).encode()
            path = "/api/v1/bookings"
            hdr = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + b["key"],
                   "Idempotency-Key": "burst-%s-%d-%f" % (tag, i,
                                                          time.time())}
            want = (201, b"")
        t0 = time.monotonic()
        try:
            c.request("POST", path, body=body, headers=hdr)
            r = c.getresponse()
            data = r.read()
            st = r.status
            if r.getheader("Connection", "").lower() == "close":
                c.close()
        except (OSError, http.client.HTTPException) as e:
            st, data = 0, str(e).encode()
            c.close()
        ms = (time.monotonic() - t0) * 1000.0
        if i < 0:
            continue
        if st == want[0] and want[1] in data:
            lat.append(ms)
            at.append((round(ms, 1), round(t0 - start, 2)))
        else:
            fail.append("%d %s" % (st, data[:160].decode("utf-8", "replace")))
        time.sleep(spec.get("gap_s", 0.02))
    c.close()
    out[kind] = {"n": n, "ok": len(lat), "fail": fail[:5],
                 "p50_ms": round(sorted(lat)[len(lat) // 2], 1) if lat
                 else None,
                 "p95_ms": round(pct(lat, 0.95), 1) if lat else None,
                 "p99_ms": round(p99(lat), 1) if lat else None,
                 "max_ms": round(max(lat), 1) if lat else None,
                 # the three slowest: [ms, seconds into the stream]
                 "slowest": sorted(at, reverse=True)[:3]}


def sides(spec, tag):
    out = {}
    th = [threading.Thread(target=side_stream,
                           args=(spec, k, tag, spec["side"], out))
          for k in ("webhook", "booking")]
    for t in th:
        t.start()
    return th, out


def chat_one(spec, org, i, barrier, res, lock):
    c = conn(spec["url"], org["ip"])
    body = json.dumps({"channel": "api", "user_id": "burst-%d" % i,
                       "message": "hello from the burst"}).encode()
    try:
        c.connect()
    except OSError:
        pass
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    try:
        c.request("POST", "/api/v1/chat", body=body, headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + org["key"]})
        r = c.getresponse()
        data = r.read()
        st, ra = r.status, r.getheader("Retry-After")
    except (OSError, http.client.HTTPException) as e:
        st, data, ra = 0, str(e).encode(), None
    c.close()
    try:
        err = json.loads(data).get("error") or {}
    except ValueError:
        err = {}
    with lock:
        res["status"][str(st)] = res["status"].get(str(st), 0) + 1
        if st == 503:
            code = err.get("error_code")
            ok = code == "CAPACITY_EXHAUSTED" and ra is not None and \
                ra.isdigit() and int(ra) >= 1
            key = "capacity_retry_after" if ok else "other"
            res["n503"][key] = res["n503"].get(key, 0) + 1
            msg = err.get("message", "")
            res["n503_msg"][msg] = res["n503_msg"].get(msg, 0) + 1
            if not ok:
                res["bad"].append("503 %s Retry-After=%s" % (code, ra))
        elif st != 200:
            res["bad"].append("%d %s" % (st, data[:160].decode(
                "utf-8", "replace")))


def side_main(spec, tag):
    """--side: the two streams in a process of their own (the burst's 300
    threads would otherwise delay them in this client, not the server);
    they start when a line arrives on stdin."""
    sys.stdin.readline()
    th, out = sides(spec, tag)
    for t in th:
        t.join()
    json.dump(out, sys.stdout)


def main():
    if sys.argv[1] == "--side":
        side_main(json.load(open(sys.argv[2])), sys.argv[3])
        return
    spec = json.load(open(sys.argv[1]))
    summary = {}
    th, idle = sides(spec, "idle-%d" % time.time())
    for t in th:
        t.join()
    summary["idle"] = idle

    side = subprocess.Popen([sys.executable, __file__, "--side",
                             sys.argv[1], "burst-%d" % time.time()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    # The burst's client yields to the stack and to the measured streams.
    os.nice(19)
    per = spec["per_org"]
    n = len(spec["chat"]) * per
    barrier = threading.Barrier(n + 1)
    lock = threading.Lock()
    res = {"status": {}, "bad": [], "n503": {}, "n503_msg": {}}
    chats = []
    for oi, org in enumerate(spec["chat"]):
        for j in range(per):
            t = threading.Thread(target=chat_one,
                                 args=(spec, org, oi * per + j, barrier, res,
                                       lock))
            t.start()
            chats.append(t)
    barrier.wait(timeout=60)
    t0 = time.monotonic()
    time.sleep(0.1)
    side.stdin.write(b"go\n")
    side.stdin.flush()
    for t in chats:
        t.join()
    summary["burst_s"] = round(time.monotonic() - t0, 2)
    out, _ = side.communicate(timeout=120)
    res["bad"] = res["bad"][:10]
    summary["chat"] = res
    summary["burst"] = json.loads(out)
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
