"""The baseline without any control plane: routes computed once from the graph, never updated.

Useful to see what dynamic routing buys: a failure here is never routed around.
"""

from __future__ import annotations


class Static:
    name = "static"
    static_routes = True

    def start(self, net, services) -> None:
        """Nothing to start: the network installed the routes while coming up."""

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "static shortest paths (delay metric)"}
