"""The registry: durable once committed, logs append-only, journal imported exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest

from protocols.journal import Journal
from protocols.registry import Gateway, Registry


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.db"
    Registry.create(path, [Gateway(1, "a1", "north", b"k" * 32, 1)],
                    [("NID-1", "Ada Okafor"), ("NID-2", "Bela Moreau")], 5000).close()
    return path


def test_committed_registrations_survive_reopening(db):
    r = Registry(db)
    identity = r.add_identity("NID-1", b"c" * 16, time.time())
    r.bind(identity, 42, 1, time.time())
    r.commit()
    r.add_identity("NID-2", b"d" * 16, time.time())  # never committed
    r.db.close()  # as a crash would: no final commit
    again = Registry(db)
    assert [i for i, *_ in again.bindings()] == [identity]
    assert again.identity_of_person("NID-2") is None
    assert again.credential_matches(identity, b"c" * 16)
    assert not again.credential_matches(identity, b"x" * 16)


def test_logs_are_append_only(db):
    r = Registry(db)
    r.log_action(time.time(), "revoke", "1")
    r.log_admissions([(time.time(), 1, 1, 2, 3, 6, 80, False, True, 0)])
    r.commit()
    for statement in ("UPDATE admissions SET granted = 0", "DELETE FROM admissions",
                      "UPDATE actions SET target = 'x'", "DELETE FROM actions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            r.db.execute(statement)


def test_journal_is_imported_exactly_once_across_crashes(db, tmp_path):
    journal = Journal(tmp_path / "r.journal")
    rows = [(time.time(), 1, k % 3, 10 + k, 20, 443, 6, False, True, 0) for k in range(700)]
    journal.append(rows[:500])
    r = Registry(db)
    assert r.import_journal(journal, limit=256) == 256
    r.db.close()  # crash after one chunk
    journal.append(rows[500:])
    again = Registry(db)
    assert again.import_journal(journal) == 444
    assert again.import_journal(journal) == 0
    got = again.db.execute("SELECT src, identity FROM admissions ORDER BY seq").fetchall()
    assert [s for s, _ in got] == [10 + k for k in range(700)]
    assert got[0][1] is None and got[1][1] == 1  # identity 0 means none


def test_a_torn_journal_tail_waits_for_the_rest(db, tmp_path):
    journal = Journal(tmp_path / "r.journal")
    journal.append([(1.0, 1, 1, 2, 3, 80, 6, False, True, 0)])
    with open(journal.path, "ab") as f:
        f.write(b"\x00" * 7)
    rows, offset = journal.read_from(0)
    assert len(rows) == 1 and offset == 32


def test_checkpoints_move_to_their_own_thread(db):
    """Commits no longer copy the WAL into the database; the background thread does."""
    r = Registry(db)
    r.checkpoint_in_background(interval_s=0.05)
    before = db.stat().st_size
    row = (time.time(), 1, 1, 2, 3, 6, 80, False, True, 0)
    for _ in range(40):  # well past the thousand pages at which SQLite would checkpoint
        r.log_admissions([row] * 1000)
        r.commit()
    assert r.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 5
    while db.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.stat().st_size > before, "nothing was checkpointed into the database file"
    assert r.db.execute("SELECT COUNT(*) FROM admissions").fetchone()[0] == 40_000
