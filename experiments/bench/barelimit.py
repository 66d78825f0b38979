"""The bare limit of an admission decision on this machine (``protocols/registered/
barelimit.c``): HMAC verify, lookup, HMAC sign in C, nothing else. ``bench admission`` prints
the authority's decisions per CPU second beside it, and their ratio: how far the authority
is from what the architecture allows, not from what our Python allows."""

from __future__ import annotations

import json
import subprocess

from topologies.programs import built

PROGRAM = "splinterlab-barelimit"


def measure(seconds: float) -> dict:
    """Decisions per CPU second of one core, over ``seconds`` of its CPU time."""
    done = subprocess.run([str(built(PROGRAM)), str(seconds)], capture_output=True, text=True,
                          timeout=10 * seconds + 10)
    if done.returncode != 0:
        raise RuntimeError(f"{PROGRAM}: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def sample(secret: bytes) -> tuple[bytes, bytes]:
    """One request the program makes and the answer it signs, with ``secret`` as the key."""
    done = subprocess.run([str(built(PROGRAM)), "--sample", secret.hex()], capture_output=True,
                          text=True, check=True)
    request, answer = done.stdout.split()
    return bytes.fromhex(request), bytes.fromhex(answer)
