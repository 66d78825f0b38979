"""One look for every figure: colours per architecture, sizes, and how figures are saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from protocols import architectures  # noqa: E402

ARCH_COLORS = {d.name: d.colour for d in architectures.DESIGNS}
ARCH_LABELS = {d.name: d.label for d in architectures.DESIGNS}
# Okabe-Ito, safe for colour-blind readers; its blues last, as permissionless IP is blue;
# without any design's own colour, so that no series reads as another design beside it
SERIES_COLORS = tuple(c for c in ("#d55e00", "#e69f00", "#cc79a7", "#009e73", "#000000",
                                  "#56b4e9", "#0072b2") if c not in ARCH_COLORS.values())
SERIES_MARKERS = ("s", "^", "D", "v", "P", "X", "h")
plt.rcParams.update({
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "legend.frameon": False,
    "svg.hashsalt": "splinterlab",  # with no date below: the same results, the same files
})


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2):
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)


def cdf(ax, values: list[float], arch: str, label: str | None = None, **kwargs) -> None:
    if not values:
        return
    xs = sorted(values)
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    ax.step(xs, ys, where="post", color=ARCH_COLORS.get(arch), label=label or
            ARCH_LABELS.get(arch, arch), **kwargs)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("fraction of probes")


def series_style(k: int) -> dict:
    """Colour and marker of the k-th of a few ordered series (an admission TTL, say): a marker
    each, so that no reader depends on colour alone."""
    return {"color": SERIES_COLORS[k % len(SERIES_COLORS)],
            "marker": SERIES_MARKERS[k % len(SERIES_MARKERS)]}


def legend_below(fig, handles: list, ncol: int, fontsize: float = 8) -> None:
    """One legend for every panel, under them all (``save`` keeps the panels clear of it)."""
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=fontsize)


def _legends_height(fig) -> float:
    """The share of the figure's height its figure legends take (they sit at the bottom)."""
    renderer = fig.canvas.get_renderer()
    return sum(legend.get_window_extent(renderer).height for legend in fig.legends) / \
        fig.bbox.height


def save(fig, directory: Path, name: str, title: str = "", tight: bool = True) -> list[Path]:
    """Write PNG and SVG side by side; returns both paths. ``tight=False`` keeps a layout the
    figure arranged itself (colour bars, shared legends)."""
    if title:
        fig.suptitle(title, fontsize=11)
    if tight:
        fig.tight_layout(rect=(0, _legends_height(fig), 1, 1))
    paths = [directory / f"{name}.png", directory / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return paths
