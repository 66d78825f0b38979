"""Hosts run as users of their own: the project's code must be within their reach even when
the clone sits in a private directory (a home of mode 0700), and nothing is left after."""

from __future__ import annotations

import subprocess
import sys

import pytest

import topologies
from topologies.graph import hosts
from topologies.network import EmulatedNetwork
from topologies.reach import CODE, HOSTS_GID

pytestmark = pytest.mark.needs_root


def test_a_host_runs_the_code_of_a_private_clone_and_no_trace_is_left():
    mode = CODE.stat().st_mode
    CODE.chmod(mode & ~0o001)  # others may no longer enter the clone
    try:
        with EmulatedNetwork(topologies.build("line,n=1"), static_routes=True) as net:
            host = hosts(net.graph)[0]
            out = net.exec(host, sys.executable, "-c",
                           "import protocols.registered.hostclient; print('ok')", check=False)
            assert out.stdout.strip() == "ok", out.stderr
    finally:
        CODE.chmod(mode)
    acl = subprocess.run(["getfacl", "-cp", str(CODE)], capture_output=True, text=True).stdout
    assert f"group:{HOSTS_GID}" not in acl and "mask::" not in acl, acl
