"""bench scale: how a graph's run is judged, the ceiling zoo graphs are held to, and one real
bring-up measured as the benchmark measures it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import topologies
from experiments.bench import scale
from topologies import zoo
from topologies.graph import TopologyError


def row(**changes) -> dict:
    base = {"reach": {"pairs": 132, "connected": 132}, "rest": {"machine_busy": 0.2,
            "late_p99": "< 256 us"}, "mem_available_after_mb": 20000, "mem_total_mb": 24000}
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, words", [
    ({}, ""),
    ({"error": "bring-up: OSPF did not converge in 60 s"}, "did not converge"),
    ({"reach": {"pairs": 132, "connected": 120}}, "12 of 132 sampled pairs failed"),
    ({"rest": {"machine_busy": 0.9, "late_p99": "< 256 us"}}, "CPU: 90% of the machine"),
    # busy before the run started (another job): not the emulator giving out
    ({"rest": {"machine_busy": 1.0, "busy_before": 0.95, "late_p99": "< 256 us"}}, ""),
    ({"rest": {"machine_busy": 1.0, "busy_before": 0.1, "late_p99": "< 256 us"}},
     "CPU: 90% of the machine busy at rest because of the run"),
    ({"rest": {"machine_busy": 0.3, "late_p99": "< 4096 us"}}, "delay path p99 lateness"),
    ({"mem_available_after_mb": 1000}, "memory: 1000 MB left"),
    ({"quiet_s": None}, "routing: OSPF still re-originating LSAs"),
])
def test_verdict_names_what_gave_out(changes, words):
    verdict = scale.verdict(row(**changes))
    assert (verdict == "") if not words else (words in verdict)


def test_lateness_at_rest_is_the_median_of_its_windows():
    """One window of a burst does not sink a graph (permissionless Surfnet gave out on one
    10 s window of "< 2048 us" at 7 % busy while every larger graph ran); most windows do."""
    assert scale.median_late(["< 256 us", "< 4096 us", "< 128 us", "< 256 us", "< 512 us"]) \
        == "< 256 us"
    assert scale.median_late(["< 4096 us", "< 2048 us", "< 128 us", "< 2048 us", None]) \
        == "< 2048 us"
    assert scale.median_late([None, None]) is None


def test_the_ceiling_is_below_the_first_graph_that_gives_out_and_larger_runs_are_named():
    rows = [{"graph": g, "pops": p, "routers": p + 2, "runs": ok, "gave_out": why}
            for g, p, ok, why in [("A", 10, True, ""), ("B", 20, True, ""),
                                  ("C", 30, False, "OSPF did not converge"),
                                  ("D", 40, True, ""), ("E", 50, False, "memory")]]
    c = scale.ceiling_of(rows)
    assert (c["largest"], c["pops"], c["routers"]) == ("B", 20, 22)
    assert c["stopped_by"] == "C: OSPF did not converge" and c["beyond"] == ["D"]
    assert scale.ceiling_of(rows[:2])["stopped_by"] == "the ladder's end"
    assert scale.ceiling_of(rows[2:3])["largest"] is None


def test_sample_hosts_spread_over_the_graph():
    g = topologies.build("zoo:Aarnet")
    hosts = scale.sample_hosts(g, 6)
    assert len(hosts) == 6 == len(set(hosts))
    attached = {next(iter(g.neighbors(h))) for h in hosts}
    assert len(attached) == 6  # one host per PoP here: six different routers


@pytest.mark.published
def test_the_zoo_ceiling_is_what_bench_scale_measured_here():
    """Not a guess: the largest graph up to which every rung ran under both designs in the
    published ``splinterlab bench scale`` (docs/results/bench-scale/ladder), made at a clean
    commit."""
    published = Path(__file__).parent.parent / "docs" / "results" / "bench-scale" / "ladder"
    measured = json.loads((published / "results.json").read_text())
    assert "+" not in json.loads((published / "meta.json").read_text())["git_commit"]
    assert zoo.CEILING["pops"] == min(c["pops"] for c in measured["ceiling"].values())
    assert "bench scale" in zoo.CEILING["basis"]


def test_zoo_ceiling_refuses_with_a_sentence_and_can_be_lifted(monkeypatch):
    monkeypatch.setattr(zoo, "CEILING", {"pops": 100, "basis": "a smaller machine"})
    with pytest.raises(TopologyError) as err:
        topologies.build("zoo:TataNld")
    assert "pick a smaller graph or add ,ceiling=false" in str(err.value)
    assert "100" in str(err.value) and "a smaller machine" in str(err.value)
    g = topologies.build("zoo:TataNld,ceiling=false")
    assert sum(1 for _, r in g.nodes(data="role") if r == "host") == 143


@pytest.mark.needs_root
def test_one_rung_measured():
    """Abilene, permissionless: it runs, and the figures come from the live run."""
    row = scale.measure("Abilene", "permissionless")
    assert row["runs"], row.get("gave_out")
    assert row["reach"]["connected"] == row["reach"]["pairs"] == 11 * 10
    assert row["memory"]["ospfd"]["count"] == row["routers"]
    # a zebra is megabytes, not nothing (a failed read) nor the whole run (counted twice)
    zebra = row["memory"]["zebra"]["pss_mb"] / row["memory"]["zebra"]["count"]
    assert 1 < zebra < 100, zebra
    assert row["pss_mb"] == round(sum(v["pss_mb"] for v in row["memory"].values()))
    assert row["processes"] >= 2 * row["routers"]
    # the run's processes are part of the machine: two independent readings of the same rest
    rest = row["rest"]
    assert 0 < rest["run_cpu_cores"] <= rest["machine_busy"] * os.cpu_count() + 0.05, rest
