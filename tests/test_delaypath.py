"""The userspace delay program: configuration, errors in one sentence, calibration, stats."""

from __future__ import annotations

import os
import subprocess

import pytest

from topologies import calibration, cleanup, delaypath
from topologies.delaypath import DelayPath, DelayPathError, Queue
from topologies.runstate import MARKER, RunState


def test_lateness_summary_reads_the_log2_histogram():
    stats = {"release_lateness_log2_us": [50, 30, 15, 5], "early_releases": 0,
             "wake_margin_ns": 12_345, "namespaces": {
                 "r1": {"overruns": 2, "queues": {"0": {"packets": 60}, "1": {"packets": 40}}}}}
    out = delaypath.summarize(stats, advance_us=7.25)
    assert out["release_lateness_p50"] == "< 1 us"   # 50 of 100 in the first bucket
    assert out["release_lateness_p99"] == "< 8 us"   # the 99th falls in the fourth
    assert (out["packets"], out["overruns"], out["wake_margin_us"]) == (100, 2, 12.3)
    assert out["calibrated_cost_us_per_traversal"] == 7.2


def test_an_empty_history_has_no_percentiles():
    assert delaypath.summarize({}, 0.0)["release_lateness_p50"] is None


@pytest.fixture
def run_dir():
    run = RunState.create()
    os.environ[MARKER] = run.run_id
    yield run
    os.environ.pop(MARKER, None)
    cleanup.clean(run.run_id)


@pytest.mark.needs_root
def test_the_program_binds_a_queue():
    result = subprocess.run(["unshare", "--net", str(delaypath.program()), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.needs_root
def test_a_bad_configuration_is_one_sentence(run_dir):
    path = DelayPath(run_dir.subdir("delay"))
    path.start()
    with pytest.raises(DelayPathError, match="unknown namespace nowhere"):
        path.configure({}, [Queue("nowhere", 3, 1.0)])


@pytest.mark.needs_root
def test_a_queue_held_elsewhere_is_refused(run_dir):
    """Two delay processes may not serve one queue: the second says so and stops."""
    first, second = (DelayPath(run_dir.subdir(f"delay{k}")) for k in (1, 2))
    first.start()
    second.start()
    with calibration.scratch_pair() as (pid, _):
        first.configure({"a": pid}, [Queue("a", 4711, 1.0)])
        with pytest.raises(DelayPathError, match="cannot bind queue 4711 in a"):
            second.configure({"a": pid}, [Queue("a", 4711, 1.0)])
        first.stop()


def _calibrate(backend: str) -> calibration.Calibration:
    from topologies.shaping import netem_available

    if backend == "netem" and not netem_available():
        pytest.skip("this kernel has no netem (make vmtest runs this where it has)")
    return calibration.measure_here(backend)


@pytest.mark.needs_root
@pytest.mark.parametrize("backend", ["userspace", "netem"])
def test_calibration_measures_the_delay_it_asked_for(backend):
    """Function, on any CPU however slow: the delay is there, the cost is a number taken off
    every link, and nothing is left behind."""
    cal = _calibrate(backend)
    assert cal.delayed_rtt_ms >= cal.base_rtt_ms + 2 * cal.delay_ms * 0.95
    excess_us = (cal.delayed_rtt_ms - cal.base_rtt_ms - 2 * cal.delay_ms) / 2 * 1000
    assert cal.cost_us == pytest.approx(max(0.0, excess_us), abs=0.1)  # what is taken off
    assert cleanup.leftovers() == []


@pytest.mark.needs_root
@pytest.mark.timing
@pytest.mark.parametrize("backend", ["userspace", "netem"])
def test_calibration_costs_less_than_a_millisecond(backend):
    """On real hardware a traversal costs microseconds (userspace) or a little timer lateness
    (netem); an emulated CPU (make vmtest, TCG) takes over a millisecond, which vmcheck
    reports instead."""
    assert _calibrate(backend).cost_us < 1000
