#!/usr/bin/env python3
"""Floods of the edge-hardening issue against a release server on loopback.

Starts the server binary given as the first argument (a fresh data directory,
a free loopback port) once per flood, runs each flood twice, and prints the
server's resident memory (VmRSS, and the peak VmHWM, from /proc/<pid>/status)
before and after each round, and /healthz latency (a probe on a fresh
connection every 50 ms) during each round. A second identical round should
add nothing beyond the first. Bounded in count and time; loopback only.

  scripts/attack.sh            builds the release server and runs this
  python3 scripts/attack.py ./target/release/server [flood ...]

Floods: methods, sign-in-ids, sign-ups, connections, timing.
SERVER_NOFILE=256 runs the server with that open-files limit (finding 7);
ROUNDS=n runs each flood n times (default 2).
"""

import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, env):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        full = {k: v for k, v in os.environ.items()}
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

        self.proc = subprocess.Popen(
            [binary], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=limit,
        )

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()


async def request(port, method, path, body=None, headers=(), timeout=30.0):
    """One request on a fresh connection: (status, body bytes, seconds)."""
    t = time.perf_counter()
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += f"Content-Length: {len(data)}\r\n"
        for h in headers:
            head += h + "\r\n"
        w.write(head.encode() + b"\r\n" + data)
        await w.drain()
        raw = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    return status, raw.split(b"\r\n\r\n", 1)[-1], time.perf_counter() - t


async def wait_ready(port):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await request(port, "GET", "/healthz", timeout=2))[0] == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("the server did not start")


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
    """Runs make(i) for i in range(n), `concurrency` at a time."""
    sem = asyncio.Semaphore(concurrency)
    results = []

    async def one(i):
        async with sem:
            try:
                results.append(await make(i))
            except (OSError, asyncio.TimeoutError) as e:
                results.append(e)

    await asyncio.gather(*(one(i) for i in range(n)))
    return results


def ms(xs):
    failed = sum(1 for x in xs if x == float("inf"))
    xs = sorted(x for x in xs if x != float("inf"))
    if not xs:
        return f"no answer (n={failed})"
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    out = f"median {statistics.median(xs) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms (n={len(xs)})"
    return out + (f", {failed} not answered 200 within 5 s" if failed else "")


ROUNDS = int(os.environ.get("ROUNDS", "2"))


async def rounds(server, name, flood, rounds=ROUNDS, extra=None):
    await wait_ready(server.port)
    print(f"\n== {name}")
    print(f"   start: VmRSS {server.status('VmRSS')} KiB, VmHWM {server.status('VmHWM')} KiB")
    for k in range(rounds):
        stop = asyncio.Event()
        probe = asyncio.create_task(probe_health(server.port, stop))
        t = time.perf_counter()
        summary = await flood(k)
        took = time.perf_counter() - t
        stop.set()
        health = await probe
        print(
            f"   round {k + 1}: {summary} in {took:.1f} s; VmRSS {server.status('VmRSS')} KiB, "
            f"VmHWM {server.status('VmHWM')} KiB; /healthz {ms(health)}"
        )
        if extra:
            print("   " + await extra())


def count(results):
    out = {}
    for r in results:
        key = type(r).__name__ if isinstance(r, Exception) else r[0]
        out[key] = out.get(key, 0) + 1
    return out


async def flood_methods(binary):
    s = Server(binary, {})
    try:
        async def flood(k):
            res = await bounded(
                3000, 32, lambda i: request(s.port, f"M{k}X{i}", f"/x/{k}/{i}")
            )
            return f"3000 made-up methods {count(res)}"

        async def metrics_size():
            _, body, _ = await request(s.port, "GET", "/metrics")
            series = [l for l in body.decode().splitlines() if l.startswith("chat_http_requests_total{")]
            return f"/metrics {len(body)} bytes, {len(series)} request series"

        await rounds(s, "finding 4: made-up methods", flood, extra=metrics_size)
    finally:
        s.stop()


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

        await rounds(s, "finding 5: failed sign-ins with huge distinct ids", flood)
    finally:
        s.stop()


async def flood_sign_ups(binary):
    s = Server(binary, {"SIGN_UPS_PER_MINUTE": "0"})
    try:
        await wait_ready(s.port)
        creds = {"userId": "bystander", "password": "correct horse"}
        await request(s.port, "POST", "/api/users", creds)
        _, body, _ = await request(s.port, "POST", "/api/sessions", creds)
        token = json.loads(body)["token"]
        gets = []

        async def bystander(stop):
            while not stop.is_set():
                st, _, t = await request(
                    s.port, "GET", "/api/rooms", headers=[f"Authorization: Bearer {token}"]
                )
                gets.append(t if st == 200 else float("inf"))
                await asyncio.sleep(0.02)

        idle = []
        stop = asyncio.Event()
        task = asyncio.create_task(bystander(stop))
        await asyncio.sleep(1)
        stop.set()
        await task
        idle, gets = gets, []

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
            return f"128 concurrent sign-ups {count(res)}; another user's GET /api/rooms {ms(gets)} (idle: {ms(idle)})"

        await rounds(s, "finding 6: 128 concurrent sign-ups", flood)
    finally:
        s.stop()


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
            ok = sum(1 for c in closed if not isinstance(c, Exception))
            return f"300 silent/slow/idle connections, {ok} closed by the server within {time.perf_counter() - t:.1f} s"

        await rounds(s, "finding 7: 300 connections that never finish", flood)
    finally:
        s.stop()


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
        print("\n== finding 14: sign-in timing")
        print(f"   known user, wrong password: {ms(known)}")
        print(f"   unknown user:               {ms(unknown)}")
    finally:
        s.stop()


FLOODS = {
    "methods": flood_methods,
    "sign-in-ids": flood_sign_in_ids,
    "sign-ups": flood_sign_ups,
    "connections": flood_connections,
    "timing": sign_in_timing,
}


async def main():
    binary = sys.argv[1]
    names = sys.argv[2:] or list(FLOODS)
    for n in names:
        await FLOODS[n](binary)


if __name__ == "__main__":
    asyncio.run(main())
