"""Fault campaigns in worker processes: the same files as in one process, and resumable."""

from __future__ import annotations

from _fi_util import fi_cache  # noqa: F401

from dse.problems.trained import load_model
from dse.resilience import campaign, sampling
from dse.resilience.inference import FastEngine
from dse.resilience.outcomes import TOP1


def _campaign_rows(model, n: int) -> list[campaign.Row]:
    layers = sampling.fault_layers(model)
    shapes = sampling.tensor_shapes(model, layers, "weight")
    return campaign.numbered(sampling.generate(shapes, n_faults=n, bits=range(20, 32), seed=3))


def test_two_workers_write_the_files_one_process_writes(tmp_path, fi_cache):  # noqa: F811
    model, images, labels = load_model("digits_cnn")
    engine = FastEngine(model, images[:40], labels[:40])
    rows = _campaign_rows(model, 48)
    one = campaign.run_campaign(engine, rows, tmp_path / "one", chunk=8)
    two = campaign.run_campaign(engine, rows, tmp_path / "two", chunk=8, workers=2)
    critical = TOP1.columns.index("critical")
    assert two == one and any(r.counts[critical] for r in one)  # some fault is critical
    assert (tmp_path / "two" / "results.csv").read_text() == (
        tmp_path / "one" / "results.csv").read_text()


def test_workers_resume_a_partial_campaign_without_redoing_a_fault(tmp_path, fi_cache):  # noqa: F811
    model, images, labels = load_model("digits_cnn")
    engine = FastEngine(model, images[:40], labels[:40])
    rows = _campaign_rows(model, 40)
    whole = campaign.run_campaign(engine, rows, tmp_path / "whole", chunk=8)
    part = tmp_path / "part"
    campaign.run_campaign(engine, rows[:13], part, chunk=8)  # as if killed after 13 faults
    ran = []
    real_run = engine.run
    engine.run = lambda faults: ran.extend(faults) or real_run(faults)
    resumed = campaign.run_campaign(engine, rows, part, chunk=8, workers=2)
    assert resumed == whole and not ran  # the pool ran the 27 left (this engine ran none)
    text = (part / "results.csv").read_text().splitlines()
    assert len(text) == len(rows) + 1  # header + one line per fault, none twice
