"""An IP protocol nobody approved (253, for experiments) between two users' hosts: the open
network carries it, whatever it is; registered access's gateways admit only what they can name
as a flow (TCP, UDP and the like by ports, echo by identifier), so nothing else crosses."""

from __future__ import annotations

import pytest

import topologies
from experiments import subjects
from experiments.paired import bring_up
from experiments.probing import probes

pytestmark = pytest.mark.needs_root


@pytest.mark.parametrize("arch, crosses", [("permissionless", True), ("registered", False),
                                           ("sovereign", True)])
def test_a_protocol_nobody_approved(arch, crosses):
    g = topologies.build("isp")
    who = subjects.choose(g)
    with bring_up(g, arch) as (net, _, _):
        assert probes.ping(net, who.user, who.victim).ok  # the two can talk otherwise
        assert probes.new_protocol(net, who.user, who.victim) is crosses
