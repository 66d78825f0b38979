"""Second red-team round, without a network: what root writes where a host's user can plant
things, the journal a crash or a flipped bit leaves, the decisions a host can make the
authority take, messages from before a daemon started. Each attack first succeeded against
the code before its defence (see the commit that added it)."""

from __future__ import annotations

import os
from ipaddress import IPv4Address

import pytest

from protocols.registered import codec
from protocols.registered.admission import AdmissionRow, FlowRequest, Policy, admit
from protocols.registered.identity import issue
from protocols.registered.journal import RECORD_SIZE, Journal, read
from protocols.registered.messages import Reason, Type
from topologies.private import write_private


def a(text: str) -> int:
    return int(IPv4Address(text))


@pytest.fixture
def canary(tmp_path):
    """A file only its owner should write, outside any host's reach."""
    path = tmp_path / "outside" / "gateway.py"
    path.parent.mkdir()
    path.write_text("the code root runs\n")
    return path


def plant(directory, name, target):
    """The host's user, in its own private directory, links a predictable name to
    ``target``."""
    directory.mkdir(exist_ok=True)
    (directory / name).symlink_to(target)
    return directory / name


def test_a_card_lent_into_a_planted_link_overwrites_nothing(tmp_path, canary):
    link = plant(tmp_path / "private-h9", "borrowed-NID-00013.json", canary)
    issue("NID-00013", "A Spare").save(link, uid=os.getuid())
    assert canary.read_text() == "the code root runs\n"
    assert not link.is_symlink() and "NID-00013" in link.read_text()
    assert oct(link.stat().st_mode & 0o777) == "0o600"


def test_a_file_given_to_a_host_into_a_planted_link_overwrites_nothing(tmp_path, canary):
    link = plant(tmp_path / "private-h1", "cert.pem", canary)
    write_private(link, b"a certificate", os.getuid())
    assert canary.read_text() == "the code root runs\n"
    assert link.read_bytes() == b"a certificate" and not link.is_symlink()


def test_a_link_planted_at_the_scratch_name_is_refused_not_followed(tmp_path, canary,
                                                                     monkeypatch):
    """Should the host's user guess the fresh name root writes under first, the write fails
    rather than follow a link there."""
    import topologies.private as private

    monkeypatch.setattr(private.secrets, "token_hex", lambda n: "guessed")
    directory = tmp_path / "private-h1"
    plant(directory, ".cert.pem.guessed", canary)
    with pytest.raises(FileExistsError):
        write_private(directory / "cert.pem", b"a certificate", os.getuid())
    assert canary.read_text() == "the code root runs\n"


def rows(n: int) -> list[AdmissionRow]:
    return [AdmissionRow(1000.0 + k, 1, k + 1, 10 + k, 20, 6, 40000, 80, False, False, True, 0)
            for k in range(n)]


def test_a_journal_torn_anywhere_in_its_last_record_keeps_every_whole_one(tmp_path):
    from protocols.registered.admission import AdmissionRow

    rows = [AdmissionRow(1000.0 + k, 1, k or None, 10 + k, 20, 6, 40000, 80, bool(k % 2), False,
                         True, 0) for k in range(5)]
    for torn in range(1, RECORD_SIZE):
        path = tmp_path / f"j{torn}"
        journal = Journal(path)
        journal.append(rows[:4])
        journal.close()
        with open(path, "r+b") as f:  # the last record, cut short: a kill -9 mid-write
            f.truncate(4 * RECORD_SIZE - torn)
        again = Journal(path)
        assert again.torn_bytes == RECORD_SIZE - torn
        again.append(rows[4:])
        got, end = again.read_from(0)
        assert got == rows[:3] + rows[4:], torn
        assert end == path.stat().st_size == 4 * RECORD_SIZE


def test_one_corrupt_record_in_the_middle_loses_only_itself(tmp_path):
    path = tmp_path / "registry.journal"
    journal = Journal(path)
    journal.append(rows(10))
    journal.close()
    with open(path, "r+b") as f:  # a flipped byte inside record 3
        f.seek(2 * RECORD_SIZE + RECORD_SIZE // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    again = Journal(path)
    assert again.torn_bytes == 0 and again.corrupt_records == 1
    got, end = read(path)
    assert got == rows(10)[:2] + rows(10)[3:] and end == 10 * RECORD_SIZE
    again.append(rows(11)[10:])
    assert read(path)[0][-1] == rows(11)[10]


H1, H2, AUTH = a("198.19.1.2"), a("198.19.2.2"), a("198.19.6.2")


@pytest.fixture
def policy():
    p = Policy(ttl_ms=5000, infrastructure=[(a("198.18.0.0"), 16), (AUTH, 32)])
    p.bind(1, H1, 1)
    p.bind(2, H2, 2)
    return p


@pytest.mark.parametrize("dst, port", [(AUTH, 7400), (a("198.18.3.1"), 7402),
                                       (a("198.18.0.9"), 22)])
def test_no_host_is_admitted_to_the_control_plane(policy, dst, port):
    """The authority's address and every router's (links and loopbacks) are no destination:
    a host granted UDP to 7400 or a gateway's 7402 could flood them."""
    assert admit(FlowRequest(1, H1, dst, 17, 40000, port, False), policy).reason == \
        Reason.INFRASTRUCTURE


def test_a_blocked_host_reaches_nobody_either(policy):
    """A block is both ways: a blocked address is no destination, and starts nothing."""
    policy.blocked = [(H1, 32)]
    assert admit(FlowRequest(1, H1, a("203.0.113.10"), 6, 40000, 443, False), policy).reason == \
        Reason.BLOCKED
    assert admit(FlowRequest(2, H2, H1, 6, 40000, 80, False), policy).reason == Reason.BLOCKED


def test_a_message_sent_before_the_receiver_started_is_refused():
    """A restarted gateway's replay memory is empty: anything the authority said in the five
    seconds before the restart could be played to it once. Nothing timestamped before a
    receiver's start is accepted."""
    key = codec.Key(b"k" * 32)
    said = codec.now_us() - 1_000_000  # a second ago, still fresh
    data = codec.encode(Type.KEEPALIVE, 1, codec.new_session(), 1, (7,), key, timestamp=said)
    assert codec.open_message(data, {1: key}.get, {}, started_us=said - 1).body == (7,)
    with pytest.raises(codec.Rejected, match="before this receiver started"):
        codec.open_message(data, {1: key}.get, {}, started_us=said + 1)


# -- policy changes are retransmitted until acknowledged -------------------------------------
@pytest.fixture
def authority(tmp_path):
    from protocols.registered.authority import Authority
    from protocols.registered.registry import Gateway, Registry

    Registry.create(tmp_path / "r.db", [Gateway(4, "a1", "north", b"g" * 32, 0x7F000001)],
                    [issue("NID-1", "Ada Okafor")], 5000).close()
    auth = Authority(tmp_path / "r.db", "127.0.0.1", tmp_path / "admin.sock", port=0)
    yield auth
    auth.sock.close()
    auth.admin.close()


def test_a_change_lost_again_and_again_is_sent_while_the_gateway_is_heard(authority,
                                                                          monkeypatch):
    """Every copy of a CUT lost while the gateway's keepalives still arrive: the authority
    used to give up after 30 s, and the gateway, never out of touch, never asked again."""
    import time as clock

    authority.policy.blocked.append((a("203.0.113.8"), 29))
    authority.commit_and_push()
    ((key, out),) = authority.outgoing.items()
    out.first_sent -= 60  # a minute of copies lost
    out.last_sent -= 60
    authority.last_seen[4] = clock.time()  # its keepalives arrive
    authority.retransmit()
    assert key in authority.outgoing, "the change was given up while the gateway is heard"


def test_a_keepalive_behind_the_authority_brings_the_gateway_its_state(authority):
    """A gateway whose applied number is behind, with nothing on its way to it, gets a
    snapshot: a change acknowledged by nobody is never missing for good."""
    from protocols.registered.codec import Key, Sender, encode

    authority.seq[4] = 7
    session, counter = Sender().next(0)
    keepalive = encode(Type.KEEPALIVE, 4, session, counter, (5,), Key(b"g" * 32))
    authority.handle(keepalive, [])
    assert any(k[0] == 4 and k[1] == 7 for k in authority.outgoing), authority.outgoing


# -- a host's questions are on a budget ------------------------------------------------------
def test_a_port_sweep_asks_the_authority_only_within_the_hosts_budget():
    """Every unseen flow was a question and a log row: 10 000 ports swept at once used to
    load the authority 10 000 times. Now the burst passes, then the rate; refusals are logged
    once a second; another host's and the host's own inbound budget are untouched."""
    from protocols.registered.budget import Budget

    budget = Budget(rate=200, burst=1000)
    asked = sum(budget.spend(H1, False, 0.0) for _ in range(10_000))
    assert asked == 1000
    assert sum(budget.spend(H1, False, 0.5) for _ in range(10_000)) == 100  # half a second
    logged = [budget.log_refusal(H1, False, t) for t in (0.5, 0.6, 1.4, 1.6)]
    assert logged == [True, False, False, True]
    assert budget.spend(H2, False, 0.5) and budget.spend(H1, True, 0.5)


def test_importing_a_journal_being_written_never_cuts_it(tmp_path):
    """When an operator call timed out with the authority alive, its journal was opened for
    writing to import it, which cut the record the authority was still writing."""
    from protocols.registered.journal import JournalReader
    from protocols.registered.registry import Registry

    Registry.create(tmp_path / "r.db", [], [], 5000).close()
    path = tmp_path / "r.journal"
    journal = Journal(path)
    journal.append(rows(3))
    with open(path, "ab") as f:
        f.write(b"\x53\x4a\x00")  # the authority, mid-write
    registry = Registry(tmp_path / "r.db")
    assert registry.import_journal(JournalReader(path)) == 3
    registry.close()
    assert path.stat().st_size == 3 * RECORD_SIZE + 3
    journal.close()


def test_importing_in_chunks_reads_no_more_than_it_needs(tmp_path, monkeypatch):
    """The authority imports 32 rows at a time; reading the whole backlog each time made an
    import cost in proportion to it."""
    from protocols.registered import journal as journal_module

    path = tmp_path / "r.journal"
    journal = Journal(path)
    journal.append(rows(5000))
    journal.close()
    seen = []
    real = journal_module.scan
    monkeypatch.setattr(journal_module, "scan",
                        lambda data, *a: seen.append(len(data)) or real(data, *a))
    got, end = read(path, 100 * RECORD_SIZE, limit=32)
    assert got == rows(5000)[100:132] and end == 132 * RECORD_SIZE
    assert seen == [33 * RECORD_SIZE]


def test_a_datagram_claiming_a_gateway_from_elsewhere_costs_the_authority_nothing(authority):
    """Anyone abroad could send the authority datagrams in a gateway's name, each an HMAC to
    check: only the gateway's own address is heard."""
    import socket

    from protocols.registered.codec import Key, Sender, encode

    session, counter = Sender().next(0)
    keepalive = encode(Type.KEEPALIVE, 4, session, counter, (0,), Key(b"g" * 32))
    target = authority.sock.getsockname()
    import time as clock

    def send(source: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.sendto(keepalive, target)
        sock.close()
        clock.sleep(0.1)
        authority.serve_batch()

    send("127.0.0.2")  # elsewhere: not even checked, so not heard
    assert 4 not in authority.last_seen
    send("127.0.0.1")  # the same datagram from the gateway's own address (the control)
    assert authority.last_seen.get(4)
    assert dict(authority.counters) == {"not from its gateway's address": 1}
