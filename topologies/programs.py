"""The project's compiled helpers (``scripts/setup.sh`` builds them into the venv: programs in
its bin/, libraries in its lib/): where each one is, or one sentence on how to build it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SOURCES = {"splinterlab-delayd": "topologies/delayd.c",
           "splinterlab-barelimit": "protocols/registered/barelimit.c",
           "splinterlab-loadgen": "protocols/registered/loadgen.c",
           "splinterlab-iofloor": "protocols/registered/iofloor.c",
           "libsplinterlab-admit.so": "protocols/registered/admitcore.c and flowcore.c"}


class NotBuilt(RuntimeError):
    """A helper program that is not built, with the command that builds it."""


def built(name: str) -> Path:
    """The program or library ``name``: in this interpreter's venv, else (a program) on
    PATH."""
    beside = Path(sys.prefix) / ("lib" if name.endswith(".so") else "bin") / name
    if beside.exists():
        return beside
    found = None if name.endswith(".so") else shutil.which(name)
    if found:
        return Path(found)
    raise NotBuilt(f"{name} is not built; run 'sudo make setup' (it compiles {SOURCES[name]})")
