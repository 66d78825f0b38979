"""OSPF settings and FRR config generation: pure functions, no daemons."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import topologies
from protocols import ospf
from topologies import addressing


def configs(spec: str = "isp", **settings):
    g = topologies.build(spec)
    return ospf.frr_configs(g, addressing.plan(g), "a1", ospf.OspfSettings(**settings), "/w")


def test_router_links_are_point_to_point_with_timers_and_delay_cost():
    text = configs()["ospfd"]
    uplink = addressing.plan(topologies.build("isp")).intf("a1", "c1").name
    block = text.split(f"interface {uplink}\n", 1)[1].split("!", 1)[0]
    assert block.splitlines() == [" ip ospf network point-to-point", " ip ospf hello-interval 1",
                                  " ip ospf dead-interval 3", " ip ospf retransmit-interval 1",
                                  " ip ospf cost 201"]  # a1-c1: 2 ms


def test_host_lines_are_passive_point_to_point_and_everything_is_announced():
    """Point-to-point, not broadcast: a passive broadcast line elects itself designated router
    once its 40 s wait ends and floods a new router LSA over the whole network."""
    text = configs()["ospfd"]
    g = topologies.build("isp")
    line = addressing.plan(g).intf("a1", "h1").name
    block = text.split(f"\ninterface {line}\n", 1)[1].split("!", 1)[0]
    assert block.splitlines() == [" ip ospf network point-to-point"]
    assert f" passive-interface {line}" in text
    for net in ("198.18.0.0/15", "192.0.2.0/24", "203.0.113.0/24"):
        assert f" network {net} area 0" in text
    assert " ospf router-id 198.18.128.1" in text


def test_fast_hellos_and_bfd():
    cfg = configs(hello_multiplier=4, bfd=True)
    assert " ip ospf dead-interval minimal hello-multiplier 4" in cfg["ospfd"]
    assert " ip ospf bfd profile splinterlab" in cfg["ospfd"]
    assert "  detect-multiplier 3" in cfg["bfdd"] and "  transmit-interval 100" in cfg["bfdd"]
    assert "bfdd" not in configs()


@pytest.fixture
def frr8(monkeypatch):
    monkeypatch.setattr(ospf, "has_mgmtd", lambda: False)
    monkeypatch.setattr(ospf, "bfdd_takes_control_socket", lambda: True)


@pytest.fixture
def frr10(monkeypatch):
    monkeypatch.setattr(ospf, "has_mgmtd", lambda: True)
    monkeypatch.setattr(ospf, "bfdd_takes_control_socket", lambda: False)


def test_each_daemon_gets_its_own_paths(frr8):
    """Files in the router's directory; Unix sockets where it is told (a directory of the
    server's own when the run's directory is shared over sshfs, which holds no socket)."""
    zebra, ospfd = ospf.daemons("a1", "/w/a1", ["zebra", "ospfd"], "/s/a1")
    assert zebra.argv[:2] == ["/usr/lib/frr/zebra", "-d"]
    assert "-f" in ospfd.argv and ospfd.argv[ospfd.argv.index("-f") + 1] == "/w/a1/ospfd.conf"
    assert str(ospfd.pidfile) == "/w/a1/ospfd.pid"
    for flag, path in (("-z", "/s/a1/zserv.api"), ("--vty_socket", "/s/a1"),
                       ("--log", "file:/w/a1/ospfd.log")):
        assert ospfd.argv[ospfd.argv.index(flag) + 1] == path
    (bfdd,) = ospf.daemons("a1", "/w/a1", ["bfdd"], "/s/a1")
    assert bfdd.argv[-2:] == ["--bfdctl", "/s/a1/bfdd.sock"]


def test_frr_10_gets_its_management_daemon_first_and_no_bfd_control_socket(frr10):
    """FRR 10: mgmtd before zebra (zebra reports to it), with no config file of its own; bfdd
    has no --bfdctl (it refuses the option)."""
    mgmtd, zebra, bfdd = ospf.daemons("a1", "/w/a1", ["zebra", "bfdd"], "/w/a1")
    assert (mgmtd.name, zebra.name) == ("mgmtd", "zebra")
    assert "-f" not in mgmtd.argv and "--vty_socket" in mgmtd.argv
    assert mgmtd.argv[mgmtd.argv.index("--vty_socket") + 1] == "/w/a1"
    assert "--bfdctl" not in bfdd.argv


@pytest.mark.parametrize("kwargs, words", [
    ({"hello": 0}, "hello must be"),
    ({"hello": 5, "dead": 3}, "must exceed hello"),
    ({"hello_multiplier": 50}, "multiplier must be 2-20"),
    ({"bfd_interval_ms": 1}, "BFD interval"),
])
def test_bad_timers_are_one_sentence(kwargs, words):
    with pytest.raises(ospf.RoutingError, match=words):
        ospf.OspfSettings(**kwargs)


def test_cost_follows_delay():
    assert [ospf.cost(d) for d in (0, 0.5, 2, 15, 1000)] == [1, 51, 201, 1501, 65535]


class _Starting:
    """A network whose routers learn every route a moment after being asked the first time."""

    def __init__(self, spec: str):
        self.graph = topologies.build(spec)
        self.plan = addressing.plan(self.graph)
        self.crashed: set[str] = set()
        self.asked_first: float | None = None

    def exec(self, router, *argv, check=True):
        self.asked_first = self.asked_first or time.monotonic()
        known = time.monotonic() - self.asked_first > 0.2
        table = [{"dst": str(p)} for p in ospf.expected_prefixes(self.graph, self.plan)]
        return subprocess.CompletedProcess(argv, 0, json.dumps(table if known else []))


def test_the_convergence_timeout_runs_from_the_last_routers_start():
    """Starting hundreds of routers takes longer than the timeout: a network whose routers
    started over 100 s converges 0.2 s after the last started, within a 1 s timeout."""
    routing = ospf.Ospf(ospf.OspfSettings(convergence_timeout=1.0))
    t0 = time.monotonic() - 100
    took = routing.wait_converged(_Starting("isp"), t0, time.monotonic())
    assert 100 < took < 101
