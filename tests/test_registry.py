"""The registry: durable once committed, logs append-only, journal imported exactly once,
created private, and copied for results without its secrets."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
import time

import pytest

from protocols.registered.admission import AdmissionRow
from protocols.registered.identity import issue
from protocols.registered.journal import RECORD_SIZE, Journal, JournalReader
from protocols.registered.journal import read as read_journal
from protocols.registered.registry import Gateway, Registry, copy_without_secrets
from topologies.polling import wait_until

CARDS = [issue("NID-1", "Ada Okafor"), issue("NID-2", "Bela Moreau")]


def row(src: int, identity: int | None = 1) -> AdmissionRow:
    return AdmissionRow(time.time(), 1, identity, src, 20, 6, 40000, 443, False, False, True, 0)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.db"
    Registry.create(path, [Gateway(1, "a1", "north", b"k" * 32, 1)], CARDS, 5000).close()
    return path


def test_the_registry_is_private(db):
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_committed_registrations_survive_reopening(db):
    r = Registry(db)
    identity = r.add_identity("NID-1", time.time())
    r.bind(identity, 42, 1, time.time())
    r.commit()
    r.add_identity("NID-2", time.time())  # never committed
    r.db.close()  # as a crash would: no final commit
    again = Registry(db)
    assert [i for i, *_ in again.bindings()] == [identity]
    assert again.identity_of_person("NID-2") is None
    assert again.person("NID-1") == ("Ada Okafor", CARDS[0].secret)


def test_logs_are_append_only(db):
    r = Registry(db)
    r.log_action(time.time(), "revoke", "1")
    r.log_admissions([row(2)])
    r.record_change(1, 1, 3, ((42, 32, 1),), time.time())
    r.commit()
    for statement in ("UPDATE admissions SET granted = 0", "DELETE FROM admissions",
                      "UPDATE actions SET target = 'x'", "DELETE FROM actions",
                      "DELETE FROM changes"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            r.db.execute(statement)
    assert r.last_seq(1) == 1 and r.last_seq(2) == 0


def test_journal_is_imported_exactly_once_across_crashes(db, tmp_path):
    journal = Journal(tmp_path / "r.journal")
    rows = [row(10 + k, k % 3 or None) for k in range(700)]
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
    assert got[0][1] is None and got[1][1] == 1


def _import_all(db, journal_path, start=None) -> None:
    """Another process copying the journal, as the authority's importer does."""
    r = Registry(db)
    if start is not None:
        start.wait(30)
    while r.import_journal(JournalReader(journal_path), limit=64):
        pass


def test_two_processes_importing_at_once_copy_every_record_exactly_once(db, tmp_path):
    """The importer and the authority (for an operator's ``log``) may copy at the same time:
    neither fails on the other's lock or snapshot, and no record is copied twice."""
    journal = Journal(tmp_path / "r.journal")
    journal.append([row(k) for k in range(20_000)])
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(3)
    others = [spawn.Process(target=_import_all, args=(db, journal.path, start))
              for _ in range(2)]
    for p in others:
        p.start()
    _import_all(db, journal.path, start)
    for p in others:
        p.join(60)
    assert [p.exitcode for p in others] == [0, 0]
    got = Registry(db).db.execute("SELECT src FROM admissions ORDER BY seq").fetchall()
    assert [s for (s,) in got] == list(range(20_000))


def test_a_registry_reads_what_another_process_committed_and_writes_after_it(db, tmp_path):
    """The authority's own connection holds no snapshot between its writes: rows the importer
    copied are in its next read, and its next write does not fail on them."""
    authority = Registry(db)
    assert authority.admissions() == []
    journal = Journal(tmp_path / "r.journal")
    journal.append([row(3)])
    spawn = multiprocessing.get_context("spawn")
    importer = spawn.Process(target=_import_all, args=(db, journal.path))
    importer.start()
    importer.join(60)
    assert [r[4] for r in authority.admissions()] == [3]
    authority.log_action(time.time(), "revoke", "1")
    authority.commit()
    assert len(authority.actions()) == 1


def test_the_copy_for_results_keeps_everything_but_the_secrets(db, tmp_path):
    r = Registry(db)
    r.log_admissions([row(7)])
    r.commit()
    copy = tmp_path / "copy.db"
    copy_without_secrets(db, copy)
    c = sqlite3.connect(copy)
    assert c.execute("SELECT key FROM gateways").fetchall() == [(None,)]
    assert c.execute("SELECT card_secret FROM people").fetchall() == [(None,), (None,)]
    assert c.execute("SELECT src FROM admissions").fetchall() == [(7,)]
    assert CARDS[0].secret not in copy.read_bytes() and b"k" * 32 not in copy.read_bytes()


def test_checkpoints_move_to_their_own_thread(db):
    """Commits no longer copy the WAL into the database; the background thread does."""
    r = Registry(db)
    r.checkpoint_in_background(interval_s=0.05)
    before = db.stat().st_size
    for _ in range(40):  # well past the thousand pages at which SQLite would checkpoint
        r.log_admissions([row(2)] * 1000)
        r.commit()
    assert r.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    wait_until(lambda: db.stat().st_size > before, 5)
    assert db.stat().st_size > before, "nothing was checkpointed into the database file"
    assert r.db.execute("SELECT COUNT(*) FROM admissions").fetchone()[0] == 40_000


def test_the_copy_is_made_where_nobody_else_can_read_it_and_leaves_nothing_behind(db, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    copy_without_secrets(db, out / "registry.db")
    assert [p.name for p in out.iterdir()] == ["registry.db"]
    copy_without_secrets(db, out / "registry.db")  # again, over the first: still one file
    assert [p.name for p in out.iterdir()] == ["registry.db"]


def test_a_reader_never_cuts_a_journal_a_writer_is_still_writing(tmp_path):
    path = tmp_path / "gw.journal"
    journal = Journal(path)
    journal.append([row(1), row(2)])
    with open(path, "ab") as f:
        f.write(b"SJ\x00")  # a record half written
    size = path.stat().st_size
    rows, offset = read_journal(path)
    assert [r.src for r in rows] == [1, 2] and offset == 2 * RECORD_SIZE
    assert path.stat().st_size == size
    reopened = Journal(path)  # the writer, after a crash, cuts the torn tail
    assert reopened.torn_bytes == 3 and path.stat().st_size == 2 * RECORD_SIZE
