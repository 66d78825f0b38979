"""Reading the published results for the README's blocks: one results directory by its path
under the root, its figures, rows and provenance, and the number formats the README uses."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from experiments import results
from experiments.publish.readme import RenderError


class Missing(RenderError):
    """A results file a block needs is not there; one sentence."""


class Published:
    def __init__(self, root: Path):
        self.root = root

    def _json(self, rel: str, name: str) -> dict:
        path = self.root / rel / name
        if not results.exists(path):
            raise Missing(f"{path} is missing (run make results)")
        return json.loads(results.read_text(path))

    def summary(self, rel: str) -> dict:
        return self._json(rel, "results.json")

    def meta(self, rel: str) -> dict:
        return self._json(rel, "meta.json")

    def topology(self, rel: str):
        from topologies import graph as graphs

        return graphs.from_json(self._json(rel, "topology.json"))

    def rows(self, rel: str, name: str) -> list[dict]:
        path = self.root / rel / f"{name}.csv"
        if not results.exists(path):
            raise Missing(f"{path} is missing (run make results)")
        return results.rows(path)

    def minutes(self, *rels: str) -> float:
        """Wall-clock minutes the runs under ``rels`` took, start to end, added up."""
        return sum((m["end"] - m["start"]) / 60 for m in map(self.meta, rels))

    def source(self, *rels: str) -> str:
        """'commit abc1234 of 2026-12-03: docs/results/latency/isp': where figures come from,
        for the line that ends each block; one such part per commit where several made them."""
        by_commit: dict[str, list[str]] = {}
        for rel in rels:
            by_commit.setdefault(self.meta(rel)["git_commit"][:7], []).append(rel)
        parts = []
        for commit, made in sorted(by_commit.items()):
            day = time.strftime("%Y-%m-%d", time.gmtime(max(
                m.get("end") or m.get("start") or 0 for m in map(self.meta, made))))
            where = ", ".join(f"`docs/results/{rel}`" for rel in made)
            parts.append(f"commit {commit} of {day}: {where}")
        return "; ".join(parts)


def spaced(x: float, decimals: int = 0) -> str:
    """16 000, the README's way of writing thousands."""
    return f"{x:,.{decimals}f}".replace(",", " ")


def ms(x: float | None, decimals: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{decimals}f} ms"


def held(ok: bool) -> str:
    """A target's verdict, in the README's tables."""
    return "held" if ok else "**missed**"


def pct(x: float | None, decimals: int = 0) -> str:
    return "n/a" if x is None else f"{100 * x:.{decimals}f} %"


def span(values: list[float], fmt) -> str:
    """'5 to 9' (or one value when all agree)."""
    low, high = fmt(min(values)), fmt(max(values))
    return low if low == high else f"{low} to {high}"


def median(values: list[float]) -> float:
    return statistics.median(values)
