"""The admission journal: every batch of decisions made durable by one write() before anyone
is answered, then copied into the registry's ``admissions`` table off the hot path.

Each record is framed: a 2-byte mark, its length and a CRC-32, then the row. A process killed
in the middle of a write() can leave its last record torn; on opening, the journal finds the
end of the last whole record and cuts the torn tail off, so a later append never follows
garbage; a record whose frame or checksum fails with whole records after it (a flipped bit)
is skipped and counted, never imported, and costs no record after it.

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
ROW = struct.Struct("!dIIIIHHBBB")            # time, gateway, identity, src, dst, sport,
                                              # dport, proto, flags, reason
RECORD_SIZE = FRAME.size + ROW.size
INBOUND, RENEWAL, GRANTED, BY_GATEWAY = 1, 2, 4, 8


def pack(row: AdmissionRow) -> bytes:
    flags = (INBOUND * row.inbound | RENEWAL * row.renewal | GRANTED * row.granted
             | BY_GATEWAY * row.by_gateway)
    body = ROW.pack(row.time, row.gateway, row.identity or 0, row.src, row.dst, row.sport,
                    row.dport, row.proto, flags, row.reason)
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
    when, gateway, identity, src, dst, sport, dport, proto, flags, reason = ROW.unpack(body)
    return AdmissionRow(when, gateway, identity or None, src, dst, proto, sport, dport,
                        bool(flags & INBOUND), bool(flags & RENEWAL), bool(flags & GRANTED),
                        reason, bool(flags & BY_GATEWAY)), start + length


def scan(data: bytes | memoryview, offset: int = 0,
         limit: int | None = None) -> tuple[list[AdmissionRow], int, int]:
    """The whole, valid records from ``offset`` on (at most ``limit``), the offset after the
    last of them, and how many corrupt records lay between them. Records are appended whole
    and of one size, so a record that fails its check with a valid one after it is
    corruption (a flipped bit): skipped and counted, never the end; what fails with nothing
    valid after it is a tail torn by a crash, or a record still being written."""
    rows: list[AdmissionRow] = []
    corrupt, end, at = 0, offset, offset
    while at < len(data) and (limit is None or len(rows) < limit):
        found = unpack(data, at)
        if found is not None:
            rows.append(found[0])
            at = end = found[1]
            continue
        later = next((k for k in range(at + RECORD_SIZE, len(data), RECORD_SIZE)
                      if unpack(data, k) is not None), None)
        if later is None:
            break
        corrupt += (later - at) // RECORD_SIZE
        at = later
    return rows, end, corrupt


def read(path: Path, offset: int = 0, limit: int | None = None) -> tuple[list[AdmissionRow], int]:
    """Whole records from ``offset`` on (at most ``limit``; corrupt ones skipped), and the
    offset after them. Never changes the file: a live authority may be writing it. Reads
    only what ``limit`` records need, unless corruption makes it look further."""
    with open(path, "rb") as f:
        f.seek(offset)
        window = -1 if limit is None else (limit + 1) * RECORD_SIZE
        data = f.read(window)
        rows, end, _ = scan(data, 0, limit)
        if len(data) == window and len(rows) < limit:  # corruption in a full window: rare
            data += f.read()
            rows, end, _ = scan(data, 0, limit)
    return rows, offset + end


class JournalReader:
    """A journal read by someone other than its writer: never cuts, never writes."""

    def __init__(self, path: Path):
        self.path = path

    def read_from(self, offset: int, limit: int | None = None) -> tuple[list[AdmissionRow], int]:
        return read(self.path, offset, limit) if self.path.exists() else ([], offset)


class Journal:
    def __init__(self, path: Path, durability: str = "process"):
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}")
        self.path = path
        self.durability = durability
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _, end, self.corrupt_records = scan(path.read_bytes())
        self.torn_bytes = os.fstat(self.fd).st_size - end
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
