"""Shared test settings: the one "needs root" marker, and a clean slate for integration tests."""

from __future__ import annotations

import os
import shutil

import pytest

ROOT = os.geteuid() == 0 and shutil.which("mnexec") is not None


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs root and Mininet: it builds real network namespaces "
                            "(run 'sudo make test')")
    for item in items:
        if "needs_root" in item.keywords and not ROOT:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def clean_slate():
    """Integration tests start from `splinterlab clean`, never from a previous run's debris."""
    if ROOT:
        from topologies import cleanup

        cleanup.clean()
    yield

