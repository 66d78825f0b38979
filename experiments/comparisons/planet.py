"""Planet: registered access at the size of the world, from the graph model (no emulation).

No machine emulates a planet, so this experiment asks the graph model (``model.planet``) on
topohub's world backbone (``topologies.world``: 1246 cities, cables at 5 us per km, a country on
every city and landing point), four questions:

* overhead: what the first connection from each city waits for admission, with one global
  authority, one per continent or one per country (each the most central city of its region),
  each city asking its nearest site;
* sites: how many sites, placed greedily, keep the 95th percentile of that wait under 10, 20
  and 50 ms;
* blast radius: each authority site's failure against every single cable cut, for every
  design compared, registered access with and without fail-over to the nearest surviving
  site (a design that only routes loses to a cut what routing loses, and nothing to a site);
* disconnect: a country cuts every link across its border (its landing points are its own):
  what is left of its own connections and of the world's.

The results directory holds ``cities.csv``, ``sites_curve.csv``, ``authority_failures.csv``,
``cable_cuts.csv``, ``disconnect.csv``, ``results.json`` (headline figures and assumptions),
``topology.json`` (the world graph with its countries) and ``meta.json``. About 15 s of
model on two cores (most of it one shortest-path tree per city) and 5 s of figures; no root.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.comparisons import planet_report as report
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.model import planet as model
from experiments.model.latency import processing
from experiments.results import RunWriter
from protocols.architectures import ADMITTING, BASELINE, admits, compared
from topologies import world

ROUTED = tuple(d for d in compared() if not admits(d))  # lose what routing loses, no more

NAME = "planet"
PROFILES = {
    "quick": {"max_sites": 300, "failure_placements": ["global", "continent"],
              "countries": 30},
    "full": {"max_sites": 300, "failure_placements": ["global", "continent", "country"],
             "countries": None},  # None: every country with at least two cities
}
@dataclass
class PlanetConfig(ExperimentConfig):
    """The topology is always the world backbone; seed, arch and backend do not apply (the
    model is deterministic, answers for every design and emulates nothing)."""

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
    cuts = model.cable_cuts(p, {k: list(sites[k].values()) for k in kinds}, ROUTED)
    designs = [k for k in cuts[0] if k not in ("a", "b", "km", "bridge")]
    log = writer.csv("cable_cuts", ["a", "b", "a_name", "b_name", "km", "bridge", *designs])
    for row in cuts:
        log.row(**row, a_name=world.label(g, row["a"]), b_name=world.label(g, row["b"]))
    return {"cable_cuts": {
        "evaluated": len(cuts), "bridges": sum(r["bridge"] for r in cuts),
        "worst": {d: {"lost": w[d], "a": world.label(g, w["a"]), "b": world.label(g, w["b"]),
                      "km": w["km"]} for d in designs for w in [_worst(cuts, d)]}}}


def disconnect(p: model.Planet, writer: RunWriter, sites: dict, limit: int | None) -> dict:
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
    designs = {**dict.fromkeys(ROUTED, (None, None)), f"{ADMITTING}_global": (glob, None),
               f"{ADMITTING}_country": (national, model.jurisdiction(p, sites["country"],
                                                                     "country")),
               f"{ADMITTING}_country_nearest": (national, model.assignment(p, national))}
    log = writer.csv("disconnect", ["country", "cities", "border_links", "authority_inside",
                                   *(f"{d}_{m}" for d in designs
                                     for m in ("domestic_kept", "world_lost",
                                               "others_lost"))])
    for country in countries:
        log.row(**model.disconnect(p, country, designs), authority_inside=country == home)
    return {"disconnect": {"countries": len(countries), "global_authority_country": home}}


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
                  f"{summary['cable_cuts']['bridges']} of them bridges, worst ({BASELINE}) "
                  f"{100 * summary['cable_cuts']['worst'][BASELINE]['lost']:.1f} % of "
                  "pairs", "cuts")
        summary |= disconnect(p, writer, sites, s["countries"])
        clock.say(f"disconnects: {summary['disconnect']['countries']} countries",
                  "disconnect")
        writer.meta(timings_s=clock.laps)
    return writer.dir


EXPERIMENT = Experiment(name=NAME, question="What would registered access cost and "
                        "risk at the size of the planet: first-connection overhead per city, "
                        "sites needed, what one failure or one country's disconnect breaks?",
                        config=PlanetConfig, run=run, plot=report.plot, emulated=False)
