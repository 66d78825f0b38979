"""The IoT experiment: its arithmetic by hand (no root), and one small sweep on a real network
under every design, every device speaking from its own address and, under registered access,
admitted under its own identity."""

from __future__ import annotations

import csv
import ipaddress
import json

import pytest

from experiments.comparisons import iot, iot_report
from protocols import architectures
from protocols.registered.gateway_flows import answer_bucket


def test_ask_to_answer_percentiles_come_from_the_gateway_buckets():
    buckets = {answer_bucket(0.010): 98, answer_bucket(0.050): 2}
    assert iot.histogram_percentile(buckets, 0.5) == pytest.approx(10.0, rel=0.1)
    assert iot.histogram_percentile(buckets, 0.99) == pytest.approx(50.0, rel=0.1)
    assert iot.histogram_percentile({}, 0.5) is None


def test_the_readme_holds_each_burst_step_to_its_round_trip_plus_five_ms():
    from experiments.publish.blocks_scale import _answers_table

    step = {"devices": 16000, "ttl_ms": 1000, "answer_p50_ms": 9.7, "gateway_cpu_share": 0.5}
    rows = [{**step, "answer_p99_ms": p99, "authority_rtt_ms": rtt}
            for p99, rtt in ((14.0, 9.0), (14.1, 9.0), (14.0, None))]
    verdicts = [line.split(" | ")[5] for line in _answers_table(rows).splitlines()[2:]]
    assert verdicts == ["held", "**missed**", "n/a"]


def test_the_projections_cores_range_from_this_runs_cost_to_the_bare_limits():
    from experiments.publish.blocks_scale import _eras_table

    eras = {"2020": {"devices": 1e9, "label": "a count", "by_ttl": {"1000": {
        "decisions_per_s": 2e8, "authority_cores": 20000, "log_tb_per_day": 1.0}}}}
    (row,) = _eras_table(eras, (400_000, 4_000_000)).splitlines()[2:]
    assert row.split(" | ")[3] == "20 000 / 500 / 50"


def test_a_steady_window_outlasts_the_ttl_up_to_its_cap():
    s = {"steady_s": 10.0, "steady_max_s": 120.0}
    assert iot.steady_window(s, None) == 10.0
    assert iot.steady_window(s, 1000) == 10.0
    assert iot.steady_window(s, 60000) == 90.0
    assert iot.steady_window(s, 3600000) == 120.0


def _step(devices, ttl_ms, per_device, observed=1, per_cpu=5000.0, grants=None):
    return {"arch": "registered", "devices": devices, "ttl_ms": ttl_ms,
            "decisions_steady": per_device * devices * 10, "renewals_observed": observed,
            "decisions_per_device_s": per_device, "decisions_per_s": per_device * devices,
            "decisions_per_cpu_s": per_cpu, "log_bytes_per_device_day": 1000.0,
            "grants_mean": grants if grants is not None else devices}


def test_the_projection_scales_the_largest_measured_step_and_leaves_out_unseen_ttls():
    steps = [_step(100, 1000, 0.2, per_cpu=2000.0), _step(1000, 1000, 0.1),
             _step(1000, 3600000, 0.0, observed=0), {"arch": "permissionless", "devices": 1000}]
    p = iot.projection(steps)
    assert p["measured_devices"] == 1000 and p["decisions_per_cpu_s"] == 5000.0
    assert p["not_projected"] == [3600000]
    by_ttl = p["eras"]["2020"]["by_ttl"]
    counted = 11.7e9  # IoT Analytics, end of 2020: each series as its source gives it
    assert list(by_ttl) == ["1000"]
    assert by_ttl["1000"]["decisions_per_s"] == pytest.approx(counted * 0.1)
    assert by_ttl["1000"]["authority_cores"] == pytest.approx(counted * 0.1 / 5000)
    assert by_ttl["1000"]["log_tb_per_day"] == pytest.approx(counted * 1000 / 1e12)
    assert by_ttl["1000"]["gateway_grants"] == pytest.approx(counted)
    assert p["eras"]["2030-high"]["beyond_measured"] == pytest.approx(125e9 / 1000)
    assert "IHS Markit" in p["eras"]["2030-high"]["label"]
    assert "IoT Analytics" in p["eras"]["2020"]["label"]
    assert iot.projection([_step(100, 3600000, 0.0, observed=0)]) is None
    said = iot.support(p)
    assert "1,000 measured devices" in said and "11.7 billion devices is 11,700,000 times" in said
    assert "TTLs of 3600 s outlast the window" in said


@pytest.mark.published
def test_the_plots_name_every_file_they_write_and_tell_every_ttl_apart(tmp_path):
    """Drawn from the saved burst sample: the devices' figure, the load figure and the
    projection, no file left out of the list; each TTL its own colour and marker."""
    import shutil
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "docs/results/iot/burst"
    directory = tmp_path / sample.name
    shutil.copytree(sample, directory, ignore=shutil.ignore_patterns("*.png", "*.svg"))
    written = iot_report.plot(directory)
    assert {p.name for p in written} == {f"iot_{name}.{ext}" for name in (
        "scaling", "load", "projection") for ext in ("png", "svg")}
    assert set(written) == set(directory.glob("*.png")) | set(directory.glob("*.svg"))
    steps = json.loads((directory / "results.json").read_text())["steps"]
    lines = iot_report._lines(steps)
    admits = architectures.admits
    expected = {(r["arch"], r["ttl_ms"] if admits(r["arch"]) else None) for r in steps}
    assert set(lines) == expected, "a line per design, and per TTL where flows are admitted"
    assert len({(s["color"], s["marker"]) for s in lines.values()}) == len(lines)
    designs = {architectures.design(r["arch"]).colour for r in steps}
    assert not designs & {s["color"] for (_, ttl), s in lines.items() if ttl is not None}, \
        "a TTL's line in a design's colour reads as that design"


@pytest.mark.needs_root
def test_every_device_speaks_from_its_own_address_and_is_admitted_as_itself(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setitem(iot.PROFILES, "tiny", {
        "devices": [300], "ttl_ms": [1000], "period_s": 2.0, "jitter": 0.2,
        "chatty_share": 0.1, "chatty_period_s": 0.5, "steady_s": 3.0, "steady_max_s": 3.0})
    directory = iot.run(iot.IotConfig(profile="tiny"), tmp_path)
    summary = json.loads((directory / "results.json").read_text())
    rows = {r["arch"]: r for r in summary["steps"]}
    assert set(rows) == set(architectures.compared())
    for row in rows.values():
        assert row["heard"] == 300 and row["first_lost"] == 0, row
        assert row["wrong_source"] == 0
    registered = rows["registered"]
    # the first datagram waits for a question to the authority, which a permissionless one
    # does not ask
    assert registered["first_p50_ms"] > rows["permissionless"]["first_p50_ms"]
    assert registered["decisions_first"] >= 300
    # one journal record per decision of the steady window (the two counters are read a
    # moment apart: a batch may fall between)
    from protocols.registered.journal import RECORD_SIZE

    assert registered["log_bytes_steady"] == pytest.approx(
        RECORD_SIZE * registered["decisions_steady"], rel=0.02, abs=RECORD_SIZE * 3)
    # an answer cannot come back faster than the round trip to the authority
    from experiments.model.latency import gateway_authority_rtt_ms
    from topologies import graph as graphs

    rtt = gateway_authority_rtt_ms(graphs.load(directory / "topology.json"), summary["farm"])
    assert registered["answer_p50_ms"] >= 0.9 * rtt, (registered["answer_p50_ms"], rtt)
    assert 0 < registered["grants_max"] <= 300
    (admissions,) = directory.glob("records/registered-*/admissions.csv")
    block = ipaddress.IPv4Network("198.18.64.0/18")
    with open(admissions, newline="") as f:
        devices = {(r["src"], r["national_id"]) for r in csv.DictReader(f)
                   if ipaddress.IPv4Address(r["src"]) in block}
    assert len(devices) == 300  # 300 addresses, each under its own identity
    for src, national_id in devices:
        k = int(ipaddress.IPv4Address(src)) - int(block[0])
        assert national_id == f"DEV-{summary['farm']}-{k}"
    assert {p.name for p in iot_report.plot(directory)} >= {"iot_scaling.png", "iot_projection.png"}


@pytest.mark.needs_root
def test_a_burst_of_first_contacts_loses_no_first_datagram(tmp_path, monkeypatch):
    """16 000 devices with a 1 s TTL: every first contact asked about at once, the farm's
    gateway near a core busy. Answers are read before new packets are asked about: left
    waiting behind new questions, a third of them came too late, their questions were asked
    again, and a third of the first datagrams were lost."""
    monkeypatch.setitem(iot.PROFILES, "crowd", {
        "devices": [16000], "ttl_ms": [1000], "period_s": 10.0, "jitter": 0.2,
        "chatty_share": 0.1, "chatty_period_s": 1.0, "steady_s": 5.0, "steady_max_s": 5.0})
    directory = iot.run(iot.IotConfig(profile="crowd", arch="registered"), tmp_path)
    (row,) = json.loads((directory / "results.json").read_text())["steps"]
    assert (row["heard"], row["first_lost"]) == (16000, 0), row
    assert row["authority_rtt_ms"] > 0  # what the README holds its answer times to
