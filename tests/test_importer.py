"""The importer: the journal reaches SQLite without the authority's loop copying it, and the
importer ends with the authority, however the authority ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocols.registered.admission import AdmissionRow
from protocols.registered.journal import Journal
from protocols.registered.registry import Gateway, Registry
from topologies.polling import wait_until

# an authority stand-in: starts the importer as the authority does, then only waits
AUTHORITY = ("import sys, time; from pathlib import Path; "
             "from protocols.registered import importer; "
             "p = importer.start(Path(sys.argv[1]), 'process'); print(p.pid, flush=True); "
             "time.sleep(600)")


def row(src: int) -> AdmissionRow:
    return AdmissionRow(time.time(), 1, 1, src, 20, 6, 40000, 443, False, False, True, 0)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_the_importer_copies_the_journal_and_dies_with_the_authority(tmp_path):
    db = tmp_path / "registry.db"
    Registry.create(db, [Gateway(1, "a1", "north", b"k" * 32, 1)], [], 5000).close()
    journal = Journal(db.with_suffix(".journal"))
    authority = subprocess.Popen([sys.executable, "-c", AUTHORITY, str(db)],
                                 stdout=subprocess.PIPE, text=True)
    importer = int(authority.stdout.readline())
    reader = Registry(db)
    journal.append([row(k) for k in range(3000)])  # more than one transaction's worth
    assert wait_until(lambda: len(reader.admissions(limit=5000)) == 3000, 10)
    journal.append([row(7)])
    assert wait_until(lambda: reader.admissions(limit=1)[0][4] == 7, 10)
    authority.send_signal(signal.SIGKILL)
    authority.wait()
    assert wait_until(lambda: not alive(importer), 5), "the importer outlived the authority"
    assert [s for (s,) in reader.db.execute("SELECT src FROM admissions ORDER BY seq")] == [
        *range(3000), 7]


def children(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_an_importer_that_ends_is_replaced_by_the_authority(tmp_path):
    db = tmp_path / "registry.db"
    Registry.create(db, [Gateway(1, "a1", "north", b"k" * 32, 0x7F000001)], [], 5000).close()
    config = tmp_path / "authority.json"
    config.write_text(json.dumps({"db": str(db), "address": "127.0.0.1", "port": 0,
                                  "admin": str(tmp_path / "admin.sock")}))
    authority = subprocess.Popen([sys.executable, "-m", "protocols.registered.authority",
                                  str(config)], stdout=subprocess.PIPE, text=True)
    try:
        authority.stdout.readline()  # ready
        assert wait_until(lambda: len(children(authority.pid)) == 1, 10)
        (first,) = children(authority.pid)
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: children(authority.pid) - {first}, 5), "not replaced"
        journal = Journal(db.with_suffix(".journal"))
        journal.append([row(5)])
        assert wait_until(lambda: Registry(db).admissions(limit=1), 10)
    finally:
        authority.kill()
        authority.wait()
