"""The C load generator against a real authority on loopback, both decision paths: every
request it sends is a valid FLOW_REQUEST of the gateway it speaks for (each is answered,
none rejected), and its rates and timings are plausible."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from experiments.bench import loadgen
from experiments.bench.admission_load import GATEWAY, _registry
from protocols.registered.operator import Operator


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("decisions", ["python", "compiled"])
def test_every_request_it_sends_is_answered(tmp_path, decisions):
    secret, port = os.urandom(32), free_port()
    config = tmp_path / "authority.json"
    config.write_text(json.dumps({"db": str(_registry(tmp_path, secret)), "port": port,
                                  "address": "127.0.0.1", "admin": str(tmp_path / "admin"),
                                  "decisions": decisions}))
    authority = subprocess.Popen([sys.executable, "-m", "protocols.registered.authority",
                                  str(config)], stdout=subprocess.PIPE, text=True)
    try:
        assert "authority ready" in authority.stdout.readline()
        result = loadgen.offer(secret, GATEWAY, port, 4000, 0.5)
        counters = Operator(tmp_path / "admin").status()["counters"]
    finally:
        authority.kill()
        authority.wait()
    assert result["sent"] == 2000 and result["answered"] == result["sent"], result
    assert 3000 < result["offered_per_s"] < 5000 and 0 < result["p50_ms"] <= result["p99_ms"]
    assert counters.get("granted") == 2000, counters  # valid, bound, each decided once
