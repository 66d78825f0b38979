"""Pieces that several builders attach to a national graph: a data centre and "abroad".

Keeping them in one place gives every topology the same site names, so censor policies and
workloads written for one topology run on the others.
"""

from __future__ import annotations

import networkx as nx

from .graph import LinkSpec, add_end, add_link, add_router

NATIONAL_SITES = ("www.home.example", "gov.home.example")
FOREIGN_SITES = {"fweb1": ("news.abroad.example", "mail.abroad.example"),
                 "fweb2": ("social.abroad.example", "wiki.abroad.example")}


def add_datacentre(g: nx.Graph, router: str) -> None:
    """A national web server (two sites) and the national DNS resolver."""
    near = LinkSpec(delay_ms=0.5)
    add_end(g, "web1", "server", router, near, service="web", sites=list(NATIONAL_SITES))
    add_end(g, "dns1", "server", router, near, service="dns")


def add_abroad(g: nx.Graph, borders: dict[str, list[str]], delay_ms: float,
               border_link: LinkSpec) -> None:
    """Border routers (name -> national routers they attach to), one foreign router f1 behind
    all of them, and the foreign servers: two web servers, a resolver and a relay."""
    add_router(g, "f1", "foreign")
    for border, attach_to in borders.items():
        add_router(g, border, "border")
        for r in attach_to:
            add_link(g, border, r, border_link)
        add_link(g, border, "f1", LinkSpec(delay_ms=delay_ms))
    far = LinkSpec(delay_ms=1.0)
    for server, sites in FOREIGN_SITES.items():
        add_end(g, server, "foreign_server", "f1", far, service="web", sites=list(sites))
    add_end(g, "fdns1", "foreign_server", "f1", far, service="dns")
    add_end(g, "relay1", "foreign_server", "f1", far, service="relay")
