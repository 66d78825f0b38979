"""The authority's persistent registry: SQLite in WAL mode, readable by anyone's ``sqlite3``.

Tables: ``people`` (the civil register: real name and enrolment secret per national id),
``identities`` (at most one per person, with when it was registered and revoked),
``bindings`` (the address and gateway an identity uses), ``gateways`` (id, name, region, HMAC
key, control address), ``blocked`` and ``shutdowns`` (policy), ``settings`` (the admission
TTL, the imported journal offset), ``changes`` (every policy change, numbered per gateway:
what each gateway must apply, in order), and two append-only logs: ``admissions`` (who, to
whom, when, decided how and why) and ``actions`` (every operator command). Triggers refuse
UPDATE and DELETE on the logs and the changes.

The file is created readable by its owner only. Two processes write it: the authority (people,
policy, actions) and its importer (the journal into ``admissions``). So a connection holds no
transaction between its writes: a read sees what the other committed, and a write takes the
lock at once (BEGIN IMMEDIATE, waiting for the other's commit) and holds it until ``commit``.
A change is acknowledged only after its transaction commits: with ``durability="process"``
(WAL, synchronous=NORMAL) every commit survives a crash of the process (kill -9); ``"power"``
(synchronous=FULL) also a power cut.
``copy_without_secrets`` writes the copy a results directory keeps: everything but the keys
and the enrolment secrets.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .admission import AdmissionRow
from .identity import Card
from .messages import Action

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    national_id TEXT PRIMARY KEY, real_name TEXT NOT NULL, card_secret BLOB);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY, national_id TEXT NOT NULL UNIQUE REFERENCES people,
    registered REAL NOT NULL, revoked REAL);
CREATE TABLE IF NOT EXISTS bindings (
    identity INTEGER PRIMARY KEY REFERENCES identities, address INTEGER NOT NULL UNIQUE,
    gateway INTEGER NOT NULL REFERENCES gateways, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS gateways (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, region TEXT NOT NULL,
    key BLOB, address INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocked (
    address INTEGER NOT NULL, length INTEGER NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (address, length));
CREATE TABLE IF NOT EXISTS shutdowns (
    region TEXT PRIMARY KEY, allow TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    gateway INTEGER NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
    action INTEGER NOT NULL, items TEXT NOT NULL, PRIMARY KEY (gateway, seq));
CREATE TABLE IF NOT EXISTS admissions (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, gateway INTEGER NOT NULL,
    identity INTEGER, src INTEGER NOT NULL, dst INTEGER NOT NULL, proto INTEGER NOT NULL,
    sport INTEGER NOT NULL, dport INTEGER NOT NULL, inbound INTEGER NOT NULL,
    renewal INTEGER NOT NULL,
    granted INTEGER NOT NULL, reason INTEGER NOT NULL, by_gateway INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
    detail TEXT NOT NULL);
"""
BUSY_MS = 10_000  # the other writer's transactions last milliseconds; longer is a fault
APPEND_ONLY = ("admissions", "actions", "changes")
ADMISSION_COLUMNS = ", ".join(AdmissionRow._fields)  # a journal record, column for column
TRIGGERS = "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_append_only_{op[0]} BEFORE {op} ON {t} BEGIN "
    f"SELECT RAISE(ABORT, 'the {t} log is append-only'); END;\n"
    for t in APPEND_ONLY for op in ("UPDATE", "DELETE"))


@dataclass(frozen=True)
class Gateway:
    id: int
    name: str
    region: str
    key: bytes
    address: int


def items_text(items: tuple[tuple[int, int, int], ...]) -> str:
    return ",".join(f"{a}/{n}/{i}" for a, n, i in items)


def items_of(text: str) -> tuple[tuple[int, int, int], ...]:
    return tuple(tuple(map(int, part.split("/"))) for part in text.split(",") if part)


class Registry:
    def __init__(self, path: Path, durability: str = "process"):
        self.path = path
        if not path.exists():  # created private: it holds keys and enrolment secrets
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self.db.executescript(SCHEMA + TRIGGERS)

    # -- set-up ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, gateways: list[Gateway], cards: list[Card],
               ttl_ms: int) -> Registry:
        registry = cls(path)
        registry.write_many("INSERT OR REPLACE INTO gateways VALUES (?, ?, ?, ?, ?)",
                            [(g.id, g.name, g.region, g.key, g.address) for g in gateways])
        registry.write_many("INSERT OR IGNORE INTO people VALUES (?, ?, ?)",
                            [(c.national_id, c.real_name, c.secret) for c in cards])
        registry.set_ttl(ttl_ms)
        registry.commit()
        return registry

    def begin(self) -> None:
        """Take the write lock, unless this connection holds it (the first write after a
        commit takes it); the other writer waits until ``commit`` or ``rollback``."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        self.begin()
        return self.db.execute(sql, args)

    def write_many(self, sql: str, rows) -> None:
        self.begin()
        self.db.executemany(sql, rows)

    def commit(self) -> None:
        """Make every write since the last commit durable and let the other writer in."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def checkpoint_in_background(self, interval_s: float = 0.5) -> None:
        """Take WAL checkpoints off the committing thread. Left to SQLite, every thousandth
        page a commit also copies the log into the database and syncs it: 5-6 ms during
        which nobody is answered. A thread of our own, on its own connection, checkpoints
        instead; SQLite does that work with the GIL released, and a passive checkpoint never
        blocks the writer."""
        self.db.execute("PRAGMA wal_autocheckpoint=0")

        def checkpoint() -> None:
            db = sqlite3.connect(self.path, isolation_level=None)
            while True:
                time.sleep(interval_s)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")

        threading.Thread(target=checkpoint, name="checkpoint", daemon=True).start()

    def close(self) -> None:
        self.commit()
        self.db.close()

    # -- reads -----------------------------------------------------------------------------
    def gateways(self) -> dict[int, Gateway]:
        return {row[0]: Gateway(*row) for row in self.db.execute(
            "SELECT id, name, region, key, address FROM gateways")}

    def ttl_ms(self) -> int:
        row = self.db.execute("SELECT value FROM settings WHERE name = 'ttl_ms'").fetchone()
        return int(row[0])

    def bindings(self) -> list[tuple[int, int, int]]:
        """(identity, address, gateway) of every bound identity."""
        return list(self.db.execute("SELECT identity, address, gateway FROM bindings"))

    def secrets_of_bound(self) -> list[tuple[int, int, bytes]]:
        """(identity, address, enrolment secret) of every bound identity (a farm's devices
        prove each flow with theirs)."""
        return list(self.db.execute(
            "SELECT b.identity, b.address, p.card_secret FROM bindings b JOIN identities i ON "
            "i.id = b.identity JOIN people p ON p.national_id = i.national_id"))

    def revoked(self) -> set[int]:
        return {r[0] for r in self.db.execute(
            "SELECT id FROM identities WHERE revoked IS NOT NULL")}

    def blocked(self) -> list[tuple[int, int]]:
        return list(self.db.execute("SELECT address, length FROM blocked"))

    def shutdowns(self) -> dict[str, list[tuple[int, int]]]:
        out = {}
        for region, allow in self.db.execute("SELECT region, allow FROM shutdowns"):
            out[region] = [tuple(map(int, p.split("/"))) for p in allow.split(",") if p]
        return out

    def person(self, national_id: str) -> tuple[str, bytes | None] | None:
        """(real name, enrolment secret) of a person in the civil register."""
        return self.db.execute("SELECT real_name, card_secret FROM people WHERE national_id = ?",
                               (national_id,)).fetchone()

    def identity_of_person(self, national_id: str) -> tuple[int, float | None] | None:
        return self.db.execute("SELECT id, revoked FROM identities WHERE national_id = ?",
                               (national_id,)).fetchone()

    def describe(self, identity: int) -> dict | None:
        row = self.db.execute(
            "SELECT i.id, i.national_id, p.real_name, i.registered, i.revoked, b.address, "
            "b.gateway FROM identities i JOIN people p USING (national_id) "
            "LEFT JOIN bindings b ON b.identity = i.id WHERE i.id = ?", (identity,)).fetchone()
        if row is None:
            return None
        keys = ("identity", "national_id", "real_name", "registered", "revoked", "address",
                "gateway")
        return dict(zip(keys, row, strict=True))

    def flushes(self) -> dict[int, int]:
        """How many times each gateway has been told to forget its grants."""
        return dict(self.db.execute("SELECT gateway, COUNT(*) FROM changes WHERE action = ? "
                                    "GROUP BY gateway", (int(Action.FLUSH),)))

    def last_seq(self, gateway: int) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM changes WHERE gateway = ?",
                              (gateway,)).fetchone()
        return row[0] or 0

    def admissions(self, limit: int = 50, identity: int | None = None,
                   since: float = 0.0) -> list[tuple]:
        where, args = "WHERE time >= ?", [since]
        if identity is not None:
            where += " AND identity = ?"
            args.append(identity)
        return list(self.db.execute(
            f"SELECT seq, time, gateway, identity, src, dst, proto, sport, dport, inbound, "
            f"renewal, granted, reason, by_gateway FROM admissions {where} ORDER BY seq DESC "
            "LIMIT ?",
            [*args, limit]))

    def actions(self, limit: int = 50, target: str | None = None) -> list[tuple]:
        where, args = ("WHERE target = ?", [target]) if target is not None else ("", [])
        return list(self.db.execute(f"SELECT seq, time, action, target, detail FROM actions "
                                    f"{where} ORDER BY seq DESC LIMIT ?", [*args, limit]))

    # -- writes (durable at the next commit) -----------------------------------------------
    def add_person(self, card: Card) -> None:
        self.write("INSERT OR REPLACE INTO people VALUES (?, ?, ?)",
                   (card.national_id, card.real_name, card.secret))

    def add_identity(self, national_id: str, now: float) -> int:
        return self.write("INSERT INTO identities (national_id, registered) VALUES (?, ?)",
                          (national_id, now)).lastrowid

    def bind(self, identity: int, address: int, gateway: int, now: float) -> None:
        self.write("DELETE FROM bindings WHERE identity = ? OR address = ?",
                   (identity, address))
        self.write("INSERT INTO bindings VALUES (?, ?, ?, ?)",
                   (identity, address, gateway, now))

    def set_revoked(self, identity: int, when: float | None) -> None:
        self.write("UPDATE identities SET revoked = ? WHERE id = ?", (when, identity))

    def block(self, address: int, length: int, now: float) -> None:
        self.write("INSERT OR REPLACE INTO blocked VALUES (?, ?, ?)",
                   (address, length, now))

    def unblock(self, address: int, length: int) -> None:
        self.write("DELETE FROM blocked WHERE address = ? AND length = ?",
                   (address, length))

    def shutdown(self, region: str, allow: list[tuple[int, int]], now: float) -> None:
        self.write("INSERT OR REPLACE INTO shutdowns VALUES (?, ?, ?)",
                   (region, ",".join(f"{a}/{n}" for a, n in allow), now))

    def lift(self, region: str) -> None:
        self.write("DELETE FROM shutdowns WHERE region = ?", (region,))

    def set_ttl(self, ttl_ms: int) -> None:
        self.write("INSERT OR REPLACE INTO settings VALUES ('ttl_ms', ?)", (str(ttl_ms),))

    def record_change(self, gateway: int, seq: int, action: int,
                      items: tuple[tuple[int, int, int], ...], now: float) -> None:
        self.write("INSERT INTO changes VALUES (?, ?, ?, ?, ?)",
                   (gateway, seq, now, action, items_text(items)))

    def import_journal(self, journal, limit: int | None = None) -> int:
        """Copy journal records not yet imported (at most ``limit``) into ``admissions``;
        commit together with the offset reached. Returns how many were copied. The journal is
        read before the write lock is taken (the lock is held only to insert), and again under
        it if another process copied meanwhile."""
        start = self._imported()
        rows, offset = journal.read_from(start, limit)
        if not rows:
            return 0
        self.begin()  # nobody else imports until we commit
        if self._imported() != start:
            rows, offset = journal.read_from(self._imported(), limit)
        if rows:
            self.log_admissions(rows)
            self.write("INSERT OR REPLACE INTO settings VALUES ('journal', ?)", (str(offset),))
        self.commit()
        return len(rows)

    def _imported(self) -> int:
        row = self.db.execute("SELECT value FROM settings WHERE name = 'journal'").fetchone()
        return int(row[0]) if row else 0

    def log_admissions(self, rows: list[AdmissionRow]) -> None:
        self.write_many(f"INSERT INTO admissions ({ADMISSION_COLUMNS}) VALUES "
                        f"({', '.join('?' * len(AdmissionRow._fields))})", rows)

    def log_action(self, now: float, action: str, target: str, detail: str = "") -> None:
        self.write("INSERT INTO actions (time, action, target, detail) VALUES (?,?,?,?)",
                   (now, action, target, detail))


@contextlib.contextmanager
def scrubbed_copy(source: Path, dest: Path) -> Iterator[sqlite3.Connection]:
    """A consistent copy of a registry (SQLite's backup API, safe while the authority writes)
    with the gateways' keys and the people's enrolment secrets removed, open for additions
    until the block ends, then placed at ``dest``: what a results directory keeps.

    The copy is made and scrubbed in a directory beside the registry that only its owner can
    enter (so no one reads it with the secrets still in, and SQLite works there: it does not
    on every filesystem a results directory may live on, e.g. a VM's 9p share), and only
    then copied to ``dest`` as one finished file."""
    with tempfile.TemporaryDirectory(dir=source.parent, prefix=".scrub-") as private:
        scratch = Path(private) / dest.name  # TemporaryDirectory is 0700
        copy = sqlite3.connect(scratch, isolation_level=None)
        try:
            original = sqlite3.connect(source)
            try:
                original.backup(copy)
            finally:
                original.close()
            for trigger in [r[0] for r in copy.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
                copy.execute(f"DROP TRIGGER {trigger}")
            copy.execute("UPDATE gateways SET key = NULL")
            copy.execute("UPDATE people SET card_secret = NULL")
            copy.executescript(TRIGGERS)
            copy.execute("PRAGMA journal_mode=DELETE")
            yield copy
            copy.execute("VACUUM")  # no freed page keeps a secret
        finally:
            copy.close()
        partial = dest.with_name(f".{dest.name}.partial")
        shutil.copyfile(scratch, partial)
        os.chmod(partial, 0o644)
        partial.replace(dest)


def copy_without_secrets(source: Path, dest: Path) -> None:
    """``scrubbed_copy`` with nothing added."""
    with scrubbed_copy(source, dest):
        pass
