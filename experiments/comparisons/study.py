"""``splinterlab study EXPERIMENT``: one experiment over many real ISP graphs, a figure per
question across them, the graph model's prediction beside every measured point.

The experiment runs on every topology of a list (by default ``DEFAULT_TOPOLOGIES``: twelve
Topology Zoo and SNDlib graphs of 11 to 19 PoPs from six continents), each into a results
directory of its own under ``<out>/<experiment>/`` named after the topology. A topology whose
directory is complete is not run again, so an interrupted study resumes where it stopped.
The figures read only those directories (each holds its topology): ``plot`` redraws them
without root.

blast-radius  the worst and the mean single failure (routers and links) per design, the
              authority's own failure: the share of host pairs that can no longer start a
              connection
latency       every host's first-connection overhead against its gateway-authority RTT
censorship    precision, collateral and attribution per design and action
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import topologies
from experiments import plotstyle
from experiments.model import censorship as censorship_model
from experiments.model import latency as latency_model
from experiments.model import reachability
from experiments.results import RESULTS_ROOT, Results, ResultsError, load
from experiments.subjects import Subjects
from protocols import architectures, instruments
from topologies.graph import DEFAULT_SEED, TopologyError

DEFAULT_TOPOLOGIES = (  # 11 to 19 PoPs, six continents; chosen once, listed in the README
    "zoo:Abilene",           # United States, 11 PoPs
    "zoo:Navigata",          # Canada, 13
    "zoo:sndlib/polska",     # Poland, 12
    "zoo:Eenet",             # Estonia, 12
    "zoo:Grena",             # Georgia, 13
    "zoo:Rhnet",             # Iceland, 13
    "zoo:Kreonet",           # South Korea, 13
    "zoo:Jgn2Plus",          # Japan, 11
    "zoo:Ernet",             # India, 16
    "zoo:BtAsiaPac",         # Asia-Pacific, 16
    "zoo:Aarnet",            # Australia, 19
    "zoo:Gambia",            # The Gambia, 12
)
STUDY_ROOT = RESULTS_ROOT / "study"


class StudyError(ValueError):
    """A study that cannot run as asked; one sentence."""


@dataclass
class StudyConfig:
    experiment: str
    topologies: tuple[str, ...] = DEFAULT_TOPOLOGIES
    profile: str = "quick"
    seed: int = DEFAULT_SEED
    backend: str = "auto"
    out: Path = STUDY_ROOT
    servers: str = ""  # as --servers takes them; "": this machine alone
    skipped: dict[str, str] = field(default_factory=dict)  # topology -> why not


def slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", spec).strip("_")


def root(config: StudyConfig) -> Path:
    return config.out / config.experiment


def directory(config: StudyConfig, spec: str) -> Path:
    return root(config) / slug(spec)


def complete(path: Path) -> bool:
    try:
        return load(path).meta.get("status") == "complete"
    except ResultsError:
        return False


def run(config: StudyConfig, experiments: dict, progress=print) -> Path:
    """Run what is not done yet; a topology the experiment cannot use is skipped with its
    reason (kept in ``config.skipped``)."""
    experiment = experiments[config.experiment]
    for spec in config.topologies:
        try:
            experiment.check(topologies.build(spec))
        except TopologyError as e:
            config.skipped[spec] = str(e)
            progress(f"study: {spec} skipped: {e}")
            continue
        target = directory(config, spec)
        if complete(target):
            progress(f"study: {spec} already done ({target})")
            continue
        shutil.rmtree(target, ignore_errors=True)  # an interrupted run starts afresh
        progress(f"study: {spec}")
        cfg = experiment.config(topo=spec, profile=config.profile, seed=config.seed,
                                backend=config.backend, name=slug(spec),
                                servers=config.servers)
        experiment.plot(experiment.run(cfg, config.out))
    return root(config)


def finished(root: Path) -> list[Results]:
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if complete(path):
            out.append(load(path))
    if not out:
        raise StudyError(f"{root} holds no complete results yet (run the study first)")
    return sorted(out, key=lambda r: r.topology().number_of_nodes())


def _name(results: Results) -> str:
    return results.meta["scenario"]["topo"].removeprefix("zoo:").removeprefix("sndlib/")


# -- figures -----------------------------------------------------------------------------------
MARKER = "study.json"  # in a study's root: what ``splinterlab plot`` redraws as a study


def roots(paths: list[Path]) -> list[Path]:
    """Every study root at or under ``paths``."""
    return sorted({m.parent for path in paths for m in (
        [path / MARKER] if (path / MARKER).exists() else path.rglob(MARKER))})


def plot(root: Path) -> list[Path]:
    """The study's figures, from its results directories only."""
    experiment = root.name
    runs = finished(root)
    (root / MARKER).write_text(json.dumps({"experiment": experiment, "topologies": [
        r.meta["scenario"]["topo"] for r in runs]}, indent=1) + "\n")
    return {"blast-radius": _plot_blast_radius, "latency": _plot_latency,
            "censorship": _plot_censorship}[experiment](root, runs)


def _designs(runs: list[Results]) -> list[str]:
    """The designs the runs hold, in the registry's order: a study made before a design was
    compared redraws as it was drawn."""
    held = {a for r in runs for a in r.summary["archs"]}
    return [d for d in architectures.compared() if d in held]


def _shift(k: int, n: int, span: float) -> float:
    """Where the k-th of n bars side by side sits around its tick (``span`` wide in all)."""
    return (k - (n - 1) / 2) * span / n


def blast_radius_points(results: Results) -> dict:
    """Per design: (measured, model) shares of pairs lost for every single failure."""
    g = results.topology()
    out: dict = {}
    for record in results.summary["records"]:
        failure = reachability.Failure.of(record["failure"])
        design = record["arch"]
        predicted = reachability.new_lost(g, failure, design)
        total = record["pairs_total"]
        out.setdefault(design, {}).setdefault(failure.kind, []).append(
            (len(record["pairs_lost_new"]) / total, len(predicted) / total))
    return out


def _plot_blast_radius(root: Path, runs: list[Results]) -> list[Path]:
    fig, axes = plotstyle.figure(3, width=4.6, height=3.6)
    names = [_name(r) for r in runs]
    xs = range(len(runs))
    points = [blast_radius_points(r) for r in runs]
    designs = _designs(runs)
    for ax, (title, stat) in zip(axes[0], (("worst single failure", max),
                                           ("mean single failure", statistics.fmean)),
                                 strict=False):
        for k, design in enumerate(designs):
            shift = _shift(k, len(designs), 0.6)
            measured = [100 * stat([m for kind in ("router", "link")
                                    for m, _ in p.get(design, {}).get(kind, [])] or [0])
                        for p in points]
            model = [100 * stat([m for kind in ("router", "link")
                                 for _, m in p.get(design, {}).get(kind, [])] or [0])
                     for p in points]
            ax.bar([x + shift for x in xs], measured, 0.6 / len(designs),
                   color=plotstyle.ARCH_COLORS[design],
                   label=f"{plotstyle.ARCH_LABELS[design]}, measured")
            ax.scatter([x + shift for x in xs], model, marker="_", s=160, color="black",
                       zorder=3, label="model" if not k else None)
        ax.set_title(title)
    ax = axes[0][2]  # each design's central element, where it has one
    central = [(d, architectures.design(d).central) for d in designs
               if architectures.design(d).central]
    for k, (design, element) in enumerate(central):
        shift = _shift(k, len(central), 0.5)
        outage = [list(pt.get(design, {}).get(element, [])) for pt in points]
        ax.bar([x + shift for x in xs], [100 * o[0][0] if o else 0 for o in outage],
               0.5 / len(central), color=plotstyle.ARCH_COLORS[design],
               label=f"{plotstyle.ARCH_LABELS[design]}, measured")
        ax.scatter([x + shift for x in xs], [100 * o[0][1] if o else 0 for o in outage],
                   marker="_", s=160, color="black", zorder=3, label="model" if not k else None)
    ax.set_title(" / ".join(f"the {element} fails" for _, element in central))
    for ax in axes[0]:
        ax.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("host pairs that cannot start\na connection (% of all pairs)")
    axes[0][0].legend(fontsize=6, loc="upper left")
    return plotstyle.save(fig, root, "study_blast_radius",
                          f"Blast radius on {len(runs)} ISP graphs (bars: measured; lines: "
                          "the graph model)")


def _plot_latency(root: Path, runs: list[Results]) -> list[Path]:
    fig, axes = plotstyle.figure(1, width=5.6, height=4.0)
    ax = axes[0][0]
    top = 0.0
    for results in runs:
        g = results.topology()
        near = [p for p in results.summary.get("placement", []) if p["placement"] == "near"
                and p["overhead_ms"] is not None]
        xs = [latency_model.gateway_authority_rtt_ms(g, p["host"]) for p in near]
        ax.scatter(xs, [p["overhead_ms"] for p in near], s=10,
                   color=plotstyle.ARCH_COLORS[architectures.ADMITTING], alpha=0.6)
        top = max([top, *xs])
    processing = max(r.summary["model_processing"]["ms"] for r in runs)
    ax.plot([0, top], [processing, top + processing],
            color="black", linewidth=0.8, label=f"model: RTT + {processing} ms of processing")
    ax.scatter([], [], s=10, color=plotstyle.ARCH_COLORS[architectures.ADMITTING],
               label="measured, one dot per host")
    ax.set_xlabel("gateway <-> authority RTT from link lengths (ms)")
    ax.set_ylabel("first-connection overhead over\npermissionless IP (ms)")
    ax.legend(fontsize=7)
    return plotstyle.save(fig, root, "study_latency",
                          f"What admission costs a first connection, on {len(runs)} ISP graphs")


def _plot_censorship(root: Path, runs: list[Results]) -> list[Path]:
    columns = ("precision", "collateral", "attribution")
    fig, axes = plotstyle.figure(len(columns), width=4.0, height=3.4)
    actions = instruments.ACTIONS
    designs = _designs(runs)
    for ax, column in zip(axes[0], columns, strict=True):
        for k, design in enumerate(designs):
            shift = _shift(k, len(designs), 0.7)
            for j, action in enumerate(actions):
                measured, predicted = [], []
                for results in runs:
                    row = next((r for r in results.summary.get("table", [])
                                if r["arch"] == design and r["action"] == action), None)
                    if row is None or row[column] is None:
                        continue
                    measured.append(100 * row[column])
                    subjects = Subjects(**{**results.meta["subjects"], "essential": tuple(
                        results.meta["subjects"]["essential"])})
                    p = censorship_model.predict(results.topology(), subjects, design, action)
                    predicted.append(100 * getattr(p, column))
                if not measured:
                    continue
                ax.scatter([j + shift] * len(measured), measured, s=12,
                           color=plotstyle.ARCH_COLORS[design], alpha=0.7,
                           label=plotstyle.ARCH_LABELS[design] if j == 0 else None)
                ax.scatter([j + shift], [statistics.fmean(predicted)], marker="_", s=200,
                           color="black", zorder=3,
                           label="model (mean)" if j == 0 and k == 0 else None)
        ax.set_xticks(range(len(actions)), actions, rotation=30)
        ax.set_title(column)
        ax.set_ylim(-3, 105)
    axes[0][0].set_ylabel("% (one dot per topology)")
    axes[0][0].legend(fontsize=6)
    return plotstyle.save(fig, root, "study_censorship",
                          f"Censorship on {len(runs)} ISP graphs (dots: measured; lines: model)")
