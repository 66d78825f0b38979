"""The authority with compiled decisions, over loopback (no network): flows answered by the C
path and messages by the Python path in one numbering; a replay refused whichever path saw
the first; an operator's revocation in force at the next flow; every decision in the
journal; the counters of both paths in the operator's status."""

from __future__ import annotations

import socket
import time

import pytest

from protocols.registered import codec, journal
from protocols.registered.authority import Authority
from protocols.registered.authority_operator import Job
from protocols.registered.identity import issue
from protocols.registered.messages import Reason, Type
from protocols.registered.registry import Gateway, Registry

KEY = b"k" * 32
HOME, PEER = 0xC6130102, 0xC6130103  # two people's addresses at gateway 1


@pytest.fixture
def setup(tmp_path):
    registry = Registry.create(tmp_path / "r.db", [Gateway(1, "a1", "north", KEY, 0x7F000001)],
                               [issue("NID-1", "Ada Okafor"), issue("NID-2", "Bela Sato")], 5000)
    for nid, address in (("NID-1", HOME), ("NID-2", PEER)):
        registry.bind(registry.add_identity(nid, time.time()), address, 1, time.time())
    registry.close()
    auth = Authority(tmp_path / "r.db", "127.0.0.1", tmp_path / "admin.sock", port=0,
                     decisions="compiled")
    gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gateway.bind(("127.0.0.1", 0))
    gateway.settimeout(2)
    yield auth, gateway
    auth.sock.close()
    auth.admin.close()
    gateway.close()


def test_both_paths_answer_in_one_numbering_and_the_operator_is_obeyed(setup):
    auth, gateway = setup
    sender, key = codec.Sender(), codec.Key(KEY)

    def ask(msg_type: Type, body: tuple, again: bytes | None = None) -> tuple[bytes, bytes]:
        session, counter = sender.next(0)
        data = again or codec.encode(msg_type, 1, session, counter, body, key)
        gateway.sendto(data, auth.sock.getsockname())
        auth.compiled_batch()
        return data, gateway.recv(4096) if again is None else b""

    flow = (9, HOME, PEER, 6, 0, 40000, 443, 0, bytes(16))
    request, grant = ask(Type.FLOW_REQUEST, flow)
    _, ack = ask(Type.KEEPALIVE, (0,))
    assert grant[3] == Type.GRANT and ack[3] == Type.KEEPALIVE_ACK
    assert key.verify(grant) and key.verify(ack)
    numbers = [codec.peek(m)[2:4] for m in (grant, ack)]  # (session, counter)
    assert numbers[0][0] == numbers[1][0] and numbers[1][1] == numbers[0][1] + 1
    ask(Type.FLOW_REQUEST, flow, again=request)  # a replay: no answer
    assert auth.all_counters()["replay"] == 1

    job = Job({"op": "revoke", "identity": 2})
    auth.jobs.put(job)
    auth.run_jobs()
    assert job.answer["ok"], job.answer
    _, deny = ask(Type.FLOW_REQUEST, (10, HOME, PEER, 6, 0, 40001, 443, 0, bytes(16)))
    assert deny[3] == Type.DENY and codec.body(Type.DENY, deny)[8] == Reason.PEER_REVOKED
    rows = journal.read(auth.journal.path)[0]
    assert [(r.granted, r.reason) for r in rows] == [(True, Reason.OK),
                                                     (False, Reason.PEER_REVOKED)]
    counters = auth.all_counters()
    assert counters["granted"] == counters["denied"] == 1 and "answered" not in counters
