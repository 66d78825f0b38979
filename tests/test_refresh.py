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
