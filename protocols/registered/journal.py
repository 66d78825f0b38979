"""The admission journal: every batch of decisions made durable by one write() before anyone
is answered, then copied into the registry's ``admissions`` table off the hot path.

Each record is framed: a 2-byte mark, its length and a CRC-32, then the row. A process killed
in the middle of a write() can leave its last record torn; on opening, the journal finds the
end of the last whole record and cuts the torn tail off, so a later append never follows
garbage, and reading stops at anything whose frame or checksum does not hold, so garbage is
never imported.

Durability is a setting:

``process``  write() before answering: a record survives a crash of the process (kill -9);
             about 10 us a batch.
``power``    also fdatasync() before answering: a record survives a power cut; the cost is
             the disk's (``bench admission`` prints both).

The registry commits the journal offset it has imported in the same transaction as the rows,
so a crash never imports a record twice or skips one. Only the writer opens a ``Journal``
(opening cuts a torn tail); anyone else reads with ``read``, which never changes the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from .admission import AdmissionRow

DURABILITY = ("process", "power")
FRAME = struct.Struct("!HHI")                 # mark, row length, CRC-32 of the row
MARK = 0x534A                                 # "SJ"
ROW = struct.Struct("!dIIIIHBBB")             # time, gateway, identity, src, dst, dport,
                                              # proto, flags, reason
RECORD_SIZE = FRAME.size + ROW.size
INBOUND, RENEWAL, GRANTED, BY_GATEWAY = 1, 2, 4, 8


def pack(row: AdmissionRow) -> bytes:
    flags = (INBOUND * row.inbound | RENEWAL * row.renewal | GRANTED * row.granted
             | BY_GATEWAY * row.by_gateway)
    body = ROW.pack(row.time, row.gateway, row.identity or 0, row.src, row.dst, row.dport,
                    row.proto, flags, row.reason)
    return FRAME.pack(MARK, len(body), zlib.crc32(body)) + body


def unpack(data: bytes | memoryview, offset: int) -> tuple[AdmissionRow, int] | None:
    """The record at ``offset`` and the offset after it, or None if there is no whole, valid
    record there."""
    if offset + FRAME.size > len(data):
        return None
    mark, length, crc = FRAME.unpack_from(data, offset)
    start = offset + FRAME.size
    if mark != MARK or length != ROW.size or start + length > len(data):
        return None
    body = bytes(data[start:start + length])
    if zlib.crc32(body) != crc:
        return None
    when, gateway, identity, src, dst, dport, proto, flags, reason = ROW.unpack(body)
    return AdmissionRow(when, gateway, identity or None, src, dst, proto, dport,
                        bool(flags & INBOUND), bool(flags & RENEWAL), bool(flags & GRANTED),
                        reason, bool(flags & BY_GATEWAY)), start + length


def valid_length(path: Path) -> int:
    """Bytes up to the end of the last whole, valid record."""
    data = path.read_bytes() if path.exists() else b""
    offset = 0
    while (found := unpack(data, offset)) is not None:
        offset = found[1]
    return offset


def read(path: Path, offset: int = 0, limit: int | None = None) -> tuple[list[AdmissionRow], int]:
    """Whole records from ``offset`` on (at most ``limit``), and the offset after them."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(-1 if limit is None else limit * RECORD_SIZE)
    rows, at = [], 0
    while (found := unpack(data, at)) is not None:
        rows.append(found[0])
        at = found[1]
    return rows, offset + at


class Journal:
    def __init__(self, path: Path, durability: str = "process"):
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}")
        self.path = path
        self.durability = durability
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.torn_bytes = os.fstat(self.fd).st_size - valid_length(path)
        if self.torn_bytes:
            os.ftruncate(self.fd, os.fstat(self.fd).st_size - self.torn_bytes)

    def append(self, rows: list[AdmissionRow]) -> None:
        data = memoryview(b"".join([pack(row) for row in rows]))
        while data:  # a regular file writes all at once, unless a signal or a full disk
            data = data[os.write(self.fd, data):]
        if self.durability == "power":
            os.fdatasync(self.fd)

    def read_from(self, offset: int, limit: int | None = None) -> tuple[list[AdmissionRow], int]:
        return read(self.path, offset, limit)

    def close(self) -> None:
        os.close(self.fd)
