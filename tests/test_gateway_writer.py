"""The gateway's element writer, with the kernel's table replaced by a recorder the test holds up:
packets are answered while an element is being written, and a flush's withdrawal reaches
the kernel after every grant queued before it (else a flushed flow would be let in again)."""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP

from protocols.registered import codec, gateway, gateway_admission, gateway_flows
from protocols.registered.codec import Key, Replay, Sender
from protocols.registered.datagrams import Outbox
from protocols.registered.gateway import Gateway
from protocols.registered.gateway_flows import AnswerTimer, Pending, entry, renewal_margin
from protocols.registered.messages import Type
from protocols.registered.policy import Enforced
from protocols.registered.ruleset import MARK_OUT, MARK_OUT_REPLY
from protocols.registered.setelements import Change

TTL_MS = 6000


class HeldTable:
    """Records every transaction of element changes; each waits until the test lets them go
    (``go``)."""

    def __init__(self):
        self.commands: list[list[Change]] = []
        self.started = threading.Event()
        self.go = threading.Event()

    def apply(self, changes: list[Change]) -> list:
        self.started.set()
        self.go.wait(5)
        self.commands.append(changes)
        return []


def _timeouts(transaction: list[Change]) -> list[int]:
    return [c.timeout_ms for c in transaction if c.timeout_ms is not None]


class Verdicts:
    def __init__(self):
        self.given: list[int] = []

    def verdict(self, _queue: int, packet_id: int, *_verdict) -> None:
        self.given.append(packet_id)


def _gateway(monkeypatch, start: bool = True) -> Gateway:
    """A gateway's state without its sockets, queue or kernel table."""
    gw = Gateway.__new__(Gateway)
    gw.sets, gw.queue, gw.in_place = HeldTable(), Verdicts(), False
    gw.nft_lock, gw.changes_queued = threading.RLock(), threading.Event()
    gw.element_changes = collections.deque()
    gw.counters = collections.Counter()
    gw.grants, gw.pending, gw.requests = {}, collections.OrderedDict(), {}
    gw.expiries, gw.denied = [], {}
    gw.ttl_ms, gw.reachable, gw.enforced = TTL_MS, True, Enforced()
    if start:
        gw._start_writer()
    return gw


def _flow(k: int) -> tuple[int, int, int, int, int]:
    return (0xC6120000 + k, 0xC6130001, 1, 7, 0)  # 198.18.0.k -> 198.19.0.1, an echo


def _settled(gw: Gateway) -> None:
    deadline = time.monotonic() + 5
    while gw.element_changes and time.monotonic() < deadline:
        time.sleep(0.01)
    with gw.nft_lock:  # the writer's last transaction done
        pass


def test_the_loop_answers_while_an_element_is_being_written(monkeypatch):
    gw = _gateway(monkeypatch)
    gw.grant(_flow(1), Pending(1, False, False, [11], time.monotonic()), TTL_MS)
    assert gw.sets.started.wait(5)  # the writer is writing, held there
    # meanwhile the loop goes on: another flow's answer gives its verdict at once
    gw.queue.given.clear()
    gw.grant(_flow(2), Pending(2, False, False, [12], time.monotonic()), TTL_MS)
    assert gw.queue.given == [12] and gw.sets.commands == []  # answered, nothing written yet
    gw.sets.go.set()
    _settled(gw)
    assert sum(len(_timeouts(c)) for c in gw.sets.commands) == 2 and not gw.element_changes


@pytest.mark.parametrize("writer", ["writing", "not yet scheduled"])
def test_a_flush_reaches_the_kernel_after_every_grant_queued_before_it(monkeypatch, writer):
    gw = _gateway(monkeypatch)
    flows = [_flow(k) for k in range(1, 151)]  # more than a transaction's worth
    with contextlib.ExitStack() as held:
        if writer == "not yet scheduled":
            gw.sets.go.set()
            held.enter_context(gw.nft_lock)  # the writer cannot take what is queued
        for k, flow in enumerate(flows):
            gw.grant(flow, Pending(k, False, False, [k], time.monotonic()), TTL_MS)
        if writer == "writing":
            assert gw.sets.started.wait(5)
            gw.sets.go.set()
        gw._forget(lambda flow: True)  # a flush
    _settled(gw)
    added = [k for k, c in enumerate(gw.sets.commands) for _ in _timeouts(c)]
    withdrawals = [k for k, c in enumerate(gw.sets.commands)
                   if not all(x.add for x in c) and not _timeouts(c)]  # a batch each hundred
    assert len(added) == len(flows) and max(added) < min(withdrawals)
    withdrawn = {c.key for k in withdrawals for c in gw.sets.commands[k] if not c.add}
    assert all(entry(f, "grants")[1] in withdrawn for f in flows)
    assert not gw.grants and not gw.element_changes


def test_a_writer_that_died_is_started_again_and_writes_what_waited(monkeypatch):
    gw = _gateway(monkeypatch, start=False)
    gw.sets.go.set()
    gw.write_elements = lambda: None  # a writer that ends at once
    gw._start_writer()
    gw.writer.join(5)
    del gw.write_elements
    gw.grant(_flow(1), Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    assert gw.element_changes and gw.sets.commands == []  # nobody writes it
    gw._keep_writer()  # as every pass of the loop does
    _settled(gw)
    assert [c for c in gw.sets.commands if _timeouts(c)]
    assert gw.counters["element writer restarted"] == 1



class Queued:
    """NFQUEUE as the gateway reads it: the packets the test puts there, then verdicts."""

    def __init__(self):
        self.waiting: list[SimpleNamespace] = []
        self.given: list[int] = []

    def receive(self) -> list[SimpleNamespace]:
        out, self.waiting = self.waiting, []
        return out

    def verdict(self, _queue: int, packet_id: int, *_verdict) -> None:
        self.given.append(packet_id)


def _at(monkeypatch, now: float) -> None:
    """The gateway's clock (its admission part's) reads ``now``."""
    monkeypatch.setattr(gateway_admission, "time", SimpleNamespace(
        monotonic=lambda: now, time=time.time))


def _echo(k: int, packet_id: int) -> SimpleNamespace:
    """An echo request of ``_flow(k)``, from the host, as the ruleset queues it."""
    payload = bytes(IP(src=f"198.18.0.{k}", dst="198.19.0.1") / ICMP(id=7))
    return SimpleNamespace(id=packet_id, payload=payload, mark=MARK_OUT)


def test_grants_nobody_uses_cost_nothing_until_they_run_out(monkeypatch):
    """Renewals are the kernel's to signal: a gateway holding many grants reads nothing about
    them while they run (reading their packet counters took a core at 16 000 devices)."""
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    for k in range(1, 201):
        gw.grant(_flow(k), Pending(k, False, False, [k], time.monotonic()), TTL_MS)
    _settled(gw)
    written = len(gw.sets.commands)
    clock = time.monotonic()
    for step in range(1, 9):  # through the grants' lives and past them
        _at(monkeypatch, clock + step * TTL_MS / 6000)
        gw.expire(clock + step * TTL_MS / 6000)
    _settled(gw)
    assert gw.sets.commands[written:] == [] and not gw.grants


def test_a_packet_in_a_grants_last_margin_passes_and_renews_its_flow(monkeypatch):
    """The kernel holds a grant's element until one margin before the grant runs out; a packet
    after that comes to the gateway: the flow is in use. It passes (the grant lives), the flow
    is asked about again, and the element is held until the grant runs out meanwhile."""
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    gw.queue = Queued()
    flow = _flow(1)
    gw.grant(flow, Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    _settled(gw)
    grant = gw.grants[flow]
    (timeout,) = _timeouts(gw.sets.commands[-1])
    assert int(timeout) <= TTL_MS - 1000 * renewal_margin(TTL_MS)  # a margin short of it
    asked = []

    def request(f, pending):  # as the gateway asks: the question is open until answered
        asked.append((f, pending.renewal))
        gw.pending[f] = pending

    monkeypatch.setattr(gw, "_request", request)
    gw.queue.waiting = [_echo(1, 21)]  # before the margin: its element on its way, say
    gw.on_packets()
    assert gw.queue.given[-1] == 21 and asked == []
    written = len(gw.sets.commands)
    _at(monkeypatch, grant.renew_at + 0.01)
    gw.queue.waiting = [_echo(1, 22), _echo(1, 23)]
    gw.on_packets()
    _settled(gw)
    assert gw.queue.given[-2:] == [22, 23] and asked == [(flow, True)]
    (held,) = gw.sets.commands[written:]
    assert {c.key for c in held} == {entry(flow, "grants")[1]} and _timeouts(held)


@pytest.mark.parametrize("fail_mode", ["closed", "open"])
def test_without_the_authority_a_busy_flow_renews_once_a_grant(monkeypatch, fail_mode):
    """A question that fails at once is never open: every packet in the margin started
    another renewal, another element write and (fail-open) another journal row."""
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    gw.queue, gw.reachable, gw.fail_mode, gw.alone = Queued(), False, fail_mode, []
    gw.id, gw.decided_alone = 3, {}
    flow = _flow(1)
    gw.grant(flow, Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    _settled(gw)
    written = len(gw.sets.commands)
    _at(monkeypatch, gw.grants[flow].renew_at + 0.01)
    gw.queue.waiting = [_echo(1, 100 + k) for k in range(100)]
    gw.on_packets()
    _settled(gw)
    held = sum(len(_timeouts(c)) for c in gw.sets.commands[written:])  # one a change
    assert held == 1 and len(gw.alone) == (fail_mode == "open")
    assert gw.queue.given[-100:] == [100 + k for k in range(100)]  # all let through


def test_a_renewal_is_asked_in_the_flows_direction_not_its_packets(monkeypatch):
    """Between two hosts of one gateway the responder's reply is marked as from a host, in
    the reply direction: the renewal it starts is still the initiator's outbound flow."""
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    gw.queue = Queued()
    flow = _flow(1)
    gw.enforced.bound.update({flow[0]: 1, flow[1]: 2})
    gw.grant(flow, Pending(1, False, False, [1], time.monotonic()), TTL_MS)
    asked = []
    monkeypatch.setattr(gw, "_request", lambda f, pending: asked.append(pending.inbound))
    _at(monkeypatch, gw.grants[flow].renew_at + 0.01)
    reply = bytes(IP(src="198.19.0.1", dst="198.18.0.1") / ICMP(type=0, id=7))
    gw.queue.waiting = [SimpleNamespace(id=9, payload=reply, mark=MARK_OUT_REPLY)]
    gw.on_packets()
    assert asked == [False]


class Wire:
    """The control socket: every datagram in the order it leaves, GSO runs cut."""

    def __init__(self):
        self.datagrams: list[bytes] = []

    def sendto(self, data: bytes, _address) -> None:
        self.datagrams.append(data)

    def sendmsg(self, buffers, ancillary, _flags, _address) -> None:
        ((_, _, size),) = ancillary
        data = b"".join(buffers)
        size = int.from_bytes(size, sys.byteorder)
        self.datagrams += [data[k:k + size] for k in range(0, len(data), size)]


def test_a_turns_questions_reach_the_authority_in_their_counters_order(monkeypatch):
    """Questions wait for the end of the turn; a keepalive sent meanwhile went first, with a
    higher counter, and pushed the earliest of a large turn out of the replay window."""
    gw = _gateway(monkeypatch)
    gw.id, gw.key, gw.sender, gw.authority = 3, Key(b"k" * 32), Sender(), ("198.18.128.1", 1)
    gw.control, gw.queue = Wire(), Queued()
    gw.queue.verdicts = []
    gw.queue.flush = lambda: None
    gw.outbox = Outbox(gw.control, gw.authority)
    for k in range(1100):
        gw._send(Type.FLOW_REQUEST, (k, 1, 2, 6, 0, 3, 4, 0, bytes(16)), with_turn=True)
    gw._send(Type.KEEPALIVE, (0,))
    gw.send_turn()
    replay, refused = Replay(), 0
    for data in gw.control.datagrams:
        _, _, session, counter, _ = codec.peek(data)
        refused += replay.accept(session, counter) is not None
    assert len(gw.control.datagrams) == 1101 and refused == 0


def test_unsent_verdicts_wake_the_loop_at_once(monkeypatch):
    gw = _gateway(monkeypatch)
    gw.next_keepalive, gw.synced, gw.answer_timer = time.monotonic() + 1, True, AnswerTimer(
        0.2, 1.0)
    gw.queue, gw.outbox = Queued(), SimpleNamespace(kept=[])
    gw.queue.verdicts = []
    assert gw._timeout() > 0.5
    gw.queue.verdicts = [b"a verdict the kernel did not take"]
    assert gw._timeout() == 0


def test_answers_to_questions_asked_once_teach_the_answer_timer(monkeypatch):
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    gw.sender, gw.answer_times = SimpleNamespace(session=5), collections.Counter()
    gw.decided_alone = {}
    gw.answer_timer = AnswerTimer(0.2, 1.0)
    for k in range(30):
        flow = _flow(k + 1)
        gw.pending[flow] = Pending(k, False, False, [], time.monotonic(),
                                   asked=time.monotonic() - 0.3)
        gw.requests[k] = flow
        gw.on_answer(SimpleNamespace(type=Type.GRANT, body=(k, 5, *flow[:3], 0, *flow[3:],
                                                            0, TTL_MS, 1)))
    assert gw.answer_timer.timeout() > 0.3  # answers come in 300 ms: it waits longer


class Watched(Pending):
    """A question that counts how often its time asked is read."""

    reads = 0

    def __getattribute__(self, name):
        if name == "sent":
            type(self).reads += 1
        return super().__getattribute__(name)


def test_a_turn_of_the_loop_looks_at_the_oldest_questions_only(monkeypatch):
    """At 64 000 devices thousands of questions are open: the loop read every one's time at
    each turn (tick and its wake-up), a fifth of the gateway's CPU; questions are kept in
    the order last asked, so a turn reads those due and the next."""
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    gw.queue, gw.outbox = Queued(), SimpleNamespace(kept=[])
    gw.queue.verdicts = []
    gw.synced, gw.reachable, gw.answer_timer = True, True, AnswerTimer(0.2, 1.0)
    gw.sender, gw.id, gw.key = Sender(), 3, Key(bytes(32))
    gw.host_requests, gw.decided_alone, gw.denials, gw.last_request_id = {}, {}, [], 0
    gw.sequencer = SimpleNamespace(wants_snapshot=lambda now: False)
    gw.last_answer = gw.next_keepalive = time.monotonic() + 60
    monkeypatch.setattr(gw, "_keep_writer", lambda: None)
    asked = []
    monkeypatch.setattr(gw, "_ask", lambda flow, pending: asked.append(flow))
    start = time.monotonic()
    for k in range(1, 5001):
        gw._request(_flow(k), Watched(0, False, False, [], start + k * 1e-4))
    Watched.reads = 0
    later = start + 0.2 + 10.5e-4  # the first ten are due
    _at(monkeypatch, later)
    monkeypatch.setattr(gateway, "time", SimpleNamespace(monotonic=lambda: later))
    gw.tick()
    gw._timeout()
    assert Watched.reads <= 20 and asked[5000:] == [_flow(k) for k in range(1, 11)]
    assert list(gw.pending)[-10:] == asked[5000:]  # asked again: now the newest


def test_a_batch_retried_change_by_change_counts_its_timeouts_from_the_retry(monkeypatch):
    """A refused batch is written again flow by flow; the changes are made again, so an
    element written a second later lives a second less (reused, the retry held grants up to
    the socket's 5 s wait past their renewal)."""
    gw = _gateway(monkeypatch, start=False)
    clock = time.monotonic()

    def at(now):  # grants are made, and their elements' timeouts counted, at ``now``
        _at(monkeypatch, now)
        monkeypatch.setattr(gateway_flows, "time", SimpleNamespace(monotonic=lambda: now))

    at(clock)
    written = []

    class RefusesBatches:
        def apply(self, changes):
            if len(changes) > 3:  # the batch: refused, and it took a second
                at(clock + 1)
                return [(changes[0], 1)]
            written.append(changes)
            return []

    gw.sets = RefusesBatches()
    for k in (1, 2):
        gw.grant(_flow(k), Pending(k, False, False, [k], clock), TTL_MS)
    gw.apply_elements()
    timeouts = [t for changes in written for t in _timeouts(changes)]
    full = round((TTL_MS / 1000 - renewal_margin(TTL_MS)) * 1000)
    assert len(timeouts) == 2 and all(abs(t - (full - 1000)) <= 1 for t in timeouts), timeouts


def test_where_the_kernel_changes_a_timeout_in_place_a_hold_is_one_change(monkeypatch):
    gw = _gateway(monkeypatch)
    gw.sets.go.set()
    for in_place, changes in ((False, 3), (True, 1)):
        gw.in_place = in_place
        gw.grant(_flow(1), Pending(1, False, False, [1], time.monotonic()), TTL_MS)
        _settled(gw)
        assert len(gw.sets.commands[-1]) == changes and _timeouts(gw.sets.commands[-1])
