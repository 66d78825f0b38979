"""Time to effect from a one-way stream: by sequence and arrival, never by send time."""

from __future__ import annotations

from experiments.probing.probes import Sample, cut_time, one_way_ms

ISSUED = 100.0
INTERVAL = 0.001


def stream(n: int, one_way: float = 0.02, lost=(), send_at=None,
           arrive_at=None) -> list[Sample]:
    """``n`` datagrams a millisecond apart from 99.5 s; ``lost`` their sequence numbers that
    never arrive; ``send_at``/``arrive_at`` override a datagram's times."""
    out = []
    for seq in range(1, n + 1):
        sent = (send_at or {}).get(seq, 99.5 + (seq - 1) * INTERVAL)
        if seq in lost:
            out.append(Sample(seq, sent, None))
            continue
        received = (arrive_at or {}).get(seq, sent + one_way)
        out.append(Sample(seq, sent, 1000 * (received - sent), received))
    return out


def cut_after(seq: int, n: int = 1000) -> set[int]:
    return set(range(seq + 1, n + 1))


def test_a_clean_cut_counts_to_the_last_arrival():
    """The cut falls between datagram 510 (sent at 100.009) and 511: the last arrival is
    510's, 20 ms on, so 29 ms after the command."""
    samples = stream(1000, lost=cut_after(510))
    assert round(1000 * cut_time(samples, ISSUED), 3) == 29.0


def test_a_chokepoint_far_down_the_path_gets_no_credit_for_what_was_past_it():
    """Datagrams already past the chokepoint still arrive and count: the old send-time cut
    read 0 ms for a border that cut at once the datagrams sent 15 ms before the command."""
    samples = stream(1000, one_way=0.04, lost=cut_after(486))  # sent at 99.985
    assert round(1000 * cut_time(samples, ISSUED), 3) == 25.0


def test_a_sender_that_stalls_and_catches_up_is_measured_by_sequence():
    """Both cores busy: datagrams 501-560 leave together at 100.06 (late, in order); the cut
    came after 540. Reconstructed send times would have put lost ones before arrived ones."""
    late = {seq: 100.06 for seq in range(501, 561)}
    samples = stream(1000, lost=cut_after(540), send_at=late)
    assert round(1000 * cut_time(samples, ISSUED), 3) == 80.0


def test_losses_before_the_cut_do_not_end_it_early():
    lossy = {k for k in range(400, 530) if k % 7 == 0}
    samples = stream(1000, lost=lossy | cut_after(530))
    assert round(1000 * cut_time(samples, ISSUED), 3) == 49.0


def test_reordered_arrivals_count_the_latest():
    """Datagram 505 overtaken by the last one: the last to arrive is 505, at 100.07."""
    samples = stream(1000, lost=cut_after(520), arrive_at={505: 100.07})
    assert round(1000 * cut_time(samples, ISSUED), 3) == 70.0


def test_traffic_that_never_stops_has_no_time_to_effect():
    assert cut_time(stream(1000), ISSUED) is None
    assert cut_time(stream(1000, lost={700, 999}), ISSUED) is None  # losses, not a cut


def test_a_stop_before_the_command_is_not_its_effect():
    assert cut_time(stream(1000, lost=cut_after(300)), ISSUED) is None
    assert cut_time(stream(1000, lost=set(range(1, 1001))), ISSUED) is None


def test_a_tail_too_short_to_tell_is_not_a_cut():
    assert cut_time(stream(1000, lost=cut_after(990)), ISSUED) is None
    assert cut_time(stream(1000, lost=cut_after(980)), ISSUED) is not None


def test_one_way_delay_is_the_median_of_what_arrived():
    assert round(one_way_ms(stream(100, one_way=0.03, lost={5, 6})), 6) == 30.0
    assert one_way_ms(stream(3, lost={1, 2, 3})) is None
