"""Censor policies as data: parsing, and refusal of what a topology cannot carry."""

from __future__ import annotations

import pytest

import topologies
from protocols.censor import CensorError, CensorPolicy, _iptables, _nft, check


def test_policy_from_toml(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[censor]\nblock_addresses = ["news.abroad.example", "203.0.113.64/28"]\n'
                    'block_names = ["social.abroad.example"]\nblock_keywords = ["wiki"]\n')
    policy = CensorPolicy.load(path)
    assert policy == CensorPolicy(("news.abroad.example", "203.0.113.64/28"),
                                  ("social.abroad.example",), ("wiki",))
    check(policy, topologies.build("isp"))


@pytest.mark.parametrize("text, words", [
    ("block_names = 3", "must be a list of strings"),
    ("block_everything = []", "unknown field.*block_everything"),
    ("cut_border = 'yes'", "true or false"),
    ("throttle_kbit = 0", "positive whole number"),
    ("block_names = [", "not valid TOML"),
])
def test_malformed_policies(tmp_path, text, words):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(CensorError, match=words):
        CensorPolicy.load(path)


@pytest.mark.parametrize("policy, words", [
    (CensorPolicy(block_names=("nowhere.example",)), "unknown site 'nowhere.example'"),
    (CensorPolicy(block_addresses=("atlantis",)), "unknown site 'atlantis'"),
    (CensorPolicy(block_keywords=('say "hi"',)), "without quotes"),
    (CensorPolicy(throttle_addresses=("news.abroad.example",)), "gives no throttle_kbit"),
])
def test_policies_naming_unknown_things_are_refused(policy, words):
    with pytest.raises(CensorError, match=words):
        check(policy, topologies.build("isp"))


def test_a_border_censor_needs_borders():
    with pytest.raises(CensorError, match="needs border routers"):
        check(CensorPolicy(block_keywords=("x",)), topologies.build("isp,borders=0"))


def test_rules_only_touch_traffic_crossing_the_border():
    from ipaddress import IPv4Network

    from protocols.censor import Resolved

    policy = Resolved((IPv4Network("203.0.113.8/29"),), {}, ("wiki",), False)
    nft = _nft(policy, ["b1-eth2"])
    assert 'iifname { "b1-eth2" } jump censor' in nft and "elements = { 203.0.113.8/29 }" in nft
    ipt = _iptables(policy, ["b1-eth2"], first=True)
    assert "-A FORWARD -o b1-eth2 -j SPLINTER_CENSOR" in ipt
    assert ('-A SPLINTER_CENSOR -p tcp -m string --string "wiki" --algo bm --icase -j REJECT '
            "--reject-with tcp-reset") in ipt
    assert "FORWARD" not in _iptables(policy, ["b1-eth2"], first=False)


def test_a_throttled_destination_is_policed_both_ways_at_the_border():
    from ipaddress import IPv4Network

    from protocols.censor import Resolved

    policy = Resolved((), {}, (), False, (IPv4Network("203.0.113.8/32"),), 150)
    nft = _nft(policy, ["b1-eth2"])
    assert "ip daddr 203.0.113.8/32 limit rate over 18 kbytes/second counter drop" in nft
    assert "ip saddr 203.0.113.8/32 limit rate over 18 kbytes/second counter drop" in nft
    assert "limit rate" not in _nft(Resolved((), {}, (), False), ["b1-eth2"])
