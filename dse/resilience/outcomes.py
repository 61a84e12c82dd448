"""Outcome specs by name: how a faulty output compares with the golden one, and how outcomes add up.

A spec (:class:`OutcomeSpec`) owns

- its **classes**, along one or more *axes*: each axis is a tuple of exclusive class names, and a
  row gets one class per axis or none (label -1);
- its **classifier**: golden vs faulty output rows -> labels, an int8 array (rows, axes);
- its **CSV columns**: ``n_injections`` and one count per class, in axis order;
- its **aggregation**: :meth:`OutcomeSpec.summarize` gives every count with its rate and a
  confidence interval that takes the fault as the sampling unit.

Campaigns (engines, fault lists, the mapping-aware campaign) ask a spec by name
(:func:`get`) and never look inside the labels. Adding an outcome class touches one module: the
spec that owns it (docs/resilience.md). Other campaign kinds :func:`register` their own specs
(training curves, segmentation) the same way.

**top1** (the default), axis ``outcome`` (exclusive, in this order of precedence):

- ``inf_nan``: the faulty output holds an INF or NaN (a detectable, unrecoverable error);
- ``masked``: the faulty output is bit-identical to the golden output;
- ``critical`` (SDC-1): the top-1 class changed (for dense outputs, at any position);
- ``non_critical``: the output changed but the top-1 class did not.

axis ``sdc_bucket``, for every finite, non-masked row: how far the softmax score of the golden
top-1 class fell, relative to its golden value (a rise counts as 0; for dense outputs the largest
fall over positions): ``sdc_0_5`` [0, 5 %), ``sdc_5_10`` [5 %, 10 %), ``sdc_10_20`` [10 %, 20 %),
``sdc_20`` [20 %, ...). Each boundary belongs to the bucket it opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dse.errors import InputError
from dse.resilience.stats import fault_unit_interval, z_value

NOT_RUN = -1  # label of a (fault, image) pair the fault does not touch


@dataclass(frozen=True)
class OutcomeSpec:
    """A named way to classify and count outcomes (module doc).

    ``classify(golden, faulty)`` takes matching rows (dim 0) of model outputs and returns int8
    labels (rows, len(axes)); ``identical`` is the labels of a faulty output bit-identical to
    golden (engines use it for rows they never run); ``headline`` is the class whose rate a
    campaign reports first (and the mapping-aware campaign estimates).
    """

    name: str
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    classify: Callable[[torch.Tensor, torch.Tensor], np.ndarray]
    identical: tuple[int, ...]
    headline: str
    doc: str = ""

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class name, axis after axis (the count columns after ``n_injections``)."""
        return tuple(c for _, names in self.axes for c in names)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("n_injections", *self.classes)

    def label(self, cls: str) -> tuple[int, int]:
        """(axis, label) of class ``cls``."""
        for a, (_, names) in enumerate(self.axes):
            if cls in names:
                return a, names.index(cls)
        raise InputError(f"outcome spec {self.name!r} has no class {cls!r}; it has "
                         f"{list(self.classes)}", field="outcome")

    def is_class(self, labels: np.ndarray, cls: str) -> np.ndarray:
        """Bool per row of ``labels`` (..., axes): the row is in class ``cls``."""
        a, v = self.label(cls)
        return labels[..., a] == v

    def tally(self, labels: np.ndarray) -> np.ndarray:
        """Counts in :attr:`columns` order for each leading index of ``labels`` (..., images,
        axes): run pairs, then each class. Pairs labelled NOT_RUN on axis 0 do not count."""
        run = labels[..., 0] != NOT_RUN
        out = [run.sum(axis=-1)]
        for a, (_, names) in enumerate(self.axes):
            out += [(run & (labels[..., a] == v)).sum(axis=-1) for v in range(len(names))]
        return np.stack(out, axis=-1).astype(np.int64)

    def summarize(self, counts: np.ndarray, confidence: float = 0.95) -> dict:
        """Totals of per-fault ``counts`` (faults, columns): every class with its count, rate
        (of run pairs) and interval at ``confidence``, the fault as sampling unit
        (:func:`dse.resilience.stats.fault_unit_interval`)."""
        counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(self.columns))
        z = z_value(confidence)
        n = counts[:, 0]
        out: dict = {"faults": len(counts), "fault_image_pairs": int(n.sum()),
                     "confidence": confidence}
        for j, cls in enumerate(self.classes, start=1):
            k = counts[:, j]
            total = int(k.sum())
            out[cls] = {"count": total, "rate": total / n.sum() if n.sum() else float("nan"),
                        "ci": list(fault_unit_interval(k, n, z))}
        return out


SPECS: dict[str, OutcomeSpec] = {}


def register(spec: OutcomeSpec) -> OutcomeSpec:
    """Make ``spec`` known by name (a later spec of the same name replaces it)."""
    SPECS[spec.name] = spec
    return spec


def get(spec: str | OutcomeSpec) -> OutcomeSpec:
    """The spec named ``spec``; InputError naming the field ``outcome`` for an unknown name."""
    if isinstance(spec, OutcomeSpec):
        return spec
    if spec not in SPECS:
        raise InputError(f"unknown outcome spec {spec!r}; expected one of {sorted(SPECS)}",
                         field="outcome")
    return SPECS[spec]


# -- shared comparisons ------------------------------------------------------------------------
def _bits(t: torch.Tensor) -> torch.Tensor:
    """An integer view for bit-exact comparison (so -0.0 != 0.0 and NaN payloads count)."""
    ints = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
            torch.bfloat16: torch.int16}
    return t.view(ints[t.dtype]) if t.dtype in ints else t


def rows_identical(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bool per row (dim 0), on the CPU: the two rows are bit-identical."""
    if a.shape != b.shape:
        return torch.zeros(a.shape[0], dtype=torch.bool)
    eq = _bits(a.contiguous()) == _bits(b.contiguous())
    return eq.reshape(a.shape[0], -1).all(dim=1).cpu()


# -- top1 --------------------------------------------------------------------------------------
BUCKET_EDGES = (0.05, 0.10, 0.20)


def score_bucket(drop: np.ndarray) -> np.ndarray:
    """Bucket index of relative score falls: [0, .05) -> 0, [.05, .10) -> 1, [.10, .20) -> 2,
    [.20, ...) -> 3 (a boundary opens the bucket above it)."""
    return np.searchsorted(np.array(BUCKET_EDGES), drop, side="right").astype(np.int8)


def _as_scores(logits: torch.Tensor) -> torch.Tensor:
    """(rows, classes, positions) view of a classifier (rows, C) or dense (rows, C, ...) output."""
    return logits.reshape(logits.shape[0], logits.shape[1] if logits.dim() > 1 else 1, -1)


def _classify_top1(golden: torch.Tensor, faulty: torch.Tensor) -> np.ndarray:
    g, f = _as_scores(golden.float()), _as_scores(faulty.float())
    same = rows_identical(golden, faulty).numpy()
    finite = torch.isfinite(f).reshape(f.shape[0], -1).all(dim=1).cpu().numpy()
    top_g = g.argmax(dim=1)
    changed = (f.argmax(dim=1) != top_g).any(dim=1).cpu().numpy()
    pg = torch.softmax(g.double(), dim=1).gather(1, top_g.unsqueeze(1)).squeeze(1)
    pf = torch.softmax(f.double(), dim=1).gather(1, top_g.unsqueeze(1)).squeeze(1)
    drop = ((pg - pf) / pg).amax(dim=1).clamp(min=0).cpu().numpy()
    outcome = np.where(changed, 2, 1)
    outcome = np.where(same, 0, outcome)
    outcome = np.where(~finite, 3, outcome)
    bucket = np.where((outcome == 1) | (outcome == 2), score_bucket(drop), -1)
    return np.stack([outcome, bucket], axis=1).astype(np.int8)


TOP1 = register(OutcomeSpec(
    name="top1",
    axes=(("outcome", ("masked", "non_critical", "critical", "inf_nan")),
          ("sdc_bucket", ("sdc_0_5", "sdc_5_10", "sdc_10_20", "sdc_20"))),
    classify=_classify_top1,
    identical=(0, -1),
    headline="critical",
    doc="top-1 classification: masked / non-critical / SDC-1 (critical) / INF-NaN, and the fall "
        "of the golden top-1 softmax score in buckets of 0-5, 5-10, 10-20, >20 %",
))


def empty_labels(spec: OutcomeSpec, faults: int, images: int) -> np.ndarray:
    """A (faults, images, axes) label array with every pair NOT_RUN."""
    return np.full((faults, images, len(spec.axes)), NOT_RUN, dtype=np.int8)


def fill_identical(spec: OutcomeSpec, labels: np.ndarray, where: Sequence | np.ndarray) -> None:
    """Label the pairs ``labels[where]`` as outputs identical to golden."""
    labels[where] = np.array(spec.identical, dtype=np.int8)
