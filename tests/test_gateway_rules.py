"""The gateway's pure pieces: its nftables table, set elements, first-packet parsing, and how
a queued packet is named as a flow."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from protocols.registered import gateway_flows as flows
from protocols.registered import ruleset

LINES = {"a1-eth2": ["198.19.1.0/29"], "a1-eth3": ["198.19.1.8/29", "198.18.64.0/18"]}
AUTHORITY = "198.19.6.2"
CONTROL = ["198.18.0.0/18", "198.18.128.0/18", "198.19.1.1/32", "198.19.6.2/32"]


def table(lines=LINES) -> str:
    return ruleset.ruleset(lines, AUTHORITY, CONTROL)


def test_the_ruleset_is_valid_nftables():
    text = table()
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("nft -c needs root")
    # nft -c checks against a kernel: run it in a namespace of its own
    check = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _chain(name: str) -> str:
    return table().split(f"chain {name} {{", 1)[1].split("\n  }", 1)[0]


def test_hard_lines_and_registration_come_before_any_grant_both_ways():
    for chain, order in (("from_host", ["own_line", "@cut", "@bound", "@blocked", "shutdown_out",
                                        "related", "admitted", "mark set"]),
                         ("to_host", ["@cut", "@bound", "@blocked", "shutdown_in", "related",
                                      "admitted", "mark set"])):
        text = _chain(chain)
        positions = [text.index(word) for word in order]
        assert positions == sorted(positions), chain
        assert "established" not in text and "198.18.0.0" not in text  # no bypass


def test_ipv6_never_passes_a_host_line():
    """Every match below is ``ip ...``: in an ``inet`` table an IPv6 packet matches none of
    them and would pass; it is dropped first, both ways and to the gateway itself."""
    forward = _chain("forward")
    assert forward.index("meta nfproto ipv6 iifname @hostifs counter name ipv6 drop") < \
        forward.index("jump from_host")
    assert "meta nfproto ipv6 oifname @hostifs counter name ipv6 drop" in forward
    assert _chain("input").index("meta nfproto ipv6") < _chain("input").index("jump host_to")


def test_no_host_reaches_the_control_plane_and_its_port_hears_the_authority_alone():
    assert _chain("from_host").index("ip daddr @infrastructure counter name control drop") < \
        _chain("from_host").index("jump admitted")
    assert f"udp dport 7402 ip saddr != {AUTHORITY} counter name control_elsewhere drop" in \
        _chain("input")
    assert all(prefix in table() for prefix in CONTROL)


def test_a_block_is_both_ways_on_every_path():
    for chain in ("from_host", "to_host"):
        text = _chain(chain)
        assert "ip saddr @blocked counter name blocked drop" in text
        assert "ip daddr @blocked counter name blocked drop" in text


def test_a_reply_matches_its_flows_grant_reversed_and_only_as_a_reply():
    text = _chain("admitted_l4")
    assert "ct direction original ip saddr . ip daddr . meta l4proto . th sport . th dport " \
        "\\\n      @grants_l4" in text
    assert "ct direction reply ip daddr . ip saddr . meta l4proto . th dport . th sport " \
        "\\\n      @grants_l4" in text
    echo = _chain("admitted")
    assert "ct direction original ip saddr . ip daddr . icmp id @grants_icmp accept" in echo
    assert "ct direction reply ip daddr . ip saddr . icmp id @grants_icmp accept" in echo


def test_only_flows_of_protocols_with_ports_or_echoes_are_admitted():
    """A tunnel (GRE, IP in IP) or ICMP other than echo is no flow: dropped before any grant
    could be looked up (one admission used to cover a whole tunnel, or any ICMP type)."""
    echo = _chain("admitted")
    assert echo.index("meta l4proto != icmp counter name protocol drop") < \
        echo.index("@grants_icmp")
    assert "icmp type != { echo-request, echo-reply } counter name icmp_type drop" in echo


def test_each_line_carries_only_its_own_prefix():
    rules = _chain("own_line")
    for iface, nets in LINES.items():
        assert f'iifname "{iface}" ip saddr != {{ {", ".join(nets)} }} counter name spoofed ' \
            "drop" in rules
    assert "jump own_line" in _chain("host_to_gateway")


def test_hosts_reach_only_the_registration_service_on_the_gateway_itself():
    assert "udp dport 7401 accept" in _chain("host_to_gateway")
    assert "counter name not_service drop" in _chain("host_to_gateway")
    assert "udp dport 7401 counter name service_elsewhere drop" in _chain("input")


def test_flows_with_ports_use_the_port_keyed_sets_and_echoes_their_identifier():
    assert flows.entry((0xC6130102, 0xCB00710A, 6, 40000, 443), "grants") == (
        "grants_l4", bytes.fromhex("c6130102" "cb00710a" "06000000" "9c400000" "01bb0000"))
    for proto in (17, 33, 132, 136):  # UDP, DCCP, SCTP, UDP-Lite: ports too
        assert flows.entry((1, 2, proto, 5, 9), "grants")[0] == "grants_l4"
        assert flows.parse_ip(struct.pack("!BBHHHBBH4s4sHHI", 0x45, 0, 28, 0, 0, 64, proto,
                                            0, bytes(4), bytes(4), 5, 9, 0))[3:] == (5, 9)
    assert flows.entry((0xC6130102, 0xCB00710A, 1, 101, 0), "denied") == (
        "denied_icmp", bytes.fromhex("c6130102" "cb00710a" "00650000"))


def test_parse_ip_reads_addresses_and_ports_and_echo_identifiers():
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0, 64, 6, 0,
                     bytes([198, 19, 1, 2]), bytes([203, 0, 113, 10]))
    tcp = struct.pack("!HHI", 40000, 80, 0)
    assert flows.parse_ip(ip + tcp) == (0xC6130102, 0xCB00710A, 6, 40000, 80)
    icmp = ip[:9] + b"\x01" + ip[10:]
    request, reply = (struct.pack("!BBHHH", kind, 0, 0, 101, 1) for kind in (8, 0))
    assert flows.parse_ip(icmp + request) == (0xC6130102, 0xCB00710A, 1, 101, 0)
    assert flows.parse_ip(icmp + reply) == (0xC6130102, 0xCB00710A, 1, 0, 101)
    assert flows.parse_ip(icmp + struct.pack("!BBHHH", 13, 0, 0, 101, 1)) is None
    gre = ip[:9] + b"\x2f" + ip[10:] + bytes(8)
    assert flows.parse_ip(gre) is None  # no flow: no ports
    assert flows.parse_ip(b"\x60" + b"\0" * 39) is None  # IPv6: not ours


HOST, REMOTE = 0xC6130102, 0xCB00710A


@pytest.mark.parametrize("fields, mark, flow, inbound", [
    ((HOST, REMOTE, 6, 40000, 80), ruleset.MARK_OUT, (HOST, REMOTE, 6, 40000, 80), False),
    ((REMOTE, HOST, 6, 80, 40000), ruleset.MARK_IN_REPLY, (HOST, REMOTE, 6, 40000, 80), False),
    ((REMOTE, HOST, 6, 50000, 22), ruleset.MARK_IN, (REMOTE, HOST, 6, 50000, 22), True),
    ((HOST, REMOTE, 6, 22, 50000), ruleset.MARK_OUT_REPLY, (REMOTE, HOST, 6, 50000, 22), True),
    ((REMOTE, HOST, 1, 0, 101), ruleset.MARK_IN_REPLY, (HOST, REMOTE, 1, 101, 0), False),
])
def test_a_queued_packet_is_named_by_the_flow_it_belongs_to(fields, mark, flow, inbound):
    assert flows.canonical(fields, mark) == (flow, inbound)


def test_a_packet_the_ruleset_did_not_mark_is_no_flow():
    assert flows.canonical((1, 2, 6, 3, 4), 0) is None
    assert flows.canonical((1, 2, 6, 3, 4), 0x1234) is None


def test_what_conntrack_cannot_place_is_dropped_before_it_could_pass_for_a_reply():
    for chain in ("from_host", "to_host"):
        text = _chain(chain)
        assert text.index("ct state invalid,untracked") < text.index("jump admitted")
        assert "ct direction reply meta mark set" in text
        assert text.rstrip().endswith("counter name invalid drop")


PREFIXES = """
import json
from nftables import Nftables
from protocols.registered import gateway_flows as flows, ruleset
nft = Nftables()
assert nft.cmd(ruleset.ruleset({"lo": ["127.0.0.0/8"]}, "127.0.0.2", []))[0] == 0
out = []
for state in ([(0x0A000000, 8)], [(0x0A000000, 8), (0x0A010000, 16), (0x0A010203, 32)],
              [(0x0A010000, 16)], []):
    rc, _, err = nft.cmd(flows._prefix_set("blocked", state))
    hits = [nft.cmd("get element inet splinter_gw blocked { " + a + " }")[0] == 0
            for a in ("10.1.2.3", "10.9.9.9")]
    out.append([rc, hits])
print(json.dumps(out))
"""


def test_overlapping_blocks_and_their_release_leave_exactly_what_is_blocked():
    """nft refuses overlapping intervals, and deleting a prefix merged with another would
    take the other too: the set is rebuilt from the whole state each time."""
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("nft needs root")
    out = subprocess.run(["unshare", "--net", sys.executable, "-c", PREFIXES],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    assert json.loads(out.stdout) == [[0, [True, True]], [0, [True, True]],
                                      [0, [True, False]], [0, [False, False]]]


def test_renewal_comes_well_before_expiry_and_never_later_than_two_seconds():
    assert flows.renewal_margin(200) == pytest.approx(0.0667, abs=1e-3)
    assert flows.renewal_margin(60_000) == 2.0
