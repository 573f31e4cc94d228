#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PostgreSQL fault proxy: a TCP proxy between Bulwark and a real
PostgreSQL that speaks enough of the frontend/backend protocol (v3) to see
each COMMIT and to break the connection exactly there, the way a network
or a host fails:

  drop_before  the COMMIT is never forwarded; both sides are closed (the
               server aborts the transaction, the client sees a lost
               connection after sending COMMIT: an ambiguous outcome that
               did NOT commit)
  drop_after   the COMMIT is forwarded and both sides are closed at once,
               before any answer (the server commits; the client sees a
               lost connection: ambiguous, and it DID commit)
  kill_after   the COMMIT is forwarded, the server's answer is awaited and
               then, instead of forwarding it, the client process holding
               the connection is killed with SIGKILL (it dies right after
               its commit)

  pg_fault.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:5432 \\
      [--drop-before P] [--drop-after P] [--kill-after P] [--seed N] \\
      [--stats FILE] [--kill-pids PID,...] [--match TEXT ...]

Each COMMIT meets at most one fault, chosen at random with the given
probabilities (0..1, summing to at most 1). --match TEXT (repeatable)
makes a statement whose SQL contains TEXT a commit too: its own implicit
transaction commits at the Sync that ends it, so the fault falls between
that statement and its answer. A prepared statement is told by the name
its Parse gave it, also when later Binds run it without a new Parse; a
batch with no Execute (a Parse alone) is never faulted. The client's SSL and GSSAPI
encryption requests are declined, so the session is plain text on
loopback. --kill-pids limits kill_after to processes whose parent is one of
those pids (bulwark-fcgi masters); a COMMIT from anyone else passes.
--stats FILE is rewritten after every fault with one JSON object of
counters. SIGTERM ends it. Loopback only; for tests.
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import threading

SSL_REQ, GSS_REQ = 80877103, 80877104

lock = threading.Lock()
stats = {"connections": 0, "commits": 0, "drop_before": 0,
         "drop_after": 0, "kill_after": 0, "kill_missed": 0}


def bump(k, path):
    with lock:
        stats[k] += 1
        if path:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, path)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError
        out += b
    return out


def is_commit(t, msg, match=(), names=None):
    """A simple Query or a Parse whose SQL is COMMIT (or END), or contains
    one of match; a Bind of a statement such a Parse named (names: the
    connection's set of those names, kept up to date here)."""
    if t == b"B":
        body = msg[5:]
        i = body.index(b"\0") + 1
        return names is not None and body[i:body.index(b"\0", i)] in names
    if t == b"Q":
        name, sql = b"", msg[5:]
    elif t == b"P":
        body = msg[5:]
        i = body.index(b"\0")
        name, sql = body[:i], body[i + 1:]
    else:
        return False
    sql = sql.split(b"\0", 1)[0].strip()
    hit = sql.upper() in (b"COMMIT", b"END", b"COMMIT;", b"END;") or \
        any(m in sql for m in match)
    if t == b"P" and names is not None:
        if hit and name:
            names.add(name)
        else:
            names.discard(name)
    return hit


def socket_pid(peer_port, own_port, parents):
    """The pid holding the client end (127.0.0.1:peer_port) of a
    connection to own_port, when its parent is in parents."""
    inode = None
    for tab in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(tab) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lp = int(p[1].rsplit(":", 1)[1], 16)
                    rp = int(p[2].rsplit(":", 1)[1], 16)
                    if lp == peer_port and rp == own_port:
                        inode = p[9]
                        break
        except OSError:
            continue
        if inode:
            break
    if not inode:
        return None
    want = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if parents and ppid not in parents:
                continue
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == want:
                    return int(pid)
        except (OSError, ValueError, IndexError):
            continue
    return None


class Conn:
    def __init__(self, a, cli, addr):
        self.a, self.cli, self.addr = a, cli, addr
        self.srv = socket.create_connection(a.upstream)
        self.closed = False
        self.pending = None  # the fault waiting for the server's answer
        self.rbuf = b""
        self.names = set()  # prepared statements that --match named

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.cli, self.srv):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def startup(self):
        while True:
            n = struct.unpack(">I", recv_exact(self.cli, 4))[0]
            body = recv_exact(self.cli, n - 4)
            code = struct.unpack(">I", body[:4])[0]
            if code in (SSL_REQ, GSS_REQ):
                self.cli.sendall(b"N")
                continue
            self.srv.sendall(struct.pack(">I", n) + body)
            return

    def pick(self):
        r = random.random()
        for k in ("drop_before", "drop_after", "kill_after"):
            p = getattr(self.a, k)
            if r < p:
                return k
            r -= p
        return None

    def client_side(self):
        """Forwards what the client sends, a read at a time, holding back
        from a COMMIT up to its Sync (or the Query itself) to decide."""
        try:
            self.startup()
            buf, held = b"", []
            while True:
                data = self.cli.recv(65536)
                if not data:
                    break
                buf += data
                out = []
                while len(buf) >= 5:
                    n = struct.unpack(">I", buf[1:5])[0]
                    if len(buf) < 1 + n:
                        break
                    t, msg, buf = buf[:1], buf[:1 + n], buf[1 + n:]
                    if not held and not is_commit(t, msg, self.a.match,
                                                  self.names):
                        out.append(msg)
                        continue
                    if held and t == b"P":
                        is_commit(t, msg, self.a.match, self.names)
                    held.append(msg)
                    if t not in (b"S", b"Q"):
                        continue
                    if out:
                        self.srv.sendall(b"".join(out))
                        out = []
                    if not self.commit(held):
                        return
                    held = []
                if out:
                    self.srv.sendall(b"".join(out))
        except (EOFError, OSError, ValueError):
            pass
        self.close()

    def commit(self, held):
        """Decides the fault of one COMMIT batch; False when it closed."""
        if not any(m[:1] in (b"E", b"Q") for m in held):
            self.srv.sendall(b"".join(held))  # nothing runs: no fault
            return True
        bump("commits", self.a.stats)
        fault = self.pick()
        if fault == "drop_before":
            bump(fault, self.a.stats)
            self.close()
            return False
        if fault == "kill_after":
            self.pending = fault
        self.srv.sendall(b"".join(held))
        if fault == "drop_after":
            bump(fault, self.a.stats)
            self.close()
            return False
        return True

    def server_side(self):
        """Forwards what the server sends; while a kill_after waits, reads
        message by message to find the ReadyForQuery that ends the
        COMMIT, and kills the client instead of forwarding it."""
        try:
            while True:
                if self.pending != "kill_after":
                    data = self.srv.recv(65536)
                    if not data:
                        break
                    if self.pending != "kill_after":
                        self.cli.sendall(data)
                        continue
                    self.rbuf = data
                else:
                    self.rbuf = b""
                while self.pending == "kill_after":
                    t, msg = self.read_srv_msg()
                    if t != b"Z":
                        self.cli.sendall(msg)
                        continue
                    self.pending = None
                    pid = socket_pid(self.addr[1], self.a.port,
                                     self.a.kill_pids)
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                        bump("kill_after", self.a.stats)
                        self.close()
                        return
                    bump("kill_missed", self.a.stats)
                    self.cli.sendall(msg)
                if self.rbuf:
                    self.cli.sendall(self.rbuf)
                    self.rbuf = b""
        except (EOFError, OSError):
            pass
        self.close()

    def read_srv_msg(self):
        while len(self.rbuf) < 5:
            self.rbuf += self.recv_srv()
        n = struct.unpack(">I", self.rbuf[1:5])[0]
        while len(self.rbuf) < 1 + n:
            self.rbuf += self.recv_srv()
        msg, self.rbuf = self.rbuf[:1 + n], self.rbuf[1 + n:]
        return msg[:1], msg

    def recv_srv(self):
        b = self.srv.recv(65536)
        if not b:
            raise EOFError
        return b


def serve(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(128)
    while True:
        cli, addr = ls.accept()
        try:
            c = Conn(a, cli, addr)
        except OSError:
            cli.close()
            continue
        bump("connections", None)
        threading.Thread(target=c.client_side, daemon=True).start()
        threading.Thread(target=c.server_side, daemon=True).start()


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--drop-before", type=float, default=0.0)
    ap.add_argument("--drop-after", type=float, default=0.0)
    ap.add_argument("--kill-after", type=float, default=0.0)
    ap.add_argument("--kill-pids", default="")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--stats")
    ap.add_argument("--match", action="append", default=[])
    a = ap.parse_args()
    a.match = [m.encode() for m in a.match]
    a.host, a.port = hostport(a.listen)
    a.upstream = hostport(a.upstream)
    if not a.host.startswith("127."):
        sys.exit("pg_fault.py: loopback only")
    if a.drop_before + a.drop_after + a.kill_after > 1.0:
        sys.exit("pg_fault.py: probabilities sum over 1")
    a.kill_pids = {int(x) for x in a.kill_pids.split(",") if x}
    if a.seed is not None:
        random.seed(a.seed)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    serve(a)


if __name__ == "__main__":
    main()
