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
    asked = codec.body(Type.FLOW_REQUEST, request)
    grant = codec.body(Type.GRANT, answer)
    assert grant[0] == asked[0] and grant[2:8] == asked[1:7]  # the flow, ports and all
    assert asked[5:7] == (40000, 443)
    assert grant[-2:] == (30000, asked[1] - 0xC6130000 + 1)  # the TTL, the identity of src


def test_it_measures_decisions_per_cpu_second():
    result = barelimit.measure(0.05)
    assert result["decisions"] > 0 and result["cpu_s"] >= 0.05
    rate = result["decisions"] / result["cpu_s"]
    assert result["per_cpu_second"] == pytest.approx(rate, rel=1e-4)
