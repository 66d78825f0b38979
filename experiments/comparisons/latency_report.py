"""The latency experiment's figures, from its results alone: CDFs of echoes, connections and
fetches, first connections against load and distance, and the admission TTL.
"""

from __future__ import annotations

from pathlib import Path

from experiments import plotstyle
from experiments.comparisons import latency as experiment
from experiments.results import load
from protocols.architectures import BASELINE, admits


# -- plots (read only the results directory) -----------------------------------------------
def plot(directory: Path) -> list[Path]:
    results = load(directory, experiment.NAME)
    rows = results.rows("probes")
    archs = results.summary["archs"]
    admitting = [a for a in archs if admits(a)]  # designs whose authority's load, distance
    costed = admitting[0] if admitting else None  # and TTL the last two figures are about
    runs = len({r["repetition"] for r in rows if r["phase"] == "baseline"})
    written = []

    def values(arch, **match):
        return experiment._values(rows, arch, **match)

    fig, axes = plotstyle.figure(3, width=3.6)
    panels = [("ping", "ping RTT (ms)"), ("connect", "TCP connect (ms)"),
              ("fetch", "HTTP fetch of a small page (ms)")]
    for ax, (kind, label) in zip(axes[0], panels, strict=True):
        for arch in archs:
            plotstyle.cdf(ax, values(arch, phase="baseline", kind=kind, cold=0), arch)
            plotstyle.cdf(ax, values(arch, phase="baseline", kind=kind, cold=1), arch,
                          label=f"{plotstyle.ARCH_LABELS[arch]}, first "
                                f"{'echo' if kind == 'ping' else 'connection'}",
                          linestyle="--", linewidth=0.9)
        ax.set_xlabel(label)
    axes[0][0].legend(loc="lower right", fontsize=6)
    axes[0][1].legend(loc="lower right", fontsize=6)
    written += plotstyle.save(fig, directory, "latency_cdfs",
                              f"Latency on {results.meta['scenario']['topo']}, "
                              f"{'one run' if runs == 1 else f'{runs} runs'} of each "
                              "architecture")

    fig, axes = plotstyle.figure(2, width=4.2)
    ax = axes[0][0]
    loads = results.summary.get("load", {})
    for arch in archs:
        points = sorted((int(k), v) for k, v in loads.get(arch, {}).items() if v)
        if not points:
            continue
        xs = [p[0] for p in points]
        if not admits(arch):  # no authority: the same at every load
            rates = sorted({int(k) for a in admitting for k in loads.get(a, {})}) or [0]
            xs, points = rates, [points[0]] * len(rates)
        ax.plot(xs, [p[1]["median"] for p in points], "o-", color=plotstyle.ARCH_COLORS[arch],
                label=plotstyle.ARCH_LABELS[arch])
        ax.fill_between(xs, [p[1]["median"] for p in points], [p[1]["p90"] for p in points],
                        color=plotstyle.ARCH_COLORS[arch], alpha=0.15)
    for rate, gen in results.summary.get("load_generator", {}).items():
        # only shortfalls are marked: the low rates sit too close together for a label each
        if gen.get("sent") and gen["answered"] < gen["sent"] and \
                loads.get(costed, {}).get(rate):
            ax.annotate(f"{100 * gen['answered'] / gen['sent']:.0f}% answered",
                        (int(rate), loads[costed][rate]["median"]),
                        textcoords="offset points", xytext=(0, -12), ha="center", fontsize=6)
    ax.set_xlabel("authority load offered by a synthetic gateway (requests/s)\n"
                  "every request answered unless marked")
    ax.set_ylabel("TCP connect, first connection (ms)\nmedian, shading to p90")
    ax.legend(fontsize=7)
    ax = axes[0][1]
    placements = results.summary.get("placement", [])
    for label, marker in (("near", "o"), ("far", "s")):
        pts = [p for p in placements if p["placement"] == label and p["overhead_ms"] is not
               None]
        ax.scatter([p["gateway_authority_rtt_ms"] for p in pts], [p["overhead_ms"] for p in pts],
                   marker=marker, color=plotstyle.ARCH_COLORS.get(costed),
                   label=f"authority {label}")
    if placements:
        top = max(p["gateway_authority_rtt_ms"] or 0 for p in placements) * 1.1
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="overhead = RTT")
        ax.plot([0, top], [0.5, top + 0.5], color="grey", linestyle=":", linewidth=0.8,
                label="RTT + 0.5 ms")
    ax.set_xlabel("host's gateway <-> authority RTT (ms)")
    ax.set_ylabel(f"first-connection overhead over\n{BASELINE}, per host (ms)")
    ax.legend(fontsize=7)
    written += plotstyle.save(fig, directory, "latency_load_distance",
                              "What the authority's load and distance cost a first connection")

    fig, axes = plotstyle.figure(1, width=4.6)
    ax = axes[0][0]
    ttl = results.summary.get("ttl", {})
    for arch in archs:
        points = sorted((int(k), v) for k, v in ttl.get(arch, {}).items() if k != "any" and v)
        if not admits(arch) and ttl.get(arch, {}).get("any"):
            xs = sorted({int(k) for a in admitting for k in ttl.get(a, {}) if k != "any"}) or [1000]
            ax.plot([x / 1000 for x in xs], [ttl[arch]["any"]["mean"]] * len(xs), "--",
                    color=plotstyle.ARCH_COLORS[arch], label=plotstyle.ARCH_LABELS[arch])
        elif points:
            ax.plot([p[0] / 1000 for p in points], [p[1]["mean"] for p in points], "o-",
                    color=plotstyle.ARCH_COLORS[arch], label=plotstyle.ARCH_LABELS[arch])
    ax.set_xscale("log")
    ax.set_xlabel("admission TTL (s)")
    ax.set_ylabel("mean echo RTT of a flow used now and then (ms)")
    ax.legend(fontsize=7)
    written += plotstyle.save(fig, directory, "latency_ttl",
                              "Longer grants: a flow used now and then waits less often")
    return written


