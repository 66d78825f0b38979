"""The regulator: the centre that pushes one rule set to every inspection box.

It serves boxes over TCP (``PORT``, newline-delimited JSON): a box says who it is and which
version it has; the regulator sends the current rule set whenever the box is behind, and the
box's next line acknowledges what it applied. The rule set is a file (``rules.json`` in its
directory) the operator's side replaces atomically; the regulator notices within ``POLL_S``.
``acks.json`` says which box holds which version, for whoever waits on a change to be in
force. A regulator that dies takes nothing with it: boxes keep their last rules.

    python -m protocols.sovereign.regulator DIRECTORY ADDRESS [PORT]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from .rules import PORT, Rules, RulesError

POLL_S = 0.05
# a keepalive after a silence drawn from this range: a rule set reaches every box at once, and
# a fixed period would keep every box's keepalive in step with every other's ever after (the
# delay path then serves them in one burst); the box gives its regulator up after 3 s
KEEPALIVE_S = (0.5, 1.0)
RULES, ACKS = "rules.json", "acks.json"


class Regulator:
    def __init__(self, directory: Path):
        self.directory = directory
        self.rules = Rules()
        self.seen: tuple[int, int] | None = None
        self.acks: dict[str, dict] = {}
        self.changed = asyncio.Event()

    def reload(self) -> None:
        """A newer rules.json, if there is one (a bad one is reported and ignored)."""
        path = self.directory / RULES
        try:
            stat = path.stat()
        except OSError:
            return
        seen = (stat.st_ino, stat.st_mtime_ns)  # a file replaced, however fast
        if seen == self.seen:
            return
        self.seen = seen
        try:
            rules = Rules.loads(path.read_text())
        except (OSError, RulesError) as e:
            print(f"regulator: ignored {path}: {e}", flush=True)
            return
        if rules.version > self.rules.version:
            self.rules = rules
            self.changed.set()
            self.changed = asyncio.Event()

    def record(self, box: str, version: int) -> None:
        self.acks[box] = {"version": version, "seen": time.time()}
        tmp = self.directory / f".{ACKS}.tmp"
        tmp.write_text(json.dumps(self.acks))
        os.replace(tmp, self.directory / ACKS)

    async def serve_box(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        box = ""
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), timeout=5.0)
                if not line:
                    return
                hello = json.loads(line)
                box, have = str(hello["box"]), int(hello["have"])
                self.record(box, have)
                while self.rules.version <= have:
                    changed = self.changed
                    try:
                        await asyncio.wait_for(changed.wait(),
                                               timeout=random.uniform(*KEEPALIVE_S))
                    except TimeoutError:
                        writer.write(b"{}\n")  # a keepalive: the box knows it is heard
                        await writer.drain()
                writer.write(self.rules.dumps().encode() + b"\n")
                await writer.drain()
        except (OSError, ValueError, KeyError, TimeoutError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def watch(self) -> None:
        while True:
            self.reload()
            await asyncio.sleep(POLL_S)


async def main(directory: Path, address: str, port: int = PORT) -> None:
    regulator = Regulator(directory)
    regulator.reload()
    server = await asyncio.start_server(regulator.serve_box, address, port)
    print(f"regulator: serving boxes on {address}:{port}", flush=True)
    async with server:
        await asyncio.gather(server.serve_forever(), regulator.watch())


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:4])))
