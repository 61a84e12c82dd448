"""Figures held to a paper's standard on crowded, realistic inputs: no two labels overlap
(rendered text boxes), one colour per series, log axes where values span decades, units and the
interval level on the axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from _report_rows import COMPONENTS, crowded_rows

from dse.figures import label_overlaps, palette
from dse.report import plots
from dse.report.compare import layer_ratio_plot, totals_plot


def test_overlap_check_finds_crowded_tick_labels_and_passes_spaced_ones():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(range(12), range(12))
    ax.set_xticks(range(12), [f"a long design label {i}" for i in range(12)])
    assert label_overlaps(fig)
    ax.set_xticks(range(12), [str(i) for i in range(12)], fontsize=6)
    assert not label_overlaps(fig)
    plt.close(fig)


def test_palette_gives_every_series_its_own_colour():
    for n in (3, 10, 13, 20, 40):
        assert len(set(palette([f"s{i}" for i in range(n)]).values())) == n


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Draw each figure and check its labels as ``save_figure`` does, keeping the figure for
    inspection instead of writing files (the writing is tested with the HTML pages)."""
    kept: dict[str, plt.Figure] = {}

    def keep(fig, out_dir, stem):
        kept[stem] = fig
        assert not label_overlaps(fig), (stem, label_overlaps(fig)[:3])
        return []

    for module in (plots, __import__("dse.report.compare", fromlist=["x"])):
        monkeypatch.setattr(module, "save_figure", keep)
    return kept, tmp_path


def test_sweep_figures_on_long_labels_and_many_series_have_no_overlaps(drawn):
    kept, out = drawn
    rows = crowded_rows()
    plots.pareto_plot(rows, out, confidence=0.95)
    plots.layer_bars(rows, out)
    plots.breakdown_plot(rows, out)
    plots.efficiency_plot(rows, out)
    # breakdown: 13 components, 13 colours
    share = kept["breakdown"].axes[1]
    colours = {tuple(c.get_facecolor()) for c in share.get_legend().get_patches()}
    assert len(share.get_legend().get_texts()) == len(COMPONENTS) == len(colours)
    # decades -> log axes; units on every axis
    assert kept["breakdown"].axes[0].get_yscale() == "log"
    assert all(ax.get_yscale() == "log" for ax in kept["layers"].axes[:2])
    assert "GOPS" in kept["efficiency"].axes[1].get_ylabel()
    assert "95% confidence" in kept["pareto"].axes[0].get_title()
    for fig in kept.values():
        for ax in fig.axes:
            label = ax.get_ylabel()
            assert not label or "(" in label or "per fault" in label, label


def test_compare_figures_have_no_overlaps_and_annotate_the_ratio(drawn):
    kept, out = drawn
    rows = crowded_rows(points=4, layers=12)
    variants = ["digits_cnn", "cifar_resnet20"]
    from dse.report.compare import compare_totals

    totals = compare_totals(rows, variants)
    points = list(dict.fromkeys(t["design point"] for t in totals))
    totals_plot(totals, variants, points, out)
    layer_ratio_plot(rows, variants, points, out)
    notes = [t.get_text() for ax in kept["compare_totals"].axes for t in ax.texts]
    assert len(notes) == 3 * len(points) and all(n.startswith("x") for n in notes)
