"""Registered access on isp, from the hosts' side: registration, enforcement, revocation,
blocks, shutdowns, anti-spoofing, and the log that ties flows to people."""

from __future__ import annotations

import json
import statistics
import sys
import time

import pytest
from helpers import run_and_expect

import topologies
from experiments import probes
from experiments.webprobe import web_probe
from protocols.registered import Registered
from protocols.services import Services
from topologies.network import EmulatedNetwork

pytestmark = pytest.mark.needs_root
UNREGISTERED = "h12"


@pytest.fixture(scope="module")
def isp():
    with EmulatedNetwork(topologies.build("isp"), static_routes=False) as net:
        services = Services(net).start()
        arch = Registered(register_hosts=False)
        arch.start(net, services)
        for host in arch.people:
            if host != UNREGISTERED:
                assert arch.register(host) == ""
        yield net, services, arch


def nft_counter(net, router: str, name: str) -> int:
    out = net.exec(router, "nft", "-j", "list", "counter", "inet", "splinter_gw", name).stdout
    return next(item["counter"]["packets"] for item in json.loads(out)["nftables"]
                if "counter" in item)


def udp_received(net, receiver: str, sender: str, source: str, port: int = 9999) -> bool:
    """Does a datagram with a forged source, sent from ``sender``, reach ``receiver``?"""
    listener = net.popen(receiver, [sys.executable, "-c", (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('0.0.0.0', {port})); s.settimeout(2)\n"
        "try:\n  s.recv(100); print('got')\nexcept TimeoutError:\n  print('nothing')")],
        stdout=-1, text=True)
    time.sleep(0.3)
    net.exec(sender, sys.executable, "-c", (
        "from scapy.all import IP, UDP, send; "
        f"send(IP(src='{source}', dst='{net.address(receiver)}')/UDP(dport={port})/b'x', "
        "verbose=0)"))
    return listener.communicate(timeout=10)[0].strip() == "got"


def test_an_unregistered_host_reaches_nothing_but_the_registration_service(isp):
    net, services, arch = isp
    for target in ("web1", "h1", "fweb1", "dns1"):
        assert not probes.ping(net, UNREGISTERED, target).ok, target
    assert not probes.ping(net, UNREGISTERED, "a4").ok  # not even its own router
    assert web_probe(net, services, UNREGISTERED, "www.home.example", timeout=1).label == "dns"
    assert arch.register(UNREGISTERED) == ""
    assert probes.ping(net, UNREGISTERED, "web1").ok


def test_registered_hosts_use_ordinary_tools(isp):
    net, services, _ = isp
    assert probes.ping(net, "h1", "h7").ok
    for site in ("www.home.example", "news.abroad.example"):
        r = web_probe(net, services, "h1", site)
        assert r.ok, f"{site}: {r.label} {r.detail}"
    end = probes.iperf3(net, "h1", "web1", seconds=2)
    assert end["sum_received"]["bits_per_second"] > 50e6  # a 100 Mbit/s access line


def test_nobody_registers_twice_or_as_a_stranger(isp):
    _, _, arch = isp
    assert "already registered" in arch.register("h1")
    assert "unknown person" in arch.register("h2", "NID-99999", "Nobody Atall")


def test_forged_sources_are_dropped_at_the_gateway(isp):
    net, _, _ = isp
    before = nft_counter(net, "a2", "spoofed")
    assert not udp_received(net, "web1", "h2", net.address("h3"))  # another host's address
    assert nft_counter(net, "a2", "spoofed") > before
    spare = str(net.plan.line("h2")[3])  # an unbound address of h2's own line
    unregistered = nft_counter(net, "a2", "unregistered")
    assert not udp_received(net, "web1", "h2", spare)
    assert nft_counter(net, "a2", "unregistered") > unregistered
    assert udp_received(net, "web1", "h2", net.address("h2"))  # its own bound address passes


def test_moving_address_needs_the_credential(isp):
    net, _, arch = isp
    original = net.address("h4")
    net.readdress("h4")
    try:
        assert not probes.ping(net, "h4", "web1").ok
        assert arch.bind("h4") == ""
        assert probes.ping(net, "h4", "web1").ok
    finally:
        net.readdress("h4", original)
        assert arch.bind("h4") == ""
    assert probes.ping(net, "h4", "web1").ok


def test_revocation_stops_the_victims_traffic_within_rtt_plus_10_ms(isp):
    net, _, arch = isp
    victim = "h6"
    gateway = next(iter(net.graph.neighbors(victim)))
    rtt = statistics.median(probes.ping_times(net, arch.authority_node, gateway, 20))
    identity = arch.identity(victim)
    stream = probes.UdpStream(net, victim, "web1", interval=0.001)
    time.sleep(0.5)
    issued = time.time()
    arch.operator.revoke(identity)
    time.sleep(0.5)
    effect = probes.cut_time(stream.stop(), issued)
    assert effect is not None, "the victim's traffic never stopped"
    print(f"\nrevocation took effect after {1000 * effect:.1f} ms "
          f"(authority-gateway RTT {rtt:.2f} ms, one datagram a millisecond)")
    assert 1000 * effect <= rtt + 10 + 1
    # the victim's ways out: a new address, a new registration
    original = net.address(victim)
    net.readdress(victim)
    assert "revoked" in arch.bind(victim)
    net.readdress(victim, original)
    assert "banned" in arch.register(victim)
    arch.operator.reinstate(identity)
    assert run_and_expect(lambda: probes.ping(net, victim, "web1").ok, timeout=5)


def test_a_blocked_destination_is_unreachable_for_everyone(isp):
    net, services, arch = isp
    arch.operator.block("203.0.113.10/32")  # fweb1: news and mail
    try:
        for host in ("h1", "h3"):
            assert web_probe(net, services, host, "news.abroad.example",
                             timeout=1).label == "tcp_ip"
        assert not web_probe(net, services, "h1", "mail.abroad.example", timeout=1).ok
        assert web_probe(net, services, "h1", "social.abroad.example").ok
    finally:
        arch.operator.unblock("203.0.113.10/32")
    assert run_and_expect(lambda: web_probe(net, services, "h1", "news.abroad.example").ok,
                          timeout=5)


def test_a_region_shutdown_leaves_only_essential_services(isp):
    net, services, arch = isp
    essential = [f"{net.address(n)}/32" for n in ("dns1", "web1")]
    arch.operator.shutdown("north", essential)
    try:
        assert web_probe(net, services, "h1", "gov.home.example").ok        # north, essential
        assert not web_probe(net, services, "h1", "news.abroad.example", timeout=1).ok
        assert not probes.ping(net, "h1", "h3").ok                           # north to south
        assert not probes.ping(net, "h3", "h1").ok                           # south to north
        assert web_probe(net, services, "h3", "news.abroad.example").ok      # south is open
    finally:
        arch.operator.restore()
    assert run_and_expect(lambda: probes.ping(net, "h1", "h3").ok, timeout=5)


def test_the_log_ties_every_flow_to_an_identity(isp):
    net, services, arch = isp
    since = time.time()
    assert web_probe(net, services, "h9", "wiki.abroad.example").ok
    identity = arch.identity("h9")
    log = arch.operator.log(limit=50, identity=identity, since=since)["admissions"]
    destinations = {row["dst"] for row in log if row["granted"]}
    assert {net.address("dns1"), net.address("fweb2")} <= destinations
    assert all(row["identity"] == identity for row in log)
