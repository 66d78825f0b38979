"""IP under national control, part by part without a network: the rule sets boxes accept and
what they compile them to, the regulator and a box talking over loopback, the subscriber
register's leases."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from protocols.sovereign.box import Box
from protocols.sovereign.instruments import InspectionInstruments
from protocols.sovereign.regulator import RULES
from protocols.sovereign.rules import RECORD_S, Place, Rules, RulesError, iptables, nft, recorder
from protocols.sovereign.subscribers import Subscribers
from topologies.polling import wait_until

ACCESS = Place("a1", False, ("a1-eth1", "a1-eth2"), region="north")
BORDER = Place("b1", True, ("b1-eth3",))


def test_a_rule_set_survives_the_wire_and_a_bad_one_is_refused_whole():
    rules = Rules(3, ("198.18.1.5/32",), ("news.abroad.example",), ("CONNECT ",),
                  (("198.18.9.0/24", 150),), {"north": ("198.18.2.2/32",)}, True)
    assert Rules.loads(rules.dumps()) == rules
    for bad in ({"keywords": ['say "hi"']}, {"blocked": ["not a prefix"]},
                {"throttled": [["198.18.9.0/24", 0]]}):
        data = {**json.loads(rules.dumps()), **bad}
        with pytest.raises(RulesError):
            Rules.loads(json.dumps(data))


def test_each_box_compiles_the_share_that_concerns_it():
    rules = Rules(1, ("198.18.1.5/32",), (), (), (("198.18.9.0/24", 160),),
                  {"north": ("198.18.2.2/32",)}, True)
    access, border = nft(rules, ACCESS), nft(rules, BORDER)
    assert 'iifname { "a1-eth1", "a1-eth2" } jump inspect' in access
    assert "elements = { 198.18.1.5/32 }" in access and "ip saddr @blocked" in access
    assert "limit rate over 20 kbytes/second" in access  # 160 kbit/s
    # a shut-down region passes the essential and nothing else, but a person cut off stays
    # cut off; the border is not in a region
    assert access.index("@blocked counter drop") < access.index("@essential counter accept") \
        < access.index("\n    counter drop\n")
    assert "@essential counter accept" not in border
    assert "    counter drop" in border and "    counter drop" not in nft(Rules(), BORDER)
    assert "    counter drop" not in nft(Rules(cut_border=True), ACCESS)  # only borders cut


def test_keywords_and_fingerprints_reset_connections_and_the_jumps_are_added_once():
    rules = Rules(1, keywords=("news.abroad.example",), fingerprints=("CONNECT ",))
    first, again = iptables(rules, ACCESS, True), iptables(rules, ACCESS, False)
    assert first.count("-j SPLINTER_BOX") == 4 and "-j SPLINTER_BOX" not in again
    assert again.count("--reject-with tcp-reset") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _regulator(directory, port) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "protocols.sovereign.regulator",
                             str(directory), "127.0.0.1", str(port)],
                            cwd=Path(__file__).resolve().parent.parent)


def test_a_box_gets_every_rule_set_keeps_it_without_its_regulator_and_survives_a_refusal(
        tmp_path):
    port = _free_port()
    applied: list[int] = []

    def apply(rules, place, first):
        if rules.keywords == ("refused",):
            raise RuntimeError("nft: syntax error")
        applied.append(rules.version)

    (tmp_path / RULES).write_text(Rules(1, ("198.18.1.5/32",)).dumps())
    regulator = _regulator(tmp_path, port)
    try:
        box = Box(ACCESS, "127.0.0.1", tmp_path, apply=apply, port=port)
        threading.Thread(target=box.run, daemon=True).start()
        assert wait_until(lambda: box.rules.version == 1, 5, 0.05)
        assert wait_until(lambda: json.loads((tmp_path / "acks.json").read_text())["a1"][
            "version"] == 1, 5, 0.05)
        time.sleep(0.05)  # a new mtime
        (tmp_path / RULES).write_text(Rules(2, keywords=("refused",)).dumps())
        assert wait_until(lambda: box.refused >= 1, 5, 0.05)
        assert box.rules.version == 1 and applied == [1]  # the last good rules stay in force
        time.sleep(0.05)
        (tmp_path / RULES).write_text(Rules(3, ("198.18.1.6/32",)).dumps())
        assert wait_until(lambda: box.rules.version == 3, 5, 0.05)
        regulator.kill()  # the regulator dies
        regulator.wait()
        time.sleep(0.5)
        assert box.rules.version == 3 and applied == [1, 3]
    finally:
        regulator.kill()
    status = json.loads((tmp_path / "a1.status.json").read_text())
    assert status["version"] == 3 and status["refused"] >= 1


def test_the_regulators_keepalives_to_boxes_that_got_one_rule_set_do_not_stay_in_step(
        tmp_path):
    """A rule set reaches every box at once; keepalives each a fixed second after would then
    reach them all in the same instant every second ever after: on zoo:TataNld 145 of them
    at once queued 128 deep at the regulator's router, and the delay path, serving them in a
    burst, ran late by milliseconds at rest. A periodic message is jittered so that it does
    not synchronise (as routing protocols learnt to): here, few of a box's silences are the
    same second (each read where it ends, so a stalled test lengthens some, never evens
    them)."""
    import selectors

    boxes, port = 30, _free_port()
    (tmp_path / RULES).write_text(Rules(1, ("198.18.1.5/32",)).dumps())
    regulator = _regulator(tmp_path, port)
    sel = selectors.DefaultSelector()
    heard: dict[str, list[float]] = {}
    try:
        assert wait_until(lambda: _listening(port), 5)
        for k in range(boxes):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(json.dumps({"box": f"b{k}", "have": 0}).encode() + b"\n")
            sel.register(conn, selectors.EVENT_READ, (f"b{k}", conn.makefile("rb")))
        for key in list(sel.get_map().values()):  # rule set 1 to all at once, acknowledged
            name, stream = key.data
            assert json.loads(stream.readline())["version"] == 1
            key.fileobj.sendall(json.dumps({"box": name, "have": 1}).encode() + b"\n")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            for key, _ in sel.select(0.05):
                name, stream = key.data
                if stream.readline().strip() == b"{}":
                    heard.setdefault(name, []).append(time.monotonic())
    finally:
        regulator.kill()
        regulator.wait()
        for key in list(sel.get_map().values()):
            key.data[1].close()
            key.fileobj.close()
        sel.close()
    gaps = [b - a for times in heard.values() for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 2 * boxes, len(gaps)
    in_step = sum(1 for g in gaps if 0.98 <= g <= 1.02)
    assert in_step <= len(gaps) // 2, f"{in_step} of {len(gaps)} silences 1.00 +- 0.02 s"


def test_the_record_set_notes_every_new_flow_on_a_watched_line_before_any_rule():
    text = recorder(ACCESS)
    # update, not add: a new connection restarts its entry, so a later attempt is seen
    assert 'ct state new iifname { "a1-eth1", "a1-eth2" } update @flows' in text
    assert 'ct state new oifname { "a1-eth1", "a1-eth2" } update @flows' in text
    assert "priority -5" in text and "priority -4" in nft(Rules(), ACCESS)  # before the rules
    assert "@flows" not in recorder(Place("c1", False, ()))


def _listing(*entries) -> str:
    """A record set as ``nft -j list set`` prints it: (src, dst, proto, seconds left)."""
    return json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {
        "family": "inet", "name": "flows", "timeout": RECORD_S, "elem": [
            {"elem": {"val": {"concat": [s, d, p]}, "expires": left}}
            for s, d, p, left in entries]}}]})


def test_flow_records_are_exported_once_each_and_again_once_begun_anew(tmp_path):
    box = Box(ACCESS, "127.0.0.1", tmp_path)
    first = _listing(("198.18.1.5", "198.18.9.9", "tcp", 59), ("198.18.1.5", "198.18.9.9",
                                                                 "icmp", 59))
    assert box.export(first, 10.0) == 2 and box.export(first, 11.0) == 0
    # whole seconds left: an entry read a little later may seem to have begun up to 1 s later
    assert box.export(_listing(("198.18.1.5", "198.18.9.9", "tcp", 59)), 10.9) == 0
    assert box.export(_listing(("198.18.1.5", "198.18.9.9", "tcp", 30)), 40.0) == 0
    # a new connection 9 s later (an attempt a rule stopped, say) restarted the entry
    assert box.export(_listing(("198.18.1.5", "198.18.9.9", "tcp", 59)), 20.0) == 1
    assert box.export(_listing(("198.18.1.5", "198.18.9.9", "tcp", 59)), 80.0) == 1  # anew
    assert box.export(json.dumps({"nftables": [{"set": {"name": "flows"}}]}), 81.0) == 0
    rows = [json.loads(x) for x in (tmp_path / "a1.flows.jsonl").read_text().splitlines()]
    assert [(r["t"], r["proto"], r["src"], r["dst"]) for r in rows] == [
        (10.0, "tcp", "198.18.1.5", "198.18.9.9"), (10.0, "icmp", "198.18.1.5", "198.18.9.9"),
        (20.0, "tcp", "198.18.1.5", "198.18.9.9"), (80.0, "tcp", "198.18.1.5", "198.18.9.9")]


def test_a_lease_names_who_held_an_address_when_and_follows_the_person(tmp_path):
    register = Subscribers(tmp_path / "s.db")
    register.sign_up("NID-00001", "Ada Okafor", "h1")
    register.sign_up("NID-00002", "Bela Sato", "h2")
    register.lease("h1", "198.18.1.5", now=100.0)
    register.lease("h1", "198.18.1.77", now=200.0)  # h1 moves
    register.lease("h2", "198.18.1.5", now=300.0)   # and its old address is reused
    assert register.addresses("NID-00001") == ["198.18.1.77"]
    assert register.holder("198.18.1.5", 150.0) == "NID-00001"
    assert register.holder("198.18.1.5", 250.0) is None
    assert register.holder("198.18.1.5", 350.0) == "NID-00002"
    with pytest.raises(KeyError):
        register.person("h9")
    # a line in a borrowed name: the lender, who has no line of their own, is who the log names
    register.sign_up("NID-00009", "Chen Novak", None)
    register.lease_to("NID-00009", "198.18.1.99", now=400.0)
    assert register.holder("198.18.1.99", 450.0) == "NID-00009"


def test_the_records_read_only_what_the_boxes_appended_and_start_over_on_a_new_file(tmp_path):
    """The lab's page asks for every host's records every few seconds: each read takes only
    what a box appended since the last (a line changed in place once read is not read again),
    a line still being written once it is whole, and a file cut short or replaced afresh."""
    register = Subscribers(tmp_path / "s.db")
    register.sign_up("NID-00001", "Ada Okafor", "h1")
    register.lease("h1", "198.18.1.5", now=0.0)
    tools = InspectionInstruments(
        SimpleNamespace(subscribers=register, directory=lambda: tmp_path), None, None)
    export = tmp_path / "a1.flows.jsonl"

    def flow(t: float, dst: str) -> str:
        return json.dumps({"t": t, "proto": "tcp", "src": "198.18.1.5", "dst": dst,
                           "box": "a1"}) + "\n"

    export.write_text(flow(10.0, "198.18.9.1"))
    assert tools.records("h1", 0.0) == {"198.18.9.1"}
    with export.open("r+") as f:  # changed in place: already read, so not read again
        f.write(flow(10.0, "198.18.9.2"))
    with export.open("a") as f:
        f.write(flow(20.0, "198.18.9.3") + flow(30.0, "198.18.9.4")[:-9])  # the last cut short
    assert tools.records("h1", 0.0) == {"198.18.9.1", "198.18.9.3"}
    with export.open("a") as f:
        f.write(flow(30.0, "198.18.9.4")[-9:])
    assert tools.records("h1", 20.0) == {"198.18.9.3", "198.18.9.4"}  # at or after since
    assert tools.records("h1", 30.5) == set()
    export.write_text(flow(40.0, "198.18.9.5"))  # cut short and written anew
    assert tools.records("h1", 0.0) == {"198.18.9.5"}
    fresh = tmp_path / "new"
    fresh.write_text("".join(flow(50.0, f"198.18.9.{i}") for i in (6, 7, 8)))
    fresh.replace(export)  # another file, longer than what was read of the last
    assert tools.records("h1", 0.0) == {"198.18.9.6", "198.18.9.7", "198.18.9.8"}
    export.unlink()
    assert tools.records("h1", 0.0) == set()


def test_an_unreadable_entry_costs_only_itself_and_a_full_record_set_is_said(tmp_path,
                                                                             monkeypatch):
    import protocols.sovereign.box as box_module

    monkeypatch.setattr(box_module, "RECORD_SLOTS", 2)
    box = Box(ACCESS, "127.0.0.1", tmp_path)
    listing = json.loads(_listing(("198.18.1.5", "198.18.9.9", "tcp", 59)))
    listing["nftables"][1]["set"]["elem"] += [{"elem": {"val": 7}}, "junk"]
    assert box.export(json.dumps(listing), 10.0) == 1
    assert box.unreadable == 2 and box.full  # three entries held, two of them unreadable
    box.save_status()
    status = json.loads((tmp_path / "a1.status.json").read_text())
    assert status["records_full"] and status["records_unreadable"] == 2
