"""Helper for test_attacks: a real gateway daemon in a box, the test playing its authority.

Runs inside a network namespace of its own (``unshare --net``), which becomes the router: a
host namespace on one side (its line 198.19.1.0/29), a remote namespace on the other
(203.0.113.0/29), the gateway daemon in between, and this process as the authority on the
box's loopback, holding the gateway's key, so that it can deliver policy in any order, answer
or not, and replay what it sent before. Prints one JSON object of observations.

    unshare --net python tests/gateway_box.py     (BOX_DIR=dir keeps gw.log there)
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
        self.sock.bind(("127.0.0.1", PORT))
        self.sock.settimeout(0.05)
        self.applied = 0
        self.syncs: list[int] = []
        self.requests: list[tuple] = []   # FLOW_REQUEST bodies
        self.answer = True
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
            if msg.type == Type.KEEPALIVE:
                self.send(Type.KEEPALIVE_ACK, msg.body)
            elif msg.type == Type.POLICY_ACK:
                self.applied = msg.body[0]
            elif msg.type == Type.SYNC:
                self.syncs.append(msg.body[0])
            elif msg.type == Type.CHALLENGE_REQUEST:
                self.challenge_requests += 1
            elif msg.type == Type.FLOW_REQUEST:
                self.requests.append((msg.session, *msg.body))
                if self.answer:
                    rid, src, dst, proto, flags, dport = msg.body
                    self.sent_grants.append(self.send(Type.GRANT, (
                        rid, msg.session, src, dst, proto, flags, dport, 0, 3000, 1)))


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


def start_gateway(workdir: Path) -> subprocess.Popen:
    config = workdir / "gw.json"
    config.write_text(json.dumps({"id": 1, "key": SECRET.hex(), "address": "127.0.0.1",
                                  "authority": "127.0.0.1", "fail_mode": "closed",
                                  "ttl_ms": 3000, "lines": {"gw-eth1": ["198.19.1.0/29"]}}))
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


def delivered(host: int, remote: int, port: int, meanwhile=None) -> bool:
    """Does one UDP datagram from the host reach the remote end? ``meanwhile()`` runs once it
    has been sent."""
    sink = subprocess.Popen(["nsenter", "-t", str(remote), "-n", sys.executable, "-c",
                             "import socket; s = socket.socket(2, 2); "
                             f"s.bind(('0.0.0.0', {port})); s.settimeout(1.5)\n"
                             "try:\n  s.recv(64); print('got')\nexcept OSError:\n"
                             "  print('nothing')"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2); "
       f"s.sendto(b'x', ('{ip(REMOTE)}', {port}))", pid=host)
    if meanwhile:
        meanwhile()
    return sink.communicate(timeout=10)[0].strip() == "got"


def main() -> None:
    host, remote = _new_namespace(), _new_namespace()
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="splinterlab-box-") as tmp:
        workdir = Path(os.environ.get("BOX_DIR") or tmp)  # BOX_DIR keeps the gateway's log
        try:
            build(host.pid, remote.pid)
            auth = FakeAuthority(Key(SECRET))
            gateway = start_gateway(workdir)
            auth.serve(1.0)
            out["first_sync"] = auth.syncs[:1]
            # the state at 5, a snapshot of one part
            auth.policy(5, Action.BIND, ((HOST, 32, 1),), snapshot=True)
            auth.serve(0.3)
            out["after_snapshot_5"] = {"applied": auth.applied, "bound": bound()}
            # a late, older snapshot (what a lost RESET retransmitted after BINDs was)
            auth.policy(3, Action.LIFT, (), snapshot=True)
            auth.serve(0.3)
            out["after_late_snapshot_3"] = {"applied": auth.applied, "bound": bound()}
            # change 7 arrives before change 6
            auth.policy(7, Action.UNBIND, ((HOST, 32, 1),))
            auth.serve(0.3)
            out["after_7_alone"] = {"applied": auth.applied, "bound": bound()}
            auth.policy(6, Action.BIND, ((OTHER, 32, 2),))
            auth.serve(0.3)
            out["after_6"] = {"applied": auth.applied, "bound": bound()}
            # a gap that does not close: the gateway asks for a snapshot
            auth.syncs.clear()
            auth.policy(9, Action.BIND, ((HOST, 32, 1),))
            auth.serve(1.2)
            out["syncs_after_gap"] = list(auth.syncs)
            # back to a known state: the host bound
            auth.policy(9, Action.BIND, ((HOST, 32, 1),), snapshot=True)
            auth.serve(0.3)
            # packets conntrack does not track (a stray SYN-ACK, a lone echo reply) are no
            # flow: nobody asks about them in the host's name, nobody delivers them
            asked = len(auth.requests)
            sh(sys.executable, "-c", (
                "from scapy.all import IP, TCP, ICMP, send; "
                f"send(IP(src='{ip(REMOTE)}', dst='{ip(HOST)}')/TCP(sport=80, dport=40000, "
                "flags='SA'), verbose=0); "
                f"send(IP(src='{ip(REMOTE)}', dst='{ip(HOST)}')/ICMP(type=0), verbose=0)"),
               pid=remote.pid)
            auth.serve(0.5)
            out["untracked_asked"] = len(auth.requests) - asked
            # a protocol nft names (UDP-Lite), used across its renewal: the gateway lives on
            for _ in range(30):
                sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2, 136); "
                   f"s.sendto(b'x', ('{ip(REMOTE)}', 9100))", pid=host.pid)
                auth.serve(0.1)
            auth.serve(1.5)
            out["gateway_alive_after_udplite_renewal"] = gateway.poll() is None
            # a renewal that fails while packets wait for it: they get their verdict
            auth.answer = False
            for _ in range(5):
                sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2, 136); "
                   f"s.sendto(b'x', ('{ip(REMOTE)}', 9100))", pid=host.pid)
                auth.serve(0.4)
            auth.serve(1.0)
            # one line per bound queue: "queue portid waiting ..." (none if the gateway died)
            queues = Path("/proc/net/netfilter/nfnetlink_queue").read_text().split()
            out["queued_without_verdict"] = int(queues[2]) if queues else None
            # a question open when every grant is flushed: its answer, given before the flush
            # but arriving after it, admits nothing
            def flush_then_grant() -> None:
                auth.serve(0.05)
                _, rid, src, dst, proto, flags, dport = auth.requests[-1]
                auth.policy(10, Action.FLUSH, ((0, 0, 1),))
                auth.serve(0.05)
                auth.send(Type.GRANT, (rid, auth.requests[-1][0], src, dst, proto, flags, dport,
                                       0, 3000, 1))
                auth.serve(0.6)

            out["granted_across_a_flush"] = delivered(host.pid, remote.pid, 9200,
                                                      flush_then_grant)
            auth.answer = True
            # a host floods the registration service: the authority hears a trickle
            auth.challenge_requests = 0
            sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2)\n"
               "for _ in range(300): s.sendto(b'{\"op\": \"challenge\", "
               "\"national_id\": \"X1\"}', ('198.19.1.1', 7401))", pid=host.pid)
            auth.serve(0.5)
            out["challenge_requests_relayed_of_300"] = auth.challenge_requests
            # a flow admitted; its GRANT kept
            out["admitted_before_restart"] = delivered(host.pid, remote.pid, 9000,
                                                       lambda: auth.serve(1.0))
            grant = auth.sent_grants[-1]
            first_session = auth.requests[-1][0]
            # the gateway restarts (a new session); the authority stops answering flows
            gateway.kill()
            gateway.wait()
            gateway = start_gateway(workdir)
            auth.syncs.clear()
            auth.serve(2.6)  # it asks for its state until it has it
            out["syncs_without_snapshot"] = len(auth.syncs)
            auth.policy(9, Action.BIND, ((HOST, 32, 1),), snapshot=True)
            auth.serve(0.3)
            auth.syncs.clear()
            auth.serve(1.5)
            out["syncs_after_snapshot"] = len(auth.syncs)
            auth.answer = False

            def replay() -> None:
                auth.serve(0.05)  # its question arrives ...
                auth.sock.sendto(grant, ("127.0.0.1", GATEWAY_PORT))  # ... the old answer
                # ... and one that names the new question but the old session (what a
                # replay would be if request numbers repeated across restarts)
                _, rid, src, dst, proto, flags, dport = auth.requests[-1]
                auth.send(Type.GRANT, (rid, first_session, src, dst, proto, flags, dport, 0,
                                       3000, 1))
                auth.serve(0.6)

            out["replayed_grant_admitted"] = delivered(host.pid, remote.pid, 9000, replay)
            out["request_ids_differ"] = auth.requests[-1][1] != codec.body(Type.GRANT,
                                                                            grant)[0]
            out["sessions_differ"] = auth.requests[-1][0] != first_session
            out["gateway_counters"] = status(workdir).get("counters", {})
            gateway.kill()
            gateway.wait()
        finally:
            for process in (host, remote):
                process.kill()
                process.wait()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
