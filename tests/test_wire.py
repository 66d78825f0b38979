"""The control protocol: scapy layers and the struct codec agree byte for byte, both ways."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import codec, wire

KEY = codec.Key(b"k" * 32)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
ip = u32.map(lambda n: str(ipaddress.IPv4Address(n)))
text16 = st.binary(max_size=16).map(lambda b: b.rstrip(b"\0"))
text40 = st.binary(max_size=40).map(lambda b: b.rstrip(b"\0"))
cred = st.binary(min_size=16, max_size=16)
reason = st.sampled_from(sorted(wire.REASONS))


def pad(b: bytes, n: int) -> bytes:
    return b + b"\0" * (n - len(b))


# message type -> strategy of (scapy body layer, codec body tuple)
BODY = {
    codec.REGISTER: st.builds(
        lambda r, a, n, name: (wire.Register(request_id=r, address=a, national_id=n,
                                             real_name=name),
                               (r, int(ipaddress.IPv4Address(a)), pad(n, 16), pad(name, 40))),
        u32, ip, text16, text40),
    codec.REGISTER_ACK: st.builds(
        lambda r, s, i, c: (wire.RegisterAck(request_id=r, status=s, identity=i, credential=c),
                            (r, s, i, c)), u32, reason, u32, cred),
    codec.BIND: st.builds(
        lambda r, a, i, c: (wire.Bind(request_id=r, address=a, identity=i, credential=c),
                            (r, int(ipaddress.IPv4Address(a)), i, c)), u32, ip, u32, cred),
    codec.FLOW_REQUEST: st.builds(
        lambda r, s, d, p, f, port: (
            wire.FlowRequest(request_id=r, src=s, dst=d, proto=p, flags=f, dport=port),
            (r, int(ipaddress.IPv4Address(s)), int(ipaddress.IPv4Address(d)), p, f, port)),
        u32, ip, ip, st.integers(0, 255), st.integers(0, 255), st.integers(0, 65535)),
    codec.GRANT: st.builds(
        lambda r, why, ttl, i: (wire.Decision(request_id=r, reason=why, ttl_ms=ttl, identity=i),
                                (r, why, ttl, i)), u32, reason, u32, u32),
    codec.PUSH_ACK: st.builds(lambda p: (wire.PushAck(push_id=p), (p,)), u32),
    codec.KEEPALIVE: st.builds(lambda c: (wire.Keepalive(counter=c), (c,)), u32),
    codec.SYNC: st.builds(lambda r: (wire.Sync(request_id=r), (r,)), u32),
}
PREFIXES = st.lists(st.tuples(ip, st.integers(0, 32)), max_size=8)


@settings(max_examples=300)
@given(st.sampled_from(sorted(BODY)).flatmap(lambda t: st.tuples(st.just(t), BODY[t])),
       u32, u64, u64)
def test_codec_and_scapy_build_the_same_bytes(typed, sender, nonce, timestamp):
    msg_type, (layer, fields) = typed
    ours = codec.encode(msg_type, sender, nonce, fields, KEY, timestamp=timestamp)
    unsigned = bytes(wire.Header(type=msg_type, sender=sender, nonce=nonce,
                                 timestamp=timestamp) / layer)
    assert ours[:-codec.SIGNATURE] == unsigned
    # and scapy dissects what the codec wrote, signature included
    parsed = wire.Header(ours)
    assert parsed.type == msg_type and parsed.sender == sender and parsed.nonce == nonce
    assert parsed[wire.Signature].hmac == ours[-codec.SIGNATURE:]
    assert codec.body(msg_type, ours) == fields


@settings(max_examples=150)
@given(u32, st.sampled_from(sorted(wire.PUSH_ACTIONS)), u32, PREFIXES, u64)
def test_policy_push_with_prefixes_agrees(push_id, action, identity, prefixes, nonce):
    layer = wire.PolicyPush(push_id=push_id, action=action, identity=identity,
                            prefixes=[wire.Prefix(address=a, length=n) for a, n in prefixes])
    ints = tuple((int(ipaddress.IPv4Address(a)), n) for a, n in prefixes)
    ours = codec.encode(codec.POLICY_PUSH, 0, nonce, (push_id, action, len(ints), identity),
                        KEY, prefixes=ints, timestamp=1)
    assert ours[:-32] == bytes(wire.Header(type="POLICY_PUSH", nonce=nonce, timestamp=1) / layer)
    assert codec.body(codec.POLICY_PUSH, ours) == (push_id, action, len(ints), identity, ints)


def test_flow_request_exact_bytes():
    data = codec.encode(codec.FLOW_REQUEST, 3, 1, (7, 0xC6130102, 0xCB00710A, 6, 0, 80), KEY,
                        timestamp=2)
    assert data[:-32].hex() == ("534c0105" "00000003" "0000000000000001" "0000000000000002"
                                "0010" "0000"
                                "00000007" "c6130102" "cb00710a" "06" "00" "0050")


def test_open_message_checks_sender_hmac_time_and_nonce():
    windows: dict[int, codec.ReplayWindow] = {}
    keys = {3: KEY}.get
    good = codec.encode(codec.KEEPALIVE, 3, 10, (1,), KEY)
    assert codec.open_message(good, keys, windows).body == (1,)
    for data, why in [
        (good, "replay"),
        (codec.encode(codec.KEEPALIVE, 9, 11, (1,), KEY), "unknown sender"),
        (codec.encode(codec.KEEPALIVE, 3, 12, (1,), codec.Key(b"x" * 32)), "bad hmac"),
        (codec.encode(codec.KEEPALIVE, 3, 13, (1,), KEY, timestamp=1), "stale"),
        (good[:-1], "malformed"),
        (b"XX" + good[2:], "malformed"),
    ]:
        try:
            codec.open_message(data, keys, windows)
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


def test_replay_window_tolerates_reordering_not_repeats():
    w = codec.ReplayWindow()
    assert all(w.accept(n) for n in (5, 3, 4, 2000, 1999))
    assert not w.accept(4) and not w.accept(2000)
    assert not w.accept(5)  # more than 1024 behind the highest
