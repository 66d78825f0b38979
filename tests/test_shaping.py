"""Shaping plans: where each direction's delay is applied, and the exact commands."""

from __future__ import annotations

import pytest

import topologies
from topologies import addressing, shaping
from topologies.graph import LinkSpec, TopologyError


def plans(spec: str, backend: str):
    g = topologies.build(spec)
    return g, shaping.plan_shaping(g, addressing.plan(g), backend)


def test_userspace_delay_is_never_at_a_sending_host():
    g, out = plans("isp", "userspace")
    for node, todo in out.items():
        if todo.queues:
            assert g.nodes[node]["role"] in ("access", "core", "border", "foreign"), node


def test_userspace_host_line_delayed_at_the_router_both_ways():
    _, out = plans("line,n=1,delay=5,authority=false", "userspace")
    r1 = out["r1"]
    assert "-A PREROUTING -i r1-eth0 -j NFQUEUE --queue-num 0" in r1.iptables  # h1 -> r1
    assert "-A POSTROUTING -o r1-eth0 -j NFQUEUE --queue-num 0" in r1.iptables  # r1 -> h1
    assert [(q.number, q.delay_ms) for q in r1.queues] == [(0, 5.0), (1, 5.0)]
    assert not out.get("h1", shaping.NodeShaping()).queues


def test_userspace_router_link_delayed_at_each_senders_egress():
    g, out = plans("line,n=2,delay=3,authority=false", "userspace")
    p = addressing.plan(g)
    for a, b in (("r1", "r2"), ("r2", "r1")):
        intf = p.intf(a, b).name
        rule = f"-A POSTROUTING -o {intf} -j NFQUEUE --queue-num {shaping.port(intf)}"
        assert rule in out[a].iptables
        assert f"-i {p.intf(b, a).name} " not in " ".join(out[b].iptables)


def test_loss_is_a_statistic_rule_before_the_queue():
    g = topologies.build("line,n=2,delay=1,authority=false")
    g.edges["r1", "r2"]["loss_pct"] = 2.5
    out = shaping.plan_shaping(g, addressing.plan(g), "userspace")
    intf = addressing.plan(g).intf("r1", "r2").name
    rules = out["r1"].iptables
    drop = (f"-A POSTROUTING -o {intf} -m statistic --mode random --probability 0.025000 "
            "-j DROP")
    queue = f"-A POSTROUTING -o {intf} -j NFQUEUE --queue-num {shaping.port(intf)}"
    assert rules.index(drop) < rules.index(queue)


def test_bandwidth_is_htb_on_the_senders_egress():
    _, out = plans("line,n=1,bw=10,delay=0,authority=false", "userspace")
    assert out["h1"].tc == ["qdisc replace dev h1-eth0 root handle 1: htb default 1",
                            "class replace dev h1-eth0 parent 1: classid 1:1 htb rate 10mbit "
                            "ceil 10mbit quantum 12500"]
    assert not out["r1"].iptables  # no delay, no loss: nothing queued


def test_netem_backend_puts_everything_in_tc():
    g = topologies.build("line,n=1,bw=100,delay=20,authority=false")
    g.edges["h1", "r1"]["jitter_ms"] = 2
    out = shaping.plan_shaping(g, addressing.plan(g), "netem")
    assert out["h1"].tc[-1] == ("qdisc replace dev h1-eth0 parent 1:1 handle 10: netem limit "
                                "100000 delay 20ms 2ms")
    assert all(not todo.iptables and not todo.queues for todo in out.values())


def test_iptables_restore_text():
    _, out = plans("line,n=1,delay=5,authority=false", "userspace")
    text = out["r1"].iptables_restore()
    assert text.startswith("*mangle\n") and text.endswith("COMMIT\n")


@pytest.mark.parametrize("kwargs", [{"delay_ms": -1}, {"loss_pct": 100}, {"bw_mbit": 0},
                                    {"jitter_ms": -0.5}])
def test_impossible_link_specs_are_refused(kwargs):
    with pytest.raises(TopologyError):
        LinkSpec(**kwargs)


def test_netem_delay_is_shortened_by_its_calibrated_cost():
    g = topologies.build("line,n=1,delay=5,authority=false")
    out = shaping.plan_shaping(g, addressing.plan(g), "netem", netem_cost_ms=0.2)
    assert "netem limit 100000 delay 4.8ms" in out["h1"].tc[-1]
    tiny = shaping.netem_line("x", LinkSpec(delay_ms=0.1), "root", cost_ms=0.2)
    assert tiny.endswith("delay 0ms")  # never negative
