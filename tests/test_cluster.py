"""The cluster's servers: a test bed of namespace servers behaves like separate machines, and
``cluster check`` names what a server lacks in one sentence each."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import run_and_expect

from topologies import cleanup, testbed
from topologies.machines import SSH_CONFIG, Machine
from topologies.runstate import MARKER

pytestmark = pytest.mark.needs_root
CLI = [sys.executable, "-m", "experiments.commands.cli"]


@pytest.fixture(scope="module")
def bed():
    testbed.up(2)
    os.environ[SSH_CONFIG] = str(testbed.STATE / "ssh_config")
    try:
        yield testbed.servers()
    finally:
        os.environ.pop(SSH_CONFIG, None)
        testbed.down()


def check(names: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "cluster", "check", names], capture_output=True, text=True,
                          timeout=300)


def on(server: str, command: str) -> str:
    machine = Machine(server)
    try:
        return machine.run(["sh", "-c", command]).stdout
    finally:
        machine.close()


def test_a_server_has_its_own_run_tmp_home_and_processes(bed):
    open("/tmp/splinterlab-bed-probe", "w").close()
    try:
        files = on("srv1", "ls -A /tmp /root /run").split()
    finally:
        os.unlink("/tmp/splinterlab-bed-probe")
    assert "splinterlab-bed-probe" not in files and "splinterlab" not in files, files
    assert int(on("srv1", "ps -e -o pid= | wc -l")) < 10, "it sees this machine's processes"
    assert testbed.servers()[0].address in on("srv1", "ip -br addr show eth0")


def test_every_server_ready(bed):
    result = check("localhost,srv1,srv2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "localhost", "srv1", "srv2"]


def test_what_a_server_lacks_is_one_sentence_each(bed):
    """srv2 is given other code and no sshfs, each only in its own mount namespace; srv3 does
    not exist."""
    on("srv2", "cp /work/main/topologies/placement.py /run/other.py && echo '#' >> "
       f"/run/other.py && mount --bind /run/other.py {testbed.__file__.rsplit('/', 1)[0]}"
       "/placement.py && mount --bind /dev/null \"$(command -v sshfs)\"")
    result = check("srv1,srv2,srv3")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("srv1: ready")
    assert any(line.startswith("srv2: sshfs: missing") for line in lines), lines
    assert any(line.startswith("srv2: other code than here") for line in lines), lines
    assert any(line.startswith("srv3: ssh as root without a password prompt fails")
               for line in lines), lines
    assert "Traceback" not in result.stdout + result.stderr
    assert subprocess.run(["sh", "-c", "command -v sshfs"], capture_output=True).returncode == 0


def test_clean_spares_the_servers_but_not_a_runs_process_on_them(bed):
    """A run's command on a server runs in that server's own namespace: clean kills it, and
    leaves the server (its sshd) alone."""
    machine = Machine("srv1")
    sleeper = subprocess.Popen(machine.argv(["sleep", "1000"], env={MARKER: "bedtest"}))
    try:
        assert run_and_expect(lambda: cleanup.processes_of("bedtest"), timeout=10)
        cleanup.clean("bedtest")
        assert not cleanup.processes_of("bedtest")
        assert "alive" in on("srv1", "echo alive")
    finally:
        sleeper.kill()
        machine.close()


def test_down_leaves_nothing():
    testbed.up(1)
    testbed.down()
    assert "slsrv" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout
    assert subprocess.run(["ip", "link", "show", testbed.BRIDGE],
                          capture_output=True).returncode != 0
    assert subprocess.run(["pgrep", "-f", "splinterlab/testbed"]).returncode != 0
