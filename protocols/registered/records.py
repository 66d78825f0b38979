"""What a registered run leaves for its results: the registry with keys and secrets removed,
and the admission log as CSV, the authority's decisions and what fail-open gateways decided
alone (their own journals), in time order."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from .journal import JournalReader
from .journal import read as read_journal
from .messages import PROTOCOLS, Reason, dotted
from .operator import Operator, OperatorError
from .registry import ADMISSION_COLUMNS, Registry, scrubbed_copy

CSV_COLUMNS = ["time", "gateway", "identity", "national_id", "src", "dst", "proto", "sport",
               "dport", "inbound", "renewal", "granted", "reason", "decided_by"]


def keep(dest: Path, operator: Operator, authority_dir: Path, gateway_dir: Path) -> list[Path]:
    """``registry.db`` and ``admissions.csv`` into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    db, source = dest / "registry.db", authority_dir / "registry.db"
    try:
        operator.checkpoint()  # the authority imports its journal and commits
    except OperatorError:  # down, or not answering: import what it journaled, reading
        registry = Registry(source)  # only (it may still be writing the journal)
        registry.import_journal(JournalReader(source.with_suffix(".journal")))
        registry.close()
    with scrubbed_copy(source, db) as copy:
        _add_gateway_records(copy, gateway_dir)
        _write_csv(copy, dest / "admissions.csv")
    return [db, dest / "admissions.csv"]


def _add_gateway_records(copy: sqlite3.Connection, gateway_dir: Path) -> None:
    for journal in sorted(gateway_dir.glob("*.journal")):
        rows, _ = read_journal(journal)  # the gateway may be writing it
        copy.executemany(f"INSERT INTO admissions ({ADMISSION_COLUMNS}) VALUES "
                         f"({', '.join('?' * len(ADMISSION_COLUMNS.split(', ')))})", rows)


def _write_csv(copy: sqlite3.Connection, csv_path: Path) -> None:
    names = {i: n for i, n in copy.execute("SELECT id, name FROM gateways")}
    with open(csv_path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for row in copy.execute(
                "SELECT a.time, a.gateway, a.identity, i.national_id, a.src, a.dst, a.proto,"
                " a.sport, a.dport, a.inbound, a.renewal, a.granted, a.reason, a.by_gateway "
                "FROM admissions a LEFT JOIN identities i ON i.id = a.identity "
                "ORDER BY a.time"):
            (when, gw, ident, nid, src, dst, proto, sport, dport, inbound, renewal, granted,
             why, by_gateway) = row
            out.writerow([f"{when:.6f}", names.get(gw, gw), ident or "", nid or "",
                          dotted(src), dotted(dst), PROTOCOLS.get(proto, proto), sport, dport,
                          inbound, renewal, granted, Reason(why).text,
                          "gateway" if by_gateway else "authority"])
