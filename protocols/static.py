"""The baseline without any control plane: routes computed once from the graph, never updated.

Useful to see what dynamic routing buys: a failure here is never routed around.
"""

from __future__ import annotations

from .design import Design


class Static:
    name = "static"
    static_routes = True

    def start(self, net, services) -> None:
        """Nothing to start: the network installed the routes while coming up."""

    def diagnose(self, net, ends: list[str]) -> str:
        """Nothing runs that could say more than the network's own state."""
        return ""

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "static shortest paths (delay metric)"}


DESIGN = Design("static", "static routes", "#7f7f7f", Static,
                "routes computed once from the graph, never updated (a check, not compared)",
                compared=False, routing=False)
