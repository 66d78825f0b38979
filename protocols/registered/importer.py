"""The journal's copy into SQLite, off the decision loop: a process the authority starts, so
that no decision waits for the copy. In the loop, at 100 000 decisions/s, the copy took more
than half of it (5 us a row through Python's sqlite3, against about 3 us for deciding,
logging and answering) and requests queued behind it.

The journal is the log (every decision is in it before it is answered); ``admissions`` is
its index for queries, normally milliseconds behind, further when no core is spare. Whoever
needs it whole copies the rest first (``Registry.import_journal``: the operator's ``log``, the
copy a results directory keeps); two copying at once never copy a record twice.

Between copies it sleeps at the lowest priority (nice 19: the authority's decisions come
first); a copy runs at the authority's own, since it holds the registry's write lock: left at
nice 19, a busy machine preempts it while it holds the lock, and a registration at the
authority waits all that time (up to a second with a CPU hog on its core). A copy is a small
chunk, read and checked before the lock is taken. A lock it cannot get is waited for again,
never its end; should it end anyway, the authority starts another. The process is not
dumpable (it holds the registry open) and ends with the authority.

    python -m protocols.registered.importer DB DURABILITY AUTHORITY_PID
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .journal import JournalReader
from .process import keep_private
from .registry import Registry

IMPORT_S = 0.01  # with a core to spare, a decision is in SQLite about this long after
CHUNK = 64       # rows a transaction: a quarter of a millisecond the authority may wait
RESTING_NICE = 19


def start(db: Path, durability: str) -> subprocess.Popen:
    """The importer of ``db``'s journal, ending with the calling process."""
    return subprocess.Popen([sys.executable, "-m", __spec__.name, str(db), durability,
                             str(os.getpid())])


def run(db: Path, durability: str, authority: int) -> None:
    registry = Registry(db, durability)
    journal = JournalReader(db.with_suffix(".journal"))
    working = os.getpriority(os.PRIO_PROCESS, 0)
    resting = RESTING_NICE if os.geteuid() == 0 else working  # only root may come back up
    while os.getppid() == authority:  # the authority gone before the death signal was set
        os.setpriority(os.PRIO_PROCESS, 0, working)
        try:
            copied = registry.import_journal(journal, CHUNK)
        except sqlite3.OperationalError:  # the lock held past the busy timeout: wait again
            registry.rollback()
            copied = 0
        finally:
            os.setpriority(os.PRIO_PROCESS, 0, resting)
        if copied < CHUNK:
            time.sleep(IMPORT_S)


def main() -> None:
    keep_private(end_with_parent=True)
    db, durability, authority = sys.argv[1:]
    run(Path(db), durability, int(authority))


if __name__ == "__main__":
    main()
