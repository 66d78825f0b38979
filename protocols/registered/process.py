"""What a daemon of the registered layer does first: it holds keys (the authority's, a
gateway's) or reads what they sign, so nobody may read its memory through /proc or ptrace,
even as its own user."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


def keep_private(end_with_parent: bool = False) -> None:
    """Not dumpable (no core, no /proc/PID/mem, no ptrace but by root); ``end_with_parent``:
    sent SIGTERM when the process that started this one ends."""
    libc = ctypes.CDLL(None)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if end_with_parent:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
