"""The project's compiled helpers (``scripts/setup.sh`` builds them into the venv): where each
one is, or one sentence on how to build it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SOURCES = {"splinterlab-delayd": "topologies/delayd.c",
           "splinterlab-barelimit": "protocols/registered/barelimit.c"}


class NotBuilt(RuntimeError):
    """A helper program that is not built, with the command that builds it."""


def built(name: str) -> Path:
    """The program ``name``: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.prefix) / "bin" / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise NotBuilt(f"{name} is not built; run 'sudo make setup' (it compiles {SOURCES[name]})")
