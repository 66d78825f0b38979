"""A refresh replaces only what its step made, and the record says which commit made what:
a results file of neither the regeneration's nor its refresh's commit is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.publish import refresh, regenerate

OLD, NEW = "a" * 40, "b" * 40


def _result(root: Path, rel: str, commit: str, figure: float = 1.0) -> None:
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    (d / "meta.json").write_text(json.dumps({"git_commit": commit}))
    (d / "results.json").write_text(json.dumps({"figure": figure}))


@pytest.fixture
def published(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "docs-results"
    for rel in ("bench-access/isp", "latency/isp", "censorship/isp"):
        _result(root, rel, OLD)
    (root / regenerate.RECORD).write_text(json.dumps(
        {"commit": OLD, "date": "2026-12-01", "total_s": 60, "steps": {"access": 60}}))
    monkeypatch.setattr(regenerate, "PUBLISHED", root)
    monkeypatch.setattr(refresh, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(regenerate, "clean_commit", lambda: NEW)

    def step(step, staging, commit):  # what bench access writes, minus the network
        _result(staging, "bench-access/isp", commit, figure=2.0)
        (staging / "bench-access" / "isp" / "plot.svg").write_text("<svg/>")
        (staging / "bench-access" / "isp" / "plot.png").write_bytes(b"not in the README")
        return 42.0

    monkeypatch.setattr(regenerate, "run_step", step)
    return root


def test_a_refresh_replaces_its_step_and_records_the_commit(published):
    assert refresh.refresh(["access"], say=lambda _: None) == ["bench-access/isp"]
    figures = json.loads((published / "bench-access/isp/results.json").read_text())
    assert figures == {"figure": 2.0}
    assert not list(published.rglob("*.svg")), "figures are published as PNG only"
    assert not list(published.rglob("*.png")), "and only those the README shows"
    assert refresh.misnamed(published) == []
    record = json.loads((published / regenerate.RECORD).read_text())
    assert record["commit"] == OLD
    assert [(r["step"], r["commit"], r["dirs"]) for r in record["refreshed"]] == \
        [("access", NEW, ["bench-access/isp"])]


def test_a_result_of_another_commit_is_caught(published):
    refresh.refresh(["access"], say=lambda _: None)
    _result(published, "latency/isp", NEW)  # made later, but not by a recorded refresh
    assert refresh.misnamed(published) == [f"latency/isp ({NEW}, expected {OLD[:7]})"]


def test_a_refresh_at_the_regenerations_commit_or_of_no_step_is_refused(published,
                                                                        monkeypatch):
    with pytest.raises(regenerate.RegenerateError, match="no step 'nosuch'"):
        refresh.refresh(["nosuch"])
    monkeypatch.setattr(regenerate, "clean_commit", lambda: OLD)
    with pytest.raises(regenerate.RegenerateError, match="at this very commit"):
        refresh.refresh(["access"])
    (published / regenerate.RECORD).unlink()
    with pytest.raises(regenerate.RegenerateError, match="run make results first"):
        refresh.refresh(["access"])


def test_large_files_are_published_compressed_and_read_back_as_they_were(published,
                                                                         monkeypatch):
    """A refreshed step's large data files go out gzip-compressed (the samples stay small);
    results, rows and the graph read from them are those written, for the plots and the
    README alike; meta.json, which says whose a result is, stays plain."""
    from experiments import results
    from experiments.publish.published import Published
    from topologies import graph as graphs

    big = [{"src": f"h{k}", "value_ms": str(k / 7)} for k in range(4000)]
    figures = {"points": list(range(20000))}
    g = graphs.from_json({"directed": False, "multigraph": False, "graph": {},
                          "nodes": [{"id": f"r{k}"} for k in range(8000)], "links": []})

    def step(step, staging, commit):
        _result(staging, "bench-access/isp", commit)
        d = staging / "bench-access" / "isp"
        (d / "meta.json").write_text(json.dumps({"git_commit": commit, "experiment": "x"}))
        (d / "results.json").write_text(json.dumps(figures))
        (d / "probes.csv").write_text("src,value_ms\n" + "".join(
            f"{r['src']},{r['value_ms']}\n" for r in big))
        graphs.save(g, d / "topology.json")
        return 1.0

    monkeypatch.setattr(regenerate, "run_step", step)
    refresh.refresh(["access"], say=lambda _: None)
    d = published / "bench-access" / "isp"
    assert sorted(p.name for p in d.iterdir()) == [
        "meta.json", "probes.csv.gz", "results.json.gz", "topology.json.gz"]
    loaded = results.load(d)
    assert loaded.summary == figures and loaded.rows("probes") == big
    assert sorted(loaded.topology().nodes) == sorted(g.nodes)
    pub = Published(published)
    assert pub.summary("bench-access/isp") == figures
    assert pub.rows("bench-access/isp", "probes") == big
    assert refresh.misnamed(published) == []
