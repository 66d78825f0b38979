"""The lab's records and its panel's and front's routes, over a stand-in for a network (no
namespaces: these run without root; tests/test_lab.py and tests/test_lab_page.py drive real
ones)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from types import SimpleNamespace

import topologies
from experiments.lab import Lab
from experiments.web.front import Front
from experiments.web.server import LabServer
from experiments.web.state import LiveState


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


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


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


def test_a_panel_and_the_front_answer_their_routes_and_only_with_the_token():
    lab = Lab.of(Net(), SimpleNamespace(records={"news.example": ["198.18.0.1"]}),
                 SimpleNamespace(name="permissionless"))
    server = LabServer(lab, token="T")  # its rounds not started: nothing to probe
    server.serving.start()
    try:
        server.live.round = 3
        assert get(f"{server.base}/round?token=T") == (200, b'{"round": 3}')
        status, body = get(f"{server.base}/state?token=T")
        state = json.loads(body)
        assert status == 200 and state["round"] == 3 and state["design"] == "permissionless"
        assert state["sites"] == ["news.example"] and state["actions"] == []
        with urllib.request.urlopen(f"{server.base}/events?token=T", timeout=5) as events:
            assert json.loads(events.readline().removeprefix(b"data: "))["round"] == 3
        for route in ("/round", "/round?token=guess", "/state?token=guess"):
            assert get(f"{server.base}{route}")[0] == 403
        assert get(f"{server.base}/nothing?token=T")[0] == 404
    finally:
        server.live.stopping.set()  # the event stream ends
        server.shutdown()
        server.server_close()
    operated = Lab.of(Net(), SimpleNamespace(records={"news.example": []}),
                      SimpleNamespace(name="sovereign", instruments=lambda *_: Tools(set())))
    state = LiveState(operated).snapshot()  # what an operator may do, in every state
    assert "person" in state["actions"] and state["targets"]["person"] == operated.hosts
    front = Front("isp", (), {})  # no panels: its own routes only
    front.serving.start()
    try:
        base = f"http://127.0.0.1:{front.server_port}"
        assert get(f"{base}/panels?token={front.token}") == (200, b"[]")
        status, page = get(front.url)
        assert status == 200 and b"<html" in page.lower()
        assert get(f"{base}/panels")[0] == 403 and get(f"{base}/state?token={front.token}")[0] \
            == 404
    finally:
        front.__exit__()
