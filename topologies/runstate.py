"""Where a run keeps its files, and how its processes are recognised after a crash.

Every process a run starts (node shells, routing daemons, delay daemons, servers, clients)
inherits the environment variable ``SPLINTERLAB_RUN=<run id>``, because the run sets it before
Mininet spawns anything. ``splinterlab clean`` finds leftovers by that mark even after the run
was killed with SIGKILL, so it never needs to guess from process names.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path("/run/splinterlab")
DEVICE_PREFIX = "vx"  # + a run's tag + a number: its tunnel devices on a server
SOCKETS_ROOT = Path("/run/splinterlab-sockets")  # on another server: a run's Unix sockets
MARKER = "SPLINTERLAB_RUN"
SERVER_MARK = "SPLINTERLAB_SERVER"  # on a test bed server's sshd: its namespace is the server's


@dataclass(frozen=True)
class RunState:
    run_id: str

    @property
    def dir(self) -> Path:
        return STATE_ROOT / self.run_id

    @property
    def tag(self) -> str:
        """Six hex digits naming the run where names are short (a server's tunnel devices)."""
        return f"{zlib.crc32(self.run_id.encode()):08x}"[:6]

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @classmethod
    def create(cls) -> RunState:
        run = cls(f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        STATE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        run.dir.mkdir(mode=0o755)
        run.record(pid=os.getpid(), started=time.time())
        return run

    def record(self, **fields: object) -> None:
        """Merge fields into the manifest (atomically: a kill -9 never leaves half a file);
        nothing if the run has been swept away (``splinterlab clean`` from elsewhere)."""
        if not self.dir.is_dir():
            return
        data = self.read()
        data.update(fields)
        tmp = self.manifest.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(self.manifest)
        except FileNotFoundError:
            pass

    def read(self) -> dict:
        try:
            return json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return {}

    def subdir(self, *parts: str, owner: str | None = None) -> Path:
        path = self.dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        if owner:
            shutil.chown(path, owner, owner)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def runs() -> list[RunState]:
    if not STATE_ROOT.is_dir():
        return []
    return [RunState(p.name) for p in sorted(STATE_ROOT.iterdir()) if p.is_dir()]
