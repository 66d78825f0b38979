"""The authority's parser under fuzzing: whatever bytes arrive, the only outcome is a counted
rejection (codec.Rejected), never another exception, and valid traffic is still decided."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.authority import Authority
from protocols.registry import Gateway, Registry

KEY = b"g" * 32
GW = 4


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    d = tmp_path_factory.mktemp("authority")
    Registry.create(d / "r.db", [Gateway(GW, "a1", "north", KEY, 0x7F000001)],
                    [("NID-1", "Ada Okafor")], 5000).close()
    auth = Authority(d / "r.db", "127.0.0.1", d / "admin.sock", port=0)
    auth.policy.bind(1, 0xC6130102, GW)
    yield auth
    auth.sock.close()
    auth.admin.close()


def valid(auth: Authority, request_id: int = 1) -> bytes:
    return codec.encode(codec.FLOW_REQUEST, GW, auth.nonces.next() + 10**9,
                        (request_id, 0xC6130102, 0xCB00710A, 6, 0, 80), codec.Key(KEY))


def rejected(auth: Authority, data: bytes) -> str:
    with pytest.raises(codec.Rejected) as e:
        auth.handle(data, [])
    return e.value.args[0]


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_random_datagrams_are_rejected(authority, data):
    rejected(authority, data)


@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_corrupted_valid_messages_are_rejected(authority, data):
    message = bytearray(valid(authority))
    position = data.draw(st.integers(0, len(message) - 1))
    message[position] ^= data.draw(st.integers(1, 255))
    rejected(authority, bytes(message))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_truncated_and_extended_messages_are_malformed(authority, data):
    message = valid(authority)
    cut = data.draw(st.integers(0, len(message) - 1))
    assert rejected(authority, message[:cut]) == "malformed"
    assert rejected(authority, message + b"\0" * (cut + 1)) == "malformed"


def test_forged_replayed_stale_and_unknown_senders(authority):
    good = valid(authority, 7)
    assert authority.handle(good, []) is not None
    assert rejected(authority, good) == "replay"
    forged = codec.encode(codec.FLOW_REQUEST, GW, authority.nonces.next() + 10**9,
                          (8, 0xC6130102, 0xCB00710A, 6, 0, 80), codec.Key(b"x" * 32))
    assert rejected(authority, forged) == "bad hmac"
    stranger = codec.encode(codec.FLOW_REQUEST, 99, 1, (9, 1, 2, 6, 0, 80), codec.Key(KEY))
    assert rejected(authority, stranger) == "unknown sender"
    stale = codec.encode(codec.FLOW_REQUEST, GW, authority.nonces.next() + 10**9,
                         (10, 0xC6130102, 0xCB00710A, 6, 0, 80), codec.Key(KEY),
                         timestamp=codec.now_us() - 60_000_000)
    assert rejected(authority, stale) == "stale"
    # a gateway may not send what only the authority sends
    grant = codec.encode(codec.GRANT, GW, authority.nonces.next() + 10**9, (1, 0, 1, 1),
                         codec.Key(KEY))
    assert rejected(authority, grant) == "unexpected type"


def test_still_deciding_after_all_that(authority):
    rows: list = []
    reply = authority.handle(valid(authority, 11), rows)
    assert codec.body(codec.GRANT, reply)[:2] == (11, codec.OK)
    assert rows and rows[0][2] == 1  # logged, with the identity
    assert time.time() - rows[0][0] < 5
