"""Registered access on isp, from the hosts' side: registration with a card, enforcement both
ways, revocation, blocks, shutdowns, the log that ties flows to people, and the records a run
keeps. (Attacks on the layer are in test_attacks.py.)"""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from pathlib import Path

import pytest
from helpers import run_and_expect

import topologies
from experiments.probing import probes
from experiments.probing.webprobe import web_probe
from protocols.registered.architecture import Registered
from protocols.registered.identity import Card
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
        for host in arch.cards:
            if host != UNREGISTERED:
                assert arch.register(host) == ""
        yield net, services, arch


def test_an_unregistered_host_reaches_nothing_but_the_registration_service(isp):
    net, services, arch = isp
    for target in ("web1", "h1", "fweb1", "dns1"):
        assert not probes.ping(net, UNREGISTERED, target).ok, target
        assert not probes.ping(net, target, UNREGISTERED).ok, target  # nor is it reached
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


def test_flows_towards_a_host_are_admitted_and_logged_too(isp):
    net, _, arch = isp
    since = time.time()
    assert probes.ping(net, "web1", "h2").ok  # a national server starts it
    identity = arch.identity("h2")
    rows = arch.operator.log(limit=20, identity=identity, since=since)["admissions"]
    assert any(r["inbound"] and r["src"] == net.address("web1") and r["granted"]
               for r in rows), rows


def test_nobody_registers_twice_and_a_wrong_card_proves_nothing(isp):
    net, _, arch = isp
    assert "already registered" in arch.register("h1")
    forged = Card(arch.cards["h2"].national_id, "Bela", b"x" * 32)  # h2's person, wrong secret
    forged.save(net.private_dir("h5") / "forged.json", net.users["h5"])
    assert "bad proof" in arch.register("h5", "forged.json")
    stranger = Card("NID-99999", "Nobody Atall", b"y" * 32)
    stranger.save(net.private_dir("h5") / "stranger.json", net.users["h5"])
    assert "unknown person" in arch.register("h5", "stranger.json")


def test_moving_address_needs_the_card(isp):
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


def test_a_gateway_that_restarts_gets_its_policy_back(isp):
    """Its router crashes (the gateway dies, its interfaces go down) and comes back: the new
    gateway reports that it has nothing and gets a snapshot of everything."""
    net, _, arch = isp
    net.crash("a3")
    net.restore("a3")
    assert run_and_expect(lambda: probes.ping(net, "h3", "web1").ok, timeout=10)
    assert run_and_expect(lambda: probes.ping(net, "web1", "h7").ok, timeout=5)


def _memory_kb(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines)}


def test_each_gateway_is_its_own_process_in_its_router_and_shares_one_interpreter(isp):
    """Forked by the spawner into its router's namespaces, a gateway keeps private only what
    it changed: well under half the interpreter it shares (alone, it would keep all of it)."""
    net, _, arch = isp
    spawner = arch.spawner.daemons[None].pid()
    pids = {router: arch.gateway_daemon(router).pid() for router in arch.gateways}
    assert len(set(pids.values())) == len(pids)
    for router, pid in pids.items():
        for ns in ("net", "mnt"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") == \
                os.readlink(f"/proc/{net[router].pid}/ns/{ns}"), (router, ns)
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == spawner
    interpreter = _memory_kb(spawner)["Rss"]
    private = {r: _memory_kb(pid)["Private_Dirty"] for r, pid in pids.items()}
    assert max(private.values()) < interpreter / 2, (interpreter, private)


def test_the_log_ties_every_flow_to_an_identity(isp):
    net, services, arch = isp
    since = time.time()
    assert web_probe(net, services, "h9", "wiki.abroad.example").ok
    identity = arch.identity("h9")
    log = arch.operator.log(limit=50, identity=identity, since=since)["admissions"]
    destinations = {row["dst"] for row in log if row["granted"]}
    assert {net.address("dns1"), net.address("fweb2")} <= destinations
    assert all(row["identity"] == identity for row in log)


def test_a_run_keeps_the_registry_and_the_log_without_secrets(isp, tmp_path):
    net, _, arch = isp
    assert probes.ping(net, "h7", "fweb2").ok
    db, log = arch.keep_records(tmp_path)
    copy = sqlite3.connect(db)
    assert copy.execute("SELECT COUNT(*) FROM gateways WHERE key IS NOT NULL").fetchone() == (0,)
    assert copy.execute("SELECT COUNT(*) FROM people WHERE card_secret IS NOT NULL"
                        ).fetchone() == (0,)
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    h7 = arch.cards["h7"].national_id
    assert any(r["national_id"] == h7 and r["dst"] == net.address("fweb2") for r in rows)
    assert {r["decided_by"] for r in rows} == {"authority"}
