"""The spawner's own promises: only root may have it fork a daemon, and an asker that finds no
spawner says so in one sentence. (That each gateway lands in its router and shares the
spawner's pages is in test_registered.py, on a running network.)"""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from protocols.spawner import ask
from topologies.polling import wait_until

STRANGER = 20000  # a host's user


def _as(uid: int, fn) -> tuple[int, str]:
    """``fn()`` in a child running as ``uid``: its exit status and what it wrote to stderr."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 2)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        sys.stderr = os.fdopen(2, "w")  # pytest's capture is not the pipe
        status = fn()
        sys.stderr.flush()
        os._exit(status)
    os.close(w)
    with os.fdopen(r) as said:
        text = said.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text


def _request(sock: Path, data: bytes) -> dict:
    """``data`` as a request from root, with this process's namespaces: the answer."""
    fds = [os.open(f"/proc/self/ns/{ns}", os.O_RDONLY) for ns in ("net", "mnt")]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            return json.loads(s.recv(4096))
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.needs_root
def test_only_root_may_ask_and_no_spawner_is_one_sentence():
    where = Path(tempfile.mkdtemp(prefix="spawner-"))
    os.chmod(where, 0o755)
    sock, pidfile = where / "spawner.sock", where / "box.pid"
    asking = (str(sock), "box", str(where / "box.json"), str(where / "box.log"), str(pidfile))
    server = None
    try:
        status, said = _as(0, lambda: ask(*asking))
        assert status == 1 and said.count("\n") == 1 and "did not answer" in said, said
        server = subprocess.Popen([sys.executable, "-m", "protocols.spawner", "serve",
                                   str(sock), "protocols.sovereign.box"],
                                  stdout=subprocess.DEVNULL)
        assert wait_until(sock.exists, 20)
        os.chmod(sock, 0o666)  # past the file's mode: the spawner asks who is asking
        status, said = _as(STRANGER, lambda: ask(*asking))
        assert status == 1 and "only root may start a daemon" in said, said
        assert not pidfile.exists()
        for wrong in (b"[1, 2]", b"{}", b"not json"):  # answered, and the spawner goes on
            assert "error" in _request(sock, wrong), wrong
        assert server.poll() is None
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(where)
