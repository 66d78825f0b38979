"""IoT telemetry: one process speaks for every device of a farm, one sink per cloud site.

``send``, in the farm (its device blocks are local there: ``topologies.addressing``), reads its
settings as JSON on stdin:

    {"blocks": ["198.18.64.0/18"], "count": 1000, "sinks": [["198.19.3.2", 9301], ...],
     "period_s": 10, "jitter": 0.2, "chatty_share": 0.1, "chatty_period_s": 1,
     "duration_s": 25, "seed": 1}

Device k (the k-th address of the farm's blocks: ``addressing.device_addresses``) reports to
sink k mod len(sinks) every period (a chatty device: every chatty period), each interval drawn
within +-jitter of it, the first at a random phase within one period. Each datagram leaves
from the device's own address (IP_PKTINFO) and carries the device's proof
(``identity.device_header``: under registered access, from the identities and secrets its
maker provisioned, the file ``"devices"`` names; otherwise empty) and then (device, sequence
number, send time). At the end it prints {"devices", "sent", "max_lag_ms"}: how far behind
its schedule the sender itself ever fell.

``sink PORT BLOCKS`` (the farm's, comma-separated), on a server: until SIGINT or SIGTERM, notes
for each device the first datagram it got (its sequence number and one-way delay) and how
many; then prints {"devices": {k: [first_seq, delay_s, count]}, "wrong_source": n} (n:
datagrams whose source address was not their device's own).
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import random
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from protocols.registered import identity
from topologies.addressing import device_addresses

DATAGRAM = struct.Struct("!IId")  # device, sequence number, send time (CLOCK_MONOTONIC)
HEADER = identity.DEVICE_PROOF.size  # the device's proof comes first
IP_PKTINFO = 8                    # linux/in.h
PKTINFO = struct.Struct("i4s4s")  # interface, source address to use, (unused)
SENDING, SPOKEN = "sending", "spoken"  # the sender's clock started; every device sent once


def schedule(settings: dict) -> list[tuple[float, int, float]]:
    """(first send, device, period) for every device: the same for a given seed."""
    rng = random.Random(settings["seed"])
    out = []
    for k in range(settings["count"]):
        chatty = rng.random() < settings["chatty_share"]
        period = settings["chatty_period_s"] if chatty else settings["period_s"]
        out.append((rng.uniform(0, period), k, period))
    return out


def proofs(settings: dict, addresses: list[int], sinks: list[tuple[str, int]]) -> list[bytes]:
    """Each device's proof for its one flow (to its sink), from what its maker provisioned:
    an empty one without (permissionless networks have nothing to prove)."""
    empty = identity.DEVICE_PROOF.pack(identity.DEVICE_MAGIC, 0, bytes(16))
    if not settings.get("devices"):
        return [empty] * settings["count"]
    provisioned = json.loads(Path(settings["devices"]).read_text())["devices"]
    out = []
    for k in range(settings["count"]):
        ident, secret = provisioned[k]
        host, port = sinks[k % len(sinks)]
        out.append(identity.device_header(ident, bytes.fromhex(secret), addresses[k],
                                          int(ipaddress.IPv4Address(host)), port))
    return out


def send(settings: dict) -> dict:
    addresses = device_addresses(settings["blocks"])[:settings["count"]]
    sinks = [(a, int(p)) for a, p in settings["sinks"]]
    headers = proofs(settings, addresses, sinks)
    jitter, rng = settings["jitter"], random.Random(settings["seed"] + 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    start = time.monotonic()
    print(SENDING, file=sys.stderr, flush=True)
    heap = [(start + at, k, period, 1) for at, k, period in schedule(settings)]
    heapq.heapify(heap)
    end = start + settings["duration_s"]
    sent, lag, first = 0, 0.0, settings["count"]
    while heap and heap[0][0] < end:
        due, k, period, seq = heapq.heappop(heap)
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            now = time.monotonic()
        lag = max(lag, now - due)
        source = PKTINFO.pack(0, addresses[k].to_bytes(4, "big"), bytes(4))
        try:
            sock.sendmsg([headers[k], DATAGRAM.pack(k, seq, now)],
                         [(socket.IPPROTO_IP, IP_PKTINFO, source)], 0, sinks[k % len(sinks)])
            sent += 1
        except OSError:  # no route, a full buffer: the datagram is lost, as a device's would be
            pass
        if seq == 1 and not (first := first - 1):  # every device has spoken once, or tried
            print(SPOKEN, file=sys.stderr, flush=True)
        heapq.heappush(heap, (due + period * rng.uniform(1 - jitter, 1 + jitter), k, period,
                              seq + 1))
    return {"devices": settings["count"], "sent": sent, "max_lag_ms": round(lag * 1000, 3)}


def sink(port: int, blocks: list[str]) -> dict:
    stop: list[bool] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.append(True))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    print("listening", file=sys.stderr, flush=True)
    devices: dict[int, list] = {}
    wrong, own = 0, device_addresses(blocks)
    while not stop:
        try:
            data, (source, _) = sock.recvfrom(64)
        except (TimeoutError, InterruptedError):
            continue
        now = time.monotonic()
        if len(data) != HEADER + DATAGRAM.size:
            continue
        k, seq, sent = DATAGRAM.unpack_from(data, HEADER)
        seen = devices.get(k)
        if seen is None:
            devices[k] = [seq, now - sent, 1]
        else:
            seen[2] += 1
        wrong += k >= len(own) or int(ipaddress.IPv4Address(source)) != own[k]
    return {"devices": devices, "wrong_source": wrong}


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "send":
        print(json.dumps(send(json.loads(sys.stdin.read()))), flush=True)
    elif mode == "sink" and len(sys.argv) == 4:
        print(json.dumps(sink(int(sys.argv[2]), sys.argv[3].split(","))), flush=True)
    else:
        sys.exit("usage: python -m experiments.probing.telemetry send < SETTINGS.json | "
                 "sink PORT BLOCKS")


if __name__ == "__main__":
    main()
