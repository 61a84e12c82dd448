"""Outcome of one (fault, image) against the golden run, and aggregates with confidence intervals.

Classes (exclusive, in this order of precedence):
- ``inf_nan``: the faulty output holds an INF or NaN (a detectable, unrecoverable error);
- ``masked``: the faulty output is bit-identical to the golden output;
- ``critical`` (SDC-1): the top-1 class changed (for dense outputs, at any position);
- ``non_critical``: the output changed but the top-1 class did not.

Every finite, non-masked outcome also falls in an SDC bucket by how much the softmax score of the
golden top-1 class dropped, relative to its golden value: 0-5 %, 5-10 %, 10-20 %, > 20 % (a rise
counts as 0 %; for dense outputs the largest drop over positions).

Intervals are Wilson score intervals (good coverage at rates near 0, unlike the Wald interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from dse.resilience.stats import wilson, z_value


class Outcome(str, Enum):
    """Outcome codes; a str so that ``outcome == "critical"`` holds."""

    MASKED = "masked"
    NON_CRITICAL = "non_critical"
    CRITICAL = "critical"
    INF_NAN = "inf_nan"

    def __str__(self) -> str:
        return self.value


CODES: tuple[Outcome, ...] = tuple(Outcome)  # code i <-> CODES[i]
NOT_RUN = -1  # (fault, image) pairs a transient fault does not touch
BUCKETS = ("sdc_0_5", "sdc_5_10", "sdc_10_20", "sdc_20")
_EDGES = np.array([0.05, 0.10, 0.20])


def _bits(t: torch.Tensor) -> torch.Tensor:
    """An integer view for bit-exact comparison (so -0.0 != 0.0 and NaN payloads count)."""
    ints = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
            torch.bfloat16: torch.int16}
    return t.view(ints[t.dtype]) if t.dtype in ints else t


def rows_identical(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bool per row (dim 0): the two rows are bit-identical."""
    if a.shape != b.shape:
        return torch.zeros(a.shape[0], dtype=torch.bool)
    eq = _bits(a.contiguous()) == _bits(b.contiguous())
    return eq.reshape(a.shape[0], -1).all(dim=1)


def _as_scores(logits: torch.Tensor) -> torch.Tensor:
    """(rows, classes, positions) view of a classifier (rows, C) or dense (rows, C, ...) output."""
    return logits.reshape(logits.shape[0], logits.shape[1] if logits.dim() > 1 else 1, -1)


def classify(golden: torch.Tensor, faulty: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Outcome code (index into CODES) and SDC bucket (index into BUCKETS, -1 when none) for each
    row of ``faulty`` against the matching row of ``golden``."""
    g, f = _as_scores(golden.float()), _as_scores(faulty.float())
    same = rows_identical(golden, faulty).numpy()
    finite = torch.isfinite(f).reshape(f.shape[0], -1).all(dim=1).numpy()
    top_g = g.argmax(dim=1)
    changed = (f.argmax(dim=1) != top_g).any(dim=1).numpy()
    pg = torch.softmax(g.double(), dim=1).gather(1, top_g.unsqueeze(1)).squeeze(1)
    pf = torch.softmax(f.double(), dim=1).gather(1, top_g.unsqueeze(1)).squeeze(1)
    drop = ((pg - pf) / pg).amax(dim=1).clamp(min=0).numpy()
    code = np.where(changed, 2, 1)
    code = np.where(same, 0, code)
    code = np.where(~finite, 3, code).astype(np.int8)
    bucket = np.searchsorted(_EDGES, drop, side="right").astype(np.int8)
    bucket = np.where((code == 1) | (code == 2), bucket, -1).astype(np.int8)
    return code, bucket


@dataclass(frozen=True)
class Rate:
    """A rate with its Wilson interval at the stated confidence."""

    k: int
    n: int
    rate: float
    ci: tuple[float, float]


def rate(k: int, n: int, confidence: float = 0.95) -> Rate:
    return Rate(int(k), int(n), k / n if n else float("nan"), wilson(k, n, z_value(confidence)))


def counts(codes: np.ndarray) -> dict[str, int]:
    """Number of each outcome among the run (fault, image) pairs of ``codes``."""
    run = codes[codes != NOT_RUN]
    return {o.value: int((run == i).sum()) for i, o in enumerate(CODES)}


def summarize(codes: np.ndarray, buckets: np.ndarray | None = None,
              confidence: float = 0.95) -> dict:
    """Counts of each outcome and bucket, plus SDC-1 and masked rates with Wilson intervals."""
    c = counts(codes)
    n = sum(c.values())
    out: dict = {"injections": n, **c}
    if buckets is not None:
        out.update({b: int((buckets == i).sum()) for i, b in enumerate(BUCKETS)})
    for name, k in (("sdc1", c["critical"]), ("masked", c["masked"])):
        r = rate(k, n, confidence)
        out[f"{name}_rate"], out[f"{name}_ci"] = r.rate, list(r.ci)
    return out

