"""Fault campaigns in worker processes: the same files as in one process, and resumable."""

from __future__ import annotations

from _fi_util import fi_cache  # noqa: F401

from dse.resilience import campaign, faultlist
from dse.resilience.data import trained_model
from dse.resilience.engine import FastEngine


def _campaign_rows(model, n: int) -> list[faultlist.Row]:
    layers = faultlist.fault_layers(model)
    shapes = faultlist.tensor_shapes(model, layers, "weights")
    return faultlist.numbered(faultlist.generate(shapes, n_faults=n, bits=range(20, 32), seed=3))


def test_two_workers_write_the_files_one_process_writes(tmp_path, fi_cache):  # noqa: F811
    model, images, labels = trained_model("digits_cnn")
    engine = FastEngine(model, images[:40], labels[:40])
    rows = _campaign_rows(model, 48)
    one = campaign.run_campaign(engine, rows, tmp_path / "one", chunk=8)
    two = campaign.run_campaign(engine, rows, tmp_path / "two", chunk=8, workers=2)
    assert two == one and any(r.counts[3] for r in one)  # some fault is critical
    for name in ("results.csv", "faultlist.csv"):
        if (tmp_path / "one" / name).exists():
            assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()
    assert sorted((tmp_path / "two" / "outcomes.csv").read_text().splitlines()) == sorted(
        (tmp_path / "one" / "outcomes.csv").read_text().splitlines())


def test_workers_resume_a_partial_campaign_without_redoing_a_fault(tmp_path, fi_cache):  # noqa: F811
    model, images, labels = trained_model("digits_cnn")
    engine = FastEngine(model, images[:40], labels[:40])
    rows = _campaign_rows(model, 40)
    whole = campaign.run_campaign(engine, rows, tmp_path / "whole", chunk=8)
    part = tmp_path / "part"
    campaign.run_campaign(engine, rows[:13], part, chunk=8)  # as if killed after 13 faults
    lines_before = (part / "outcomes.csv").read_text().splitlines()
    resumed = campaign.run_campaign(engine, rows, part, chunk=8, workers=2)
    assert resumed == whole
    lines_after = (part / "outcomes.csv").read_text().splitlines()
    assert lines_after[: len(lines_before)] == lines_before
    assert len(lines_after) == len(rows) + 1  # header + one line per fault, none twice
