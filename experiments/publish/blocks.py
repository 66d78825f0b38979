"""The README's rendered blocks by name: each a function of the published results root that
returns the fields its template (``docs/readme/NAME.md``) asks for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from experiments.publish import blocks_bench as bench
from experiments.publish import blocks_cluster, blocks_lab
from experiments.publish import blocks_comparisons as comparisons
from experiments.publish import blocks_questions as questions
from experiments.publish import blocks_scale as scale
from experiments.publish.published import Published


def _on(fields: Callable[[Published], dict]) -> Callable[[Path], dict]:
    return lambda root: fields(Published(root))


BLOCKS: dict[str, Callable[[Path], dict]] = {
    "regenerate": _on(bench.regenerate),
    "demo": _on(comparisons.demo),
    "any-topology": _on(comparisons.any_topology),
    "latency": _on(comparisons.latency),
    "blast-radius": _on(comparisons.blast_radius),
    "censorship": _on(comparisons.censorship),
    "scorecard": _on(comparisons.scorecard),
    "questions": _on(questions.questions),
    "study": _on(scale.study),
    "planet": _on(scale.planet),
    "iot": _on(scale.iot),
    "fidelity": _on(bench.fidelity),
    "vmtest": _on(bench.vmtest),
    "bringup": _on(bench.bringup),
    "scale": _on(bench.scale),
    "recovery": _on(bench.recovery),
    "access": _on(bench.access),
    "admission": _on(bench.admission),
    "distro": _on(bench.distro),
    "lab": _on(blocks_lab.lab),
    "cluster": _on(blocks_cluster.cluster),
}
