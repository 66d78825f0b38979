"""``splinterlab results --refresh STEP...``: re-measure some published results at a later
clean commit, without the three hours of a whole ``make results``.

When a change alters what one step measures, its results are made again at the new commit
and replace that step's directories in ``docs/results/``; ``regenerate.json`` keeps the commit
of the whole regeneration and lists, per refreshed directory, the commit and date that made it,
so the README says which figures are newer than the rest and every results file still names a
clean commit that a reader can check out. A later full ``make results`` clears the list.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from experiments.publish import regenerate as whole

SCRATCH = whole.PROJECT / "results" / "refresh"


def record(root: Path) -> dict:
    path = root / whole.RECORD
    if not path.exists():
        raise whole.RegenerateError(f"{root} has no {whole.RECORD}: a refresh replaces part of "
                                    "a published regeneration, run make results first")
    return json.loads(path.read_text())


def expected_commits(root: Path) -> dict[str, str]:
    """Each refreshed results directory (relative to ``root``) and the commit that made it."""
    return {d: r["commit"] for r in record(root).get("refreshed", []) for d in r["dirs"]}


def misnamed(root: Path) -> list[str]:
    """Results under ``root`` that name neither the regeneration's commit nor, for a refreshed
    directory, the commit of its refresh."""
    return whole.foreign(root, record(root)["commit"], expected_commits(root))


def _made(scratch: Path) -> list[str]:
    """The top results directories a step wrote: ``<experiment>/<name>``, or ``tests``."""
    dirs = set()
    for meta in whole.metas(scratch):
        parts = meta.parent.relative_to(scratch).parts
        dirs.add("/".join(parts[:2]) if len(parts) >= 2 else parts[0])
    return sorted(dirs)


def refresh(names: list[str], say=print) -> list[str]:
    """Run the named steps at this clean commit, then put what they made into docs/results.

    Each step writes to its own scratch root first (the tree must stay clean while steps run);
    steps finished at this commit are kept, so an interrupted refresh resumes."""
    steps = {s.name: s for s in whole.STEPS}
    if unknown := [n for n in names if n not in steps]:
        raise whole.RegenerateError(f"no step {unknown[0]!r}; the steps are "
                                    f"{', '.join(steps)}")
    published = record(whole.PUBLISHED)
    commit = whole.clean_commit()
    if commit == published["commit"]:
        raise whole.RegenerateError("docs/results was regenerated at this very commit: "
                                    "nothing to refresh (run make results to redo a step)")
    state = whole.state_of(SCRATCH, commit)
    for name in names:
        if name in state["steps"]:
            continue
        say(f"make results: refreshing {name} at {commit[:7]} (about {steps[name].minutes:g} min)")
        scratch = SCRATCH / name
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir()
        seconds = whole.run_step(steps[name], scratch, commit)
        if wrong := whole.foreign(scratch, commit):
            raise whole.RegenerateError(f"{wrong[0]} was not made at {commit}")
        state["steps"][name] = {"seconds": seconds}
        whole.save_state(SCRATCH, state)
    replaced: list[str] = []
    for name in names:
        scratch = SCRATCH / name
        whole.thin(scratch)
        dirs = _made(scratch)
        for d in dirs:
            target = whole.PUBLISHED / d
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(scratch / d), str(target))
        entry = {"step": name, "commit": commit, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                 "seconds": round(state["steps"][name]["seconds"]), "dirs": dirs}
        published["refreshed"] = [r for r in published.get("refreshed", [])
                                  if r["step"] != name] + [entry]
        replaced += dirs
        say(f"make results: {name} refreshed: {', '.join(dirs)}")
    (whole.PUBLISHED / whole.RECORD).write_text(json.dumps(published, indent=1) + "\n")
    shutil.rmtree(SCRATCH)
    return replaced
