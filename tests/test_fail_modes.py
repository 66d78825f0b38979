"""The authority goes down: fail-closed gateways stop new flows and let admitted ones run out
their TTL; fail-open gateways let new flows through. Revocation while it is up takes effect
within the authority-gateway round trip plus 10 ms. Measured from hosts."""

from __future__ import annotations

import pytest

import topologies
from experiments import access_bench

pytestmark = pytest.mark.needs_root


def test_authority_outage_and_revocation():
    result = access_bench.revocation_and_fail_modes(topologies.build("isp"))
    print(f"\n{result}")
    closed, open_ = result["closed"], result["open"]
    passed, hosts = map(int, closed["new_flows_passing"].split("/"))
    assert passed == 0 and hosts == 11
    # the admitted flow stops when its grant expires, not when the authority dies
    assert closed["admitted_flow_ran_s"] == pytest.approx(closed["grant_expired_after_s"],
                                                          abs=0.5)
    assert open_["new_flows_passing"] == "11/11"
    assert open_["admitted_flow_ran_s"] is None
    assert result["revocation_ms"] <= result["authority_gateway_rtt_ms"] + 10 + 1
