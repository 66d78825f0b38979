"""Shared test settings: the one "needs root" marker, and a clean slate for integration tests."""

from __future__ import annotations

import os
import shutil

import pytest

ROOT = os.geteuid() == 0 and shutil.which("mnexec") is not None


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected: only what will run counts
def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs root and Mininet: it builds real network namespaces "
                            "(run 'sudo make test')")
    config.builds_networks = False
    for item in items:
        if "needs_root" in item.keywords:
            if ROOT:
                config.builds_networks = True
            else:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def clean_slate(request):
    """Integration tests start from `splinterlab clean`, never from a previous run's debris.
    A session of unit tests alone leaves a running experiment alone."""
    if request.config.builds_networks:
        from topologies import cleanup

        cleanup.clean()
    yield

