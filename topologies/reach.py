"""Hosts run as users of their own, yet run this project's code (its probers, its
registration client) from this repository and its .venv. A clone in a private directory (a
home of mode 0700 or 0750) would hide it from them. Every directory above the code that
others cannot search gets one POSIX ACL entry for the hosts' group: search only (no listing,
no reading), taken away again when the run ends (or by ``splinterlab clean``). Where the
filesystem has no ACLs (a VM's 9p share), the directory is made searchable by others instead
(o+x, still no listing) and its mode is put back afterwards, from a note in /run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

HOSTS_GID = 20000  # every host's user is in this group, and nothing else is
CODE = Path(__file__).resolve().parent.parent
OPENED = Path("/run/splinterlab-opened.json")  # directory -> the mode to put back


class ReachError(RuntimeError):
    """The code is out of the hosts' reach and cannot be brought into it."""


def hidden(path: Path = CODE) -> list[Path]:
    """The directories at and above ``path`` that others cannot search."""
    return [d for d in [path, *path.parents] if not d.stat().st_mode & stat.S_IXOTH]


def grant(path: Path = CODE) -> list[Path]:
    dirs = hidden(path)
    if dirs and shutil.which("setfacl") is None:
        raise ReachError(f"hosts run as users of their own and cannot reach {path} ({dirs[0]} "
                         "is private); install the 'acl' package (scripts/setup.sh does), or "
                         "clone somewhere others can enter")
    opened = _opened()
    for d in dirs:
        if subprocess.run(["setfacl", "-m", f"g:{HOSTS_GID}:x", str(d)],
                          capture_output=True).returncode != 0:  # no ACLs here
            opened.setdefault(str(d), d.stat().st_mode & 0o7777)
            os.chmod(d, d.stat().st_mode | stat.S_IXOTH)
    if opened:
        OPENED.write_text(json.dumps(opened))
    return dirs


def _opened() -> dict[str, int]:
    try:
        return json.loads(OPENED.read_text())
    except (OSError, ValueError):
        return {}


def revoke(path: Path = CODE) -> None:
    """Take back what ``grant`` gave (harmless where it gave nothing)."""
    for d, mode in _opened().items():
        with contextlib.suppress(OSError):
            os.chmod(d, mode)
    OPENED.unlink(missing_ok=True)
    if shutil.which("setfacl") is None:
        return
    for d in [path, *path.parents]:
        subprocess.run(["setfacl", "-x", f"g:{HOSTS_GID}", str(d)], capture_output=True)
        entries = subprocess.run(["getfacl", "-cp", str(d)], capture_output=True,
                                 text=True).stdout.split()
        if entries and all(e.startswith(("user::", "group::", "other::", "mask::"))
                           for e in entries):
            subprocess.run(["setfacl", "-b", str(d)], capture_output=True)  # no "+" left
