"""The lab's records over a stand-in for a network (no namespaces: these run without root;
tests/test_lab.py and tests/test_lab_page.py drive real ones)."""

from __future__ import annotations

from types import SimpleNamespace

import topologies
from experiments.lab import Lab


class Net:
    """What the lab reads of a network: addresses (counted as asked), moves, failures."""

    def __init__(self):
        self.graph = topologies.build("isp")
        self.addresses = {n: f"198.18.0.{i}" for i, n in enumerate(self.graph, 1)}
        self.moved: dict[str, str] = {}
        self.crashed, self.down_links = set(), set()
        self.asked = 0

    def address(self, node: str) -> str:
        self.asked += 1
        return self.moved.get(node) or self.addresses[node]


class Tools:
    """An operator whose records tie every host to ``found`` (addresses)."""

    can_throttle = False

    def __init__(self, found: set[str]):
        self.found, self.since = found, None

    def records(self, host: str, since: float) -> set[str]:
        self.since = since
        return set(self.found)


def test_the_records_name_nodes_by_their_address_now_without_asking_for_it_every_time():
    net = Net()
    before = net.addresses["h9"]
    tools = Tools({before, "203.0.113.9"})
    lab = Lab.of(net, SimpleNamespace(records={}),
                 SimpleNamespace(name="sovereign", instruments=lambda *_: tools))
    assert lab.records("h3") == ["203.0.113.9", "h9"]
    asked = net.asked
    assert lab.records("h4") == lab.records("h3") and net.asked == asked  # not asked again
    net.moved["h9"] = "198.18.9.9"  # h9 moved: its old address is nobody's now
    tools.found = {before, "198.18.9.9"}
    assert lab.records("h3") == [before, "h9"]
    log = lab.log(since=5.0)
    assert tools.since == 5.0 and list(log.columns) == ["host", "destination"]
    assert log.values.tolist() == [[h, d] for h in lab.hosts for d in (before, "h9")]
