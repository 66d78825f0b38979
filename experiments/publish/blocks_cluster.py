"""README block of ``bench cluster``: what a server carries, what a tunnel costs, and the
world backbone's plan on N servers."""

from __future__ import annotations

from experiments.publish.published import Published

CLUSTER = "bench-cluster/testbed"


def _carried(c: dict) -> str:
    lines = ["| design | memory per router | cores busy at rest per router | ran here up to | "
             "the ladder stopped by | a server like this one holds about | what gives out "
             "first (the other bounds) |", "|---|---|---|---|---|---|---|"]
    for arch, d in c["designs"].items():
        cap = d["capacity"]
        others = ", ".join(f"{k} at {v}" for k, v in cap["bounds"].items() if k != cap["by"])
        lines.append(f"| {arch} | {d['memory_mb']['per_router']:.1f} MB | "
                     f"{d['cores_at_rest']['per_router'] * 1000:.1f} millicores | "
                     f"{d['largest_ran']} routers | {d['stopped_by']} | {cap['routers']} "
                     f"routers | {cap['by']} ({others}) |")
    return "\n".join(lines)


def _tunnels(t: dict) -> str:
    lines = ["| design | servers | ready | network up | links between servers | their "
             "tunnels' own one-way latency, taken off | sampled pairs connected |",
             "|---|---|---|---|---|---|---|"]
    for r in t["rows"]:
        own = r.get("tunnel_ms")
        lines.append(f"| {r['arch']} | {r['servers']} | {r['ready_s']:.1f} s | "
                     f"{r['network_s']:.1f} s | {r.get('links_between', 0)} | "
                     + (f"{own['least'] * 1000:.0f}-{own['most'] * 1000:.0f} us" if own else "")
                     + f" | {r['reach']['connected']}/{r['reach']['pairs']} |")
    return "\n".join(lines)


def _plan(w: dict) -> str:
    need: dict[int, list[str]] = {}
    for arch, n in w["servers_needed"].items():
        need.setdefault(n["at_largest_ran"], []).append(f"{arch} (largest graph run)")
        need.setdefault(n["at_capacity"], []).append(f"{arch} (extrapolated)")
    lines = ["| servers | links between them | of all links | most tunnels one server ends | "
             f"countries whose cities are split (of {w['countries']}) | the count needed by |",
             "|---|---|---|---|---|---|"]
    for p in w["placements"]:
        lines.append(f"| {p['servers']} | {p['links_between']} | {p['share_between']:.1%} | "
                     f"{p['most_tunnels_on_one']} | {p['countries_split']} | "
                     f"{', '.join(need.get(p['servers'], []))} |")
    return "\n".join(lines)


def _times(ratios: list[float]) -> str:
    low, high = f"{min(ratios):.1f}", f"{max(ratios):.1f}"
    return f"{low} times" if low == high else f"{low} to {high} times"


def _span(counts) -> str:
    counts = sorted(set(counts))
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"


def cluster(pub: Published) -> dict:
    s = pub.summary(CLUSTER)
    c, t, w = s["carried"], s["tunnels"], s["world"]
    one = {r["arch"]: r for r in t["rows"] if r["servers"] == 1}
    most = max(r["servers"] for r in t["rows"])
    slower = [r["network_s"] / one[r["arch"]]["network_s"] for r in t["rows"]
              if r["servers"] == most]
    own = [r["tunnel_ms"] for r in t["rows"] if r.get("tunnel_ms")]
    mtus = sorted({m for r in t["rows"] for m in r.get("tunnel_mtu", [])})
    largest = min(d["largest_ran"] for d in c["designs"].values())
    return {"source": pub.source(CLUSTER), "minutes": f"{pub.minutes(CLUSTER):.0f} min",
            "machine": f"{c['machine']['cores']} cores, {c['machine']['memory_mb'] / 1000:.0f} GB",
            "ladder": c["source"], "largest": largest, "carried": _carried(c),
            "mtu": " or ".join(map(str, mtus)),
            "memory_headroom": f"{c['thresholds']['memory_headroom']:.0%}",
            "cpu_busy": f"{1 - c['thresholds']['cpu_headroom']:.0%}",
            "topo": t["topo"], "routers": t["routers"], "tunnels": _tunnels(t),
            "spread_slower": _times(slower), "most": most,
            "own_us": f"{min(o['least'] for o in own) * 1000:.0f}-"
                      f"{max(o['most'] for o in own) * 1000:.0f} us",
            "world_routers": f"{w['routers']:,}".replace(",", " "),
            "world_links": f"{w['links']:,}".replace(",", " "), "plan": _plan(w),
            "at_capacity": _span(n["at_capacity"] for n in w["servers_needed"].values()),
            "at_largest": _span(n["at_largest_ran"] for n in w["servers_needed"].values()),
            "max_share": f"{max(p['share_between'] for p in w['placements']):.1%}",
            "max_servers": max(p["servers"] for p in w["placements"]),
            "max_tunnels": max(p["most_tunnels_on_one"] for p in w["placements"])}
