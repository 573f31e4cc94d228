#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The cluster tier's mixed load, over HTTPS to several Bulwark hosts (one
nginx each), the way contract-following clients behave:

- bookings: one Idempotency-Key per booking (one class_id per booking), the
  same key and body on every retry, retried on any 5xx, a lost connection
  or 409 IDEMPOTENCY_KEY_IN_USE, each retry to the next host;
- Stripe webhooks: checkout.session.completed signed as Stripe signs
  (t=,v1= HMAC-SHA256 over "t.body"), redelivered 1-2 more times after the
  first 200 (re-signed, to the other host), retried like bookings.

Every answer is logged as "t_ms kind host status id sent_ms" in --log; the summary
(JSON on stdout) has the acknowledged ids, the statuses seen, the bad ones
(anything but 2xx, 409 and 502/503/504 or a lost connection) and the
longest stretch without a 2xx per kind (the unavailability window).

  load.py --url U1 --url U2 --api-key K --org ORG --user USER \\
      --stripe-secret S --prefix P --log FILE --stop-file F \\
      [--bookers 4] [--hooks 2] [--hosts-of-kind all|1] [--naive-retry]

--naive-retry: a booking retried with a NEW key (what the contract warns
against) - the tier's check must then see duplicates.
--chat-key K (repeatable) --chatters N: N threads of chat turns
(POST /api/v1/chat), one at a time each, the keys taken in turn.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import ssl
import threading
import time

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
RETRYABLE = {"000", "502", "503", "504"}


def now_ms():
    return int(time.time() * 1000)


def post(url, path, body, headers, timeout=15.0, meta=None):
    """(status, body); meta (a dict) gets the answer's X-Request-ID."""
    hostport = url.split("://", 1)[1]
    host, port = hostport.split(":")
    try:
        c = http.client.HTTPSConnection(host, int(port), context=CTX,
                                        timeout=timeout)
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        if meta is not None:
            meta["rid"] = r.getheader("X-Request-ID")
        c.close()
        return str(r.status), data
    except Exception as e:  # noqa: BLE001 - a lost connection is a status
        return "000", str(e).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--org", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--stripe-secret", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--bookers", type=int, default=4)
    ap.add_argument("--hooks", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--naive-retry", action="store_true")
    ap.add_argument("--chat-key", action="append", default=[])
    ap.add_argument("--chatters", type=int, default=0)
    a = ap.parse_args()

    lock = threading.Lock()
    logf = open(a.log, "w")
    res = {"statuses": {}, "bad": [], "bookings_acked": [],
           "bookings_failed": [], "hooks_acked": [], "hooks_failed": [],
           "hook_outcomes": {}, "attempts": 0}
    last_ok = {}
    gaps = {}
    seq = [0]

    def note(kind, host, st, ident, body, sent):
        t = now_ms()
        with lock:
            res["attempts"] += 1
            k = "%s %s" % (kind, st)
            res["statuses"][k] = res["statuses"].get(k, 0) + 1
            logf.write("%d %s %d %s %s %d\n" % (t, kind, host, st, ident,
                                                 sent))
            ok = st.startswith("2")
            if not ok and st != "409" and st not in RETRYABLE:
                res["bad"].append([t, kind, host, st,
                                   body[:200].decode("utf-8", "replace")])
            if ok:
                if kind in last_ok:
                    g = t - last_ok[kind]
                    if g > gaps.get(kind, [0])[0]:
                        gaps[kind] = [g, last_ok[kind], t]
                last_ok[kind] = t

    def nxt():
        with lock:
            seq[0] += 1
            return seq[0]

    def stopped():
        return os.path.exists(a.stop_file)

    def book(i):
        cls = "%s-c%d" % (a.prefix, i)
        key = "%s-k%d" % (a.prefix, i)
        body = json.dumps({"user_id": a.user, "class_id": cls,
                           "credits": 1}).encode()
        end = time.monotonic() + a.deadline
        n = 0
        while time.monotonic() < end:
            h = (i + n) % len(a.url)
            hdr = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + a.api_key,
                   "Idempotency-Key": key}
            sent = now_ms()
            st, out = post(a.url[h], "/api/v1/bookings", body, hdr)
            note("booking", h + 1, st, cls, out, sent)
            n += 1
            if st == "201":
                with lock:
                    res["bookings_acked"].append(cls)
                return
            if st == "409" and b"IDEMPOTENCY_KEY_IN_USE" in out:
                time.sleep(0.5)
            elif st in RETRYABLE or st.startswith("5"):
                time.sleep(min(0.05 * (2 ** n), 1.0))
                if a.naive_retry:
                    key = "%s-k%d-r%d" % (a.prefix, i, n)
            else:
                break
        with lock:
            res["bookings_failed"].append(cls)

    def sign(body):
        t = str(int(time.time()))
        mac = hmac.new(a.stripe_secret.encode(), t.encode() + b"." + body,
                       hashlib.sha256).hexdigest()
        return "t=%s,v1=%s" % (t, mac)

    def hook(i):
        evt = "evt_%s_%d" % (a.prefix, i)
        pi = "pi_%s_%d" % (a.prefix, i)
        body = json.dumps({
            "id": evt, "object": "event", "api_version": "2024-06-20",
            "created": int(time.time()), "livemode": False,
            "pending_webhooks": 1, "type": "checkout.session.completed",
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": {
                "id": "cs_%s_%d" % (a.prefix, i), "object": "checkout.session",
                "amount_total": 300, "currency": "usd", "mode": "payment",
                "payment_intent": pi, "payment_status": "paid",
                "status": "complete", "livemode": False,
                "metadata": {"user_id": a.user + "-wh", "credits": "3"}}}
        }, separators=(",", ":")).encode()
        deliveries = 1 + random.randint(1, 2)
        end = time.monotonic() + a.deadline
        n = 0
        acked = False
        while deliveries > 0 and time.monotonic() < end:
            h = (i + n) % len(a.url)
            hdr = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                   "Stripe-Signature": sign(body)}
            sent = now_ms()
            st, out = post(a.url[h], "/api/v1/webhooks/stripe/" + a.org,
                           body, hdr)
            note("webhook", h + 1, st, evt, out, sent)
            n += 1
            if st == "200":
                try:
                    o = json.loads(out).get("status", "?")
                except ValueError:
                    o = "?"
                with lock:
                    res["hook_outcomes"][o] = res["hook_outcomes"].get(o, 0) + 1
                acked = True
                deliveries -= 1
                continue
            if st in RETRYABLE or st.startswith("5") or st == "409":
                time.sleep(min(0.05 * (2 ** n), 1.0))
            else:
                break
        with lock:
            res["hooks_acked" if acked else "hooks_failed"].append(evt)

    def chat(i):
        key = a.chat_key[i % len(a.chat_key)]
        body = json.dumps({"channel": "api", "user_id": "c-%d" % (i % 50),
                           "message": "Is there a slot on Friday?"}).encode()
        h = i % len(a.url)
        sent = now_ms()
        meta = {}
        st, out = post(a.url[h], "/api/v1/chat", body,
                       {"Content-Type": "application/json",
                        "Authorization": "Bearer " + key}, timeout=30.0,
                       meta=meta)
        # The log's ident of a turn: its X-Request-ID (the simulator logs
        # the same id with each provider call), else its number.
        note("chat", h + 1, st, meta.get("rid") or str(i), out, sent)
        if not st.startswith("2"):
            time.sleep(0.2)

    def loop(fn):
        while not stopped():
            fn(nxt())

    ts = [threading.Thread(target=loop, args=(book,))
          for _ in range(a.bookers)]
    ts += [threading.Thread(target=loop, args=(hook,))
           for _ in range(a.hooks)]
    if a.chat_key:
        ts += [threading.Thread(target=loop, args=(chat,))
               for _ in range(a.chatters)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    logf.close()
    res["longest_gap_ms"] = gaps
    print(json.dumps(res))


if __name__ == "__main__":
    main()
