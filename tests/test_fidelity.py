"""Link fidelity on a real line: requested delay and bandwidth are what the hosts measure."""

from __future__ import annotations

import statistics

import pytest

import topologies
from experiments import fidelity, probes
from topologies.graph import LinkSpec
from topologies.network import EmulatedNetwork

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def line():
    with EmulatedNetwork(topologies.build(fidelity.TOPOLOGY), static_routes=True) as net:
        yield net


@pytest.mark.parametrize("delay", [1, 20])
def test_ping_rtt_is_twice_the_one_way_delay(line, delay):
    row = fidelity._rtt_row(line, delay, pings=40)
    assert row.ok, f"requested {row.requested} ms RTT, measured median {row.measured:.3f} ms"


def test_jitter_spreads_rtts_without_moving_the_median(line):
    line.set_link(*fidelity.LINK, LinkSpec(delay_ms=10, jitter_ms=2))
    rtts = probes.ping_times(line, "h1", "h2", 60, interval=0.02)
    assert abs(statistics.median(rtts) - 20) <= 1.0
    assert max(rtts) - min(rtts) > 2.0  # two independent +-2 ms draws per round trip


def test_bandwidth_is_what_iperf3_measures(line):
    row = fidelity._rate_row(line, 10, seconds=3)
    assert row.ok, f"requested 10 Mbit/s, measured {row.measured:.2f}"


def test_loss_is_applied(line):
    line.set_link(*fidelity.LINK, LinkSpec(loss_pct=30))
    r = probes.ping(line, "h1", "h2", count=100, interval=0.01)
    # two traversals at 30 % each: about 49 % of round trips get through
    assert 25 <= r.received <= 75, r
