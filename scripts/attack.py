#!/usr/bin/env python3
"""Every attack of the hardening issues against a server on loopback.

Starts the server binary given as the first argument (a fresh data
directory, a free loopback port) once per flood, runs each flood ROUNDS
times (default 2) on it, and prints the server's resident memory (VmRSS,
and the peak VmHWM, from /proc/<pid>/status) before and after each round,
and /healthz latency (a probe on a fresh connection every 50 ms) throughout
each round. A second identical round should add nothing beyond the first,
except where the round writes events: the store's page cache (redb's, 1 GiB
at most by default) and the rooms kept in memory grow with the data written
(ws-slow-reader prints the same appends without a reader as a control).
Every server is stopped with SIGTERM and its time to exit printed.

  scripts/attack.sh                 builds the release server and runs this
  python3 scripts/attack.py ./target/release/server [flood ...]

Floods (all, in this order, when none is named):
  methods         3,000 requests with made-up methods; /metrics stays small
  sign-in-ids     2,000 failed sign-ins with distinct 60 KB user ids
  sign-ups        128 concurrent sign-ups; another user's GET /api/rooms
  connections     300 silent, slow-header and idle keep-alive connections
  timing          sign-in time of a known user (wrong password) vs an unknown one
  ws-pipeline     one socket, 10,000 valid submits written at once: every one
                  answered, in order, stored once
  ws-invalid      one socket, 10,000 frames that are not JSON written at once:
                  every one answered bad_json, the socket still serves
  ws-slow-reader  a socket that never reads while 3,000 events of 4 KB are
                  appended to its room: closed (4008 or the connection ended),
                  the writer answered throughout
  ws-idle         2,000 idle sockets (32 per user): RSS per socket, and after
                  they are closed (chat_ws_connections back to 0)
  ws-rooms        2,000 rooms each opened by a socket, then closed:
                  chat_bus_rooms back to 0
  rooms-list      6,000 rooms with 3 messages each and a reader's marker in
                  each (2 unread): GET /api/rooms, whole and a page of 100
  sigterm         SIGTERM with a non-reading socket, 500 idle sockets, a socket
                  pipelining submits and silent or half-sent connections (a
                  fresh server each round): time to exit, what each client
                  saw, every acknowledged event there after a restart; then
                  once, a request whose body trickles in when the signal comes

Correctness failures (a lost, duplicated or unanswered submit, a hung
socket, a wrong answer, a server that does not exit within 10 s of SIGTERM,
/healthz not answering 200 within 5 s) are listed at the end and make the
exit code 1. Times and memory are printed, not asserted.

Settings (environment): ROUNDS (2); SERVER_NOFILE (the server's open-files
limit; unset: this script's, raised to its hard limit); WS_SUBMITS (10000),
WS_SOCKETS (2000), WS_ROOMS (2000), LIST_ROOMS (6000), LIST_GETS (20, per
kind and round). rooms-list also runs against an older server (one without
paging: it times the whole list and says that limit was not applied).

Python 3.11 standard library only; loopback only; the default run takes a
few minutes on 2 cores.
"""

import asyncio
import base64
import datetime
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROUNDS = int(os.environ.get("ROUNDS", "2"))
WS_SUBMITS = int(os.environ.get("WS_SUBMITS", "10000"))
WS_SOCKETS = int(os.environ.get("WS_SOCKETS", "2000"))
WS_ROOMS = int(os.environ.get("WS_ROOMS", "2000"))
LIST_ROOMS = int(os.environ.get("LIST_ROOMS", "6000"))
LIST_GETS = int(os.environ.get("LIST_GETS", "20"))
SOCKETS_PER_USER = 32
EXIT_LIMIT = 10.0
NO_LIMITS = {"SIGN_UPS_PER_MINUTE": "0", "SIGN_INS_PER_MINUTE": "0"}
WS_ENV = dict(NO_LIMITS, MAX_CONNECTIONS="8192")

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print(f"   FAIL: {msg}", flush=True)


def out(line=""):
    print(line, flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the server


class Server:
    """The binary on a free loopback port, with a fresh data directory (or
    the one of an earlier server, `data`)."""

    def __init__(self, binary, env, data=None):
        self.binary, self.env = binary, env
        self.dir = data or tempfile.TemporaryDirectory()
        self.port = free_port()
        full = dict(os.environ)
        full.update(
            BIND=f"127.0.0.1:{self.port}",
            DATA_DIR=os.path.join(self.dir.name, "data"),
            STATIC_DIR=os.path.join(self.dir.name, "no-web-app"),
            RATE_LIMIT_PER_USER="0",
            RUST_LOG="error",
        )
        full.update(env)
        nofile = os.environ.get("SERVER_NOFILE")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), int(nofile)))

        self.log = open(os.path.join(self.dir.name, f"server-{self.port}.log"), "wb")
        self.proc = subprocess.Popen(
            [binary], env=full, stdout=self.log, stderr=self.log, preexec_fn=limit
        )
        self.exited_in = None

    def status(self, field):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def mem(self):
        return f"VmRSS {self.status('VmRSS')} KiB, VmHWM {self.status('VmHWM')} KiB"

    def check_alive(self, where):
        if self.proc.poll() is not None:
            fail(f"{where}: the server exited (code {self.proc.returncode})")
            self.log.flush()
            with open(self.log.name, "rb") as f:
                out(f.read()[-2000:].decode(errors="replace"))
            return False
        return True

    async def sigterm(self, where):
        """SIGTERM, then the seconds until the process has exited (killed
        after EXIT_LIMIT, a failure)."""
        if self.proc.poll() is not None:
            self.check_alive(where)
            return None
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        while self.proc.poll() is None and time.perf_counter() - t < EXIT_LIMIT:
            await asyncio.sleep(0.01)
        took = time.perf_counter() - t
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            fail(f"{where}: the server did not exit within {EXIT_LIMIT:.0f} s of SIGTERM")
            return None
        self.exited_in = took
        return took

    async def stop(self, where, keep_data=False, label="SIGTERM"):
        """SIGTERM; prints the time to exit."""
        took = await self.sigterm(where)
        if took is not None:
            out(f"   {label}: exited in {took:.2f} s (code {self.proc.returncode})")
        self.log.close()
        if not keep_data:
            self.dir.cleanup()


# ---------------------------------------------------------------- HTTP


def head_of(method, path, data, token, extra=()):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    for h in extra:
        head += h + "\r\n"
    return head.encode() + b"\r\n" + data


async def request(port, method, path, body=None, headers=(), timeout=30.0):
    """One request on a fresh connection: (status, body bytes, seconds)."""
    t = time.perf_counter()
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        data = b"" if body is None else json.dumps(body).encode()
        w.write(head_of(method, path, data, None, ("Connection: close",) + tuple(headers)))
        await w.drain()
        raw = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    return status, raw.split(b"\r\n\r\n", 1)[-1], time.perf_counter() - t


class Http:
    """A keep-alive connection, one request at a time."""

    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None

    async def call(self, method, path, body=None, token=None, timeout=30.0):
        """(status, body bytes, seconds to the last byte)."""
        data = b"" if body is None else json.dumps(body).encode()
        for attempt in range(2):
            if self.w is None:
                self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
            t = time.perf_counter()
            self.w.write(head_of(method, path, data, token))
            try:
                await self.w.drain()
                head = await asyncio.wait_for(self.r.readuntil(b"\r\n\r\n"), timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                # a keep-alive connection the server closed: once more on a new one
                self.close()
                if attempt:
                    raise
                continue
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip().lower()
            if "content-length" in headers:
                payload = await asyncio.wait_for(
                    self.r.readexactly(int(headers["content-length"])), timeout
                )
            elif headers.get("transfer-encoding") == "chunked":
                payload = b""
                while True:
                    n = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                    payload += await self.r.readexactly(n + 2)
                    if n == 0:
                        break
                    payload = payload[:-2]
            else:
                payload = b""
            took = time.perf_counter() - t
            if headers.get("connection") == "close":
                self.close()
            return status, payload, took
        raise ConnectionError("unreachable")


async def wait_ready(port):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await request(port, "GET", "/healthz", timeout=2))[0] == 200:
                return
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("the server did not start")


async def metric(port, name):
    """The value of an unlabelled metric (None when absent)."""
    _, body, _ = await request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def wait_metric(port, name, want, limit):
    """Seconds until the metric equals `want` (None after `limit` seconds)."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        if await metric(port, name) == want:
            return time.perf_counter() - t
        await asyncio.sleep(0.05)
    return None


async def probe_health(port, stop):
    seen = []
    while not stop.is_set():
        try:
            st, _, s = await request(port, "GET", "/healthz", timeout=5)
            seen.append(s if st == 200 else float("inf"))
        except (OSError, asyncio.TimeoutError):
            seen.append(float("inf"))
        await asyncio.sleep(0.05)
    return seen


async def bounded(n, concurrency, make):
    """Runs make(i) for i in range(n), `concurrency` at a time; results in
    order of completion (exceptions of the connection included)."""
    sem = asyncio.Semaphore(concurrency)
    results = []

    async def one(i):
        async with sem:
            try:
                results.append(await make(i))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                results.append(e)

    await asyncio.gather(*(one(i) for i in range(n)))
    return results


async def on_connections(port, n, concurrency, job):
    """Runs job(http, i) for i in range(n) over `concurrency` keep-alive
    connections; the statuses it returns, counted."""
    counts = {}
    nxt = iter(range(n))

    async def worker():
        http = Http(port)
        try:
            for i in nxt:
                for st in await job(http, i):
                    counts[st] = counts.get(st, 0) + 1
        finally:
            http.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


async def users(port, names):
    """Signs each user up and in; their tokens."""
    tokens = {}

    async def one(http, i):
        creds = {"userId": names[i], "password": "correct horse"}
        st1, _, _ = await http.call("POST", "/api/users", creds)
        st2, body, _ = await http.call("POST", "/api/sessions", creds)
        if st2 == 200:
            tokens[names[i]] = json.loads(body)["token"]
        return [st1, st2]

    counts = await on_connections(port, len(names), 4, one)
    if len(tokens) != len(names):
        raise SystemExit(f"signing users up and in failed: {counts}")
    return [tokens[n] for n in names]


async def create_rooms(port, token, rooms, concurrency=8):
    async def one(http, i):
        st, _, _ = await http.call("POST", "/api/rooms", {"roomId": rooms[i], "name": "Room"}, token)
        return [st]

    counts = await on_connections(port, len(rooms), concurrency, one)
    if set(counts) != {201}:
        raise SystemExit(f"creating rooms failed: {counts}")


async def stored_ids(port, room, token):
    """The eventIds of the room's MESSAGE_SENT events, in seq order."""
    http, after, ids = Http(port), 0, []
    try:
        while True:
            st, body, _ = await http.call(
                "GET", f"/api/rooms/{room}/events?afterSeq={after}&limit=5000", token=token
            )
            if st != 200:
                raise SystemExit(f"reading the events of {room}: {st}")
            events = json.loads(body)["events"]
            if not events:
                return ids
            ids += [e["eventId"] for e in events if e["eventType"] == "MESSAGE_SENT"]
            after = events[-1]["seq"]
    finally:
        http.close()


# ---------------------------------------------------------------- WebSocket


class WsRefused(Exception):
    pass


def frame(payload, opcode=1):
    """A masked client frame."""
    n = len(payload)
    b = bytearray([0x80 | opcode])
    if n < 126:
        b.append(0x80 | n)
    elif n < 65536:
        b.append(0x80 | 126)
        b += n.to_bytes(2, "big")
    else:
        b.append(0x80 | 127)
        b += n.to_bytes(8, "big")
    mask = os.urandom(4)
    b += mask
    if n:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        b += (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return bytes(b)


def submit(event_id, content, event_type="MESSAGE_SENT", target=None):
    ev = {"eventId": event_id, "eventType": event_type}
    if content is not None:
        ev["content"] = content
    if target:
        ev["targetMessageId"] = target
    return frame(json.dumps({"type": "submit", "event": ev}).encode())


def close_code(payload):
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005


class Ws:
    """A minimal WebSocket client on a raw non-blocking socket: nothing is
    read from the kernel unless asked (a client that does not read is one
    that does not call next)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, port, path, rcvbuf=None, timeout=10.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        ws = cls(sock)
        try:
            await asyncio.wait_for(ws._upgrade(port, path), timeout)
        except BaseException:
            sock.close()
            raise
        return ws

    async def _upgrade(self, port, path):
        await self.loop.sock_connect(self.sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await self.loop.sock_sendall(
            self.sock,
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        while b"\r\n\r\n" not in self.buf:
            chunk = await self.loop.sock_recv(self.sock, 4096)
            if not chunk:
                raise WsRefused("closed during the upgrade")
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        if not head.startswith(b"HTTP/1.1 101"):
            raise WsRefused(head.split(b"\r\n", 1)[0].decode(errors="replace"))

    async def send(self, data):
        await self.loop.sock_sendall(self.sock, data)

    def _parse(self):
        b, p = self.buf, self.pos
        avail = len(b) - p
        if avail < 2:
            return None
        n, h = b[p + 1] & 0x7F, 2
        if n == 126:
            if avail < 4:
                return None
            n, h = int.from_bytes(b[p + 2 : p + 4], "big"), 4
        elif n == 127:
            if avail < 10:
                return None
            n, h = int.from_bytes(b[p + 2 : p + 10], "big"), 10
        if avail < h + n:
            return None
        op = b[p] & 0x0F
        payload = bytes(b[p + h : p + h + n])
        self.pos = p + h + n
        if self.pos == len(b) or self.pos > (1 << 20):
            del b[: self.pos]
            self.pos = 0
        return op, payload

    async def next(self, timeout=30.0):
        """The next data or close frame (opcode, payload), answering pings;
        None at the end of the connection; asyncio.TimeoutError when none
        comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                if f[0] == 9:
                    await self.send(frame(f[1], 10))
                    continue
                if f[0] == 10:
                    continue
                return f
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError
            try:
                chunk = await asyncio.wait_for(self.loop.sock_recv(self.sock, 1 << 16), left)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    async def json(self, timeout=30.0):
        """The next text frame as JSON; ("close", code) or None at the end."""
        f = await self.next(timeout)
        if f is None:
            return None
        if f[0] == 8:
            return ("close", close_code(f[1]))
        return json.loads(f[1])

    async def close(self, handshake=True):
        """Our close frame and the server's answer (2 s at most), or just
        dropping the connection."""
        try:
            if handshake:
                await self.send(frame((1000).to_bytes(2, "big"), 8))
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    f = await self.next(deadline - time.monotonic())
                    if f is None or f[0] == 8:
                        break
        except (OSError, asyncio.TimeoutError):
            pass
        self.sock.close()


async def open_many(port, paths, concurrency=64, first_frame=True):
    """Opens a socket for each path (reading its first frame, the room's
    ROOM_CREATED, when asked); the sockets, and the failures counted."""
    socks, errors = [None] * len(paths), {}

    async def one(i):
        ws = await Ws.open(port, paths[i])
        if first_frame:
            f = await ws.json(10)
            if not (isinstance(f, dict) and f.get("type") == "event"):
                ws.sock.close()
                raise WsRefused(f"first frame {f!r}")
        socks[i] = ws

    sem = asyncio.Semaphore(concurrency)

    async def guarded(i):
        async with sem:
            try:
                await one(i)
            except (OSError, asyncio.TimeoutError, WsRefused) as e:
                key = str(e) if isinstance(e, WsRefused) else type(e).__name__
                errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(guarded(i) for i in range(len(paths))))
    return [s for s in socks if s], errors


async def close_many(socks, concurrency=128):
    """Half close with the handshake, half just drop the connection."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i, ws):
        async with sem:
            await ws.close(handshake=i % 2 == 0)

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(socks)))


def user_names(prefix, sockets):
    return [f"{prefix}{u}" for u in range((sockets + SOCKETS_PER_USER - 1) // SOCKETS_PER_USER)]


class Pipe:
    """What a pipelined run got: the answers' eventIds and codes in order,
    the eventIds and seqs of the acks, the seqs of the event frames, the
    seconds until every answer (and event) came, and what went wrong (no
    frame for the timeout: hung; or the socket ended)."""

    def __init__(self):
        self.answered, self.codes, self.acked = [], {}, []
        self.ack_seqs, self.event_seqs = [], []
        self.took, self.problem = 0.0, None


async def pipeline(ws, frames, events_too=False, timeout=30.0, p=None):
    """Writes `frames` at once while reading every answer (and, when
    `events_too`, the event frame of every acknowledged submit)."""
    p = p or Pipe()
    t0 = time.perf_counter()
    sender = asyncio.create_task(ws.send(b"".join(frames)))
    while len(p.answered) < len(frames) or (events_too and len(p.event_seqs) < len(p.ack_seqs)):
        try:
            v = await ws.json(timeout)
        except asyncio.TimeoutError:
            p.problem = f"no frame for {timeout:.0f} s (hung)"
            break
        if v is None or isinstance(v, tuple):
            p.problem = "the socket ended" + (f" with close {v[1]}" if v else "")
            break
        if v["type"] == "event":
            p.event_seqs.append(v["event"]["seq"])
            continue
        p.answered.append(v.get("eventId"))
        key = "ack" if v["type"] == "ack" else v["error"]["code"]
        p.codes[key] = p.codes.get(key, 0) + 1
        if v["type"] == "ack":
            p.acked.append(v["eventId"])
            p.ack_seqs.append(v["event"]["seq"])
    p.took = time.perf_counter() - t0
    if not sender.done():
        sender.cancel()
    return p


# ---------------------------------------------------------------- reporting


def ms(xs, limit_note=True):
    failed = sum(1 for x in xs if x == float("inf"))
    xs = sorted(x for x in xs if x != float("inf"))
    if not xs:
        return f"no answer (n={failed})"
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    s = (
        f"median {statistics.median(xs) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {xs[-1] * 1000:.1f} ms (n={len(xs)})"
    )
    return s + (f", {failed} not answered 200 within 5 s" if failed and limit_note else "")


async def one_round(server, name, k, flood):
    """One round of `flood` with the /healthz probe running; prints it."""
    before = server.mem()
    stop = asyncio.Event()
    probe = asyncio.create_task(probe_health(server.port, stop))
    t = time.perf_counter()
    try:
        summary = await flood(k)
    finally:
        took = time.perf_counter() - t
        stop.set()
        health = await probe
    out(f"   round {k + 1} ({took:.1f} s): " + summary.replace("\n", "\n      "))
    out(f"      memory: before {before}; after {server.mem()}")
    out(f"      /healthz: {ms(health)}")
    missed = sum(1 for x in health if x == float("inf"))
    if missed:
        fail(f"{name}, round {k + 1}: /healthz did not answer 200 within 5 s {missed} times")
    server.check_alive(f"{name}, round {k + 1}")


async def rounds(server, name, flood, extra=None):
    await wait_ready(server.port)
    out(f"\n== {name}")
    out(f"   start: {server.mem()}")
    for k in range(ROUNDS):
        await one_round(server, name, k, flood)
        if extra:
            out("      " + await extra())


def count(results):
    out_ = {}
    for r in results:
        key = type(r).__name__ if isinstance(r, Exception) else r[0]
        out_[key] = out_.get(key, 0) + 1
    return out_


# ---------------------------------------------------------------- the edge floods


async def flood_methods(binary):
    s = Server(binary, {})
    try:
        async def flood(k):
            res = await bounded(3000, 32, lambda i: request(s.port, f"M{k}X{i}", f"/x/{k}/{i}"))
            return f"3000 made-up methods {count(res)}"

        async def metrics_size():
            _, body, _ = await request(s.port, "GET", "/metrics")
            series = [l for l in body.decode().splitlines() if l.startswith("chat_http_requests_total{")]
            return f"/metrics {len(body)} bytes, {len(series)} request series"

        await rounds(s, "methods: 3,000 made-up methods", flood, extra=metrics_size)
    finally:
        await s.stop("methods")


async def flood_sign_in_ids(binary):
    # the per-address limit off: the failed-sign-in table itself is flooded
    s = Server(binary, {"SIGN_INS_PER_MINUTE": "0"})
    try:
        async def flood(k):
            res = await bounded(
                2000,
                16,
                lambda i: request(
                    s.port,
                    "POST",
                    "/api/sessions",
                    {"userId": f"{k}-{i}-" + "x" * 60000, "password": "wrong password"},
                ),
            )
            return f"2000 failed sign-ins with distinct 60 KB ids {count(res)}"

        await rounds(s, "sign-in-ids: failed sign-ins with huge distinct ids", flood)
    finally:
        await s.stop("sign-in-ids")


async def flood_sign_ups(binary):
    s = Server(binary, {"SIGN_UPS_PER_MINUTE": "0"})
    try:
        await wait_ready(s.port)
        (token,) = await users(s.port, ["bystander"])
        gets = []

        async def bystander(stop):
            while not stop.is_set():
                st, _, t = await request(
                    s.port, "GET", "/api/rooms", headers=[f"Authorization: Bearer {token}"]
                )
                gets.append(t if st == 200 else float("inf"))
                await asyncio.sleep(0.02)

        stop = asyncio.Event()
        task = asyncio.create_task(bystander(stop))
        await asyncio.sleep(1)
        stop.set()
        await task
        idle, gets = list(gets), []

        async def flood(k):
            gets.clear()
            stop = asyncio.Event()
            task = asyncio.create_task(bystander(stop))
            res = await bounded(
                128,
                128,
                lambda i: request(
                    s.port, "POST", "/api/users", {"userId": f"r{k}u{i}", "password": "correct horse"}
                ),
            )
            stop.set()
            await task
            return (
                f"128 concurrent sign-ups {count(res)}\n"
                f"another user's GET /api/rooms {ms(gets, False)} (idle: {ms(idle, False)})"
            )

        await rounds(s, "sign-ups: 128 concurrent sign-ups", flood)
    finally:
        await s.stop("sign-ups")


async def flood_connections(binary):
    s = Server(binary, {"CLIENT_TIMEOUT": "10s"})
    try:
        async def flood(k):
            conns = []
            for _ in range(300):
                conns.append(await asyncio.open_connection("127.0.0.1", s.port))

            # a third silent, a third slow headers, a third idle keep-alive
            async def slow(w):
                for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
                    try:
                        w.write(bytes([b]))
                        await w.drain()
                    except OSError:
                        return
                    await asyncio.sleep(5)

            slowloris = [asyncio.create_task(slow(w)) for _, w in conns[100:200]]
            for _, w in conns[200:]:
                w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            t = time.perf_counter()
            closed = await asyncio.gather(
                *(asyncio.wait_for(r.read(), 30) for r, _ in conns), return_exceptions=True
            )
            for task in slowloris:
                task.cancel()
            for _, w in conns:
                w.close()
            ok = sum(1 for c in closed if not isinstance(c, Exception))
            if ok < 300:
                fail(f"connections, round {k + 1}: {300 - ok} of 300 connections not closed within 30 s")
            return f"300 silent/slow/idle connections, {ok} closed by the server within {time.perf_counter() - t:.1f} s"

        await rounds(s, "connections: 300 connections that never finish", flood)
    finally:
        await s.stop("connections")


async def sign_in_timing(binary):
    s = Server(binary, {})
    try:
        await wait_ready(s.port)
        await request(s.port, "POST", "/api/users", {"userId": "alice", "password": "correct horse"})
        known, unknown = [], []
        for i in range(9):
            _, _, t = await request(s.port, "POST", "/api/sessions", {"userId": "alice", "password": "wrong password"})
            known.append(t)
            _, _, t = await request(s.port, "POST", "/api/sessions", {"userId": f"nobody{i}", "password": "wrong password"})
            unknown.append(t)
        out("\n== timing: sign-in time, known vs unknown user")
        out(f"   known user, wrong password: {ms(known)}")
        out(f"   unknown user:               {ms(unknown)}")
    finally:
        await s.stop("timing")


# ---------------------------------------------------------------- the WebSocket floods


async def flood_ws_pipeline(binary):
    s = Server(binary, WS_ENV)
    n = WS_SUBMITS
    try:
        await wait_ready(s.port)
        (token,) = await users(s.port, ["piper"])

        async def flood(k):
            room = f"pipe{k}"
            await create_rooms(s.port, token, [room])
            ws = await Ws.open(s.port, f"/api/rooms/{room}/ws?afterSeq=1&token={token}")
            ids = [str(uuid.uuid4()) for _ in range(n)]
            frames = [submit(e, f"message {i}") for i, e in enumerate(ids)]
            p = await pipeline(ws, frames, events_too=True)
            answered, codes, ack_seqs, event_seqs, took, problem = (
                p.answered, p.codes, p.ack_seqs, p.event_seqs, p.took, p.problem)
            await ws.close()
            where = f"ws-pipeline, round {k + 1}"
            want = list(range(2, n + 2))
            if problem:
                fail(f"{where}: {len(answered)} of {n} submits answered, then {problem}")
            if codes != {"ack": n}:
                fail(f"{where}: answers {codes}, not {n} acks")
            in_order = answered == ids
            if not in_order:
                fail(f"{where}: the answers are not in the order of the submits")
            if ack_seqs != want[: len(ack_seqs)]:
                fail(f"{where}: the acks' seqs are not 2, 3, … in order")
            if event_seqs != want[: len(event_seqs)] or len(event_seqs) != len(ack_seqs):
                fail(f"{where}: event frames {len(event_seqs)}, not seq 2..{n + 1} once each in order")
            stored = await stored_ids(s.port, room, token)
            lost = len(set(ids) - set(stored))
            dup = len(stored) - len(set(stored))
            if lost or dup or len(stored) != n:
                fail(f"{where}: stored {len(stored)} messages, {lost} submits lost, {dup} duplicated")
            return (
                f"{n} pipelined submits: {len(answered)} answered {codes}, in order: {in_order}; "
                f"{len(event_seqs)} event frames in seq order; {len(stored)} stored, {lost} lost, {dup} duplicated\n"
                f"every answer in {took:.2f} s ({n / took:.0f} submits/s)"
            )

        await rounds(s, f"ws-pipeline: one socket, {n:,} valid submits written at once", flood)
    finally:
        await s.stop("ws-pipeline")


async def flood_ws_invalid(binary):
    s = Server(binary, WS_ENV)
    n = WS_SUBMITS
    try:
        await wait_ready(s.port)
        (token,) = await users(s.port, ["garbler"])

        async def flood(k):
            room = f"bad{k}"
            await create_rooms(s.port, token, [room])
            ws = await Ws.open(s.port, f"/api/rooms/{room}/ws?afterSeq=1&token={token}")
            frames = [frame(b"not json")] * n
            p = await pipeline(ws, frames)
            answered, codes, took, problem = p.answered, p.codes, p.took, p.problem
            where = f"ws-invalid, round {k + 1}"
            if problem:
                fail(f"{where}: {len(answered)} of {n} frames answered, then {problem}")
            if codes != {"bad_json": n} or any(a is not None for a in answered):
                fail(f"{where}: answers {codes}, not {n} bad_json with eventId null")
            # the socket still serves
            e = str(uuid.uuid4())
            q = await pipeline(ws, [submit(e, "still here")], timeout=10)
            still = q.acked == [e]
            if not still:
                fail(f"{where}: a valid submit after the flood got {q.codes} {q.problem or ''}")
            await ws.close()
            return (
                f"{n} frames that are not JSON: {len(answered)} answered {codes} in {took:.2f} s "
                f"({n / took:.0f} frames/s); a valid submit after them acknowledged: {still}"
            )

        await rounds(s, f"ws-invalid: one socket, {n:,} frames that are not JSON written at once", flood)
    finally:
        await s.stop("ws-invalid")


async def slow_reader_scene(port, token, room, n_events, rcvbuf=4096):
    """A socket into `room` that never reads, and a writer socket that
    pipelines `n_events` events of 4,000 characters into it: (the slow
    socket, the writer, the writer's answers, seconds for them)."""
    slow = await Ws.open(port, f"/api/rooms/{room}/ws?afterSeq=0&token={token}", rcvbuf=rcvbuf)
    writer = await Ws.open(port, f"/api/rooms/{room}/ws?afterSeq=999999999&token={token}")
    big = "x" * 3990
    ids = [str(uuid.uuid4()) for _ in range(n_events)]
    frames = [submit(e, f"{i:05d} {big}") for i, e in enumerate(ids)]
    p = await pipeline(writer, frames, timeout=60)
    return slow, writer, ids, p


async def drain(ws, limit=5.0):
    """Reads what a socket still has: (event frames, how it ended)."""
    events, end = 0, "nothing more within 5 s"
    try:
        while True:
            f = await ws.next(limit)
            if f is None:
                end = "the connection ended without a close frame"
                break
            if f[0] == 8:
                end = f"close {close_code(f[1])}"
                break
            events += 1
    except asyncio.TimeoutError:
        pass
    ws.sock.close()
    return events, end


async def flood_ws_slow_reader(binary):
    s = Server(binary, WS_ENV)
    n = 3000
    try:
        await wait_ready(s.port)
        (token,) = await users(s.port, ["slowpoke"])

        async def flood(k):
            room = f"slow{k}"
            where = f"ws-slow-reader, round {k + 1}"
            await create_rooms(s.port, token, [room, f"control{k}"])
            # the same appends into a room nobody reads: what the data alone adds
            r0 = s.status("VmRSS")
            writer = await Ws.open(s.port, f"/api/rooms/control{k}/ws?afterSeq=999999999&token={token}")
            big = "x" * 3990
            c = await pipeline(writer, [submit(str(uuid.uuid4()), f"{i:05d} {big}") for i in range(n)])
            await writer.close()
            if c.codes != {"ack": n}:
                fail(f"{where}: the control's {n} submits: {c.codes} {c.problem or ''}")
            r1 = s.status("VmRSS")
            t0 = time.perf_counter()
            slow, writer, ids, p = await slow_reader_scene(s.port, token, room, n)
            codes, took = p.codes, p.took
            if p.problem or p.acked != ids:
                fail(f"{where}: the writer's {n} submits: {codes} {p.problem or ''}")
            # the writer is the only other socket: wait until the server has
            # let go of the slow one
            t_acked = time.perf_counter()
            waited = await wait_metric(s.port, "chat_ws_connections", 1, 30)
            t_closed = time.perf_counter()
            if waited is None:
                fail(f"{where}: the socket that does not read was still open 30 s after the last append")
            await writer.close()
            events, end = await drain(slow)
            closed = (
                f"closed by the server {t_closed - t0:.1f} s after the appends began "
                f"({t_closed - t_acked:.1f} s after the last ack)"
                if waited is not None
                else "NOT closed within 30 s"
            )
            r2 = s.status("VmRSS")
            return (
                f"{n} events of 4 KB appended by another socket in {took:.1f} s ({codes}); "
                f"the socket that does not read: {closed}; it then read {events} frames, then {end}\n"
                f"VmRSS: +{r1 - r0} KiB for the same appends into a room without readers first, "
                f"+{r2 - r1} KiB for those with the socket that does not read"
            )

        await rounds(s, "ws-slow-reader: a socket that never reads while 3,000 events of 4 KB are appended", flood)
    finally:
        await s.stop("ws-slow-reader")


async def flood_ws_idle(binary):
    s = Server(binary, WS_ENV)
    n = WS_SOCKETS
    try:
        await wait_ready(s.port)
        names = user_names("idler", n)
        tokens = await users(s.port, names)
        await create_rooms(s.port, tokens[0], ["idle"])

        async def flood(k):
            where = f"ws-idle, round {k + 1}"
            await asyncio.sleep(0.5)
            r0 = s.status("VmRSS")
            socks, notes = [], []
            step = max(1, n // 4)
            for start in range(0, n, step):
                paths = [
                    f"/api/rooms/idle/ws?token={tokens[i // SOCKETS_PER_USER]}"
                    for i in range(start, min(n, start + step))
                ]
                opened, errors = await open_many(s.port, paths)
                socks += opened
                if errors:
                    fail(f"{where}: opening sockets failed: {errors}")
                await asyncio.sleep(0.5)
                r = s.status("VmRSS")
                notes.append(f"{len(socks)}: +{r - r0} KiB ({(r - r0) / max(1, len(socks)):.1f} KiB/socket)")
            gauge = await metric(s.port, "chat_ws_connections")
            if gauge != len(socks):
                fail(f"{where}: chat_ws_connections {gauge} with {len(socks)} sockets open")
            r_open = s.status("VmRSS")
            await close_many(socks)
            waited = await wait_metric(s.port, "chat_ws_connections", 0, 15)
            if waited is None:
                fail(f"{where}: chat_ws_connections not back to 0 within 15 s of closing")
            await asyncio.sleep(0.5)
            r1 = s.status("VmRSS")
            gone = f"{waited:.2f} s" if waited is not None else "NOT within 15 s"
            return (
                f"{len(socks)} idle sockets ({len(names)} users), RSS growth by sockets open: "
                + ", ".join(notes)
                + f"\nall closed (half with the close handshake): chat_ws_connections 0 after {gone}; "
                f"VmRSS {r0} → {r_open} open → {r1} KiB closed"
            )

        await rounds(s, f"ws-idle: {n:,} idle WebSockets", flood)
    finally:
        await s.stop("ws-idle")


async def flood_ws_rooms(binary):
    s = Server(binary, WS_ENV)
    n = WS_ROOMS
    try:
        await wait_ready(s.port)
        names = user_names("roomer", n)
        tokens = await users(s.port, names)
        rooms = [f"r{i:05d}" for i in range(n)]
        t = time.perf_counter()
        await create_rooms(s.port, tokens[0], rooms, 16)
        setup = time.perf_counter() - t

        async def flood(k):
            where = f"ws-rooms, round {k + 1}"
            r0 = s.status("VmRSS")
            paths = [
                f"/api/rooms/{rooms[i]}/ws?token={tokens[i // SOCKETS_PER_USER]}" for i in range(n)
            ]
            socks, errors = await open_many(s.port, paths)
            if errors:
                fail(f"{where}: opening sockets failed: {errors}")
            bus = await metric(s.port, "chat_bus_rooms")
            if bus != len(socks):
                fail(f"{where}: chat_bus_rooms {bus} with {len(socks)} rooms open")
            r_open = s.status("VmRSS")
            await close_many(socks)
            waited = await wait_metric(s.port, "chat_bus_rooms", 0, 15)
            if waited is None:
                fail(f"{where}: chat_bus_rooms {await metric(s.port, 'chat_bus_rooms')} 15 s after closing, not 0")
            await asyncio.sleep(0.5)
            gone = f"{waited:.2f} s" if waited is not None else "NOT within 15 s"
            return (
                f"{len(socks)} rooms each opened by a socket: chat_bus_rooms {bus:.0f}; "
                f"all closed: chat_bus_rooms 0 after {gone}\n"
                f"VmRSS {r0} → {r_open} open → {s.status('VmRSS')} KiB closed"
            )

        out(f"\n   ({n} rooms created in {setup:.1f} s)")
        await rounds(s, f"ws-rooms: {n:,} rooms opened and closed by sockets", flood)
    finally:
        await s.stop("ws-rooms")


async def flood_rooms_list(binary):
    s = Server(binary, NO_LIMITS)
    n = LIST_ROOMS
    try:
        await wait_ready(s.port)
        writer, reader = await users(s.port, ["writer", "reader"])
        rooms = [f"l{i:05d}" for i in range(n)]
        t = time.perf_counter()

        async def fill(http, i):
            # a room, three messages of the writer, the reader's marker on
            # the first: 2 unread for the reader
            room = rooms[i]
            sts = [(await http.call("POST", "/api/rooms", {"roomId": room, "name": f"Room {i}"}, writer))[0]]
            ids = [str(uuid.uuid4()) for _ in range(3)]
            for j, e in enumerate(ids):
                ev = {"eventId": e, "eventType": "MESSAGE_SENT", "content": f"message {j} of {room}"}
                sts.append((await http.call("POST", f"/api/rooms/{room}/events", ev, writer))[0])
            ev = {"eventId": str(uuid.uuid4()), "eventType": "MESSAGE_READ", "targetMessageId": ids[0]}
            sts.append((await http.call("POST", f"/api/rooms/{room}/events", ev, reader))[0])
            return sts

        counts = await on_connections(s.port, n, 16, fill)
        setup = time.perf_counter() - t
        if set(counts) != {201}:
            raise SystemExit(f"filling the rooms failed: {counts}")

        async def flood(k):
            where = f"rooms-list, round {k + 1}"
            http = Http(s.port)
            try:
                whole, first, middle = [], [], []
                page_note = ""
                for g in range(LIST_GETS):
                    st, body, took = await http.call("GET", "/api/rooms", token=reader)
                    whole.append(took if st == 200 else float("inf"))
                    if g == 0:
                        got = json.loads(body)["rooms"] if st == 200 else []
                        unread = {}
                        for r in got:
                            unread[r["unreadCount"]] = unread.get(r["unreadCount"], 0) + 1
                        if len(got) != n or set(unread) != {2}:
                            fail(f"{where}: the list has {len(got)} rooms (want {n}), unread counts {unread} (want all 2)")
                        size = len(body)
                        # A place in the list (docs/api.md: `{createdAt in
                        # ms}.{roomId}`): right after the room before the middle.
                        before = got[n // 2 - 1] if len(got) == n else {"createdAt": "1970-01-01T00:00:00Z", "roomId": ""}
                        created = datetime.datetime.fromisoformat(before["createdAt"].replace("Z", "+00:00"))
                        middle_place = f"{round(created.timestamp() * 1000)}.{before['roomId']}"
                for g in range(LIST_GETS):
                    st, body, took = await http.call("GET", "/api/rooms?limit=100", token=reader)
                    first.append(took if st == 200 else float("inf"))
                    st2, body2, took2 = await http.call(
                        "GET", f"/api/rooms?limit=100&after={middle_place}", token=reader
                    )
                    middle.append(took2 if st2 == 200 else float("inf"))
                    if g == 0:
                        p1 = json.loads(body)
                        p2 = json.loads(body2) if st2 == 200 else {"rooms": []}
                        if len(p1["rooms"]) != 100 or "nextAfter" not in p1:
                            page_note = f" (no paging: {len(p1['rooms'])} rooms answered)"
                        elif len(p2["rooms"]) != 100 or not all(r["unreadCount"] == 2 for r in p2["rooms"]):
                            fail(f"{where}: a page after {middle_place} has {len(p2['rooms'])} rooms")
            finally:
                http.close()
            return (
                f"GET /api/rooms ({n} rooms, {size} bytes, unread 2 each), {LIST_GETS} times: {ms(whole, False)}\n"
                f"GET /api/rooms?limit=100{page_note}: {ms(first, False)}\n"
                f"GET /api/rooms?limit=100&after=<a room in the middle>{page_note}: {ms(middle, False)}"
            )

        out(f"\n   ({n} rooms, {4 * n} messages and read markers written in {setup:.1f} s "
            f"over 16 keep-alive connections: {5 * n / setup:.0f} requests/s)")
        await rounds(s, f"rooms-list: the room list with {n:,} rooms", flood)
    finally:
        await s.stop("rooms-list")


async def flood_sigterm(binary):
    out("\n== sigterm: SIGTERM with clients that do not read, idle sockets, a pipelining socket and silent connections")
    n_idle = 500
    for k in range(ROUNDS):
        where = f"sigterm, round {k + 1}"
        s = Server(binary, WS_ENV)
        restarted = None
        try:
            await wait_ready(s.port)
            names = ["sig"] + user_names("sigidle", n_idle)
            tokens = await users(s.port, names)
            token = tokens[0]
            await create_rooms(s.port, token, ["sig", "pipe", "idle"])
            stop = asyncio.Event()
            probe = asyncio.create_task(probe_health(s.port, stop))
            idle, errors = await open_many(
                s.port,
                [f"/api/rooms/idle/ws?token={tokens[1 + i // SOCKETS_PER_USER]}" for i in range(n_idle)],
            )
            if errors:
                fail(f"{where}: opening idle sockets failed: {errors}")
            # 6 MB of events into the room of a socket that does not read
            slow, writer, _, p = await slow_reader_scene(s.port, token, "sig", 1500)
            took = p.took
            if p.problem or p.codes != {"ack": 1500}:
                fail(f"{where}: the appends before SIGTERM: {p.codes} {p.problem or ''}")
            # silent connections and a request's head half sent
            silent = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(20)]
            for _, w in silent[10:]:
                w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            # a socket pipelining submits when the signal comes
            piper = await Ws.open(s.port, f"/api/rooms/pipe/ws?afterSeq=999999999&token={token}")
            ids = [str(uuid.uuid4()) for _ in range(WS_SUBMITS)]
            frames = [submit(e, f"m{i}") for i, e in enumerate(ids)]
            progress = Pipe()
            pipe = asyncio.create_task(pipeline(piper, frames, timeout=15, p=progress))
            while not pipe.done() and len(progress.answered) < 500:
                await asyncio.sleep(0.005)
            stop.set()
            health = await probe
            out(f"   round {k + 1}: {len(idle)} idle sockets, a socket that has read nothing while "
                f"1500 events of 4 KB were appended ({took:.1f} s), 10 silent and 10 half-sent "
                f"connections, a socket pipelining {WS_SUBMITS} submits; {s.mem()}")
            out(f"      /healthz before the signal: {ms(health)}")
            if any(x == float("inf") for x in health):
                fail(f"{where}: /healthz did not answer 200 within 5 s")
            exited = await s.sigterm(where)
            pp = await pipe
            idle_ends = {}
            ends = await asyncio.gather(*(drain(ws, 2) for ws in idle))
            for _, end in ends:
                idle_ends[end] = idle_ends.get(end, 0) + 1
            slow_events, slow_end = await drain(slow, 2)
            await drain(writer, 1)
            await drain(piper, 1)
            for _, w in silent:
                w.close()
            exit_note = f"exited in {exited:.2f} s (code {s.proc.returncode})" if exited is not None else "did NOT exit"
            out(f"      SIGTERM: {exit_note}; the pipelining socket: {len(pp.answered)} of {WS_SUBMITS} "
                f"answered {pp.codes}, then {pp.problem}; idle sockets: {idle_ends}; the one that "
                f"does not read: {slow_end} after {slow_events} frames")
            # every acknowledged event is in the store after a restart
            s.log.close()
            restarted = Server(binary, WS_ENV, data=s.dir)
            await wait_ready(restarted.port)
            (t2,) = await users(restarted.port, [f"checker{k}"])
            stored = set(await stored_ids(restarted.port, "pipe", t2))
            lost = [e for e in pp.acked if e not in stored]
            out(f"      after a restart: {len(stored)} of the pipelined submits stored; of the "
                f"{len(pp.acked)} acknowledged, {len(lost)} missing")
            if lost:
                fail(f"{where}: {len(lost)} acknowledged events missing after the restart")
        finally:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
            if restarted:
                await restarted.stop(where, label="SIGTERM to the restarted server")
            else:
                s.dir.cleanup()
    # a request in flight is finished: one whose body trickles in holds the
    # exit until its body deadline (CLIENT_TIMEOUT from the end of its head)
    s = Server(binary, {})
    try:
        await wait_ready(s.port)
        r, w = await asyncio.open_connection("127.0.0.1", s.port)
        w.write(b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")

        async def trickle():
            while True:
                await asyncio.sleep(0.5)
                w.write(b" ")
                await w.drain()

        dribble = asyncio.create_task(trickle())
        await asyncio.sleep(2)
        exited = await s.sigterm("sigterm, a body trickling in")
        dribble.cancel()
        try:
            answer = (await asyncio.wait_for(r.read(), 2)).split(b"\r\n", 1)[0].decode()
        except (OSError, asyncio.TimeoutError):
            answer = "none"
        w.close()
        if exited is not None:
            out(f"   a request whose body trickles in (a byte every 0.5 s, its head sent 2 s before "
                f"the signal; CLIENT_TIMEOUT 10 s): exited in {exited:.2f} s; its answer: {answer or 'none'}")
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        s.dir.cleanup()


FLOODS = {
    "methods": flood_methods,
    "sign-in-ids": flood_sign_in_ids,
    "sign-ups": flood_sign_ups,
    "connections": flood_connections,
    "timing": sign_in_timing,
    "ws-pipeline": flood_ws_pipeline,
    "ws-invalid": flood_ws_invalid,
    "ws-slow-reader": flood_ws_slow_reader,
    "ws-idle": flood_ws_idle,
    "ws-rooms": flood_ws_rooms,
    "rooms-list": flood_rooms_list,
    "sigterm": flood_sigterm,
}


async def main():
    if len(sys.argv) < 2 or {"-h", "--help"} & set(sys.argv[1:]):
        out(__doc__)
        return 0
    binary = sys.argv[1]
    names = sys.argv[2:] or list(FLOODS)
    unknown = [n for n in names if n not in FLOODS]
    if unknown:
        out(f"unknown floods: {', '.join(unknown)}; known: {', '.join(FLOODS)}")
        return 2
    raise_nofile()
    t = time.perf_counter()
    took = []
    out(f"server {binary}; floods: {' '.join(names)}; ROUNDS={ROUNDS}; "
        f"{os.cpu_count()} cores; open files {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
        + (f", the server's {os.environ['SERVER_NOFILE']}" if os.environ.get("SERVER_NOFILE") else ""))
    for n in names:
        t1 = time.perf_counter()
        await FLOODS[n](binary)
        took.append(f"{n} {time.perf_counter() - t1:.0f} s")
    out(f"\n== {len(names)} floods in {time.perf_counter() - t:.0f} s ({', '.join(took)})")
    if FAILURES:
        out(f"   {len(FAILURES)} FAILURES:")
        for f in FAILURES:
            out(f"   - {f}")
        return 1
    out("   no correctness failure: every submit answered once and in order, no hung socket, "
        "/healthz always answered, every server exited within 10 s of SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
