"""The emulated network with static routes: bring-up, reachability, delay, failures, teardown."""

from __future__ import annotations

import contextlib
import os
import statistics

import pytest
from helpers import run_and_expect

import topologies
from experiments.probing import probes
from topologies import cleanup
from topologies.graph import LinkSpec
from topologies.network import EmulatedNetwork, NetworkError

pytestmark = pytest.mark.needs_root


def namespaces() -> set[str]:
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{pid}/ns/net"))
    return found


@pytest.fixture(scope="module")
def ring():
    with EmulatedNetwork(topologies.build("ring,n=4,delay=1"), static_routes=True) as net:
        yield net


def test_all_pairs_reachable_with_static_routes(ring):
    results = probes.pingall(ring)
    assert [(r.src, r.dst) for r in results if not r.ok] == []
    assert len(results) == 5 * 4


PATH = [("h1", "r1"), ("r1", "r2"), ("r2", "h2")]


@pytest.mark.timing
def test_rtt_is_the_sum_of_link_delays(ring):
    """h1 - r1 - r2 - h2: three 1 ms links each way add 6 ms to the same path undelayed,
    measured in the same run (a missing link delay would be 2 ms short)."""
    delayed = statistics.median(probes.ping_times(ring, "h1", "h2", 30))
    for a, b in PATH:
        ring.set_link(a, b, LinkSpec())
    try:
        base = statistics.median(probes.ping_times(ring, "h1", "h2", 30))
    finally:
        for a, b in PATH:
            ring.set_link(a, b, LinkSpec(delay_ms=1))
    assert abs(delayed - base - 6.0) <= 0.4, (delayed, base)


def test_the_run_records_how_its_delay_was_emulated(ring):
    facts = ring.describe()
    assert facts["delay_backend"] in ("netem", "userspace")
    cal = facts["calibration"]
    assert cal["backend"] == facts["delay_backend"]
    assert cal["delayed_rtt_ms"] > cal["base_rtt_ms"] + 3.6
    # the cost taken off every link is what the calibration's own pings say
    excess_us = (cal["delayed_rtt_ms"] - cal["base_rtt_ms"] - 2 * cal["delay_ms"]) / 2 * 1000
    assert cal["cost_us"] == pytest.approx(max(0.0, excess_us), abs=0.1)
    if facts["delay_backend"] == "userspace":
        path = facts["delay_path"]
        assert path["packets"] > 0 and path["overruns"] == 0
        assert path["scheduling"] == "SCHED_FIFO 10 while not polling"  # root may: it is the wire


def test_carrier_loss_breaks_static_paths_until_repaired(ring):
    ring.link_down("r1", "r2")
    try:
        assert not probes.ping(ring, "h1", "h2").ok  # static routes never go around
        assert probes.ping(ring, "h1", "h4").ok
    finally:
        ring.link_up("r1", "r2")
    assert run_and_expect(lambda: probes.ping(ring, "h1", "h2").ok, timeout=5)


def test_silent_failure_drops_frames_but_keeps_carrier(ring):
    intf = ring.plan.intf("r1", "r2").name
    ring.link_down("r1", "r2", mode="silent")
    try:
        assert not probes.ping(ring, "h1", "h2").ok
        state = ring.exec("r1", "ip", "-br", "link", "show", intf).stdout
        assert "LOWER_UP" in state and " UP " in state
    finally:
        ring.link_up("r1", "r2")
    assert run_and_expect(lambda: probes.ping(ring, "h1", "h2").ok, timeout=5)


def test_router_crash_cuts_its_hosts_and_restore_brings_them_back(ring):
    ring.crash("r2")
    try:
        assert not probes.ping(ring, "h1", "h2").ok
        assert probes.ping(ring, "h1", "h4").ok
    finally:
        ring.restore("r2")
    assert run_and_expect(lambda: probes.ping(ring, "h1", "h2").ok, timeout=5)


def test_bad_failure_targets_are_refused(ring):
    with pytest.raises(NetworkError, match="no link r1-r3"):
        ring.link_down("r1", "r3")
    with pytest.raises(NetworkError, match="not a router"):
        ring.crash("h1")
    with pytest.raises(NetworkError, match="link mode"):
        ring.link_down("r1", "r2", mode="gentle")


@pytest.mark.timing
def test_runtime_reshaping_changes_the_delay(ring):
    ring.set_link("r1", "r2", LinkSpec(delay_ms=10))
    try:
        rtts = probes.ping_times(ring, "h1", "h2", 20)
        assert abs(statistics.median(rtts) - 24.0) <= 0.75, rtts  # 1 + 10 + 1 each way
    finally:
        ring.set_link("r1", "r2", LinkSpec(delay_ms=1))


def test_stop_leaves_nothing_behind():
    before = namespaces()
    net = EmulatedNetwork(topologies.build("line,n=2"), static_routes=True)
    with net:
        assert len(namespaces() - before) == len(net.graph)
        run_id = net.run.run_id
    assert namespaces() <= before
    assert cleanup.leftovers(run_id) == []
    assert net.timings["teardown_s"] < 10
