"""Helpers shared by the integration tests."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path

from topologies.polling import wait_until


@contextlib.contextmanager
def registered_network(ttl_ms: int, graph=None, **options) -> Iterator[tuple]:
    """A registered-access network on ``graph`` (isp by default), every host registered:
    (network, services, architecture), torn down afterwards. ``options``: the architecture's
    (fail_mode, ...)."""
    import topologies
    from protocols.registered.architecture import Registered
    from protocols.services import Services
    from topologies.network import EmulatedNetwork

    with EmulatedNetwork(graph or topologies.build("isp"), static_routes=False) as net:
        services = Services(net).start()
        arch = Registered(ttl_ms=ttl_ms, **options)
        arch.start(net, services)
        yield net, services, arch


def left_on(server: str) -> list[str]:
    """What a run left on a test bed server: processes other than its sshd's, run and
    socket directories, mounts and tunnel devices there (empty: nothing)."""
    from topologies.machines import Machine

    machine = Machine(server)
    try:
        processes = machine.run(["ps", "-e", "-o", "comm="]).stdout.split()
        said = machine.run(["sh", "-c", "ls -A /run/splinterlab /run/splinterlab-sockets "
                            "2>/dev/null; grep -w fuse.sshfs /proc/mounts; "
                            "ip -o link | grep -o 'vx[0-9a-f]*'"], check=False).stdout
    finally:
        machine.close()
    return [p for p in processes if p not in ("sshd", "sh", "ps")] + \
        [line for line in said.splitlines() if line.strip() and not line.endswith(":")]


_BLAST_RADIUS: dict[tuple[str, str], Path] = {}


def blast_radius_on_one_machine(spec: str, arch: str, tmp_path_factory) -> Path:
    """The quick blast radius of ``arch`` on ``spec`` on this machine alone, run once per
    session (the model's test and the test across servers compare the same run)."""
    from experiments.comparisons import blast_radius

    if (spec, arch) not in _BLAST_RADIUS:
        _BLAST_RADIUS[spec, arch] = blast_radius.run(
            blast_radius.BlastRadiusConfig(topo=spec, arch=arch), tmp_path_factory.mktemp("br"))
    return _BLAST_RADIUS[spec, arch]


def run_and_expect(check, timeout: float, interval: float = 0.1):
    """Poll ``check()`` until it returns something truthy (returned) or time runs out (the
    last value is returned, so the caller's assertion shows what was seen)."""
    return wait_until(check, timeout, interval)


def censorship_as_the_model_says(directory: Path) -> int:
    """Hold a censorship results directory to the graph model, flow by flow: every flow of
    the matrix that worked before an action is stopped by it or not as the model says, the
    evasions that work are the model's, and so is the share of the user's destinations the
    operator's records tie to them. Returns the number of flows compared."""
    from experiments import subjects
    from experiments.model import censorship as model
    from protocols import architectures
    from protocols.instruments import ACTIONS
    from topologies import graph as graphs

    g = graphs.load(directory / "topology.json")
    chosen = json.loads((directory / "meta.json").read_text())["subjects"]
    who = subjects.Subjects(**{**chosen, "essential": tuple(chosen["essential"])})
    with open(directory / "flows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((directory / "results.json").read_text())
    records = summary["records"]
    assert {(r["arch"], r["action"]) for r in records} == {
        (a, b) for a in summary["archs"] for b in ACTIONS}
    assert set(summary["archs"]) <= {d.name for d in architectures.DESIGNS}
    compared = 0
    for record in records:
        arch, action = record["arch"], record["action"]
        situation = model.Situation(g, who, arch, action)
        worked = {(r["src"], r["dst"]) for r in rows if (r["arch"], r["action"], r["phase"])
                  == (arch, action, "before") and r["ok"] == "1"}
        assert len(worked) >= 0.9 * len(model.flows(g)), (arch, action, "failed before")
        for r in rows:
            flow = (r["src"], r["dst"])
            if (r["arch"], r["action"], r["phase"]) != (arch, action, "after") or \
                    flow not in worked:
                continue
            assert r["targeted"] == str(int(situation.targeted(*flow))), (arch, action, flow)
            assert (r["ok"] == "1") == situation.reaches(*flow), (arch, action, flow)
            compared += 1
        assert record["evasion"] == {t: situation.evasion(t) for t in model.TECHNIQUES}, \
            (arch, action)
        predicted = model.predict(g, who, arch, action).attribution
        assert abs(record["attribution"] - predicted) < 0.02, (arch, action, predicted,
                                                               record["attribution"])
    return compared
