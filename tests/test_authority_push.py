"""What the authority waits for before a change is in force: every gateway that is alive
acknowledged it. A gateway silent for longer than a few keepalives (crashed, cut off, or the
latency experiment's synthetic load gateway, which never acknowledges) is not waited for: it
gets a snapshot when it is heard from again. Right after the authority starts, before anyone
was heard, every gateway is waited for (its first keepalive is a second away)."""

from __future__ import annotations

import time

import pytest

from protocols.registered.authority import Authority
from protocols.registered.authority_push import SILENT_S
from protocols.registered.identity import issue
from protocols.registered.registry import Gateway, Registry

KEY = b"g" * 32
LIVE, MUTE = 1, 99


@pytest.fixture
def authority(tmp_path):
    Registry.create(tmp_path / "r.db", [Gateway(LIVE, "a1", "north", KEY, 0x7F000001),
                                        Gateway(MUTE, "load@c1", "load", KEY, 0x7F000001)],
                    [issue("NID-1", "Ada Okafor")], 5000).close()
    auth = Authority(tmp_path / "r.db", "127.0.0.1", tmp_path / "admin.sock", port=0)
    yield auth
    auth.sock.close()
    auth.admin.close()


def test_a_gateway_is_waited_for_right_after_the_start_before_anyone_was_heard(authority):
    auth = authority
    auth.commit_and_push(flush=True)  # the authority just started: nobody heard from yet
    assert auth.unacked() == len(auth.outgoing) > 0
    auth.started = time.time() - SILENT_S - 1  # then nothing, for longer than SILENT_S
    assert auth.unacked() == 0


def test_a_change_is_in_force_once_every_live_gateway_has_it(authority):
    auth = authority
    auth.started = time.time() - SILENT_S - 1
    auth.last_seen[LIVE] = time.time()  # a1 keeps alive; the mute one never said anything
    auth.commit_and_push(flush=True)
    assert {gateway for gateway, *_ in auth.outgoing} == {LIVE, MUTE}  # both are sent it
    assert auth.unacked() == sum(1 for gateway, *_ in auth.outgoing if gateway == LIVE) > 0
    auth.acknowledged(LIVE, auth.seq[LIVE])
    assert auth.unacked() == 0
    auth.last_seen[MUTE] = time.time()  # heard from: waited for again
    assert auth.unacked() > 0
    auth.last_seen[LIVE] = auth.last_seen[MUTE] = time.time() - SILENT_S - 1
    assert auth.unacked() == 0
