"""The one bounded wait: poll a condition until it holds or time runs out.

Bring-up waits for daemons, sockets and routes; teardown for processes to die. Each such
wait asks a question again and again, never longer than its bound, and lets the question
itself raise when waiting has become pointless (the daemon it waits for has died).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How long a daemon may take to start before it is taken for hung. Generous: under make
# vmtest's software-emulated CPU a Python daemon starts many times slower than here (the
# authority once took over 15 s), and the waits for daemons report one that dies at once.
STARTUP_S = 60.0


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """The first truthy value of ``check()``, asked every ``interval`` s; once ``timeout`` s
    have passed, the last (falsy) answer, for the caller to name what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        left = deadline - time.monotonic()
        if value or left <= 0:
            return value
        time.sleep(min(interval, left))
