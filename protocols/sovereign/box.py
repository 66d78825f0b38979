"""An inspection box on one router: applies the regulator's rules, exports flow records.

It keeps a connection to the regulator (``rules.PORT``), applies every rule set it is sent
(nftables and an iptables chain, ``rules.nft``/``rules.iptables``) and acknowledges it; a rule
set the kernel refuses leaves the last one in force. Without its regulator it keeps its last
rules and lets everything else pass, as deployed boxes bypass on failure, and tries again
every ``RETRY_S``. Every ``EXPORT_S`` it exports the flows its record set holds that it has
not exported yet (when seen, source, destination, protocol; ``rules.recorder``: attempts its
rules stopped included) to ``flows.jsonl``: the collector the architecture joins with the
subscriber register.
``status.json`` says what it holds.

    python -m protocols.sovereign.box CONFIG.json
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nftables import Nftables  # Debian's python3-nftables (libnftables)

from .rules import (
    CHAIN,
    PORT,
    RECORD_S,
    RECORD_SLOTS,
    RECORDS,
    Place,
    Rules,
    RulesError,
    iptables,
    nft,
    recorder,
)

RETRY_S = 0.5
EXPORT_S = 0.5
# a flow's entry begun again at least this long after its last record is a record of its own:
# nft -j lists the seconds an entry has left in whole seconds, so a shorter gap is noise
RECORD_GAP_S = 2.0
HEARD_S = 3.0  # a regulator silent this long is taken for gone


def kernel_apply(rules: Rules, place: Place, first: bool) -> None:
    """Put ``rules`` in force on this router (RuntimeError if the kernel refuses). The first
    time, jumps a box before this one (on a router restored after a crash) left are removed,
    so that there is one of each."""
    if first:
        for intf in place.watched:
            for way in ("-i", "-o"):
                while subprocess.run(["iptables", "-w", "-D", "FORWARD", way, intf, "-j",
                                      CHAIN], capture_output=True).returncode == 0:
                    pass
    for argv, text in ((["nft", "-f", "-"], nft(rules, place)),
                       (["iptables-restore", "-w", "--noflush"], iptables(rules, place, first))):
        done = subprocess.run(argv, input=text, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]}: {done.stderr.strip()[:200]}")


def kernel_record(place: Place) -> None:
    """Start noting this router's flows (anew: a box restarted after a crash exports again)."""
    done = subprocess.run(["nft", "-f", "-"], input=recorder(place), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nft: {done.stderr.strip()[:200]}")


def kernel_records(nft) -> str:
    """The record set as nftables lists it (JSON), through libnftables in this process
    (``nft``, JSON output set): a box lists it twice a second, and an ``nft`` program each
    time cost a 163-router graph half a core and the delay path its punctuality at rest."""
    rc, out, err = nft.cmd(f"list set inet {RECORDS} flows")
    if rc != 0:
        raise OSError(err.strip()[:200])
    return out


class Box:
    def __init__(self, place: Place, regulator: str, directory: Path,
                 apply: Callable[[Rules, Place, bool], None] = kernel_apply, port: int = PORT):
        self.place, self.regulator, self.directory = place, regulator, directory
        self.port = port
        self.apply = apply
        self.rules = Rules()
        self.hooked = False
        self.heard = 0.0
        self.refused = 0
        self.exported: dict[tuple, float] = {}  # flow -> when its record set entry began
        self.full, self.unreadable = False, 0

    def save_status(self) -> None:
        tmp = self.directory / f".{self.place.router}.status.tmp"
        tmp.write_text(json.dumps({"version": self.rules.version, "heard": self.heard,
                                   "refused": self.refused, "pid": os.getpid(),
                                   "records_full": self.full,
                                   "records_unreadable": self.unreadable}))
        os.replace(tmp, self.directory / f"{self.place.router}.status.json")

    def take(self, line: bytes) -> None:
        """One line from the regulator: a keepalive, or a rule set to apply."""
        self.heard = time.time()
        if line.strip() in (b"", b"{}"):
            return
        try:
            rules = Rules.loads(line.decode())
            if rules.version > self.rules.version:
                self.apply(rules, self.place, not self.hooked)
                self.hooked, self.rules = True, rules
        except (RulesError, RuntimeError, OSError, UnicodeDecodeError) as e:
            self.refused += 1
            print(f"box {self.place.router}: kept version {self.rules.version}: {e}",
                  flush=True)

    def session(self) -> None:
        """One connection to the regulator, until it breaks or goes silent."""
        with socket.create_connection((self.regulator, self.port), timeout=HEARD_S) as s:
            s.settimeout(HEARD_S)
            stream = s.makefile("rb")
            while True:
                s.sendall(json.dumps({"box": self.place.router,
                                      "have": self.rules.version}).encode() + b"\n")
                have = self.rules.version
                while self.rules.version == have:
                    line = stream.readline()
                    if not line:
                        return
                    self.take(line)
                    self.save_status()
                    if line.strip() not in (b"", b"{}") and self.rules.version == have:
                        time.sleep(RETRY_S)  # refused: say again, a while later, what it holds
                        break

    def run(self) -> None:
        kernel_record(self.place)
        threading.Thread(target=self.export_forever, daemon=True).start()
        self.save_status()
        while True:
            with contextlib.suppress(OSError):  # gone or silent: keep the rules, retry
                self.session()
            self.save_status()
            time.sleep(RETRY_S)

    # -- flow export ---------------------------------------------------------------------
    def export_forever(self) -> None:
        nft = Nftables()  # this thread's own context
        nft.set_json_output(True)
        while True:
            try:
                self.export(kernel_records(nft), time.time())
            except Exception as e:  # noqa: BLE001 - the records must outlive one bad listing
                print(f"box {self.place.router}: no export: {e!r}", flush=True)
            time.sleep(EXPORT_S)

    def export(self, listing: str, now: float) -> int:
        """Append the flows of ``listing`` (the record set, as ``nft -j`` lists it) not
        exported yet: a flow again once a new connection began its entry anew (an attempt
        the rules then stopped included), ``RECORD_GAP_S`` or more after its last record."""
        new, held = [], 0
        for item in json.loads(listing).get("nftables", []):
            for entry in item.get("set", {}).get("elem", []):
                held += 1
                entry = entry.get("elem", entry) if isinstance(entry, dict) else {}
                try:
                    src, dst, proto = entry["val"]["concat"]
                except (KeyError, TypeError, ValueError):
                    self.unreadable += 1
                    continue
                began = now - RECORD_S + entry.get("expires", RECORD_S)
                flow = (str(proto), src, dst)
                if began - self.exported.get(flow, -RECORD_S) >= RECORD_GAP_S:
                    self.exported[flow] = began
                    new.append({"t": now, "proto": flow[0], "src": src, "dst": dst,
                                "box": self.place.router})
        self.full = held >= RECORD_SLOTS  # new flows go unrecorded: its status says so
        if new:  # one write: a reader sees whole batches (and skips a line cut short)
            data = "".join(json.dumps(r) + "\n" for r in new).encode()
            fd = os.open(self.directory / f"{self.place.router}.flows.jsonl",
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return len(new)


def main() -> None:
    config_path = Path(sys.argv[1])
    config = json.loads(config_path.read_text())
    place = Place(config["router"], config["border"], tuple(config["watched"]),
                  config.get("region", ""))
    Box(place, config["regulator"], config_path.parent).run()


if __name__ == "__main__":
    main()
