"""Continuous probes run inside hosts, each probe recorded with its exact send time.

``icmp DESTINATION INTERVAL``: echo requests; prints [seq, sent, rtt_ms or null] per probe.
iputils ping cannot serve here: its pacing drifts with the round-trip time below about 10 ms,
and it prints no send time for lost probes, so an outage could only be located by guessing.

``matrix TIMEOUT DESTINATION...``: a long-lived prober for reachability rounds. Each line
"round PORT" on stdin probes every destination at once, two ways, and answers one JSON line
{"existing": [...], "new": [...]} of the destinations reached: "existing" by an ICMP echo (a
flow this host has used before), "new" by a TCP connection to PORT (a connection never made
before when PORT is fresh; a refusal counts as reached: the destination answered).

``web TIMEOUT``: a long-lived web-connectivity prober for flow matrices. Each stdin line is a
JSON list of tasks, {"site", "resolver", "control"} (DNS lookup, TCP connect, HTTP fetch, as
``experiments.probing.webprobe`` does with dig and curl) or {"host", "port"} (a TCP connection); all
run at once, and one JSON line answers with {"ok", "label", "contacted"} per task.

``echoes TIMEOUT DESTINATION``: one flow, used now and then: each stdin line sends one echo
request on the same socket (so the same identifier: the same flow to a gateway) and answers
its RTT in ms, or null after TIMEOUT seconds.

``dns-poll RESOLVER NAME INTERVAL [PORT]``: asks RESOLVER for NAME every INTERVAL seconds until
stopped, whether or not answers come; prints [sent, answers or null, received or null] per
query.

``udp-send DESTINATION PORT INTERVAL`` and ``udp-sink PORT``: a one-way stream of sequenced
datagrams (seq, send time); the sink prints [seq, sent, received] for each one it got. One-way
is what "when did this host's traffic stop" means: a round trip also loses probes whose
request passed before a cut and whose reply did not.

``junk RATE ADDRESS:PORT...``: datagrams of junk at RATE a second in all, to the targets in
turn, until stopped; prints [datagrams sent] (what an attacker floods a control port with).

SIGINT (or SIGTERM) ends the sending; after a last second for what is still on its way, each
prints one JSON list. ICMP goes through a "ping socket" (what unprivileged ping uses): hosts'
processes are not root; the kernel sets the identifier and hands back only our own replies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import select
import signal
import socket
import struct
import sys
import time

ECHO_REQUEST, ECHO_REPLY = 8, 0


def ping_socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)


def echo(seq: int) -> bytes:
    """An echo request; the kernel fills in the identifier and the checksum."""
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, 0, seq) + b"splinterlab-probe"


def reply_seq(packet: bytes) -> int | None:
    """The sequence number of an echo reply (as a ping socket delivers it: no IP header)."""
    if len(packet) < 8:
        return None
    kind, _, _, _, seq = struct.unpack_from("!BBHHH", packet)
    return seq if kind == ECHO_REPLY else None


DATAGRAM = struct.Struct("!Qd")  # sequence number, send time


def _stopper() -> list[float]:
    stopped: list[float] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.append(time.monotonic()))
    return stopped


def icmp(destination: str, interval: float, linger: float = 1.0) -> list[list]:
    sock = ping_socket()
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
            with contextlib.suppress(OSError):  # no route at this moment: a lost probe
                sock.sendto(echo(seq & 0xFFFF), (destination, 0))
            continue
        wait = min(due, stopped[0] + linger if stopped else due) - now
        try:
            readable, _, _ = select.select([sock], [], [], max(0.0, wait))
        except InterruptedError:
            continue
        if readable:
            got = reply_seq(sock.recv(2048))
            if got is not None:
                # the newest probe with this 16-bit sequence number
                match = max((s for s in sent if s & 0xFFFF == got), default=None)
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


def echoes(timeout: float, destination: str) -> None:
    sock = ping_socket()
    for seq, _ in enumerate(sys.stdin, start=1):
        sent = time.monotonic()
        with contextlib.suppress(OSError):
            sock.sendto(echo(seq & 0xFFFF), (destination, 0))
        rtt = None
        while rtt is None and (left := sent + timeout - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if readable and reply_seq(sock.recv(2048)) == seq & 0xFFFF:
                rtt = (time.monotonic() - sent) * 1000
        print(json.dumps(rtt), flush=True)


def matrix(timeout: float, destinations: list[str]) -> None:
    icmp = ping_socket()
    seq = 0
    for line in sys.stdin:
        words = line.split()
        if words[:1] != ["round"]:
            continue
        port = int(words[1])
        seq = (seq + 1) & 0xFFFF
        for d in destinations:
            with contextlib.suppress(OSError):  # no route at all (our line is down): not reached
                icmp.sendto(echo(seq), (d, 0))
        pending: dict[socket.socket, str] = {}
        for d in destinations:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            if s.connect_ex((d, port)) in (0, errno.EINPROGRESS):
                pending[s] = d
            else:  # refused on the spot for want of a route; writable later, but not reached
                s.close()
        reached_icmp, reached_tcp = set(), set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (pending or len(reached_icmp) <
                                              len(destinations)):
            readable, writable, _ = select.select([icmp], list(pending), [],
                                                  max(0.0, deadline - time.monotonic()))
            for s in writable:
                error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error in (0, errno.ECONNREFUSED):
                    reached_tcp.add(pending[s])
                s.close()
                del pending[s]
            if readable:
                packet, (source, _) = icmp.recvfrom(2048)
                if reply_seq(packet) == seq:
                    reached_icmp.add(source)
        for s in pending:
            s.close()
        print(json.dumps({"existing": sorted(reached_icmp), "new": sorted(reached_tcp)}),
              flush=True)


def _site(task: dict, timeout: float) -> dict:
    from protocols.dnsquery import resolve

    name, contacted = task["site"], [task["resolver"]]
    try:
        answers = resolve(name, task["resolver"], timeout)
    except OSError:
        return {"ok": False, "label": "dns", "contacted": contacted}
    contacted += answers
    if not answers or not set(answers) <= set(task["control"]):
        return {"ok": False, "label": "dns", "contacted": contacted}
    try:
        conn = socket.create_connection((answers[0], 80), timeout=timeout)
    except OSError:
        return {"ok": False, "label": "tcp_ip", "contacted": contacted}
    page = b""
    with conn:
        try:
            conn.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
                         .encode())
            while chunk := conn.recv(65536):
                page += chunk
        except OSError:
            pass  # reset or timeout mid-exchange: judged by what arrived
    ok = page.startswith(b"HTTP/1.1 200") and f"<h1>{name}</h1>".encode() in page
    return {"ok": ok, "label": None if ok else "http", "contacted": contacted}


def _host(task: dict, timeout: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((task["host"], task["port"]))
        ok = True
    except ConnectionRefusedError:
        ok = True  # the host answered: the network let the connection through
    except OSError:
        ok = False
    finally:
        s.close()
    return {"ok": ok, "label": None if ok else "tcp_ip", "contacted": [task["host"]]}


def web(timeout: float) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(32) as pool:
        for line in sys.stdin:
            tasks = json.loads(line)
            results = pool.map(lambda t: _site(t, timeout) if "site" in t else
                               _host(t, timeout), tasks)
            print(json.dumps(list(results)), flush=True)


def junk(rate: float, targets: list[tuple[str, int]]) -> list:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stopped = _stopper()
    start, sent, data = time.monotonic(), 0, b"junk" * 16
    while not stopped:
        due = int((time.monotonic() - start) * rate)
        if sent >= due:
            time.sleep(0.001)
            continue
        for _ in range(due - sent):  # catch up: a flood is bursty anyway
            with contextlib.suppress(OSError):
                sock.sendto(data, targets[sent % len(targets)])
            sent += 1
    return [sent]


def dns_poll(resolver: str, name: str, interval: float, port: int = 53,
             linger: float = 1.0) -> list:
    """Queries sent on schedule whatever comes back (a censor that drops them must not slow
    the poll, or too few are sent after a cut to call it one), answers matched by query id."""
    from protocols.dnsquery import answer_id, parse_a, query

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    stopped = _stopper()
    out: list[list] = []  # [sent, answers or None, received or None], by query id
    due = time.monotonic()
    while not stopped or time.monotonic() < stopped[0] + linger:
        if not stopped and time.monotonic() >= due:
            with contextlib.suppress(OSError):  # unreachable: counts as unanswered
                sock.sendto(query(name, len(out)), (resolver, port))
            out.append([time.time(), None, None])
            due += interval
        wait = max(0.0, due - time.monotonic()) if not stopped else 0.05
        if select.select([sock], [], [], wait)[0]:
            with contextlib.suppress(OSError, struct.error, IndexError):  # junk: no answer
                data = sock.recv(4096)
                k = next((k for k in range(answer_id(data), len(out), 0x10000)
                          if out[k][1] is None), None)
                if k is not None:
                    out[k][1:] = [parse_a(data), time.time()]
    sock.close()
    return out


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "icmp":
        result = icmp(args[0], float(args[1]))
    elif mode == "matrix":
        matrix(float(args[0]), args[1:])
        sys.exit(0)
    elif mode == "web":
        web(float(args[0]))
        sys.exit(0)
    elif mode == "echoes":
        echoes(float(args[0]), args[1])
        sys.exit(0)
    elif mode == "dns-poll":
        result = dns_poll(args[0], args[1], float(args[2]), *map(int, args[3:4]))
    elif mode == "udp-send":
        result = udp_send(args[0], int(args[1]), float(args[2]))
    elif mode == "junk":
        result = junk(float(args[0]), [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1]))
                                       for t in args[1:]])
    else:
        result = udp_sink(int(args[0]))
    print(json.dumps(result))
