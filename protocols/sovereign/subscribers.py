"""The subscriber register: who each line belongs to, by real name, and who held which
address when.

As China's real-name rules require of every ISP, a subscriber signs up with an identity
document, and every address the ISP hands out is logged with its holder and its times (a
lease). So a flow record (an address and a time) names a person, and a cut can follow the
person to a new address. SQLite, written only by the architecture's process.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (national_id TEXT PRIMARY KEY, real_name TEXT NOT NULL,
                                        host TEXT UNIQUE);  -- NULL: a person with no line
CREATE TABLE IF NOT EXISTS leases (address TEXT NOT NULL, national_id TEXT NOT NULL,
                                   since REAL NOT NULL, until REAL);
CREATE INDEX IF NOT EXISTS leases_by_address ON leases (address, since);
"""


class Subscribers:
    def __init__(self, path: Path):
        # any thread: the lab's page reads and acts from its server's (one caller at a time)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript(SCHEMA)

    def sign_up(self, national_id: str, real_name: str, host: str | None) -> None:
        self.db.execute("INSERT INTO subscribers VALUES (?, ?, ?)", (national_id, real_name,
                                                                     host))
        self.db.commit()

    def lease(self, host: str, address: str, now: float | None = None) -> None:
        """``host``'s subscriber holds ``address`` from ``now``; their previous lease and
        anyone else's on that address end then."""
        self.lease_to(self.person(host), address, now)

    def lease_to(self, person: str, address: str, now: float | None = None) -> None:
        """``person`` holds ``address`` from ``now`` (whoever uses the line: a line signed up
        with a borrowed identity is leased to the identity's owner)."""
        now = time.time() if now is None else now
        self.db.execute("UPDATE leases SET until = ? WHERE until IS NULL AND "
                        "(national_id = ? OR address = ?)", (now, person, address))
        self.db.execute("INSERT INTO leases VALUES (?, ?, ?, NULL)", (address, person, now))
        self.db.commit()

    def person(self, host: str) -> str:
        row = self.db.execute("SELECT national_id FROM subscribers WHERE host = ?",
                              (host,)).fetchone()
        if row is None:
            raise KeyError(f"{host} has no subscriber")
        return row[0]

    def addresses(self, national_id: str) -> list[str]:
        """What the person holds now (a cut blocks these, and follows them)."""
        return [a for (a,) in self.db.execute(
            "SELECT address FROM leases WHERE national_id = ? AND until IS NULL", (national_id,))]

    def holder(self, address: str, at: float) -> str | None:
        """Whose lease covered ``address`` at ``at``: how a flow record names a person."""
        row = self.db.execute(
            "SELECT national_id FROM leases WHERE address = ? AND since <= ? AND "
            "(until IS NULL OR until > ?) ORDER BY since DESC LIMIT 1", (address, at, at)
        ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
