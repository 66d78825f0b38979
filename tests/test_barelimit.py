"""The bare limit computes what the authority computes: its request and its answer are the
control protocol's messages, signed with the key's HMAC as the Python codec checks it; a
wrong key fails them. And it runs: a rate from the CPU time it used."""

from __future__ import annotations

import os

import pytest

from experiments.bench import barelimit
from protocols.registered import codec
from protocols.registered.messages import Type


def test_its_messages_are_the_protocol_s_signed_with_the_key():
    secret = os.urandom(32)
    request, answer = barelimit.sample(secret)
    key = codec.Key(secret)
    for data, kind in ((request, Type.FLOW_REQUEST), (answer, Type.GRANT)):
        assert codec.peek(data)[0] == kind
        assert key.verify(data)
        assert not codec.Key(os.urandom(32)).verify(data)
    request_id, src, dst, proto, *_ = codec.body(Type.FLOW_REQUEST, request)
    grant = codec.body(Type.GRANT, answer)
    assert grant[0] == request_id and grant[2:5] == (src, dst, proto)
    assert grant[-2:] == (30000, src - 0xC6130000 + 1)  # the TTL, the identity bound to src


def test_it_measures_decisions_per_cpu_second():
    result = barelimit.measure(0.05)
    assert result["decisions"] > 0 and result["cpu_s"] >= 0.05
    rate = result["decisions"] / result["cpu_s"]
    assert result["per_cpu_second"] == pytest.approx(rate, rel=1e-4)
