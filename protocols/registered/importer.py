"""The journal's copy into SQLite, off the decision loop: a process the authority starts, at
the lowest priority (nice 19), so no decision waits for the copy. In the loop, at 100 000
decisions/s, the copy took more than half of it (5 us a row through Python's sqlite3, against
about 3 us for deciding, logging and answering) and requests queued behind it.

The journal is the log (every decision is in it before it is answered); ``admissions`` is
its index for queries, normally milliseconds behind, further when no core is spare. Whoever
needs it whole copies the rest first (``Registry.import_journal``: the operator's ``log``, the
copy a results directory keeps); two copying at once never copy a record twice.

It holds the registry's write lock only while inserting a chunk (the journal is read and
checked before), and is not SCHED_IDLE: starved of the CPU while holding the lock on a busy
machine, it would keep the authority's own writes (a registration) waiting. The process is
not dumpable (it holds the registry open) and ends with the authority.

    python -m protocols.registered.importer DB DURABILITY AUTHORITY_PID
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .journal import JournalReader
from .registry import Registry

IMPORT_S = 0.01  # with a core to spare, a decision is in SQLite about this long after
CHUNK = 256      # rows a transaction: about a millisecond the authority's writes may wait
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


def start(db: Path, durability: str) -> subprocess.Popen:
    """The importer of ``db``'s journal, ending with the calling process."""
    return subprocess.Popen([sys.executable, "-m", __spec__.name, str(db), durability,
                             str(os.getpid())])


def run(db: Path, durability: str, authority: int) -> None:
    registry = Registry(db, durability)
    journal = JournalReader(db.with_suffix(".journal"))
    while os.getppid() == authority:  # the authority gone before the death signal was set
        if registry.import_journal(journal, CHUNK) < CHUNK:
            time.sleep(IMPORT_S)


def main() -> None:
    libc = ctypes.CDLL(None)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    os.nice(19)
    db, durability, authority = sys.argv[1:]
    run(Path(db), durability, int(authority))


if __name__ == "__main__":
    main()
