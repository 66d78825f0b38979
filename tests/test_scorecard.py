"""The scorecard reads each indicator from the run that measured it: synthetic results
directories of latency, blast radius and censorship on isp, with known answers."""

from __future__ import annotations

import csv
import json

import pytest

import topologies
from experiments.comparisons import scorecard
from experiments.comparisons.latency import HEADER
from topologies.graph import save

DESIGNS = ["permissionless", "registered"]


def _dir(root, experiment, summary, **meta):
    d = root / experiment / "isp"
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"experiment": experiment, "git_commit": "abc",
                                             **meta}))
    (d / "results.json").write_text(json.dumps({"archs": DESIGNS, **summary}))
    return d


def _latency(root):
    permission = {
        "permissionless": {"newcomers": [{"reached": True}, {"reached": True}],
                           "new_protocol": [{"crossed": True}, {"crossed": True}]},
        "registered": {"newcomers": [{"reached": False}, {"reached": False}],
                       "new_protocol": [{"crossed": False}, {"crossed": True}]}}
    d = _dir(root, "latency", {"permission": permission}, subjects={"server": "web1"})
    rows = []
    for arch, connects, rtts in (("permissionless", [5.0, 5.2, 5.1], [4.9, 5.0]),
                                 ("registered", [13.0, 12.0, 14.0], [5.0, 5.0])):
        rows += [{"arch": arch, "phase": "placement", "param": "near", "kind": "connect",
                  "src": "h1", "dst": "www", "cold": 1, "value_ms": v} for v in connects]
        rows += [{"arch": arch, "phase": "baseline", "kind": "ping", "src": "h1", "dst": "web1",
                  "cold": 0, "value_ms": v} for v in rtts]
        rows.append({"arch": arch, "phase": "baseline", "kind": "ping", "src": "h1",
                     "dst": "web1", "cold": 1, "value_ms": 99.0})  # a cold echo: not the RTT
    with open(d / "probes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, HEADER, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return d


def _blast(root):
    def record(arch, kind, target, lost):
        return {"arch": arch, "failure": {"kind": kind, "target": target}, "pairs_total": 100,
                "pairs_lost_new": [["x", str(i)] for i in range(lost)]}
    d = _dir(root, "blast-radius", {"records": [
        record("permissionless", "router", "a1", 30),  # an access router: its own line only
        record("permissionless", "link", "c1-c2", 0),
        record("permissionless", "router", "b1", 25),
        record("registered", "router", "b1", 25),
        record("registered", "partition", "north", 95),  # many links, not one element
        record("registered", "authority", "authority", 90)]})
    save(topologies.build("isp"), d / "topology.json")
    return d


def _censorship(root, attribution):
    evasion = {"tunnel_abroad": 1.0, "relay_at_home": 0.0, "reregistration": None}
    return _dir(root, "censorship", {"table": [
        {"arch": arch, "action": action, "attribution": share, "precision": 1.0,
         "collateral": 0.25, "evasion": evasion,
         "time_to_effect_ms": 10.0 * (k + 1) + 5 * (arch == "registered")}
        for arch, shares in attribution.items() for k, (action, share) in enumerate(zip(
            ("person", "destination"), shares, strict=True))], "throttle": [
        {"arch": "permissionless", "before_kbit": 90000.0, "during_kbit": 149.4},
        {"arch": "registered"}]})


@pytest.fixture
def runs(tmp_path):
    return {"latency": _latency(tmp_path), "blast-radius": _blast(tmp_path),
            "censorship": _censorship(tmp_path, {"permissionless": [0.2, 0.4],
                                                 "registered": [1.0, None]})}


def test_each_property_gets_its_run_s_number_for_every_design(runs):
    card = scorecard.score(runs)
    assert card["designs"] == DESIGNS
    values = {r["property"]: r["values"] for r in card["rows"]}
    assert [r["property"] for r in card["rows"]] == [p.key for p in scorecard.PROPERTIES]
    assert values["accessible"] == {"permissionless": 1.0, "registered": 0.0}
    assert values["open"] == {"permissionless": 1.0, "registered": 0.5}
    assert values["decentralised"] == {"permissionless": 0.75, "registered": pytest.approx(0.1)}
    assert values["identifiers"] == {"permissionless": pytest.approx(0.7), "registered": 0.0}
    assert values["general"] == {"permissionless": pytest.approx(5.1 - 4.95),
                                 "registered": pytest.approx(13.0 - 5.0)}
    details = {r["property"]: r["details"] for r in card["rows"]}
    assert details["decentralised"] == {"permissionless": "worst: router b1",
                                        "registered": "worst: authority authority"}
    assert card["sources"]["latency"]["commit"] == "abc"


def test_what_a_run_did_not_measure_is_said_so(runs, tmp_path):
    other = tmp_path / "other"
    runs["censorship"] = _censorship(other, {"permissionless": [None, None],
                                             "registered": [None, None]})
    (runs["latency"] / "results.json").write_text(json.dumps({"archs": DESIGNS}))
    rows = {r["property"]: r for r in scorecard.score(runs)["rows"]}
    for key in ("accessible", "open", "identifiers"):
        assert set(rows[key]["values"].values()) == {None}
        assert set(rows[key]["details"].values()) == {"not measured"}


def test_the_scorecard_is_a_results_directory_with_its_figure(runs, tmp_path):
    directory = scorecard.write(runs, "isp", "isp", tmp_path / "out")
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["experiment"] == "scorecard" and meta["status"] == "complete"
    assert len(json.loads((directory / "results.json").read_text())["rows"]) == 5
    assert (directory / "scorecard.png").stat().st_size > 10_000
    table = (directory / "summary.md").read_text()
    assert "| Accessible infrastructure with a common protocol |" in table
    assert "| 100 % (2 of 2) | 0 % (0 of 2) |" in table


def test_the_readme_s_questions_table_reads_each_design_s_runs(runs, tmp_path):
    from experiments.publish.blocks_questions import questions
    from experiments.publish.published import Published

    scorecard.write(runs, "isp", "isp", tmp_path)  # beside the runs: scorecard/isp
    lines = questions(Published(tmp_path))["table"].splitlines()
    assert lines[0] == "| question | permissionless IP | registered access |"
    row = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines[2:]}
    assert row["pairs that cannot start a connection while the central element is down"] == [
        "no central element", "90 % (the authority) |"]
    assert row["cut off a person: targeted flows stopped / other flows stopped"] == [
        "100 % / 25 %", "100 % / 25 % |"]
    assert row["cut off a region: targeted flows stopped / other flows stopped"] == [
        "not measured", "not measured |"]
    assert row["evasions that still work when a destination is cut off"] == [
        "tunnel abroad", "tunnel abroad |"]
    assert row["a site slowed to 150 kbit/s: the user's goodput"] == [
        "149 kbit/s (of 90 Mbit/s)", "no rate instrument |"]
    assert row["time to effect, median over the actions"] == ["15 ms", "20 ms |"]

