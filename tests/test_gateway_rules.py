"""The gateway's pure pieces: its nftables table, set elements, and first-packet parsing."""

from __future__ import annotations

import struct
import subprocess

import pytest

from protocols import gateway


def test_the_ruleset_is_valid_nftables():
    text = gateway.ruleset({"a1-eth2": "198.19.1.0/29", "a1-eth3": "198.19.1.8/29"},
                           "198.18.0.0/15")
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("nft -c needs root")
    # nft -c checks against a kernel: run it in a namespace of its own
    check = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_spoofing_and_registration_come_before_any_grant():
    text = gateway.ruleset({"a1-eth2": "198.19.1.0/29"}, "198.18.0.0/15")
    from_host = text.split("chain from_host {", 1)[1].split("}", 1)[0]
    order = ["@lines", "@cut", "@bound", "@blocked", "shutdown_out", "ct direction reply",
             "admitted", "mark set"]
    positions = [from_host.index(word) for word in order]
    assert positions == sorted(positions)


def test_flows_with_ports_use_the_port_keyed_sets():
    assert gateway.element((0xC6130102, 0xCB00710A, 6, 443), "grants") == \
        "grants_l4 { 198.19.1.2 . 203.0.113.10 . 6 . 443"
    assert gateway.element((0xC6130102, 0xCB00710A, 1, 0), "denied") == \
        "denied { 198.19.1.2 . 203.0.113.10 . 1"


def test_parse_ip_reads_the_flow_of_a_first_packet():
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0, 64, 6, 0,
                     bytes([198, 19, 1, 2]), bytes([203, 0, 113, 10]))
    tcp = struct.pack("!HH", 40000, 80)
    assert gateway.parse_ip(ip + tcp) == (0xC6130102, 0xCB00710A, 6, 80)
    icmp = ip[:9] + b"\x01" + ip[10:] + b"\x08\x00\x00\x00"
    assert gateway.parse_ip(icmp) == (0xC6130102, 0xCB00710A, 1, 0)
    assert gateway.parse_ip(b"\x60" + b"\0" * 39) is None  # IPv6: not ours
