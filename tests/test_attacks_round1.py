"""Attacks on the registered-access layer, first red-team round: one per hole it had, each
tried the way an attacker would (from a host as its own user, from abroad, on the wire, at the
daemons), with the layer's answer observed from outside. The second round is in
test_attacks.py and test_attacks_files.py."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import registered_network, run_and_expect

from experiments.probing import probes
from experiments.probing.webprobe import web_probe
from protocols.registered.identity import Card
from topologies.source_validation import TABLE as SAV

pytestmark = pytest.mark.needs_root
TTL_MS = 3000


@pytest.fixture(scope="module")
def isp():
    with registered_network(TTL_MS) as network:
        yield network


def counter(net, router: str, table: str, name: str) -> int:
    out = net.exec(router, "nft", "-j", "list", "counter", "inet", table, name,
                   privileged=True).stdout
    return next(item["counter"]["packets"] for item in json.loads(out)["nftables"]
                if "counter" in item)


def listen_udp(net, node: str, port: int, seconds: float = 2.0) -> subprocess.Popen:
    return net.popen(node, [sys.executable, "-c", (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('0.0.0.0', {port})); s.settimeout({seconds})\n"
        "try:\n  s.recv(100); print('got')\nexcept OSError:\n  print('nothing')")],
        stdout=subprocess.PIPE, text=True)


def forge(net, sender: str, source: str, destination: str, port: int, **how) -> None:
    net.exec(sender, sys.executable, "-c", (
        "from scapy.all import IP, UDP, send; "
        f"send(IP(src='{source}', dst='{destination}')/UDP(dport={port})/b'x', verbose=0)"),
        **how)


# -- 1. inbound traffic went around admission -----------------------------------------------
def test_a_national_server_reaches_a_host_only_through_the_authority(isp):
    net, _, arch = isp
    since = time.time()
    assert probes.ping(net, "web1", "h2").ok
    rows = arch.operator.log(limit=20, identity=arch.identity("h2"), since=since)["admissions"]
    assert any(r["inbound"] and r["src"] == net.address("web1") for r in rows), rows
    arch.kill_authority()
    try:  # fail-closed: without the authority, nobody new reaches the host
        assert not probes.ping(net, "dns1", "h2", timeout=1.5).ok
    finally:
        arch.restart_authority()


def test_a_forged_national_source_from_abroad_is_dropped_at_the_border(isp):
    net, _, _ = isp
    before = sum(counter(net, b, SAV, "border") for b in ("b1", "b2"))
    sink = listen_udp(net, "h1", 9301)
    time.sleep(0.3)
    forge(net, "fweb1", net.address("web1"), net.address("h1"), 9301)  # web1's address
    assert sink.communicate(timeout=10)[0].strip() == "nothing"
    assert sum(counter(net, b, SAV, "border") for b in ("b1", "b2")) > before


# -- 2. admitted flows outlived their TTL, a flush and an outage --------------------------
def test_admitted_flows_both_ways_stop_within_a_ttl_once_the_authority_is_gone(isp):
    net, _, arch = isp
    inbound = probes.UdpStream(net, "fweb1", "h3", interval=0.01, port=9311)
    outbound = probes.UdpStream(net, "h3", "fweb1", interval=0.01, port=9312)
    time.sleep(2.5 * TTL_MS / 1000)  # renewed while in use: they outlive their first grants
    killed = time.time()
    arch.kill_authority()
    try:
        time.sleep(TTL_MS / 1000 + 2.0)
        stopped = {name: probes.cut_time(stream.stop(), killed)
                   for name, stream in (("inbound", inbound), ("outbound", outbound))}
    finally:
        arch.restart_authority()
    for name, after in stopped.items():
        assert after is not None, f"the {name} flow kept running without the authority"
        assert after <= TTL_MS / 1000 + 1.0, f"the {name} flow ran {after:.2f} s"


def test_a_flush_and_a_revocation_cut_established_flows_both_ways_at_once(isp):
    net, _, arch = isp
    victim = "h7"
    rtt = statistics.median(probes.ping_times(net, arch.authority_node, "a3", 10))
    streams = [probes.UdpStream(net, victim, "fweb2", interval=0.001, port=9321),
               probes.UdpStream(net, "fweb2", victim, interval=0.001, port=9322)]
    time.sleep(0.5)
    identity = arch.identity(victim)
    issued = time.time()
    arch.operator.revoke(identity)
    time.sleep(0.5)
    samples = [s.stop() for s in streams]
    cuts = [probes.cut_time(got, issued) for got in samples]
    arch.operator.reinstate(identity)
    assert all(c is not None for c in cuts), cuts
    # until the last datagram that passed the gateway arrives: at most its one-way delay more
    for cut, got in zip(cuts, samples, strict=True):
        allowed = rtt + probes.one_way_ms(got) + 10 + 1
        assert cut * 1000 <= allowed, f"{cut * 1000:.1f} ms, allowed {allowed:.1f} ms"
    assert run_and_expect(lambda: probes.ping(net, victim, "fweb2").ok, timeout=5)
    # a flush: both flows lose their grants at once and must be asked about again
    streams = [probes.UdpStream(net, victim, "fweb2", interval=0.01, port=9323),
               probes.UdpStream(net, "fweb2", victim, interval=0.01, port=9324)]
    time.sleep(0.5)
    issued = time.time()
    arch.operator.flush()
    time.sleep(0.5)
    for s in streams:
        s.stop()
    rows = arch.operator.log(limit=50, identity=identity, since=issued)["admissions"]
    asked = {(r["inbound"], r["dport"]) for r in rows if not r["renewal"]}
    assert {(False, 9323), (True, 9324)} <= asked, rows


# -- 3. registration did not prove who anyone was --------------------------------------------
def test_a_revoked_person_without_a_card_cannot_come_back(isp):
    net, _, arch = isp
    victim = "h6"
    identity = arch.identity(victim)
    arch.operator.revoke(identity)
    try:
        assert "revoked" in arch.bind(victim)
        assert "revoked" in arch.register(victim)
        original = net.address(victim)
        net.readdress(victim)
        try:  # at a new address, with the own card: refused as revoked, not as unknown
            assert "revoked" in arch.bind(victim)
            # a guessed card: a spare person's national id, a made-up secret
            guess = Card(arch.spares[0].national_id, arch.spares[0].real_name, os.urandom(32))
            guess.save(net.private_dir(victim) / "guess.json", net.users[victim])
            assert "bad proof" in arch.register(victim, "guess.json")
            assert not probes.ping(net, victim, "web1").ok
        finally:
            net.readdress(victim, original)
    finally:
        arch.operator.reinstate(identity)


def test_with_someone_elses_card_a_revoked_person_gets_in_and_the_log_blames_the_owner(isp):
    net, _, arch = isp
    victim, lender = "h10", arch.spares[1]
    identity = arch.identity(victim)
    arch.operator.revoke(identity)
    original = net.address(victim)
    try:
        card = arch.lend_card(lender, victim)
        net.readdress(victim)  # the revoked identity still holds the old address
        assert arch.register(victim, card) == ""
        since = time.time()
        assert probes.ping(net, victim, "web1").ok
        borrowed = arch.identity(victim)
        assert borrowed != identity
        assert arch.operator.who(identity=borrowed)["national_id"] == lender.national_id
        rows = arch.operator.log(limit=20, identity=borrowed, since=since)["admissions"]
        assert rows and all(r["identity"] == borrowed for r in rows)
        assert not arch.operator.log(limit=20, identity=identity, since=since)["admissions"]
    finally:
        net.readdress(victim, original)
        arch.operator.reinstate(identity)
        assert arch.bind(victim) == ""


# -- 4. secrets were not secret ----------------------------------------------------------------
READ_ALL = """
import json, os, socket, sys
tried = {}
for name, path in json.loads(sys.argv[1]).items():
    try:
        if name.endswith("socket"):
            kind = socket.SOCK_SEQPACKET if "spawner" in name else socket.SOCK_STREAM
            s = socket.socket(socket.AF_UNIX, kind); s.connect(path); tried[name] = "connected"
        elif name.startswith("write"):
            with open(path, "ab") as f: f.write(b"x"); tried[name] = "written"
        else:
            with open(path, "rb") as f: f.read(16); tried[name] = "read"
    except OSError as e:
        tried[name] = type(e).__name__
tried["what /run/splinterlab holds"] = sorted(os.listdir("/run/splinterlab"))
print(json.dumps(tried))
"""


def test_no_host_can_read_keys_the_registry_or_the_operator_socket(isp):
    from protocols.registered import gateway as gateway_module

    net, _, arch = isp
    gateway_py = gateway_module.__file__
    authority = arch.authority_daemon.process.pid
    gateway = arch.gateway_daemon("a1").pid()
    targets = {
        "registry": str(arch.authority_dir() / "registry.db"),
        "gateway key": str(arch.gateway_dir() / "a1.json"),
        "operator socket": str(arch.authority_dir() / "admin.sock"),
        "gateway spawner socket": str(arch.gateway_dir() / "spawner.sock"),
        "another host's card": str(net.private_dir("h2") / "card.json"),
        "registry via /proc": f"/proc/{authority}/root{arch.authority_dir()}/registry.db",
        "gateway key via /proc": f"/proc/{gateway}/root{arch.gateway_dir()}/a1.json",
        "authority's memory": f"/proc/{authority}/mem",
        "gateway's environment": f"/proc/{gateway}/environ",
    }
    targets |= {"own card": "/run/splinterlab/card.json",  # the control: it can read
                "write the gateway's code": f"/proc/{gateway}/root{Path(gateway_py)}",
                "write another host's card": f"/proc/{gateway}/root{net.private_dir('h2')}"
                                             "/card.json"}
    out = json.loads(net.exec("h1", sys.executable, "-c", READ_ALL,
                              json.dumps(targets)).stdout)
    assert out.pop("what /run/splinterlab holds") == ["card.json", "identity.json"]
    assert out.pop("own card") == "read"
    assert all(result not in ("read", "connected", "written") for result in out.values()), out
    # not just hidden by the host's private mount: refused by the kernel through /proc, and
    # closed to anyone but root where they are
    assert {out[k] for k in out if "/proc" in targets[k]} == {"PermissionError"}, out
    for path in (arch.authority_dir() / "registry.db", arch.gateway_dir() / "a1.json",
                 arch.authority_dir() / "admin.sock", arch.gateway_dir() / "spawner.sock"):
        assert path.stat().st_uid == 0 and path.stat().st_mode & 0o077 == 0, path


def test_no_secret_crosses_the_network_when_a_host_proves_who_it_is(isp):
    from scapy.all import rdpcap

    from protocols.registered import wire

    net, _, arch = isp
    pcap = arch.gateway_dir() / "enrol.pcap"
    capture = net.popen("a2", ["tcpdump", "--immediate-mode", "-Z", "root", "-i", "any", "-w",
                               str(pcap), "-U",
                               "udp port 7400 or udp port 7401 or udp port 7402"],
                        privileged=True, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    original = net.address("h2")
    net.readdress("h2")
    try:
        assert arch.bind("h2") == ""
    finally:
        net.readdress("h2", original)
        assert arch.bind("h2") == ""
    time.sleep(0.5)
    capture.terminate()
    capture.wait()
    raw = pcap.read_bytes()
    key = json.loads((arch.gateway_dir() / "a2.json").read_text())["key"]
    for secret in (arch.cards["h2"].secret, bytes.fromhex(key)):
        assert secret not in raw and secret.hex().encode() not in raw
    kinds = {wire.Header(bytes(p["UDP"].payload)).type for p in rdpcap(str(pcap))
             if p.haslayer("UDP") and p["UDP"].dport == 7400}
    assert {1, 3} <= kinds  # the challenge request and the proof were on the wire
    pcap.unlink()


def test_the_registration_service_answers_on_host_lines_only(isp):
    net, _, _ = isp
    before = counter(net, "a1", "splinter_gw", "service_elsewhere")
    request = json.dumps({"op": "challenge", "national_id": "NID-00001"})
    out = net.exec("web1", sys.executable, "-c", (
        "import socket, sys; s = socket.socket(2, 2); s.settimeout(1); "
        f"s.sendto({request!r}.encode(), ('{net.address('a1')}', 7401))\n"
        "try:\n  print(s.recv(2048))\nexcept OSError:\n  print('nothing')")).stdout
    assert out.strip() == "nothing"
    assert counter(net, "a1", "splinter_gw", "service_elsewhere") > before


# -- 5. the admission log was neither crash-safe nor kept ----------------------------------
# -- 6, 7. policy order, sessions -------------------------------------------------------------
@pytest.fixture(scope="module")
def box():
    out = subprocess.run(["unshare", "--net", sys.executable,
                          str(Path(__file__).with_name("gateway_box.py")), "round_one"],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-1500:]
    return json.loads(out.stdout)


def test_a_late_old_snapshot_or_a_change_out_of_order_loses_no_binding(box):
    assert box["first_sync"] == [0]
    assert box["after_snapshot_5"] == {"applied": 5, "bound": ["198.19.1.2"]}
    assert box["after_late_snapshot_3"] == {"applied": 5, "bound": ["198.19.1.2"]}
    assert box["after_7_alone"] == {"applied": 5, "bound": ["198.19.1.2"]}  # waits for 6
    assert box["after_6"] == {"applied": 7, "bound": ["198.19.1.3"]}          # 6, then 7
    assert 7 in box["syncs_after_gap"]  # a gap that does not close asks for a snapshot


def test_packets_conntrack_does_not_track_are_no_flow_of_anyone(box):
    """A stray SYN-ACK or echo reply from abroad must not make the gateway ask, in the host's
    name, about a flow the host never started (nor be delivered)."""
    assert box["untracked_asked"] == 0
    assert box["untracked_dropped_at_the_gateway"] >= 2  # they did come: 2 dropped there
    assert box["untracked_reaching_the_host"] == 0


def test_a_host_cannot_kill_its_gateway_with_an_unusual_protocol(box):
    """UDP-Lite: nft prints it by name, which once crashed the renewal check."""
    assert box["udplite_renewals_asked"] >= 1  # the renewal, where it once crashed, happened
    assert box["gateway_alive_after_udplite_renewal"] and box["internal_errors"] == 0


def test_packets_waiting_on_a_failed_renewal_are_not_left_in_the_kernel(box):
    assert box["waited_on_a_renewal"] >= 1  # packets did wait on the failing renewal
    assert box["queued_without_verdict"] == 0


def test_an_answer_given_before_a_flush_admits_nothing_after_it(box):
    assert not box["granted_across_a_flush"]


def test_a_host_flooding_the_registration_service_reaches_the_authority_as_a_trickle(box):
    assert 1 <= box["challenge_requests_relayed_of_300"] <= 30


def test_a_farm_flooding_the_registration_service_from_every_device_address_too():
    """One address was rate-limited; a farm has thousands: 250 addresses at 10 a second
    each got every request through. The line as a whole is on a budget too."""
    out = subprocess.run(["unshare", "--net", sys.executable,
                          str(Path(__file__).with_name("gateway_box.py")), "farm_flood"],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-1500:]
    seen = json.loads(out.stdout)
    assert seen["relayed_of_250"] <= 20 + 10 * seen["seconds"] + 2, seen
    assert seen["counters"].get("registration over budget", 0) >= 200


def test_a_restarted_gateway_asks_for_its_state_until_it_has_it(box):
    assert box["syncs_without_snapshot"] >= 2
    assert box["syncs_after_snapshot"] == 0


def test_a_grant_replayed_after_a_gateway_restart_admits_nothing(box):
    assert box["admitted_before_restart"]
    assert box["request_ids_differ"] and box["sessions_differ"]
    assert not box["replayed_grant_admitted"]  # neither the old bytes nor the old session
    counters = box["gateway_counters"]
    assert counters.get("answer to something else", 0) >= 1  # the old session's
    assert sum(n for name, n in counters.items() if name.startswith("rejected")) >= 1


def test_a_silent_operator_client_does_not_stall_decisions(isp):
    net, services, arch = isp
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(arch.authority_dir() / "admin.sock"))  # and never says a word
    try:
        started = time.monotonic()
        assert web_probe(net, services, "h11", "social.abroad.example").ok  # new flows
        assert time.monotonic() - started < 2.0
        assert arch.operator.status()["ttl_ms"] == TTL_MS  # other operators are served
    finally:
        silent.close()
