"""Drawings of topology graphs: geographic where PoPs have positions, layered by role otherwise.

Used by ``splinterlab topo show`` and by experiments that colour the hosts a failure cut off.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from .graph import END_ROLES, is_router, natural_key  # noqa: E402

ROLE_COLORS = {
    "host": "#4c72b0", "server": "#55a868", "authority": "#c44e52",
    "foreign_server": "#8172b2", "access": "#64b5cd", "core": "#555555",
    "border": "#dd8452", "foreign": "#937860",
}
ROUTER_ROWS = ["foreign", "border", "core", "access"]  # top to bottom
END_ROWS = {"foreign_server": -0.5, "authority": 2.5, "server": 2.5, "host": 3.5}


def layout(g: nx.Graph) -> dict[str, tuple[float, float]]:
    if any("pos" in g.nodes[r] for r in g if is_router(g, r)):
        return _geographic(g)
    return _layered(g)


def _spread(nodes: list[str], y: float, pos: dict) -> None:
    for i, n in enumerate(nodes):
        pos[n] = ((i + 1) / (len(nodes) + 1), -y)


def _layered(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Routers in rows by role; each end node in a row next to its router's, ordered by the
    router's position so that lines do not cross."""
    pos: dict[str, tuple[float, float]] = {}
    for y, row in enumerate(ROUTER_ROWS):
        _spread([n for n in sorted(g, key=natural_key) if g.nodes[n]["role"] == row], y, pos)
    rows: dict[float, list[str]] = {}
    for n in g:
        if not is_router(g, n):
            rows.setdefault(END_ROWS[g.nodes[n]["role"]], []).append(n)
    for y, ends in rows.items():
        ends.sort(key=lambda n: (pos[next(iter(g.neighbors(n)))][0], natural_key(n)))
        _spread(ends, y, pos)
    return pos


def _geographic(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Routers at (lon, lat); end nodes on a small circle around their router; abroad just
    beyond the border routers, away from the country's centre."""
    placed = {n: tuple(g.nodes[n]["pos"]) for n in g
              if "pos" in g.nodes[n] and g.nodes[n]["role"] != "border"}
    xs = [p[0] for p in placed.values()]
    ys = [p[1] for p in placed.values()]
    centre = (sum(xs) / len(xs), sum(ys) / len(ys))
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)

    def away(p: tuple[float, float], distance: float) -> tuple[float, float]:
        dx, dy = p[0] - centre[0], p[1] - centre[1]
        norm = math.hypot(dx, dy) or 1.0
        return p[0] + distance * span * dx / norm, p[1] + distance * span * dy / norm

    borders = [n for n in g if g.nodes[n]["role"] == "border"]
    for b in borders:
        placed[b] = away(tuple(g.nodes[b].get("pos", centre)), 0.06)
    for n in sorted(g, key=natural_key):  # routers without a position: abroad
        if n not in placed and is_router(g, n):
            near = [placed[b] for b in borders] or [(max(xs), centre[1])]
            mid = (sum(p[0] for p in near) / len(near), sum(p[1] for p in near) / len(near))
            placed[n] = away(mid, 0.18)
    pos = dict(placed)
    for router in list(placed):
        ends = [n for n in sorted(g.neighbors(router), key=natural_key)
                if g.nodes[n]["role"] in END_ROLES]
        for i, n in enumerate(ends):
            angle = 2 * math.pi * i / max(1, len(ends)) - math.pi / 2
            x, y = placed[router]
            pos[n] = (x + 0.05 * span * math.cos(angle), y + 0.05 * span * math.sin(angle))
    return pos


def draw(g: nx.Graph, out: Path | None, title: str = "",
         node_colors: dict[str, str] | None = None, ax=None, legend: bool = True) -> None:
    """Draw the graph on ``ax``, or into a new figure written to ``out`` (PNG or SVG, by
    suffix); ``node_colors`` overrides role colours."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(9, 7))
    pos = layout(g)
    delays = [g.edges[e].get("delay_ms", 0.0) for e in g.edges]
    widths = [0.6 + 2.0 * d / max(max(delays), 1e-9) for d in delays]
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths, edge_color="#999999")
    colors = [(node_colors or {}).get(n, ROLE_COLORS[g.nodes[n]["role"]]) for n in g]
    sizes = [260 if is_router(g, n) else 120 for n in g]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=sizes,
                           edgecolors="white", linewidths=0.6)
    labels = {n: g.nodes[n].get("label", n) if is_router(g, n) else n for n in g}
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=6)
    if legend:
        for role, color in ROLE_COLORS.items():
            if any(g.nodes[n]["role"] == role for n in g):
                ax.scatter([], [], c=color, label=role, s=40)
        ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set_title(title or g.graph.get("name", ""), fontsize=10)
    ax.set_axis_off()
    if own:
        fig.tight_layout()
        fig.savefig(out, dpi=150)
        plt.close(fig)
