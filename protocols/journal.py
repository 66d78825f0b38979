"""The admission journal: each batch of decisions made durable by one write() before anyone is
answered, then copied into the registry's ``admissions`` table off the hot path.

A SQLite commit costs about 100 us on a cold cache, a write() of the batch about 10 us: on the
path of every first packet, the difference is a fifth of the processing budget. Durability is
the same as the registry's (WAL, synchronous=NORMAL): a record whose write() returned survives
a crash of the process, not a power cut. The import commits the journal offset it reached in
the same transaction as the rows, so a crash never imports a record twice or skips one.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

# time, gateway, identity (0: none), src, dst, dport, proto, inbound, granted, reason
RECORD = struct.Struct("!dIIIIHBBBBxx")


class Journal:
    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, rows: list[tuple]) -> None:
        os.write(self.fd, b"".join([RECORD.pack(*row) for row in rows]))

    def read_from(self, offset: int, limit: int | None = None) -> tuple[list[tuple], int]:
        """Whole records from ``offset`` on (at most ``limit``), as registry rows, and the
        offset after them."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read(-1 if limit is None else limit * RECORD.size)
        usable = len(data) - len(data) % RECORD.size
        rows = []
        for when, gateway, identity, src, dst, dport, proto, inbound, granted, reason in \
                RECORD.iter_unpack(data[:usable]):
            rows.append((when, gateway, identity or None, src, dst, proto, dport, inbound,
                         granted, reason))
        return rows, offset + usable
