"""The control protocol: scapy layers and the struct codec agree byte for byte, both ways;
the codec's sessions and counters refuse replays."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.registered import codec, wire
from protocols.registered.messages import Action, Enrol, Reason, Type

KEY = codec.Key(b"k" * 32)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
ip = u32.map(lambda n: str(ipaddress.IPv4Address(n)))
text16 = st.binary(max_size=16).map(lambda b: b.rstrip(b"\0"))
b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
reason = st.sampled_from([int(r) for r in Reason])


def pad(b: bytes, n: int) -> bytes:
    return b + b"\0" * (n - len(b))


def n(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


# message type -> strategy of (scapy body layer, codec body tuple)
BODY = {
    Type.CHALLENGE_REQUEST: st.builds(
        lambda r, a, nid: (wire.ChallengeRequest(request_id=r, address=a, national_id=nid),
                           (r, n(a), pad(nid, 16))), u32, ip, text16),
    Type.CHALLENGE: st.builds(lambda r, c: (wire.Challenge(request_id=r, challenge=c), (r, c)),
                              u32, b16),
    Type.ENROL: st.builds(
        lambda r, op, a, nid, c, p: (
            wire.Enrolment(request_id=r, op=op, address=a, national_id=nid, challenge=c,
                           proof=p), (r, op, n(a), pad(nid, 16), c, p)),
        u32, st.sampled_from([int(e) for e in Enrol]), ip, text16, b16, b32),
    Type.ENROL_ACK: st.builds(
        lambda r, why, i: (wire.EnrolAck(request_id=r, reason=why, identity=i), (r, why, i)),
        u32, reason, u32),
    Type.FLOW_REQUEST: st.builds(
        lambda r, s, d, p, f, sp, port, dev, token: (
            wire.FlowRequest(request_id=r, src=s, dst=d, proto=p, flags=f, sport=sp,
                             dport=port, device=dev, token=token),
            (r, n(s), n(d), p, f, sp, port, dev, token)),
        u32, ip, ip, st.integers(0, 255), st.integers(0, 3), u16, u16, u32, b16),
    Type.GRANT: st.builds(
        lambda r, ses, s, d, p, f, sp, port, why, ttl, i: (
            wire.Decision(request_id=r, gateway_session=ses, src=s, dst=d, proto=p, flags=f,
                          sport=sp, dport=port, reason=why, ttl_ms=ttl, identity=i),
            (r, ses, n(s), n(d), p, f, sp, port, why, ttl, i)),
        u32, u64, ip, ip, st.integers(0, 255), st.integers(0, 3), u16, u16, reason, u32, u32),
    Type.POLICY_ACK: st.builds(lambda s: (wire.Applied(seq=s), (s,)), u32),
    Type.KEEPALIVE: st.builds(lambda c: (wire.Applied(seq=c), (c,)), u32),
    Type.SYNC: st.builds(lambda s: (wire.Applied(seq=s), (s,)), u32),
}
ITEMS = st.lists(st.tuples(ip, st.integers(0, 32), u32), max_size=8)


@settings(max_examples=300)
@given(st.sampled_from(sorted(BODY)).flatmap(lambda t: st.tuples(st.just(t), BODY[t])),
       u32, u64, u32, u64)
def test_codec_and_scapy_build_the_same_bytes(typed, sender, session, counter, timestamp):
    msg_type, (layer, fields) = typed
    ours = codec.encode(msg_type, sender, session, counter, fields, KEY, timestamp=timestamp)
    unsigned = bytes(wire.Header(type=int(msg_type), sender=sender, session=session,
                                 counter=counter, timestamp=timestamp) / layer)
    assert ours[:-codec.SIGNATURE] == unsigned
    # and scapy dissects what the codec wrote, signature included
    parsed = wire.Header(ours)
    assert (parsed.type, parsed.sender, parsed.session, parsed.counter) == (
        msg_type, sender, session, counter)
    assert parsed[wire.Signature].hmac == ours[-codec.SIGNATURE:]
    assert codec.body(msg_type, ours) == fields


@settings(max_examples=150)
@given(u32, st.sampled_from([int(a) for a in Action]), st.integers(0, 1), u16, u16, ITEMS)
def test_policy_with_items_agrees(seq, action, flags, part, parts, items):
    layer = wire.Policy(seq=seq, action=action, flags=flags, part=part, parts=parts,
                        items=[wire.Item(address=a, length=ln, identity=i) for a, ln, i in items])
    ints = tuple((n(a), ln, i) for a, ln, i in items)
    ours = codec.encode(Type.POLICY, 0, 5, 6, (seq, action, flags, part, parts, len(ints)), KEY,
                        items=ints, timestamp=1)
    assert ours[:-32] == bytes(wire.Header(type="POLICY", session=5, counter=6, timestamp=1)
                               / layer)
    assert codec.body(Type.POLICY, ours) == (seq, action, flags, part, parts, len(ints), ints)


def test_flow_request_exact_bytes():
    data = codec.encode(Type.FLOW_REQUEST, 3, 1, 2, (7, 0xC6130102, 0xCB00710A, 6, 0, 40000,
                                                     80, 9, b"t" * 16), KEY, timestamp=3)
    assert data[:-32].hex() == ("534c0205" "00000003" "0000000000000001" "00000002"
                                "0000000000000003" "0026" "0000"
                                "00000007" "c6130102" "cb00710a" "06" "00" "9c40" "0050"
                                "00000009" + "74" * 16)


def test_open_message_checks_sender_hmac_time_session_and_counter():
    replays: dict[int, codec.Replay] = {}
    keys = {3: KEY}.get
    good = codec.encode(Type.KEEPALIVE, 3, 100, 10, (1,), KEY)
    assert codec.open_message(good, keys, replays).body == (1,)
    newer = codec.encode(Type.KEEPALIVE, 3, 200, 1, (1,), KEY)  # the sender restarted
    assert codec.open_message(newer, keys, replays).session == 200
    for data, why in [
        (newer, "replay"),
        (good, "old session"),
        (codec.encode(Type.KEEPALIVE, 9, 200, 2, (1,), KEY), "unknown sender"),
        (codec.encode(Type.KEEPALIVE, 3, 200, 3, (1,), codec.Key(b"x" * 32)), "bad hmac"),
        (codec.encode(Type.KEEPALIVE, 3, 200, 4, (1,), KEY, timestamp=1), "stale"),
        (good[:-1], "malformed"),
        (b"XX" + good[2:], "malformed"),
    ]:
        try:
            codec.open_message(data, keys, replays)
        except codec.Rejected as e:
            assert e.args[0] == why
        else:
            raise AssertionError(f"accepted: {why}")


def test_precomputed_pads_are_hmac_sha256():
    import hashlib
    import hmac

    for secret in (b"", b"k" * 32, b"x" * 64, b"long" * 40):
        data = b"message" * 9
        assert codec.Key(secret).sign(data) == hmac.digest(secret, data, hashlib.sha256)


def test_the_replay_window_is_1024_messages_of_a_session():
    w = codec.Replay()
    assert all(w.accept(1, c) is None for c in (5, 3, 4, 2000, 1999))
    assert w.accept(1, 4) == "replay" and w.accept(1, 2000) == "replay"
    assert w.accept(1, 5) == "replay"  # more than 1024 behind the highest
    assert w.accept(1, 977) is None    # 1023 behind: still inside the window


def test_sessions_grow_with_each_start_and_counters_per_receiver():
    first, second = codec.Sender(), codec.Sender()
    assert second.session > first.session
    assert [first.next(1)[1], first.next(1)[1], first.next(2)[1]] == [1, 2, 1]


def test_a_control_socket_holds_a_burst_in_flight():
    """Root (the daemons are) gets CONTROL_BUFFER each way whatever the system's maximum:
    thousands of questions may sit in the emulated links' delay at once."""
    import os
    import socket

    from protocols.registered import codec

    sock = codec.control_socket("127.0.0.1", 0)
    try:
        sizes = [sock.getsockopt(socket.SOL_SOCKET, o) for o in (socket.SO_SNDBUF,
                                                                   socket.SO_RCVBUF)]
    finally:
        sock.close()
    floor = codec.CONTROL_BUFFER if os.geteuid() == 0 else 200_000
    assert min(sizes) >= floor, sizes
