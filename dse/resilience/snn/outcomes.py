"""Outcomes of a spiking network under a fault, as seed 003 defines them, and its table per target.

Per (fault, image), with ``c``, ``ĉ`` the golden top-1 score (output spike count) and class and
``f``, ``f̂`` the faulty ones, and ``d = 100 |c - f| / c``:

- ``fully_masked``: ``ĉ = f̂`` and ``c = f``;
- ``SDC_1``: ``ĉ != f̂``;
- otherwise (same class, other score) one of four buckets by ``d``, each boundary in exactly one
  bucket: ``SDC_0_5`` (0 < d <= 5), ``SDC_5_10`` (5 < d <= 10), ``SDC_10_20`` (10 < d <= 20),
  ``SDC_20`` (d > 20, also when d is not finite: c = 0, or an INF/NaN score);
- ``correct``: ``f̂`` equals the label (``facc`` is its rate; ``acc`` the golden one).

So ``fully_masked + SDC_1 + the four buckets = 1`` for every (fault, image). These six classes are
the core outcome spec ``snn_top1`` (:mod:`dse.resilience.outcomes`), registered here; every rate in
the table comes from its ``summarize``: the share of (fault, image) pairs with an interval that
takes the fault as the sampling unit (the images of one fault are not independent samples).
"""

from __future__ import annotations

import numpy as np
import torch

from dse.resilience.outcomes import OutcomeSpec, register
from dse.resilience.stats import fault_unit_interval, z_value

CLASSES = ("fully_masked", "SDC_1", "SDC_0_5", "SDC_5_10", "SDC_10_20", "SDC_20")
COUNTS = (*CLASSES, "correct")
RATES = (*CLASSES, "facc")
_EDGES = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64)


def _labels(golden: torch.Tensor, faulty: torch.Tensor) -> np.ndarray:
    """Class (index into CLASSES) of each row of ``faulty`` against the matching golden row."""
    g_cls = golden.argmax(dim=1)
    c = golden.gather(1, g_cls[:, None]).squeeze(1).double()
    f_cls = faulty.argmax(dim=1)
    f = faulty.gather(1, f_cls[:, None]).squeeze(1).double()
    same = f_cls == g_cls
    d = 100 * (c - f).abs() / c
    bucket = torch.bucketize(torch.nan_to_num(d, nan=float("inf")), _EDGES, right=False)
    bucket = torch.where(torch.isfinite(d), bucket, torch.full_like(bucket, 3))
    label = torch.where(same, torch.where(f == c, 0, 2 + bucket), 1)
    return label.numpy().astype(np.int8)[:, None]


SNN_TOP1 = register(OutcomeSpec(
    name="snn_top1",
    axes=(("outcome", CLASSES),),
    classify=_labels,
    identical=(0,),
    headline="SDC_1",
    doc="seed 003's spiking outcomes on output spike counts: fully masked (same top class and "
        "score), SDC-1 (class changed), else the top score's change d in (0,5], (5,10], (10,20], "
        ">20 % (or not finite)",
))


def classify(golden: torch.Tensor, faulty: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per fault, counts over its images of each of :data:`COUNTS`: ``faulty`` is (faults,
    images, classes), ``golden`` (images, classes)."""
    faults, images = faulty.shape[:2]
    rows = faulty.reshape(faults * images, -1)
    lab = SNN_TOP1.classify(golden.repeat(faults, 1), rows).reshape(faults, images, 1)
    tally = SNN_TOP1.tally(lab)[:, 1:]
    correct = (faulty.argmax(dim=2) == labels).sum(dim=1).numpy()[:, None]
    return np.concatenate([tally, correct], axis=1).astype(np.int64)


def estimate(k: np.ndarray, images: int, confidence: float) -> tuple[float, float, float]:
    """Rate of per-fault counts ``k`` out of ``images`` each, with its interval (fault as
    the unit)."""
    n = np.full(len(k), images)
    lo, hi = fault_unit_interval(k, n, z_value(confidence))
    return float(np.sum(k) / n.sum()) if len(k) else float("nan"), lo, hi


def table(groups: dict[str, np.ndarray], images: int, accuracy: float, confidence: float,
          facts: dict[str, dict[str, int]] | None = None) -> dict[str, dict]:
    """Per site (``layer.target``): faults, (fault, image) pairs, each rate with [lo, hi], acc,
    and any
    extra facts (beta clamping). ``groups`` holds each site's (faults, len(COUNTS)) counts."""
    out: dict[str, dict] = {}
    for site, counts in groups.items():
        row: dict = {"faults": len(counts), "fault_image_pairs": len(counts) * images}
        for j, name in enumerate(RATES):
            row[name] = estimate(counts[:, j], images, confidence)
        row["acc"] = accuracy
        row.update((facts or {}).get(site, {}))
        out[site] = row
    return out
