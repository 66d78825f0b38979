"""Censorship capability: how fast, how precisely and how inescapably each design cuts off.

Five actions of the debate, each taken with the instruments an operator of that design has,
on subjects chosen by rule (``experiments.subjects``: a person, a region, two foreign sites,
the essential services):

=================  ===========================================  ============================
action             permissionless (a border censor)             registered (the authority)
=================  ===========================================  ============================
person             block the person's address at the border     revoke their identity
destination        block a foreign site's address               block that address
name               resolver lies about another foreign site     block the addresses it has
region             block the region's addresses at the border   shut the region down but
                                                                 for the essential services
country            cut the border                               block every foreign prefix
=================  ===========================================  ============================

Per action, measured from hosts: **time to effect** (command to the first datagram of a
one-way stream on a targeted flow that never arrived; for the lying resolver, to its first
lie), **precision** (share of the targeted flows stopped) and **collateral** (share of the
other flows stopped) over a matrix of every host to every site and every other host,
**evasion** (does each technique get the affected user to a targeted site: the foreign
resolver, a TLS tunnel through the relay abroad, a relay run by another user at home, a new
address, a new registration with their own card, a registration with somebody else's card
lent to them: the "borrowed identity" of real-name systems, after which the log blames the
card's owner), and **attribution** (the share of the affected user's destinations that the
operator's own records tie to them, over the whole run: the authority's admission log; for
the border censor, what its routers' connection tables hold, by address).
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments import subjects
from experiments.comparisons import censorship_report as report
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.model.censorship import TECHNIQUES
from experiments.probing.probes import LineProbers, Sample, UdpStream, cut_time, ping
from experiments.results import GzipCsv, RunWriter
from experiments.subjects import Subjects
from protocols.instruments import ACTIONS, THROTTLE, THROTTLE_KBIT, Aim
from topologies.graph import hosts
from topologies.polling import wait_until

NAME = "censorship"
# timings: how often each action's time to effect is measured (undone and taken again)
PROFILES = {"quick": {"timeout": 1.5, "repetitions": 1, "timings": 3},
            "full": {"timeout": 2.0, "repetitions": 3, "timings": 10}}
THROTTLE_S = 4  # seconds of iperf3 before and while throttled (the first left out)
STREAMS = "streams.csv.gz"  # every timed stream, datagram by datagram, for whoever doubts one
STREAM_HEADER = ["arch", "repetition", "action", "timing", "issued", "seq", "sent", "received"]
HEADER = ["arch", "repetition", "action", "phase", "src", "dst", "targeted", "ok", "label"]


@dataclass
class CensorshipConfig(ExperimentConfig):
    PROFILES = PROFILES
    timings: int = 0  # how often each time to effect is measured; 0: as the profile says

    def settings(self) -> dict:
        if self.timings < 0:
            raise ValueError(f"timings must be 0 (the profile's) or more, not {self.timings}")
        return {**super().settings(), **({"timings": self.timings} if self.timings else {})}


def check(g) -> None:
    """Subjects to act on (a region, people in and out of it, two foreign sites, a relay
    abroad), or one sentence on what the topology lacks."""
    subjects.choose(g)


class WebMatrix(LineProbers):
    """One web prober per host; ``round()`` runs every host's flows at once."""

    def __init__(self, net, services, hosts: list[str], timeout: float):
        self.net, self.services, self.hosts = net, services, hosts
        self.sites = sorted(services.sites())
        self.port = 30000
        super().__init__(net, hosts, lambda _: ["web", str(timeout)])

    def round(self) -> dict[tuple[str, str], dict]:
        self.port += 1
        resolver = self.net.address(self.services.resolver())
        plans, lines = {}, {}
        for h in self.hosts:
            tasks = [{"site": s, "resolver": resolver, "control": self.services.records[s]}
                     for s in self.sites]
            tasks += [{"host": self.net.address(d), "port": self.port} for d in self.hosts
                      if d != h]
            plans[h] = [*self.sites, *(d for d in self.hosts if d != h)]
            lines[h] = json.dumps(tasks)
        results = {}
        for h, answers in self.ask(lines).items():
            for target, answer in zip(plans[h], answers, strict=True):
                results[(h, target)] = answer
        return results


def targeted(action: str, flow: tuple[str, str], who: Subjects, region_hosts: set[str],
             essential: set[str]) -> bool:
    src, dst = flow
    if action == "person":
        return who.victim in flow
    if action == "destination":
        return dst == who.blocked_site
    if action == "name":
        return dst == who.named_site
    if action == "region":
        return (src in region_hosts or dst in region_hosts) and dst not in essential
    return dst.endswith(".abroad.example")


def affected(who: Subjects, action: str) -> str:
    """The user an action hits: the person cut off or inside the region, else a user."""
    return who.victim if action in ("person", "region") else who.user


def target_site(who: Subjects, action: str) -> str:
    return who.named_site if action == "name" else who.blocked_site


class Controls:
    """A design's instruments (``protocols.instruments``) aimed at this run's subjects."""

    def __init__(self, arch: str, net, services, arch_obj, who: Subjects):
        self.arch, self.net, self.services, self.arch_obj = arch, net, services, arch_obj
        self.who = who
        self.instruments = arch_obj.instruments(net, services)
        g = net.graph
        self.region_hosts = {h for h in hosts(g) if g.nodes[h].get("region") == who.region}
        self.essential_nodes = list(who.essential)
        self.essential_sites = {s for s, a in services.records.items()
                                if set(a) & {net.address(n) for n in self.essential_nodes}}
        self.aim = Aim(who.victim, who.blocked_site, who.named_site, who.region,
                       tuple(sorted(self.region_hosts)), tuple(self.essential_nodes))
        self.blamed: dict = {}  # after a borrowed identity: whom the log names
        self.started = time.time()  # attribution counts the records of the whole run

    def act(self, action: str) -> None:
        self.instruments.act(action, self.aim)

    def undo(self, action: str) -> None:
        self.instruments.undo(action, self.aim)

    def records(self, host: str, since: float) -> set[str]:
        """Destinations the operator's records tie to ``host`` since ``since``."""
        return self.instruments.records(host, since)


def timed_cut(net, services, operator: Controls, action: str) -> tuple[float, list[Sample]]:
    """Take ``action`` once while the affected user's targeted flow runs: returns when the
    command was issued and the flow's samples, for ``probes.cut_time`` (the command to the
    last datagram that arrived, for good). A one-way stream of a datagram a millisecond to
    the targeted site; for a lying resolver, a query every 2 ms, a lie or an empty answer
    counting as nothing arrived."""
    who = operator.who
    if action == "name" and operator.instruments.lies_about_names:
        poll = net.popen(who.user, [sys.executable, "-m", "experiments.probing.prober", "dns-poll",
                                    net.address(services.resolver()), who.named_site, "0.002"],
                         stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        issued = time.time()
        operator.act(action)
        time.sleep(0.5)
        net.signal(poll, signal.SIGINT)
        answers = json.loads(poll.communicate(timeout=15)[0])
        truth = set(services.records[who.named_site])
        return issued, [Sample(k, sent, 1000 * (got_at - sent), got_at)
                        if got and set(got) <= truth else Sample(k, sent, None)
                        for k, (sent, got, got_at) in enumerate(answers, 1)]
    stream = UdpStream(net, affected(who, action), services.owner(target_site(who, action)),
                       interval=0.001, port=9200)
    time.sleep(0.5)
    issued = time.time()
    operator.act(action)
    time.sleep(0.5)
    return issued, stream.stop()


def flowing_again(net, services, operator: Controls, action: str) -> bool:
    """After an undo, the targeted flow works again (bounded wait), so that the next timing
    starts from traffic that flows."""
    who = operator.who
    src, dst = affected(who, action), services.owner(target_site(who, action))
    return bool(wait_until(lambda: ping(net, src, dst, timeout=0.5).ok, 10, 0.1))


def time_to_effect(net, services, operator: Controls, action: str, timings: int,
                   keep) -> list[float | None]:
    """``timings`` measurements of the action's time to effect, in seconds (None: not
    measured, the flow did not stop for good or was not flowing before the command); the
    action is in force afterwards. ``keep(timing, issued, samples)`` stores each stream."""
    effects = []
    for timing in range(timings):
        if timing:
            operator.undo(action)
            flowing_again(net, services, operator, action)
        issued, samples = timed_cut(net, services, operator, action)
        keep(timing, issued, samples)
        effects.append(cut_time(samples, issued))
    return effects


def evade(net, services, operator: Controls, action: str, technique: str) -> bool | None:
    """Does ``technique`` get the affected user to a targeted site? None: not applicable."""
    from experiments.probing.webprobe import web_probe

    host, site = affected(operator.who, action), target_site(operator.who, action)
    if technique == "foreign_resolver":
        return web_probe(net, services, host, site, "foreign_resolver", timeout=1.5).ok
    if technique == "tunnel_abroad":
        return web_probe(net, services, host, site, "tunnel", timeout=1.5).ok
    if technique == "relay_at_home":
        return web_probe(net, services, host, site, "relay", timeout=1.5,
                         relay=operator.who.helper).ok
    if technique == "address_change":
        original = net.address(host)
        net.readdress(host)
        try:
            operator.instruments.moved(host)
            return web_probe(net, services, host, site, timeout=1.5).ok
        finally:
            net.readdress(host, original)
            operator.instruments.moved(host)
    # a person cut off: their own identity again, or somebody else's
    if not operator.instruments.identity_evasions or action != "person":
        return None
    tools = operator.instruments
    if technique == "reregistration":
        return tools.reregister(host) and web_probe(net, services, host, site, timeout=1.5).ok
    original = net.address(host)
    net.readdress(host)  # the identity cut off keeps the old address
    try:
        if not tools.borrow(host):
            return False
        since = time.time()
        ok = web_probe(net, services, host, site, timeout=1.5).ok
        operator.blamed = tools.blame(host, since)
        return ok
    finally:
        net.readdress(host, original)


def run_action(net, services, operator: Controls, matrix: WebMatrix, action: str, arch: str,
               rep: int, log, streams, timings: int) -> dict:
    host = affected(operator.who, action)
    before = matrix.round()
    for (src, dst), answer in before.items():
        log.row(arch=arch, repetition=rep, action=action, phase="before", src=src, dst=dst,
                ok=int(answer["ok"]), label=answer["label"] or "")
    records = operator.records(host, operator.started)

    def keep(timing: int, issued: float, samples: list[Sample]) -> None:
        streams.rows([{"arch": arch, "repetition": rep, "action": action, "timing": timing,
                       "issued": f"{issued:.6f}", "seq": x.seq, "sent": f"{x.sent:.6f}",
                       "received": "" if x.received is None else f"{x.received:.6f}"}
                      for x in samples])

    effects = time_to_effect(net, services, operator, action, timings, keep)
    measured = [1000 * e for e in effects if e is not None]
    after = matrix.round()
    records |= operator.records(host, operator.started)
    essential = operator.essential_sites | set(operator.essential_nodes)
    stopped_t = total_t = stopped_n = total_n = 0
    for flow, answer in after.items():
        is_target = targeted(action, flow, operator.who, operator.region_hosts, essential)
        worked_before = before[flow]["ok"]
        log.row(arch=arch, repetition=rep, action=action, phase="after", src=flow[0],
                dst=flow[1], targeted=int(is_target), ok=int(answer["ok"]),
                label=answer["label"] or "")
        if not worked_before:
            continue  # not a flow the action could stop
        if is_target:
            total_t += 1
            stopped_t += not answer["ok"]
        else:
            total_n += 1
            stopped_n += not answer["ok"]
    operator.blamed = {}
    evasions = {t: evade(net, services, operator, action, t) for t in TECHNIQUES}
    records |= operator.records(host, operator.started)
    contacted = {a for (src, _), answer in (*before.items(), *after.items()) if src == host
                 for a in answer["contacted"]}
    attribution = len(contacted & records) / len(contacted) if contacted else None
    operator.undo(action)
    return {"arch": arch, "repetition": rep, "action": action, "host": host,
            "time_to_effect_ms": statistics.median(measured) if measured else None,
            "time_to_effect_runs_ms": [None if e is None else 1000 * e for e in effects],
            "precision": stopped_t / total_t if total_t else None,
            "collateral": stopped_n / total_n if total_n else None,
            "targeted_flows": total_t, "other_flows": total_n, "evasion": evasions,
            "attribution": attribution, "destinations_contacted": len(contacted),
            "borrowed_identity_blames": operator.blamed or None}


def throttling(net, services, operator: Controls) -> dict:
    """Goodput (kbit/s) from the user to a foreign site's server, before and while the
    design's censor slows that site to ``THROTTLE_KBIT``; {} where it cannot."""
    from experiments.probing.probes import iperf3

    if not operator.instruments.can_throttle:
        return {}
    server = services.owner(operator.who.blocked_site)

    def goodput() -> float:
        return iperf3(net, operator.who.user, server, seconds=THROTTLE_S, omit=1)[
            "sum_received"]["bits_per_second"] / 1000

    before = goodput()
    operator.instruments.act(THROTTLE, operator.aim)
    try:
        during = goodput()
    finally:
        operator.instruments.undo(THROTTLE, operator.aim)
    return {"rate_kbit": THROTTLE_KBIT, "before_kbit": before, "during_kbit": during}


def run(config: CensorshipConfig, out: Path | None = None) -> Path:
    import topologies
    from experiments.paired import archs, bring_up
    from experiments.progress import Progress

    s = config.settings()
    graph = topologies.build(config.topo)
    who = subjects.choose(graph, config.seed)
    writer = RunWriter(NAME, config, out)
    writer.topology(graph)
    writer.subjects(who)
    log = writer.csv("flows", HEADER)
    streams = GzipCsv(writer.dir / STREAMS, STREAM_HEADER)
    records: list[dict] = []
    summary = {"archs": list(archs(config.arch)), "actions": list(ACTIONS),
               "techniques": list(TECHNIQUES), "records": records, "throttle": []}
    def final() -> dict:
        summary["table"] = report.table(summary)
        (writer.dir / "summary.md").write_text(report.markdown(summary))
        return summary

    steps = len(summary["archs"]) * s["repetitions"] * (len(ACTIONS) + 1)
    with writer.session(final), Progress(steps, NAME) as progress:
        for rep in range(s["repetitions"]):
            for arch in summary["archs"]:
                with bring_up(graph, arch, config.seed, config.backend, writer,
                              servers=config.spread()) as (
                        net, services, arch_obj):
                    services.start_relay(who.helper)
                    operator = Controls(arch, net, services, arch_obj, who)
                    with WebMatrix(net, services, hosts(graph), s["timeout"]) as matrix:
                        for action in ACTIONS:
                            progress.step(f"{arch}: {action}")
                            records.append(run_action(net, services, operator, matrix,
                                                      action, arch, rep, log, streams,
                                                      s["timings"]))
                            writer.results(summary)
                    progress.step(f"{arch}: {THROTTLE}")
                    summary["throttle"].append({"arch": arch, "repetition": rep,
                                                **throttling(net, services, operator)})
                    writer.results(summary)
    return writer.dir


EXPERIMENT = Experiment(
    name=NAME,
    question=(
        "How fast, how precisely and how inescapably each design cuts off a person, a "
        "site, a name, a region or the country"),
    config=CensorshipConfig, run=run, plot=report.plot, check=check)
