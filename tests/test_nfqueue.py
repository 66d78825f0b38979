"""The nfnetlink_queue codec: exact bytes of what we send, parsing of what the kernel sends."""

from __future__ import annotations

import struct

import pytest

from protocols import nfqueue


def kernel_packet_message(queue: int, packet_id: int, payload: bytes = b"",
                          indev: int = 0) -> bytes:
    """A NFQNL_MSG_PACKET message laid out the way the kernel builds it."""
    attrs = nfqueue._attr(nfqueue.NFQA_PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 0))
    if indev:
        attrs += nfqueue._attr(nfqueue.NFQA_IFINDEX_INDEV, struct.pack("!I", indev))
    if payload:
        attrs += nfqueue._attr(nfqueue.NFQA_PAYLOAD, payload)
    return nfqueue._message(nfqueue.NFQNL_MSG_PACKET, queue, attrs, flags=0)


def test_verdict_bytes():
    msg = nfqueue._message(nfqueue.NFQNL_MSG_VERDICT, 5, nfqueue._attr(
        nfqueue.NFQA_VERDICT_HDR, struct.pack("!II", nfqueue.NF_ACCEPT, 0x01020304)))
    assert msg == (struct.pack("=IHHII", 32, 0x0301, 1, 0, 0) + bytes([0, 0, 0, 5])
                   + struct.pack("=HH", 12, 2) + bytes([0, 0, 0, 1, 1, 2, 3, 4]))


def test_parse_packet_reads_id_queue_payload_and_device():
    raw = kernel_packet_message(7, 123456, payload=b"\x45\x00\x00\x54abc", indev=4)
    p = nfqueue.parse_packet(raw, 0, len(raw))
    assert (p.queue, p.id, p.indev, p.payload) == (7, 123456, 4, b"\x45\x00\x00\x54abc")


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5])
def test_attributes_are_padded_to_four_bytes(size):
    attr = nfqueue._attr(10, b"x" * size)
    assert len(attr) % 4 == 0 and struct.unpack_from("=H", attr)[0] == 4 + size


def test_truncated_message_does_not_loop_forever():
    raw = kernel_packet_message(1, 9)[:22]
    assert nfqueue.parse_packet(raw, 0, len(raw)).id == 0


class Sent:
    def __init__(self):
        self.datagrams: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.datagrams.append(data)


def test_a_turns_verdicts_go_in_one_datagram_each_message_as_alone():
    queue = nfqueue.QueueSocket.__new__(nfqueue.QueueSocket)
    queue.sock, queue.verdicts = Sent(), []
    for packet_id in range(1, 4):
        queue.verdict(5, packet_id, nfqueue.NF_DROP if packet_id == 2 else nfqueue.NF_ACCEPT)
    assert queue.sock.datagrams == []  # given, not sent yet
    queue.flush()
    (datagram,) = queue.sock.datagrams
    alone = [nfqueue._message(nfqueue.NFQNL_MSG_VERDICT, 5, nfqueue._attr(
        nfqueue.NFQA_VERDICT_HDR, struct.pack("!II", v, k))) for k, v in
        ((1, nfqueue.NF_ACCEPT), (2, nfqueue.NF_DROP), (3, nfqueue.NF_ACCEPT))]
    assert datagram == b"".join(alone)
    queue.flush()
    assert len(queue.sock.datagrams) == 1  # nothing given twice
