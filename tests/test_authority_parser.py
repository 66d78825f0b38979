"""The authority's parser under fuzzing: whatever bytes arrive, the only outcome is a counted
rejection (codec.Rejected), never another exception, and valid traffic is still decided."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.registered import codec
from protocols.registered.authority import Authority
from protocols.registered.codec import Sender
from protocols.registered.identity import issue
from protocols.registered.messages import Reason, Type
from protocols.registered.registry import Gateway, Registry

KEY = b"g" * 32
GW = 4
SENDER = Sender()


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    d = tmp_path_factory.mktemp("authority")
    Registry.create(d / "r.db", [Gateway(GW, "a1", "north", KEY, 0x7F000001)],
                    [issue("NID-1", "Ada Okafor")], 5000).close()
    auth = Authority(d / "r.db", "127.0.0.1", d / "admin.sock", port=0)
    auth.policy.bind(1, 0xC6130102, GW)
    yield auth
    auth.sock.close()
    auth.admin.close()


def valid(request_id: int = 1, key: bytes = KEY, sender: int = GW, **kw) -> bytes:
    session, counter = SENDER.next(sender)
    return codec.encode(Type.FLOW_REQUEST, sender, session, counter,
                        (request_id, 0xC6130102, 0xCB00710A, 6, 0, 40000, 80, 0, bytes(16)),
                        codec.Key(key), **kw)


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
    message = bytearray(valid())
    position = data.draw(st.integers(0, len(message) - 1))
    message[position] ^= data.draw(st.integers(1, 255))
    rejected(authority, bytes(message))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_truncated_and_extended_messages_are_malformed(authority, data):
    message = valid()
    cut = data.draw(st.integers(0, len(message) - 1))
    assert rejected(authority, message[:cut]) == "malformed"
    assert rejected(authority, message + b"\0" * (cut + 1)) == "malformed"


def test_forged_replayed_stale_and_unknown_senders(authority):
    good = valid(7)
    assert authority.handle(good, [])
    assert rejected(authority, good) == "replay"
    assert rejected(authority, valid(8, key=b"x" * 32)) == "bad hmac"
    assert rejected(authority, valid(9, sender=99)) == "unknown sender"
    assert rejected(authority, valid(10, timestamp=codec.now_us() - 60_000_000)) == "stale"
    # a gateway may not send what only the authority sends
    session, counter = SENDER.next(GW)
    grant = codec.encode(Type.GRANT, GW, session, counter,
                         (1, 0, 1, 2, 6, 0, 40000, 80, 0, 1, 1), codec.Key(KEY))
    assert rejected(authority, grant) == "unexpected type"


def test_still_deciding_after_all_that(authority):
    rows: list = []
    (reply,) = authority.handle(valid(11), rows)
    body = codec.body(Type.GRANT, reply)
    assert body[0] == 11 and body[2:5] == (0xC6130102, 0xCB00710A, 6)  # names the flow
    assert body[6:8] == (40000, 80)  # both its ports
    assert body[8] == Reason.OK
    assert rows and rows[0].identity == 1  # logged, with the identity
    assert time.time() - rows[0].time < 5


def test_one_challenge_per_address_however_many_are_asked_for(authority):
    """A flood of challenge requests holds one challenge per address, and only the newest
    one can be answered."""
    for k in range(1000):
        authority.challenge(GW, k, 0xC6130105, b"NID-9".ljust(16, b"\0"))
    assert sum(p.address == 0xC6130105 for p in authority.challenges.values()) == 1
    first, latest = authority.challenge(GW, 1, 0xC6130106, b"NID-9".ljust(16, b"\0")), \
        authority.challenge(GW, 2, 0xC6130106, b"NID-9".ljust(16, b"\0"))
    assert first[1] not in authority.challenges and latest[1] in authority.challenges


def test_a_shutdown_whose_essential_list_does_not_fit_one_message_is_refused(authority):
    answer = authority.operate({"op": "shutdown", "region": "north",
                                "allow": [f"203.0.{k}.0/24" for k in range(65)]})
    assert not answer["ok"] and "at most 64" in answer["error"]
    assert "north" not in authority.policy.shutdowns


def test_a_datagram_that_fails_half_way_leaves_no_write_and_holds_no_lock(tmp_path,
                                                                          monkeypatch):
    """What a registration wrote before a bug stopped it is undone at the end of its batch:
    left open, it would be committed by someone else's commit, and hold the registry's lock
    against the importer meanwhile."""
    Registry.create(tmp_path / "r.db", [Gateway(GW, "a1", "north", KEY, 0x7F000001)],
                    [issue("NID-1", "Ada Okafor")], 5000).close()
    auth = Authority(tmp_path / "r.db", "127.0.0.1", tmp_path / "admin.sock", port=0)

    def half_way(data: bytes, rows: list) -> list[bytes]:
        auth.registry.add_identity("NID-1", time.time())
        raise RuntimeError("a bug after the first write")

    monkeypatch.setattr(auth, "handle", half_way)
    auth.answer_batch([(b"", ("127.0.0.1", 1))])
    assert auth.counters["internal error"] == 1
    assert not auth.registry.db.in_transaction
    assert auth.registry.identity_of_person("NID-1") is None
    auth.sock.close()
    auth.admin.close()
