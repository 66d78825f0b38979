"""``Lab``: one network under one design, driven from Python (a notebook, the ``up`` console).

    from splinterlab import Lab
    with Lab("isp", "registered") as lab:
        lab.ping("h3", "h9")
        lab.act("person", "h9")           # the design's operator cuts h9 off, as it can
        lab.ping("h3", "h9")
        lab.log()                          # who the operator's records tie to whom: a DataFrame

(``docs/lab.ipynb`` is the ten-minute lab as a notebook; a test runs it.)

Every action is one the experiments take, through the same objects: failures through the
network, probes from hosts, each design's censor and central element through its instruments
(``protocols.instruments``), so a lab loops over what a design can do, never over its name.
Wrong input is a ``LabError`` of one sentence; the network goes away however the block ends.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import time
from dataclasses import asdict

import topologies
from experiments import subjects
from experiments.model.reachability import users
from experiments.paired import bring_up
from experiments.probing import probes, webprobe
from protocols import architectures
from protocols.instruments import ACTIONS, THROTTLE, Aim
from topologies.graph import DEFAULT_SEED, end_nodes, hosts, routers

MAX_PINGS = 100  # a ping of the page's holds one of its server's threads until done
TARGETS = {"person": "person", "destination": "destination", "name": "name",
           "region": "region", THROTTLE: "destination"}  # the Aim field each action takes


class LabError(ValueError):
    """An action the lab cannot take as asked, in one sentence."""


def _noted(method):
    """Kept in the lab's journal (``Lab.results``): when, what, with what, what came of it."""
    @functools.wraps(method)
    def noting(self, *args, **kwargs):
        entry = {"t_s": round(time.time() - self.started, 3), "call": method.__name__,
                 "args": " ".join(map(str, [*args, *kwargs.values()]))}
        try:
            result = method(self, *args, **kwargs)
        except Exception as e:
            self.journal.append({**entry, "refused": str(e)})
            raise
        self.journal.append({**entry, **(result if isinstance(result, dict) else
                                         {} if result is None else {"result": result})})
        return result
    return noting


class Lab:
    """A network up under ``arch`` on the topology ``topo`` (a spec, as ``up`` takes it) for
    the length of a ``with`` block; ``servers`` (``placement.Server``s) spread it."""

    def __init__(self, topo: str = "isp", arch: str = "registered", seed: int = DEFAULT_SEED,
                 backend: str = "auto", servers=None, **options):
        if arch not in architectures.names():
            raise LabError(f"the design must be one of: {', '.join(architectures.names())}")
        self.topo, self.arch = topo, arch
        self.graph = topologies.build(topo)
        self._up = bring_up(self.graph, arch, seed=seed, backend=backend, servers=servers,
                            **options)
        self._fresh(None, None, None)  # no network until started

    @classmethod
    def of(cls, net, services, architecture) -> Lab:
        """A lab over a network already up (a test's): it leaves the network as it is."""
        lab = cls.__new__(cls)
        lab.topo, lab.arch, lab.graph = net.graph.graph.get("name", "the topology"), \
            architecture.name, net.graph
        lab._fresh(net, services, architecture)
        return lab

    def _fresh(self, net, services, architecture) -> None:
        self.net, self.services, self.architecture = net, services, architecture
        self._tools = None
        self._names: tuple[dict, dict] | None = None  # (net.moved when built, node by address)
        self.acted: dict[str, Aim] = {}  # action -> its aim, while in force
        self.central_down = False
        self.journal: list[dict] = []  # what the lab did and measured (``results``)
        self.started = time.time()

    def __enter__(self) -> Lab:
        self._fresh(*self._up.__enter__())
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._up.__exit__(*exc)

    def start(self) -> Lab:
        """Up, for a notebook whose cells cannot share a ``with`` block; ``stop`` ends it, or
        the interpreter's exit does (a notebook that failed half-way leaves no network)."""
        self.__enter__()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self.__exit__(None, None, None)

    # -- what there is ----------------------------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        return hosts(self.graph)

    @property
    def routers(self) -> list[str]:
        return routers(self.graph)

    @property
    def sites(self) -> dict[str, list[str]]:
        """Names the resolvers know, and their true addresses."""
        return dict(self.services.records)

    def _node(self, name: str, among: list[str] | None = None) -> str:
        if name not in (among if among is not None else self.graph):
            raise LabError(f"{name!r} is not a node of {self.topo}" if among is None else
                           f"{name!r} is none of: {', '.join(among)}")
        return name

    # -- probes -----------------------------------------------------------------------------
    @_noted
    def ping(self, src: str, dst: str, count: int = 3) -> dict:
        """``count`` pings from ``src`` to ``dst``: sent, received, average RTT in ms."""
        if type(count) is not int or not 1 <= count <= MAX_PINGS:
            raise LabError(f"count must be a whole number from 1 to {MAX_PINGS}")
        result = probes.ping(self.net, self._node(src), self._node(dst), count=count)
        return {**asdict(result), "ok": result.ok}

    def pingall(self):
        """One ping between every ordered pair of users, as a DataFrame (not the authority
        site: under registered access it answers gateways only)."""
        import pandas as pd

        return pd.DataFrame([{**asdict(r), "ok": r.ok}
                             for r in probes.pingall(self.net, users(self.graph))])

    @_noted
    def probe(self, host: str, site: str, method: str = "direct") -> dict:
        """DNS, TCP and HTTP from ``host`` to ``site`` by ``method`` (an evasion or not)."""
        self._node(site, list(self.services.records))
        return asdict(webprobe.web_probe(self.net, self.services, self._node(host), site,
                                         method))

    # -- failures ---------------------------------------------------------------------------
    @_noted
    def fail(self, a: str, b: str | None = None, mode: str = "carrier") -> None:
        """Cut the link ``a``-``b`` (``mode``: carrier lost, or silent), or crash router
        ``a``."""
        if b is None:
            if self._node(a, self.routers) in self.net.crashed:
                raise LabError(f"{a} has crashed already")
            self.net.crash(a)
        else:
            self.net.link_down(self._node(a), self._node(b), mode)

    @_noted
    def restore(self, a: str, b: str | None = None) -> None:
        """Repair the link ``a``-``b``, or bring router ``a`` back."""
        if b is None:
            if self._node(a, self.routers) not in self.net.crashed:
                raise LabError(f"{a} is running: only a crashed router is restored")
            self.net.restore(a)
        else:
            self.net.link_up(self._node(a), self._node(b))

    # -- the operator's instruments ---------------------------------------------------------
    def instruments(self):
        """This design's censor and central element's tools (a LabError where it has none)."""
        if self._tools is None:
            if not hasattr(self.architecture, "instruments"):
                raise LabError(f"{self.arch} gives its operator no censor")
            self._tools = self.architecture.instruments(self.net, self.services)
        return self._tools

    @property
    def actions(self) -> tuple[str, ...]:
        return (*ACTIONS, *((THROTTLE,) if self.instruments().can_throttle else ()))

    def targets(self) -> dict[str, list[str]]:
        """What each action that takes a target may be aimed at."""
        sites = list(self.services.records)
        known = {"person": self.hosts, "destination": sites, "name": sites,
                 "region": sorted({self.graph.nodes[h].get("region") for h in self.hosts}
                                  - {None})}
        return {action: known[field] for action, field in TARGETS.items()
                if action in self.actions}

    def aim(self, action: str, target: str | None = None) -> Aim:
        """The experiments' aim (``experiments.subjects``), with ``target`` in the field
        ``action`` takes."""
        g, who = self.graph, subjects.choose(self.graph)
        aim = {"person": who.victim, "destination": who.blocked_site, "name": who.named_site,
               "region": who.region}
        if target is not None:
            known = self.targets().get(action)
            if known is None:
                raise LabError(f"{action} takes no target")
            if target not in known:
                raise LabError(f"{action} takes one of: {', '.join(known)}")
            aim[TARGETS[action]] = target
        inside = tuple(sorted(h for h in self.hosts if g.nodes[h].get("region") == aim["region"]))
        return Aim(aim["person"], aim["destination"], aim["name"], aim["region"], inside,
                   tuple(who.essential))

    @_noted
    def act(self, action: str, target: str | None = None) -> float:
        """The operator cuts off a person (a host), a destination or a name (a site), a
        region, the country, or slows a destination (``throttle``), with this design's
        instruments; milliseconds until in force."""
        tools = self.instruments()
        if action not in self.actions:
            raise LabError(f"the action must be one of: {', '.join(self.actions)}")
        if action in self.acted:
            raise LabError(f"{action} is in force already: undo it first")
        aim = self.aim(action, target)
        started = time.monotonic()
        try:
            tools.act(action, aim)
        except BaseException:
            with contextlib.suppress(Exception):  # what it did before it failed, undone
                tools.undo(action, aim)
            raise
        self.acted[action] = aim
        return 1000 * (time.monotonic() - started)

    @_noted
    def undo(self, action: str) -> None:
        if action not in self.acted:
            raise LabError(f"{action} is not in force (in force: "
                           f"{', '.join(self.acted) or 'nothing'})")
        self.instruments().undo(action, self.acted.pop(action))

    def records(self, host: str, since: float | None = None) -> list[str]:
        """What the operator's own records tie ``host`` to since ``since`` (default: since
        the lab started): node names where an address is a node's."""
        found = self.instruments().records(self._node(host, self.hosts),
                                           self.started if since is None else since)
        names = self._by_address()
        return sorted(names.get(a, a) for a in found)

    def _by_address(self) -> dict[str, str]:
        """Each end node's name by its address now: built again only once one has moved
        (``net.moved``), not on each of the page's reads of every host's records."""
        if self._names is None or self._names[0] != self.net.moved:
            moved = dict(self.net.moved)  # before the addresses: a move meanwhile rebuilds
            self._names = (moved, {self.net.address(n): n for n in end_nodes(self.graph)})
        return self._names[1]

    def ties(self, since: float | None = None, holding=None) -> list[tuple[str, str]]:
        """(host, destination) for every host's records (``records``); ``holding`` (a lock)
        is held for one host's read at a time, so whoever waits for it waits for one host."""
        out = []
        for h in self.hosts:
            with holding if holding is not None else contextlib.nullcontext():
                out += [(h, d) for d in self.records(h, since)]
        return out

    def log(self, since: float | None = None):
        """Every host's records since ``since`` (``records``) as a DataFrame: host,
        destination."""
        import pandas as pd

        return pd.DataFrame(self.ties(since), columns=["host", "destination"])

    @_noted
    def central(self, up: bool) -> None:
        """This design's central element (the authority, the regulator) fails or comes back."""
        name = architectures.design(self.architecture.name).central
        if not name:
            raise LabError(f"{self.arch} has no central element")
        if up == self.central_down:  # not already so
            (self.architecture.restart_central if up else self.architecture.kill_central)()
            self.central_down = not up

    def results(self):
        """What this lab did and measured, a row per call (ping, probe, fail, restore, act,
        undo, central): seconds since it started, the call, its arguments, and what came of
        it (a ping's sent, received and rtt_ms; an action's milliseconds until in force;
        ``refused`` and why), as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.journal)
