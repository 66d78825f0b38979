"""Small shapes for tests and teaching: line, ring and star of routers with hosts.

Each also attaches an ``auth`` site (for the registered-access authority) to its first router
unless ``authority=False``, so every architecture can run on every shape.
"""

from __future__ import annotations

import networkx as nx

from .graph import LinkSpec, TopologyError, add_end, add_link, add_router, new_graph


def _link(delay: float, bw: float | None) -> LinkSpec:
    return LinkSpec(delay_ms=delay, bw_mbit=bw or None)


def _check(n: int, low: int, name: str) -> None:
    if not low <= n <= 64:
        raise TopologyError(f"{name} needs n between {low} and 64 routers, not {n}")


def line(n: int = 3, hosts: int = 1, delay: float = 1.0, bw: float = 0.0,
         authority: bool = True) -> nx.Graph:
    """Routers r1..rn in a chain, ``hosts`` hosts on each end router.

        h1 -- r1 -- r2 -- ... -- rn -- h2
    """
    _check(n, 1, "line")
    g = new_graph(f"line{n}")
    spec = _link(delay, bw)
    for i in range(1, n + 1):
        add_router(g, f"r{i}", "access" if i in (1, n) else "core", region="west" if i == 1
                   else "east")
        if i > 1:
            add_link(g, f"r{i - 1}", f"r{i}", spec)
    k = 0
    for _ in range(hosts):
        for r in (1, n):  # with n=1 both ends are r1: h1 -- r1 -- h2
            k += 1
            add_end(g, f"h{k}", "host", f"r{r}", spec, region=g.nodes[f"r{r}"]["region"])
    if authority:
        add_end(g, "auth", "authority", "r1", spec)
    return g


def ring(n: int = 4, hosts: int = 1, delay: float = 1.0, bw: float = 0.0,
         authority: bool = True) -> nx.Graph:
    """Routers r1..rn in a ring, ``hosts`` hosts on every router.

          h1   h2
          r1 - r2
          |     |
          r4 - r3
          h4   h3
    """
    _check(n, 3, "ring")
    g = new_graph(f"ring{n}")
    spec = _link(delay, bw)
    for i in range(1, n + 1):
        add_router(g, f"r{i}", "access", region="west" if i <= n // 2 else "east")
    for i in range(1, n + 1):
        add_link(g, f"r{i}", f"r{i % n + 1}", spec)
    k = 0
    for _ in range(hosts):
        for i in range(1, n + 1):
            k += 1
            add_end(g, f"h{k}", "host", f"r{i}", spec, region=g.nodes[f"r{i}"]["region"])
    if authority:
        add_end(g, "auth", "authority", "r1", spec)
    return g


def star(n: int = 4, hosts: int = 1, delay: float = 1.0, bw: float = 0.0,
         authority: bool = True) -> nx.Graph:
    """A core router r0 with n access routers r1..rn around it, ``hosts`` hosts on each.

        h1 - r1   r2 - h2
               \\ /
                r0 -- auth
               / \\
        h4 - r4   r3 - h3
    """
    _check(n, 2, "star")
    g = new_graph(f"star{n}")
    spec = _link(delay, bw)
    add_router(g, "r0", "core")
    for i in range(1, n + 1):
        add_router(g, f"r{i}", "access", region="west" if i <= n // 2 else "east")
        add_link(g, "r0", f"r{i}", spec)
    k = 0
    for _ in range(hosts):
        for i in range(1, n + 1):
            k += 1
            add_end(g, f"h{k}", "host", f"r{i}", spec, region=g.nodes[f"r{i}"]["region"])
    if authority:
        add_end(g, "auth", "authority", "r0", spec)
    return g
