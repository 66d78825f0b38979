"""A FLOW_REQUEST handled in C is handled as ``Authority.flow`` handles it: the same datagrams
(good ones, forged, stale, from before the start, unknown senders, replays, old sessions,
malformed) given to a real Authority (loopback, no network) and to ``fastpath.FlowServer``
over a copy of its policy give the same rejections, the same answers (both signed with the
gateway's key) and the same admission-log rows."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.registered import codec, journal
from protocols.registered.authority import Authority
from protocols.registered.fastpath import CompiledPolicy, FlowServer
from protocols.registered.identity import issue
from protocols.registered.messages import Type
from protocols.registered.registry import Gateway, Registry

BASE = 0xC6130000
GATEWAYS = {1: os.urandom(32), 2: os.urandom(32)}
DEVICES = [(0xC6138000, 20)]  # a farm's block: its flows are the Python path's


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("authority")
    people = [issue(f"NID-{k:05d}", f"Person {k}") for k in range(1, 7)]
    Registry.create(d / "r.db", [Gateway(g, f"a{g}", "north" if g == 1 else "south", key,
                                         0x7F000001) for g, key in GATEWAYS.items()],
                    people, 5000).close()
    auth = Authority(d / "r.db", "127.0.0.1", d / "admin.sock", port=0, devices=DEVICES)
    for k in range(1, 7):
        auth.policy.bind(k, BASE + k, 1 + k % 2)
    auth.policy.revoked.add(5)
    auth.policy.blocked.append((BASE + 6, 32))
    compiled = CompiledPolicy.of(auth.policy)
    server = FlowServer(compiled, 12345, codec.STARTED_US, GATEWAYS,
                        dict.fromkeys(GATEWAYS, 0x7F000001), DEVICES)
    yield auth, server, {}  # the senders' counters, from example to example
    auth.sock.close()
    auth.admin.close()


datagram = st.fixed_dictionaries({
    "sender": st.sampled_from([1, 1, 2, 2, 3]),
    "session": st.sampled_from(["same"] * 6 + ["newer", "older"]),
    "counter": st.sampled_from(["next", "next", "next", "next", "again", "far"]),
    "skew_us": st.sampled_from([0, 0, 0, -3_000_000, 7_000_000, -9_000_000]),
    "src": st.sampled_from([BASE + k for k in range(0, 9)] + [0xC6138001]),
    "dst": st.sampled_from([BASE + k for k in range(0, 9)] + [0xCB00710A]),
    "proto": st.sampled_from([6, 17, 1, 47]),
    "flags": st.sampled_from([0, 1, 2, 3]),
    "damage": st.sampled_from([None, None, None, None, "hmac", "magic", "length"])})


def encode(d: dict, last: dict) -> bytes:
    """``last``: each sender's session and counter so far ("newer" starts a session, "older"
    speaks in the one before; "next" follows the counter, "again" repeats it, "far" jumps
    past the replay window)."""
    session, count = last.get(d["sender"], (10, 0))
    if d["session"] == "newer":
        session, count = session + 1, 0
    counter = count + {"next": 1, "again": 0, "far": 2000}[d["counter"]]
    last[d["sender"]] = session, counter
    session -= d["session"] == "older"
    key = codec.Key(GATEWAYS.get(d["sender"], b"k" * 32))
    data = bytearray(codec.encode(Type.FLOW_REQUEST, d["sender"], session, counter,
                                  (7, d["src"], d["dst"], d["proto"], d["flags"], 40000, 443, 0,
                                   bytes(16)), key, timestamp=codec.now_us() + d["skew_us"]))
    if d["damage"] == "hmac":
        data[-1] ^= 1
    elif d["damage"] == "magic":
        data[0] = ord("X")
        data[-32:] = key.sign(bytes(data[:-32]))
    elif d["damage"] == "length":
        data[29] += 1
        data[-32:] = key.sign(bytes(data[:-32]))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(datagram, min_size=1, max_size=30), st.booleans())
def test_the_c_path_rejects_answers_and_logs_as_the_python_path(pair, datagrams, repeat):
    auth, server, last = pair
    sent = [encode(d, last) for d in datagrams]
    for data in sent + (sent[:3] if repeat else []):  # and some of them again: replays
        rows: list = []
        try:
            python, why = auth.flow(data, rows), "answered"
        except codec.Rejected as e:
            python, why = b"", e.args[0]
        verdict, answer, record = server.flow(data, rows[0].time if rows else 0.0,
                                              codec.now_us())
        if verdict == "to python":  # a device's flow: the Python path checks its token, and
            assert data[36:40] == (0xC6138001).to_bytes(4, "big") and not data[45] & 1
            assert server.authenticate(data, codec.now_us()) == why  # the sender's window
            continue
        assert verdict == why, (verdict, why)
        if why != "answered":
            continue
        kind = codec.peek(answer)[0]
        assert kind == codec.peek(python)[0] and codec.Key(GATEWAYS[data[7]]).verify(answer)
        assert codec.body(kind, answer) == codec.body(kind, python)
        assert journal.unpack(record, 0)[0] == rows[0]
        assert server.last_seen(data[7]) == rows[0].time


def test_a_batch_is_logged_before_it_is_answered_and_the_rest_goes_to_python(pair, tmp_path):
    """Over loopback: three requests answered after their records are in the journal; a
    keepalive handed back; a datagram from another address than its gateway's dropped."""
    import socket

    auth, server, last = pair
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gateway.bind(("127.0.0.1", 0))
    gateway.settimeout(2)
    elsewhere = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere.bind(("127.0.0.2", 0))
    path = tmp_path / "journal"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    before = server.counts()
    key = codec.Key(GATEWAYS[1])
    session, counter = last.get(1, (10, 0))
    requests = [codec.encode(Type.FLOW_REQUEST, 1, session + 1, k, (k, BASE + 2, BASE + 4, 6, 0,
                                                                    40000, 443, 0, bytes(16)),
                             key) for k in (1, 2, 3)]
    last[1] = session + 1, 3
    keepalive = codec.encode(Type.KEEPALIVE, 1, session + 1, 4, (0,), key)
    for data in requests:
        gateway.sendto(data, listener.getsockname())
    gateway.sendto(keepalive, listener.getsockname())
    elsewhere.sendto(requests[0], listener.getsockname())
    got, rest = 0, []
    while got < 5:
        n, more = server.serve(listener, fd, False)
        got, rest = got + n, rest + more
    answers = sorted((gateway.recv(4096) for _ in requests), key=lambda a: a[32:36])
    os.close(fd)
    assert [data for data, _ in rest] == [keepalive]
    assert rest[0][1] == gateway.getsockname()
    assert [codec.body(Type.GRANT, a)[0] for a in answers] == [1, 2, 3]
    assert all(key.verify(a) and a[3] == Type.GRANT for a in answers)
    rows = journal.read(path)[0]
    assert [(r.src, r.dst, r.granted) for r in rows] == [(BASE + 2, BASE + 4, True)] * 3
    after = server.counts()
    assert after["granted"] - before.get("granted", 0) == 3
    assert after["not from its gateway's address"] - before.get(
        "not from its gateway's address", 0) == 1


def test_answers_to_gateways_taking_turns_each_reach_their_own(pair, tmp_path):
    """Answers go out a run per gateway (one send the kernel cuts up): runs of one, of two,
    interleaved, each answer to the gateway that asked."""
    import socket

    auth, server, last = pair
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    fd = os.open(tmp_path / "journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sockets = {}
    for g in (1, 2):
        sockets[g] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets[g].bind(("127.0.0.1", 0))
        sockets[g].settimeout(2)
    order = [1, 1, 2, 1, 2, 2, 2, 1]
    for g in (1, 2):  # a session of its own for each
        last[g] = last.get(g, (10, 0))[0] + 1, 0
    for k, g in enumerate(order):
        session, counter = last[g][0], last[g][1] + 1
        last[g] = session, counter
        sockets[g].sendto(codec.encode(Type.FLOW_REQUEST, g, session, counter,
                                       (100 + k, BASE + 2 if g == 1 else BASE + 1, BASE + 4, 6,
                                        0, 40000, 443, 0, bytes(16)), codec.Key(GATEWAYS[g])),
                          listener.getsockname())
    got = 0
    while got < len(order):
        got += server.serve(listener, fd, False)[0]
    os.close(fd)
    for g in (1, 2):
        answers = [sockets[g].recv(4096) for _ in range(order.count(g))]
        assert all(codec.Key(GATEWAYS[g]).verify(a) for a in answers)
        assert sorted(codec.body(Type.GRANT, a)[0] for a in answers) == [
            100 + k for k, x in enumerate(order) if x == g]
