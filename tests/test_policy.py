"""Each gateway's share of the policy, applied in order: changes, gaps, snapshots."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.registered.admission import Policy
from protocols.registered.messages import MAX_ITEMS, Action
from protocols.registered.policy import Enforced, Sequencer, Snapshot, from_parts


def policy() -> Policy:
    p = Policy(region_of={1: "north", 2: "south"})
    p.bind(1, 101, 1)
    p.bind(2, 102, 1)
    p.bind(3, 201, 2)
    return p


def test_a_gateways_share_is_its_own_hosts_and_everyones_blocks():
    p = policy()
    p.revoked.add(2)
    p.blocked = [(999, 32)]
    p.shutdowns = {"south": [(7, 32)]}
    assert Enforced.of(p, 1) == Enforced({101: 1, 102: 2}, {102: 2}, {(999, 32)}, None,
                                         ttl_ms=p.ttl_ms)
    assert Enforced.of(p, 2) == Enforced({201: 3}, {}, {(999, 32)}, ((7, 32),),
                                         ttl_ms=p.ttl_ms)


def test_changes_turn_one_share_into_another():
    p = policy()
    before = Enforced.of(p, 1)
    p.revoked.add(1)
    p.bind(2, 103, 1)  # identity 2 moved to another address
    after = Enforced.of(p, 1)
    changes = before.changes_to(after)
    assert [a for a, _ in changes] == [Action.UNBIND, Action.BIND, Action.CUT]
    state = before.copy()
    for action, items in changes:
        state.apply(action, items)
    assert state == after


# a share binds each identity to one address and each address to one identity
BINDINGS = st.dictionaries(st.integers(1, 200), st.integers(1, 500), max_size=150).map(
    lambda by_identity: {a: i for i, a in by_identity.items()}
    if len(set(by_identity.values())) == len(by_identity) else {})


@settings(max_examples=200)
@given(BINDINGS, BINDINGS,
       st.sets(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), max_size=5),
       st.none() | st.tuples(st.tuples(st.integers(0, 9), st.just(32))),
       st.integers(100, 86_400_000))
def test_any_share_is_reached_from_any_other_and_from_its_snapshot(a, b, blocked, shutdown,
                                                                   ttl_ms):
    one = Enforced(a, {k: v for k, v in a.items() if k % 3 == 0}, set(), None)
    two = Enforced(b, {k: v for k, v in b.items() if k % 5 == 0}, blocked, shutdown,
                   ttl_ms=ttl_ms)
    state = one.copy()
    for action, items in one.changes_to(two):
        assert len(items) <= MAX_ITEMS
        state.apply(action, items)
    assert state == two
    assert from_parts(two.parts()) == two


def test_changes_apply_in_order_whatever_order_they_arrive_in():
    seq = Sequencer()
    c = [(Action.BIND, ((k, 32, k),)) for k in range(5)]
    assert seq.offer(2, c[2], 0.0) == []          # early: held
    assert seq.offer(3, c[3], 0.0) == []
    assert seq.offer(1, c[1], 0.1) == [c[1], c[2], c[3]]
    assert seq.offer(2, c[2], 0.2) == []          # a repeat: ignored
    assert seq.applied == 3 and not seq.wants_snapshot(0.2)


def test_a_gap_that_does_not_close_asks_for_a_snapshot_which_fills_it():
    seq = Sequencer(patience_s=0.5)
    later = (Action.UNBIND, ((1, 32, 1),))
    seq.offer(5, later, 0.0)
    assert not seq.wants_snapshot(0.4) and seq.wants_snapshot(0.5)
    assert seq.snapshot_applied(4, 0.6) == [later]  # the snapshot at 4, then 5
    assert seq.applied == 5 and not seq.wants_snapshot(9.0)


def test_a_late_reset_cannot_undo_newer_bindings():
    """The old protocol's hole: a sync's RESET, lost and retransmitted after its BINDs, wiped
    the gateway. Now a snapshot is applied as a difference, and one older than what is in
    force is ignored (the gateway checks its number before applying it)."""
    state = Enforced({101: 1, 102: 2}, {}, set(), None)
    snapshot = Snapshot(seq=7, parts=2)
    parts = state.parts()
    assert len(parts) == 1
    snapshot = Snapshot(seq=7, parts=1)
    assert snapshot.add(0, parts[0])
    assert state.changes_to(snapshot.state()) == []  # the same state: nothing to undo


def test_an_empty_share_still_has_a_state_to_send():
    assert Enforced().parts() == [] and from_parts([(Action.LIFT, ())]) == Enforced()


def test_a_flush_missed_and_made_up_by_a_snapshot_still_forgets_the_grants():
    """A flush is state: a gateway that was down when it was sent learns of it from the
    snapshot that brings it up to date (and forgets the grants it gave before)."""
    p = policy()
    p.flushes = {1: 2}
    share = Enforced.of(p, 1)
    assert share.flushes == 2
    behind = Enforced({101: 1, 102: 2}, flushes=1)
    assert behind.changes_to(share)[-1] == (Action.FLUSH, ((0, 0, 2),))
    assert from_parts(share.parts()) == share
    assert share.changes_to(share.copy()) == []  # no flush where none was missed


def test_flush_changes_count_up_one_at_a_time_when_they_carry_no_count():
    state = Enforced()
    state.apply(Action.FLUSH, ())
    state.apply(Action.FLUSH, ((0, 0, 5),))
    state.apply(Action.FLUSH, ())
    assert state.flushes == 6


def test_the_operators_ttl_reaches_every_gateway_by_change_and_by_snapshot():
    """A gateway decides alone (fail-open) and batches renewals with the TTL it knows: the
    operator's ``ttl`` is part of its share, sent as a change and carried by snapshots."""
    p = policy()
    before = Enforced.of(p, 1)
    p.ttl_ms = 5000
    after = Enforced.of(p, 1)
    assert before.changes_to(after) == [(Action.TTL, ((0, 0, 5000),))]
    assert from_parts(after.parts()).ttl_ms == 5000
    state = before.copy()
    state.apply(Action.TTL, ((0, 0, 5000),))
    assert state == after


def _bind_seconds(n: int) -> float:
    """Least of three: a farm of ``n`` devices bound at a gateway, in chunks as they arrive."""
    changes = [(Action.BIND, tuple((0x0A000000 + k, 32, 1 + k) for k in range(start, min(
        n, start + MAX_ITEMS)))) for start in range(0, n, MAX_ITEMS)]
    best = float("inf")
    for _ in range(3):
        share, started = Enforced(), time.perf_counter()
        for action, items in changes:
            share.apply(action, items)
        best = min(best, time.perf_counter() - started)
    assert len(share.bound) == n
    return best


def test_binding_a_farm_takes_time_in_proportion_to_its_devices():
    """A gateway applies its farm's bindings (16 000 devices and more) in time linear in the
    devices: eight times the devices, far less than 64 times the time, measured side by side."""
    assert _bind_seconds(16_000) < 24 * _bind_seconds(2_000)


def test_a_rebound_identity_and_a_reused_address_leave_no_stale_binding():
    share = Enforced()
    share.apply(Action.BIND, ((10, 32, 1), (11, 32, 2)))
    share.apply(Action.BIND, ((12, 32, 1),))   # identity 1 moves
    share.apply(Action.BIND, ((11, 32, 3),))   # address 11 goes to identity 3
    share.apply(Action.BIND, ((13, 32, 2),))   # identity 2 binds again elsewhere
    share.apply(Action.UNBIND, ((12, 32, 1),))
    share.apply(Action.BIND, ((14, 32, 1),))
    assert share.bound == {11: 3, 13: 2, 14: 1}
