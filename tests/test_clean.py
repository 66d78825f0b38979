"""Nothing survives a run: not kill -9 during bring-up, not SIGTERM, not Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import run_and_expect

from topologies import cleanup, runstate

pytestmark = pytest.mark.needs_root
CLI = [sys.executable, "-m", "experiments.commands.cli"]


def manifests() -> list[dict]:
    return [r.read() for r in runstate.runs()]


def start(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def interfaces() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


def test_kill_9_during_bring_up_then_clean_leaves_nothing():
    links_before = interfaces()
    proc = start("up", "--topo", "zoo:Abilene,hosts=2", "--test", "pingall")
    seen = run_and_expect(lambda: [m for m in manifests() if m.get("pid") == proc.pid
                                   and m.get("phase") == "bring-up"
                                   and len(cleanup.processes_of()) >= 10], timeout=30,
                          interval=0.02)
    assert seen, "the run never reached bring-up"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = cleanup.leftovers()
    assert left, "kill -9 left nothing: the test did not catch the run mid-bring-up"
    result = subprocess.run([*CLI, "clean"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "killed" in result.stdout
    assert cleanup.leftovers() == []
    assert subprocess.run(["pgrep", "-f", "splinterlab-delayd|mininet:"]).returncode != 0
    assert interfaces() <= links_before


def test_sigterm_at_the_cli_tears_down():
    proc = start("up", "--topo", "line", stdin=subprocess.PIPE)
    assert run_and_expect(lambda: any(m.get("pid") == proc.pid and m.get("phase") == "up"
                                      for m in manifests()), timeout=30)
    time.sleep(0.5)  # let the Mininet prompt come up
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "removed" in err and "Traceback" not in err
    assert cleanup.leftovers() == []


def test_ctrl_c_during_bring_up_tears_down():
    proc = start("up", "--topo", "isp", "--test", "pingall")
    assert run_and_expect(lambda: any(m.get("pid") == proc.pid for m in manifests()),
                          timeout=30, interval=0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err  # 0 if the test finished before the signal
    assert "Traceback" not in err
    assert cleanup.leftovers() == []


@pytest.mark.timeout(60)
def test_a_run_swept_by_clean_from_elsewhere_still_tears_down():
    """`splinterlab clean` in another terminal kills a run's node shells; the run must still
    end (Mininet's own teardown would wait for a dead shell's prompt forever)."""
    import topologies
    from topologies.network import EmulatedNetwork

    net = EmulatedNetwork(topologies.build("line,n=1"), static_routes=True)
    net.start()
    run_id = net.run.run_id
    cleanup.clean(run_id)
    started = time.monotonic()
    net.stop()
    assert time.monotonic() - started < 10
    assert cleanup.leftovers(run_id) == []
