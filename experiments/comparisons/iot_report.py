"""The IoT experiment's figures, from its results alone: the devices' view (first datagram's
delay, devices whose first datagram was lost), the load (authority and farm gateway), and the
projection to the world's IoT, labelled as one, each series named by its source.
"""

from __future__ import annotations

from pathlib import Path

from experiments import plotstyle
from experiments.results import load
from protocols.architectures import admits

NAME = "iot"

# -- plots (read only the results directory) -----------------------------------------------
STEADY = ("decisions_per_s", "log_bytes_per_device_day", "log_rows_per_device_day",
          "grants_mean")  # need a renewal seen
LEGEND_PT = 8


def _series(steps: list[dict], arch: str, ttl, key: str) -> tuple[list, list]:
    points = sorted((r["devices"], r[key]) for r in steps if r["arch"] == arch and
                    (ttl is None or r["ttl_ms"] == ttl) and r.get(key) is not None and
                    (key not in STEADY or r.get("renewals_observed")))
    return [p[0] for p in points], [p[1] for p in points]


def _spaced(x: float, spec: str = ",.0f") -> str:
    """Thousands apart by a space, as the README writes them (16 000)."""
    return format(x, spec).replace(",", " ")


def _duration(ms: float) -> str:
    s = ms / 1000
    return f"{s:g} s" if s < 120 else f"{s / 60:g} min" if s < 3600 else f"{s / 3600:g} h"


def _ttls(ttls: list) -> str:
    return f"TTL{'s' if len(ttls) > 1 else ''} of {', '.join(map(_duration, ttls))}"


def _lines(steps: list[dict]) -> dict:
    """One line per (design, TTL) (TTL ``None``: a design that admits nothing has one line),
    each with its colour, marker and label, the same in every panel and figure."""
    archs = list(dict.fromkeys(r["arch"] for r in steps))
    lines = {(a, None): {"color": plotstyle.ARCH_COLORS[a], "marker": "o",
                         "label": plotstyle.ARCH_LABELS[a]} for a in archs if not admits(a)}
    timed = [(a, ttl) for a in archs if admits(a)
             for ttl in sorted({r["ttl_ms"] for r in steps if r["arch"] == a})]
    return lines | {(a, ttl): {**plotstyle.series_style(k), "label": f"{a}, TTL "
                               f"{_duration(ttl)}"} for k, (a, ttl) in enumerate(timed)}


def _draw(ax, steps: list[dict], lines: dict, key: str, linestyle: str = "-",
          scale: float = 1.0) -> None:
    """Every line of ``key`` (times ``scale``), each nudged sideways a little so that equal
    values (many are: every zero) do not hide one another's markers."""
    for k, ((arch, ttl), style) in enumerate(lines.items()):
        xs, ys = _series(steps, arch, ttl, key)
        nudge = 10 ** (0.012 * (k - (len(lines) - 1) / 2))
        ax.plot([x * nudge for x in xs], [y * scale for y in ys], linestyle=linestyle,
                markersize=5, color=style["color"], marker=style["marker"])


def _devices_axis(ax, steps: list[dict]) -> None:
    """Ticks at the device counts measured, written out (no 10^4 to decode)."""
    from matplotlib.ticker import NullLocator

    devices = sorted({r["devices"] for r in steps})
    ax.set_xscale("log")
    ax.set_xticks(devices, [_spaced(d) for d in devices])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(devices[0] / 1.6, devices[-1] * 1.6)
    ax.set_xlabel("devices in the farm (log scale)")


def _log_axis(ax) -> None:
    """A log axis labelled in plain numbers (1, 10, 100), not powers of ten; 2 and 5 too
    where it spans few decades. A zero, which a log axis would drop, makes it a count axis
    instead, linear below the smallest decade drawn."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ys = [y for line in ax.get_lines() for y in line.get_ydata()]
    positive = [y for y in ys if y > 0]
    if not positive:
        return
    if min(ys) <= 0:
        _count_axis(ax, 10.0 ** math.floor(math.log10(min(positive))))
        return
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) < 2.5 else (1.0,)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)),
                                          math.ceil(math.log10(high)) + 1) for m in subs]
    ax.set_ylim(max(t for t in ticks if t <= low), min(t for t in ticks if t >= high))
    ax.yaxis.set_major_locator(LogLocator(subs=subs))  # a labelled tick at either end
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _spaced(v, ",.10g")))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _count_axis(ax, linear: float = 1.0) -> None:
    """Counts that are often zero: linear up to ``linear``, logarithmic beyond, so a zero sits
    on its own line (labelled 0) where a log axis would drop it."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("symlog", linthresh=linear)
    ax.set_ylim(bottom=-0.4 * linear, top=max(10 * linear, ax.get_ylim()[1] * 8))  # a note's room
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _spaced(v, ",.10g")))


def _legend(fig, lines: dict, ncol: int) -> None:
    """The lines' legend, one for every panel, under them."""
    from matplotlib.lines import Line2D

    plotstyle.legend_below(fig, [Line2D([], [], color=s["color"], marker=s["marker"],
                                        label=s["label"]) for s in lines.values()], ncol,
                           LEGEND_PT)


def _styles_legend(ax, styles: dict[str, str]) -> None:
    """Which line style is which measure, where one panel shows two."""
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color="#555555", linestyle=style, label=label)
                       for label, style in styles.items()], fontsize=LEGEND_PT, loc="best")


def _panel(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)


def plot(directory: Path) -> list[Path]:
    results = load(directory, NAME)
    steps = results.summary["steps"]
    lines = _lines(steps)
    topo = results.meta["scenario"]["topo"]
    written = _plot_devices(directory, steps, lines, topo)
    if any(admits(r["arch"]) for r in steps):
        written += _plot_load(directory, steps, {k: v for k, v in lines.items()
                                                 if k[1] is not None}, topo)
    projected = results.summary.get("projection")
    if projected:
        written += _plot_projection(directory, projected, steps, lines)
    return written


def _plot_devices(directory: Path, steps: list[dict], lines: dict, topo: str) -> list[Path]:
    """What the devices see: how long a first datagram takes, and how many never arrive."""
    fig, axes = plotstyle.figure(3, width=4.0, height=3.4)
    for ax, q, name in ((axes[0][0], "p50", "median"), (axes[0][1], "p99", "99th percentile")):
        _draw(ax, steps, lines, f"first_{q}_ms")
        _log_axis(ax)
        _panel(ax, f"First datagram's delay: {name}", "one-way delay (ms, log scale)")
    low, high = zip(*(a.get_ylim() for a in axes[0][:2]), strict=True)
    for ax in axes[0][:2]:  # the same scale: the two panels compare at a glance
        ax.set_ylim(min(low), max(high))
    ax = axes[0][2]
    _draw(ax, steps, lines, "first_lost")
    _count_axis(ax)
    _panel(ax, "Devices whose first datagram was lost", "devices (log scale above 1)")
    for ax in axes[0]:
        _devices_axis(ax, steps)
    _legend(fig, lines, ncol=len(lines))
    return plotstyle.save(fig, directory, "iot_scaling", f"IoT devices on {topo}, as the "
                          "devices see it: every point a measured step")


def _plot_load(directory: Path, steps: list[dict], lines: dict, topo: str) -> list[Path]:
    """What the registered devices cost the authority and the farm's gateway."""
    fig, axes = plotstyle.figure(3, 2, width=4.0, height=3.3)
    (decisions, cpu, answer), (log, grants, failed) = axes
    _draw(decisions, steps, lines, "decisions_per_s")
    _panel(decisions, "Authority: decisions per second", "decisions/s, steady (log scale)")
    gateway = any(r.get("gateway_cpu_share") is not None for r in steps)
    for key, style in (("cpu_share", "-"), ("gateway_cpu_share", "--")):
        _draw(cpu, steps, lines, key, style, scale=100)
    _panel(cpu, "CPU used", "% of one core (log scale)")
    _styles_legend(cpu, {"authority": "-", **({"farm's gateway": "--"} if gateway else {})})
    for key, style in (("answer_p50_ms", "-"), ("answer_p99_ms", "--")):
        _draw(answer, steps, lines, key, style)
    _panel(answer, "Gateway: ask-to-answer time", "ms (log scale)")
    _styles_legend(answer, {"median": "-", "99th percentile": "--"})
    _draw(log, steps, lines, "log_bytes_per_device_day", scale=1e-3)
    _panel(log, "Authority: admission log", "kB per device per day (log scale)")
    _draw(grants, steps, lines, "grants_mean")
    devices = sorted({r["devices"] for r in steps})
    grants.plot(devices, devices, ":", color="#777777", label="one grant per device")
    grants.legend(fontsize=LEGEND_PT, loc="best")
    _panel(grants, "Gateway: grants held", "grants, mean over the step (log scale)")
    _draw(failed, steps, lines, "failed")
    _panel(failed, "Gateway: questions it failed",
           "questions, each after two tries\n(log scale above 1)")
    for ax in (decisions, cpu, answer, log, grants):
        _log_axis(ax)
    _count_axis(failed)
    _drops(failed, steps)
    for ax in (*axes[0], *axes[1]):
        _devices_axis(ax, steps)
    _legend(fig, lines, ncol=len(lines))
    unseen = sorted({r["ttl_ms"] for r in steps if admits(r["arch"])} -
                    {r["ttl_ms"] for r in steps if r.get("renewals_observed")})
    note = (f"\n{_ttls(unseen)}: no renewal within the window, so no decisions/s, log or "
            "grants" if unseen else "")
    return plotstyle.save(fig, directory, "iot_load", f"Registered access on {topo}: what "
                          f"the devices cost the authority and the farm's gateway{note}")


def _drops(ax, steps: list[dict]) -> None:
    """The kernel's NFQUEUE drops, said in words where there were none (the usual case)."""
    drops = sum(r.get("nfqueue_drops") or 0 for r in steps if admits(r["arch"]))
    ax.annotate(f"kernel's NFQUEUE drops: {_spaced(drops)} in all steps",
                (0.03, 0.95), xycoords="axes fraction", fontsize=LEGEND_PT, va="top")


ERA_STYLES = ({"color": "#888888", "marker": "o"}, {"color": "#000000", "marker": "s"},
              {"color": "#000000", "marker": "^", "linestyle": ":"})


def _plot_projection(directory: Path, p: dict, steps: list[dict], lines: dict) -> list[Path]:
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    fig, axes = plotstyle.figure(3, width=4.0, height=3.4)
    ax = axes[0][2]  # the measured points it rests on: flat lines mean "in proportion"
    for arch, ttl in (k for k in lines if k[1] is not None):
        xs, ys = _series(steps, arch, ttl, "decisions_per_device_s")
        keep = [(x, y) for x, y in zip(xs, ys, strict=True) if any(
            r["devices"] == x and r["ttl_ms"] == ttl and r["renewals_observed"] for r in steps)]
        if keep:
            ax.plot(*zip(*keep, strict=True), "-", color=lines[arch, ttl]["color"],
                    marker=lines[arch, ttl]["marker"], label=f"TTL {_duration(ttl)}")
    _devices_axis(ax, steps)
    ax.set_ylim(0, 1.4 * ax.get_ylim()[1])  # from zero, with room for the legend
    ax.set_ylabel("decisions/device/s (measured)")
    ax.set_title("The measured rates it scales", fontsize=10)
    ax.legend(fontsize=LEGEND_PT, loc="upper center", ncol=3)
    eras = []
    ttls = sorted(next(iter(p["eras"].values()))["by_ttl"], key=int)  # the same in every era
    xs = [int(t) / 1000 for t in ttls]
    for style, (era, data) in zip(ERA_STYLES, p["eras"].items(), strict=False):
        for ax, key in ((axes[0][0], "authority_cores"), (axes[0][1], "log_tb_per_day")):
            ax.plot(xs, [data["by_ttl"][t][key] for t in ttls], **{"linestyle": "-", **style})
        eras.append(Line2D([], [], **style, label=f"{data['devices'] / 1e9:g} billion devices, "
                                                  f"{data.get('label', era)}"))
    for ax, title in ((axes[0][0], "Authority cores (projected)"),
                      (axes[0][1], "Admission log, TB per day (projected)")):
        ax.set_xscale("log")
        ax.set_xticks(xs, [_duration(int(t)) for t in ttls])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("admission TTL (log scale)")
        _log_axis(ax)
        ax.set_title(title, fontsize=10)
    plotstyle.legend_below(fig, eras, ncol=len(eras), fontsize=LEGEND_PT)
    left_out = _ttls(p["not_projected"]) if p["not_projected"] else ""
    note = (f"From {_spaced(p['measured_devices'])} measured devices and "
            f"{_spaced(p['decisions_per_cpu_s'])} decisions per CPU second; assumes every rate "
            "grows in proportion to the devices" +
            (f"; {left_out}: longer than the window, not projected" if left_out else ""))
    return plotstyle.save(fig, directory, "iot_projection",
                          "A projection, not a measurement: the authority for the world's "
                          f"IoT\n{textwrap.fill(note, int(fig.get_figwidth() * 12))}")


