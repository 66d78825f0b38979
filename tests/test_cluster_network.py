"""Networks spread over servers of the test bed (namespace servers with their own sshd, /run,
/tmp and processes): every pair reachable, failures as the graph model and one machine say,
and nothing left on any server, even after kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import pytest
from helpers import blast_radius_on_one_machine, left_on, run_and_expect

from experiments.comparisons import blast_radius
from experiments.lab import Lab
from experiments.model.reachability import users
from experiments.probing import probes
from topologies import cleanup, runstate, testbed
from topologies import graph as graphs
from topologies.placement import crossing, parse_servers

pytestmark = pytest.mark.needs_root
CLI = [sys.executable, "-m", "experiments.commands.cli"]


@pytest.fixture(scope="module")
def bed():
    with testbed.bed(2) as servers:
        yield [s.name for s in servers]


def up(*argv: str, **kwargs):
    return subprocess.Popen([*CLI, "up", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_every_pair_reachable_across_servers_with_the_authority_on_another(bed):
    run = up("--servers", "srv1,srv2", "--topo", "zoo:Abilene", "--arch", "registered",
             "--test", "pingall")
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    assert "pairs reachable" in out
    for server in bed:
        assert left_on(server) == [], server


def test_a_link_between_servers_is_as_long_as_one_on_a_server(bed):
    """Permissionless IP over this machine and srv1: every pair reachable; a link between
    them carries a veth's MTU and, its tunnel's own latency measured and taken off, has the
    round trip its delay gives, as a link on one server does; a crash takes it down at both
    ends; a prober on srv1 stops when signalled."""
    with Lab("zoo:Getnet", "permissionless", servers=parse_servers("localhost,srv1")) as lab:
        net = lab.net
        assert all(r.ok for r in probes.pingall(net, users(net.graph)))
        links = crossing(net.graph, net.placement)
        assert links and set(net.tunnel_ms) == set(links)
        for a, b in links:
            # a veth's 1500 bytes, unfragmented: the bed's network has jumbo frames
            for node, peer in ((a, b), (b, a)):
                shown = net.exec(node, "ip", "-o", "link", "show",
                                 net.plan.intf(node, peer).name).stdout
                assert " mtu 1500 " in shown, shown
            full = net.exec(a, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472",
                            str(net.plan.intf(b, a).address.ip), check=False)
            assert full.returncode == 0, full.stdout
            expected = 2 * net.graph.edges[a, b]["delay_ms"]
            said = net.exec(a, "ping", "-n", "-c", "20", "-i", "0.02",
                            str(net.plan.intf(b, a).address.ip)).stdout
            rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", said)]
            assert abs(statistics.median(rtts) - expected) <= max(0.2, 0.05 * expected), (
                a, b, expected, rtts)
        # a crashed router's neighbour across servers loses the link, as across a veth
        a, b = links[0]
        far = net.plan.intf(b, a).name
        net.crash(a)
        assert far not in net._carrier(b)
        net.restore(a)
        assert run_and_expect(lambda: far in net._carrier(b), timeout=10)
        # a prober on srv1, told to stop by a signal: it answers with what it measured
        there, here = (next(h for h in users(net.graph) if net.placement[h] == server)
                       for server in ("srv1", "localhost"))
        stream = probes.PingStream(net, there, here)
        time.sleep(0.5)
        samples = stream.stop()
        assert len(samples) > 10 and all(s.rtt_ms for s in samples[1:]), samples[:5]
    for server in bed:
        assert left_on(server) == [], server


@pytest.mark.parametrize(("spec", "arch"), [
    ("zoo:Arpanet19706", "permissionless"),
    pytest.param("zoo:Getnet", "registered", marks=pytest.mark.extended)])  # make check-model
def test_blast_radius_across_servers_is_the_models_and_one_machines(bed, tmp_path,
                                                                    tmp_path_factory, spec,
                                                                    arch):
    """Every failure of the quick profile, the network on two servers (nothing on this one),
    against the graph model, and against the same run on one machine (the very run
    tests/test_experiments holds to the model)."""
    spread = blast_radius.run(blast_radius.BlastRadiusConfig(
        topo=spec, arch=arch, servers="srv1,srv2"), tmp_path / "spread")
    meta = json.loads((spread / "meta.json").read_text())
    placed = meta[f"{arch}_emulation"]["spread"]
    assert set(placed["nodes"]) == {"srv1", "srv2"} and placed["links_between"] > 0, placed
    assert len(placed["tunnel_ms_taken_off"]) == placed["links_between"], placed
    records = json.loads((spread / "results.json").read_text())["records"]
    g = graphs.load(spread / "topology.json")
    assert {r["failure"]["kind"] for r in records} >= {"router", "link"}
    for record in records:
        model = blast_radius.predicted(g, record["arch"], record["failure"])
        for kind in ("new", "existing"):
            measured = {tuple(p) for p in record[f"pairs_lost_{kind}"]}
            assert measured == {tuple(p) for p in model[f"predicted_lost_{kind}"]}, (
                record["failure"], kind)
    alone = blast_radius_on_one_machine(spec, arch, tmp_path_factory)
    on_one = {json.dumps(r["failure"], sort_keys=True): r for r in
              json.loads((alone / "results.json").read_text())["records"]}
    for record in records:
        twin = on_one[json.dumps(record["failure"], sort_keys=True)]
        for kind in ("new", "existing"):
            assert sorted(map(tuple, record[f"pairs_lost_{kind}"])) == \
                sorted(map(tuple, twin[f"pairs_lost_{kind}"])), (record["failure"], kind)
    for server in bed:
        assert left_on(server) == [], server


def test_kill_9_then_clean_leaves_nothing_on_any_server(bed):
    run = up("--servers", "localhost,srv1,srv2", "--topo", "zoo:Getnet", "--arch",
             "registered", stdin=subprocess.PIPE)
    try:
        assert run_and_expect(lambda: any(r.read().get("pid") == run.pid and
                                          r.read().get("phase") == "up"
                                          for r in runstate.runs()), timeout=180)
        assert all(left_on(server) for server in bed), "the run left nothing to clean"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
    said = subprocess.run([*CLI, "clean"], capture_output=True, text=True, timeout=300)
    assert said.returncode == 0 and "not cleaned" not in said.stdout, said.stdout + said.stderr
    assert cleanup.leftovers() == []
    for server in bed:
        assert left_on(server) == [], server
