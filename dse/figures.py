"""What every dse figure shares: a palette with one colour per series, a check that no two labels
overlap, and writing PNG + SVG.

Neutral ground (imports nothing of dse), so the report and the resilience campaign plots hold
the same standard. A figure with overlapping labels is still written, with a
:class:`LabelOverlapWarning` naming the texts; the tests turn that warning into an error.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402


class LabelOverlapWarning(UserWarning):
    """Two texts of a figure (tick labels, annotations, titles, axis labels) intersect."""


def palette(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One distinct colour per name: tab10, then tab20's lighter shades, then tab20b/c.

    Up to 40 series get 40 different colours; past that colours repeat (group the series).
    """
    tab20 = plt.get_cmap("tab20").colors
    colours = list(tab20[0::2]) + list(tab20[1::2]) + list(plt.get_cmap("tab20b").colors[0::2]) \
        + list(plt.get_cmap("tab20c").colors[0::2])
    return {name: tuple(colours[i % len(colours)]) for i, name in enumerate(names)}


def _texts(fig: plt.Figure) -> list[Text]:
    out: list[Text] = [t for t in (fig._suptitle,) if t is not None] + list(fig.texts)
    for ax in fig.axes:
        out += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):  # the ticks drawn: inside the view limits
            out += [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)]
        out += [a for a in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out += legend.get_texts()
    for legend in fig.legends:
        out += legend.get_texts()
    unique = list({id(t): t for t in out}.values())  # the suptitle is also in fig.texts
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def label_overlaps(fig: plt.Figure, pad: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of visible texts whose rendered boxes intersect (by more than ``pad`` pixels)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer).padded(-pad)) for t in _texts(fig)]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def save_figure(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` (130 dpi) and ``stem.svg``; warn about overlapping labels; close."""
    clashes = label_overlaps(fig)
    if clashes:
        shown = "; ".join(f"{a!r} / {b!r}" for a, b in clashes[:5])
        warnings.warn(f"{stem}: {len(clashes)} overlapping labels: {shown}",
                      LabelOverlapWarning, stacklevel=2)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths
