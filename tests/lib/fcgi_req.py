#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""FastCGI client for tests: sends requests straight to one or more
bulwark-fcgi sockets (as several hosts would serve them), concurrently,
and prints one line per response:  <index> <status> <body as one line>

  fcgi_req.py --socket A.sock [--socket B.sock ...] --method POST \
      --path /api/v1/bookings --header 'Authorization: Bearer K' \
      [--body '{"x":1}' | --body-file F | --bodies-file F (one body per line)] \
      [--count N] [--concurrency C] [--timeout S] [--remote-addr IP] \
      [--param NAME=VALUE ...]

Requests go round-robin over the sockets. With --bodies-file, request i
sends line i (and --count defaults to the number of lines). A connection
error or timeout prints status 000. The exit status is 0 when every request
got an answer. Bounded: --count at most 100000, --timeout per request.
Headers become HTTP_* params as nginx would pass them; Content-Type and
Content-Length become CONTENT_TYPE / CONTENT_LENGTH.
"""
import argparse
import socket
import struct
import sys
import threading

FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 3, 4, 5, 6


def record(rtype, rid, body):
    out = b""
    # Records carry at most 65535 bytes each.
    for i in range(0, max(len(body), 1), 65535):
        chunk = body[i:i + 65535]
        out += struct.pack(">BBHHBB", 1, rtype, rid, len(chunk), 0, 0) + chunk
        if not body:
            break
    return out


def nv(k, v):
    k, v = k.encode(), v.encode() if isinstance(v, str) else v

    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(k)) + ln(len(v)) + k + v


def one(sock_path, params, body, timeout):
    """Returns (status, body bytes) or ("000", reason)."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(sock_path)
        p = b"".join(nv(k, v) for k, v in params.items())
        msg = record(FCGI_BEGIN, 1, struct.pack(">HB5x", 1, 0))
        msg += record(FCGI_PARAMS, 1, p) + record(FCGI_PARAMS, 1, b"")
        if body:
            msg += record(FCGI_STDIN, 1, body)
        msg += record(FCGI_STDIN, 1, b"")
        s.sendall(msg)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
    except OSError as e:
        return "000", str(e).encode()
    out, i, ended = b"", 0, False
    while i + 8 <= len(data):
        _, t, _, n, pad, _ = struct.unpack(">BBHHBB", data[i:i + 8])
        if t == FCGI_STDOUT:
            out += data[i + 8:i + 8 + n]
        elif t == FCGI_END:
            ended = True
        i += 8 + n + pad
    if not ended:
        return "000", b"no end record"
    head, _, rest = out.partition(b"\r\n\r\n")
    status = "200"
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"status:"):
            status = line.split()[1].decode()
    return status, rest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", action="append", required=True)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--path", required=True)
    ap.add_argument("--query", default="")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--body")
    ap.add_argument("--body-file")
    ap.add_argument("--bodies-file")
    ap.add_argument("--count", type=int)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--remote-addr", default="127.0.0.1")
    # A FastCGI param as nginx would set it (BW_REQUEST_START=...).
    ap.add_argument("--param", action="append", default=[])
    a = ap.parse_args()

    bodies = None
    if a.bodies_file:
        with open(a.bodies_file, "rb") as f:
            bodies = [ln.rstrip(b"\n") for ln in f]
    body = b""
    if a.body is not None:
        body = a.body.encode()
    elif a.body_file:
        with open(a.body_file, "rb") as f:
            body = f.read()
    count = a.count if a.count is not None else (len(bodies) if bodies else 1)
    count = max(0, min(count, 100000))

    base = {"REQUEST_METHOD": a.method, "DOCUMENT_URI": a.path,
            "REQUEST_URI": a.path + ("?" + a.query if a.query else ""),
            "SCRIPT_NAME": a.path, "QUERY_STRING": a.query,
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": a.remote_addr,
            "HTTPS": "on"}
    for h in a.header:
        k, _, v = h.partition(":")
        k, v = k.strip(), v.strip()
        if k.lower() == "content-type":
            base["CONTENT_TYPE"] = v
        else:
            base["HTTP_" + k.upper().replace("-", "_")] = v
    for p in a.param:
        k, _, v = p.partition("=")
        base[k] = v

    lock = threading.Lock()
    nxt = [0]
    results = [None] * count

    def worker():
        while True:
            with lock:
                i = nxt[0]
                if i >= count:
                    return
                nxt[0] += 1
            b = bodies[i % len(bodies)] if bodies else body
            params = dict(base)
            if b or a.method in ("POST", "PUT", "PATCH"):
                params["CONTENT_LENGTH"] = str(len(b))
                params.setdefault("CONTENT_TYPE", "application/json")
            results[i] = one(a.socket[i % len(a.socket)], params, b,
                             a.timeout)

    threads = [threading.Thread(target=worker)
               for _ in range(max(1, min(a.concurrency, 500)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    for i, (st, bd) in enumerate(results):
        if st == "000":
            bad += 1
        sys.stdout.write("%d %s %s\n" % (
            i, st, bd.decode("utf-8", "replace").replace("\n", " ")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
