"""The README's answer per question of the debate, a column per design compared: what each
measured on isp in the same runs (latency, blast radius, censorship and the scorecard drawn
from them), so that what registered access adds over IP under national control, and what it
costs, reads off one table. Every cell a measured figure, or what a design lacks."""

from __future__ import annotations

import statistics

from experiments.comparisons import scorecard
from experiments.plotstyle import ARCH_LABELS
from experiments.publish.published import Published, pct
from protocols.architectures import design
from protocols.instruments import ACTIONS

ISP = "isp"
RELS = tuple(f"{e}/{ISP}" for e in ("scorecard", *scorecard.SOURCES))
EVADED = ("person", "destination")  # the actions whose surviving evasions are listed
WHOM = {"person": "a person", "destination": "a destination", "name": "a name",
        "region": "a region", "country": "the country"}


def _central(records: list[dict], arch: str) -> str:
    central = design(arch).central
    if not central:
        return "no central element"
    lost = [len(r["pairs_lost_new"]) / r["pairs_total"] for r in records
            if r["arch"] == arch and r["failure"]["kind"] == central]
    return f"{pct(max(lost))} (the {central})" if lost else "not measured"


def _evasions(row: dict | None) -> str:
    if row is None:
        return "not measured"
    works = [t.replace("_", " ") for t, v in row["evasion"].items() if v]
    return ", ".join(works) or "none"


def _throttled(row: dict | None) -> str:
    if not row or "during_kbit" not in row:
        return "no rate instrument"
    return f"{row['during_kbit']:.0f} kbit/s (of {row['before_kbit'] / 1000:.0f} Mbit/s)"


def _effect(rows: list[dict]) -> str:
    times = [r["time_to_effect_ms"] for r in rows if r["time_to_effect_ms"] is not None]
    return f"{statistics.median(times):.0f} ms" if times else "not measured"


def table(card: dict, censorship: dict, records: list[dict]) -> str:
    designs = card["designs"]
    rows = {r["property"]: r for r in card["rows"]}
    by = {(r["arch"], r["action"]): r for r in censorship["table"]}
    throttle = {t["arch"]: t for t in censorship.get("throttle", [])}
    lines: list[tuple[str, dict[str, str]]] = [
        ("a new connection's time beyond the round trip",
         {a: scorecard.cell(rows["general"], a) for a in designs}),
        ("newcomers at an address nobody registered who reach a server",
         {a: scorecard.cell(rows["accessible"], a) for a in designs}),
        ("sends of a protocol nobody approved that get through",
         {a: scorecard.cell(rows["open"], a) for a in designs}),
        ("pairs that cannot start a connection while the central element is down",
         {a: _central(records, a) for a in designs})]
    for action in ACTIONS:
        lines.append((f"cut off {WHOM[action]}: targeted flows stopped / other flows stopped",
                      {a: f"{pct(r['precision'])} / {pct(r['collateral'])}" if r else
                       "not measured" for a in designs for r in [by.get((a, action))]}))
    for action in EVADED:
        lines.append((f"evasions that still work when {WHOM[action]} is cut off",
                      {a: _evasions(by.get((a, action))) for a in designs}))
    lines += [
        ("a user's destinations the operator's records tie to the person (mean over actions)",
         {a: pct(statistics.fmean(v)) if v else "not measured" for a in designs
          for v in [[by[(a, x)]["attribution"] for x in ACTIONS if (a, x) in by and
                     by[(a, x)]["attribution"] is not None]]}),
        ("a site slowed to 150 kbit/s: the user's goodput",
         {a: _throttled(throttle.get(a)) for a in designs}),
        ("time to effect, median over the actions",
         {a: _effect([r for (arch, _), r in by.items() if arch == a]) for a in designs})]
    head = ["| question | " + " | ".join(ARCH_LABELS.get(a, a) for a in designs) + " |",
            "|---|" + "---|" * len(designs)]
    return "\n".join(head + [f"| {q} | " + " | ".join(cells[a] for a in designs) + " |"
                             for q, cells in lines])


def questions(pub: Published) -> dict:
    return {"source": pub.source(*RELS),
            "table": table(pub.summary(f"scorecard/{ISP}"), pub.summary(f"censorship/{ISP}"),
                           pub.summary(f"blast-radius/{ISP}")["records"])}
