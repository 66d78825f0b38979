"""README blocks of the benchmarks, the link fidelity of both delay backends, the other
Debian release, the test suite and the regeneration itself."""

from __future__ import annotations

import json

from experiments.publish.published import Published, held, ms, spaced
from protocols.architectures import ADMITTING, BASELINE

ACCESS, ADMISSION = "bench-access/isp", "bench-admission/local"
BRINGUP, RECOVERY = "bench-bringup/isp", "bench-recovery/isp"
SCALE = "bench-scale/ladder"
USERSPACE, NETEM = "bench-fidelity/userspace", "bench-fidelity/netem"
DISTRO = "distro-trixie"


def access(pub: Published) -> dict:
    s = pub.summary(ACCESS)
    p, r = s["rows"][BASELINE], s["rows"][ADMITTING]
    cut, way = s["revocation_ms"], s["one_way_ms"]
    rtt = s["authority_gateway_rtt_ms"]

    def outage(mode: str) -> str:
        o = s[mode]
        ran = o["ran_into_outage_s"]
        last = o["last_grant_ran_out_after_s"]
        stops = " and ".join(f"{ran[w]:.2f}" for w in ("outbound", "inbound")
                             if ran[w] is not None)
        grants = " and ".join(f"{last[w]:.2f}" for w in ("outbound", "inbound")
                              if last[w] is not None)
        kept = "the admitted flows keep running" if all(v is None for v in ran.values()) else \
            f"flows admitted both ways (renewed {o['renewals_before_outage']} times while it " \
            f"was up) stopped {stops} s into the outage, when their last grants, as the " \
            f"authority logged them, ran out ({grants} s)"
        return (f"new flows {o['new_flows_passing']} pass, {o['decisions_logged_by_gateways']} "
                f"decisions logged by the gateways themselves; {kept}")

    flood_delta = (r["first_connect_under_flood_ms"] - r["first_connect_ms"]  # measured since
                   if "flooded_by" in r else None)                         # the second round
    revoked = all(cut[w] <= rtt + way[w] + 10 for w in ("outbound", "inbound"))
    table = "\n".join([
        "| what | permissionless | registered | target |",
        "|---|---|---|---|",
        f"| TCP connect user -> server, flow not yet admitted | {ms(p['first_connect_ms'], 2)} "
        f"| {ms(r['first_connect_ms'], 2)} | |",
        *([f"| the same while {r['flooded_by']} floods its gateway's and the authority's "
           f"control ports ({spaced(r['flood_per_s'])} junk datagrams/s) | | "
           f"{ms(r['first_connect_under_flood_ms'], 2)} "
           f"({flood_delta:+.2f} ms) | "
           f"within 2 ms: {held(abs(flood_delta) <= 2)} |"] if flood_delta is not None else []),
        f"| first-connection overhead | | {ms(s['first_connection_overhead_ms'], 2)} = "
        f"gateway-authority RTT {ms(r['gateway_authority_rtt_ms'], 2)} + "
        f"{ms(s['processing_ms'], 2)} | <= RTT + 0.5 ms: "
        f"{held(s['first_connection_overhead_ms'] <= r['gateway_authority_rtt_ms'] + 0.5)} |",
        f"| ping RTT user -> abroad once admitted | {ms(p['steady_rtt_ms'], 2)} | "
        f"{ms(r['steady_rtt_ms'], 2)} (ratio {s['steady_rtt_ratio']:.3f}) | <= 1.05: "
        f"{held(s['steady_rtt_ratio'] <= 1.05)} |",
        f"| iperf3 user -> server once admitted | {p['goodput_mbit']:.1f} Mbit/s | "
        f"{r['goodput_mbit']:.1f} Mbit/s (ratio {s['goodput_ratio']:.3f}) | >= 0.95: "
        f"{held(s['goodput_ratio'] >= 0.95)} |",
        f"| revocation: command -> the victim's last datagram arrives | | "
        f"{ms(cut['outbound'])} from it, {ms(cut['inbound'])} towards it (one way "
        f"{ms(way['outbound'])}, {ms(way['inbound'])}; authority-gateway RTT {ms(rtt, 2)}) "
        f"| <= RTT + one way + 10 ms: {held(revoked)} |",
        f"| authority killed, fail-closed | | {outage('closed')} | |",
        f"| authority killed, fail-open | | {outage('open')} | |"])
    return {"source": pub.source(ACCESS), "table": table,
            "rtt_idle": ms(r["gateway_authority_rtt_ms"], 2),
            "rtt_busy": ms(r["gateway_authority_rtt_back_to_back_ms"], 2)}


def admission(pub: Published) -> dict:
    """The authority's decisions, a column per run of bench admission (the compiled decisions
    and the bare limit only in results that measured them)."""
    s = pub.summary(ADMISSION)
    runs = [name for name in ("process", "power", "compiled") if name in s]
    head = {"process": "Python, process", "power": "Python, power", "compiled": "C, process"}
    lines = ["| offered | " + " | ".join(f"{head[n]}: answered, p50 / p99" for n in runs) + " |",
             "|---|" + "---|" * len(runs)]
    for rows in zip(*(s[n]["paced"] for n in runs), strict=True):
        lines.append(f"| {spaced(rows[0]['offered_per_s'])} requests/s | " + " | ".join(
            f"{spaced(r['answered'])}/{spaced(r['sent'])}, {r['p50_ms']:.3f} / "
            f"{r['p99_ms']:.3f} ms" for r in rows) + " |")
    lines.append("| saturation: decisions per CPU second | " + " | ".join(
        f"**{spaced(s[n]['flood']['decisions_per_cpu_s'])}**" for n in runs) + " |")
    done = [s[n] for n in runs]
    logged = all(d["logged"] >= d["answered_total"] for d in done)
    bare = s.get("bare_limit")
    return {"source": pub.source(ADMISSION), "table": "\n".join(lines),
            "logged": ("Every answered decision was in the admission log afterwards ("
                       + ", ".join(f"{spaced(d['logged'])} rows for {spaced(d['answered_total'])}"
                                   f" answers ({n})" for n, d in zip(runs, done, strict=True))
                       + ")") if logged else
            "Some answered decisions were missing from the log: " + ", ".join(
                f"{d['logged']} rows for {d['answered_total']}" for d in done),
            "bare": ("These results predate the bare limit's measure." if bare is None else
                     f"The bare limit on this machine (C on one core: verify the request's HMAC, "
                     f"look its source up, sign the answer, nothing else) is "
                     f"{spaced(bare['per_cpu_second'])} decisions per CPU second: " + ", ".join(
                         f"{bare['per_cpu_second'] / s[n]['flood']['decisions_per_cpu_s']:.1f} "
                         f"times the {head[n]} authority's" for n in runs if n != "power") + "."
                     + _floor(s))}


def _floor(s: dict) -> str:
    """The I/O floor beside the bare limit, in results that measured it."""
    floor = s.get("io_floor")
    if floor is None:
        return ""
    rate, bare = floor["per_cpu_second"], s["bare_limit"]["per_cpu_second"]
    compiled = s["compiled"]["flood"]["decisions_per_cpu_s"]
    return (f" The compiled path's datagram I/O alone (C: poll, one `recvmmsg`, one journal "
            f"`write()` per batch, the answers by UDP GSO; nothing checked or decided: "
            f"`splinterlab-iofloor`), offered the same flood, handled {spaced(rate)} "
            f"datagrams per CPU second, {floor['system_share']:.0%} of that CPU in the kernel: "
            f"per request {bare / rate:.1f} times the bare limit's work, where the compiled "
            f"authority's whole path cost {bare / compiled:.1f} times (it reads fuller "
            f"batches, being slower per batch)." + (
                " The decision is the least of an authority's cost here; reading, logging and "
                "answering datagrams is most of it." if bare / compiled >= 2 else ""))


def bringup(pub: Published) -> dict:
    s = pub.summary(BRINGUP)
    out = {"source": pub.source(BRINGUP)}
    for arch, row in s.items():
        out[arch] = (f"network up in {row['network_s']:.2f} s, ready in {row['ready_s']:.2f} s, "
                     f"teardown {row['teardown_s']:.2f} s")
    return out


def recovery(pub: Published) -> dict:
    rels = [RECOVERY, f"{DISTRO}/results/bench-recovery/distro"]
    here, there = (pub.summary(rel)["cases"] for rel in rels)
    versions = [pub.meta(rel)["versions"]["frr"].replace("zebra version ", "FRR ")
                for rel in rels]
    lines = [f"| failure and detection | {versions[0]}: median (max) | {versions[1]}, Debian 13: "
             "median (max) |", "|---|---|---|"]
    for a, b in zip(here, there, strict=True):
        lines.append(f"| {a['case']} | {a['median_s']:.3f} s ({a['max_s']:.3f} s) | "
                     f"{b['median_s']:.3f} s ({b['max_s']:.3f} s) |")
    return {"source": pub.source(*rels), "table": "\n".join(lines),
            "runs": here[0]["runs"]}


def scale(pub: Published) -> dict:
    s = pub.summary(SCALE)
    rows = s["rows"]
    graphs = list(dict.fromkeys(r["graph"] for r in rows))

    def cell(r: dict | None) -> str:
        if r is None:
            return "not run"
        if r.get("error"):
            return f"failed: {r['error']}"
        return (f"{r['ready_s']:.1f} s, {_mb(r['pss_mb'])}, {r['rest']['run_cpu_cores']:.2f}, "
                f"{r['rest']['late_p99']}" + ("" if r["runs"] else f" (**{r['gave_out']}**)"))

    designs = list(dict.fromkeys(r["arch"] for r in rows))
    lines = ["| graph | PoPs | routers | " + " | ".join(
        f"{d}: " + ("ready, PSS, cores at rest, delay p99" if k == 0 else "the same")
        for k, d in enumerate(designs)) + " |", "|---|---|---|" + "---|" * len(designs)]
    for g in graphs:
        by = {r["arch"]: r for r in rows if r["graph"] == g}
        first = next(iter(by.values()))
        lines.append(f"| {g} | {first['pops']} | {first['routers']} | "
                     + " | ".join(cell(by.get(d)) for d in designs) + " |")
    c = s["ceiling"]
    reg = [r for r in rows if r["arch"] == ADMITTING and not r.get("error")]
    big = max(reg, key=lambda r: r["routers"])
    gw = big["memory"].get("gateway", {"count": 0, "pss_mb": 0})
    quiet = ", ".join(f"{r['arch']} " + (f"{r['quiet_s']:.0f} s" if r.get("quiet_s") is not None
                                          else "past the bench's patience")
                      for r in rows if r["graph"] == big["graph"] and not r.get("error"))
    return {"source": pub.source(SCALE), "table": "\n".join(lines),
            "cores": s["machine"]["cores"], "memory": _mb(s["machine"]["memory_mb"]),
            "minutes": f"{pub.minutes(SCALE):.0f} min",
            "ceiling": ", ".join(f"{arch}: every graph up to {v['largest']} ({v['pops']} "
                                 f"PoPs), stopped by {v['stopped_by']}"
                                 for arch, v in c.items()),
            "gateway_mb": f"{gw['pss_mb'] / max(1, gw['count']):.1f} MB",
            "big": big["graph"], "big_mb": _mb(big["pss_mb"]),
            "quiet": quiet}


def _mb(value: float) -> str:
    return f"{value / 1000:.1f} GB" if value >= 1000 else f"{value:.0f} MB"


def fidelity(pub: Published) -> dict:
    u, n = pub.summary(USERSPACE), pub.summary(NETEM)
    ur, nr = u["rows"], n["rows"]

    def rtt(rows, delay):
        return next(r for r in rows if r["kind"] == "rtt_ms" and r["requested"] == 2 * delay)

    delays = [r["requested"] / 2 for r in ur if r["kind"] == "rtt_ms"]
    lines = ["| one-way delay | requested RTT | userspace: median (mean) | within max(0.2 ms, "
             "2 %) | netem under TCG: median (mean) |", "|---|---|---|---|---|"]
    for d in delays:
        a, b = rtt(ur, d), rtt(nr, d)
        lines.append(f"| {d:g} ms | {2 * d:.2f} ms | {a['measured']:.2f} ms "
                     f"({a['extra']['mean']:.3f} ms) | {'yes' if a['ok'] else 'no'} | "
                     f"{b['measured']:.2f} ms ({b['extra']['mean']:.3f} ms) |")
    rates = [r for r in ur if r["kind"] == "goodput_mbit"]
    rate_lines = ["| link bandwidth | one-way delay | userspace: iperf3 TCP goodput | netem "
                  "under TCG |", "|---|---|---|---|"]
    for a in rates:
        b = next(r for r in nr if r["kind"] == "goodput_mbit" and r["requested"] ==
                 a["requested"] and r["extra"]["delay_ms"] == a["extra"]["delay_ms"])
        err = 100 * (a["measured"] - a["requested"]) / a["requested"]
        rate_lines.append(f"| {a['requested']:g} Mbit/s | {a['extra']['delay_ms']:g} ms | "
                          f"{a['measured']:.2f} Mbit/s ({err:+.1f} %) | {b['measured']:.2f} "
                          "Mbit/s |")
    pps = max((r["measured"] for r in ur if r["kind"] == "delay_path_pps" and r["ok"]),
              default=0)
    default = [r for r in ur if r["kind"] == "default_socket_pps"]
    capacity = next((r["measured"] for r in nr if r["kind"] == "capacity_mbit"), None)
    return {"source": pub.source(USERSPACE, NETEM), "delays": "\n".join(lines),
            "rates": "\n".join(rate_lines),
            "cal_user": f"{u['context']['calibration']['cost_us']:.1f} us",
            "cal_netem": f"{n['context']['calibration']['cost_us']:.0f} us",
            "kernel_netem": pub.meta(NETEM)["versions"]["kernel"],
            "pps": spaced(pps), "netem_capacity": "n/a" if capacity is None else
            f"{capacity:.0f} Mbit/s",
            "default_loss": ", ".join(f"{r['extra']['loss_pct']:.2f} % at "
                                      f"{spaced(r['extra']['offered_pps'])}" for r in default)}


def _steps(path) -> dict:
    return {name: int(seconds) for name, _, seconds in
            (line.split() for line in path.read_text().splitlines())}


def vmtest(pub: Published) -> dict:
    steps = _steps(pub.root / NETEM / "vm-steps.txt")
    verdict = (pub.root / NETEM / "vmcheck.md").read_text()
    return {"source": pub.source(NETEM),
            "steps": ", ".join(f"{name} {seconds} s" for name, seconds in steps.items()),
            "minutes": f"{sum(steps.values()) / 60:.0f} min",
            "verdict": "every check held" if "every check holds" in verdict else
            "some checks failed (see vmcheck.md)"}


def distro(pub: Published) -> dict:
    rel = f"{DISTRO}/results/blast-radius/distro"
    meta = pub.meta(rel)
    steps = _steps(pub.root / DISTRO / "steps.txt")
    summary = (pub.root / DISTRO / "summary.md").read_text()
    here = pub.meta("blast-radius/isp")
    conv = {name: m[f"{ADMITTING}_settings"]["convergence_s"] for name, m in
            (("here", here), ("there", meta))}
    return {"source": pub.source(rel), "frr": meta["versions"]["frr"].replace(
        "zebra version ", "FRR "), "python": meta["versions"]["python"],
        "frr_here": here["versions"]["frr"].replace("zebra version ", "FRR "),
        "minutes": f"{sum(steps.values()) / 60:.0f} min",
        "steps": ", ".join(f"{name} {seconds} s" for name, seconds in steps.items()),
        "verdict": "every check held" if "every check holds" in summary else
        "some checks failed (see summary.md)",
        "conv_here": f"{conv['here']:.1f} s", "conv_there": f"{conv['there']:.1f} s"}


def regenerate(pub: Published) -> dict:
    record = json.loads((pub.root / "regenerate.json").read_text())
    later = [f"{r['step']} (`{', '.join(r['dirs'])}`) at commit {r['commit'][:7]} on {r['date']}"
             for r in record.get("refreshed", [])]
    return {"commit": record["commit"][:7], "date": record["date"],
            "hours": f"{record['total_s'] / 3600:.1f} h",
            "steps": ", ".join(f"{name} {seconds / 60:.0f} min" for name, seconds in
                               record["steps"].items()),
            "refreshed": " Re-measured since with `splinterlab results --refresh` after changes "
                         f"to what they measure: {'; '.join(later)}." if later else ""}

