"""A scorecard from measured figures: the Internet Society's five critical properties of the
Internet way of networking, each given one indicator that ``run all`` measures for every
design, on one graph. No weights, no verdicts: every cell is a number from a results file.

Each indicator is stated so that a higher number is more of the property. Where it comes from:

============  ================================================================  =============
property      indicator                                                         measured by
============  ================================================================  =============
accessible    newcomers (a host at an address nobody registered or leased)      latency
              who reached the national web server
open          sends of an IP protocol nobody approved (253) that reached the    latency
              other host
decentralised pairs still connected through the worst single failure of an     blast radius
              element many users share (any router but an access router, any
              link between routers, the design's central element)
identifiers   a user's destinations the operator's records do not tie to the    censorship
              person (one minus attribution, mean over the five actions)
general       the time a new connection takes beyond the round trip: a cold TCP    latency
purpose       connect to the national web server less the warm ping to it
              (medians per host, then over hosts; lower is more neutral)
============  ================================================================  =============

``write`` puts ``results.json`` (rows, and the directories and commits they come from),
``meta.json`` and ``scorecard.png`` into ``<out>/scorecard/<name>/``.
"""

from __future__ import annotations

import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path

from experiments import results as results_io
from experiments.comparisons import permission

NAME = "scorecard"
SOURCES = ("latency", "blast-radius", "censorship")


@dataclass(frozen=True)
class Property:
    key: str
    name: str        # the Internet Society's wording
    indicator: str   # what the number is, in one line
    unit: str        # "share" (0-1, higher is more of the property) or "ms" (lower is)


PROPERTIES = (
    Property("accessible", "Accessible infrastructure with a common protocol",
             "newcomers at an address nobody registered who reached a server", "share"),
    Property("open", "Open architecture of interoperable, reusable building blocks",
             "sends of a protocol nobody approved that reached the other host", "share"),
    Property("decentralised", "Decentralized management and a single distributed routing "
             "system", "pairs connected through the worst failure of a shared element",
             "share"),
    Property("identifiers", "Common global identifiers",
             "a user's destinations the operator's records do not tie to the person",
             "share"),
    Property("general", "Technology-neutral, general-purpose network",
             "time a new connection takes beyond the round trip (cold connect - ping)", "ms"),
)


@dataclass(frozen=True)
class ScorecardConfig:
    """What RunWriter asks of a run's configuration."""
    name: str
    topo: str
    seed: int | None = None


def _permission(share: str, probes: str, passed: str):
    """An indicator from latency's permission phase: ``share`` of its ``probes`` that
    ``passed`` (``permission.shares``), and how many of how many."""
    def indicator(latency, arch: str) -> tuple[float | None, str]:
        measured = latency.summary.get("permission", {}).get(arch)
        if not measured:
            return None, "not measured"
        done = measured[probes]
        return (permission.shares(measured)[share],
                f"{sum(r[passed] for r in done)} of {len(done)}")
    return indicator


_newcomers = _permission("newcomers_reached", "newcomers", "reached")
_new_protocol = _permission("new_protocol_crossed", "new_protocol", "crossed")


def _worst_shared_failure(blast, arch: str) -> tuple[float | None, str]:
    """One minus the share of pairs lost to the worst failure of a shared element."""
    g = blast.topology()
    worst, name = None, ""
    for r in blast.summary["records"]:
        kind, target = r["failure"]["kind"], r["failure"]["target"]
        if r["arch"] != arch or kind == "partition" or not r["pairs_total"] or (
                kind == "router" and g.nodes[target].get("role") == "access"):
            continue  # a partition is many links; an access router serves its own line only
        lost = len(r["pairs_lost_new"]) / r["pairs_total"]
        if worst is None or lost > worst:
            worst, name = lost, f"{kind} {target}"
    return (None, "not measured") if worst is None else (1 - worst, f"worst: {name}")


def _unattributed(censorship, arch: str) -> tuple[float | None, str]:
    shares = [row["attribution"] for row in censorship.summary.get("table", [])
              if row["arch"] == arch and row["attribution"] is not None]
    if not shares:
        return None, "not measured"
    return 1 - statistics.fmean(shares), f"over {len(shares)} actions"


def _added_ms(latency, arch: str) -> tuple[float | None, str]:
    """Per host, a cold connection to the national web server (its first packet new to the
    network: the placement phase's) less the warm round trip to it; the median over hosts."""
    server = latency.meta.get("subjects", {}).get("server")
    per_host: dict[str, dict[str, list[float]]] = {}
    for r in latency.rows("probes"):
        if r["arch"] != arch:
            continue
        if r["phase"] == "placement" and r["param"] == "near" and r["kind"] == "connect":
            per_host.setdefault(r["src"], {"connect": [], "rtt": []})["connect"].append(
                float(r["value_ms"]))
        elif (r["phase"], r["kind"], r["dst"], r["cold"]) == ("baseline", "ping", server, "0"):
            per_host.setdefault(r["src"], {"connect": [], "rtt": []})["rtt"].append(
                float(r["value_ms"]))
    added = [statistics.median(v["connect"]) - statistics.median(v["rtt"])
             for v in per_host.values() if v["connect"] and v["rtt"]]
    if not added:
        return None, "not measured"
    return statistics.median(added), f"median of {len(added)} hosts"


INDICATORS = {"accessible": ("latency", _newcomers), "open": ("latency", _new_protocol),
              "decentralised": ("blast-radius", _worst_shared_failure),
              "identifiers": ("censorship", _unattributed), "general": ("latency", _added_ms)}


def score(dirs: dict[str, Path]) -> dict:
    """The scorecard of the runs in ``dirs`` (experiment -> its results directory): the
    designs every run compared, a row per property."""
    runs = {name: results_io.load(path, name) for name, path in dirs.items()}
    designs = [a for a in runs["latency"].summary["archs"]
               if all(a in r.summary["archs"] for r in runs.values())]
    rows = []
    for prop in PROPERTIES:
        source, indicator = INDICATORS[prop.key]
        cells = {arch: indicator(runs[source], arch) for arch in designs}
        rows.append({"property": prop.key, "name": prop.name, "indicator": prop.indicator,
                     "unit": prop.unit, "source": source,
                     "values": {a: v for a, (v, _) in cells.items()},
                     "details": {a: d for a, (_, d) in cells.items()}})
    return {"designs": designs, "rows": rows,
            "sources": {name: {"dir": str(path), "commit": runs[name].meta.get("git_commit")}
                        for name, path in dirs.items()}}


def cell(row: dict, arch: str) -> str:
    value = row["values"][arch]
    if value is None:
        return "not measured"
    return f"{100 * value:.0f} %" if row["unit"] == "share" else f"{value:.2f} ms"


def markdown(card: dict) -> str:
    """The scorecard as a table: a row per property, a column per design, each cell its
    number and what it was taken from."""
    from experiments.plotstyle import ARCH_LABELS

    designs = card["designs"]
    lines = ["| property | indicator | " + " | ".join(ARCH_LABELS.get(a, a) for a in designs)
             + " |", "|" + "---|" * (2 + len(designs))]
    for row in card["rows"]:
        lines.append(f"| {row['name']} | {row['indicator']} | " + " | ".join(
            cell(row, a) if row["values"][a] is None else f"{cell(row, a)} ({row['details'][a]})"
            for a in designs) + " |")
    return "\n".join(lines)


def plot(card: dict, directory: Path, title: str = "") -> list[Path]:
    """One cell per property and design, its number written in it; shares shaded on one
    scale (darker: less of the property), the added time on its own."""
    from experiments import plotstyle

    designs, rows = card["designs"], card["rows"]
    fig, axes = plotstyle.figure(width=3.4 + 1.5 * len(designs), height=0.75 * len(rows) + 1.0)
    ax = axes[0][0]
    ax.grid(False)
    colours = plotstyle.plt.get_cmap("cividis")
    for i, row in enumerate(rows):
        values = [row["values"][a] for a in designs]
        top = max([v for v in values if v is not None and v > 0], default=1.0)
        for j, value in enumerate(values):
            text = cell(row, designs[j])
            if value is None:
                shade = (0.9, 0.9, 0.9, 1)
            else:  # an added time at or below zero is the lightest: nothing added
                shade = colours(value if row["unit"] == "share" else 1 - max(value, 0) / top)
            ax.add_patch(plotstyle.plt.Rectangle((j, i), 1, 1, color=shade))
            ink = "black" if value is None or sum(shade[:3]) > 1.5 else "white"
            ax.text(j + 0.5, i + 0.45, text, ha="center", va="center", fontsize=9, color=ink)
            if value is not None:
                ax.text(j + 0.5, i + 0.75, row["details"][designs[j]], ha="center",
                        va="center", fontsize=6, color=ink)
    ax.set_xlim(0, len(designs))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(designs))],
                  [plotstyle.ARCH_LABELS.get(a, a) for a in designs])
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(rows))],
                  [textwrap.fill(f"{r['name']}: {r['indicator']}", 48) for r in rows],
                  fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.text(0.01, 0.01, "shares: higher is more of the property (light); added time: lower "
             "is (light)", fontsize=7)
    return plotstyle.save(fig, directory, "scorecard", title)


def _title(topo: str) -> str:
    return f"The five critical properties, measured ({topo})"


def redraw(directory: Path) -> list[Path]:
    """``splinterlab plot``: the figure again, from the card a run saved."""
    saved = results_io.load(directory, NAME)
    return plot(saved.summary, directory, _title(saved.meta["scenario"]["topo"]))


def write(dirs: dict[str, Path], name: str, topo: str, out: Path | None = None) -> Path:
    """The scorecard of one ``run all``, as a results directory of its own."""
    writer = results_io.RunWriter(NAME, ScorecardConfig(name, topo), out)
    card: dict = {}
    with writer.session(lambda: card):
        card.update(score(dirs))
    plot(card, writer.dir, _title(topo))
    (writer.dir / "summary.md").write_text(markdown(card) + "\n")
    return writer.dir
