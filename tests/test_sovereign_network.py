"""IP under national control on a real network (isp): every user reaches every user until a
rule says otherwise; a rule is in force at every box when push() returns; a cut follows the
person to a new address; the flow records name the person, even for what a box stopped; the
regulator's death takes no traffic and no rule with it; a throttled destination gets the
rate it was given."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import topologies
from experiments import subjects
from experiments.model.reachability import users
from experiments.paired import bring_up
from experiments.probing import probes
from protocols.instruments import Aim
from protocols.sovereign.architecture import SovereignError
from protocols.sovereign.rules import Rules
from topologies.polling import wait_until

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def isp():
    g = topologies.build("isp")
    with bring_up(g, "sovereign") as (net, services, arch):
        yield net, services, arch, subjects.choose(g)


def test_everyone_reaches_everyone_until_a_rule_says_otherwise(isp):
    net, _, _, _ = isp
    results = probes.pingall(net, users(net.graph))
    assert all(r.ok for r in results), [f"{r.src}->{r.dst}" for r in results if not r.ok]


def test_a_cut_follows_the_person_and_the_records_name_them(isp):
    net, services, arch, who = isp
    tools = arch.instruments(net, services)
    aim = Aim(who.victim, who.blocked_site, who.named_site, who.region, (), ())
    assert probes.ping(net, who.victim, who.server).ok
    since = time.time()
    tools.act("person", aim)
    try:
        assert not probes.ping(net, who.victim, who.server, timeout=1).ok
        original = net.address(who.victim)
        net.readdress(who.victim)
        tools.moved(who.victim)
        try:
            assert not probes.ping(net, who.victim, who.server, timeout=1).ok  # followed
        finally:
            net.readdress(who.victim, original)
            tools.moved(who.victim)
    finally:
        tools.undo("person", aim)
    assert probes.ping(net, who.victim, who.server).ok
    assert wait_until(lambda: net.address(who.server) in tools.records(who.victim, since),
                      5, 0.25)  # exported every half second


def test_the_records_hold_what_a_box_stopped(isp):
    """A real-name regime records attempts too: a contact the box dropped never became a
    connection in its router's table, yet the person tried it."""
    net, services, arch, who = isp
    tools = arch.instruments(net, services)
    aim = Aim(who.victim, who.blocked_site, who.named_site, who.region, (), ())
    site = services.owner(who.blocked_site)
    tools.act("destination", aim)
    try:
        since = time.time()
        assert not probes.ping(net, who.victim, site, timeout=1).ok
        assert wait_until(lambda: net.address(site) in tools.records(who.victim, since),
                          5, 0.25), tools.records(who.victim, since)
    finally:
        tools.undo("destination", aim)


def _children_cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])  # cutime + cstime: children it waited for


def test_a_box_at_rest_starts_no_program(isp):
    """Its records are listed twice a second in the box itself: an ``nft`` program each time
    cost a 163-router graph half a core and the delay path its punctuality at rest."""
    net, _, arch, _ = isp
    pids = [d.pid() for d in net.daemons if d.name == "box"]
    before = {pid: _children_cpu_ticks(pid) for pid in pids}
    time.sleep(4)
    assert {pid: _children_cpu_ticks(pid) - t for pid, t in before.items()} == \
        dict.fromkeys(pids, 0)


def test_the_regulator_dying_takes_no_traffic_and_no_rule(isp):
    net, services, arch, who = isp
    site = services.owner(who.blocked_site)
    arch.push(Rules(blocked=tuple(f"{a}/32" for a in services.records[who.blocked_site])))
    arch.kill_central()
    try:
        assert not probes.ping(net, who.user, site, timeout=1).ok  # the rule stays
        assert probes.ping(net, who.user, who.server).ok            # the rest passes
        with pytest.raises(SovereignError):
            arch.push(Rules())  # nobody to push it
    finally:
        arch.restart_central()
    arch.push(Rules())
    assert probes.ping(net, who.user, site).ok


def test_a_throttled_destination_gets_its_rate(isp):
    net, _, arch, who = isp
    arch.push(Rules(throttled=((f"{net.address(who.server)}/32", 150),)))
    try:
        goodput = probes.iperf3(net, who.user, who.server, seconds=4, omit=1)[
            "sum_received"]["bits_per_second"] / 1000
    finally:
        arch.push(Rules())
    assert 60 < goodput < 200, goodput  # kbit/s: a policer's rate, TCP's sawtooth below it


def test_the_lab_acts_with_the_regulator_s_boxes(isp, capsys):
    """The lab's design-neutral commands (act, records, central) on this design."""
    from experiments.commands.console import SplinterCLI
    from experiments.lab import Lab

    net, services, arch, who = isp
    lab = object.__new__(SplinterCLI)  # Mininet's CLI starts reading stdin in __init__
    lab.attach(Lab.of(net, services, arch))
    lab.do_act(f"person {who.victim}")
    try:
        assert not probes.ping(net, who.user, who.victim, timeout=1).ok
        lab.do_records(who.victim)
        lab.do_act("person")  # already in force: usage, nothing taken twice
    finally:
        lab.do_act("undo person")
    assert probes.ping(net, who.user, who.victim).ok
    lab.do_central("down")
    try:
        assert probes.ping(net, who.user, who.victim).ok  # the boxes pass traffic without it
    finally:
        lab.do_central("up")
    lab.do_central("up")  # up already: not started twice
    running = subprocess.run(["pgrep", "-fc", "protocols.sovereign.regulator"],
                             capture_output=True, text=True).stdout.strip()
    assert running == "1", running
    lab.do_act("destination nowhere.example")
    out = capsys.readouterr().out
    assert "person: in force after" in out and "person: undone" in out
    assert f"{who.victim}: " in out and "nothing on record" not in out
    assert "usage: act" in out and "destination takes one of:" in out
    assert "the regulator is down" in out and "the regulator is up" in out

