"""kill -9 of the authority during 1,000 registrations, then restart: every registration it
acknowledged is in the registry, and the run completes with one identity per person."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.needs_root


def test_acknowledged_registrations_survive_kill_9(tmp_path):
    helper = Path(__file__).with_name("authority_crash.py")
    out = subprocess.run(["unshare", "--net", sys.executable, str(helper), str(tmp_path)],
                         capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-1000:]
    result = json.loads(out.stdout)
    print(f"\n{result}")
    assert result["acknowledged"] >= 300 and result["in_flight_at_kill"] > 0
    assert result["missing"] == []
    assert result["found_after_restart"] == result["acknowledged"]
    assert result["identities_at_end"] == result["people_with_identity_at_end"] == 1000
