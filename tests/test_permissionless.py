"""Permissionless IP on the isp topology: OSPF reachability, the border censor, and evasions.

Expected outcomes are data: which site fails with which label follows from the policy and the
control records (two sites share fweb1's address, so blocking one address blocks both).
"""

from __future__ import annotations

import pytest

import topologies
from experiments.probing import probes
from experiments.probing.webprobe import web_probe
from protocols.censor import CensorPolicy
from protocols.permissionless import Permissionless
from protocols.services import Services
from topologies.network import EmulatedNetwork

pytestmark = pytest.mark.needs_root

POLICY = CensorPolicy(block_addresses=("news.abroad.example",),
                      block_names=("social.abroad.example",), block_keywords=("wiki",))


@pytest.fixture(scope="module")
def isp():
    with EmulatedNetwork(topologies.build("isp"), static_routes=False) as net:
        services = Services(net).start()
        arch = Permissionless()
        arch.start(net, services)
        yield net, services, arch


@pytest.fixture
def censored(isp):
    net, services, arch = isp
    arch.censor.apply(POLICY)
    yield net, services, arch
    arch.censor.apply(CensorPolicy())
    for host in list(net.moved):
        net.readdress(host, str(net.plan.address(host)))


def expected_labels(services) -> dict[str, str | None]:
    """Site -> label the policy should cause: shared addresses share the address block."""
    blocked = {a for site in POLICY.block_addresses for a in services.records[site]}
    out = {}
    for site in services.sites():
        if set(services.records[site]) & blocked:
            out[site] = "tcp_ip"
        elif site in POLICY.block_names:
            out[site] = "dns"
        elif any(k in site for k in POLICY.block_keywords):
            out[site] = "http"
        else:
            out[site] = None
    return out


def test_every_pair_reachable_after_ospf_converged(isp):
    net, _, arch = isp
    print(f"\nOSPF converged in {arch.routing.convergence_s:.2f} s")
    assert arch.routing.convergence_s < 30
    results = probes.pingall(net)
    assert [(r.src, r.dst) for r in results if not r.ok] == []


def test_every_site_works_without_a_censor(isp):
    net, services, _ = isp
    for site in services.sites():
        r = web_probe(net, services, "h1", site)
        assert r.ok, f"{site}: {r.label} {r.detail}"


def test_censor_fails_each_blocked_site_with_its_label_and_nothing_else(censored):
    net, services, _ = censored
    seen = {site: web_probe(net, services, "h2", site, timeout=2).label
            for site in services.sites()}
    assert seen == expected_labels(services)
    assert probes.ping(net, "h2", "web1").ok  # national traffic never crosses the border


@pytest.mark.parametrize("site, method", [
    ("social.abroad.example", "foreign_resolver"),  # the resolver lies; ask another
    ("news.abroad.example", "relay"),               # the address is blocked; go around it
    ("social.abroad.example", "relay"),             # the relay resolves names itself
    ("wiki.abroad.example", "tunnel"),              # the keyword is visible; encrypt it
    ("news.abroad.example", "tunnel"),
])
def test_evasions_restore_access(censored, site, method):
    net, services, _ = censored
    assert not web_probe(net, services, "h3", site, timeout=2).ok
    r = web_probe(net, services, "h3", site, method)
    assert r.ok, f"{method} to {site}: {r.label} {r.detail}"


def test_a_plain_relay_does_not_hide_a_keyword(censored):
    net, services, _ = censored
    assert web_probe(net, services, "h3", "wiki.abroad.example", "relay", timeout=2).label == \
        "http"


def test_a_site_that_moves_address_escapes_an_address_block(censored):
    net, services, _ = censored
    old = list(services.records["news.abroad.example"])
    new = services.move_site("news.abroad.example")
    try:
        r = web_probe(net, services, "h4", "news.abroad.example")
        assert r.ok and r.addresses == (new,), r
    finally:
        services.records["news.abroad.example"] = old
        services.set_lies(services.lies)


def test_a_person_blocked_by_address_escapes_by_changing_address(censored):
    net, services, arch = censored
    arch.censor.apply(CensorPolicy(block_addresses=("h5",)))
    assert web_probe(net, services, "h5", "mail.abroad.example", timeout=2).label == "tcp_ip"
    assert web_probe(net, services, "h5", "www.home.example").ok  # the border sees no more
    new = net.readdress("h5")
    assert new != str(net.plan.address("h5"))
    assert web_probe(net, services, "h5", "mail.abroad.example").ok


def test_censor_changes_are_timestamped(censored):
    _, _, arch = censored
    change = arch.censor.history[-1]
    assert change.requested <= change.effective < change.requested + 10
    assert change.policy["block_keywords"] == ("wiki",)


def test_cutting_the_border_disconnects_the_country_and_only_that(censored):
    net, services, arch = censored
    arch.censor.apply(CensorPolicy(cut_border=True))
    assert not probes.ping(net, "h6", "fweb2").ok
    assert probes.ping(net, "h6", "web1").ok
    assert probes.ping(net, "fweb1", "fweb2").ok  # abroad is still abroad
