"""Experiments end to end on real networks: blast radius against the residual graph on two
zoo topologies, and an interrupted run that keeps its measurements and leaves nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from helpers import run_and_expect

from experiments import blast_radius
from topologies import cleanup
from topologies import graph as graphs

pytestmark = pytest.mark.needs_root


@pytest.mark.parametrize("spec", ["zoo:Getnet", "zoo:Arpanet19706"])
def test_permissionless_blast_radius_is_what_the_residual_graph_predicts(tmp_path, spec):
    config = blast_radius.BlastRadiusConfig(topo=spec, arch="permissionless",
                                            every_link=True)
    directory = blast_radius.run(config, tmp_path)
    summary = json.loads((directory / "results.json").read_text())
    g = graphs.load(directory / "topology.json")  # the graph the run recorded
    assert summary["records"], "no failures measured"
    for record in summary["records"]:
        predicted = blast_radius.predicted_lost(g, record["failure"])
        measured = {tuple(p) for p in record["pairs_lost_new"]}
        assert measured == predicted, (record["failure"], sorted(measured ^ predicted)[:6])
    kinds = {r["failure"]["kind"] for r in summary["records"]}
    assert kinds == {"router", "link"}
    print(f"\n{spec}: {len(summary['records'])} failures, every one as predicted")


def test_ctrl_c_keeps_what_was_measured_and_leaves_nothing(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "run", "latency",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def measured() -> int:
        files = list(tmp_path.glob("latency/*/probes.csv"))
        return len(files[0].read_text().splitlines()) - 1 if files else 0

    try:
        assert run_and_expect(lambda: measured() > 50, timeout=120, interval=0.5)
    finally:  # a failed wait must not leave the run going behind the next test
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (directory,) = tmp_path.glob("latency/*")
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["end"] >= meta["start"]
    assert json.loads((directory / "results.json").read_text())["baseline"]
    assert measured() > 50
    time.sleep(0.5)
    assert cleanup.leftovers() == []
