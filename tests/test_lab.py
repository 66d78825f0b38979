"""The lab from Python: the ten-minute notebook (``docs/lab.ipynb``) run headless on a real
network, and the lab's refusals."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from experiments.lab import Lab, LabError

NOTEBOOK = Path(__file__).parent.parent / "docs" / "lab.ipynb"
LATENCY = NOTEBOOK.parent / "results" / "latency" / "isp"  # a published result


def results(nb) -> list:
    """Each code cell's value, as Python where it is a literal, else its text."""
    values = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        out = [o for o in cell.outputs if o.output_type == "execute_result"]
        text = out[0].data.get("text/plain", "") if out else None
        try:
            values.append(ast.literal_eval(text) if text else None)
        except (ValueError, SyntaxError):
            values.append(cell.outputs)
    return values


@pytest.mark.needs_root
def test_the_ten_minute_notebook_runs_and_cuts_a_person_off():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.getcwd()}}).execute()
    (hosts, sites), (reached, _), (ping, label), log, h3_reached, (took_ms, after), again, \
        plot, calls, journal, published, _ = results(nb)
    assert "h9" in hosts and "news.abroad.example" in sites
    assert reached == 1.0 and ping["received"] == 3 and label is None
    assert any("text/html" in o.get("data", {}) for o in log)  # a DataFrame, drawn as one
    assert "h9" in h3_reached and "fweb1" in h3_reached  # the ping and the page abroad
    assert took_ms < 5000 and after == 0 and again == 3
    assert any("image/png" in o.get("data", {}) for o in plot)
    assert calls == ["ping", "probe", "act", "ping", "undo", "ping"]  # the lab's journal
    assert any("text/html" in o.get("data", {}) for o in journal)
    table = next(o["data"]["text/plain"] for o in published if "data" in o)
    assert "registered" in table and "permissionless" in table, table


def test_a_lab_names_what_it_refuses():
    with pytest.raises(LabError, match="the design must be one of: static, permissionless"):
        Lab("isp", "ip6")
    lab = Lab("isp", "registered")  # not started: nothing is built until it is
    with pytest.raises(LabError, match="'h99' is not a node of isp"):
        lab._node("h99")
    with pytest.raises(LabError, match="'c1' is none of: h1"):
        lab._node("c1", lab.hosts)
    with pytest.raises(LabError, match="count must be a whole number from 1 to 100"):
        lab.ping("h1", "h2", count=10**9)  # refused before anything is sent


def test_a_results_directory_reads_as_dataframes(tmp_path):
    import splinterlab

    tables = splinterlab.results(LATENCY)  # compressed files read as plain ones
    assert set(tables) == {"probes"} and {"arch", "cold", "value_ms"} <= set(tables["probes"])
    assert len(splinterlab.results(LATENCY, "probes")) == len(tables["probes"]) > 0
    with pytest.raises(splinterlab.ResultsError, match="has no table 'nope'; it has probes"):
        splinterlab.results(LATENCY, "nope")
    with pytest.raises(splinterlab.ResultsError, match="not a splinterlab results directory"):
        splinterlab.results(tmp_path)
