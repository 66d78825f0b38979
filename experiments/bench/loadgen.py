"""A gateway asking for flows as fast as asked (``protocols/registered/loadgen.c``): the
load of bench admission, at rates and bursts a Python process cannot offer."""

from __future__ import annotations

import json
import subprocess

from topologies.programs import built

PROGRAM = "splinterlab-loadgen"


def offer(secret: bytes, gateway: int, port: int, rate: float, seconds: float) -> dict:
    """FLOW_REQUESTs to the authority on loopback ``port``: ``rate`` a second (0: as fast as
    the socket takes them) for ``seconds``; what was sent, answered, and how fast."""
    done = subprocess.run([str(built(PROGRAM)), secret.hex(), str(gateway), str(port),
                           str(rate), str(seconds)], capture_output=True, text=True,
                          timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"{PROGRAM}: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)
