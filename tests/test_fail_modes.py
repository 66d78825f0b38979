"""The authority goes down: fail-closed gateways stop new flows, and flows admitted both ways
stop when their last grant (as the authority logged it) runs out; fail-open gateways let new
flows through and log them themselves. Revocation while it is up cuts both directions at
once, pushed rather than waited out: well within the grants' TTL (how fast, against the
authority-gateway round trip, is bench access's figure). Measured from hosts."""

from __future__ import annotations

import re
import time

import pytest
from helpers import registered_network

import topologies
from experiments import subjects
from experiments.bench import access as access_bench
from protocols.registered.gateway import UNREACHABLE_S
from protocols.registered.gateway_flows import renewal_margin
from protocols.registered.ruleset import TABLE
from topologies.graph import attachment

pytestmark = pytest.mark.needs_root


def test_authority_outage_and_revocation():
    g = topologies.build("isp")
    result = access_bench.revocation_and_fail_modes(g, subjects.choose(g))
    print(f"\n{result}")
    closed, open_ = result["closed"], result["open"]
    passed, hosts = map(int, closed["new_flows_passing"].split("/"))
    assert passed == 0 and hosts == 10
    assert closed["renewals_before_outage"] >= 2  # in use, so renewed while it was up
    for way in ("outbound", "inbound"):
        # each stops when its last grant runs out, not when the authority dies
        ran, out = closed["ran_into_outage_s"][way], closed["last_grant_ran_out_after_s"][way]
        assert ran is not None and out is not None, way
        assert ran == pytest.approx(out, abs=0.5), way
        assert open_["ran_into_outage_s"][way] is None  # fail-open: renewed by the gateway
    assert closed["decisions_logged_by_gateways"] == 0
    assert open_["new_flows_passing"] == "10/10"
    assert open_["decisions_logged_by_gateways"] >= 10
    for way, ms in result["revocation_ms"].items():
        # None: still arriving 0.5 s after the command, a sixth of the TTL its grant had left
        assert ms is not None and ms < access_bench.OUTAGE_TTL_MS / 6, (way, ms)


def test_a_fail_open_grant_lives_as_long_as_the_operator_last_said():
    """The operator's ``ttl`` is part of every gateway's policy: a grant that a fail-open
    gateway gives alone, its authority gone, lives the TTL the operator set last (5 s), not
    the one the gateway was started with (2 s)."""
    g = topologies.build("isp")
    who = subjects.choose(g)
    router = attachment(g, who.user)
    with registered_network(2000, g, fail_mode="open") as (net, _, arch):
        arch.operator.ttl(5000)
        arch.operator.in_force()
        arch.kill_authority()
        time.sleep(UNREACHABLE_S + 0.5)  # the gateways decide alone once they notice
        ping = net.exec(who.user, "ping", "-c", "1", "-W", "2", net.address(who.server),
                        check=False)
        assert ping.returncode == 0, ping.stdout
        listing = net.exec(router, "nft", "list", "set", "inet", TABLE, "grants_icmp",
                           privileged=True).stdout
        # the time left from its deadline when written: 5 s less the renewal margin (the
        # kernel holds an element that long), a few ms less on a loaded machine
        held = 5000 - 1000 * renewal_margin(5000)
        timeouts = [int(s or 0) * 1000 + int(ms or 0)
                    for s, ms in re.findall(r"timeout (?:(\d+)s)?(?:(\d+)ms)?", listing)]
        assert timeouts and all(held - 1000 < t <= held for t in timeouts), listing
