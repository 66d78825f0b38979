"""The daemons a network runs many of (a gateway or a box per router, the authority, a host's
client, the spawner's asker) import only what they use: not the topology package and its graph
library (networkx made a gateway 34 MB instead of 19 at start), not asyncio for a box. Memory
per router is what bounds how large a network two cores emulate (``bench scale``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("networkx", "topologies", "matplotlib", "scapy", "experiments")


@pytest.mark.parametrize(("daemon", "also_not"), [
    ("protocols.registered.gateway", ()), ("protocols.registered.authority", ()),
    ("protocols.registered.hostclient", ()), ("protocols.sovereign.box", ("asyncio",)),
    ("protocols.spawner", ())])  # its asker runs once for each router's daemon
def test_a_daemon_imports_nothing_it_does_not_use(daemon, also_not):
    loaded = subprocess.run([sys.executable, "-c", f"import sys, {daemon}; print(' '.join("
                             "sys.modules))"], capture_output=True, text=True,
                            check=True).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not roots & {*HEAVY, *also_not}, sorted(roots & {*HEAVY, *also_not})
