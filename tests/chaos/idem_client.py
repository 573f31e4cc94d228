#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A client that books the way CONTRACT.md tells clients to: one
Idempotency-Key per booking, the same key and body on every retry, retries
on 5xx, on a lost connection and on 409 IDEMPOTENCY_KEY_IN_USE (after its
Retry-After), each retry to the next bulwark-fcgi master (as a load
balancer would). Prints one JSON summary; writes "key booking_id" lines.

  idem_client.py --socket A --socket B --socket C --api-key K --user U \\
      --count N --prefix P --out FILE [--concurrency C] [--deadline S]
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from fcgi_req import one  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", action="append", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--concurrency", type=int, default=12)
    ap.add_argument("--deadline", type=float, default=120.0)
    a = ap.parse_args()
    count = max(1, min(a.count, 5000))

    lock = threading.Lock()
    nxt = [0]
    res = {"booked": 0, "failed": 0, "attempts": 0, "statuses": {}}
    lines = []

    def book(i):
        key = "%s-%d" % (a.prefix, i)
        body = json.dumps({"user_id": a.user, "class_id": "c-%d" % i,
                           "credits": 1}).encode()
        params = {"REQUEST_METHOD": "POST", "DOCUMENT_URI":
                  "/api/v1/bookings", "REQUEST_URI": "/api/v1/bookings",
                  "SCRIPT_NAME": "/api/v1/bookings", "QUERY_STRING": "",
                  "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
                  "HTTPS": "on", "CONTENT_TYPE": "application/json",
                  "CONTENT_LENGTH": str(len(body)),
                  "HTTP_AUTHORIZATION": "Bearer " + a.api_key,
                  "HTTP_IDEMPOTENCY_KEY": key}
        end = time.monotonic() + a.deadline
        n = 0
        while time.monotonic() < end:
            sock = a.socket[(i + n) % len(a.socket)]
            st, out = one(sock, params, body, 30.0)
            n += 1
            with lock:
                res["attempts"] += 1
                res["statuses"][st] = res["statuses"].get(st, 0) + 1
            if st == "201":
                bid = json.loads(out)["booking_id"]
                with lock:
                    res["booked"] += 1
                    lines.append("%s %s\n" % (key, bid))
                return
            if st == "409" and b"IDEMPOTENCY_KEY_IN_USE" in out:
                time.sleep(1.0)
            elif st in ("000", "502", "503"):
                time.sleep(min(0.05 * (2 ** n), 1.0))
            else:
                break
        with lock:
            res["failed"] += 1
            lines.append("%s FAILED\n" % key)

    def worker():
        while True:
            with lock:
                i = nxt[0]
                if i >= count:
                    return
                nxt[0] += 1
            book(i)

    ts = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(a.out, "w") as f:
        f.writelines(lines)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
