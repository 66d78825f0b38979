"""Helper for the attack tests: a real gateway daemon in a box, the test playing its authority.

Runs inside a network namespace of its own (``unshare --net``), which becomes the router: a
host namespace on one side (its line 198.19.1.0/29), a remote namespace on the other
(203.0.113.0/29), the gateway daemon in between, and this process as the authority on the
box's loopback, holding the gateway's key, so that it can deliver policy in any order, answer
or not, and replay what it sent before. Prints one JSON object of observations.

    unshare --net python tests/gateway_box.py SCENARIO   (BOX_DIR=dir keeps gw.log there)

SCENARIO is a function of ``box_scenarios``: (host pid, remote pid, workdir) -> observations.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protocols.registered import codec
from protocols.registered.codec import Key, Replay, Sender
from protocols.registered.messages import GATEWAY_PORT, PORT, Action, PolicyFlag, Type
from topologies.calibration import _new_namespace

HOST, REMOTE, OTHER = 0xC6130102, 0xCB007102, 0xC6130103  # 198.19.1.2, 203.0.113.2, .1.3
SECRET = os.urandom(32)


class FakeAuthority:
    def __init__(self, key: Key):
        self.key = key
        self.sender = Sender()
        self.replays: dict[int, Replay] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # SO_RCVBUFFORCE, as the real authority's: a sweep's questions wait here while the
        # test is busy sending, and the default buffer dropped some of them on a loaded machine
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
        self.sock.bind(("127.0.0.1", PORT))
        self.sock.settimeout(0.05)
        self.applied = 0
        self.syncs: list[int] = []
        self.requests: list[tuple] = []   # (session, request id, the flow's five fields)
        self.answer = True
        self.quiet = False  # True: not even keepalives are answered (the authority is gone)
        self.ttl_ms = 3000
        self.sent_grants: list[bytes] = []
        self.challenge_requests = 0

    def send(self, msg_type: Type, body: tuple, items: tuple = ()) -> bytes:
        session, counter = self.sender.next(1)
        data = codec.encode(msg_type, 0, session, counter, body, self.key, items)
        self.sock.sendto(data, ("127.0.0.1", GATEWAY_PORT))
        return data

    def policy(self, seq: int, action: Action, items: tuple, snapshot: bool = False,
               part: int = 0, parts: int = 1) -> None:
        self.send(Type.POLICY, (seq, action, PolicyFlag.SNAPSHOT if snapshot else 0, part,
                                parts, len(items)), items)

    def serve(self, seconds: float) -> None:
        """Answer the gateway for a while: keepalives, acks, syncs, flow requests."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            msg = codec.open_message(data, {1: self.key}.get, self.replays)
            if self.quiet:
                continue
            if msg.type == Type.KEEPALIVE:
                self.send(Type.KEEPALIVE_ACK, msg.body)
            elif msg.type == Type.POLICY_ACK:
                self.applied = msg.body[0]
            elif msg.type == Type.SYNC:
                self.syncs.append(msg.body[0])
            elif msg.type == Type.CHALLENGE_REQUEST:
                self.challenge_requests += 1
            elif msg.type == Type.FLOW_REQUEST:
                self.requests.append((msg.session, *msg.body[:7]))  # a device's proof aside
                if self.answer:
                    rid, src, dst, proto, flags, sport, dport = msg.body[:7]
                    self.sent_grants.append(self.send(Type.GRANT, (
                        rid, msg.session, src, dst, proto, flags, sport, dport, 0, self.ttl_ms,
                        1)))


def ip(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def sh(*argv: str, pid: int | None = None) -> str:
    prefix = ["nsenter", "-t", str(pid), "-n"] if pid else []
    return subprocess.run([*prefix, *argv], check=True, capture_output=True,
                          text=True).stdout


def build(host: int, remote: int) -> None:
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "gw-eth1", "type", "veth", "peer", "name", "h-eth0", "netns",
       str(host))
    sh("ip", "link", "add", "gw-eth2", "type", "veth", "peer", "name", "r-eth0", "netns",
       str(remote))
    sh("ip", "addr", "add", "198.19.1.1/29", "dev", "gw-eth1")
    sh("ip", "addr", "add", "203.0.113.1/29", "dev", "gw-eth2")
    for intf in ("gw-eth1", "gw-eth2"):
        sh("ip", "link", "set", intf, "up")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
    for pid, intf, address, gw in ((host, "h-eth0", "198.19.1.2/29", "198.19.1.1"),
                                   (remote, "r-eth0", "203.0.113.2/29", "203.0.113.1")):
        for argv in (["ip", "addr", "add", address, "dev", intf], ["ip", "link", "set", intf,
                                                                  "up"],
                     ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default",
                                                         "via", gw]):
            sh(*argv, pid=pid)


def start_gateway(workdir: Path, **settings) -> subprocess.Popen:
    """The gateway daemon, its authority at 127.0.0.1 (``settings`` override its config)."""
    config = workdir / "gw.json"
    config.write_text(json.dumps({"id": 1, "key": SECRET.hex(), "address": "127.0.0.1",
                                  "authority": "127.0.0.1", "fail_mode": "closed",
                                  "ttl_ms": 3000, "lines": {"gw-eth1": ["198.19.1.0/29"]},
                                  **settings}))
    (workdir / "gw.status.json").unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "protocols.registered.gateway", str(config)],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "gw.log", "ab"))


def status(workdir: Path) -> dict:
    try:
        return json.loads((workdir / "gw.status.json").read_text())
    except (OSError, ValueError):
        return {}


def bound() -> list[str]:
    out = sh("nft", "list", "set", "inet", "splinter_gw", "bound")
    return sorted(a for a in ("198.19.1.2", "198.19.1.3") if a in out)


def delivered(host: int, remote: int, port: int, meanwhile=None, to: str = "",
              family: int = socket.AF_INET, sport: int = 0) -> bool:
    """Does one UDP datagram from ``host`` reach ``remote`` (at ``to``, by default the box's
    remote address)? ``meanwhile()`` runs once it has been sent."""
    to = to or ip(REMOTE)
    any_ = "::" if family == socket.AF_INET6 else "0.0.0.0"
    sink = subprocess.Popen(["nsenter", "-t", str(remote), "-n", sys.executable, "-c",
                             f"import socket; s = socket.socket({int(family)}, 2); "
                             f"s.bind(('{any_}', {port})); s.settimeout(1.5)\n"
                             "try:\n  s.recv(64); print('got')\nexcept OSError:\n"
                             "  print('nothing')"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    sh(sys.executable, "-c", f"import socket; s = socket.socket({int(family)}, 2); "
       f"s.bind(('{any_}', {sport})); s.sendto(b'x', ('{to}', {port}))", pid=host)
    if meanwhile:
        meanwhile()
    return sink.communicate(timeout=10)[0].strip() == "got"


def main() -> None:
    import box_scenarios

    scenario = getattr(box_scenarios, sys.argv[1])
    host, remote = _new_namespace(), _new_namespace()
    with tempfile.TemporaryDirectory(prefix="splinterlab-box-") as tmp:
        workdir = Path(os.environ.get("BOX_DIR") or tmp)  # BOX_DIR keeps the gateway's log
        try:
            build(host.pid, remote.pid)
            out = scenario(host.pid, remote.pid, workdir)
        finally:
            for process in (host, remote):
                process.kill()
                process.wait()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
