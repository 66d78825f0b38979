"""The I/O floor does the compiled path's I/O and nothing else: every datagram the load
generator sends comes back as it went, and each costs one journal record of the admission
log's size; its rate is counted from the CPU time it used."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading

import pytest
from test_loadgen import free_port

from experiments.bench import loadgen
from experiments.bench.admission_load import IOFLOOR
from protocols.registered.journal import RECORD_SIZE
from topologies.programs import built


@pytest.fixture
def floor(tmp_path):
    port, journal = free_port(), tmp_path / "journal"
    server = subprocess.Popen([str(built(IOFLOOR)), str(port), str(journal)],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "ready\n"

    def stop() -> dict:
        server.terminate()
        return json.loads(server.communicate(timeout=10)[0])
    yield port, journal, stop
    server.kill()
    server.wait()


def test_every_datagram_comes_back_and_is_journaled(floor):
    port, journal, stop = floor
    offered = loadgen.offer(os.urandom(32), 1, port, 4000, 0.5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # one alone, of its own size
        s.settimeout(2)
        s.sendto(b"x" * 57, ("127.0.0.1", port))
        assert s.recv(2048) == b"x" * 57
    result = stop()
    assert offered["sent"] == 2000 and offered["answered"] == 2000, offered
    assert result["datagrams"] == 2001 and result["unsent"] == 0, result
    assert journal.stat().st_size == 2001 * RECORD_SIZE
    assert result["cpu_s"] > 0 and result["per_cpu_second"] > 0
    assert 0 <= result["system_share"] <= 1  # split by tick samples: 0 in a short run



def test_datagrams_of_several_sizes_come_back_as_they_went(floor):
    """Runs of one size only, and runs too large for one send (34 x 2 000 bytes is over
    UDP's 64 KiB) sent one by one: every datagram comes back whole."""
    port, _, stop = floor
    sent = [bytes([k % 256]) * size for k, size in
            enumerate([2000] * 34 + [57] * 34 + [102] * 34 + [57] * 10)]
    got = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # the answers come at once
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))

        def receive() -> None:
            try:
                while len(got) < len(sent):
                    got.append(s.recv(4096))
            except TimeoutError:
                pass
        reader = threading.Thread(target=receive)
        reader.start()
        for datagram in sent:
            s.sendto(datagram, ("127.0.0.1", port))
        reader.join()
    assert sorted(got) == sorted(sent)
    assert stop()["unsent"] == 0
