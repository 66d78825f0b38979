"""A small national ISP with a border to "abroad": the default topology of every experiment.

Defaults (access=4, hosts=3, core=4, borders=2) give 11 routers and 19 end nodes::

                      fweb1  fweb2  fdns1  relay1          abroad
                          \\    |      |    /
                               f1
                              /   \\               15 ms
                  ..........b1.....b2...........  border
                           / \\   / \\
                 auth -- c1 ----- c2              core: a ring with chords,
                          | \\   / |                3 ms per link
                          |   X   |
                          | /   \\ |
                          c4 ----- c3 -- web1, dns1 (data centre)
                         /  \\   /  \\
                       a1 - a2 a3 - a4             access, each dual-homed, 2 ms;
                       |    |   |    |             a regional link inside each region
                      h1.. h2.. h3.. h4..          hosts, 100 Mbit/s lines, 1 ms

Access routers are split into ``regions`` regions (north, south, ...), which is what a
registered-access operator can shut down; the access routers of a region are chained by
regional links, so a region cut off from the core still reaches itself.

Sites: www.home.example and gov.home.example on web1; news.abroad.example and
mail.abroad.example on fweb1 (sharing an address, as real sites do); social.abroad.example and
wiki.abroad.example on fweb2.
"""

from __future__ import annotations

import networkx as nx

from .graph import LinkSpec, TopologyError, add_end, add_link, add_router, new_graph
from .parts import add_abroad, add_datacentre

REGION_NAMES = ("north", "south", "east", "west", "centre", "coast", "hills", "plain")


def build(access: int = 4, hosts: int = 3, core: int = 4, borders: int = 2, regions: int = 2,
          foreign_delay: float = 15.0, access_bw: float = 100.0, authority: str = "c1",
          authority_delay: float = 0.5) -> nx.Graph:
    """A small national ISP with a border to abroad (the default topology)."""
    if not 1 <= access <= 32:
        raise TopologyError(f"isp needs access between 1 and 32 routers, not {access}")
    if not 1 <= hosts <= 30:
        raise TopologyError(f"isp needs hosts between 1 and 30 per access router, not {hosts}")
    if not 2 <= core <= 16:
        raise TopologyError(f"isp needs core between 2 and 16 routers, not {core}")
    if not 0 <= borders <= core:
        raise TopologyError(f"isp needs borders between 0 and core ({core}), not {borders}")
    if not 1 <= regions <= min(access, len(REGION_NAMES)):
        raise TopologyError(f"isp needs regions between 1 and {min(access, len(REGION_NAMES))}")
    cores = [f"c{i}" for i in range(1, core + 1)]
    if authority not in cores:
        raise TopologyError(f"isp authority must be a core router ({', '.join(cores)}), "
                            f"not {authority!r}")

    g = new_graph("isp", params=dict(access=access, hosts=hosts, core=core, borders=borders))
    core_link = LinkSpec(delay_ms=3.0)
    for c in cores:
        add_router(g, c, "core")
    for i in range(core):
        if core > 2 or i == 0:
            add_link(g, cores[i], cores[(i + 1) % core], core_link)
    for i in range(core // 2 if core >= 4 else 0):  # chords across the ring
        add_link(g, cores[i], cores[i + core // 2], core_link)

    line = LinkSpec(delay_ms=1.0, bw_mbit=access_bw or None)
    k = 0
    for i in range(access):
        a = f"a{i + 1}"
        region = REGION_NAMES[i * regions // access]
        add_router(g, a, "access", region=region)
        for c in {cores[i % core], cores[(i + 1) % core]}:
            add_link(g, a, c, LinkSpec(delay_ms=2.0))
    for i in range(1, access):  # regional links between neighbours of the same region
        a, b = f"a{i}", f"a{i + 1}"
        if g.nodes[a]["region"] == g.nodes[b]["region"]:
            add_link(g, a, b, LinkSpec(delay_ms=2.0))
    for _ in range(hosts):
        for i in range(access):
            k += 1
            a = f"a{i + 1}"
            add_end(g, f"h{k}", "host", a, line, region=g.nodes[a]["region"])

    add_datacentre(g, cores[core // 2])
    add_end(g, "auth", "authority", authority, LinkSpec(delay_ms=authority_delay))
    if borders:
        attach = {}
        for j in range(borders):
            first = (j * core) // borders
            attach[f"b{j + 1}"] = sorted({cores[first], cores[(first + 1) % core]})
        # 2 ms uplinks: going through a border is never a shortcut between core routers
        add_abroad(g, attach, foreign_delay, LinkSpec(delay_ms=2.0))
    return g
