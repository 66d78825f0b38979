"""Helpers shared by the integration tests."""

from __future__ import annotations

import time


def run_and_expect(check, timeout: float, interval: float = 0.1):
    """Poll ``check()`` until it returns something truthy (returned) or time runs out (the
    last value is returned, so the caller's assertion shows what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
