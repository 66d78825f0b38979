"""Link fidelity on a real line: requested delay and bandwidth are what the hosts measure.

Delays are judged against the same path at 0 ms, measured in the same run, so that a busy
machine's slower path is not mistaken for a wrong delay; the tolerance still catches a link
whose delay is missing (a 1 ms link that has none is 2 ms short in RTT).
"""

from __future__ import annotations

import statistics

import pytest

import topologies
from experiments.bench import fidelity
from experiments.probing import probes
from topologies.graph import LinkSpec
from topologies.network import EmulatedNetwork

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def line():
    with EmulatedNetwork(topologies.build(fidelity.TOPOLOGY), static_routes=True) as net:
        yield net


@pytest.fixture(scope="module")
def base_rtt(line) -> float:
    return fidelity._rtt_row(line, 0, pings=40).measured


@pytest.mark.timing
@pytest.mark.parametrize("delay", [1, 20])
def test_ping_rtt_is_twice_the_one_way_delay(line, base_rtt, delay):
    row = fidelity._rtt_row(line, delay, pings=40)
    error = row.measured - base_rtt - row.requested
    assert abs(error) <= max(0.3, 0.03 * row.requested), (
        f"requested {row.requested} ms RTT over a path of {base_rtt:.3f} ms, measured median "
        f"{row.measured:.3f} ms")


def test_a_delay_that_went_missing_is_caught(line):
    """The check itself: remove the queue rules under a 20 ms link and the row must fail."""
    line.set_link(*fidelity.LINK, LinkSpec(delay_ms=20))
    line.exec("r1", "iptables", "-w", "-t", "mangle", "-F")
    if line.backend == "netem":
        line.exec("h1", "tc", "qdisc", "del", "dev", "h1-eth0", "root", privileged=True)
        line.exec("r1", "tc", "qdisc", "del", "dev", "r1-eth0", "root")
    row = fidelity.measured_rtt_row(line, 20, pings=20)  # fidelity's own judging, unchanged
    assert not row.ok, f"a link without its delay passed: {row}"


@pytest.mark.timing
def test_jitter_spreads_rtts_without_moving_the_median(line, base_rtt):
    line.set_link(*fidelity.LINK, LinkSpec(delay_ms=10, jitter_ms=2))
    rtts = probes.ping_times(line, "h1", "h2", 60, interval=0.02)
    assert abs(statistics.median(rtts) - base_rtt - 20) <= 1.0
    assert max(rtts) - min(rtts) > 2.0  # two independent +-2 ms draws per round trip


def test_bandwidth_is_what_iperf3_measures(line):
    row = fidelity._rate_row(line, 10, seconds=3)
    assert row.ok, f"requested 10 Mbit/s, measured {row.measured:.2f}"


def test_loss_is_applied(line):
    line.set_link(*fidelity.LINK, LinkSpec(loss_pct=30))
    r = probes.ping(line, "h1", "h2", count=100, interval=0.01)
    # two traversals at 30 % each: about 49 % of round trips get through
    assert 25 <= r.received <= 75, r


@pytest.mark.timing  # a rate an emulated CPU cannot reach; vmcheck judges netem's drops
def test_the_delay_path_drops_nothing_at_a_moderate_rate(line):
    row = fidelity._pps_row(line, 20_000, fidelity.LARGE_BUFFER)
    assert row.extra["path_drops"] == 0 and row.extra["loss_pct"] < 1.0, row
