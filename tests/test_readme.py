"""The README's figures are what the committed results render: a changed figure, a missing
block or a template asking for a field nobody gives is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from experiments.publish import readme
from experiments.publish.blocks import BLOCKS
from experiments.publish.refresh import misnamed
from experiments.publish.regenerate import PUBLISHED, RECORD

TEXT = readme.README.read_text()


@pytest.mark.published
def test_every_rendered_block_is_what_the_committed_results_render():
    assert readme.names(TEXT), "the README has no rendered blocks"
    assert readme.differences(TEXT, PUBLISHED) == [], \
        "run 'splinterlab readme' (or make results) and commit the README"


def test_every_block_has_a_renderer_and_a_template_and_is_used():
    assert sorted(readme.names(TEXT)) == sorted(BLOCKS)
    assert sorted(p.stem for p in readme.TEMPLATES.glob("*.md")) == sorted(BLOCKS)


@pytest.mark.published
def test_every_published_result_names_the_commit_the_readme_names():
    record = json.loads((PUBLISHED / RECORD).read_text())
    assert misnamed(PUBLISHED) == []
    for commit in [record["commit"], *(r["commit"] for r in record.get("refreshed", []))]:
        assert f"commit {commit[:7]}" in TEXT


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "results"
    shutil.copytree(PUBLISHED, target, ignore=shutil.ignore_patterns("*.png", "streams.csv.gz",
                                                                     "records"))
    return target


def test_a_changed_figure_is_caught(copy):
    """One number in one results file, changed in a copy: the block that shows it differs."""
    path = copy / "bench-access" / "isp" / "results.json"
    figures = json.loads(path.read_text())
    figures["rows"]["registered"]["first_connect_ms"] += 1.0
    path.write_text(json.dumps(figures))
    assert readme.differences(TEXT, copy) == ["access"]


def test_a_block_whose_results_are_gone_is_one_sentence(copy):
    shutil.rmtree(copy / "bench-admission")
    with pytest.raises(ValueError, match="is missing .run make results."):
        readme.render(TEXT, copy)


def test_a_field_nobody_gives_is_named(tmp_path, monkeypatch):
    (tmp_path / "regenerate.md").write_text("made at {nosuch}\n")
    monkeypatch.setattr(readme, "TEMPLATES", tmp_path)
    with pytest.raises(readme.RenderError, match="asks for 'nosuch'"):
        readme.render_block("regenerate", PUBLISHED)
