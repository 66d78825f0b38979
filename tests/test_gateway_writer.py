"""The gateway's element writer, with libnftables replaced by a recorder the test holds up:
packets are answered while an element is being written, and a flush's withdrawal reaches
the kernel after every grant queued before it (else a flushed flow would be let in again)."""

from __future__ import annotations

import collections
import contextlib
import threading
import time

import pytest

from protocols.registered import gateway_nft
from protocols.registered.gateway import Gateway
from protocols.registered.gateway_flows import Pending, element, renewal_margin
from protocols.registered.policy import Enforced

TTL_MS = 6000


class HeldNft:
    """Records every command; each waits until the test lets them go (``go``)."""

    def __init__(self):
        self.commands: list[str] = []
        self.started = threading.Event()
        self.go = threading.Event()

    def cmd(self, command: str) -> tuple[int, str, str]:
        self.started.set()
        self.go.wait(5)
        self.commands.append(command)
        return 0, "", ""

    def set_numeric_proto_output(self, _on: bool) -> None:
        pass


class Verdicts:
    def __init__(self):
        self.given: list[int] = []

    def verdict(self, _queue: int, packet_id: int, *_verdict) -> None:
        self.given.append(packet_id)


def _gateway(monkeypatch, start: bool = True) -> Gateway:
    """A gateway's state without its sockets, queue or kernel table."""
    gw = Gateway.__new__(Gateway)
    gw.nft, gw.queue = HeldNft(), Verdicts()
    gw.nft_lock, gw.changes_queued = threading.RLock(), threading.Event()
    gw.element_changes = collections.deque()
    gw.counters = collections.Counter()
    gw.grants, gw.pending, gw.requests = {}, {}, {}
    gw.looks, gw.expiries, gw.next_renewal_check = [], [], float("inf")
    gw.ttl_ms, gw.reachable, gw.enforced = TTL_MS, True, Enforced()
    gw._start_counting()
    if start:
        gw._start_writer()
    return gw


def _flow(k: int) -> tuple[int, int, int, int, int]:
    return (0xC6120000 + k, 0xC6130001, 1, 7, 0)  # 198.18.0.k -> 198.19.0.1, an echo


def _counted(gw: Gateway) -> None:
    """The loop's turn once the writer has handed back what it counted."""
    deadline = time.monotonic() + 5
    while not gw.counted and time.monotonic() < deadline:
        time.sleep(0.01)
    gw.on_counted()


def _settled(gw: Gateway) -> None:
    deadline = time.monotonic() + 5
    while gw.element_changes and time.monotonic() < deadline:
        time.sleep(0.01)
    with gw.nft_lock:  # the writer's last transaction done
        pass


def test_the_loop_answers_while_an_element_is_being_written(monkeypatch):
    gw = _gateway(monkeypatch)
    gw.grant(_flow(1), Pending(1, False, False, [11], time.monotonic()), TTL_MS)
    assert gw.nft.started.wait(5)  # the writer is in libnftables, held there
    # meanwhile the loop goes on: another flow's answer gives its verdict at once
    gw.queue.given.clear()
    gw.grant(_flow(2), Pending(2, False, False, [12], time.monotonic()), TTL_MS)
    assert gw.queue.given == [12] and gw.nft.commands == []  # answered, nothing written yet
    gw.nft.go.set()
    _settled(gw)
    written = "\n".join(gw.nft.commands)
    assert written.count("timeout") == 2 and not gw.element_changes


@pytest.mark.parametrize("writer", ["in libnftables", "not yet scheduled"])
def test_a_flush_reaches_the_kernel_after_every_grant_queued_before_it(monkeypatch, writer):
    gw = _gateway(monkeypatch)
    flows = [_flow(k) for k in range(1, 151)]  # more than a transaction's worth
    with contextlib.ExitStack() as held:
        if writer == "not yet scheduled":
            gw.nft.go.set()
            held.enter_context(gw.nft_lock)  # the writer cannot take what is queued
        for k, flow in enumerate(flows):
            gw.grant(flow, Pending(k, False, False, [k], time.monotonic()), TTL_MS)
        if writer == "in libnftables":
            assert gw.nft.started.wait(5)
            gw.nft.go.set()
        gw._forget(lambda flow: True)  # a flush
    _settled(gw)
    added = [k for k, c in enumerate(gw.nft.commands) for line in c.splitlines()
             if "timeout" in line]
    (withdrawal,) = [k for k, c in enumerate(gw.nft.commands)
                     if "delete element" in c and "timeout" not in c]
    assert len(added) == len(flows) and max(added) < withdrawal
    withdrawn = gw.nft.commands[withdrawal]
    assert all(element(f, "grants").split("{ ", 1)[1] in withdrawn for f in flows)
    assert not gw.grants and not gw.element_changes


def test_a_writer_that_died_is_started_again_and_writes_what_waited(monkeypatch):
    gw = _gateway(monkeypatch, start=False)
    gw.nft.go.set()
    gw.write_elements = lambda: None  # a writer that ends at once
    gw._start_writer()
    gw.writer.join(5)
    del gw.write_elements
    gw.grant(_flow(1), Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    assert gw.element_changes and gw.nft.commands == []  # nobody writes it
    gw._keep_writer()  # as every pass of the loop does
    _settled(gw)
    assert [c for c in gw.nft.commands if "timeout" in c]
    assert gw.counters["element writer restarted"] == 1


def test_the_loop_answers_while_a_renewal_looks_at_packet_counts(monkeypatch):
    """``renew`` reads its grants' packet counts through libnftables; on the loop, every
    answer waited behind those reads (12 ms a query, tens of queries a batch at 16 000
    devices). The writer reads them now and hands the counts back."""
    gw = _gateway(monkeypatch)
    gw.nft.go.set()
    flow = _flow(1)
    gw.grant(flow, Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    _settled(gw)
    gw.nft.go.clear()
    gw.nft.started.clear()
    counts = iter([{flow: 5}, {flow: 9}])  # read in libnftables, which the test holds
    monkeypatch.setattr(gateway_nft, "packet_counts",
                        lambda nft, _flows: nft.cmd("get element") and next(counts))
    sample_at, _, _, expires = gw.looks[0]
    gw.renew(sample_at)  # its first look: the count is read by the writer, held there
    assert gw.nft.started.wait(5) and "get element" not in gw.nft.commands  # not waited for
    gw.queue.given.clear()
    gw.grant(_flow(2), Pending(2, False, False, [12], time.monotonic()), TTL_MS)
    assert gw.queue.given == [12]  # the loop went on while the count was being read
    gw.nft.go.set()
    _counted(gw)
    assert gw.grants[flow].seen == 5
    asked = []
    monkeypatch.setattr(gw, "_request", lambda f, pending: asked.append((f, pending.renewal)))
    gw.renew(expires - renewal_margin(TTL_MS))  # one margin before expiry, used since:
    _counted(gw)                                # so asked about again
    assert asked == [(flow, True)] and gw.grants[flow].expires == expires
