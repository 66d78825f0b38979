"""What the page shows of a running lab, as JSON: where every node is drawn, what is up, who
is cut off, the flows of the last round between users by outcome, and what the operator's
records tie to whom, newest first (the log as a stream).

Flows come from one ``probes.Matrix`` round at a time (a prober per user): every pair of
users (on a large graph, a spread of pairs: ``peers``) opens a new TCP connection (a new
flow, which a design that admits flows must admit) and pings (the pair's existing flow). A
pair's outcome is named as the design knows it: admitted or denied where flows are admitted,
passing or lost where they are not.
"""

from __future__ import annotations

import threading
import time

import networkx as nx

from experiments.lab import Lab
from experiments.model.reachability import users
from experiments.probing.probes import Matrix
from experiments.probing.webprobe import METHODS
from protocols import architectures
from protocols.architectures import admits
from topologies.graph import routers

ROUND_TIMEOUT_S = 0.4  # a pair not connected within this is not reached this round
PAUSE_S = 0.1          # between rounds
PEERS = 24             # the most other users each user's flows go to, every round
LOG_EVERY_S = 2.0      # the operator's records are read this often
RECORDS_OVERLAP_S = 30  # each read goes back this far before the last began (exports lag)
RETRY_S = 2.0          # a failed round or read is tried again after this
LOG_SHOWN = 12         # the newest records sent to the page


def layout(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Each node's place in a unit square: routers with a geographic position (``pos``, lon
    and lat, as the zoo's graphs have) where they are, every other node by a spring layout
    around them (the same each time)."""
    fixed = {n: (g.nodes[n]["pos"][0], -g.nodes[n]["pos"][1]) for n in g
             if "pos" in g.nodes[n]}
    if fixed:
        xs, ys = zip(*fixed.values(), strict=True)
        span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
        fixed = {n: ((x - min(xs)) / span, (y - min(ys)) / span) for n, (x, y) in fixed.items()}
    pos = nx.spring_layout(g, pos=fixed or None, fixed=list(fixed) or None, seed=1,
                           k=0.3 / max(1, len(g)) ** 0.5 if fixed else None)
    xs, ys = zip(*(p for p in pos.values()), strict=True)
    w, h = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    return {n: (round((x - min(xs)) / w, 4), round((y - min(ys)) / h, 4))
            for n, (x, y) in pos.items()}


def peers(users: list[str], most: int = PEERS) -> dict[str, list[str]]:
    """Whom each user's flows go to in a round: every other user, or where there are more
    than ``most`` others, ``most`` of them spread evenly around the list (so each user is
    reached by as many): a round stays short on the zoo's largest graphs."""
    out = {}
    for i, u in enumerate(users):
        others = users[i + 1:] + users[:i]
        out[u] = [others[k * len(others) // most] for k in range(most)] \
            if len(others) > most else others
    return out


class LiveState:
    """The lab's state, a round of flows at a time, in a thread of its own; ``snapshot()`` is
    the latest, ``version`` counts its changes. After an action (``acted``) the round under
    way is thrown away, since some of its flows began before, and the next starts at once.
    The records are read in another thread, a host at a time holding ``acting`` as an action
    does (the design's instruments serve one caller at a time), each read from a little
    before the last began. A thread that fails says why on the page and tries again."""

    def __init__(self, lab: Lab):
        self.lab = lab
        g = lab.graph
        self.users = users(g)
        self.peers = peers(self.users)
        places, kept = layout(g), set(routers(g))
        self.nodes = [{"id": n, "role": g.nodes[n]["role"], "router": n in kept,
                       "x": places[n][0], "y": places[n][1]} for n in g]  # never change
        self.words = ("admitted", "denied") if admits(lab.architecture.name) else \
            ("passing", "lost")
        operated, design = hasattr(lab.architecture, "instruments"), architectures.design(lab.arch)
        self.fixed = {  # what no action changes, sent with every state as it is
            "topology": lab.topo, "design": lab.arch, "label": design.label,
            "colour": design.colour, "outcomes": list(self.words),
            "actions": list(lab.actions) if operated else [],
            "targets": lab.targets() if operated else {}, "central": design.central,
            "sites": sorted(lab.sites), "methods": list(METHODS)}
        self.flows: dict[str, str] = {}
        self.records: list[dict] = []  # newest first: when first seen, host, destination
        self.recorded = 0  # pairs the records tie, all told
        self.errors: dict[str, str] = {}  # what failed last, by thread, until it works again
        self.round = self.version = self.actions = 0
        self.changed = threading.Condition()
        self.acting = threading.Lock()
        self.stopping, self.poke = threading.Event(), threading.Event()
        self.threads = [threading.Thread(target=self._again, args=(work, what), daemon=True)
                        for work, what in ((self._measure, "flows"),
                                           (self._read_records, "records"))]

    def start(self) -> LiveState:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.poke.set()
        with self.changed:
            self.changed.notify_all()  # the event streams end now, not at their next wait
        for thread in self.threads:
            thread.join(timeout=10)

    def _again(self, work, what: str) -> None:
        """``work`` until the lab stops; whatever it raises is shown on the page, and it
        starts over after RETRY_S."""
        while not self.stopping.is_set():
            try:
                work()
            except Exception as e:  # noqa: BLE001 - shown on the page, not lost in a thread
                self._say(what, f"{what} not measured: {e}")
                self.stopping.wait(RETRY_S)

    def _say(self, what: str, error: str) -> None:
        with self.changed:
            if self.errors.get(what, "") != error:
                self.errors = {**self.errors, what: error} if error else \
                    {k: v for k, v in self.errors.items() if k != what}
                self._changed()

    def _read_records(self) -> None:
        if not hasattr(self.lab.architecture, "instruments"):
            return self.stopping.wait()
        seen: set[tuple[str, str]] = set()
        since = self.lab.started
        while not self.stopping.wait(LOG_EVERY_S):
            began = time.time()
            # a host at a time holding ``acting``: an action waits for one host's read at most
            pairs = set(self.lab.ties(since, holding=self.acting))
            since = began - RECORDS_OVERLAP_S
            self._say("records", "")
            new = sorted(pairs - seen)
            seen |= pairs
            if new:
                now = time.time()
                with self.changed:
                    self.records = ([{"t": now, "host": h, "destination": d} for h, d in new]
                                    + self.records)[:LOG_SHOWN]
                    self.recorded = len(seen)
                    self._changed()
        return None

    def _measure(self) -> None:
        with Matrix(self.lab.net, self.users, ROUND_TIMEOUT_S, self.peers) as matrix:
            while not self.stopping.is_set():
                before = self.actions
                lost_new, _ = matrix.round()
                self._say("flows", "")
                if self.actions != before:
                    continue
                ok, bad = self.words
                flows = {f"{s}>{d}": bad if (s, d) in lost_new else ok
                         for s in self.users for d in self.peers[s]}
                with self.changed:
                    self.flows, self.round = flows, self.round + 1
                    self._changed()
                self.poke.wait(PAUSE_S)
                self.poke.clear()

    def _changed(self) -> None:
        self.version += 1
        self.changed.notify_all()

    def acted(self) -> None:
        """The lab was just changed: say so now, and measure the flows anew."""
        with self.changed:
            self.actions += 1
            self._changed()
        self.poke.set()

    def wait(self, after: int, timeout: float) -> None:
        """Until a version later than ``after`` (or ``timeout``)."""
        with self.changed:
            self.changed.wait_for(lambda: self.version > after, timeout=timeout)

    def snapshot(self) -> dict:
        lab, net = self.lab, self.lab.net
        acted = dict(lab.acted)  # changed by the server's threads meanwhile
        cut = {aim.person for action, aim in acted.items() if action == "person"}
        nodes = [{**n, "state": "crashed" if n["id"] in net.crashed else
                  "cut off" if n["id"] in cut else "up"} for n in self.nodes]
        links = [{"a": a, "b": b, "up": tuple(sorted((a, b))) not in net.down_links}
                 for a, b in lab.graph.edges]
        return {**self.fixed, "round": self.round, "version": self.version,
                "time": time.time(), "nodes": nodes, "links": links, "flows": self.flows,
                "acted": sorted(acted), "error": "; ".join(self.errors.values()),
                "central_down": lab.central_down, "records": self.records,
                "recorded": self.recorded}
