"""Experiments from the command line: bad input in one sentence, and plots regenerated from
saved results by an ordinary user, without root and without Mininet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from experiments.bench.labpage import SHOTS
from experiments.commands import cli

SAMPLES = Path(__file__).parent.parent / "docs" / "results"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, words", [
    (["run", "nosuch"], "no experiment 'nosuch'"),
    (["run", "latency", "--topo", "nosuch"], "no topology 'nosuch'"),
    (["run", "latency", "--seed", "-1"], "--seed must be"),
    (["run", "latency", "--profile", "huge"], "profile must be one of quick, full, not 'huge'"),
    (["run", "censorship", "--topo", "ring"], "lacks a national web server"),
    (["run", "planet", "--topo", "isp"], "takes no --topo"),
    (["study", "blast-radius", "zoo:Abilene", "nosuch"], "no topology 'nosuch'"),
    (["study", "planet"], "is not one of the paired comparisons"),
    (["study", "iot"], "is not one of the paired comparisons"),
    (["plot", "/nonexistent/results"], "does not exist"),
])
def test_bad_input_is_one_sentence(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_a_graph_over_the_ceiling_is_one_sentence(capsys, monkeypatch):
    """A graph over the measured ceiling (here a pretended lower one, so that a ceiling raised
    by a new measurement never turns this into a real run) is refused before anything is
    built."""
    from topologies import zoo

    monkeypatch.setattr(zoo, "CEILING", {"pops": 100, "basis": "a smaller machine"})
    code, _, err = run(capsys, "run", "all", "--topo", "zoo:TataNld")
    assert code == 2 and "pick a smaller graph" in err and err.count("\n") == 1, err


def test_plot_refuses_a_foreign_directory(capsys, tmp_path):
    (tmp_path / "meta.json").write_text('{"something": "else"}')
    code, _, err = run(capsys, "plot", str(tmp_path))
    assert code == 2 and "does not come from splinterlab" in err


def test_plot_refuses_a_directory_without_results(capsys, tmp_path):
    (tmp_path / "meta.json").write_text('{"experiment": "latency"}')
    code, _, err = run(capsys, "plot", str(tmp_path))
    assert code == 2 and "no results.json" in err


def _reachable_by_everyone(path: Path) -> list[tuple[Path, int]]:
    """Let every user traverse the directories above ``path`` (a clone may sit in a private
    temporary directory); returns what to restore."""
    changed = []
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            directory.chmod(mode | 0o001)
            changed.append((directory, mode))
    return changed


def differs(expected: Path, actual: Path) -> bool:
    """Whether two renderings differ beyond anti-aliasing (an RMS of 5 on 0-255)."""
    from matplotlib.testing.compare import compare_images
    from matplotlib.testing.exceptions import ImageComparisonFailure

    try:
        return compare_images(str(expected), str(actual), tol=5) is not None
    except ImageComparisonFailure:  # not even the same size
        return True


@pytest.mark.published
def test_plot_regenerates_every_plot_as_an_ordinary_user():
    """The saved sample results (those the README shows) are replotted by 'nobody'."""
    tmp_path = Path(tempfile.mkdtemp(prefix="splinterlab-plot-"))
    tmp_path.chmod(0o755)  # an ordinary user must be able to reach it
    copy = tmp_path / "results"
    shutil.copytree(SAMPLES, copy)
    plots = sorted(p for p in copy.rglob("*.png") if p.parent.name != SHOTS)  # photographs
    assert plots, "no sample plots to regenerate"
    published = tmp_path / "published"  # the figures as committed, to hold the redrawn to
    for p in plots:
        (published / p.relative_to(copy)).parent.mkdir(parents=True, exist_ok=True)
        p.rename(published / p.relative_to(copy))
    for p in copy.rglob("*.svg"):
        p.unlink()
    argv = [sys.executable, "-m", "experiments.commands.cli", "plot"]
    project = Path(__file__).resolve().parent.parent
    restore: list[tuple[Path, int]] = []
    if os.geteuid() == 0:
        for path in [tmp_path, *tmp_path.rglob("*")]:
            os.chown(path, 65534, 65534)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        restore = _reachable_by_everyone(project)

    def plot(root: Path) -> dict[Path, bytes]:
        done = subprocess.run([*argv, str(root)], capture_output=True, text=True, cwd=project,
                              env={**os.environ, "HOME": "/"})
        assert done.returncode == 0, done.stderr
        assert "mininet" not in done.stderr.lower()
        return {p: p.read_bytes() for p in root.rglob("*.svg")}

    try:
        first = plot(copy)
        again = plot(copy / "censorship")  # one experiment's again: the same bytes?
        drawn = sorted(p for p in copy.rglob("*.png") if p.parent.name != SHOTS)
        # every plot the samples carry, and a study's per-run plots, which they leave out
        assert set(plots) <= set(drawn)
        assert len(first) == len(drawn)
        assert again and again == {p: first[p] for p in again}, \
            "the same results must give the same drawings, byte for byte"
        # and the committed figures are what the committed results draw (not stale)
        stale = [str(p.relative_to(copy)) for p in plots
                 if differs(published / p.relative_to(copy), p)]
        assert not stale, f"redraw with 'splinterlab plot docs/results': {stale}"
    finally:
        for directory, mode in restore:
            directory.chmod(mode)
        shutil.rmtree(tmp_path)


def test_a_network_that_does_not_heal_stops_the_run_naming_pairs_and_gateways():
    """Every later failure would be measured on a broken network: the blast radius stops with
    the pairs still cut off, the state of their gateways and the line of the node they share
    (what CI then shows)."""
    from types import SimpleNamespace

    from experiments.comparisons import blast_radius
    from topologies import build

    g = build("zoo:Abilene")
    asked = []

    class Arch:
        def diagnose(self, net, ends):
            asked.append(ends)
            return "gateway r1: dead"

    with pytest.raises(RuntimeError) as e:
        blast_radius.unhealed(SimpleNamespace(graph=g, line_state=lambda n: f"{n}'s line"),
                              Arch(), {"kind": "router", "target": "r1"},
                              {("h1", "web1"), ("h2", "h1")})
    assert "after repairing router r1, 2 pairs still cannot start a connection" in str(e.value)
    assert "h1->web1" in str(e.value) and "gateway r1: dead" in str(e.value)
    assert "h1's line" in str(e.value)  # the node in every lost pair: where the fault is
    (ends,) = asked  # every end of a lost pair, the most suspect first
    assert ends[0] == "h1" and set(ends) == {"h1", "h2", "web1"}
