"""The blast-radius experiment's figures, from its results alone: pairs lost by failure class,
the authority outage over time, and the worst single failure of each design on the topology.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from experiments import plotstyle
from experiments.comparisons import blast_radius as experiment
from experiments.model.reachability import (
    users,
)
from experiments.results import load
from protocols import architectures
from topologies.graph import is_router


# -- plots (read only the results directory) -----------------------------------------------
def plot(directory: Path) -> list[Path]:
    results = load(directory, experiment.NAME)
    records = results.summary["records"]
    archs = results.summary["archs"]
    written = []
    kinds = [k for k in ("link", "router", "partition", "authority")
             if any(r["failure"]["kind"] == k for r in records)]

    fig, axes = plotstyle.figure(1, width=6.0, height=3.4)
    ax = axes[0][0]
    width = 0.8 / max(1, len(archs))
    for i, arch in enumerate(archs):
        for j, kind in enumerate(kinds):
            shares = [len(r["pairs_lost_new"]) / r["pairs_total"] for r in records
                      if r["arch"] == arch and r["failure"]["kind"] == kind]
            if not shares:
                continue
            x = j + (i - (len(archs) - 1) / 2) * width
            ax.bar(x, 100 * sum(shares) / len(shares), width * 0.9,
                   color=plotstyle.ARCH_COLORS[arch],
                   label=plotstyle.ARCH_LABELS[arch] if j == 0 else None)
            ax.scatter([x] * len(shares), [100 * v for v in shares], s=8, color="black",
                       zorder=3)
    ax.set_xticks(range(len(kinds)), [f"{k} failures" for k in kinds])
    ax.set_ylabel("host pairs that cannot start\na new connection (% of all pairs)")
    ax.legend(fontsize=7)
    written += plotstyle.save(fig, directory, "blast_radius_by_class",
                              "Blast radius per failure: mean (bar) and each failure (dot)")

    for arch in archs:
        written += _plot_central(directory, results, records, archs, arch)

    return written + _plot_worst(directory, results, records, archs)


def _plot_central(directory: Path, results, records: list[dict], archs: list[str],
                  arch: str) -> list[Path]:
    """Reachability over time while ``arch``'s central element is down, beside the designs
    that have none to lose."""
    element = architectures.design(arch).central
    outage = next((r for r in records if r["arch"] == arch and r["failure"]["kind"] == element),
                  None) if element else None
    if not outage:
        return []
    fig, axes = plotstyle.figure(1, width=5.2)
    ax = axes[0][0]
    ts = [0.0] + [p["t"] for p in outage["timeline"]]
    total = outage["pairs_total"]
    for key, label, style in (("lost_new", "pairs that can start a new connection", "-"),
                              ("lost_existing", "existing connections still alive", "--")):
        ax.plot(ts, [100.0] + [100 * (1 - p[key] / total) for p in outage["timeline"]],
                style, marker="o", color=plotstyle.ARCH_COLORS[arch], label=f"{arch}: {label}")
    for other in archs:
        if not architectures.design(other).central:
            ax.plot(ts, [100.0] * len(ts), ":", color=plotstyle.ARCH_COLORS[other],
                    label=f"{other}: has no {element} to lose")
    ttl = results.meta.get(f"{arch}_settings", {}).get("ttl_ms")
    if ttl:
        ax.axvline(ttl / 1000, color="grey", linewidth=0.8, linestyle=":")
        ax.annotate("admission TTL", (ttl / 1000, 50), rotation=90, fontsize=7,
                    xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel(f"seconds since the {element} died")
    ax.set_ylabel("% of host pairs")
    ax.set_ylim(-3, 105)
    ax.legend(fontsize=7, loc="center right")
    return plotstyle.save(fig, directory, f"blast_radius_{element}_outage",
                          f"Reachability while the {element} is down (fail-closed)")


# what each colour of the worst failures' drawing means, written once for nodes and legend
LOST_ALL, LOST_SOME, LOST_NONE = "#d62728", "#ff9f1c", "#bbbbbb"
ROUTER_UP, AUTHORITY, FAILED = "#9ecae1", "#b39ddb", "black"
FAILED_LABELS = {"router": "the failed router", "link": "the two ends of the failed link",
                 "authority": "the failed authority"}


def _worst_colors(graph: nx.Graph, worst: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Node colours for one failure (routers alike, so that no role colour reads as a
    loss), and the legend of those used: label -> colour."""
    ends = users(graph)
    lost = {n: 0 for n in ends}
    for src, dst in worst["pairs_lost_new"]:
        lost[src] += 1
        lost[dst] += 1
    everything = 2 * (len(ends) - 1)  # every pair a node is part of
    colors = {n: LOST_ALL if c == everything else LOST_SOME if c else LOST_NONE
              for n, c in lost.items()}
    colors |= {n: ROUTER_UP for n in graph if is_router(graph, n)}
    colors |= {n: AUTHORITY for n in graph if graph.nodes[n]["role"] == "authority"}
    failed = [n for n in worst["failure"]["target"].split("-") if n in graph]
    colors |= {n: FAILED for n in failed}
    meaning = {"end node: lost every pair (cut off)": LOST_ALL,
               "end node: lost some pairs": LOST_SOME, "end node: lost none": LOST_NONE,
               "router, still up": ROUTER_UP,
               FAILED_LABELS.get(worst["failure"]["kind"], "failed"): FAILED,
               "authority site (not counted as a user)": AUTHORITY}
    used = set(colors.values())
    return colors, {label: c for label, c in meaning.items() if c in used and
                    (c != FAILED or failed)}


def _plot_worst(directory: Path, results, records: list[dict], archs: list[str]) -> list[Path]:
    """Each design's worst single failure on the topology, coloured by what each node lost."""
    from matplotlib.lines import Line2D
    from matplotlib.patheffects import withStroke

    from topologies.draw import draw, layout

    graph = results.topology()
    fig, axes = plotstyle.figure(len(archs), width=5.0, height=4.4)
    legend: dict[str, str] = {}
    for ax, arch in zip(axes[0], archs, strict=True):
        worst = max((r for r in records if r["arch"] == arch),
                    key=lambda r: len(r["pairs_lost_new"]), default=None)
        if worst is None:
            ax.set_axis_off()
            continue
        colors, used = _worst_colors(graph, worst)
        legend |= used
        target = worst["failure"]["target"]
        named = graph.nodes[target].get("label", target) if target in graph else target
        draw(graph, None, node_colors=colors, ax=ax, legend=False,
             title=f"{plotstyle.ARCH_LABELS[arch]}: worst failure, {worst['failure']['kind']} "
                   f"{target}{f' ({named})' if named != target else ''}\n"
                   f"{len(worst['pairs_lost_new'])} of {worst['pairs_total']} host pairs can "
                   "no longer connect")
        pos = layout(graph)
        for n in (n for n, c in colors.items() if c == FAILED):  # its name, on black
            ax.text(*pos[n], graph.nodes[n].get("label", n), color="white", fontsize=6,
                    ha="center", va="center",
                    path_effects=[withStroke(linewidth=1.2, foreground="black")])
    handles = [Line2D([], [], linestyle="", marker="o", markersize=8, markerfacecolor=c,
                      markeredgecolor="#777777", markeredgewidth=0.5, label=label)
               for label, c in legend.items()]
    handles.append(Line2D([], [], color="#999999", linewidth=1.5,
                          label="link (thicker: longer delay)"))
    plotstyle.legend_below(fig, handles, ncol=min(3, len(handles)))
    return plotstyle.save(fig, directory, "blast_radius_topology",
                          "The worst single failure of each design: who lost what")


