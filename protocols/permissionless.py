"""Permissionless IP: today's Internet as the baseline of every comparison.

Anyone attached may send to anyone. Routing is OSPF in every router (``protocols.ospf``) and
heals itself; the only control an operator has is a censor bolted onto the border routers
(``protocols.censor``), which keeps flow records and blocks nothing unless given a policy.
"""

from __future__ import annotations

from topologies.graph import attachment

from .censor import BorderCensor, BorderInstruments, CensorPolicy
from .design import Design
from .ospf import Ospf, OspfSettings


class Permissionless:
    name = "permissionless"
    static_routes = False

    def __init__(self, ospf: OspfSettings | None = None, censor: CensorPolicy | None = None):
        self.routing = Ospf(ospf)
        self.policy = censor
        self.censor: BorderCensor | None = None

    def start(self, net, services) -> None:
        self.routing.start(net)
        self.censor = BorderCensor(net, services)
        if any(net.graph.nodes[n]["role"] == "border" for n in net.graph):
            self.censor.apply(self.policy or CensorPolicy())  # records flows even if idle

    def diagnose(self, net, ends: list[str]) -> str:
        """Why ``ends`` (most suspect first) stay cut off, as the routing daemons of the
        first two's routers say."""
        return self.routing.diagnose(net, list(dict.fromkeys(
            attachment(net.graph, e) for e in ends[:2])))

    def instruments(self, net, services) -> BorderInstruments:
        return BorderInstruments(self.censor, net)

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "OSPF (FRR)",
                "ospf": vars(self.routing.settings),
                "convergence_s": self.routing.convergence_s,
                "censor": self.censor.history[-1].policy if self.censor and
                self.censor.history else None}


DESIGN = Design("permissionless", "permissionless IP", "#1f6fb4", Permissionless,
                "today's Internet: anyone attached sends to anyone; OSPF routing",
                border_censor=True)
