"""Scenarios for the gateway box (``gateway_box``): each gets a host and a remote namespace on
either side of a real gateway daemon and plays its authority; returns what it observed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gateway_box import (
    HOST,
    OTHER,
    REMOTE,
    SECRET,
    FakeAuthority,
    bound,
    delivered,
    ip,
    sh,
    start_gateway,
    status,
)

from protocols.registered import codec, journal
from protocols.registered.codec import Key
from protocols.registered.gateway import UNREACHABLE_S
from protocols.registered.messages import GATEWAY_PORT, Action, FlowFlag, PolicyFlag, Reason, Type


def nft_counter(name: str) -> int:
    out = sh("nft", "-j", "list", "counter", "inet", "splinter_gw", name)
    return next(item["counter"]["packets"] for item in json.loads(out)["nftables"]
                if "counter" in item)


def round_one(host: int, remote: int, workdir: Path) -> dict:
    """The first red-team round: policy order, untracked packets, UDP-Lite, a failed
    renewal, a flush, a registration flood, a restart and a replay."""
    out: dict = {}
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
    # flow: nobody asks about them in the host's name, nobody delivers them; they do reach
    # the gateway (its "invalid" counter) and not the host (a sniffer there)
    asked, invalid = len(auth.requests), nft_counter("invalid")
    sniffer = subprocess.Popen(["nsenter", "-t", str(host), "-n", sys.executable, "-c", (
        "from scapy.all import sniff; "
        f"print(len(sniff(filter='src {ip(REMOTE)} and (tcp or icmp)', timeout=1.5)))")],
        stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sh(sys.executable, "-c", (
        "from scapy.all import IP, TCP, ICMP, send; "
        f"send(IP(src='{ip(REMOTE)}', dst='{ip(HOST)}')/TCP(sport=80, dport=40000, "
        "flags='SA'), verbose=0); "
        f"send(IP(src='{ip(REMOTE)}', dst='{ip(HOST)}')/ICMP(type=0), verbose=0)"),
       pid=remote)
    auth.serve(0.5)
    out["untracked_asked"] = len(auth.requests) - asked
    out["untracked_dropped_at_the_gateway"] = nft_counter("invalid") - invalid
    out["untracked_reaching_the_host"] = int(sniffer.communicate(timeout=10)[0])
    # a protocol nft names (UDP-Lite), used across its renewal: the gateway renews it and
    # lives on, without an internal error
    for _ in range(30):  # one flow: the same source port each time
        sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2, 136); "
           f"s.bind(('0.0.0.0', 41000)); s.sendto(b'x', ('{ip(REMOTE)}', 9100))", pid=host)
        auth.serve(0.1)
    auth.serve(1.5)
    out["udplite_renewals_asked"] = sum(r[4] == 136 and r[5] & FlowFlag.RENEWAL
                                        for r in auth.requests)
    out["gateway_alive_after_udplite_renewal"] = gateway.poll() is None
    out["internal_errors"] = status(workdir).get("counters", {}).get("internal error", 0)
    # a renewal that fails while packets wait for it: with grants of 300 ms, the question
    # (two tries of 200 ms) outlives the grant, so packets come while it is open; they get
    # their verdict when it fails
    auth.ttl_ms = 300
    sender = subprocess.Popen(["nsenter", "-t", str(host), "-n", sys.executable, "-c", (
        "import socket, time; s = socket.socket(2, 2); s.bind(('0.0.0.0', 41001))\n"
        f"for _ in range(150): s.sendto(b'x', ('{ip(REMOTE)}', 9101)); time.sleep(0.02)")])
    auth.serve(1.0)  # admitted and renewed while in use
    auth.answer = False
    while sender.poll() is None:  # still in use: its next renewal goes unanswered
        auth.serve(0.1)
    # the last question fails after two waits, each up to a third of UNREACHABLE_S once the
    # answer timer has backed off (its questions went unanswered): then nothing is open
    deadline = time.monotonic() + 2 * UNREACHABLE_S / 3 + 2.0  # and a status written
    auth.serve(1.5)
    while status(workdir).get("pending") and time.monotonic() < deadline:
        auth.serve(0.2)
    auth.ttl_ms = 3000
    out["waited_on_a_renewal"] = status(workdir).get("counters", {}).get(
        "waiting on a renewal", 0)
    # one line per bound queue: "queue portid waiting ..." (none if the gateway died)
    queues = Path("/proc/net/netfilter/nfnetlink_queue").read_text().split()
    out["queued_without_verdict"] = int(queues[2]) if queues else None
    # a question open when every grant is flushed: its answer, given before the flush
    # but arriving after it, admits nothing
    def flush_then_grant() -> None:
        auth.serve(0.05)
        _, rid, src, dst, proto, flags, sport, dport = auth.requests[-1]
        auth.policy(10, Action.FLUSH, ((0, 0, 1),))
        auth.serve(0.05)
        auth.send(Type.GRANT, (rid, auth.requests[-1][0], src, dst, proto, flags, sport, dport,
                               0, 3000, 1))
        auth.serve(0.6)

    out["granted_across_a_flush"] = delivered(host, remote, 9200,
                                              flush_then_grant)
    auth.answer = True
    # a host floods the registration service: the authority hears a trickle
    auth.challenge_requests = 0
    sh(sys.executable, "-c", "import socket; s = socket.socket(2, 2)\n"
       "for _ in range(300): s.sendto(b'{\"op\": \"challenge\", "
       "\"national_id\": \"X1\"}', ('198.19.1.1', 7401))", pid=host)
    auth.serve(0.5)
    out["challenge_requests_relayed_of_300"] = auth.challenge_requests
    # a flow admitted; its GRANT kept
    out["admitted_before_restart"] = delivered(host, remote, 9000,
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
        _, rid, src, dst, proto, flags, sport, dport = auth.requests[-1]
        auth.send(Type.GRANT, (rid, first_session, src, dst, proto, flags, sport, dport, 0,
                               3000, 1))
        auth.serve(0.6)

    out["replayed_grant_admitted"] = delivered(host, remote, 9000, replay)
    out["request_ids_differ"] = auth.requests[-1][1] != codec.body(Type.GRANT,
                                                                    grant)[0]
    out["sessions_differ"] = auth.requests[-1][0] != first_session
    out["gateway_counters"] = status(workdir).get("counters", {})
    gateway.kill()
    gateway.wait()
    return out


# -- second round ------------------------------------------------------------------------------
def _started(workdir: Path, **settings) -> tuple[FakeAuthority, object]:
    """A gateway with the host bound (a snapshot at 1)."""
    auth = FakeAuthority(Key(SECRET))
    gateway = start_gateway(workdir, **settings)
    deadline = time.monotonic() + 20  # a busy machine starts a gateway slowly
    while time.monotonic() < deadline and \
            not status(workdir).get("counters", {}).get("snapshots applied"):
        auth.policy(1, Action.BIND, ((HOST, 32, 1),), snapshot=True)
        auth.serve(0.5)
    auth.serve(0.3)
    return auth, gateway


def _stop(gateway) -> None:
    gateway.kill()
    gateway.wait()


def ipv6(host: int, remote: int, workdir: Path) -> dict:
    """IPv6 across the gateway, both ways: it passed every ``ip`` match of the inet table."""
    sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    for pid, intf, mine, router in ((host, "h-eth0", "2001:db8:1::2", "2001:db8:1::1"),
                                    (remote, "r-eth0", "2001:db8:2::2", "2001:db8:2::1")):
        sh("ip", "-6", "addr", "add", f"{mine}/64", "dev", intf, "nodad", pid=pid)
        sh("ip", "-6", "route", "add", "default", "via", router, pid=pid)
    for intf, mine in (("gw-eth1", "2001:db8:1::1"), ("gw-eth2", "2001:db8:2::1")):
        sh("ip", "-6", "addr", "add", f"{mine}/64", "dev", intf, "nodad")
    time.sleep(3)  # the routers' link-local addresses leave their duplicate detection
    v6 = {"family": 10}
    out = {"before_gateway": delivered(host, remote, 9400, to="2001:db8:2::2", **v6)}
    auth, gateway = _started(workdir)
    out["host_to_remote"] = delivered(host, remote, 9401, lambda: auth.serve(0.5),
                                      to="2001:db8:2::2", **v6)
    out["remote_to_host"] = delivered(remote, host, 9402, lambda: auth.serve(0.5),
                                      to="2001:db8:1::2", **v6)
    out["ipv4_still_passes"] = delivered(host, remote, 9403, lambda: auth.serve(1.0))
    _stop(gateway)
    return out


def fail_open(host: int, remote: int, workdir: Path) -> dict:
    """A fail-open gateway whose authority is there but slow must not decide alone; one whose
    authority is gone does."""
    auth, gateway = _started(workdir, fail_mode="open")
    auth.answer = False  # keepalives answered, questions not
    out = {"silent_but_reachable": delivered(host, remote, 9500, lambda: auth.serve(1.5))}
    out["counters_reachable"] = status(workdir).get("counters", {})
    auth.quiet = True  # gone: nothing answered for longer than the gateway's patience
    auth.serve(3.5)
    out["authority_gone"] = delivered(host, remote, 9501, lambda: auth.serve(1.0))
    out["counters_gone"] = status(workdir).get("counters", {})
    _stop(gateway)
    return out


def initiator(host: int, remote: int, workdir: Path) -> dict:
    """The host starts a UDP flow (its port 40000 to the remote's 9600); every grant is
    flushed; the remote's reply comes first. The gateway must ask about the host's flow, not
    about a new one the remote started towards port 40000."""
    auth, gateway = _started(workdir)
    out = {"admitted": delivered(host, remote, 9600, lambda: auth.serve(1.0), sport=40000)}
    auth.policy(2, Action.FLUSH, ((0, 0, 1),))
    auth.serve(0.5)
    asked = len(auth.requests)
    out["reply_delivered"] = delivered(remote, host, 40000, lambda: auth.serve(1.0),
                                       to=ip(HOST), sport=9600)
    out["asked_after_flush"] = [list(r[2:]) for r in auth.requests[asked:]]
    _stop(gateway)
    return out


def budget(host: int, remote: int, workdir: Path) -> dict:
    """The host sweeps 2 000 UDP ports: with a budget of 20 a second (burst 50), at most that
    many questions reach the authority; with a large budget, every one does (the control)."""
    sweep = ("import socket, time; s = socket.socket(2, 2)\n"
             f"for p in range(20000, 22000): s.sendto(b'x', ('{ip(REMOTE)}', p))")
    out = {}
    for name, allowance in (("large", [100_000, 100_000]), ("small", [20, 50])):
        auth, gateway = _started(workdir, question_budget=allowance)
        asked = len(auth.requests)
        started = time.monotonic()
        sh(sys.executable, "-c", sweep, pid=host)
        auth.serve(1.0)
        out[name] = {"asked": len(auth.requests) - asked,
                     "seconds": round(time.monotonic() - started, 2),
                     "over_budget": status(workdir).get("counters", {}).get("over budget", 0)}
        _stop(gateway)
        auth.sock.close()
    logged = journal.read(workdir / "gw.status.journal")[0]
    out["refusals_logged"] = sum(r.reason == Reason.OVER_BUDGET for r in logged)
    return out


def restart_replay(host: int, remote: int, workdir: Path) -> dict:
    """A snapshot the authority sent (both hosts bound) is played again after a later change
    (the second unbound): before a restart the replay window refuses it; after a restart,
    whose replay memory starts empty, it was applied, an old state, until the start time
    refused it."""
    auth, gateway = _started(workdir)
    said = auth.send(Type.POLICY, (2, Action.BIND, PolicyFlag.SNAPSHOT, 0, 1, 2),
                     ((HOST, 32, 1), (OTHER, 32, 2)))
    auth.serve(0.3)
    out = {"bound_when_said": bound()}
    auth.policy(3, Action.UNBIND, ((OTHER, 32, 2),))
    auth.serve(0.3)
    out["bound_after_change"] = bound()
    auth.sock.sendto(said, ("127.0.0.1", GATEWAY_PORT))
    auth.serve(1.2)  # the status file is written once a second
    out["counters_before_restart"] = status(workdir).get("counters", {})
    _stop(gateway)
    gateway = start_gateway(workdir)
    auth.serve(1.0)  # it asks for its state; nobody answers with one
    auth.sock.sendto(said, ("127.0.0.1", GATEWAY_PORT))
    auth.serve(1.2)
    out["bound_after_replay"] = bound()
    out["counters_after_restart"] = status(workdir).get("counters", {})
    _stop(gateway)
    return out


def coarse_grant(host: int, remote: int, workdir: Path) -> dict:
    """How much one grant admits. A UDP flow from the host's port 40000 to the remote's
    9800 is admitted; then the same from port 40001, an echo of another identifier, an ICMP
    timestamp request and a GRE packet: each must be a question of its own, or nothing."""
    auth, gateway = _started(workdir)
    out = {"first": delivered(host, remote, 9800, lambda: auth.serve(1.0), sport=40000)}
    asked = len(auth.requests)
    out["other_source_port"] = delivered(host, remote, 9800, lambda: auth.serve(1.0),
                                         sport=40001)
    out["asked_for_other_source_port"] = len(auth.requests) - asked
    asked = len(auth.requests)
    scapy = subprocess.Popen(["nsenter", "-t", str(host), "-n", sys.executable, "-c", (
        "from scapy.all import IP, ICMP, GRE, send; "
        f"send(IP(dst='{ip(REMOTE)}')/ICMP(type=8, id=101), verbose=0); "
        f"send(IP(dst='{ip(REMOTE)}')/ICMP(type=8, id=202), verbose=0); "
        f"send(IP(dst='{ip(REMOTE)}')/ICMP(type=13, id=101), verbose=0); "
        f"send(IP(dst='{ip(REMOTE)}')/GRE()/IP(dst='{ip(REMOTE)}'), verbose=0)")])
    while scapy.poll() is None:  # answered while scapy starts (it takes seconds)
        auth.serve(0.2)
    auth.serve(1.2)
    out["asked_icmp_and_gre"] = [list(r[2:]) for r in auth.requests[asked:]]
    out["counters"] = status(workdir).get("counters", {})
    out["nft_protocol"] = nft_counter("protocol")
    out["nft_icmp_type"] = nft_counter("icmp_type")
    _stop(gateway)
    return out


def farm_flood(host: int, remote: int, workdir: Path) -> dict:
    """The registration service flooded from 250 addresses of a farm's device block: per
    address each is within its rate, so the line as a whole must be bounded too."""
    for k in range(1, 251):
        sh("ip", "addr", "add", f"198.18.64.{k}/32", "dev", "lo", pid=host)
    sh("ip", "route", "add", "198.18.64.0/24", "dev", "gw-eth1", "via", "198.19.1.2")
    auth, gateway = _started(workdir, lines={"gw-eth1": ["198.19.1.0/29", "198.18.64.0/24"]})
    started = time.monotonic()
    sh(sys.executable, "-c", "import socket\n"
       "for k in range(1, 251):\n"
       "  s = socket.socket(2, 2); s.bind((f'198.18.64.{k}', 0))\n"
       "  s.sendto(b'{\"op\": \"challenge\", \"national_id\": \"X1\"}', "
       "('198.19.1.1', 7401))", pid=host)
    auth.serve(1.2)
    out = {"relayed_of_250": auth.challenge_requests,
           "seconds": round(time.monotonic() - started, 2),
           "counters": status(workdir).get("counters", {})}
    _stop(gateway)
    return out
