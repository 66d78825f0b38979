"""make vmtest's verdict on what the VM wrote: a slow emulated CPU passes for the right
reasons (timing judged against references from the same run), a missing delay or rate limit
fails hard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.bench import vmcheck
from protocols import architectures


def rtt(delay_ms: float, fastest: float) -> dict:
    return {"kind": "rtt_ms", "requested": 2 * delay_ms, "measured": fastest + 0.3,
            "tolerance": 0, "ok": True, "extra": {"min": fastest, "mean": fastest + 0.3}}


def rate(mbit: float, measured: float, delay_ms: float = 0) -> dict:
    return {"kind": "goodput_mbit", "requested": mbit, "measured": measured, "tolerance": 0,
            "ok": True, "extra": {"delay_ms": delay_ms}}


def write_vm_outputs(out: Path, *, slowness_ms: float = 0.3, capacity: float = 900,
                     delay_scale: float = 1.0, rates: tuple[float, float] = (9.5, 93)) -> Path:
    """What vm-inside.sh leaves: the steps, doctor's text, fidelity's results and one experiment.
    ``slowness_ms`` is what the emulated CPU adds to every echo, ``delay_scale`` how much of
    each requested delay the path really applied."""
    (out / "steps.txt").write_text("doctor 0 30\ntests 0 170\nfidelity 0 120\n"
                                   "experiment 0 160\n")
    (out / "doctor.txt").write_text("delay backend: netem (calibrated)\n")
    (out / "tests.txt").write_text("== 30 passed, 4 deselected in 169.00s ==\n")
    rows = [rtt(d, slowness_ms + 2 * d * delay_scale) for d in (0, 1, 5, 20, 50)]
    rows.append({"kind": "capacity_mbit", "requested": 0, "measured": capacity,
                 "tolerance": 0, "ok": True, "extra": {}})
    rows += [rate(10, rates[0]), rate(100, rates[1]), rate(10, rates[0], 20),
             rate(100, rates[1], 20)]
    rows.append({"kind": "delay_path_pps", "requested": 50000, "measured": 19000,
                 "tolerance": 1, "ok": False, "extra": {"path_drops": 0}})
    (out / vmcheck.FIDELITY).parent.mkdir(parents=True)
    (out / vmcheck.FIDELITY).write_text(json.dumps(
        {"context": {"delay_backend": "netem", "calibration": {"cost_us": 1473.3}},
         "rows": rows}))
    run = out / "results" / "blast-radius" / "x"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps(
        {"experiment": "blast-radius", "status": "complete", "delay_backend": "netem",
         **{f"{a}_emulation": {"calibration": {"backend": "netem"}}
            for a in architectures.compared()}}))
    (run / "results.json").write_text(json.dumps({"archs": list(architectures.compared())}))
    return out


def failed(out: Path) -> list[str]:
    vmcheck.run(out)
    return [line for line in (out / "summary.md").read_text().splitlines()
            if line.startswith("FAIL")]


def test_a_fast_vm_passes(tmp_path):
    assert failed(write_vm_outputs(tmp_path)) == []


def test_a_slowed_vm_passes_against_its_own_references(tmp_path):
    """One emulated CPU: every echo 1.5 ms slower (calibration 1.5 ms per traversal), and the
    CPU carries only 40 Mbit/s, so the 100 Mbit/s link gives 35: neither is netem's fault."""
    out = write_vm_outputs(tmp_path, slowness_ms=1.5, capacity=40, rates=(9.4, 35))
    assert failed(out) == []


@pytest.mark.parametrize("delay_scale", [0.0, 0.5])
def test_a_missing_or_short_delay_fails(tmp_path, delay_scale):
    fails = failed(write_vm_outputs(tmp_path, slowness_ms=1.5, delay_scale=delay_scale))
    assert any("RTT with 20 ms each way" in line for line in fails), fails


def test_a_rate_that_is_no_limit_fails(tmp_path):
    fails = failed(write_vm_outputs(tmp_path, rates=(40, 300)))
    assert any("bandwidth 10 Mbit/s is a limit" in line for line in fails), fails


def test_a_rate_far_below_what_the_path_carries_fails(tmp_path):
    fails = failed(write_vm_outputs(tmp_path, capacity=900, rates=(9.5, 20)))
    assert any("bandwidth 100 Mbit/s is a limit" in line for line in fails), fails
