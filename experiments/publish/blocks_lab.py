"""The README's lab sheet: the page of ``splinterlab lab`` as ``splinterlab bench lab`` saw
it in Debian's chromium (screenshots beside its figures)."""

from __future__ import annotations

from experiments.publish.published import Published
from protocols import architectures

LAB = "bench-lab/isp"


def _flows(flows: dict[str, dict[str, int]]) -> str:
    """'permissionless IP: 8 of 306 lost; registered access: 34 of 306 denied; ...'"""
    parts = []
    for design, counts in flows.items():
        bad = "denied" if architectures.admits(design) else "lost"
        parts.append(f"{architectures.design(design).label}: {counts.get(bad, 0)} of "
                     f"{sum(counts.values())} {bad}")
    return "; ".join(parts)


def lab(pub: Published) -> dict:
    s = pub.summary(LAB)
    steps = s["steps"]
    return {"source": pub.source(LAB), "drawn": f"{s['drawn_s']:.1f} s",
            "designs": len(s["designs"]), "victim": s["victim"], "region": s["region"],
            **{f"{name}_shown": f"{step['shown_s']:.2f} s" for name, step in steps.items()},
            **{f"{name}_flows": _flows(step["flows"]) for name, step in steps.items()},
            "rest_flows": _flows(s["rest"])}
