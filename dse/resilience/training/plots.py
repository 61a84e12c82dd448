"""Figures of a training campaign: example curves per outcome against the golden band, and the
outcome rates per optimizer and mitigation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dse.resilience.training.outcome import OUTCOMES
from dse.resilience.training.run import Golden


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(golden: Golden, records: list[dict], path: Path, per_outcome: int = 3) -> None:
    """One panel per outcome seen: test accuracy (fraction of the test set) against the global
    training step for up to ``per_outcome`` experiments (dashed line: their injection step),
    over the golden run (black) and the band of all golden seeds (grey); a cross at the bottom
    marks the step where an experiment's loss or gradient became INF/NaN."""
    seen = [o for o in OUTCOMES if any(r["outcome"] == o for r in records)]
    if not seen:
        return
    plt = _plt()
    cols = min(4, len(seen))
    rows = -(-len(seen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    steps = sorted(golden.curve.test_acc)
    curves = [golden.curve.test_acc, *golden.seed_test_acc]
    band = np.array([[c.get(g, np.nan) for g in steps] for c in curves])
    for ax, outcome in zip(axes.flat, seen, strict=False):
        ax.fill_between(steps, np.nanmin(band, 0), np.nanmax(band, 0), color="0.85",
                        label="golden seeds (range)")
        ax.plot(steps, band[0], color="black", lw=1, label="golden")
        examples = [r for r in records if r["outcome"] == outcome][:per_outcome]
        for i, r in enumerate(examples):
            xs = [int(k) for k in r["test_acc"]]
            color = f"C{i}"
            ax.plot(xs, list(r["test_acc"].values()), "o-", ms=2, color=color,
                    label=f"exp {r['key'].split('/')[0]}")
            ax.axvline(r["inject"], color=color, ls="--", lw=0.8)
            if r.get("nonfinite") is not None:  # no accuracy to draw: mark where it broke
                ax.plot([r["nonfinite"]], [0.02], "x", ms=7, mew=2, color=color)
        ax.set_title(outcome)
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (fraction)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=6, loc="best", framealpha=0.6)
    for ax in list(axes.flat)[len(seen):]:
        ax.axis("off")
    fig.suptitle(f"{golden.setup.model} / {golden.setup.optimizer} / {golden.setup.mitigation}: "
                 "example experiments per outcome (dashed: injection step; x: INF/NaN)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_bars(summary: dict[str, dict], path: Path) -> None:
    """Rate of each outcome (fraction of experiments, 95 % Wilson interval) per
    optimizer/mitigation."""
    plt = _plt()
    keys = list(summary)
    outcomes = [o for o in OUTCOMES if any(summary[k][o]["count"] for k in keys)] or ["Masked"]
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(outcomes) * max(1, len(keys) / 2)), 4))
    for i, key in enumerate(keys):
        rates = np.array([summary[key][o]["rate"] for o in outcomes])
        lo = rates - np.array([summary[key][o]["ci"][0] for o in outcomes])
        hi = np.array([summary[key][o]["ci"][1] for o in outcomes]) - rates
        x = np.arange(len(outcomes)) + (i - (len(keys) - 1) / 2) * width
        ax.bar(x, rates, width, yerr=[lo.clip(0), hi.clip(0)], capsize=2,
               label=f"{key} (n={summary[key]['experiments']})")
    ax.set_xticks(range(len(outcomes)), outcomes, rotation=20)
    ax.set_ylabel("fraction of experiments")
    ax.set_title("outcome of one training fault per optimizer / mitigation\n"
                 "(fraction of experiments, 95% Wilson intervals)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
