"""Continuous probes run inside hosts, each probe recorded with its exact send time.

``icmp DESTINATION INTERVAL``: echo requests; prints [seq, sent, rtt_ms or null] per probe.
iputils ping cannot serve here: its pacing drifts with the round-trip time below about 10 ms,
and it prints no send time for lost probes, so an outage could only be located by guessing.

``udp-send DESTINATION PORT INTERVAL`` and ``udp-sink PORT``: a one-way stream of sequenced
datagrams (seq, send time); the sink prints [seq, sent, received] for each one it got. One-way
is what "when did this host's traffic stop" means: a round trip also loses probes whose
request passed before a cut and whose reply did not.

SIGINT (or SIGTERM) ends the sending; after a last second for what is still on its way, each
prints one JSON list.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(ident: int, seq: int) -> bytes:
    payload = b"splinterlab-probe"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + \
        payload


DATAGRAM = struct.Struct("!Qd")  # sequence number, send time


def _stopper() -> list[float]:
    stopped: list[float] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.append(time.monotonic()))
    return stopped


def run(destination: str, interval: float, linger: float = 1.0) -> list[list]:
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sent: dict[int, tuple[float, float]] = {}  # seq -> (wall clock, monotonic)
    rtt: dict[int, float] = {}
    stopped = _stopper()
    start = time.monotonic()
    seq = 0
    while not stopped or time.monotonic() < stopped[0] + linger:
        now = time.monotonic()
        due = float("inf") if stopped else start + seq * interval
        if now >= due:
            seq += 1
            sent[seq] = (time.time(), time.monotonic())
            sock.sendto(echo(ident, seq & 0xFFFF), (destination, 0))
            continue
        wait = min(due, stopped[0] + linger if stopped else due) - now
        try:
            readable, _, _ = select.select([sock], [], [], max(0.0, wait))
        except InterruptedError:
            continue
        if readable:
            packet = sock.recv(2048)
            header = (packet[0] & 0x0F) * 4
            kind, _, _, reply_ident, reply_seq = struct.unpack_from("!BBHHH", packet, header)
            if kind == ECHO_REPLY and reply_ident == ident:
                # the newest probe with this 16-bit sequence number
                match = max((s for s in sent if s & 0xFFFF == reply_seq), default=None)
                if match is not None and match not in rtt:
                    rtt[match] = (time.monotonic() - sent[match][1]) * 1000
    return [[s, sent[s][0], rtt.get(s)] for s in sorted(sent)]


def udp_send(destination: str, port: int, interval: float) -> list:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stopped = _stopper()
    start, seq = time.monotonic(), 0
    while not stopped:
        delay = start + seq * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
            continue
        seq += 1
        # e.g. no route for a moment: the sink will not see it, which is the point
        with contextlib.suppress(OSError):
            sock.sendto(DATAGRAM.pack(seq, time.time()), (destination, port))
    return [seq]


def udp_sink(port: int, linger: float = 1.0) -> list[list]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("listening", file=sys.stderr, flush=True)
    stopped = _stopper()
    got = []
    while not stopped or time.monotonic() < stopped[0] + linger:
        try:
            readable, _, _ = select.select([sock], [], [], 0.05)
        except InterruptedError:
            continue
        if readable:
            data = sock.recv(64)
            if len(data) == DATAGRAM.size:
                seq, sent = DATAGRAM.unpack(data)
                got.append([seq, sent, time.time()])
    return got


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "icmp":
        result = run(args[0], float(args[1]))
    elif mode == "udp-send":
        result = udp_send(args[0], int(args[1]), float(args[2]))
    else:
        result = udp_sink(int(args[0]))
    print(json.dumps(result))
