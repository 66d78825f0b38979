"""``make distrotest``'s verdict: what the quick checks wrote inside another Debian's root.

What must hold there as here: set-up and doctor succeed, every design reaches every pair on
isp, a quick blast radius completes under both architectures, and the runs say where they
ran (FRR and Python versions of that release, recorded in meta.json). Its recovery times are
reported beside this machine's, not judged: they are the figures the FRR versions are
compared by. Prints one line per check (also written as summary.md); exit status 1 if any
check fails.

    python -m experiments.bench.distrocheck results/distrotest/<time>
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from experiments.bench.vmcheck import Verdict, _steps, _text, report
from protocols import architectures

ARCHS = architectures.names()


def _ran(steps: dict, name: str) -> bool:
    return steps.get(name, (1,))[0] == 0


def check_setup(out: Path, steps: dict) -> list[Verdict]:
    doctor = _text(out, "doctor")
    return [Verdict("make setup", _ran(steps, "setup"),
                    _text(out, "setup").strip().splitlines()[-1:][0][:100]
                    if _text(out, "setup").strip() else "no output"),
            Verdict("doctor finds everything required", _ran(steps, "doctor") and
                    "everything required is present" in doctor,
                    (doctor.strip().splitlines() or ["no output"])[-1][:100])]


def check_pingall(out: Path, steps: dict) -> list[Verdict]:
    verdicts = []
    for arch in ARCHS:
        text = _text(out, f"pingall-{arch}")
        found = re.search(r"(\d+)/(\d+) pairs reachable", text)
        ok = _ran(steps, f"pingall-{arch}") and bool(found) and found[1] == found[2]
        verdicts.append(Verdict(f"pingall on isp, {arch}", ok,
                                found[0] if found else (text.strip()[-100:] or "no output")))
    return verdicts


def _meta(out: Path, experiment: str) -> dict | None:
    path = out / "results" / experiment / "distro" / "meta.json"
    return json.loads(path.read_text()) if path.exists() else None


def check_experiment(out: Path, steps: dict) -> list[Verdict]:
    meta = _meta(out, "blast-radius")
    if meta is None:
        return [Verdict("a quick blast radius under both designs", False,
                        _text(out, "experiment").strip()[-200:] or "no results")]
    summary = json.loads((out / "results" / "blast-radius" / "distro" /
                          "results.json").read_text())
    versions = meta.get("versions", {})
    return [Verdict("a quick blast radius under every design compared",
                    _ran(steps, "experiment") and meta.get("status") == "complete" and
                    sorted(summary.get("archs", [])) == sorted(architectures.compared()),
                    f"status {meta.get('status')}, {len(summary.get('records', []))} failures"),
            Verdict("meta.json names the release's FRR and Python",
                    "version" in versions.get("frr", "") and versions.get("python"),
                    f"FRR {versions.get('frr')}, Python {versions.get('python')}")]


def check_recovery(out: Path, steps: dict) -> list[Verdict]:
    path = out / "results" / "bench-recovery" / "distro" / "results.json"
    if not path.exists():
        return [Verdict("bench recovery ran", False, "no results")]
    cases = json.loads(path.read_text()).get("cases", [])
    healed = all(c["recovered"] == c["runs"] for c in cases)
    return [Verdict("bench recovery: every cut healed", _ran(steps, "recovery") and healed,
                    "; ".join(f"{c['case']}: median {c['median_s']:.3f} s" for c in cases
                              if c["median_s"] is not None))]


def run(out: Path) -> int:
    steps = _steps(out)
    return report(out, "distrotest", steps, [
        *check_setup(out, steps), *check_pingall(out, steps), *check_experiment(out, steps),
        *check_recovery(out, steps)])


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print("usage: python -m experiments.bench.distrocheck RESULTS_DIR (what make "
              "distrotest wrote)", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(Path(sys.argv[1])))
