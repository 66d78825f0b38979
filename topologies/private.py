"""Files root writes for a host's user, in a directory that user owns.

The directory is the user's: whatever name root would write there, the user may have planted
first as a link to a file of root's (a gateway's code, the registry). So the file is created
under a fresh random name that must not exist (``O_EXCL``) and is never followed if it is a
link (``O_NOFOLLOW``), written, given to the user through its descriptor (never by path), and
only then renamed over the name asked for: a rename replaces a planted link itself, never
what it points to.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_private(path: Path, data: bytes, uid: int | None, mode: int = 0o600) -> None:
    """``data`` into ``path``, owned by ``uid`` (None: leave root's), with ``mode``."""
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        if uid is not None:
            os.fchown(fd, uid, uid)
        os.close(fd)
        os.replace(scratch, path)  # fails on a directory planted there: nothing is left
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        scratch.unlink(missing_ok=True)
        raise
