"""OSPF under failures, seen from the hosts: recovery times and exactly which pairs are lost.

Recovery targets: a silent link failure heals within the dead interval with hello 1 s /
dead 3 s, within a second with sub-second "fast hellos" or with BFD. A crashed router cuts off
exactly the pairs that the residual graph (computed here with networkx) disconnects.
"""

from __future__ import annotations

import threading
from itertools import permutations

import networkx as nx
import pytest
from helpers import run_and_expect

import topologies
from experiments.probing import probes
from protocols.ospf import Ospf, OspfSettings
from topologies.network import EmulatedNetwork

pytestmark = pytest.mark.needs_root


def ospf_network(spec: str, settings: OspfSettings) -> tuple[EmulatedNetwork, Ospf]:
    net = EmulatedNetwork(topologies.build(spec), static_routes=False)
    net.start()
    routing = Ospf(settings)
    try:
        routing.start(net)
    except BaseException:
        net.stop()
        raise
    return net, routing


@pytest.mark.parametrize("settings, mode, bound", [
    (OspfSettings(), "carrier", 1.0),
    (OspfSettings(), "silent", 3.25),
    (OspfSettings(hello_multiplier=4), "silent", 1.25),
    (OspfSettings(bfd=True), "silent", 1.0),
], ids=["carrier", "silent-hello1-dead3", "silent-fast-hellos", "silent-bfd"])
def test_link_failure_on_a_redundant_path_heals(settings, mode, bound):
    # h1 reaches auth through a1-c1; a1 is also linked to c2, so there is another way
    net, routing = ospf_network("isp", settings)
    try:
        recovery, samples = probes.outage(net, "h1", "auth",
                                          lambda: net.link_down("a1", "c1", mode),
                                          window=bound + 1.5)
        lost = sum(s.rtt_ms is None for s in samples)
        print(f"\n{mode} failure, {settings}: recovery {recovery} s ({lost} probes lost)")
        assert recovery is not None and recovery <= bound
    finally:
        net.stop()


def test_routing_is_quiet_only_once_no_lsa_is_originated_anew():
    """A network measured at rest must be: after convergence the routers may still flood new
    instances of their LSAs.
    A link cut 2 s into the wait makes its routers originate new router LSAs: quiet is
    counted from then."""
    net, routing = ospf_network("isp", OspfSettings())
    try:
        assert routing.wait_quiet(net) is not None
        cut = threading.Timer(2.0, net.link_down, ("a1", "c1"))
        cut.start()
        quiet = routing.wait_quiet(net)
        cut.join()
        assert quiet is not None and quiet >= 2.0, quiet
    finally:
        net.stop()


def lost_pairs(net: EmulatedNetwork) -> set[tuple[str, str]]:
    return {(r.src, r.dst) for r in probes.pingall(net, timeout=1) if not r.ok}


def predicted_lost(g: nx.Graph, crashed: str) -> set[tuple[str, str]]:
    residual = g.copy()
    residual.remove_node(crashed)
    ends = [n for n in g if g.nodes[n]["role"] in ("host", "server", "authority",
                                                    "foreign_server")]
    return {(a, b) for a, b in permutations(ends, 2)
            if a not in residual or b not in residual or not nx.has_path(residual, a, b)}


@pytest.mark.parametrize("spec, crashed", [("isp", "c3"), ("isp", "c2"),
                                           ("zoo:Abilene", "r6")])
def test_router_crash_cuts_exactly_what_the_residual_graph_predicts(spec, crashed):
    net, routing = ospf_network(spec, OspfSettings())
    try:
        expected = predicted_lost(net.graph, crashed)
        net.crash(crashed)
        seen = run_and_expect(lambda: lost_pairs(net) == expected or None, timeout=20) and \
            lost_pairs(net)  # once reached, it must also hold on a second look
        assert seen == expected, (f"unexpectedly lost: {sorted(lost_pairs(net) - expected)}; "
                                  f"unexpectedly kept: {sorted(expected - lost_pairs(net))}")
        print(f"\n{spec}: crashing {crashed} cut {len(expected)} of "
              f"{len(list(net.end_nodes())) * (len(list(net.end_nodes())) - 1)} pairs")
        net.restore(crashed)
        routing.wait_converged(net)
        assert run_and_expect(lambda: not lost_pairs(net), timeout=20)
    finally:
        net.stop()


def test_a_host_line_that_comes_back_carries_the_host_again():
    """Carrier loss takes the host's default route with it; OSPF does not put a host's route
    back, the network must."""
    net, routing = ospf_network("line", OspfSettings())
    try:
        host = next(n for n in net.end_nodes() if net.graph.nodes[n]["role"] == "host")
        (router,) = net.graph.neighbors(host)
        other = next(n for n in net.end_nodes() if n != host)
        assert probes.ping(net, host, other).ok
        net.link_down(host, router)
        assert not probes.ping(net, host, other, timeout=1).ok
        state = net.line_state(host)  # what a run that does not heal reports
        assert net.address(host) in state and "DOWN" in state, state
        net.link_up(host, router)
        assert run_and_expect(lambda: probes.ping(net, host, other, timeout=1).ok, timeout=10)
    finally:
        net.stop()
