"""Attacks on the registered-access layer, second red-team round, on real daemons: a host
against its own machine, the control plane, its gateway's decisions, IPv6, the log. Each was
first written to succeed against the code before its defence (the commit that added it says
how it failed); ``test_attacks_files.py`` holds the round's attacks that need no network,
``test_attacks_round1.py`` the first round's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import registered_network, run_and_expect

import topologies
from experiments.probing import probes
from topologies.addressing import device_addresses

pytestmark = pytest.mark.needs_root
HOST, REMOTE = "198.19.1.2", "203.0.113.2"  # the gateway box's


def box(scenario: str) -> dict:
    """A real gateway between a host and a remote namespace, the test as its authority
    (``gateway_box``, ``box_scenarios``)."""
    out = subprocess.run(["unshare", "--net", sys.executable,
                          str(Path(__file__).with_name("gateway_box.py")), scenario],
                         capture_output=True, text=True, timeout=180,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-1500:]
    return json.loads(out.stdout)


def test_ipv6_never_crosses_a_gateway():
    """Every match of the gateway's inet table was ``ip ...``: IPv6 passed untouched."""
    seen = box("ipv6")
    assert seen["before_gateway"], "the path carries IPv6 without a gateway (the control)"
    assert not seen["host_to_remote"] and not seen["remote_to_host"], seen
    assert seen["ipv4_still_passes"]


def test_a_fail_open_gateway_decides_alone_only_without_its_authority():
    """A question unanswered in 2 x 200 ms became a local grant even with the authority
    there (and its late DENY was dropped): only an unreachable authority opens the gate."""
    seen = box("fail_open")
    assert not seen["silent_but_reachable"], seen["counters_reachable"]
    assert seen["counters_reachable"].get("unanswered", 0) >= 1
    assert seen["counters_reachable"].get("failed open", 0) == 0
    assert seen["authority_gone"] and seen["counters_gone"].get("failed open", 0) >= 1


def test_after_a_flush_the_first_packet_back_is_asked_about_as_the_hosts_own_flow():
    """Withdrawing a grant deleted its conntrack entry: the remote end's next packet was
    asked about as a new flow it started towards the host's port, wrongly logged and granted
    as one that lets the remote open connections to that port from any port."""
    seen = box("initiator")
    assert seen["admitted"] and seen["reply_delivered"]
    host, remote = (int.from_bytes(bytes(map(int, a.split("."))), "big")
                    for a in (HOST, REMOTE))
    assert seen["asked_after_flush"][:1] == [[host, remote, 17, 0, 40000, 9600]], seen


def test_a_port_sweep_reaches_the_authority_only_within_the_hosts_budget():
    seen = box("budget")
    assert seen["large"]["asked"] >= 1000, "the sweep asks about each port (the control)"
    small = seen["small"]
    assert small["asked"] <= 50 + 20 * small["seconds"] + 5, small
    assert small["over_budget"] >= 1900 - small["asked"]
    assert 1 <= seen["refusals_logged"] <= 2 * small["seconds"] + 2


def test_a_restarted_gateway_hears_nothing_the_authority_said_before_it_started():
    """Its replay memory starts empty: a snapshot of the last five seconds, played again
    after the state had moved on, put the old state back in force."""
    seen = box("restart_replay")
    assert seen["bound_when_said"] == ["198.19.1.2", "198.19.1.3"]
    assert seen["bound_after_change"] == ["198.19.1.2"]
    assert seen["counters_before_restart"].get("rejected replay", 0) == 1  # it did arrive
    assert seen["bound_after_replay"] == [], seen["counters_after_restart"]
    assert seen["counters_after_restart"].get("rejected sent before this receiver started") == 1


# -- on the isp network ------------------------------------------------------------------------
TTL_MS = 3000


@pytest.fixture(scope="module")
def isp():
    with registered_network(TTL_MS) as network:
        yield network


def nft_counter(net, router: str, name: str) -> int:
    out = net.exec(router, "nft", "-j", "list", "counter", "inet", "splinter_gw", name,
                   privileged=True).stdout
    return next(item["counter"]["packets"] for item in json.loads(out)["nftables"]
                if "counter" in item)


def junk(net, sender: str, address: str, port: int, count: int = 2000, **how) -> None:
    net.exec(sender, sys.executable, "-c", (
        "import socket; s = socket.socket(2, 2)\n"
        f"for _ in range({count}): s.sendto(b'junk' * 20, ('{address}', {port}))"), **how)


def rejected(counters: dict) -> int:
    return sum(n for name, n in counters.items() if name.startswith("rejected"))


def test_no_host_reaches_the_control_plane_even_flooding_it(isp):
    """A host was granted UDP to the authority's 7400 and any gateway's 7402: junk there
    cost an HMAC each and starved the gateway's loop. Now nothing from a host gets there."""
    net, _, arch = isp
    a2 = str(net.plan.loopbacks["a2"])
    auth = net.address(arch.authority_node)
    before = {"a2": rejected(arch.gateway_status("a2").get("counters", {})),
              "authority": rejected(arch.operator.status()["counters"]),
              "control": nft_counter(net, "a1", "control")}
    junk(net, "h1", a2, 7402)
    junk(net, "h1", auth, 7400)
    time.sleep(1.5)  # status files are written once a second
    assert rejected(arch.gateway_status("a2").get("counters", {})) == before["a2"]
    assert rejected(arch.operator.status()["counters"]) == before["authority"]
    assert nft_counter(net, "a1", "control") - before["control"] >= 4000
    # the control: junk from a router's own address does reach a2's port, where the ruleset
    # lets only the authority through, and from the authority's router it reaches the daemon
    elsewhere = nft_counter(net, "a2", "control_elsewhere")
    junk(net, "c1", a2, 7402, count=100, privileged=True)
    assert run_and_expect(lambda: nft_counter(net, "a2", "control_elsewhere") - elsewhere >= 100,
                          timeout=5)


def test_a_blocked_host_starts_nothing(isp):
    """A block was checked only against the remote end: a blocked host still reached
    servers at home and abroad."""
    net, _, arch = isp
    assert probes.ping(net, "h5", "web1").ok and probes.ping(net, "h5", "fweb1").ok
    arch.operator.block(f"{net.address('h5')}/32")
    try:
        assert not probes.ping(net, "h5", "web1", timeout=1.5).ok
        assert not probes.ping(net, "h5", "fweb1", timeout=1.5).ok
    finally:
        arch.operator.restore()
    assert run_and_expect(lambda: probes.ping(net, "h5", "web1").ok, timeout=5)


def test_a_card_lent_into_a_link_the_borrower_planted_overwrites_nothing_of_roots(isp):
    """The borrower's private directory is theirs: a link there, named as the lent card will
    be, made root overwrite any file and give it to the borrower."""
    net, _, arch = isp
    canary = arch.gateway_dir() / "canary.py"
    canary.write_text("root's\n")
    lender = arch.spares[2]
    name = f"borrowed-{lender.national_id}.json"
    net.exec("h8", "ln", "-s", str(canary), f"/run/splinterlab/{name}")
    assert arch.lend_card(lender, "h8") == name
    assert canary.read_text() == "root's\n" and canary.stat().st_uid == 0
    assert json.loads((net.private_dir("h8") / name).read_text())["national_id"] == \
        lender.national_id


def test_the_log_says_when_a_flows_other_end_is_only_what_abroad_claimed(isp):
    """Borders drop only national sources: anyone abroad can send as another foreign address
    and the log named that address as the other end. The log now marks such ends unverified;
    a national end, source-validated by its routers, is verified."""
    net, _, arch = isp
    identity = arch.identity("h2")
    since = time.time()
    net.exec("fweb1", sys.executable, "-c", (
        "from scapy.all import IP, UDP, send; "
        f"send(IP(src='{net.address('fweb2')}', dst='{net.address('h2')}')/UDP(dport=9700),"
        " verbose=0)"))
    assert probes.ping(net, "h2", "web1").ok
    rows = run_and_expect(lambda: arch.operator.log(limit=20, identity=identity,
                                                    since=since)["admissions"], timeout=5)
    forged = [r for r in rows if r["inbound"] and r["src"] == net.address("fweb2")]
    national = [r for r in rows if r["dst"] == net.address("web1")]
    assert forged and not any(r["peer_verified"] for r in forged), rows
    assert national and all(r["peer_verified"] for r in national)


def test_a_grant_admits_one_flow_and_nothing_else():
    """A grant was keyed by initiator, responder, protocol and responder port: one admission
    covered every source port of the initiator (tens of thousands of conntrack entries), any
    ICMP type, a whole GRE tunnel. Now a grant is one flow (both ports; an echo by its
    identifier); ICMP beyond echo and protocols without ports are no flow at all."""
    seen = box("coarse_grant")
    assert seen["first"] and seen["other_source_port"]
    assert seen["asked_for_other_source_port"] == 1, seen
    host, remote = (int.from_bytes(bytes(map(int, a.split("."))), "big")
                    for a in (HOST, REMOTE))
    asked = sorted({tuple(r) for r in seen["asked_icmp_and_gre"]})
    assert asked == [(host, remote, 1, 0, 101, 0), (host, remote, 1, 0, 202, 0)], asked
    assert seen["nft_icmp_type"] >= 1 and seen["nft_protocol"] >= 1


# -- a farm's devices ----------------------------------------------------------------------
SPEAK = """
import json, socket, sys
from protocols.registered import identity
src, dst, port, device, secret = sys.argv[1:6]
header = identity.device_header(int(device), bytes.fromhex(secret), int(src), int(dst),
                                int(port)) if secret else identity.DEVICE_PROOF.pack(
    identity.DEVICE_MAGIC, int(device), bytes(16))
s = socket.socket(2, 2)
info = (8, int(src).to_bytes(4, "big"))  # IP_PKTINFO: send from this device address
s.sendmsg([header + b"telemetry"], [(0, 8, b"\\0" * 4 + info[1] + b"\\0" * 4)], 0,
          (socket.inet_ntoa(int(dst).to_bytes(4, "big")), int(port)))
"""


@pytest.fixture(scope="module")
def farm():
    g = topologies.build("isp")
    g.nodes["h3"]["farm"] = 10
    with registered_network(TTL_MS, g) as (net, _, arch):
        yield net, arch, json.loads((net.private_dir("h3") / "devices.json").read_text())


def speaks(net, device: int, secret: str, as_address: int, port: int) -> bool:
    """A datagram from the farm, from ``as_address``, showing ``device``'s proof made with
    ``secret`` ('' for none): does web1 get it?"""
    sink = net.popen("web1", [sys.executable, "-c", (
        "import socket; s = socket.socket(2, 2); "
        f"s.bind(('0.0.0.0', {port})); s.settimeout(2)\n"
        "try:\n  s.recv(100); print('got')\nexcept OSError:\n  print('nothing')")],
        stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    web1 = int.from_bytes(bytes(map(int, net.address("web1").split("."))), "big")
    net.exec("h3", sys.executable, "-c", SPEAK, str(as_address), str(web1), str(port),
             str(device), secret)
    return sink.communicate(timeout=10)[0].strip() == "got"


def test_a_device_speaking_from_a_siblings_address_is_refused_and_named(farm):
    """The farm's devices share one line: any of them could send from any sibling's
    address, and the log blamed the sibling; revoking a device changed nothing. Each device
    now proves every flow it starts with its own secret."""
    net, arch, provisioned = farm
    (k, k_secret), (j, j_secret) = provisioned["devices"][0], provisioned["devices"][1]
    at_k, at_j = device_addresses(net.plan.devices["h3"])[:2]
    assert speaks(net, j, j_secret, at_j, 9801), "a device as itself gets through (control)"
    since = time.time()
    assert not speaks(net, k, k_secret, at_j, 9802)  # k, from j's address, with its own proof
    assert not speaks(net, j, "", at_j, 9803)  # j's address and name, no secret: no proof
    rows = arch.operator.log(limit=50, since=since)["admissions"]
    named = [r for r in rows if r["dport"] == 9802]
    assert named and named[0]["identity"] == k and named[0]["reason"] == "address in use", rows
    assert [r["reason"] for r in rows if r["dport"] == 9803] == ["bad proof"]
    arch.operator.revoke(k)
    try:
        assert not speaks(net, k, k_secret, at_k, 9804)  # revoked, at home
        assert not speaks(net, k, k_secret, at_j, 9805)  # revoked, at a sibling's
        assert speaks(net, j, j_secret, at_j, 9806)  # the sibling is not hurt
    finally:
        arch.operator.reinstate(k)
