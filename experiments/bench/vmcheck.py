"""``make vmtest``'s verdict: what the VM wrote, checked for what must hold on the netem path.

The VM runs Debian's stock kernel under software emulation (no KVM here), so its timings are
slow and loose; what is checked is function: the kernel there has netem and every run used it,
delays are present and roughly right, bandwidth is limited, the path drops nothing, the tests
pass, and both architectures ran an experiment to completion. Prints one line per check and a
summary (also written as summary.md beside the outputs); exit status 1 if any check fails.

    python -m experiments.bench.vmcheck results/vmtest/<time>
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from protocols import architectures

# Under software emulation a delayed traversal runs late by a fraction of a millisecond that
# calibration takes off only on average, and a busy emulated CPU adds more to any echo it
# delays (one run's median was 1.25 ms over): "roughly right" is judged on the fastest echo
# of the series less the fastest echo over the same path at 0 ms in the same run (what the
# slow CPU adds to any path), within 1 ms or 10 % in RTT. A rate is judged against what the
# same path carries without a limit in the same run, since a slowed VM's CPU can be slower
# than the rate asked for: at least half of the lesser of the two, never above the rate.
RTT_SLACK_MS, RTT_SLACK_SHARE = 1.0, 0.10
FIDELITY = "results/bench-fidelity/netem/results.json"  # where vm-inside.sh has it written
RATE_FLOOR_SHARE, RATE_CEILING_SHARE = 0.5, 1.02

@dataclass(frozen=True)
class Verdict:
    what: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.what:<44} {self.detail}"


def _steps(out: Path) -> dict[str, tuple[int, int]]:
    """step name -> (exit status, seconds)."""
    steps = {}
    path = out / "steps.txt"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, rc, seconds = line.split()
        steps[name] = (int(rc), int(seconds))
    return steps


def _text(out: Path, name: str) -> str:
    path = out / f"{name}.txt"
    return path.read_text(errors="replace") if path.exists() else ""


def check_doctor(out: Path, steps: dict) -> list[Verdict]:
    text = _text(out, "doctor")
    return [Verdict("doctor ran and found everything required", steps.get("doctor", (1,))[0]
                    == 0, "exit 0" if "doctor" in steps else "did not run"),
            Verdict("the VM's kernel has netem", "delay backend: netem" in text,
                    next((line for line in text.splitlines() if "delay backend" in line),
                         "no backend line"))]


def check_tests(out: Path, steps: dict) -> list[Verdict]:
    summary = next((line.strip("= ") for line in reversed(_text(out, "tests").splitlines())
                    if re.search(r"\d+ (passed|failed)", line)), "no pytest summary")
    return [Verdict("shaping, network, fidelity, calibration tests",
                    steps.get("tests", (1,))[0] == 0,
                    f"{summary} (precise-timing tests deselected under TCG)")]


def check_fidelity(out: Path) -> list[Verdict]:
    path = out / FIDELITY
    if not path.exists():
        return [Verdict("fidelity on netem", False, f"no {FIDELITY}")]
    data = json.loads(path.read_text())
    rows, context = data["rows"], data["context"]
    out_: list[Verdict] = [Verdict("fidelity ran on netem", context["delay_backend"] == "netem",
                                   f"backend {context['delay_backend']}, calibrated at "
                                   f"{context.get('calibration', {}).get('cost_us')} us "
                                   "per traversal")]
    rtts = [r for r in rows if r["kind"] == "rtt_ms"]
    base = next((r["extra"]["min"] for r in rtts if r["requested"] == 0), None)
    if base is None:
        out_.append(Verdict("the path at 0 ms was measured", False, "no 0 ms row"))
    for r in (r for r in rtts if r["requested"] and base is not None):
        slack = max(RTT_SLACK_MS, RTT_SLACK_SHARE * r["requested"])
        added = r["extra"]["min"] - base
        out_.append(Verdict(f"RTT with {r['requested'] / 2:g} ms each way is right",
                            abs(added - r["requested"]) <= slack,
                            f"fastest RTT {r['extra']['min']:.2f} ms, {added:.2f} ms over the "
                            f"path's {base:.2f} ms (median {r['measured']:.2f}), for "
                            f"{r['requested']:g} ms (within {slack:g} ms)"))
    capacity = next((r["measured"] for r in rows if r["kind"] == "capacity_mbit"), None)
    for r in (r for r in rows if r["kind"] == "goodput_mbit"):
        through = f" through {r['extra']['delay_ms']:g} ms" if r["extra"].get("delay_ms") else ""
        reachable = min(r["requested"], capacity or r["requested"])
        out_.append(Verdict(f"bandwidth {r['requested']:g} Mbit/s{through} is a limit",
                            RATE_FLOOR_SHARE * reachable <= r["measured"]
                            <= RATE_CEILING_SHARE * r["requested"],
                            f"iperf3 TCP {r['measured']:.2f} Mbit/s (the path carries "
                            f"{capacity if capacity is not None else float('nan'):.1f} Mbit/s "
                            "without a limit)"))
    drops = sum(r["extra"]["path_drops"] for r in rows if "path_drops" in r["extra"])
    carried = max((r["measured"] for r in rows if r["kind"] == "delay_path_pps"), default=0)
    out_.append(Verdict("the delayed link drops nothing", drops == 0,
                        f"{drops} dropped by netem; up to {carried:.0f} packets/s received "
                        "(the emulated CPU limits the sender)"))
    return out_


def check_experiment(out: Path, steps: dict) -> list[Verdict]:
    metas = sorted((out / "results").glob("blast-radius/*/meta.json"))
    if not metas:
        return [Verdict("an experiment under both architectures", False,
                        f"no results ({_text(out, 'experiment').strip()[-200:]})")]
    meta = json.loads(metas[0].read_text())
    summary = json.loads((metas[0].parent / "results.json").read_text())
    archs = summary.get("archs", [])
    backends = {a: meta.get(f"{a}_emulation", {}).get("calibration", {}).get("backend")
                for a in archs}
    return [Verdict(f"{meta['experiment']} ran to completion", meta.get("status") == "complete"
                    and steps.get("experiment", (1,))[0] == 0,
                    f"status {meta.get('status')}, {metas[0].parent.relative_to(out)}"),
            Verdict("every design compared ran, on netem", sorted(archs) == sorted(
                    architectures.compared()) and meta.get("delay_backend") == "netem" and
                    set(backends.values()) == {"netem"},
                    f"archs {', '.join(archs)}; meta.json delay_backend "
                    f"{meta.get('delay_backend')}")]


def report(out: Path, what: str, steps: dict, verdicts: list[Verdict]) -> int:
    """One line per check, the steps' exit statuses and durations, and the verdict; printed
    and written as summary.md beside the outputs. 1 if any check failed."""
    lines = [v.line() for v in verdicts]
    lines.append("steps (exit status, seconds): " + ", ".join(
        f"{name} {rc} {seconds} s" for name, (rc, seconds) in steps.items()))
    failed = [v.what for v in verdicts if not v.ok]
    lines.append(f"{what}: every check holds" if not failed else
                 f"{what}: {len(failed)} checks failed: {'; '.join(failed)}")
    print("\n".join(lines))
    (out / "summary.md").write_text("```\n" + "\n".join(lines) + "\n```\n")
    return 1 if failed else 0


def run(out: Path) -> int:
    steps = _steps(out)
    return report(out, "vmtest", steps, [
        *check_doctor(out, steps), *check_tests(out, steps), *check_fidelity(out),
        *check_experiment(out, steps)])


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print("usage: python -m experiments.bench.vmcheck RESULTS_DIR (what make vmtest wrote)",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(run(Path(sys.argv[1])))
