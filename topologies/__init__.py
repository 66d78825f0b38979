"""Topologies by name: the one registry that the CLI and every experiment use.

A topology spec is ``NAME[,key=value...]``, e.g. ``isp``, ``isp,access=6,hosts=2``,
``ring,n=5`` or ``zoo:Abilene,hosts=2,authority=Denver`` (``zoo:sndlib/polska`` for SNDlib).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import networkx as nx

from . import isp, simple, zoo
from .graph import TopologyError, validate

BUILDERS: dict[str, Callable[..., nx.Graph]] = {
    "isp": isp.build,
    "line": simple.line,
    "ring": simple.ring,
    "star": simple.star,
}
DEFAULT = "isp"
ZOO_PREFIX = "zoo:"


class UnknownTopology(TopologyError):
    pass


def names() -> list[str]:
    return [*BUILDERS, f"{ZOO_PREFIX}<Name>"]


def parse(spec: str) -> tuple[str, dict[str, str]]:
    name, *pairs = [part.strip() for part in spec.split(",")]
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TopologyError(f"topology parameter {pair!r} must look like key=value")
        params[key.strip()] = value.strip()
    return name, params


def build(spec: str) -> nx.Graph:
    """Build and validate the graph a spec names; TopologyError carries one sentence."""
    name, raw = parse(spec)
    if name.startswith(ZOO_PREFIX):
        builder: Callable[..., nx.Graph] = zoo.build
        args: list[object] = [name[len(ZOO_PREFIX):]]
    elif name in BUILDERS:
        builder, args = BUILDERS[name], []
    else:
        raise UnknownTopology(f"there is no topology {name!r}; 'splinterlab topo list' shows "
                              "the valid names")
    g = builder(*args, **_convert(name, builder, raw))
    g.graph["spec"] = spec
    validate(g)
    return g


def parameters(builder: Callable[..., nx.Graph]) -> dict[str, object]:
    return {p.name: p.default for p in inspect.signature(builder).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _convert(name: str, builder: Callable[..., nx.Graph], raw: dict[str, str]) -> dict:
    defaults = parameters(builder)
    out: dict[str, object] = {}
    for key, value in raw.items():
        if key not in defaults:
            raise TopologyError(f"topology {name} has no parameter {key!r} (it takes "
                                f"{', '.join(defaults) or 'none'})")
        kind = type(defaults[key])
        try:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError
                out[key] = value.lower() in ("1", "true", "yes")
            else:
                out[key] = kind(value)
        except ValueError:
            raise TopologyError(f"topology parameter {key}={value!r} must be a "
                                f"{kind.__name__}") from None
    return out
