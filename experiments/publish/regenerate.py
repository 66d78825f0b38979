"""``make results``: every result the README shows, regenerated at one clean commit.

Each step is one command of this project writing a results directory into a staging root
(``results/publish/``); a step already complete at the same commit is not run again, so an
interrupted regeneration resumes where it stopped. It refuses a tree with changes (the
results would not be of any commit), and checks after every step that what was written
names the commit it started at, clean. Once every step is done, the staging root replaces
``docs/results/`` (figures as PNG only, the registered networks' records only where a step
keeps them), ``regenerate.json`` records the commit, the date and every step's duration,
and the README's rendered blocks are redrawn from the new files (``experiments.publish``).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.results import DIRTY

PROJECT = Path(__file__).resolve().parent.parent.parent
PUBLISHED = PROJECT / "docs" / "results"
STAGING = PROJECT / "results" / "publish"
RECORD = "regenerate.json"
# The one sample that keeps what its registered networks recorded (registry, admission log):
# the others' are mostly a load generator's synthetic requests, megabytes of them.
KEEP_RECORDS = ("censorship/isp",)
SUITE = "tests"  # the step (and results directory) of the README's test command's suite
COMPRESS_ABOVE = 64 * 1024  # bytes: smaller files stay readable in a browser, in the diff


class RegenerateError(RuntimeError):
    """Why the regeneration cannot go on, in one sentence."""


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]  # a splinterlab command, given --out (and --name) by ``command``
    minutes: float         # how long it took when last measured here: the progress estimate
    named: bool = True     # takes --name (a study names its directories after its graphs)
    dirname: str = ""      # its directory's name, if not the step's

    def command(self, staging: Path) -> list[str]:
        if self.name in SCRIPTS:
            return ["bash", str(PROJECT / "scripts" / SCRIPTS[self.name])]
        if self.name == SUITE:  # the README's test command's suite, recorded as a result
            return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={staging / SUITE / 'junit.xml'}"]
        name = ["--name", self.dirname or self.name] if self.named else []
        out = staging / "study" if self.argv[0] == "study" else staging
        return [sys.executable, "-m", "experiments.commands.cli", *self.argv, "--out", str(out),
                *name]


# The README's samples, in the order they are made: bench access first, since the graph model
# of the later steps takes its processing time from the newest bench access result (and bench
# cluster, after the ladder, its routers' costs from the newest bench scale). Results go
# to <experiment>/<dirname or name>/ (latency/isp/, bench-access/isp/, ...).
STEPS = (
    Step("access", ("bench", "access", "--topo", "isp"), 4, dirname="isp"),
    Step("isp", ("run", "all", "--topo", "isp"), 7),
    Step("zoo_Abilene", ("run", "all", "--topo", "zoo:Abilene"), 7),
    Step("zoo_sndlib_polska", ("run", "all", "--topo", "zoo:sndlib/polska"), 7),
    Step("study", ("study", "blast-radius"), 45, named=False),
    Step("full", ("run", "iot", "--profile", "full"), 35),
    Step("burst", ("run", "iot", "--profile", "burst"), 12),
    Step("world", ("run", "planet", "--profile", "full"), 1),
    Step("bringup", ("bench", "bringup", "--topo", "isp"), 2, dirname="isp"),
    Step("recovery", ("bench", "recovery", "--topo", "isp"), 4, dirname="isp"),
    Step("admission", ("bench", "admission"), 2, dirname="local"),
    Step("ladder", ("bench", "scale"), 12),
    Step("cluster", ("bench", "cluster", "--topo", "zoo:Bics"), 4, dirname="testbed"),
    Step("userspace", ("fidelity", "--backend", "userspace"), 3),
    Step("lab", ("bench", "lab", "--topo", "isp"), 2, dirname="isp"),
    Step("vmtest", (), 15),
    Step("trixie", (), 9),
    Step(SUITE, (), 18),
)
SCRIPTS = {"vmtest": "vmtest.sh", "trixie": "distrotest.sh"}  # steps that are make targets


def _git(*argv: str) -> str:
    return subprocess.run(["git", "-C", str(PROJECT), *argv], capture_output=True,
                          text=True).stdout.strip()


def clean_commit() -> str:
    """HEAD, if the tree has no changes (tracked or untracked, ignored files aside)."""
    changes = _git("status", "--porcelain")
    if changes:
        first = changes.splitlines()[0][3:]
        raise RegenerateError(f"the tree has changes ({first} and {len(changes.splitlines())} "
                              "in all): commit or stash them, published results must come "
                              "from a commit")
    return _git("rev-parse", "HEAD")


def state_of(staging: Path, commit: str) -> dict:
    """What has been done at ``commit``; a staging root of another commit is started over."""
    path = staging / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    if state.get("commit") != commit:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        state = {"commit": commit, "started": time.time(), "steps": {}}
    return state


def save_state(staging: Path, state: dict) -> None:
    (staging / "state.json").write_text(json.dumps(state, indent=1))


def metas(root: Path) -> list[Path]:
    return sorted(root.rglob("meta.json"))


def foreign(root: Path, commit: str, later: dict[str, str] | None = None) -> list[str]:
    """Results under ``root`` not made at ``commit`` with a clean tree, or, under a directory
    of ``later`` (relative to ``root``; a refresh's), at that directory's commit."""
    wrong = []
    for path in metas(root):
        rel = path.parent.relative_to(root).as_posix()
        want = next((c for d, c in (later or {}).items()
                     if rel == d or rel.startswith(d + "/")), commit)
        made = json.loads(path.read_text()).get("git_commit", "")
        if made != want:
            wrong.append(f"{rel} ({made or 'no commit'}, expected {want[:7]})")
    return wrong


def run_step(step: Step, staging: Path, commit: str) -> float:
    started = time.monotonic()
    env = {**os.environ, "VMTEST_OUT": str(staging / "vmtest"),
           "DISTRO_OUT": str(staging / "distro-trixie")}
    (staging / SUITE).mkdir(exist_ok=True)
    done = subprocess.run(step.command(staging), cwd=PROJECT, env=env)
    if done.returncode != 0:
        raise RegenerateError(f"step {step.name} failed (exit status {done.returncode}); "
                              "fix it and run make results again: finished steps are kept")
    if step.name == "vmtest":
        _adopt_vm_fidelity(staging)
    if step.name == SUITE:
        _record_tests(staging / SUITE, commit, time.monotonic() - started)
    if _git("rev-parse", "HEAD") != commit or _git("status", "--porcelain"):
        raise RegenerateError(f"the tree changed while step {step.name} ran; its results are "
                              "not of one commit")
    return time.monotonic() - started


def _adopt_vm_fidelity(staging: Path) -> None:
    """The VM's netem fidelity is published beside the userspace one; the VM's verdict stays
    beside it, the rest of what it wrote (a line topology's experiment) does not."""
    vm = staging / "vmtest"
    netem = vm / "results" / "bench-fidelity" / "netem"
    target = staging / "bench-fidelity" / "netem"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(netem, target)
    shutil.copy(vm / "summary.md", target / "vmcheck.md")
    shutil.copy(vm / "steps.txt", target / "vm-steps.txt")
    shutil.rmtree(vm)


def _record_tests(directory: Path, commit: str, seconds: float) -> None:
    """The test suite as a result: how many tests, of which kinds, and how long it took."""
    import xml.etree.ElementTree as ElementTree

    suite = ElementTree.parse(directory / "junit.xml").getroot().find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    (directory / "results.json").write_text(json.dumps({**counts, "seconds": round(seconds)}))
    (directory / "meta.json").write_text(json.dumps(
        {"experiment": SUITE, "git_commit": commit, "status": "complete",
         "end": time.time(), "command": "python -m pytest (what make test runs)"}, indent=1))
    (directory / "junit.xml").unlink()


def thin(staging: Path) -> None:
    """What is published: the PNG figures the README shows (``splinterlab plot`` redraws the
    others, and every SVG, from the data beside them), records only of the runs that keep
    them, and data files over ``COMPRESS_ABOVE`` gzip-compressed (readers take either)."""
    from experiments.publish.readme import shown_figures

    shown = shown_figures()
    for figure in [*staging.rglob("*.svg"), *staging.rglob("*.png")]:
        if figure.suffix == ".svg" or figure.relative_to(staging).as_posix() not in shown:
            figure.unlink()
    for records in list(staging.rglob("records")):
        if records.is_dir() and str(records.parent.relative_to(staging)) not in KEEP_RECORDS:
            shutil.rmtree(records)
    for data in [*staging.rglob("*.json"), *staging.rglob("*.csv")]:
        if data.name != "meta.json" and data.stat().st_size > COMPRESS_ABOVE:
            # mtime=0: the same data gives the same bytes, so an unchanged file stays unchanged
            data.with_name(data.name + ".gz").write_bytes(gzip.compress(data.read_bytes(),
                                                                        mtime=0))
            data.unlink()


def publish(staging: Path, state: dict, total_s: float) -> None:
    thin(staging)
    (staging / "state.json").unlink()
    record = {"commit": state["commit"], "date": time.strftime("%Y-%m-%d", time.gmtime(
        state["started"])), "total_s": round(total_s),
        "steps": {name: round(v["seconds"]) for name, v in state["steps"].items()}}
    (staging / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    if PUBLISHED.exists():
        shutil.rmtree(PUBLISHED)
    shutil.move(str(staging), str(PUBLISHED))


def verify_published() -> None:
    """The tests that read docs/results (marker ``published``) run again once new results are
    in place: a value the code holds from a result (the zoo ceiling) or a record nothing draws
    is caught before the results are committed, not by CI after."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-m", "published"], cwd=PROJECT)
    if done.returncode != 0:
        raise RegenerateError("the new results (in docs/results) disagree with the code or "
                              "the README (pytest -m published failed above): fix that "
                              "before committing them")


def regenerate(only: list[str] | None = None, say=print) -> Path:
    """Run every step not done yet at the current commit; publish once all are done."""
    if only and (unknown := set(only) - {s.name for s in STEPS}):
        raise RegenerateError(f"no step {sorted(unknown)[0]!r}; the steps are "
                              f"{', '.join(s.name for s in STEPS)}")
    commit = clean_commit()
    state = state_of(STAGING, commit)
    todo = [s for s in STEPS if s.name not in state["steps"] and (not only or s.name in only)]
    left = sum(s.minutes for s in todo)
    for k, step in enumerate(todo, 1):
        say(f"make results: [{k}/{len(todo)}] {step.name}: {' '.join(step.argv) or 'vmtest'} "
            f"(about {step.minutes:g} min; {left:g} min left of the estimate)")
        seconds = run_step(step, STAGING, commit)
        state["steps"][step.name] = {"seconds": seconds}
        save_state(STAGING, state)
        left -= step.minutes
        say(f"make results: {step.name} done in {seconds / 60:.1f} min")
    missing = [s.name for s in STEPS if s.name not in state["steps"]]
    if missing:
        say(f"make results: not yet published: {', '.join(missing)} still to run")
        return STAGING
    wrong = foreign(STAGING, commit)
    if wrong or DIRTY in commit:
        raise RegenerateError(f"{wrong[0]} was not made at {commit}; run make results again")
    total = sum(v["seconds"] for v in state["steps"].values())
    publish(STAGING, state, total)
    say(f"make results: every result regenerated at {commit[:7]} in {total / 60:.0f} min, "
        f"published in {PUBLISHED.relative_to(PROJECT)}")
    return PUBLISHED
