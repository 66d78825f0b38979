"""The cluster's servers: a test bed of namespace servers behaves like separate machines, and
``cluster check`` names what a server lacks in one sentence each."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import run_and_expect

from topologies import cleanup, testbed
from topologies.machines import Machine
from topologies.runstate import MARKER

pytestmark = pytest.mark.needs_root
CLI = [sys.executable, "-m", "experiments.commands.cli"]


@pytest.fixture(scope="module")
def bed():
    with testbed.bed(2) as servers:
        yield servers


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
    assert "splinterlab-bed-probe" not in files, files
    assert "splinterlab" not in on("srv1", "ls -A /run").split()
    assert int(on("srv1", "ps -e -o pid= | wc -l")) < 10, "it sees this machine's processes"
    assert testbed.servers()[0].address in on("srv1", "ip -br addr show eth0")


def test_every_server_ready(bed):
    result = check("localhost,srv1,srv2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "localhost", "srv1", "srv2"]


def test_what_a_server_lacks_is_one_sentence_each(bed):
    """srv2 is given other code, another FRR release and no sshfs, each only in its own mount
    namespace; srv3 does not exist."""
    placement = f"{testbed.__file__.rsplit('/', 1)[0]}/placement.py"
    on("srv2", f"cp {placement} /run/other.py && echo '#' >> /run/other.py && "
       f"mount --bind /run/other.py {placement} && "
       "mount --bind /dev/null \"$(command -v sshfs)\" && "
       "printf '#!/bin/sh\\necho zebra version 0.0\\n' > /run/zebra && chmod +x /run/zebra && "
       "mount --bind /run/zebra /usr/lib/frr/zebra")
    result = check("srv1,srv2,srv3")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("srv1: ready")
    assert any(line.startswith("srv2: sshfs: missing") for line in lines), lines
    assert any(line.startswith("srv2: other code than here") for line in lines), lines
    assert any(line.startswith("srv2: FRR 0.0, frr uid") and "install the same FRR" in line
               for line in lines), lines
    assert any(line.startswith("srv3: ssh as root without a password prompt fails")
               for line in lines), lines
    assert "Traceback" not in result.stdout + result.stderr
    assert subprocess.run(["sh", "-c", "command -v sshfs"], capture_output=True).returncode == 0


def test_a_servers_own_clean_kills_a_runs_process_there_and_spares_the_server(bed):
    """A run's command on a server runs in that server's namespaces: the server's own clean
    kills it and leaves the server (its sshd) alone; this machine's clean does not reach into
    another server's processes (a real one could not)."""
    machine = Machine("srv1")
    sleeper = subprocess.Popen(machine.argv(["sleep", "1000"], env={MARKER: "bedtest"}))
    try:
        assert run_and_expect(lambda: "sleep" in on("srv1", "ps -e -o comm="), timeout=10)
        cleanup.clean("bedtest")
        assert "sleep" in on("srv1", "ps -e -o comm="), "this machine's clean reached srv1"
        on("srv1", f"{CLI[0].rsplit('/', 1)[0]}/splinterlab clean --run bedtest")
        assert "sleep" not in on("srv1", "ps -e -o comm=")
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
