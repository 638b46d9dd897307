#!/usr/bin/env python3
"""A WebSocket client from the standard library, for the scripts' checks.

    ws_probe.py HOST PORT PATH

Upgrades PATH on HOST:PORT (RFC 6455 handshake, checked), then submits one
MESSAGE_SENT frame (masked, as a browser sends it) and reads frames until
the server's `ack` of it. Prints one line per step and, last, the stored
event's seq; exits non-zero when the upgrade is refused, the accept key is
wrong, the connection ends, or no ack comes within 15 s.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
import uuid

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def fail(why):
    print(f"ws: FAILED: {why}", flush=True)
    sys.exit(1)


class Conn:
    def __init__(self, sock, pending=b""):
        self.sock = sock
        self.buf = pending

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the connection ended")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.read(8))[0]
        mask = self.read(4) if b1 & 0x80 else None
        data = self.read(n)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return b0 & 0x0F, data

    def send(self, opcode, data):
        mask = os.urandom(4)
        if len(data) < 126:
            head = bytes([0x80 | opcode, 0x80 | len(data)])
        else:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", len(data))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.create_connection((host, port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            fail("the connection ended during the handshake")
        head += chunk
    head, _, pending = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    print(f"ws: {lines[0]}", flush=True)
    if " 101 " not in lines[0] + " ":
        fail(f"no upgrade: {lines[0]}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != want:
        fail(f"Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}, want {want!r}")

    conn = Conn(sock, pending)
    event_id = str(uuid.uuid4())
    submit = {
        "type": "submit",
        "event": {"eventId": event_id, "eventType": "MESSAGE_SENT", "content": "through the proxy"},
    }
    conn.send(0x1, json.dumps(submit).encode())
    print(f"ws: submitted {event_id}", flush=True)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            opcode, data = conn.frame()
            if opcode == 0x9:  # ping
                conn.send(0xA, data)
                continue
            if opcode == 0x8:
                code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
                fail(f"closed by the server ({code})")
            if opcode != 0x1:
                continue
            frame = json.loads(data)
            if frame.get("type") == "event":
                e = frame["event"]
                print(f"ws: event seq {e['seq']} {e['eventType']}", flush=True)
            elif frame.get("type") == "ack" and frame.get("eventId") == event_id:
                print(f"ws: ack, stored as seq {frame['event']['seq']}", flush=True)
                conn.send(0x8, struct.pack(">H", 1000))
                print(frame["event"]["seq"])
                return
            elif frame.get("type") == "error":
                fail(f"error frame {frame}")
    except (EOFError, OSError) as e:
        fail(str(e))
    fail("no ack within 15 s")


if __name__ == "__main__":
    main()
