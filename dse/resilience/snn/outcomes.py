"""Outcomes of a spiking network under a fault, as seed 003 defines them, and its table per target.

Per (fault, image), with ``c``, ``ĉ`` the golden top-1 score (output spike count) and class and
``f``, ``f̂`` the faulty ones, and ``d = 100 |c - f| / c``:

- ``fully_masked``: ``ĉ = f̂`` and ``c = f``;
- ``SDC_1``: ``ĉ != f̂``;
- otherwise (same class, other score) one of four buckets by ``d``, each boundary in exactly one
  bucket: ``SDC_0_5`` (0 < d <= 5), ``SDC_5_10`` (5 < d <= 10), ``SDC_10_20`` (10 < d <= 20),
  ``SDC_20`` (d > 20, also when d is not finite: c = 0, or an INF/NaN score);
- ``correct``: ``f̂`` equals the label (``facc`` is its rate; ``acc`` the golden one).

So ``fully_masked + SDC_1 + the four buckets = 1`` for every fault. Every rate in the table is a
mean over faults of each fault's fraction of images (the fault is the sampling unit), with an
interval from :func:`dse.resilience.strata.combine`: a Wilson interval on the effective number of
faults (the images of one fault are not independent samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dse.resilience.stats import z_value
from dse.resilience.strata import Stratum, combine

COUNTS = ("fully_masked", "SDC_1", "SDC_0_5", "SDC_5_10", "SDC_10_20", "SDC_20", "correct")
RATES = ("fully_masked", "SDC_1", "SDC_0_5", "SDC_5_10", "SDC_10_20", "SDC_20", "facc")
_EDGES = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64)


def classify(golden: torch.Tensor, faulty: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per fault, counts over its images of each of :data:`COUNTS`: ``faulty`` is (faults,
    images, classes), ``golden`` (images, classes)."""
    g_cls = golden.argmax(dim=1)
    c = golden.gather(1, g_cls[:, None]).squeeze(1).double()
    f_cls = faulty.argmax(dim=2)
    f = faulty.gather(2, f_cls[..., None]).squeeze(2).double()
    same = f_cls == g_cls
    masked = same & (f == c)
    d = 100 * (c - f).abs() / c
    bucket = torch.bucketize(torch.nan_to_num(d, nan=float("inf")), _EDGES, right=False)
    bucket = torch.where(torch.isfinite(d), bucket, torch.full_like(bucket, 3))
    open_ = same & ~masked
    cols = [masked, ~same] + [open_ & (bucket == i) for i in range(4)] + [f_cls == labels]
    return torch.stack([x.sum(dim=1) for x in cols], dim=1).numpy().astype(np.int64)


def estimate(fractions: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """Mean of per-fault fractions with its interval (fault as the unit)."""
    s = Stratum(1.0)
    s.add(fractions)
    e = combine([s], z_value(confidence))
    return e.value, e.lo, e.hi


def table(groups: dict[str, np.ndarray], images: int, accuracy: float, confidence: float,
          facts: dict[str, dict[str, int]] | None = None) -> dict[str, dict]:
    """Per site (``layer.target``): faults, injections, each rate with [lo, hi], acc, and any
    extra facts (beta clamping). ``groups`` holds each site's (faults, len(COUNTS)) counts."""
    out: dict[str, dict] = {}
    for site, counts in groups.items():
        frac = counts / images
        row: dict = {"faults": len(counts), "injections": len(counts) * images}
        for j, name in enumerate(RATES):
            row[name] = estimate(frac[:, j], confidence)
        row["acc"] = accuracy
        row.update((facts or {}).get(site, {}))
        out[site] = row
    return out
