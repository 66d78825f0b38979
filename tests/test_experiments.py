"""Experiments end to end on real networks: the blast radius of both designs against the graph
model on three zoo topologies, and an interrupted run that keeps its measurements and leaves
nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from helpers import blast_radius_on_one_machine, run_and_expect

from experiments.comparisons import blast_radius
from protocols import architectures
from topologies import cleanup
from topologies import graph as graphs

pytestmark = pytest.mark.needs_root


# every routed design on every graph; make test's 20 minutes allow three runs: every compared
# design once, on a graph of its own; the rest is `make check-model`'s
GRAPHS = ("zoo:Getnet", "zoo:Arpanet19706", "zoo:Abilene")
IN_MAKE_TEST = {("zoo:Getnet", "registered"), ("zoo:Arpanet19706", "permissionless"),
                ("zoo:Abilene", "sovereign")}
COVERED = [pytest.param(spec, d.name, marks=() if (spec, d.name) in IN_MAKE_TEST else
                        pytest.mark.extended)
           for d in architectures.DESIGNS if d.routing for spec in GRAPHS]


@pytest.mark.parametrize(("spec", "arch"), COVERED)
def test_blast_radius_is_what_the_graph_model_predicts(tmp_path_factory, spec, arch):
    """Every failure of the quick profile (every router, a sample of links; under registered
    access also the authority and each region cut off from it): the pairs that can no longer
    start a connection, and those whose connections stopped, are exactly the graph model's
    (experiments.model.reachability)."""
    directory = blast_radius_on_one_machine(spec, arch, tmp_path_factory)
    summary = json.loads((directory / "results.json").read_text())
    g = graphs.load(directory / "topology.json")  # the graph the run recorded
    kinds = {r["failure"]["kind"] for r in summary["records"]}
    central = architectures.design(arch).central
    assert {"router", "link"} | ({central} if central else set()) <= kinds
    for record in summary["records"]:
        model = blast_radius.predicted(g, record["arch"], record["failure"])
        for kind in ("new", "existing"):
            measured = {tuple(p) for p in record[f"pairs_lost_{kind}"]}
            predicted = {tuple(p) for p in model[f"predicted_lost_{kind}"]}
            assert measured == predicted, (record["arch"], record["failure"], kind,
                                           sorted(measured ^ predicted)[:6])
    print(f"\n{spec}, {arch}: {len(summary['records'])} failures, every one as the model "
          "predicts")


def test_ctrl_c_keeps_what_was_measured_and_leaves_nothing(tmp_path):
    """SIGINT mid-run, also when the run was started where SIGINT is ignored (a background
    job of a script, as CI and nohup start things): exit 130, the measurements so far kept."""
    proc = subprocess.Popen([sys.executable, "-m", "experiments.commands.cli", "run", "latency",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    def measured() -> int:
        files = list(tmp_path.glob("latency/*/probes.csv"))
        return len(files[0].read_text().splitlines()) - 1 if files else 0

    try:  # interrupted at its first probes, long before its end, however loaded the machine
        assert run_and_expect(lambda: measured() > 0, timeout=120, interval=0.2)
    finally:  # a failed wait must not leave the run going behind the next test
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (directory,) = tmp_path.glob("latency/*")
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["end"] >= meta["start"]
    assert json.loads((directory / "results.json").read_text())["baseline"]
    assert measured() > 0
    # a process forked in the very moment of the sweep can outlive it by a moment (seen once
    # on a loaded machine): it must be gone within seconds, not stay
    assert run_and_expect(lambda: cleanup.leftovers() == [], timeout=5), cleanup.leftovers()
