"""The censorship experiment's table, summary and heatmap, from its results alone.

Time to effect is the median of every timing of an action (the command to the last targeted
datagram that arrived, ``probes.cut_time``), shown with its range and how many timings gave a
figure; a timing gives none when the targeted stream did not stop for good within 0.5 s of
the command, or was not flowing before it. Its column has a scale of its own (milliseconds,
logarithmic) with a colour bar; "not measured" is drawn hatched, never as a colour that would
say something about the censor.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from experiments import plotstyle
from experiments.results import load

NAME = "censorship"
NOT_MEASURED = ("not measured: the targeted stream did not stop for good within 0.5 s of the "
                "command, or was not flowing before it (each stream is in streams.csv.gz)")
EFFECT_RANGE_MS = (1, 1000)  # the time column's colour scale


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _timings(record: dict) -> list[float | None]:
    return record.get("time_to_effect_runs_ms", [record["time_to_effect_ms"]])


def table(summary: dict) -> list[dict]:
    """One row per architecture and action: means over repetitions, time to effect over every
    timing of every repetition."""
    rows = []
    for arch in summary["archs"]:
        for action in summary["actions"]:
            recs = [r for r in summary["records"] if r["arch"] == arch and r["action"] == action]
            if not recs:
                continue
            evasion = {}
            for t in summary["techniques"]:
                vals = [r["evasion"][t] for r in recs if r["evasion"][t] is not None]
                evasion[t] = sum(vals) / len(vals) if vals else None
            timings = [t for r in recs for t in _timings(r)]
            measured = sorted(t for t in timings if t is not None)
            rows.append({"arch": arch, "action": action,
                         "time_to_effect_ms": statistics.median(measured) if measured else None,
                         "time_to_effect_range_ms": [measured[0], measured[-1]] if measured
                         else None,
                         "time_to_effect_measured": [len(measured), len(timings)],
                         "precision": _mean(r["precision"] for r in recs),
                         "collateral": _mean(r["collateral"] for r in recs),
                         "evasion": evasion,
                         "attribution": _mean(r["attribution"] for r in recs)})
    return rows


def effect_text(row: dict, sep: str = " ") -> str:
    """'9 ms (5-12, 5 of 5)', or 'not measured (0 of 5)'."""
    got, of = row.get("time_to_effect_measured") or (None, None)
    if row["time_to_effect_ms"] is None:
        return "not measured" + (f" (0 of {of})" if of else "")
    low, high = row.get("time_to_effect_range_ms") or (None, None)
    spread = f"{low:.0f}-{high:.0f}, " if low is not None and got > 1 else ""
    return f"{row['time_to_effect_ms']:.0f} ms{sep}({spread}{got} of {of})" if of else \
        f"{row['time_to_effect_ms']:.0f} ms"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _evasion(value) -> str:
    return "n/a" if value is None else "works" if value == 1 else "fails" if value == 0 else \
        _fmt(value)


def markdown(summary: dict) -> str:
    head = ("| architecture | action | time to effect | precision | collateral | "
            + " | ".join(f"evasion: {t.replace('_', ' ')}" for t in summary["techniques"])
            + " | attribution |")
    lines = [head, "|" + "---|" * (6 + len(summary["techniques"]))]
    rows = summary.get("table") or table(summary)
    for row in rows:
        cells = [row["arch"], row["action"], effect_text(row), _fmt(row["precision"]),
                 _fmt(row["collateral"]), *(_evasion(v) for v in row["evasion"].values()),
                 _fmt(row["attribution"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\nTime to effect: from the command to the last targeted datagram that arrived "
                 "(median of the timings, their range, and how many gave a figure); "
                 + NOT_MEASURED + ".")
    for t in summary.get("throttle", []):
        lines.append(f"\nThrottling ({t['arch']}, repetition {t['repetition']}): " + (
            f"a foreign site held to {t['rate_kbit']} kbit/s: {t['before_kbit']:.0f} kbit/s "
            f"before, {t['during_kbit']:.0f} while throttled." if t.get("rate_kbit") else
            "its censor cannot slow a destination, only cut it."))
    for r in summary["records"]:
        blames = r.get("borrowed_identity_blames")
        if blames:
            lines.append(f"\nBorrowed identity ({r['arch']}, repetition {r['repetition']}): "
                         f"{blames['person_who_acted']} acted with the card of "
                         f"{blames['card_owner']}; the admission log names "
                         f"{', '.join(blames['log_names']) or 'nobody'}.")
    return "\n".join(lines) + "\n"


# -- the heatmap (reads only the results directory) ------------------------------------------
def _capability_cell(row: dict | None, column: str, techniques: list[str], power, harm):
    """Text and colour of one cell; the colour says how much it favours the censor
    (collateral, in blue: how much it hurts bystanders)."""
    if row is None:
        return "", None
    v = row["evasion"][column] if column in techniques else row[column]
    if v is None:
        return "n/a", None
    if column in techniques:
        return _evasion(v), power(1 - v)
    if column == "collateral":  # saturates at 25 %: any collateral should show
        return f"{100 * v:.0f}%", harm(min(1.0, 4 * v))
    return f"{100 * v:.0f}%", power(v)


def _text(ax, x, y, text: str, color) -> None:
    dark = color is not None and 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] < 0.5
    ax.text(x, y, text, ha="center", va="center", fontsize=6.5,
            color="white" if dark else "black")


def plot(directory: Path) -> list[Path]:
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch, Rectangle

    results = load(directory, NAME)
    summary = results.summary
    rows = summary.get("table") or table(summary)
    archs, actions, techniques = summary["archs"], summary["actions"], summary["techniques"]
    columns = ["precision", "collateral", *techniques, "attribution"]
    power = mcolors.LinearSegmentedColormap.from_list("power", ["#f7f7f7", "#7b1f1f"])
    harm = mcolors.LinearSegmentedColormap.from_list("harm", ["#f7f7f7", "#1f4e7b"])
    speed = plotstyle.plt.get_cmap("viridis")
    scale = mcolors.LogNorm(*EFFECT_RANGE_MS, clip=True)

    fig = plotstyle.plt.figure(figsize=(8.2, 1.1 + 2.6 * len(archs)))
    grid = fig.add_gridspec(len(archs), 3, width_ratios=[6.0, 1.1, 0.15], wspace=0.05,
                            hspace=0.12)
    image_for_bar = None
    for k, arch in enumerate(archs):
        ax, tx = fig.add_subplot(grid[k, 0]), fig.add_subplot(grid[k, 1])
        by_action = {a: next((r for r in rows if r["arch"] == arch and r["action"] == a), None)
                     for a in actions}
        image = []
        for i, action in enumerate(actions):
            line = []
            for j, column in enumerate(columns):
                text, color = _capability_cell(by_action[action], column, techniques, power,
                                               harm)
                line.append(color or (1, 1, 1, 1))
                _text(ax, j, i, text, color)
            image.append(line)
        ax.imshow(image, aspect="auto")
        last = k == len(archs) - 1
        ax.set_xticks(range(len(columns)), [c if c in ("precision", "collateral",
                                                       "attribution")
                                            else "evasion: " + c.replace("_", " ")
                                            for c in columns] if last else [],
                      rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(actions)), actions)
        ax.set_ylabel(plotstyle.ARCH_LABELS[arch], fontsize=9)
        ax.grid(False)
        # time to effect: its own column, its own scale
        values = [[(by_action[a] or {}).get("time_to_effect_ms") or float("nan")]
                  for a in actions]
        image_for_bar = tx.imshow(values, aspect="auto", cmap=speed, norm=scale)
        for i, action in enumerate(actions):
            row = by_action[action]
            if row is None or row["time_to_effect_ms"] is None:
                tx.add_patch(Rectangle((-0.5, i - 0.5), 1, 1, facecolor="white",
                                       edgecolor="#999999", hatch="////", linewidth=0))
                _text(tx, 0, i, "not\nmeasured", None)
                continue
            color = speed(scale(row["time_to_effect_ms"]))
            _text(tx, 0, i, effect_text(row, "\n").replace(" of ", "/"), color)
        tx.set_xticks([0], ["time to effect"] if last else [], rotation=40, ha="right",
                      fontsize=7)
        tx.set_yticks([])
        tx.grid(False)
    bar = fig.colorbar(image_for_bar, cax=fig.add_subplot(grid[:, 2]))
    bar.set_label("time to effect, ms (median of timings)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    legend = [Patch(facecolor=power(0.9), label="favours the censor"),
              Patch(facecolor=harm(0.9), label="bystanders hit (collateral)"),
              Patch(facecolor="white", edgecolor="#999999", hatch="////",
                    label="time to effect not measured")]
    fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=7)
    fig.suptitle("Censorship capability per action", fontsize=11)
    fig.subplots_adjust(left=0.16, right=0.93, bottom=0.26, top=0.93)
    return plotstyle.save(fig, directory, "censorship_heatmap", tight=False)
